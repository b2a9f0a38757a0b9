"""Mapping files: every shipped one loads; a bad one is refused with file, line and rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ROOT, load_config
from gateway.mapping import MappingError, load_mapping
from gateway.status import ItemStatus

MAPPINGS = sorted((ROOT / "mappings").glob("*.toml"))


@pytest.mark.parametrize("path", MAPPINGS, ids=lambda p: p.name)
def test_shipped_mapping_loads(path: Path) -> None:
    mapping = load_mapping(path)
    assert mapping.department == path.name.split(".")[0]


def test_default_configuration_loads_with_every_department() -> None:
    assert set(load_config().departments) == {"police", "hrss", "nhsa", "health", "justice", "hpf"}


def test_hrss_submission_translates_fields_codes_and_dates() -> None:
    mapping = load_mapping(ROOT / "mappings" / "hrss.v1.toml")
    context = {
        "application": {"application_no": "A-1", "submitted_at": "2026-12-03T10:00:00+08:00",
                        "early_reason": "illness"},
        "applicant": {"id_number": "X", "name": "测试", "gender": "female", "birth_date": "1970-03-05"},
        "materials": {},
        "item": "retire_early",
        "delivery_id": "D1",
        "callback_url": "http://gw/cb",
    }
    body = mapping.build("submit", context, "D1").body
    assert body["aac004"] == "2" and body["aac006"] == "19700305" and body["sxbm"] == "002014006001"
    assert body["sqsj"] == "20261203100000" and body["tqyy"] == "2" and body["lsh"] == "D1"


def test_result_codes_map_to_unified_statuses_and_unknown_codes_are_flagged() -> None:
    mapping = load_mapping(ROOT / "mappings" / "hrss.v1.toml")
    ok = mapping.read_result({"lsh": "D1", "bjjg": "不予受理", "bjyj": "材料不全"})
    assert (ok.status, ok.message, ok.delivery_id, ok.known) == (ItemStatus.REJECTED, "材料不全", "D1", True)
    odd = mapping.read_result({"lsh": "D1", "bjjg": "挂起"})
    assert odd.status == ItemStatus.ACCEPTED and not odd.known


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('department = "x"\nversion = "v1"\n[operations.query]\nendpoint = "a"\n[operations.query.request]\n'
         'f = { path = "a", rot13 = true }\n', ":6: f: unknown transform"),
        ('department = "x"\nversion = "v1"\n[operations.query]\nendpoint = "a"\n[operations.query.request]\n'
         'f = { path = "a", code = "nope" }\n', ":6: f: code table 'nope'"),
        ('department = "x"\nversion = "v1"\n[operations.submit]\nendpoint = "a"\n', ":3: result:"),
        ('department = "x"\n', ":1: version: required"),
        ('department = "x"\nversion = "v1"\n[results.status]\n"A" = "done"\n', ':4: A: unknown unified status'),
        # A misspelt reply or results rule is an error, not a rule silently ignored.
        ('department = "x"\nversion = "v1"\n[operations.query]\nendpoint = "a"\n[operations.query.reply]\n'
         'ok_pth = "code"\n', ":6: ok_pth: not a reply rule"),
        ('department = "x"\nversion = "v1"\n[results]\nstatus_pth = "x"\n', ":4: status_pth: not a results rule"),
        ('department = "x"\nversion = "v1"\n[operations.query]\nendpoint = "a"\n[operations.query.reply.fields]\n'
         'urban = { path = "u", equal = "1" }\n', ":6: urban: a reply field is"),
        # concat takes no transform (it would be dropped without a word).
        ('department = "x"\nversion = "v1"\n[operations.query]\nendpoint = "a"\n[operations.query.request]\n'
         'f = { concat = ["a", "b"], upper = true }\n', ":6: f: concat takes only sep"),
        # The same key under two operations: the error points at the one that is wrong.
        ('department = "x"\nversion = "v1"\n[operations.query]\nendpoint = "a"\n[operations.query.request]\n'
         'zjhm = "applicant.id_number"\n[operations.submit]\nendpoint = "a"\nresult = "sync"\n'
         '[operations.submit.request]\nzjhm = { path = "applicant.id_number", rot13 = true }\n',
         ":11: zjhm: unknown transform"),
    ],
)
def test_bad_mapping_is_refused_with_file_line_and_rule(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "x.v1.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert str(path) in str(info.value) and needle in str(info.value)


HPF_V2_CONTEXT = {
    "application": {"application_no": "A-2", "submitted_at": "2026-12-03T10:00:00+08:00",
                    "bank_card": {"number": "6222020000000000000"}},
    "applicant": {"id_number": "X", "name": "测试", "gender": "female", "birth_date": "1966-04-01",
                  "phone": "P", "provident_fund_center": "430000"},
    "materials": {},
    "item": "provident_fund_withdrawal",
    "delivery_id": "D2",
    "retirement_approval": "湘人社退〔2026〕1号",
}


def test_hpf_v2_submission_writes_the_new_field_names_with_standard_codes() -> None:
    body = load_mapping(ROOT / "mappings" / "hpf.v2.toml").build("submit", HPF_V2_CONTEXT, "D2").body
    assert list(body) == ["ywlsh", "bjbh", "tqyy", "zjlx", "zjhm", "xm", "xb", "csrq", "lxdh", "skzh", "skzhxg",
                          "gjjzxqh", "gjjzxmc", "txpzwh", "sqsj"]
    assert (body["ywlsh"], body["tqyy"], body["zjlx"], body["xb"]) == ("D2", "03", "111", "2")
    assert (body["csrq"], body["sqsj"]) == ("19660401", "2026-12-03 10:00:00")
    assert (body["skzhxg"], body["gjjzxqh"], body["gjjzxmc"]) == ("0", "430000", "湖南省")  # edited absent: 0
    edited = HPF_V2_CONTEXT | {"application": {**HPF_V2_CONTEXT["application"], "bank_card": {"edited": True}}}
    assert load_mapping(ROOT / "mappings" / "hpf.v2.toml").build("submit", edited, "D2").body["skzhxg"] == "1"


def test_hpf_v2_division_table_is_hunan_and_its_14_prefecture_level_divisions() -> None:
    divisions = load_mapping(ROOT / "mappings" / "hpf.v2.toml").tables["division"]
    prefectures = {f"43{n:02d}00" for n in range(1, 14)} | {"433100"}  # 长沙…娄底, 湘西州
    assert set(divisions) == {"430000"} | prefectures and len(prefectures) == 14
    assert (divisions["430000"], divisions["430100"]) == ("湖南省", "长沙市")
    assert divisions["433100"] == "湘西土家族苗族自治州"


def test_hpf_v2_reads_csv_result_rows_and_keeps_unknown_codes_waiting() -> None:
    mapping = load_mapping(ROOT / "mappings" / "hpf.v2.toml")
    rejected = mapping.read_result({"tqjg": {"lsh": "D2", "jgdm": "01", "jgsm": "账户余额为零"}})
    assert (rejected.status, rejected.reason_code, rejected.delivery_id) == (ItemStatus.REJECTED, "HPF_REJECTED", "D2")
    odd = mapping.read_result({"tqjg": {"lsh": "D2", "jgdm": "07"}})
    assert (odd.status, odd.reason_code, odd.known) == (ItemStatus.ACCEPTED, "HPF_UNKNOWN_CODE", False)


def test_transforms_apply_in_registry_order_so_a_looked_up_constant_is_written_as_default(tmp_path: Path) -> None:
    """docs/onboarding.md §2.2: ``code`` runs before ``const``, whatever the order written."""
    path = tmp_path / "x.v1.toml"
    path.write_text('department = "x"\nversion = "v1"\n[codes.t]\nk = "9"\n[operations.query]\nendpoint = "a"\n'
                    '[operations.query.request]\nas_const = { const = "k", code = "t" }\n'
                    'as_default = { default = "k", code = "t" }\n', encoding="utf-8")
    body = load_mapping(path).build("query", {}, "Q1").body
    assert body == {"as_const": "k", "as_default": "9"}


def test_a_value_missing_from_its_code_table_stops_the_message_naming_field_and_table() -> None:
    from adapters.base import PermanentError

    context = HPF_V2_CONTEXT | {"applicant": {**HPF_V2_CONTEXT["applicant"], "gender": "unknown"}}
    with pytest.raises(PermanentError) as info:
        load_mapping(ROOT / "mappings" / "hpf.v2.toml").build("submit", context, "D2")
    assert "hpf.v2.toml: field xb: code table 'gender'" in info.value.detail
