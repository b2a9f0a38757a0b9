"""The audit trail: every request, department call, result and admin action is on record,
with no personal data; changing, deleting, reordering or truncating records is detected;
and the gateway refuses new applications it could not record."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.audit import verify
from gateway.config import GatewayConfig
from gateway.demo import running_gateway, submit_and_follow
from gateway.store.audit import AuditRecord
from gateway.store.sql import SqlStore
from sandbox.people import DEFAULT_PEOPLE
from tests.conftest import ROOT, Running, demo_application
from tests.pii import leaks
from tests.stores import KINDS, fresh_url, opened
from tests.test_resilience import ADMIN, fast


@pytest.fixture(params=KINDS)
async def audited(
    request: pytest.FixtureRequest, config: GatewayConfig, tmp_path: Path
) -> AsyncIterator[tuple[Running, str]]:
    async with fresh_url(request.param, tmp_path) as url:
        cfg = replace(fast(config), database_url=url)
        async with running_gateway(cfg, tmp_path, DEFAULT_PEOPLE, decision_delay=0.02, auth=True) as (b, sb, c):
            async with aiohttp.ClientSession() as http:
                yield Running(b, sb, c, http), c.database_url


async def test_one_application_leaves_a_complete_record_without_personal_data(
    audited: tuple[Running, str], tmp_path: Path
) -> None:
    gw, url = audited
    app = demo_application("DEMO-001")
    [result] = await submit_and_follow(gw.base_url, [app], timeout=20, signer=gw.signer)
    assert result["final"]["status"] == "completed"
    await asyncio.sleep(0.2)  # the batch writer's interval
    async with opened(url, tmp_path) as store:
        records = await store.audit_for(app["application_no"])
        everything = await store.audit_records(0, 100_000)
        checked = await verify(store, None)
    events = {r["event"] for r in records}
    assert {"application_accepted", "department_query", "department_call", "department_result"} <= events
    inbound = [r for r in everything if r["event"] == "inbound_request"]
    assert any(r["actor"].startswith("platform:") and json.loads(r["detail"])["status"] == 202 for r in inbound)
    calls = [r for r in records if r["event"] == "department_call"]
    assert all(r["delivery_id"].startswith("D") for r in calls)
    assert not leaks("\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in everything))
    assert checked.ok and checked.records == len(everything)


async def _chain(store: SqlStore, n: int = 6) -> None:
    await store.audit_append([AuditRecord(float(i), "gateway", "department_call", "ok", f"A-{i}") for i in range(n)])


async def test_verify_names_a_changed_a_deleted_and_a_moved_record(tmp_path: Path) -> None:
    async with opened(f"sqlite:///{tmp_path / 'a.db'}", tmp_path) as store:
        await _chain(store)
        assert (await verify(store, None)).ok
        async with store.connector.write() as tx:
            await tx.execute("UPDATE audit_log SET outcome = 'TransientError' WHERE seq = 3")
        result = await verify(store, None)
        assert not result.ok and "record 3 was altered" in result.problem
        async with store.connector.write() as tx:
            await tx.execute("UPDATE audit_log SET outcome = 'ok' WHERE seq = 3")
            await tx.execute("DELETE FROM audit_log WHERE seq = 4")
        result = await verify(store, None)
        assert not result.ok and "record 4 is missing" in result.problem
    async with opened(f"sqlite:///{tmp_path / 'b.db'}", tmp_path) as store:
        await _chain(store)
        async with store.connector.write() as tx:  # swap records 2 and 5, keeping the numbers contiguous
            await tx.execute("UPDATE audit_log SET seq = -2 WHERE seq = 2")
            await tx.execute("UPDATE audit_log SET seq = 2 WHERE seq = 5")
            await tx.execute("UPDATE audit_log SET seq = 5 WHERE seq = -2")
        result = await verify(store, None)
        assert not result.ok and "record 2 does not follow record 1" in result.problem


async def test_a_truncated_trail_is_caught_against_an_exported_head(tmp_path: Path) -> None:
    async with opened(f"sqlite:///{tmp_path / 'a.db'}", tmp_path) as store:
        await _chain(store)
        head = await store.audit_records_tail()
        assert head is not None
        exported = f"{head['seq']}:{head['hash']}"
        assert (await verify(store, None, exported)).ok
        async with store.connector.write() as tx:
            await tx.execute("DELETE FROM audit_log WHERE seq >= 5")
        assert (await verify(store, None)).ok  # a shorter chain is still a chain...
        result = await verify(store, None, exported)
        assert not result.ok and "before the expected head" in result.problem  # ...but not the one exported


async def test_with_an_audit_key_the_chain_cannot_be_recomputed_without_it(tmp_path: Path) -> None:
    from gateway.store.sql import open_store

    store = open_store(f"sqlite:///{tmp_path / 'k.db'}", tmp_path, audit_key=b"audit-key-for-tests")
    await store.open()
    try:
        await _chain(store)
        assert (await verify(store, b"audit-key-for-tests")).ok
        result = await verify(store, None)  # plain SM3 (what someone without the key would compute)
        assert not result.ok and "record 1 was altered" in result.problem
    finally:
        await store.close()


def test_gateway_audit_verify_exits_non_zero_on_a_broken_chain(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"

    async def prepare() -> None:
        async with opened(f"sqlite:///{db}", tmp_path) as store:
            await _chain(store)

    asyncio.run(prepare())

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", "audit", *args],
            cwd=ROOT, env=os.environ | {"GATEWAY_DATABASE_URL": f"sqlite:///{db}"},
            capture_output=True, text=True, timeout=30,
        )

    done = cli("verify")
    assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True
    import sqlite3

    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit_log SET actor = 'someone' WHERE seq = 2")
    conn.commit()
    conn.close()
    done = cli("verify")
    assert done.returncode == 1 and "record 2 was altered" in done.stderr


async def _block_audit(url: str, tmp_path: Path, on: bool) -> None:
    async with opened(url, tmp_path) as store, store.connector.write() as tx:
        if store.dialect == "sqlite":
            await tx.execute(
                "CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                if on else "DROP TRIGGER audit_blocked"
            )
        elif on:
            await tx.execute("CREATE FUNCTION audit_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION"
                             " 'disk full'; END $$ LANGUAGE plpgsql")
            await tx.execute("CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_log FOR EACH ROW"
                             " EXECUTE FUNCTION audit_refuse()")
        else:
            await tx.execute("DROP TRIGGER audit_blocked ON audit_log")


async def test_when_the_trail_cannot_be_written_applications_get_503_and_nothing_is_stored(
    audited: tuple[Running, str], tmp_path: Path
) -> None:
    gw, url = audited
    await _block_audit(url, tmp_path, on=True)
    first = demo_application("DEMO-003")
    status, body, headers = await gw.post("/api/v1/joint-applications", first)
    assert status == 503 and body["type"].rsplit("/", 1)[-1] in ("store-unavailable", "audit-unavailable")
    assert headers["Retry-After"]
    assert (await gw.get(f"/api/v1/joint-applications/{first['application_no']}"))[0] == 404
    await asyncio.sleep(0.3)  # the batch writer has met the refusal too
    status, body, _ = await gw.post("/api/v1/joint-applications", demo_application("DEMO-001"))
    assert status == 503 and body["type"].endswith("audit-unavailable")
    assert (await gw.get("/readyz"))[0] == 503
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with gw.http.post(gw.base_url + "/admin/v1/departments/nhsa/disable", headers=admin) as resp:
        assert resp.status == 503  # no admin change goes unrecorded either
    await _block_audit(url, tmp_path, on=False)
    for _ in range(50):  # the writer catches up; then the gateway accepts again
        if (await gw.get("/readyz"))[0] == 200:
            break
        await asyncio.sleep(0.1)
    assert (await gw.post("/api/v1/joint-applications", first))[0] == 202
    await asyncio.sleep(0.2)
    async with opened(url, tmp_path) as store:
        assert (await verify(store, None)).ok  # nothing queued meanwhile was lost or misordered


async def test_admin_actions_are_recorded_with_their_operator(audited: tuple[Running, str], tmp_path: Path) -> None:
    gw, url = audited
    headers = {"Authorization": f"Bearer {ADMIN}", "X-Operator": "li.ops"}
    async with gw.http.post(gw.base_url + "/admin/v1/departments/nhsa/disable", headers=headers) as resp:
        assert resp.status == 200
    async with opened(url, tmp_path) as store:
        rows: list[dict[str, Any]] = [r for r in await store.audit_records(0, 10_000) if r["event"] == "admin_action"]
    [row] = rows
    assert row["actor"] == "admin:li.ops" and json.loads(row["detail"])["action"] == "disable_department"


async def test_an_unauthenticated_admin_caller_cannot_write_its_own_name_into_the_trail(
    audited: tuple[Running, str], tmp_path: Path
) -> None:
    gw, url = audited
    async with gw.http.post(gw.base_url + "/admin/v1/departments/nhsa/disable",
                            headers={"X-Operator": "someone.else"}) as resp:
        assert resp.status == 401
    await asyncio.sleep(0.2)
    async with opened(url, tmp_path) as store:
        rows = [r for r in await store.audit_records(0, 10_000) if r["event"] == "inbound_request"]
    admin = [r for r in rows if json.loads(r["detail"])["route"].startswith("/admin/")]
    assert admin and all(r["actor"] == "admin:unauthenticated" for r in admin)
