"""The file-drop adapter on the local transport: names, encodings, formats, markers, pickup.

Everything runs on real directories under tmp_path; the SFTP transport has its own file
(tests/test_sftp.py) and shares the adapter code tested here.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import xmltodict
from lxml import etree
from structlog.testing import capture_logs

from adapters.base import Operation, OutboundMessage, PermanentError, TransientError
from adapters.context import AdapterContext
from adapters.filedrop import FileDropAdapter, StabilityGate, safe_file_name
from adapters.filenames import numbered, result_name_ok
from adapters.filestore import FileInfo, LocalFileStore, RenameOutcome, map_os_error
from gateway.config import ROOT

NAME = "测试甲"  # not one of the sandbox people: the scanner would flag those in any output


@pytest.fixture
async def context() -> AsyncIterator[AdapterContext]:
    async with aiohttp.ClientSession() as session:
        yield AdapterContext(session, ROOT)


def msg(body: dict[str, Any], delivery_id: str = "D1") -> OutboundMessage:
    return OutboundMessage(Operation("submit", "files"), delivery_id, body)


def settings(root: Path, **extra: Any) -> dict[str, Any]:
    return {
        "inbox": str(root / "in"), "outbox": str(root / "out"), "archive": str(root / "arc"),
        "error": str(root / "err"), "encoding": "gbk", "root": "tqsq", "stable_seconds": 0,
    } | extra


async def opened(root: Path, context: AdapterContext, **extra: Any) -> FileDropAdapter:
    fd = FileDropAdapter("hpf.files", settings(root, **extra), context)
    await fd.open()
    return fd


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def result_xml(delivery: str, code: str = "00", encoding: str = "gbk") -> bytes:
    return xmltodict.unparse({"tqjg": {"lsh": delivery, "jgdm": code}}, encoding=encoding).encode(encoding)


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stem",
    ["../x", "..", "/etc/passwd", "/abs", "a/b", "a\\b", "..\\x", "C:x", "a\0b", "", ".hidden", "-rf", "x" * 129,
     "名字", "ｘ"],
)
def test_gateway_file_names_cannot_leave_their_directory(stem: str) -> None:
    with pytest.raises(PermanentError) as info:
        safe_file_name(stem, ".xml")
    assert stem not in info.value.detail or not stem


def test_a_delivery_id_is_a_safe_file_name() -> None:
    assert safe_file_name("D0123456789ABCDEF0123456789ABCDE", ".xml") == "D0123456789ABCDEF0123456789ABCDE.xml"


@pytest.mark.parametrize("name", ["../x.xml", "a\\b.xml", "/x.xml", "a\0.xml", "结果.xml", "x" * 201, ".x.xml", ""])
def test_department_file_names_are_refused_before_any_path_is_built(name: str) -> None:
    assert not result_name_ok(name)


def test_a_collision_number_goes_before_the_extension() -> None:
    assert numbered("D1.result.xml", 2) == "D1.result.2.xml"


async def test_result_files_with_refused_names_are_left_alone_and_reported_once(
    tmp_path: Path, context: AdapterContext
) -> None:
    fd = await opened(tmp_path, context)
    out = tmp_path / "out"
    bad = ["a\\b.result.xml", "结果.xml", "y" * 210 + ".xml"]
    for name in bad:
        (out / name).write_bytes(result_xml("D9"))
    (out / "D1.result.xml").write_bytes(result_xml("D1"))
    with capture_logs() as logs:
        first = [r async for r in fd.results()]
        second = [r async for r in fd.results()]
    assert [r.source for r in first] == [r.source for r in second] == ["D1.result.xml"]
    assert sorted(p.name for p in out.iterdir()) == sorted(bad + ["D1.result.xml"])
    assert [e["event"] for e in logs].count("result_file_name_refused") == len(bad)


# --- writing -----------------------------------------------------------------------------


async def test_writes_gbk_xml_named_by_delivery_id_with_no_temporary_file_left(
    tmp_path: Path, context: AdapterContext
) -> None:
    fd = await opened(tmp_path, context)
    await fd.call(msg({"lsh": "D-F-1", "xingming": NAME}, "D-F-1"), 2)
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["D-F-1.xml"]
    raw = (tmp_path / "in" / "D-F-1.xml").read_bytes()
    assert NAME.encode("gbk") in raw and raw.startswith(b'<?xml version="1.0" encoding="GBK"?>')
    assert xmltodict.parse(raw.decode("gbk"))["tqsq"]["xingming"] == NAME


@pytest.mark.parametrize(
    ("encoding", "declared", "prefix"),
    [("utf-8", "UTF-8", b"<?xml"), ("utf-8-sig", "UTF-8", b"\xef\xbb\xbf<?xml"), ("gbk", "GBK", b"<?xml"),
     ("gb18030", "GB18030", b"<?xml"), ("GB18030", "GB18030", b"<?xml")],
)
async def test_each_encoding_writes_bytes_its_declaration_describes(
    tmp_path: Path, context: AdapterContext, encoding: str, declared: str, prefix: bytes
) -> None:
    fd = await opened(tmp_path, context, encoding=encoding)
    await fd.call(msg({"xingming": NAME, "tqyy": "退休提取"}), 2)
    raw = (tmp_path / "in" / "D1.xml").read_bytes()
    assert raw.startswith(prefix) and f'encoding="{declared}"'.encode() in raw
    # lxml trusts the declaration (and a BOM): it must read the same text back.
    doc = etree.fromstring(raw)
    assert doc.findtext("xingming") == NAME and doc.findtext("tqyy") == "退休提取"


async def test_a_character_outside_gbk_is_sent_as_gb18030_and_declared_so(
    tmp_path: Path, context: AdapterContext
) -> None:
    fd = await opened(tmp_path, context, gb18030_fallback=True)
    await fd.call(msg({"xingming": "王𠮷", "tqyy": "退休提取"}), 2)
    raw = (tmp_path / "in" / "D1.xml").read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="GB18030"?>')
    assert "王𠮷".encode("gb18030") in raw
    assert etree.fromstring(raw).findtext("xingming") == "王𠮷"


async def test_a_character_outside_gbk_is_refused_naming_the_field_but_not_the_value(
    tmp_path: Path, context: AdapterContext
) -> None:
    fd = await opened(tmp_path, context)
    with pytest.raises(PermanentError) as info:
        await fd.call(msg({"lsh": "D1", "applicant": {"xingming": "王𠮷"}}), 2)
    detail = str(info.value)
    assert "applicant.xingming" in detail and "GBK" in detail
    assert "𠮷" not in detail and "王" not in detail
    chain = [info.value.__cause__, info.value.__context__]
    assert all(e is None or "𠮷" not in repr(e) for e in chain)
    assert list((tmp_path / "in").iterdir()) == []


async def test_a_control_character_is_refused_for_xml_naming_the_field(tmp_path: Path, context: AdapterContext) -> None:
    fd = await opened(tmp_path, context)
    with pytest.raises(PermanentError, match="field sjhm"):
        await fd.call(msg({"sjhm": "139\x01"}), 2)


async def test_csv_has_a_header_of_dotted_field_names_and_one_rfc4180_row(
    tmp_path: Path, context: AdapterContext
) -> None:
    fd = await opened(tmp_path, context, format="csv", encoding="utf-8")
    body = {"lsh": "D1", "applicant": {"name": NAME, "note": 'a,b "c"\nd'}, "flag": True, "empty": None}
    await fd.call(msg(body), 2)
    raw = (tmp_path / "in" / "D1.csv").read_bytes()
    assert raw == (
        'lsh,applicant.name,applicant.note,flag,empty\r\n'
        f'D1,{NAME},"a,b ""c""\nd",true,\r\n'
    ).encode()


async def test_csv_refuses_a_list_naming_the_field(tmp_path: Path, context: AdapterContext) -> None:
    fd = await opened(tmp_path, context, format="csv")
    with pytest.raises(PermanentError, match="field children"):
        await fd.call(msg({"children": ["a", "b"]}), 2)


async def test_done_marker_is_an_empty_file_next_to_the_message(tmp_path: Path, context: AdapterContext) -> None:
    fd = await opened(tmp_path, context, done_marker=".done")
    await fd.call(msg({"lsh": "D1"}), 2)
    inbox = tmp_path / "in"
    assert sorted(p.name for p in inbox.iterdir()) == ["D1.xml", "D1.xml.done"]
    assert (inbox / "D1.xml.done").read_bytes() == b"" and (inbox / "D1.xml").stat().st_size > 0


@pytest.mark.parametrize(
    "bad",
    [{"transport": "ftp"}, {"format": "json"}, {"encoding": "latin-1"}, {"encoding": "gb2312"},
     {"done_marker": "/../x"}, {"inbox": None}],
)
def test_settings_that_cannot_work_are_refused_when_the_adapter_is_built(
    tmp_path: Path, context: AdapterContext, bad: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        FileDropAdapter("hpf.files", settings(tmp_path, **bad), context)


@pytest.mark.parametrize("config", ["gateway.toml", "gateway.production.toml"])
def test_the_shipped_hpf_endpoint_settings_still_load(context: AdapterContext, config: str) -> None:
    import tomllib

    data = tomllib.loads((ROOT / "config" / config).read_text(encoding="utf-8"))
    fd = FileDropAdapter("hpf.files", data["departments"]["hpf"]["endpoints"]["files"], context)
    assert fd.settings.transport == "local" and fd.settings.file_format.encoding == "gbk"
    assert fd.settings.file_format.gb18030_fallback is True and fd.settings.file_format.root == "tqsq"


# --- reading -----------------------------------------------------------------------------


async def test_picks_up_results_archives_them_and_sets_bad_ones_aside(tmp_path: Path, context: AdapterContext) -> None:
    fd = await opened(tmp_path, context)
    out = tmp_path / "out"
    (out / "D-F-3.result.xml").write_bytes(result_xml("D-F-3"))
    (out / "bad.result.xml").write_bytes(f"<tqjg><jgsm>{NAME}".encode("gbk"))
    (out / "D-F-4.result.xml.tmp").write_bytes(b"half")
    (out / ".D-F-5.result.xml").write_bytes(b"half")
    with capture_logs() as logs:
        results = [r async for r in fd.results()]
    good = [r for r in results if r.body is not None]
    assert [(r.delivery_id, r.body["tqjg"]["jgdm"]) for r in good] == [("D-F-3", "00")]
    await fd.acknowledge(good[0], ok=True)
    assert (tmp_path / "arc" / "D-F-3.result.xml").exists()
    assert (tmp_path / "err" / "bad.result.xml").exists()
    assert sorted(p.name for p in out.iterdir()) == [".D-F-5.result.xml", "D-F-4.result.xml.tmp"]
    aside = [e for e in logs if e["event"] == "result_file_set_aside"]
    assert aside == [{
        "event": "result_file_set_aside", "log_level": "warning", "endpoint": "hpf.files", "file": "bad.result.xml",
        "folder": "error", "moved_to": "bad.result.xml", "reason": "xml",
    }]
    assert NAME not in repr(logs)
    assert [r async for r in fd.results()] == []


async def test_a_symbolic_link_in_the_outbox_is_never_followed(tmp_path: Path, context: AdapterContext) -> None:
    fd = await opened(tmp_path, context)
    secret = tmp_path / "gateway-secret.xml"
    secret.write_bytes(result_xml("D1"))
    (tmp_path / "out" / "D1.result.xml").symlink_to(secret)
    assert [r async for r in fd.results()] == []
    assert names(tmp_path / "out") == ["D1.result.xml"] and names(tmp_path / "err") == []


async def test_a_result_the_intake_could_not_apply_goes_to_error(tmp_path: Path, context: AdapterContext) -> None:
    fd = await opened(tmp_path, context)
    (tmp_path / "out" / "D1.result.xml").write_bytes(result_xml("D1"))
    [raw] = [r async for r in fd.results()]
    await fd.acknowledge(raw, ok=False)
    assert [p.name for p in (tmp_path / "err").iterdir()] == ["D1.result.xml"]


async def test_a_name_already_in_the_archive_gets_a_number_and_no_file_is_lost(
    tmp_path: Path, context: AdapterContext
) -> None:
    fd = await opened(tmp_path, context)
    arc = tmp_path / "arc"
    (arc / "D1.result.xml").write_bytes(b"first")
    (arc / "D1.result.1.xml").write_bytes(b"second")
    (tmp_path / "out" / "D1.result.xml").write_bytes(result_xml("D1"))
    [raw] = [r async for r in fd.results()]
    await fd.acknowledge(raw, ok=True)
    assert (arc / "D1.result.xml").read_bytes() == b"first" and (arc / "D1.result.1.xml").read_bytes() == b"second"
    assert (arc / "D1.result.2.xml").read_bytes() == result_xml("D1")
    assert list((tmp_path / "out").iterdir()) == []


async def test_with_required_done_markers_a_file_is_read_only_once_its_marker_exists(
    tmp_path: Path, context: AdapterContext
) -> None:
    fd = await opened(tmp_path, context, require_done_marker=True, stable_seconds=60)
    out = tmp_path / "out"
    (out / "D1.result.xml").write_bytes(result_xml("D1"))
    assert [r async for r in fd.results()] == []
    (out / "D1.result.xml.done").touch()
    [raw] = [r async for r in fd.results()]  # no stability wait: the marker says it is complete
    await fd.acknowledge(raw, ok=True)
    assert list(out.iterdir()) == []
    assert [p.name for p in (tmp_path / "arc").iterdir()] == ["D1.result.xml"]


async def test_a_marker_left_without_its_file_is_removed_so_a_new_file_is_not_taken_early(
    tmp_path: Path, context: AdapterContext
) -> None:
    fd = await opened(tmp_path, context, require_done_marker=True)
    out = tmp_path / "out"
    (out / "D1.result.xml.done").touch()  # a crash between archiving the file and removing this
    assert [r async for r in fd.results()] == []
    assert list(out.iterdir()) == []
    (out / "D1.result.xml").write_bytes(b"<tqjg><lsh>D1")  # the department is still writing
    assert [r async for r in fd.results()] == []


def test_stability_needs_size_and_mtime_unchanged_for_the_whole_period() -> None:
    now = [100.0]
    gate = StabilityGate(2.0, clock=lambda: now[0])

    def look(size: int, mtime: float) -> bool:
        return bool(gate.ready([FileInfo("D1.result.xml", size, mtime)]))

    assert not look(10, 1.0)  # first sight
    now[0] = 101.0
    assert not look(10, 1.0)  # unchanged, but not for long enough
    now[0] = 102.5
    assert not look(20, 1.0)  # grew: start again
    now[0] = 104.0
    assert not look(20, 2.0)  # same size, rewritten (mtime moved): start again
    now[0] = 105.9
    assert not look(20, 2.0)
    now[0] = 106.0
    assert look(20, 2.0)


async def test_pickup_waits_for_a_stable_file_through_the_adapter(tmp_path: Path, context: AdapterContext) -> None:
    now = [0.0]
    fd = FileDropAdapter("hpf.files", settings(tmp_path, stable_seconds=1), context, clock=lambda: now[0])
    await fd.open()
    (tmp_path / "out" / "D1.result.xml").write_bytes(result_xml("D1"))
    assert [r async for r in fd.results()] == []
    now[0] = 1.0
    assert [r.delivery_id async for r in fd.results()] == ["D1"]


@pytest.mark.parametrize(
    ("data", "encoding", "expected"),
    [
        (b"\xef\xbb\xbf" + result_xml("D1", encoding="utf-8"), "utf-8", "D1"),
        (b"\xef\xbb\xbf" + result_xml("D1", encoding="utf-8"), "gbk", "D1"),  # a BOM means UTF-8
        (result_xml("D1", encoding="gb18030").replace(b"D1", "D1𠮷".encode("gb18030")), "gbk", "D1𠮷"),
        (b'<?xml version="1.0" encoding="GB2312"?><tqjg><lsh>D1</lsh></tqjg>', "gbk", "D1"),
        (b'<?xml version="1.0" encoding="us-ascii"?><tqjg><lsh>D1</lsh></tqjg>', "gbk", "D1"),
    ],
)
async def test_results_are_decoded_by_the_endpoint_encoding(
    tmp_path: Path, context: AdapterContext, data: bytes, encoding: str, expected: str
) -> None:
    fd = await opened(tmp_path, context, encoding=encoding)
    (tmp_path / "out" / "D1.result.xml").write_bytes(data)
    [raw] = [r async for r in fd.results()]
    assert raw.body["tqjg"]["lsh"] == expected


@pytest.mark.parametrize(
    ("data", "encoding", "reason"),
    [
        (result_xml("D1", encoding="utf-8").replace(b"D1", NAME.encode("utf-8")), "gbk", "encoding_mismatch"),
        (result_xml("D1", encoding="gbk").replace(b"D1", NAME.encode("gbk")), "utf-8", "encoding_mismatch"),
        (b"<tqjg><lsh>" + NAME.encode("gbk") + b"</lsh></tqjg>", "utf-8", "encoding"),
    ],
)
async def test_a_result_in_another_encoding_than_the_endpoints_is_set_aside_not_misread(
    tmp_path: Path, context: AdapterContext, data: bytes, encoding: str, reason: str
) -> None:
    fd = await opened(tmp_path, context, encoding=encoding)
    (tmp_path / "out" / "D1.result.xml").write_bytes(data)
    [raw] = [r async for r in fd.results()]
    assert raw.body is None and raw.source == f"D1.result.xml: unreadable ({reason})"
    assert (tmp_path / "err" / "D1.result.xml").exists()


async def test_csv_results_are_read_from_the_header_and_first_row(tmp_path: Path, context: AdapterContext) -> None:
    fd = await opened(tmp_path, context, format="csv", encoding="utf-8-sig")
    out = tmp_path / "out"
    (out / "D1.result.csv").write_bytes('\ufefftqjg.lsh,tqjg.jgdm,tqjg.jgsm\r\nD1,01,"不符合,条件"\r\n'.encode())
    (out / "D2.result.csv").write_bytes(b"tqjg.lsh,tqjg.jgdm\r\nD2,00\r\nD3,00\r\n")
    (out / "D4.result.csv").write_bytes(b"tqjg.lsh,tqjg.jgdm\r\n")
    results = {r.source: r.body async for r in fd.results()}
    assert results["D1.result.csv"] == {"tqjg": {"lsh": "D1", "jgdm": "01", "jgsm": "不符合,条件"}}
    assert results["D2.result.csv: unreadable (csv_rows)"] is None  # several results: never drop one
    assert results["D4.result.csv: unreadable (csv_rows)"] is None
    assert sorted(p.name for p in (tmp_path / "err").iterdir()) == ["D2.result.csv", "D4.result.csv"]


async def test_a_result_larger_than_allowed_is_set_aside_unread(tmp_path: Path, context: AdapterContext) -> None:
    fd = await opened(tmp_path, context, max_result_bytes=100)
    (tmp_path / "out" / "D1.result.xml").write_bytes(b"<tqjg>" + b" " * 200 + b"</tqjg>")
    [raw] = [r async for r in fd.results()]
    assert raw.body is None and raw.source.endswith("(too_large)")


# --- the local store ---------------------------------------------------------------------


async def test_local_rename_never_replaces_and_reports_a_vanished_source(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    for d in ("a", "b"):
        await store.mkdir(d)
    (tmp_path / "a" / "x").write_bytes(b"new")
    (tmp_path / "b" / "x").write_bytes(b"old")
    assert await store.rename("a", "x", "b", "x") is RenameOutcome.TARGET_EXISTS
    assert (tmp_path / "b" / "x").read_bytes() == b"old" and (tmp_path / "a" / "x").exists()
    assert await store.rename("a", "x", "b", "y") is RenameOutcome.DONE
    assert await store.rename("a", "x", "b", "z") is RenameOutcome.SOURCE_GONE


async def test_local_store_refuses_names_with_path_parts(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    for name in ("../x", "a/b", "..", "a\\b", "a\0b"):
        with pytest.raises(PermanentError):
            await store.write_atomic(".", name, b"")
    assert names(tmp_path) == []


@pytest.mark.parametrize(
    ("exc", "kind"),
    [(PermissionError(errno.EACCES, "x"), PermanentError), (OSError(errno.EROFS, "x"), PermanentError),
     (OSError(errno.ENOSPC, "x"), TransientError), (OSError(errno.EIO, "x"), TransientError),
     (NotADirectoryError(errno.ENOTDIR, "x"), TransientError)],
)
def test_local_errors_are_classified_once(exc: OSError, kind: type) -> None:
    mapped = map_os_error(exc, "write a file")
    assert type(mapped) is kind and "write a file" in mapped.detail


async def test_an_unwritable_inbox_is_an_adapter_error_not_an_os_error(tmp_path: Path, context: AdapterContext) -> None:
    fd = await opened(tmp_path, context)
    (tmp_path / "in").rmdir()
    (tmp_path / "in").write_bytes(b"")  # a file where the folder should be
    with pytest.raises(TransientError, match="hpf.files: cannot write a file"):
        await fd.call(msg({"lsh": "D1"}), 2)


# --- restarts ----------------------------------------------------------------------------


async def test_a_result_applied_but_not_archived_before_a_crash_is_archived_after_restart_and_applied_once(
    tmp_path: Path, context: AdapterContext
) -> None:
    """The real intake and an embedded store: pass 1 applies the file and "crashes" before
    acknowledging it; a new adapter (the restarted process) finds it again, the store sees
    a duplicate, and the file is archived."""
    from gateway.audit import AuditTrail
    from gateway.config import load_config
    from gateway.departments import DepartmentRuntime
    from gateway.intake import Intake, IntakeOutcome
    from gateway.metrics import Metrics
    from gateway.store.models import NewApplication, NewItem
    from gateway.store.sql import open_store

    delivery = "D0123456789ABCDEF0123456789ABCDE"
    item = NewItem("provident_fund_withdrawal", "hpf", "optional", "accepted", False, delivery)
    store = open_store(f"sqlite:///{tmp_path / 'gateway.db'}", tmp_path)
    await store.open()
    try:
        await store.create_application(NewApplication("A-1", "fp", "retire_normal", {}, {}, None, [item]))
        metrics = Metrics()
        hpf = load_config().departments["hpf"]
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / f"{delivery}.result.xml").write_bytes(result_xml(delivery))

        before_crash = await opened(tmp_path, context)
        [raw] = [r async for r in before_crash.results()]
        intake = Intake(store, {"hpf": DepartmentRuntime(hpf, {"files": before_crash})}, metrics, AuditTrail(store))
        assert await intake.accept("hpf", raw.body, "file", raw.delivery_id) is IntakeOutcome.APPLIED
        await before_crash.close()  # ... and the process dies before acknowledge()

        after_restart = await opened(tmp_path, context)
        intake = Intake(store, {"hpf": DepartmentRuntime(hpf, {"files": after_restart})}, metrics, AuditTrail(store))
        await intake.collect_once()  # one pickup pass, as collect_files() runs forever

        assert list((tmp_path / "out").iterdir()) == []
        assert [p.name for p in (tmp_path / "arc").iterdir()] == [f"{delivery}.result.xml"]
        counted = {
            outcome: metrics.registry.get_sample_value(
                "gateway_department_results_total", {"department": "hpf", "channel": "file", "outcome": outcome}
            )
            for outcome in ("applied", "duplicate")
        }
        assert counted == {"applied": 1.0, "duplicate": 1.0}
        stored = await store.get_application("A-1")
        assert stored is not None and [i["status"] for i in stored.items] == ["approved"]
    finally:
        await store.close()


# --- against the sandbox exchange ---------------------------------------------------------


@pytest.mark.parametrize(
    "files", [{"fmt": "xml", "encoding": "gbk"}, {"fmt": "csv", "encoding": "utf-8", "done_marker": ".ok"}]
)
async def test_the_sandbox_exchange_answers_in_the_format_and_with_the_markers_it_is_told(
    tmp_path: Path, context: AdapterContext, files: dict[str, str]
) -> None:
    import asyncio

    from sandbox.filedrop import HpfFiles, run_hpf_exchange
    from sandbox.people import DEFAULT_PEOPLE, People
    from sandbox.state import SandboxState

    marker = files.get("done_marker", "")
    extra = {"format": files["fmt"], "encoding": files["encoding"], "done_marker": marker,
             "require_done_marker": bool(marker), "inbox": str(tmp_path / "inbox"),
             "outbox": str(tmp_path / "outbox")}
    state = SandboxState(People.load(DEFAULT_PEOPLE), context.session, decision_delay=0)
    exchange = asyncio.create_task(run_hpf_exchange(state, tmp_path, 0.01, HpfFiles(**files)))
    try:
        fd = await opened(tmp_path, context, **extra)
        await fd.call(msg({"lsh": "D-X-1", "zjhm": "000", "xingming": NAME, "tqyy": "退休提取,正常"}, "D-X-1"), 2)
        results = []
        for _ in range(300):  # a bound on polling the exchange, not a timing assertion
            results = [r async for r in fd.results()]
            if results:
                break
            await asyncio.sleep(0.01)
        assert [(r.delivery_id, r.body["tqjg"]["jgdm"]) for r in results] == [("D-X-1", "01")]
        await fd.acknowledge(results[0], ok=True)
    finally:
        exchange.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await exchange
    suffix = "." + files["fmt"]
    assert names(tmp_path / "done") == [f"D-X-1{suffix}"]
    assert names(tmp_path / "arc") == [f"D-X-1.result{suffix}"]
    assert names(tmp_path / "outbox") == [] and names(tmp_path / "inbox") == []
    assert state.ledger.cases["hpf"]["D-X-1"]["received"] == 1
