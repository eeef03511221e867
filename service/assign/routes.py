"""``POST /api/ops/dashboard/assign-tables`` — auto-assign tables for one restaurant and service date.

assign-tables.md §2 (contract), §3 (auth), §8 (commit). Order of checks: authenticate (401), validate the
body (400), authorise (403, also for an unknown restaurant), then the run: take the (restaurant, date)
lock (409 at once if held), read the day in one snapshot, resolve the strategic weights once, plan the
day (service/domain), commit each booking in its own transaction. One booking's failure is a skip; the
day always answers 200 with what was assigned and what was skipped. ``dryRun`` plans without the lock
and writes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time as _time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from service.assign import repository as repo
from service.auth import MEMBER_ROLES, UserDep
from service.domain.allocator.day_plan import (
    ASSIGNMENT_CONFLICT,
    DayPlan,
    PlannedAssignment,
    decision_after_failed_commit,
    idempotency_key,
    sanitise,
)
from service.domain.allocator.model import AllocatorConfig, DayInput
from service.domain.allocator.planner import PlannerOptions, plan_day
from service.domain.config_resolution import ResolvedWeightsProvider
from service.errors import (
    AssignmentRunInProgress,
    AuthUnavailable,
    DatabaseUnavailable,
    ErrorDetail,
    Forbidden,
    InvalidBody,
    NotReady,
    ServiceError,
    StrategicConfigStoreUnavailable,
    Unauthenticated,
    is_connection_error,
    problem_responses,
)
from service.repository.database import SessionDep, is_sqlstate_error
from service.repository.memberships import membership_role

PATH = "/api/ops/dashboard/assign-tables"
# plan attempts per booking: the planned set plus up to two alternatives (assign-tables.md §7.11 [REC])
MAX_COMMIT_ATTEMPTS = 3
# The text the original used for an overlap reported by the commit (§7.12).
COMMIT_CONFLICT_REASON = "Auto assign skipped: Supabase reported an overlapping assignment"
COMMIT_REASONS = {
    "ASSIGNMENT_CONFLICT": COMMIT_CONFLICT_REASON,
    "ASSIGNMENT_VALIDATION": "Auto assign skipped: the database rejected the table assignment",
    "ASSIGNMENT_REPOSITORY_ERROR": "Auto assign skipped: the assignment could not be saved",
    "CAPACITY_EXCEEDED": "Auto assign skipped: the service period's capacity limit would be exceeded",
}

# Commits run on this many connections at once (at most one per zone, see _commit_lanes, so lanes do not
# wait on each other): one connection left the server idle during every round trip and WAL flush (measured
# with one booking per statement on the 2-core bench machine: 3 lanes ~0.5 s, 1 lane ~0.75 s).
COMMIT_LANES = 3
# Bookings per commit statement (commit_planned_assignments: one transaction, a subtransaction per booking,
# all locks taken up front). One round trip and one WAL flush per batch instead of per booking: the
# 400-booking day commits in ~0.27 s instead of ~0.5 s; small batches keep the locks short (~30 ms).
COMMIT_BATCH_SIZE = 16
# Optimiser budget of the endpoint. The iteration cap is what normally stops the optimiser, so the same
# input gives the same plan (§10 determinism); the clock is only a safety net for a very slow or overloaded
# machine (the plan is then still valid and reports budgetExhausted). An iteration costs more on a bigger
# day (~0.5 ms at 400 bookings, ~4 ms at 2,000 on the development VM), so bigger days get fewer of them:
# 600 × 400/n, i.e. 120 at 2,000 bookings (~0.5 s). Sized so a 400-booking day is planned and committed
# in < 1 s and a 2,000-booking day planned in < 2 s (bench/assign_day.py); at this budget the optimiser
# seats ~0.985 of the exact optimum on the benchmark days (docs/assign-tables.md, "Planner budget").
ENDPOINT_BASE_BOOKINGS = 400
ENDPOINT_MAX_ITERATIONS = 600
ENDPOINT_ITERATION_EXPONENT = 1.0
ENDPOINT_SAFETY_BUDGET_S = 1.5  # per 400 bookings
ENDPOINT_MAX_SAFETY_BUDGET_S = 5.0

log = logging.getLogger("capacity.assign_tables")
router = APIRouter(tags=["assign-tables"])


# --- request / response models -----------------------------------------------------------------------
class AssignTablesRequest(BaseModel):
    """Unknown fields are ignored (§2.1)."""

    model_config = ConfigDict(extra="ignore")

    restaurantId: uuid.UUID
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$",
                             description="Service date YYYY-MM-DD; absent/null = today in the restaurant's timezone")
    captureDecisions: bool = Field(default=True, description="Include the per-booking decision trace")
    dryRun: bool = Field(default=False, description="Plan and explain only: nothing is written")


class AssignedBody(BaseModel):
    bookingId: str
    tableIds: list[str]


class SkippedBody(BaseModel):
    bookingId: str
    reason: str
    reasonCode: str


class ServiceFallbackBody(BaseModel):
    bookingId: str
    usedFallback: bool
    fallbackService: str | None


class AssignTablesResponse(BaseModel):
    date: str
    assigned: list[AssignedBody]
    skipped: list[SkippedBody]
    serviceFallbacks: list[ServiceFallbackBody]
    decisions: list[dict[str, Any]] | None = Field(
        default=None, description="Present only when captureDecisions is true (§9)")
    planner: str = Field(description="Which planner produced the plan: greedy | lns | greedy-fallback")
    dryRun: bool


_EXAMPLE = {
    "date": "2025-10-31",
    "assigned": [{"bookingId": "0f8b3c7e-3b7d-4c38-9d7e-2f0b8f1d2a11",
                  "tableIds": ["5b3f0d8e-9a61-4d0b-8a1e-3c1f5f1e7a01"]}],
    "skipped": [{"bookingId": "8d0e2f5a-6c4b-4f1e-9b2d-7a3c5e9f1b22",
                 "reason": "No suitable tables available (No tables meet the capacity requirements for this party size.)",
                 "reasonCode": "NO_SUITABLE_TABLES"}],
    "serviceFallbacks": [
        {"bookingId": "0f8b3c7e-3b7d-4c38-9d7e-2f0b8f1d2a11", "usedFallback": False, "fallbackService": None},
        {"bookingId": "8d0e2f5a-6c4b-4f1e-9b2d-7a3c5e9f1b22", "usedFallback": False, "fallbackService": None},
    ],
    "decisions": [],
    "planner": "greedy",
    "dryRun": False,
}

_REQUEST_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {
            "schema": AssignTablesRequest.model_json_schema(),
            "example": {"restaurantId": "6f1c7a52-0c55-4f31-9a0e-55d8e2f1b4a0", "date": "2025-10-31"},
        }},
    }
}


# --- helpers -------------------------------------------------------------------------------------------
def _parse(raw: bytes) -> AssignTablesRequest:
    if not raw.strip():
        raise InvalidBody("The request body is empty")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidBody("The request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidBody("The request body must be a JSON object")
    try:
        body = AssignTablesRequest.model_validate(payload)
    except ValidationError as exc:
        details = [
            ErrorDetail(field=".".join(str(p) for p in e["loc"]) or "body", reason=e["msg"]) for e in exc.errors()
        ]
        raise InvalidBody("; ".join(f"{d.field}: {d.reason}" for d in details), details=details) from None
    if body.date is not None:
        try:
            date.fromisoformat(body.date)
        except ValueError:
            # §2.1 [REC]: the shape alone let 2025-13-45 through in the original
            raise InvalidBody(
                "date is not a calendar date", details=[ErrorDetail(field="date", reason="not a calendar date")]
            ) from None
    return body


def _clock(request: Request) -> Callable[[], datetime]:
    return getattr(request.app.state, "assign_clock", None) or (lambda: datetime.now(UTC))


def _config(request: Request) -> AllocatorConfig:
    return request.app.state.allocator_config  # FEATURE_* flags, read once by create_app


def endpoint_planner_options(capture_decisions: bool, bookings: int = 0) -> PlannerOptions:
    """The planner options of a run of ``bookings`` bookings (the benchmarks import this, so they measure
    what the endpoint does)."""
    size = max(1.0, bookings / ENDPOINT_BASE_BOOKINGS)
    safety = min(ENDPOINT_MAX_SAFETY_BUDGET_S, ENDPOINT_SAFETY_BUDGET_S * size)
    return PlannerOptions(
        capture_decisions=capture_decisions,
        time_budget_s=safety,
        total_budget_s=safety,
        max_iterations=round(ENDPOINT_MAX_ITERATIONS / size**ENDPOINT_ITERATION_EXPONENT),
    )


def _ordered_ids(day: DayInput, ids: tuple[str, ...]) -> list[str]:
    """Plan order for a committed alternative: capacity ascending, then table number (§2.2)."""
    by_id = {t.id: t for t in day.tables}
    return sorted(ids, key=lambda t: (by_id[t].capacity, by_id[t].number) if t in by_id else (0, t))


async def _commit_one(
    pg: Any,
    rid: uuid.UUID,
    planned: PlannedAssignment,
    user_id: uuid.UUID | None,
    first: repo.CommitOutcome | None = None,
) -> tuple[repo.CommitOutcome, int]:
    """The planned set, then its alternatives while the failure is one another set may avoid. ``first``:
    the planned set's outcome when a batch already tried it (only the alternatives are left)."""
    candidates = [planned.table_ids, *planned.alternatives][:MAX_COMMIT_ATTEMPTS]
    outcome = first or repo.CommitOutcome(False, code=ASSIGNMENT_CONFLICT)
    if first is not None and (first.ok or not first.retryable):
        return first, 1
    for attempt, tables in enumerate(candidates, start=1):
        if attempt == 1 and first is not None:
            continue
        key = (
            planned.idempotency_key
            if attempt == 1
            else idempotency_key(str(rid), planned.booking_id, tables, planned.block_start, planned.block_end)
        )
        outcome = await repo.commit_assignment(
            pg, rid, planned.booking_id, tables,
            idempotency_key=key, require_adjacency=planned.require_adjacency, assigned_by=user_id,
            start_at=planned.block_start, end_at=planned.block_end,
        )
        if outcome.ok or not outcome.retryable:
            return outcome, attempt
    return outcome, len(candidates)


def _commit_lanes(
    day: DayInput, assigned: list[PlannedAssignment], lanes: int | None = None
) -> list[list[PlannedAssignment]]:
    """Split the plan into at most ``lanes`` lists, each keeping plan order, with every zone in one lane:
    the commit function serialises per (zone, hour) and locks the zone's tables, so lanes of different zones
    do not wait on each other, and within a zone the commits keep the plan's order. (An alternative in another
    zone may meet the other lane's commits: the database serialises those, as it does for concurrent runs.)
    Zones go to the lightest lane, biggest zone first (ties by zone id: the split is deterministic)."""
    zone_of = {t.id: t.zone_id or "" for t in day.tables}

    def zone(planned: PlannedAssignment) -> str:
        return zone_of.get(planned.table_ids[0], "") if planned.table_ids else ""

    by_zone: dict[str, list[PlannedAssignment]] = {}
    for planned in assigned:
        by_zone.setdefault(zone(planned), []).append(planned)
    count = max(1, min(lanes or COMMIT_LANES, len(by_zone)))
    loads = [0] * count
    lane_of: dict[str, int] = {}
    for zone_id in sorted(by_zone, key=lambda z: (-len(by_zone[z]), z)):
        lane = min(range(count), key=lambda i: (loads[i], i))
        lane_of[zone_id] = lane
        loads[lane] += len(by_zone[zone_id])
    out: list[list[PlannedAssignment]] = [[] for _ in range(count)]
    for planned in assigned:
        out[lane_of[zone(planned)]].append(planned)
    return [lane for lane in out if lane]


async def commit_plan(
    engine: Any, rid: uuid.UUID, day: DayInput, plan: DayPlan, user_id: uuid.UUID | None
) -> dict[str, tuple[repo.CommitOutcome, int]]:
    """Commit every planned booking on up to COMMIT_LANES connections at once, COMMIT_BATCH_SIZE bookings per
    statement (each booking atomic on its own); a booking whose planned set failed in a way another set may
    avoid then tries its alternatives one by one.

    A lost connection stops every lane before its next batch (the one in flight on another lane finishes,
    its transaction is whole either way) and is re-raised: the run answers 503, earlier commits stay."""
    outcomes: dict[str, tuple[repo.CommitOutcome, int]] = {}
    stop = asyncio.Event()

    async def run_lane(lane: list[PlannedAssignment]) -> None:
        try:
            async with repo.commit_connection(engine) as pg:
                for start in range(0, len(lane), COMMIT_BATCH_SIZE):
                    if stop.is_set():
                        return
                    batch = lane[start : start + COMMIT_BATCH_SIZE]
                    firsts = await repo.commit_batch(pg, rid, batch, assigned_by=user_id)
                    for planned in batch:
                        first = firsts.get(planned.booking_id) if firsts is not None else None
                        outcomes[planned.booking_id] = await _commit_one(pg, rid, planned, user_id, first)
        except BaseException:
            stop.set()
            raise

    results = await asyncio.gather(*(run_lane(lane) for lane in _commit_lanes(day, plan.assigned)),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return outcomes


def _response(
    plan: DayPlan,
    day: DayInput,
    outcomes: dict[str, tuple[repo.CommitOutcome, int]] | None,
    *,
    capture: bool,
    dry_run: bool,
) -> dict[str, Any]:
    planned = {a.booking_id: a for a in plan.assigned}
    plan_skips = {s.booking_id: s for s in plan.skipped}
    decisions = list(plan.decisions or [])
    assigned: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for pos, booking_id in enumerate(plan.order):
        decision = decisions[pos] if pos < len(decisions) else None
        if booking_id in plan_skips:
            s = plan_skips[booking_id]
            skipped.append({"bookingId": booking_id, "reason": s.reason, "reasonCode": s.reason_code})
            continue
        a = planned[booking_id]
        if outcomes is None:  # dry run: the plan as it would be committed
            assigned.append({"bookingId": booking_id, "tableIds": list(a.table_ids)})
            continue
        outcome, attempts = outcomes[booking_id]
        commit_info: dict[str, Any] = {"attempts": attempts, "status": "assigned" if outcome.ok else "skipped"}
        if outcome.ok:
            ids = list(a.table_ids) if set(outcome.table_ids) == set(a.table_ids) else _ordered_ids(day, outcome.table_ids)
            assigned.append({"bookingId": booking_id, "tableIds": ids})
            commit_info.update(tableIds=ids, alternativeUsed=ids != list(a.table_ids),
                               alreadyAssigned=outcome.already_assigned)
        else:
            code = outcome.code or "ASSIGNMENT_REPOSITORY_ERROR"
            reason = COMMIT_REASONS.get(code, COMMIT_CONFLICT_REASON)
            skipped.append({"bookingId": booking_id, "reason": reason, "reasonCode": code})
            commit_info.update(reasonCode=code, sqlstate=outcome.sqlstate, error=outcome.message)
            if decision is not None:
                decision_after_failed_commit(decision, reason, code)
        if decision is not None:
            decision["commit"] = sanitise(commit_info)
    body: dict[str, Any] = {
        "date": plan.service_date.isoformat(),
        "assigned": assigned,
        "skipped": skipped,
        "serviceFallbacks": [f.to_json() for f in plan.service_fallbacks],
        "planner": plan.planner,
        "dryRun": dry_run,
    }
    if capture:
        body["decisions"] = decisions
    return body


# --- route ---------------------------------------------------------------------------------------------
@router.post(
    PATH,
    operation_id="assignTablesForDay",
    response_model=AssignTablesResponse,
    responses={
        200: {"content": {"application/json": {"example": _EXAMPLE}}},
        **problem_responses(
            InvalidBody, Unauthenticated, Forbidden, AssignmentRunInProgress, ServiceError, AuthUnavailable,
            DatabaseUnavailable, StrategicConfigStoreUnavailable, NotReady,
        ),
    },
    openapi_extra=_REQUEST_DOC,
)
async def assign_tables_for_day(request: Request, user: UserDep, session: SessionDep) -> JSONResponse:
    """Auto-assign tables to every booking of the date that has none. Each booking is committed
    atomically; conflicts become skips with a ``reasonCode``. Any member role may run it."""
    started = _time.perf_counter()
    # authentication already ran (dependency): anonymous callers learn nothing from validation
    body = _parse(await request.body())
    rid = body.restaurantId
    role = await membership_role(session, user.user_id, rid)  # type: ignore[arg-type]
    if role not in MEMBER_ROLES:
        await session.commit()
        raise Forbidden()  # also for a restaurant that does not exist (§3 item 5)
    if body.date is not None:
        service_date = date.fromisoformat(body.date)
    else:
        try:
            timezone = await repo.restaurant_timezone(session, rid)
        except DBAPIError as exc:
            raise DatabaseUnavailable("Unable to resolve service date") from exc
        service_date = repo.today_in(timezone, _clock(request)())
    # hand the request connection back: the run takes its own (lock, load, resolver, commits)
    await session.commit()

    if body.dryRun:
        plan, day = await _plan(request, rid, service_date, body.captureDecisions)
        result = _response(plan, day, None, capture=body.captureDecisions, dry_run=True)
        _log_summary(rid, service_date, plan, result, started, dry_run=True)
        return JSONResponse(result)

    try:
        async with repo.run_lock(request.app.state.engine, rid, service_date):
            plan, day = await _plan(request, rid, service_date, body.captureDecisions)
            outcomes: dict[str, tuple[repo.CommitOutcome, int]] = {}
            commit_started = _time.perf_counter()
            if plan.assigned:
                outcomes = await commit_plan(request.app.state.engine, rid, day, plan, user.user_id)
            commit_ms = (_time.perf_counter() - commit_started) * 1000
    except repo.RunInProgress:
        raise AssignmentRunInProgress(
            f"Another auto-assign run is in progress for this restaurant on {service_date.isoformat()}"
        ) from None
    except repo.SchemaOutOfDate as exc:
        # e.g. the new code deployed before `migrate`: say so instead of skipping every booking; the first
        # commit already failed, so nothing of the run was written
        raise NotReady(f"The database schema is older than this service needs: {exc}; {repo.MIGRATE_HINT}") from exc
    except ServiceError:
        raise
    except Exception as exc:
        # the database went away (lock connection, load or a commit): 503 + Retry-After, never a 500;
        # bookings committed before that stay committed (one transaction each)
        if is_connection_error(exc):
            raise DatabaseUnavailable("The database could not be reached during the run; retry shortly") from exc
        raise
    result = _response(plan, day, outcomes, capture=body.captureDecisions, dry_run=False)
    _log_summary(rid, service_date, plan, result, started, dry_run=False, commit_ms=commit_ms)
    return JSONResponse(result)


async def _plan(request: Request, rid: uuid.UUID, service_date: date, capture: bool) -> tuple[DayPlan, DayInput]:
    try:
        async with request.app.state.sessionmaker() as load_session:
            day, flags = await repo.load_day(
                load_session, rid, service_date, environment=request.app.state.settings.environment
            )
            await load_session.commit()
    except DBAPIError as exc:
        if is_sqlstate_error(exc, repo.SCHEMA_STATES):
            raise NotReady(
                f"The database schema is older than this service needs: {exc.orig}; {repo.MIGRATE_HINT}"
            ) from exc
        # §6 [REC]: bookings/tables unreadable → 503 before the loop, never an empty 200
        raise DatabaseUnavailable("Bookings or tables could not be read") from exc
    # the resolver takes its own connection; the load session is closed by now (pool deadlock lesson)
    provider = await ResolvedWeightsProvider.load(request.app.state.strategic_config, [rid])
    weights = provider.resolve(str(rid))
    config = repo.apply_flag_overrides(_config(request), flags)
    options = endpoint_planner_options(capture, len(day.bookings))
    # CPU-bound (up to the planner's budget): keep the event loop free for other requests
    plan = await run_in_threadpool(plan_day, day, config, weights, options)
    return plan, day


def _log_summary(
    rid: uuid.UUID,
    service_date: date,
    plan: DayPlan,
    result: dict[str, Any],
    started: float,
    *,
    dry_run: bool,
    commit_ms: float = 0.0,
) -> None:
    reasons: dict[str, int] = {}
    for s in result["skipped"]:
        reasons[s["reasonCode"]] = reasons.get(s["reasonCode"], 0) + 1
    log.info(
        "auto-assign run restaurant=%s date=%s dry_run=%s planner=%s evaluated=%d assigned=%d skipped=%d "
        "skip_reasons=%s plan_ms=%.1f commit_ms=%.1f total_ms=%.1f",
        rid, service_date.isoformat(), dry_run, plan.planner, len(plan.order), len(result["assigned"]),
        len(result["skipped"]), json.dumps(reasons, sort_keys=True), plan.timings.get("totalMs", 0.0),
        commit_ms, (_time.perf_counter() - started) * 1000,
    )
