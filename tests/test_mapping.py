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
    ],
)
def test_bad_mapping_is_refused_with_file_line_and_rule(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "x.v1.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert str(path) in str(info.value) and needle in str(info.value)
