"""The worked example of docs/onboarding.md: the provincial provident fund (hpf) moves its
withdrawal exchange to a new system that takes CSV over SFTP with other field names and
done markers, registered through the admin API while the gateway runs.

The binding and the configuration table are read from the guide itself (the blocks after
its ``<!-- example: … -->`` markers), so what department IT copy is what is proven here;
only the addresses of the loopback servers are filled in.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.cli import main
from gateway.config import ROOT, GatewayConfig, load_config
from gateway.demo import running_gateway, submit_and_follow
from gateway.messages import delivery_id_for
from sandbox.filedrop import HpfFiles
from sandbox.people import DEFAULT_PEOPLE
from sandbox.runner import hpf_files_from_text, run_sandbox
from tests.conftest import demo_application
from tests.test_resilience import ADMIN, fast
from tests.test_sftp import PASSWORD, names, sftp_server

GUIDE = ROOT / "docs" / "onboarding.md"
V2_FIELDS = ["ywlsh", "bjbh", "tqyy", "zjlx", "zjhm", "xm", "xb", "csrq", "lxdh", "skzh", "skzhxg", "gjjzxqh",
             "gjjzxmc", "txpzwh", "sqsj"]
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}", "X-Operator": "li.gjj-it"}


def guide_block(name: str) -> str:
    """The fenced block that follows ``<!-- example: name -->`` in the guide."""
    found = re.search(rf"<!-- example: {re.escape(name)} -->\s*```[a-z]*\n(.*?)```", GUIDE.read_text("utf-8"), re.S)
    assert found, f"docs/onboarding.md has no example block {name!r}"
    return found.group(1)


def final_item(result: dict[str, Any], item: str) -> dict[str, Any]:
    assert result["final"] is not None, result["response"]
    return next(i for i in result["final"]["items"] if i["item"] == item)


async def until(check: Callable[[], bool], rounds: int = 200) -> None:
    """Wait for something the gateway does in the background (a bound on polls, not a timing)."""
    for _ in range(rounds):
        if check():
            return
        await asyncio.sleep(0.05)


async def test_hpf_moves_to_csv_over_sftp_through_the_admin_api_without_a_restart(
    config: GatewayConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPF_SFTP_PASSWORD", PASSWORD)  # the binding names the variable, never the value
    cfg = replace(fast(config), bindings_poll_seconds=0.2)
    (tmp_path / "centre").mkdir()
    async with (
        running_gateway(cfg, tmp_path / "gw", DEFAULT_PEOPLE, decision_delay=0.02) as (url, old_system, _),
        sftp_server(tmp_path / "centre") as server,
        # The centre's new system: the sandbox exchange on the SFTP server's disk, in CSV with markers.
        run_sandbox(DEFAULT_PEOPLE, hpf_root=server.root, decision_delay=0.02,
                    hpf_files=HpfFiles(fmt="csv", encoding="utf-8", done_marker=".done")) as new_system,
        aiohttp.ClientSession(headers=ADMIN_HEADERS) as admin,
    ):
        # Before: the configuration file's v1 binding (GBK XML in a local folder) does the work.
        [before] = await submit_and_follow(url, [demo_application("DEMO-033")], timeout=20)
        assert final_item(before, "provident_fund_withdrawal")["status"] == "approved"
        assert delivery_id_for("DEMO-033", "provident_fund_withdrawal") in old_system.state.ledger.cases["hpf"]

        binding = json.loads(guide_block("hpf-v2-binding"))
        binding["endpoints"]["api"]["base_url"] = new_system.url("hpf")
        binding["endpoints"]["files"] |= {"host": "127.0.0.1", "port": server.port,
                                          "host_key_fingerprint": server.fingerprint}
        async with admin.put(f"{url}/admin/v1/departments/hpf", json=binding) as resp:
            view = await resp.json()
            assert resp.status == 200, view
        assert view["source"] == "runtime" and view["mapping"] == {"file": "hpf.v2.toml", "version": "v2"}
        assert view["endpoints"]["files"]["password_env"] == "HPF_SFTP_PASSWORD"
        assert PASSWORD not in json.dumps(view)

        # After: the same running gateway sends the next withdrawal to the new system.
        [after] = await submit_and_follow(url, [demo_application("DEMO-036")], timeout=20)
        item = final_item(after, "provident_fund_withdrawal")
        assert item["status"] == "approved", item
        delivery = item["delivery"]
        assert new_system.state.ledger.cases["hpf"][delivery]["received"] == 1
        assert delivery not in old_system.state.ledger.cases["hpf"]

        # The request landed on the SFTP server as CSV with the v2 field names (the centre
        # keeps what it read in done/), its marker taken away with it.
        request = (server.root / "done" / f"{delivery}.csv").read_text("utf-8")
        header, row = list(csv.reader(io.StringIO(request, newline="")))
        assert header == V2_FIELDS
        sent = dict(zip(header, row, strict=True))
        assert (sent["ywlsh"], sent["bjbh"], sent["tqyy"], sent["zjlx"]) == (delivery, "DEMO-036", "03", "111")
        assert (sent["xb"], sent["skzhxg"], sent["gjjzxmc"]) == ("1", "0", "湖南省")
        assert sent["txpzwh"] and sent["sqsj"] == "2026-12-03 10:00:00"
        assert names(server.root / "inbox") == []

        # The result file was picked up over SFTP and archived on the server, marker removed.
        await until(lambda: names(server.root / "archive") != [])
        assert names(server.root / "archive") == [f"{delivery}.result.csv"]
        assert names(server.root / "outbox") == [] and names(server.root / "error") == []

        async with admin.get(f"{url}/admin/v1/departments/hpf/history") as resp:
            history = (await resp.json())["history"]
        assert [(h["action"], h["actor"]) for h in history] == [("register", "li.gjj-it")]
        assert history[0]["binding"]["mapping"] == "mappings/hpf.v2.toml"


def config_with(block: str, base_dir: Path, at: Path) -> Path:
    """A configuration file holding the guide's hpf table, reading mappings from ``base_dir``."""
    at.parent.mkdir(parents=True, exist_ok=True)
    at.write_text(f'base_dir = "{base_dir.as_posix()}"\n\n{block}', encoding="utf-8")
    return at


def check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--log-level", "WARNING", "check-config", "--config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_config_passes_with_the_guides_hpf_v2_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default configuration with its hpf table replaced by the guide's: still valid."""
    default = (ROOT / "config" / "gateway.toml").read_text("utf-8")
    head, sep, _ = default.partition("[departments.hpf]\n")
    assert sep, "config/gateway.toml has no [departments.hpf] table"
    path = config_with(head + guide_block("hpf-v2-config"), ROOT, tmp_path / "config" / "gateway.toml")
    assert check_config(path, capsys) == (0, "ok: 6 departments, mappings and endpoint settings valid\n", "")


async def test_the_guides_rehearsal_runs_v2_in_local_folders_against_the_sandbox_in_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 3 of the worked example: the v2 table with local folders, and the sandbox exchange
    told by GATEWAY_SANDBOX_HPF_FILES to speak the same CSV with markers."""
    monkeypatch.setenv("GATEWAY_SANDBOX_HPF_FILES", "format=csv,encoding=utf-8,done_marker=.done")
    default = (ROOT / "config" / "gateway.toml").read_text("utf-8")
    head = default.partition("[departments.hpf]\n")[0]
    config = load_config(config_with(head + guide_block("hpf-v2-rehearsal"), ROOT, tmp_path / "gateway.toml"))
    async with running_gateway(config, tmp_path / "gw", DEFAULT_PEOPLE, decision_delay=0.02) as (url, sandbox, _):
        [result] = await submit_and_follow(url, [demo_application("DEMO-036")], timeout=20)
    item = final_item(result, "provident_fund_withdrawal")
    assert item["status"] == "approved", item
    header = (sandbox.hpf_root / "done" / f"{item['delivery']}.csv").read_text("utf-8").splitlines()[0]
    assert header.split(",") == V2_FIELDS


def _line(text: str, start: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def _drop_table(text: str, header: str) -> str:
    """The mapping without one ``[table]`` and its keys (up to the next blank line)."""
    head, sep, tail = text.partition(header + "\n")
    assert sep, header
    return head + tail.partition("\n\n")[2]


BROKEN = {
    "unknown transform": (
        lambda t: t.replace('xb = { path = "applicant.gender", code = "gender" }',
                            'xb = { path = "applicant.gender", lookup = "gender" }'),
        "xb =", "xb: unknown transform ['lookup']",
    ),
    "code table missing": (
        lambda t: _drop_table(t, "[codes.id_type]"),
        "zjlx =", "zjlx: code table 'id_type' is not defined under [codes]",
    ),
    "endpoint not configured": (
        lambda t: t.replace('[operations.submit]\nendpoint = "files"', '[operations.submit]\nendpoint = "sftp"'),
        'endpoint = "sftp"', "'sftp' is not an endpoint",
    ),
}


@pytest.mark.parametrize(
    "case",
    [
        "unknown transform",
        "code table missing",
        "endpoint not configured",
    ],
)
def test_a_broken_copy_of_hpf_v2_fails_check_config_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    breaks, at, says = BROKEN[case]
    original = (ROOT / "mappings" / "hpf.v2.toml").read_text("utf-8")
    broken = breaks(original)
    assert broken != original
    mapping = tmp_path / "mappings" / "hpf.v2.toml"
    mapping.parent.mkdir()
    mapping.write_text(broken, encoding="utf-8")
    path = config_with(guide_block("hpf-v2-config"), tmp_path, tmp_path / "config" / "gateway.toml")
    code, out, err = check_config(path, capsys)
    assert code == 1 and out == ""
    assert f"{mapping}:{_line(broken, at)}: " in err and says in err, err


def test_a_mapping_naming_an_endpoint_the_binding_lacks_is_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The mapping's line and the configuration's department are both named."""
    breaks, _, says = BROKEN["endpoint not configured"]
    mapping = tmp_path / "mappings" / "hpf.v2.toml"
    mapping.parent.mkdir()
    mapping.write_text(breaks((ROOT / "mappings" / "hpf.v2.toml").read_text("utf-8")), encoding="utf-8")
    path = config_with(guide_block("hpf-v2-config"), tmp_path, tmp_path / "config" / "gateway.toml")
    code, _, err = check_config(path, capsys)
    assert code == 1 and says in err and "[departments.hpf]" in err and str(path) in err, err


@pytest.mark.parametrize(
    ("text", "files"),
    [
        ("format=csv,encoding=utf-8,done_marker=.done", HpfFiles("csv", "utf-8", ".done")),
        (" format = xml , encoding = gbk ", HpfFiles("xml", "gbk", "")),
    ],
)
def test_the_sandbox_exchange_options_use_the_endpoint_setting_names(text: str, files: HpfFiles) -> None:
    assert hpf_files_from_text(text) == files


@pytest.mark.parametrize("text", ["fmt=csv", "format=json", "encoding=latin-1", "done_marker=done", "csv"])
def test_sandbox_exchange_options_that_cannot_work_are_refused_by_name(text: str) -> None:
    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match="GATEWAY_SANDBOX_HPF_FILES"):
        hpf_files_from_text(text)


async def test_gateway_sandbox_serves_csv_with_markers_when_the_environment_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GATEWAY_SANDBOX_HPF_FILES`` (what ``gateway sandbox`` reads): the exchange answers a
    CSV request once its marker exists, in CSV with a marker of its own."""
    monkeypatch.setenv("GATEWAY_SANDBOX_HPF_FILES", "format=csv,encoding=utf-8,done_marker=.done")
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    (inbox / "D1.csv").write_bytes(b"ywlsh,zjhm\r\nD1,000\r\n")  # no marker: not complete yet
    (inbox / "D2.csv").write_bytes(b"ywlsh,zjhm\r\nD2,000\r\n")
    (inbox / "D2.csv.done").touch()
    async with run_sandbox(DEFAULT_PEOPLE, hpf_root=tmp_path, decision_delay=0):
        await until(lambda: (outbox / "D2.result.csv.done").exists())
    # The pass that answered D2 saw D1 as well, and left it for want of its marker.
    assert names(inbox) == ["D1.csv"] and names(outbox) == ["D2.result.csv", "D2.result.csv.done"]
    header, row = list(csv.reader(io.StringIO((outbox / "D2.result.csv").read_text("utf-8"), newline="")))
    assert dict(zip(header, row, strict=True))["tqjg.jgdm"] == "01"  # 000 is nobody: 查无此人


def test_the_guide_lists_every_transform_of_the_closed_registry() -> None:
    from gateway.transforms import TRANSFORMS

    section = GUIDE.read_text("utf-8").partition("### 2.3 Transforms")[2].partition("\n### ")[0]
    listed = re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.M)
    assert listed == list(TRANSFORMS)  # and in the order they apply


@pytest.mark.parametrize("password", ["wrong-password", None])
async def test_a_binding_whose_sftp_login_fails_is_refused_and_changes_nothing(
    config: GatewayConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str | None
) -> None:
    if password is None:
        monkeypatch.delenv("HPF_SFTP_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("HPF_SFTP_PASSWORD", password)
    (tmp_path / "centre").mkdir()
    async with (
        running_gateway(fast(config), tmp_path / "gw", DEFAULT_PEOPLE, decision_delay=0.02) as (url, _, _),
        sftp_server(tmp_path / "centre") as server,
        aiohttp.ClientSession(headers=ADMIN_HEADERS) as admin,
    ):
        binding = json.loads(guide_block("hpf-v2-binding"))
        binding["endpoints"]["files"] |= {"host": "127.0.0.1", "port": server.port,
                                          "host_key_fingerprint": server.fingerprint}
        async with admin.put(f"{url}/admin/v1/departments/hpf", json=binding) as resp:
            problem = await resp.json()
        assert resp.status == 422 and "does not work" in problem["detail"], problem
        assert "wrong-password" not in json.dumps(problem)
        async with admin.get(f"{url}/admin/v1/departments/hpf") as resp:
            assert (await resp.json())["source"] == "file"
        async with admin.get(f"{url}/admin/v1/departments/hpf/history") as resp:
            assert (await resp.json())["history"] == []


def test_a_secret_written_into_a_file_drop_binding_is_refused_by_name() -> None:
    from adapters.filedrop import FileDropSettings

    with pytest.raises(ValueError, match="no setting password"):
        FileDropSettings.from_settings("hpf.files", {"inbox": "i", "outbox": "o", "archive": "a", "error": "e",
                                                     "password": "s3cret"}, None)  # type: ignore[arg-type]
