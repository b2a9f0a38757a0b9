"""The outbox's promises, on both stores: leases fence every change, budgets survive claims,
one notification job per application, late department answers win over a technical failure,
and the migrations and sealed columns behave."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.status import ItemStatus
from gateway.store.connectors import SCHEMA_VERSION, migrations
from gateway.store.jobs import insert_job
from gateway.store.models import Job, JobKind, JobState, LeaseLost
from gateway.store.sealing import Sealer
from gateway.store.sql import SqlStore, open_store
from tests.stores import opened
from tests.test_store_contract import application, result


async def _claim(store: SqlStore, item: str, owner: str = "w1", lease: float = 30) -> Job:
    return next(j for j in await store.claim_jobs(owner, 10, lease) if j.item == item)


async def test_a_worker_whose_lease_lapsed_cannot_finish_fail_or_release_the_job(store: SqlStore) -> None:
    await store.create_application(application())
    stale = await store.claim_jobs("w1", 10, 0.2)
    job = next(j for j in stale if j.item == "retire_normal")
    await asyncio.sleep(0.3)
    fresh = next(j for j in await store.claim_jobs("w2", 10, 30) if j.item == "retire_normal")
    assert fresh.id == job.id and fresh.lease != job.lease
    for change in (store.finish_job(job), store.record_attempt(job, "ok", None), store.dead_letter(job, "x")):
        with pytest.raises(LeaseLost):
            await change
    await store.release_job(job, 0)  # silently nothing: the lease is w2's
    assert await store.claim_jobs("w3", 10, 30) == []  # w2 still holds it
    assert await store.heartbeat([job, fresh], 30) == [job.id]
    stored = await store.get_application("A-1")
    assert stored is not None and {i["item"]: i["status"] for i in stored.items}["retire_normal"] == "planned"
    await store.finish_job(fresh)


async def test_a_job_in_doubt_stays_in_doubt_until_it_ends(store: SqlStore) -> None:
    await store.create_application(application())
    job = await _claim(store, "retire_normal")
    await store.mark_dispatched(job)  # about to send: a crash from here leaves it in doubt
    await store.release_job(job, 0, "shutting down")
    again = await _claim(store, "retire_normal", "w2")
    assert again.attempts == 0 and again.unknown_outcome is True
    await store.record_attempt(again, "UnknownOutcome", "hrss submit: no answer within the timeout")
    await store.record_attempt(again, "TransientError", "hrss status: HTTP 503")  # asking failed too
    await store.release_job(again, 0)
    third = await _claim(store, "retire_normal", "w3")
    assert third.attempts == 2 and third.unknown_outcome is True  # a later failure proves nothing
    await store.complete_job(third, result=result(ItemStatus.ACCEPTED), from_department=False)
    async with store.connector.read() as tx:
        row = await tx.fetchone("SELECT unknown_outcome, state FROM jobs WHERE id = ?", (third.id,))
    assert row is not None and (row["unknown_outcome"], row["state"]) == (0, "done")


async def test_the_retry_age_counts_from_the_first_attempt_and_not_while_held_back(store: SqlStore) -> None:
    await store.create_application(application())
    job = await _claim(store, "retire_normal")
    assert job.first_attempt_at is None  # queued long ago or not: no attempt, no age
    await store.record_attempt(job, "TransientError", "hrss: HTTP 503")
    await store.release_job(job, 0)
    again = await _claim(store, "retire_normal", "w2")
    assert again.first_attempt_at is not None
    await store.release_job(again, 0, restart_age=True)  # an open breaker held it back
    third = await _claim(store, "retire_normal", "w3")
    assert third.first_attempt_at is None and third.attempts == 1  # age restarts, the budget does not
    await store.release_job(third, 0, new_round=True)  # a new round of status polling
    fourth = await _claim(store, "retire_normal", "w4")
    assert fourth.attempts == 0


async def test_claim_skips_held_back_department_kinds_and_filters_kinds(store: SqlStore) -> None:
    await store.create_application(application())
    assert await store.claim_jobs("w", 10, 30, skip=[("hrss", "submit")]) == []
    assert await store.claim_jobs("w", 10, 30, kinds=[JobKind.NOTIFY]) == []
    assert len(await store.claim_jobs("w", 10, 30, skip=[("hrss", "poll")])) == 2


async def test_one_open_poll_per_item_even_if_a_follow_up_is_queued_twice(store: SqlStore) -> None:
    await store.create_application(application())
    job = await _claim(store, "sscard_apply")
    await store.complete_job(job, result=result(ItemStatus.ACCEPTED), from_department=False, then=(JobKind.POLL, 0))
    async with store.connector.write() as tx:  # a crash-and-retry duplicate of the same follow-up
        await insert_job(tx, "A-1", "sscard_apply", JobKind.POLL, "hrss", JobState.PENDING, 0)
    polls = [j for j in await store.claim_jobs("w", 10, 30) if j.kind == JobKind.POLL]
    assert len(polls) == 1


async def test_one_notify_job_per_application_is_re_armed_with_each_new_version(store: SqlStore) -> None:
    await store.create_application(application(callback="https://platform.example/cb"))
    await store.apply_result("A-1", "sscard_apply", result(ItemStatus.APPROVED), None)
    [notify] = [j for j in await store.claim_jobs("w", 10, 30) if j.kind == JobKind.NOTIFY]
    # While this notification is being sent, the state moves on twice.
    await store.apply_result("A-1", "retire_normal", result(ItemStatus.APPROVED), None)
    await store.apply_result("A-1", "provident_fund_withdrawal", result(ItemStatus.APPROVED), None)
    await store.finish_notify(notify, sent_version=1)
    [again] = [j for j in await store.claim_jobs("w", 10, 30) if j.kind == JobKind.NOTIFY]
    assert again.id == notify.id  # the same job goes round again, not a second one
    stored = await store.get_application("A-1")
    assert stored is not None and stored.notify_version == 3
    await store.finish_notify(again, sent_version=3)
    assert [j for j in await store.claim_jobs("w", 10, 30) if j.kind == JobKind.NOTIFY] == []


async def test_dead_letter_of_an_item_already_decided_parks_nothing(store: SqlStore) -> None:
    await store.create_application(application())
    job = await _claim(store, "sscard_apply")
    await store.apply_result("A-1", "sscard_apply", result(ItemStatus.APPROVED), None)  # a callback meanwhile
    assert await store.dead_letter(job, "hrss: HTTP 503") == []
    assert await store.dead_letters() == []
    stored = await store.get_application("A-1")
    assert stored is not None and {i["item"]: i["status"] for i in stored.items}["sscard_apply"] == "approved"


async def test_a_late_department_answer_overrides_a_technical_failure_and_reopens_dependents(store: SqlStore) -> None:
    await store.create_application(application())
    job = await _claim(store, "retire_normal")
    await store.dead_letter(job, "hrss: no answer within the timeout")
    stored = await store.get_application("A-1")
    assert stored is not None
    assert {i["item"]: i["status"] for i in stored.items}["provident_fund_withdrawal"] == "cancelled"
    # The department had the item after all and now says so.
    moved = await store.apply_result("A-1", "retire_normal", result(ItemStatus.APPROVED), None)
    assert ("retire_normal", "approved") in [(t.item, t.new) for t in moved]
    stored = await store.get_application("A-1")
    assert stored is not None
    items = {i["item"]: i["status"] for i in stored.items}
    assert items["retire_normal"] == "approved" and items["provident_fund_withdrawal"] == "planned"
    assert [j.item for j in await store.claim_jobs("w2", 10, 30)] == ["provident_fund_withdrawal"]
    [letter] = await store.dead_letters(include_replayed=True)
    assert letter["resolution"] == "department_result"
    # The gateway's own marks never override a failure: only the department's answer does.
    await store.create_application(application("A-2"))
    job2 = await _claim(store, "sscard_apply", "w3")
    await store.dead_letter(job2, "x")
    assert await store.mark_item("A-2", "sscard_apply", ItemStatus.ACCEPTED) == []


async def test_remembered_nonce_is_refused_the_second_time(store: SqlStore) -> None:
    assert await store.remember_nonce("platform:k:nonce-1", 300) is True
    assert await store.remember_nonce("platform:k:nonce-1", 300) is False


async def test_an_idempotency_key_left_processing_by_a_dead_process_is_taken_over(store: SqlStore) -> None:
    assert await store.idempotency_begin("k", "fp") is None
    assert (await store.idempotency_begin("k", "fp", processing_timeout=60))["state"] == "processing"
    await asyncio.sleep(0.05)
    assert await store.idempotency_begin("k", "fp", processing_timeout=0.01) is None


async def test_the_idempotency_record_is_finished_in_the_acceptance_transaction(store: SqlStore) -> None:
    assert await store.idempotency_begin("k", "fp") is None
    app = application()
    await store.create_application(replace(app, idempotency_key="k"))
    record = await store.idempotency_begin("k", "fp")
    assert record is not None and record["state"] == "done" and record["status"] == 202
    assert json.loads(record["response_json"]) == app.response


async def test_sealed_columns_hold_no_plain_text_and_read_back(url: str, tmp_path: Path) -> None:
    sealer = Sealer({"k1": os.urandom(16)}, "k1")
    app = replace(application(), request={"applicant": {"name": "测试封存", "id_number": "430102196303120719"}})
    store = open_store(url, tmp_path, sealer)
    await store.open()
    try:
        await store.create_application(app)
        raw_reply = '{"aac002": "430102196303120719"}'
        await store.apply_result("A-1", "retire_normal", result(ItemStatus.APPROVED), raw_reply)
        async with store.connector.read() as tx:
            row = await tx.fetchone("SELECT request_json FROM applications WHERE application_no = 'A-1'")
            raw = await tx.fetchone(
                "SELECT raw_result FROM items WHERE application_no = 'A-1' AND item = 'retire_normal'"
            )
        assert row is not None and raw is not None
        for text in (row["request_json"], raw["raw_result"]):
            assert text.startswith("sm4gcm:k1:") and "430102196303120719" not in text and "测试封存" not in text
        stored = await store.get_application("A-1")
        assert stored is not None and stored.request["applicant"]["name"] == "测试封存"
    finally:
        await store.close()
    # Without the key the store refuses to hand ciphertext on as data.
    plain = open_store(url, tmp_path)
    await plain.open()
    try:
        with pytest.raises(Exception, match="key id 'k1'"):
            await plain.get_application("A-1")
    finally:
        await plain.close()


def test_both_dialects_carry_the_same_numbered_migrations() -> None:
    assert [v for v, _ in migrations("sqlite")] == [v for v, _ in migrations("postgres")]
    assert SCHEMA_VERSION == migrations("postgres")[-1][0] >= 2


async def test_a_version_1_sqlite_store_is_migrated_at_start_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for statement in migrations("sqlite")[0][1].read_text().split(";"):
        lines = [ln.split("--", 1)[0] for ln in statement.splitlines()]
        if "".join(lines).strip():
            db.execute("\n".join(lines))
    db.execute("INSERT INTO schema_version VALUES (1, 0)")
    db.execute(
        "INSERT INTO applications VALUES ('OLD-1','fp','retire_normal','in_progress','{}','{}',NULL,0,0)"
    )
    db.commit()
    db.close()
    async with opened(f"sqlite:///{path}", tmp_path) as store:
        assert await store.ready() is True
        stored = await store.get_application("OLD-1")
        assert stored is not None and stored.notify_version == 0


async def test_a_sqlite_reader_never_sees_a_write_that_is_still_in_progress(tmp_path: Path) -> None:
    async with opened(f"sqlite:///{tmp_path / 'g.db'}", tmp_path) as store:
        seen: list[object] = []
        with pytest.raises(RuntimeError):
            async with store.connector.write() as tx:
                await tx.execute(
                    "INSERT INTO applications (application_no, fingerprint, initiating_item, status, request_json,"
                    " response_json, created_at, updated_at)"
                    " VALUES ('X','f','retire_normal','in_progress','{}','{}',0,0)"
                )
                seen.append(await store.get_application("X"))
                raise RuntimeError("roll back")
        assert seen == [None] and await store.get_application("X") is None


async def test_sqlite_refuses_to_run_without_wal_and_full_sync(tmp_path: Path) -> None:
    from gateway.store.connectors import StoreError
    from gateway.store.sqlite import SqliteConnector

    connector = SqliteConnector(Path(":memory:"))  # an in-memory database cannot keep a WAL
    with pytest.raises(StoreError, match="WAL"):
        await connector.open()
    await connector.close()


async def test_reseal_moves_every_sealed_value_to_the_active_key_and_keeps_the_data(url: str, tmp_path: Path) -> None:
    old, new = os.urandom(16), os.urandom(16)
    before = open_store(url, tmp_path, Sealer({"k1": old}, "k1"))
    await before.open()
    try:
        for n in range(5):
            app = replace(application(f"R-{n}"), request={"applicant": {"name": f"轮换{n}"}})
            await before.create_application(app)
            await before.apply_result(f"R-{n}", "retire_normal", result(ItemStatus.APPROVED), json.dumps({"n": n}))
    finally:
        await before.close()
    after = open_store(url, tmp_path, Sealer({"k1": old, "k2": new}, "k2"))
    await after.open()
    try:
        assert await after.reseal(batch=2) == {"applications": 5, "items": 5}
        assert await after.reseal(batch=2) == {"applications": 0, "items": 0}  # nothing left to do
        async with after.connector.read() as tx:
            values = [r["v"] for r in await tx.fetchall("SELECT request_json AS v FROM applications")]
            raw = await tx.fetchall("SELECT raw_result AS v FROM items WHERE raw_result IS NOT NULL")
            values += [r["v"] for r in raw]
        assert values and all(v.startswith("sm4gcm:k2:") for v in values)
    finally:
        await after.close()
    only_new = open_store(url, tmp_path, Sealer({"k2": new}, "k2"))  # the old key can now be retired
    await only_new.open()
    try:
        stored = await only_new.get_application("R-3")
        assert stored is not None and stored.request["applicant"]["name"] == "轮换3"
    finally:
        await only_new.close()


async def test_a_write_cancelled_mid_transaction_does_not_wedge_the_store(tmp_path: Path) -> None:
    async with opened(f"sqlite:///{tmp_path / 'c.db'}", tmp_path) as store:
        await store.create_application(application())

        async def slow_write() -> None:
            async with store.connector.write() as tx:
                await tx.execute("UPDATE applications SET updated_at = 1 WHERE application_no = 'A-1'")
                await asyncio.sleep(10)  # cancelled here, inside the transaction

        task = asyncio.create_task(slow_write())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Both kinds of write go on working: an ordinary one and a grouped acceptance.
        assert await store.remember_nonce("after-cancel", 300) is True
        assert await store.create_application(application("A-2")) is True


async def test_a_late_approval_of_a_failed_initiating_item_reopens_the_application(store: SqlStore) -> None:
    await store.create_application(application())
    jobs = {j.item: j for j in await store.claim_jobs("w1", 10, 30)}
    await store.complete_job(jobs["sscard_apply"], result=result(ItemStatus.APPROVED))
    await store.dead_letter(jobs["retire_normal"], "hrss: no answer")  # completes: failed and cancelled
    stored = await store.get_application("A-1")
    assert stored is not None and stored.status == "completed"
    await store.apply_result("A-1", "retire_normal", result(ItemStatus.APPROVED), None)
    stored = await store.get_application("A-1")
    assert stored is not None and stored.status == "in_progress"  # its dependants are on their way again


async def test_a_dead_notification_is_tried_again_when_the_next_item_becomes_final(store: SqlStore) -> None:
    await store.create_application(application(callback="https://platform.example/cb"))
    await store.apply_result("A-1", "sscard_apply", result(ItemStatus.APPROVED), None)
    [notify] = [j for j in await store.claim_jobs("w", 10, 30) if j.kind == JobKind.NOTIFY]
    await store.dead_letter(notify, "platform callback: HTTP 400")
    await store.apply_result("A-1", "retire_normal", result(ItemStatus.APPROVED), None)
    assert [j.id for j in await store.claim_jobs("w2", 10, 30) if j.kind == JobKind.NOTIFY] == [notify.id]
    letters = await store.dead_letters(include_replayed=True)
    assert [d["resolution"] for d in letters if d["job_id"] == notify.id] == ["superseded"]


def test_only_the_stores_own_errors_count_as_store_errors() -> None:
    import sqlite3 as sqlite

    from gateway.notify import PrivateAddress
    from gateway.store.connectors import StoreError, is_store_error
    from gateway.store.sealing import SealingError

    for error in (StoreError("x"), SealingError("x"), sqlite.OperationalError("locked"), ConnectionRefusedError()):
        assert is_store_error(error), error
    for error in (TimeoutError(), FileNotFoundError("x"), PrivateAddress("x"), ValueError("x")):
        assert not is_store_error(error), error
