"""The scanner itself can fail, and the masking in logs, metrics and refusals holds."""

from __future__ import annotations

import io
import json

import structlog

from gateway.logs import configure_logging
from tests.conftest import Running, demo_application
from tests.pii import leaks, personal_values


def test_scanner_finds_an_unmasked_id_number_and_reports_it_masked() -> None:
    value = next(v for v in personal_values() if len(v) == 18)
    found = leaks(f"log line with {value} inside")
    assert found and value not in found[0]


def test_log_lines_mask_id_numbers_phones_cards_and_names() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream)
    app = demo_application("DEMO-001")
    structlog.get_logger("t").info(
        "probe",
        name=app["applicant"]["name"],
        detail=f"id {app['applicant']['id_number']} tel {app['applicant']['phone']}",
        card=app["bank_card"]["number"],
        address=app["applicant"]["address"],
    )
    line = stream.getvalue()
    assert json.loads(line)["event"] == "probe"
    assert leaks(line) == []
    assert "\\u" not in line  # Chinese stays readable


async def test_metrics_and_refusals_carry_no_personal_data(gw: Running) -> None:
    app = demo_application("DEMO-010")  # refused at pre-check
    status, body, _ = await gw.post("/api/v1/joint-applications", app)
    assert status == 422 and leaks(json.dumps(body, ensure_ascii=False)) == []
    await gw.post("/api/v1/joint-applications", demo_application("DEMO-001"))
    async with gw.http.get(gw.base_url + "/metrics") as resp:
        assert leaks(await resp.text()) == []


def test_person_token_links_records_only_with_the_key() -> None:
    from gateway.logs import person_token

    a = person_token("430102196303120719", b"k1")
    assert a == person_token("430102196303120719", b"k1")
    assert a != person_token("430102196303120719", b"k2")
    assert a != person_token("430103196908080736", b"k1")
    assert "0719" not in a and a.startswith("p_")
