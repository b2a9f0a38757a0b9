"""The file-drop adapter over SFTP, against an asyncssh SFTP server on loopback.

Each test starts its own server (host key and client key generated into tmp_path, the SFTP
view chrooted to tmp_path/"sftp"), so what the adapter does is checked on the server's
disk, and failures (wrong key, dropped connection, server gone) are real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncssh
import pytest
import xmltodict
from structlog.testing import capture_logs

from adapters.base import Operation, OutboundMessage, PermanentError, TransientError
from adapters.context import AdapterContext
from adapters.filedrop import FileDropAdapter
from adapters.sftp import _op_error
from adapters.sshconnect import connect_error
from gateway.config import ROOT
from sandbox.runner import run_sandbox

PASSWORD = "s3cret-pw-for-tests"


@dataclass
class SftpServer:
    root: Path
    port: int
    known_hosts: Path
    client_key: Path
    fingerprint: str
    connections: list[asyncssh.SSHServerConnection] = field(default_factory=list)


class _Auth(asyncssh.SSHServer):
    def __init__(self, server: SftpServer) -> None:
        self._server = server

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._server.connections.append(conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "gw" and password == PASSWORD


class _DropsOnOpen(asyncssh.SFTPServer):
    """Cuts the connection when asked to open a file whose name holds DROP."""

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if b"DROP" in path:
            self.connection.abort()
            raise asyncssh.SFTPConnectionLost("dropped by the test server")
        return super().open(path, pflags, attrs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Keys:
    host: asyncssh.SSHKey
    client: asyncssh.SSHKey


def make_keys() -> Keys:
    return Keys(asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519"))


@contextlib.asynccontextmanager
async def sftp_server(tmp_path: Path, port: int = 0, keys: Keys | None = None) -> AsyncIterator[SftpServer]:
    keys = keys or make_keys()
    host_key, client_key = keys.host, keys.client
    (tmp_path / "client_key").write_bytes(client_key.export_private_key())
    root = tmp_path / "sftp"
    root.mkdir(exist_ok=True)
    info = SftpServer(root, 0, tmp_path / "known_hosts", tmp_path / "client_key", host_key.get_fingerprint("sha256"))
    listener = await asyncssh.listen(
        "127.0.0.1", port, server_factory=lambda: _Auth(info), server_host_keys=[host_key],
        authorized_client_keys=asyncssh.import_authorized_keys(client_key.export_public_key().decode()),
        sftp_factory=lambda chan: _DropsOnOpen(chan, chroot=str(root)),
    )
    info.port = listener.sockets[0].getsockname()[1]
    info.known_hosts.write_text(f"[127.0.0.1]:{info.port} {host_key.export_public_key().decode()}")
    try:
        yield info
    finally:
        listener.close()
        for conn in info.connections:
            conn.abort()
        await listener.wait_closed()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SftpServer]:
    async with sftp_server(tmp_path) as s:
        yield s


@pytest.fixture
async def context() -> AsyncIterator[AdapterContext]:
    async with aiohttp.ClientSession() as session:
        yield AdapterContext(session, ROOT)


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TEST_SFTP_PASSWORD", PASSWORD)
    return "TEST_SFTP_PASSWORD"


def settings(server: SftpServer, **extra: Any) -> dict[str, Any]:
    base = {
        "transport": "sftp", "host": "127.0.0.1", "port": server.port, "username": "gw",
        "client_key_path": str(server.client_key), "known_hosts": str(server.known_hosts),
        "inbox": "/inbox", "outbox": "/outbox", "archive": "/archive", "error": "/error",
        "encoding": "gbk", "root": "tqsq", "stable_seconds": 0, "connect_timeout": 5, "io_timeout": 5,
    }
    return {k: v for k, v in (base | extra).items() if v is not None}


@contextlib.asynccontextmanager
async def adapter(server: SftpServer, context: AdapterContext, **extra: Any) -> AsyncIterator[FileDropAdapter]:
    fd = FileDropAdapter("hpf.files", settings(server, **extra), context)
    await fd.open()
    try:
        yield fd
    finally:
        await fd.close()


def msg(body: dict[str, Any], delivery_id: str = "D1") -> OutboundMessage:
    return OutboundMessage(Operation("submit", "files"), delivery_id, body)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def without_extensions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test server as one without posix-rename and fsync (older or other SFTP servers)."""
    handler = asyncssh.sftp.SFTPServerHandler
    kept = [e for e in handler._extensions if e[0] not in (b"posix-rename@openssh.com", b"fsync@openssh.com")]
    monkeypatch.setattr(handler, "_extensions", kept)
    yield


async def test_submit_over_sftp_lands_whole_in_the_chrooted_inbox_over_one_connection(
    server: SftpServer, context: AdapterContext
) -> None:
    async with adapter(server, context) as fd:
        await fd.call(msg({"lsh": "D1", "xingming": "测试甲"}, "D1"), 5)
        await fd.call(msg({"lsh": "D2", "xingming": "测试乙"}, "D2"), 5)
        assert fd.store.connections == 1  # type: ignore[attr-defined]
    assert names(server.root / "inbox") == ["D1.xml", "D2.xml"]  # no temporary file left
    raw = (server.root / "inbox" / "D1.xml").read_bytes()
    assert xmltodict.parse(raw.decode("gbk"))["tqsq"]["xingming"] == "测试甲"
    assert len(server.connections) == 1
    assert sorted(p.name for p in server.root.iterdir()) == ["archive", "error", "inbox", "outbox"]


async def test_password_from_the_environment_and_a_pinned_host_key(
    server: SftpServer, context: AdapterContext, password_env: str
) -> None:
    extra = {"client_key_path": None, "known_hosts": None, "password_env": password_env,
             "host_key_fingerprint": server.fingerprint}
    async with adapter(server, context, **extra) as fd:
        await fd.call(msg({"lsh": "D1"}), 5)
    assert names(server.root / "inbox") == ["D1.xml"]


@pytest.mark.parametrize(("passphrase", "works"), [("key-pass-1", True), ("not-the-pass", False)])
async def test_an_encrypted_key_and_its_passphrase_from_the_environment(
    server: SftpServer, context: AdapterContext, monkeypatch: pytest.MonkeyPatch, passphrase: str, works: bool
) -> None:
    key = asyncssh.read_private_key(server.client_key)
    monkeypatch.setenv("TEST_SFTP_KEY", key.export_private_key("pkcs8-pem", passphrase="key-pass-1").decode())
    monkeypatch.setenv("TEST_SFTP_KEY_PASS", passphrase)
    extra = {
        "client_key_path": None, "client_key_env": "TEST_SFTP_KEY", "client_key_passphrase_env": "TEST_SFTP_KEY_PASS",
    }
    async with adapter(server, context, **extra) as fd:
        if works:
            await fd.call(msg({"lsh": "D1"}), 5)
        else:
            with pytest.raises(PermanentError) as info:
                await fd.call(msg({"lsh": "D1"}), 5)
            assert "KeyImportError" in info.value.detail and passphrase not in info.value.detail
    assert (server.root / "inbox" / "D1.xml").exists() is works


async def test_a_wrong_password_is_permanent_and_the_error_holds_no_secret(
    server: SftpServer, context: AdapterContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SFTP_PASSWORD", "wrong-password-123")
    async with adapter(server, context, client_key_path=None, password_env="TEST_SFTP_PASSWORD") as fd:
        with pytest.raises(PermanentError) as info:
            await fd.call(msg({"lsh": "D1"}), 5)
    assert "PermissionDenied" in info.value.detail and "wrong-password-123" not in info.value.detail


async def test_a_missing_password_variable_is_permanent_and_named(server: SftpServer, context: AdapterContext) -> None:
    async with adapter(server, context, client_key_path=None, password_env="TEST_SFTP_UNSET_VARIABLE") as fd:
        with pytest.raises(PermanentError, match="TEST_SFTP_UNSET_VARIABLE is not set"):
            await fd.call(msg({"lsh": "D1"}), 5)


@pytest.mark.parametrize("how", ["fingerprint", "known_hosts"])
async def test_a_host_key_that_is_not_trusted_is_permanent(
    server: SftpServer, context: AdapterContext, tmp_path: Path, how: str
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    if how == "fingerprint":
        extra = {"known_hosts": None, "host_key_fingerprint": other.get_fingerprint("sha256")}
    else:
        (tmp_path / "other_hosts").write_text(f"[127.0.0.1]:{server.port} {other.export_public_key().decode()}")
        extra = {"known_hosts": str(tmp_path / "other_hosts")}
    async with adapter(server, context, **extra) as fd:
        with pytest.raises(PermanentError, match="HostKeyNotVerifiable"):
            await fd.call(msg({"lsh": "D1"}), 5)
    assert not (server.root / "inbox").exists()


def test_an_sftp_endpoint_without_a_host_key_rule_is_refused(server: SftpServer, context: AdapterContext) -> None:
    with pytest.raises(ValueError, match="known_hosts, host_key_fingerprint or insecure_skip_host_key_check"):
        FileDropAdapter("hpf.files", settings(server, known_hosts=None), context)
    with pytest.raises(ValueError):  # "yes" is not true: switching the check off must be deliberate
        FileDropAdapter("hpf.files", settings(server, known_hosts=None, insecure_skip_host_key_check="yes"), context)


async def test_skipping_the_host_key_check_takes_an_explicit_setting_and_is_logged(
    server: SftpServer, context: AdapterContext
) -> None:
    with capture_logs() as logs:
        async with adapter(server, context, known_hosts=None, insecure_skip_host_key_check=True) as fd:
            await fd.call(msg({"lsh": "D1"}), 5)
    warned = [e for e in logs if e["event"] == "sftp_host_key_check_disabled"]
    assert warned and warned[0]["log_level"] == "warning" and warned[0]["endpoint"] == "hpf.files"


async def test_a_server_that_is_down_is_transient_and_is_reached_once_it_is_back(
    tmp_path: Path, context: AdapterContext
) -> None:
    port, keys = _free_port(), make_keys()
    (tmp_path / "client_key").write_bytes(keys.client.export_private_key())
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{port} {keys.host.export_public_key().decode()}")
    down = SftpServer(tmp_path / "sftp", port, tmp_path / "known_hosts", tmp_path / "client_key", "")
    fd = FileDropAdapter("hpf.files", settings(down), context)
    with capture_logs() as logs:
        await fd.open()  # does not raise: the gateway starts without this department
    assert [e["transient"] for e in logs if e["event"] == "sftp_connect_failed"] == [True]
    with pytest.raises(TransientError):
        await fd.call(msg({"lsh": "D1"}), 5)
    async with sftp_server(tmp_path, port, keys) as back:
        await fd.call(msg({"lsh": "D1"}), 5)
        assert names(back.root / "inbox") == ["D1.xml"]
    await fd.close()


async def test_a_connection_lost_mid_write_is_transient_and_the_next_call_reconnects(
    server: SftpServer, context: AdapterContext
) -> None:
    async with adapter(server, context) as fd:
        with pytest.raises(TransientError) as info:
            await fd.call(msg({"lsh": "DROP1"}, "DROP1"), 5)
        assert not isinstance(info.value, PermanentError)
        await fd.call(msg({"lsh": "D2"}, "D2"), 5)
        assert fd.store.connections == 2  # type: ignore[attr-defined]
    assert names(server.root / "inbox") == ["D2.xml"]


async def test_results_over_sftp_wait_for_markers_and_archive_on_the_server_without_loss(
    server: SftpServer, context: AdapterContext
) -> None:
    async with adapter(server, context, require_done_marker=True) as fd:
        out, arc = server.root / "outbox", server.root / "archive"
        text = xmltodict.unparse({"tqjg": {"lsh": "D1", "jgdm": "00"}}, encoding="gbk").encode("gbk")
        (out / "D1.result.xml").write_bytes(text)
        (out / "D2.result.xml.tmp").write_bytes(b"half")
        assert [r async for r in fd.results()] == []  # no marker yet
        (out / "D1.result.xml.done").touch()
        (arc / "D1.result.xml").write_bytes(b"an earlier copy")
        [raw] = [r async for r in fd.results()]
        assert raw.body["tqjg"]["jgdm"] == "00"
        await fd.acknowledge(raw, ok=True)
    assert names(out) == ["D2.result.xml.tmp"]
    assert (arc / "D1.result.xml").read_bytes() == b"an earlier copy"
    assert (arc / "D1.result.1.xml").read_bytes() == text


async def test_an_unparseable_result_over_sftp_goes_to_the_error_folder(
    server: SftpServer, context: AdapterContext
) -> None:
    async with adapter(server, context) as fd:
        (server.root / "outbox" / "D1.result.xml").write_bytes(b"<tqjg><lsh>")
        [raw] = [r async for r in fd.results()]
    assert raw.body is None and names(server.root / "error") == ["D1.result.xml"]


async def test_a_symbolic_link_in_the_outbox_is_never_followed_over_sftp(
    server: SftpServer, context: AdapterContext
) -> None:
    async with adapter(server, context) as fd:
        (server.root / "elsewhere.xml").write_bytes(b"<tqjg><lsh>D1</lsh></tqjg>")
        (server.root / "outbox" / "D1.result.xml").symlink_to(server.root / "elsewhere.xml")
        assert [r async for r in fd.results()] == []
    assert names(server.root / "outbox") == ["D1.result.xml"]


async def test_a_resend_replaces_the_earlier_file_atomically_with_posix_rename(
    server: SftpServer, context: AdapterContext
) -> None:
    (server.root / "inbox").mkdir()
    (server.root / "inbox" / "D1.xml").write_bytes(b"an earlier send")
    async with adapter(server, context) as fd:
        await fd.call(msg({"lsh": "D1"}), 5)
    assert names(server.root / "inbox") == ["D1.xml"]
    assert b"<lsh>D1</lsh>" in (server.root / "inbox" / "D1.xml").read_bytes()


@pytest.mark.usefixtures("without_extensions")
async def test_without_posix_rename_an_upload_is_still_a_rename_and_an_existing_file_is_kept(
    server: SftpServer, context: AdapterContext
) -> None:
    (server.root / "inbox").mkdir()
    (server.root / "inbox" / "D1.xml").write_bytes(b"an earlier send")
    async with adapter(server, context, done_marker=".done") as fd:
        await fd.call(msg({"lsh": "D1"}, "D1"), 5)
        await fd.call(msg({"lsh": "D2"}, "D2"), 5)
    inbox = server.root / "inbox"
    assert names(inbox) == ["D1.xml", "D1.xml.done", "D2.xml", "D2.xml.done"]  # no temporary file left
    assert (inbox / "D1.xml").read_bytes() == b"an earlier send"  # never removed to make room
    assert b"<lsh>D2</lsh>" in (inbox / "D2.xml").read_bytes()


async def test_the_sandbox_exchange_answers_through_sftp(tmp_path: Path, context: AdapterContext) -> None:
    """The gateway's adapter over SFTP and the provident-fund sandbox on the server's disk."""
    async with (
        sftp_server(tmp_path) as server,
        run_sandbox(hpf_root=server.root, decision_delay=0.01) as sandbox,
        adapter(server, context) as fd,
    ):
        await fd.call(msg({"lsh": "D-S-1", "zjhm": "000", "xingming": "测试甲"}, "D-S-1"), 5)
        results = []
        for _ in range(200):  # the exchange polls every 50 ms; this is a bound, not a timing
            results = [r async for r in fd.results()]
            if results:
                break
            await asyncio.sleep(0.02)
        assert [(r.delivery_id, r.body["tqjg"]["jgdm"]) for r in results] == [("D-S-1", "01")]
        await fd.acknowledge(results[0], ok=True)
        assert sandbox.state.ledger.cases["hpf"]["D-S-1"]["received"] == 1
    assert names(server.root / "archive") == ["D-S-1.result.xml"]


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (asyncssh.PermissionDenied("no"), PermanentError),
        (asyncssh.HostKeyNotVerifiable("no"), PermanentError),
        (asyncssh.KeyImportError("bad key"), PermanentError),
        (FileNotFoundError(2, "no known_hosts"), PermanentError),
        (asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "no sftp"), PermanentError),
        (asyncssh.ChannelOpenError(asyncssh.OPEN_RESOURCE_SHORTAGE, "busy"), TransientError),
        (asyncssh.ConnectionLost("gone"), TransientError),
        (ConnectionRefusedError(111, "refused"), TransientError),
        (TimeoutError(), TransientError),
    ],
)
def test_connection_errors_are_classified_once(exc: BaseException, kind: type) -> None:
    assert type(connect_error(exc)) is kind


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (asyncssh.SFTPPermissionDenied("/inbox/D1.xml: server says no"), PermanentError),
        (asyncssh.SFTPNoSpaceOnFilesystem("/inbox/D1.xml: disk full"), TransientError),
        (asyncssh.SFTPFailure("/inbox/D1.xml: failure"), TransientError),
        (asyncssh.SFTPConnectionLost("/inbox/D1.xml: gone"), TransientError),
        (BrokenPipeError(32, "/inbox/D1.xml: pipe"), TransientError),
    ],
)
def test_operation_errors_are_classified_once_without_the_servers_message(exc: BaseException, kind: type) -> None:
    mapped = _op_error(exc, "write a file")
    assert type(mapped) is kind and "/inbox/D1.xml" not in mapped.detail
