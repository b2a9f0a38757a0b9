"""One contract, two stores: SQLite (embedded) and PostgreSQL (replicas) pass the same tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.mapping import ItemResult
from gateway.status import ItemStatus
from gateway.store.models import JobKind, NewApplication, NewItem
from gateway.store.sql import SqlStore
from tests.stores import opened


def application(number: str = "A-1", callback: str | None = None) -> NewApplication:
    items = [
        NewItem("retire_normal", "hrss", "initiating", "planned", False, f"D-{number}-1"),
        NewItem("sscard_apply", "hrss", "optional", "planned", False, f"D-{number}-2"),
        NewItem("provident_fund_withdrawal", "hpf", "optional", "planned", True, f"D-{number}-3"),
        NewItem("one_child_parent_reward", "health", "optional", "skipped", True, None, "H_FAIL", "不符合"),
    ]
    return NewApplication(number, "fp", "retire_normal", {"application_no": number}, {"ok": True}, callback, items)


def result(status: ItemStatus, message: str = "") -> ItemResult:
    return ItemResult(status, f"X_{status.name}", message)


async def test_application_number_is_created_once(store: SqlStore) -> None:
    assert await store.create_application(application()) is True
    assert await store.create_application(application()) is False
    stored = await store.get_application("A-1")
    assert stored is not None and [i["item"] for i in stored.items][:2] == ["retire_normal", "sscard_apply"]
    found = await store.find_delivery("D-A-1-3")
    assert found is not None and (found.application_no, found.item, found.department) == (
        "A-1", "provident_fund_withdrawal", "hpf"
    )


async def test_dependent_job_waits_until_initiating_item_is_approved(store: SqlStore) -> None:
    await store.create_application(application())
    first = await store.claim_jobs("w1", 10, 30)
    assert sorted(j.item for j in first) == ["retire_normal", "sscard_apply"]
    await store.apply_result("A-1", "retire_normal", result(ItemStatus.APPROVED), "{}")
    second = await store.claim_jobs("w1", 10, 30)
    assert [j.item for j in second] == ["provident_fund_withdrawal"]


async def test_rejected_initiating_item_cancels_dependents_and_their_jobs(store: SqlStore) -> None:
    await store.create_application(application())
    moved = await store.apply_result("A-1", "retire_normal", result(ItemStatus.REJECTED, "不符合"), None)
    assert ("provident_fund_withdrawal", ItemStatus.CANCELLED) in [(t.item, t.new) for t in moved]
    stored = await store.get_application("A-1")
    assert stored is not None
    by_item = {i["item"]: i for i in stored.items}
    assert by_item["provident_fund_withdrawal"]["reason_code"] == "PREREQUISITE_NOT_APPROVED"
    assert all(j.item != "provident_fund_withdrawal" for j in await store.claim_jobs("w", 10, 30))


async def test_a_leased_job_is_not_claimed_twice_until_its_lease_expires(store: SqlStore) -> None:
    await store.create_application(application())
    first = await store.claim_jobs("w1", 10, 0.3)
    assert len(first) == 2
    assert await store.claim_jobs("w2", 10, 30) == []
    await asyncio.sleep(0.4)  # w1 "crashed": its lease lapses
    again = await store.claim_jobs("w2", 10, 30)
    assert sorted(j.id for j in again) == sorted(j.id for j in first)


async def test_concurrent_claimers_on_two_connections_never_share_a_job(url: str, tmp_path: Path) -> None:
    async with opened(url, tmp_path) as a, opened(url, tmp_path) as b:
        for n in range(30):
            await a.create_application(application(f"A-{n}"))
        claimed: list[int] = []

        async def drain(store: SqlStore, owner: str) -> None:
            while jobs := await store.claim_jobs(owner, 3, 60):
                claimed.extend(j.id for j in jobs)

        await asyncio.gather(drain(a, "a"), drain(b, "b"), drain(a, "a2"), drain(b, "b2"))
        assert len(claimed) == 60 and len(set(claimed)) == 60


async def test_a_final_status_is_never_overwritten_and_status_never_moves_back(store: SqlStore) -> None:
    await store.create_application(application())
    await store.apply_result("A-1", "sscard_apply", result(ItemStatus.ACCEPTED), None)
    assert await store.mark_item("A-1", "sscard_apply", ItemStatus.DISPATCHED) == []
    await store.apply_result("A-1", "sscard_apply", result(ItemStatus.APPROVED), None)
    assert await store.apply_result("A-1", "sscard_apply", result(ItemStatus.REJECTED), None) == []
    stored = await store.get_application("A-1")
    assert stored is not None
    assert {i["item"]: i["status"] for i in stored.items}["sscard_apply"] == "approved"


async def test_application_completes_when_every_item_is_final_and_notifies(store: SqlStore) -> None:
    await store.create_application(application(callback="http://platform/cb"))
    await store.apply_result("A-1", "retire_normal", result(ItemStatus.APPROVED), None)
    await store.apply_result("A-1", "sscard_apply", result(ItemStatus.APPROVED), None)
    stored = await store.get_application("A-1")
    assert stored is not None and stored.status == "in_progress"
    await store.apply_result("A-1", "provident_fund_withdrawal", result(ItemStatus.APPROVED), None)
    stored = await store.get_application("A-1")
    assert stored is not None and stored.status == "completed"
    notify = [j for j in await store.claim_jobs("w", 20, 30) if j.kind == JobKind.NOTIFY]
    assert len(notify) == 1  # changes coalesce into one queued notification
    assert stored.notify_version == 3  # ...which carries the latest of three versions


async def test_dead_letter_fails_the_item_and_replay_requeues_it_with_dependents(store: SqlStore) -> None:
    await store.create_application(application())
    job = next(j for j in await store.claim_jobs("w", 10, 30) if j.item == "retire_normal")
    await store.record_attempt(job, "TransientError", "hrss: HTTP 503")
    await store.dead_letter(job, "hrss: HTTP 503")
    stored = await store.get_application("A-1")
    assert stored is not None
    by_item = {i["item"]: i["status"] for i in stored.items}
    assert by_item["retire_normal"] == "failed" and by_item["provident_fund_withdrawal"] == "cancelled"
    [dl] = await store.dead_letters()
    detail = await store.dead_letter_detail(dl["job_id"])
    assert detail is not None and detail["history"][0]["error"] == "hrss: HTTP 503"
    assert await store.replay_dead_letter(dl["job_id"]) is True
    assert await store.replay_dead_letter(dl["job_id"]) is False
    stored = await store.get_application("A-1")
    assert stored is not None
    assert {i["item"]: i["status"] for i in stored.items}["provident_fund_withdrawal"] == "planned"
    again = [j for j in await store.claim_jobs("w", 10, 30) if j.item == "retire_normal"]
    assert [j.id for j in again] == [job.id]


async def test_idempotency_key_lifecycle(store: SqlStore) -> None:
    assert await store.idempotency_begin("k1", "fp1") is None
    processing = await store.idempotency_begin("k1", "fp1")
    assert processing is not None and processing["state"] == "processing"
    await store.idempotency_finish("k1", 202, {"a": 1})
    done = await store.idempotency_begin("k1", "fp2")
    assert done is not None and done["fingerprint"] == "fp1" and done["status"] == 202
    await store.idempotency_abandon("k1")  # a finished answer is kept: abandon is for unfinished ones
    assert (await store.idempotency_begin("k1", "fp2") or {})["state"] == "done"
    assert await store.idempotency_begin("k2", "fp") is None
    await store.idempotency_abandon("k2")
    assert await store.idempotency_begin("k2", "fp") is None
    assert await store.idempotency_purge(-1) == 2


async def test_store_reports_ready_once_the_schema_is_applied(store: SqlStore) -> None:
    assert await store.ready() is True
