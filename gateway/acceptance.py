"""The one endpoint's flow: validate → de-duplicate → pre-check → plan → persist → 202.

Nothing is stored for a refused application; an accepted one is on disk with its whole
dispatch plan before the 202 leaves. A resubmitted ``application_no`` replays the first
answer and never creates a second case.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from adapters.context import REQUEST_ID
from gateway.audit import AuditTrail, AuditUnavailable
from gateway.config import GatewayConfig
from gateway.domain import materials as materials_rules
from gateway.domain import prechecks
from gateway.domain.items import ITEM_ORDER, EarlyReason, Item, department_of, depends_on_initiating
from gateway.domain.materials import MaterialSpec
from gateway.eligibility import Eligibility
from gateway.logs import person_token
from gateway.messages import delivery_id_for
from gateway.metrics import Metrics
from gateway.notify import callback_url_problem
from gateway.problems import Problem, validation_problem
from gateway.status import ItemStatus
from gateway.store.connectors import is_store_error
from gateway.store.models import NewApplication, NewItem
from gateway.store.sql import SqlStore
from gateway.validation import fingerprint, schema_errors, semantic_errors, submitted_date

log = structlog.get_logger("gateway.acceptance")


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _checks_json(evaluation: prechecks.Evaluation) -> list[dict[str, Any]]:
    return [c.to_json() for c in evaluation.checks]


class Acceptance:
    def __init__(
        self,
        config: GatewayConfig,
        store: SqlStore,
        eligibility: Eligibility,
        metrics: Metrics,
        clock: Callable[[], datetime],
        trail: AuditTrail,
    ) -> None:
        self._config = config
        self._store = store
        self._eligibility = eligibility
        self._metrics = metrics
        self._clock = clock
        self._trail = trail

    def _validate(self, body: Any) -> None:
        errors = schema_errors(body)
        if not errors:
            errors = semantic_errors(
                body, now=self._clock(), allow_any_submitted_at=self._config.allow_any_submitted_at,
                max_attachment_bytes=self._config.max_attachment_bytes,
            )
            url = body.get("callback_url")
            refusal = callback_url_problem(url, self._config.notify) if url else None
            if refusal:
                errors.append({"pointer": "/callback_url", "detail": refusal})
        if errors:
            self._metrics.applications.labels("invalid").inc()
            raise validation_problem(errors)

    async def precheck(self, body: Any) -> Answer:
        """POST /api/v1/prechecks: the same judgement, nothing stored or sent."""
        self._validate(body)
        evaluation = await self._eligibility.evaluate(body, submitted_date(body))
        # The checklist for what would be accepted: the person uploads it next (seed 五(一)).
        specs = self._checklist(body, evaluation)
        return Answer(200, self._evaluation_body(body, evaluation) | {"materials": [_material_json(m) for m in specs]})

    def _checklist(self, body: dict[str, Any], evaluation: prechecks.Evaluation) -> Sequence[MaterialSpec]:
        return materials_rules.checklist(
            Item(body["initiating_item"]),
            EarlyReason(body["early_retirement_reason"]) if body.get("early_retirement_reason") else None,
            [d.item for d in evaluation.items if d.included],
            childless=evaluation.childless,
        )

    async def submit_with_key(self, body: Any, key: str | None, caller: str = "") -> Answer:
        """The Idempotency-Key rules (IETF httpapi draft) around ``submit``: same key and
        payload → the first answer replayed; same key, other payload → 422; first request
        still running → 409 with Retry-After. Invalid requests, and refusals that a retry
        could change (a department could not be asked), are not remembered. Keys are the
        caller's own: ``caller`` (the signing app key) scopes them."""
        if key is None:
            return await self.submit(body)
        if not IDEMPOTENCY_KEY.match(key):
            raise Problem(
                400, "invalid-idempotency-key", "Invalid Idempotency-Key",
                "Idempotency-Key: 1–128 characters of A-Z a-z 0-9 _ . : -",
                errors=[{"pointer": "header:Idempotency-Key", "detail": "1–128 of A-Za-z0-9_.:-"}],
            )
        print_ = fingerprint(body)
        key = f"{caller}:{key}"
        existing = await self._store.idempotency_begin(key, print_)
        if existing is not None:
            if existing["fingerprint"] != print_:
                self._metrics.idempotency.labels("mismatch").inc()
                raise Problem(
                    422, "idempotency-key-reused", "Idempotency-Key reused",
                    "this Idempotency-Key was used with a different request body",
                )
            if existing["state"] != "done":
                self._metrics.idempotency.labels("in_progress").inc()
                raise Problem(
                    409, "request-in-progress", "Request in progress",
                    "the first request with this Idempotency-Key is still being processed",
                    headers={"Retry-After": "1"},
                )
            self._metrics.idempotency.labels("replayed").inc()
            status = int(existing["status"])
            return Answer(
                status, json.loads(existing["response_json"]), {"Idempotent-Replayed": "true"},
                "application/json" if status < 400 else "application/problem+json",
            )
        try:
            answer = await self.submit(body, idempotency_key=key, print_=print_)
        except Problem as problem:
            if problem.status == 422 and not problem.extra.get("unverified_departments"):
                # A considered refusal is an answer: replay it too.
                await self._store.idempotency_finish(key, problem.status, problem.body())
            else:
                await self._store.idempotency_abandon(key)
            raise
        except BaseException:
            await asyncio.shield(self._store.idempotency_abandon(key))
            raise
        if answer.headers.get("Idempotent-Replayed"):  # the number was accepted before: remember that answer
            await self._store.idempotency_finish(key, answer.status, answer.body)
        return answer

    async def submit(self, body: Any, idempotency_key: str | None = None, print_: str | None = None) -> Answer:
        if print_ is None:  # once per request: it serialises the whole body, attachments included
            print_ = fingerprint(body)
        if isinstance(body, dict) and isinstance(body.get("application_no"), str):
            replay = await self._replay(body, print_)
            if replay is not None:
                return replay
        self._validate(body)
        self._writable()
        evaluation = await self._eligibility.evaluate(body, submitted_date(body))
        if not evaluation.accepted:
            self._metrics.applications.labels("refused").inc()
            raise self._refusal(evaluation)
        specs = self._checklist(body, evaluation)
        missing = materials_rules.missing_materials(specs, {m["code"] for m in body.get("materials", [])})
        if missing:
            self._metrics.applications.labels("refused").inc()
            raise Problem(
                422,
                "materials-missing",
                "Required materials are missing",
                "缺少申请材料：" + "、".join(f"{m.name}（{m.code}）" for m in missing),
                missing=[{"code": m.code, "name": m.name, "item": str(m.item)} for m in missing],
            )
        response = self._evaluation_body(body, evaluation) | {
            "status": "accepted",
            "materials": [_material_json(m) for m in specs],
        }
        plan = self._plan(body["application_no"], evaluation)
        new = NewApplication(
            application_no=body["application_no"],
            fingerprint=print_,
            initiating_item=body["initiating_item"],
            request=body,
            response=response,
            callback_url=body.get("callback_url"),
            items=plan,
            idempotency_key=idempotency_key,
            request_id=REQUEST_ID.get(),
            audit=self._trail.make(
                "gateway", "application_accepted", "202", body["application_no"],
                initiating_item=body["initiating_item"],
                items=[i.item for i in plan if i.status == ItemStatus.PLANNED],
            ),
        )
        started = time.perf_counter()
        try:
            created = await self._store.create_application(new)
        except Exception as exc:
            if not is_store_error(exc):
                raise
            log.error("application_not_stored", application_no=new.application_no, error=type(exc).__name__)
            raise Problem(503, "store-unavailable", "Not accepted now", "the application could not be stored;"
                          " nothing was accepted: send it again later", headers={"Retry-After": "5"}) from exc
        self._metrics.commit_seconds.observe(time.perf_counter() - started)
        if not created:  # another request with this number won the race: answer as a resubmission
            replay = await self._replay(body, print_)
            if replay is None:
                raise RuntimeError("application number taken but not readable")
            return replay
        self._metrics.applications.labels("accepted").inc()
        for it in new.items:  # skipped at planning: final from the start, never a transition
            if it.status == ItemStatus.SKIPPED:
                self._metrics.item_final.labels(it.department, it.status).inc()
        log.info(
            "application_accepted",
            application_no=new.application_no,
            person=person_token(body["applicant"]["id_number"], self._config.log_token_key),
            initiating_item=new.initiating_item,
            items=[i.item for i in new.items if i.status == ItemStatus.PLANNED],
        )
        return Answer(202, response)

    def _writable(self) -> None:
        """Nothing is accepted that the audit trail could not record."""
        try:
            self._trail.check_writable()
        except AuditUnavailable as exc:
            raise Problem(503, "audit-unavailable", "Not accepted now", "the audit trail cannot be written;"
                          " nothing was accepted: send it again later", headers={"Retry-After": "5"}) from exc

    async def _replay(self, body: dict[str, Any], print_: str) -> Answer | None:
        stored = await self._store.get_application(body["application_no"], with_request=False)
        if stored is None:
            return None
        if stored.fingerprint != print_:
            self._metrics.applications.labels("conflict").inc()
            raise Problem(
                409,
                "application-no-conflict",
                "application_no already used",
                "该办件编号已受理过内容不同的申请；同一编号不能再建第二个办件",
                errors=[{"pointer": "/application_no", "detail": "already used by a different application"}],
            )
        self._metrics.applications.labels("replayed").inc()
        return Answer(202, stored.response, {"Idempotent-Replayed": "true"})

    def _plan(self, application_no: str, evaluation: prechecks.Evaluation) -> list[NewItem]:
        decisions = {d.item: d for d in evaluation.items}
        out: list[NewItem] = []
        for item in ITEM_ORDER:
            d = decisions.get(item)
            if d is None:
                continue
            if d.included:
                out.append(
                    NewItem(
                        item=item.value,
                        department=department_of(item).value,
                        mode=d.mode.value,
                        status=ItemStatus.PLANNED,
                        after_initiating=depends_on_initiating(item),
                        delivery_id=delivery_id_for(application_no, item.value),
                    )
                )
            else:
                # A chosen item that cannot go ahead, or an automatic one that does not
                # apply, stays visible with its reason: GET lists what the 202 listed.
                out.append(
                    NewItem(
                        item=item.value,
                        department=department_of(item).value,
                        mode=d.mode.value,
                        status=ItemStatus.SKIPPED,
                        after_initiating=depends_on_initiating(item),
                        delivery_id=None,
                        reason_code=d.reason_code,
                        message=d.reason,
                    )
                )
        return out

    def _evaluation_body(self, body: dict[str, Any], evaluation: prechecks.Evaluation) -> dict[str, Any]:
        return {
            "application_no": body["application_no"],
            "accepted": evaluation.accepted,
            "items": [
                {
                    "item": d.item.value,
                    "department": department_of(d.item).value,
                    "mode": d.mode.value,
                    "status": ItemStatus.PLANNED.value if d.included else ItemStatus.SKIPPED.value,
                    "included": d.included,
                    "reason_code": d.reason_code,
                    "reason": d.reason,
                }
                for d in evaluation.items
            ],
            "checks": _checks_json(evaluation),
            "unverified_departments": [d.value for d in evaluation.unverified_departments],
            "warnings": list(evaluation.warnings),
        }

    def _refusal(self, evaluation: prechecks.Evaluation) -> Problem:
        """422 for a refused pre-check. ``detail`` names exactly what refused it: the failing or
        unverifiable checks of the initiating item, or under ``all_or_nothing`` each chosen item
        that could not be included and why (docs/eligibility.md, Decisions); ``checks`` lists
        every check. After an identity refusal only the ``ID`` entry is there (``checks_withheld``)."""
        from gateway.domain.items import ITEMS, Mode  # only this method may change in this module

        bad = (prechecks.Outcome.fail, prechecks.Outcome.unverifiable)

        def listed(causes: list[str], limit: int = 5) -> str:
            shown = "；".join(causes[:limit])
            return shown if len(causes) <= limit else f"{shown}；……等{len(causes)}项（见 checks）"

        def failing(item: Item) -> list[str]:
            ordered = sorted((c for c in evaluation.checks if c.item is item and c.result in bad),
                             key=lambda c: c.result is not prechecks.Outcome.fail)  # fails first
            return [f"{c.key} {c.reason}" for c in ordered]

        code = evaluation.refusal_code or "precheck_failed"
        initiating = next(d for d in evaluation.items if d.mode is Mode.INITIATING)
        if evaluation.checks_withheld:
            not_verified = code == "identity_not_verified"
            head = "申请人身份未能通过公安部门核验" if not_verified else "公安身份核验暂不可用，请稍后再试"
            detail = f"{head}；{prechecks.WITHHELD_TEXT}"
        elif code == "all_or_nothing":
            causes = []
            passed_over = ("NOT_NEEDED", "APPLICATION_REFUSED")  # not needed, or would have gone ahead
            for d in evaluation.items:  # the chosen items that could not be included, and why
                if d.mode is Mode.OPTIONAL and not d.included and d.reason_code not in passed_over:
                    checks = failing(d.item)
                    causes.append(f"{ITEMS[d.item].name}：{d.reason}" + (f"（{listed(checks)}）" if checks else ""))
            intro = "已选择“全部办理或全部不办理”，以下事项未能纳入，整件不予受理："
            detail = intro + (listed(causes) or initiating.reason)
        else:
            detail = "前置校验未通过：" + (listed(failing(initiating.item)) or initiating.reason)
        return Problem(
            422,
            code.replace("_", "-"),
            "The application cannot be accepted",
            detail,
            checks=_checks_json(evaluation),
            checks_withheld=evaluation.checks_withheld,
            items=[
                {"item": d.item.value, "included": d.included, "reason_code": d.reason_code, "reason": d.reason}
                for d in evaluation.items
            ],
            unverified_departments=[d.value for d in evaluation.unverified_departments],
            warnings=list(evaluation.warnings),
        )


def _material_json(m: Any) -> dict[str, Any]:
    return {
        "code": m.code,
        "name": m.name,
        "type": str(m.type),
        "item": str(m.item) if m.item else None,
        "condition": m.condition,
        "required_from_applicant": m.required_from_applicant,
    }
