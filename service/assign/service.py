"""Auto-assign a restaurant's day: the application service behind ``POST .../assign-tables``.

:meth:`AssignmentService.run` is the whole run in one place (docs/assign-tables.md §1): take the
(restaurant, date) lock (another run holding it → :class:`AssignmentRunInProgress` at once), read the day in
one snapshot, resolve the strategic weights once, plan the day with the pure allocator
(``service.domain.allocator``), commit the plan on parallel lanes in batches with per-booking retries on
alternatives, and build the response model. One booking's failure is a skip; the run answers with what was
assigned and what was skipped. A dry run plans without the lock and writes nothing. No HTTP types here:
failures are the project's error family (``service.errors``), mapped to HTTP in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.assign import repository as repo
from service.assign.models import (
    AssignedBody,
    AssignTablesResponse,
    BoundBody,
    ServiceFallbackBody,
    SkippedBody,
)
from service.domain.allocator.day_plan import (
    ASSIGNMENT_CONFLICT,
    RUN_DEADLINE_EXCEEDED,
    DayPlan,
    PlannedAssignment,
    decision_after_failed_commit,
    idempotency_key,
    sanitise,
)
from service.domain.allocator.model import AllocatorConfig, DayInput
from service.domain.allocator.planner import PlannerOptions, plan_day
from service.domain.config_resolution import ResolvedWeightsProvider, StrategicConfigResolver
from service.errors import (
    AssignmentRunInProgress,
    DatabaseUnavailable,
    NotReady,
    ServiceError,
    is_connection_error,
)
from service.repository.database import is_sqlstate_error

# plan attempts per booking: the planned set plus up to two alternatives (docs/assign-tables.md §7.11 [REC])
MAX_COMMIT_ATTEMPTS = 3
# The text the original used for an overlap reported by the commit (docs/assign-tables.md §7.12).
COMMIT_CONFLICT_REASON = "Auto assign skipped: Supabase reported an overlapping assignment"
COMMIT_REASONS = {
    "ASSIGNMENT_CONFLICT": COMMIT_CONFLICT_REASON,
    "ASSIGNMENT_VALIDATION": "Auto assign skipped: the database rejected the table assignment",
    "ASSIGNMENT_REPOSITORY_ERROR": "Auto assign skipped: the assignment could not be saved",
    "CAPACITY_EXCEEDED": "Auto assign skipped: the service period's capacity limit would be exceeded",
    RUN_DEADLINE_EXCEEDED: "Auto assign skipped: the run's deadline passed before the booking was committed",
}
DEADLINE_EXCEEDED = repo.CommitOutcome(False, code=RUN_DEADLINE_EXCEEDED, message="run deadline exceeded")

# Commits run on this many connections at once (at most one per zone, see _commit_lanes, so lanes do not
# wait on each other): one connection left the server idle during every round trip and WAL flush (measured
# with one booking per statement on the 2-core bench machine: 3 lanes ~0.5 s, 1 lane ~0.75 s).
COMMIT_LANES = 3
# Bookings per commit statement (commit_planned_assignments: one transaction, a subtransaction per booking,
# all locks taken up front). One round trip and one WAL flush per batch instead of per booking: the
# 400-booking day commits in ~0.27 s instead of ~0.5 s; small batches keep the locks short (~30 ms).
COMMIT_BATCH_SIZE = 16
# Optimiser budget of the endpoint. The iteration cap is what normally stops the optimiser, so the same
# input gives the same plan (docs/assign-tables.md §10 determinism); the clock is only a safety net for a very slow or overloaded
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

Outcomes = dict[str, tuple[repo.CommitOutcome, int]]


@dataclass(frozen=True, slots=True)
class RunDeadline:
    """When a run must stop committing (setting ``assign_run_deadline_s``, docs/assign-tables.md §8.6), on
    the monotonic clock. Every commit statement is bounded by the time left (and by the configured
    statement timeout), so a blocked table costs at most the rest of the run, not a timeout per batch."""

    at: float
    statement_timeout_ms: int = 0  # 0: no configured limit

    @classmethod
    def after(cls, seconds: float, statement_timeout_ms: int = 0) -> RunDeadline:
        return cls(time.monotonic() + seconds, statement_timeout_ms)

    def expired(self) -> bool:
        return self.at - time.monotonic() < 0.001  # a limit of 0 ms would mean "no limit" to the server

    def timeout_ms(self) -> int | None:
        """The bound of the next statement, at least 1 ms (it then fails at once and counts as expired);
        None for an unbounded run (the connection's own limits apply)."""
        if math.isinf(self.at):
            return None
        left = max(1, int((self.at - time.monotonic()) * 1000))
        return min(left, self.statement_timeout_ms) if self.statement_timeout_ms > 0 else left

    def explains(self, outcome: repo.CommitOutcome) -> bool:
        """The commit failed because the run's time was up (its lock wait or statement was cut short)."""
        return not outcome.ok and outcome.sqlstate in repo.TIMEOUT_STATES and self.expired()


def _unbounded() -> RunDeadline:
    return RunDeadline(math.inf)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A finished run, for whoever observes runs (the metrics)."""

    planner: str
    dry_run: bool
    duration_s: float
    assigned: int
    skipped_reason_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AssignmentRequest:
    """One run as the caller asked for it (already authorised)."""

    restaurant_id: uuid.UUID
    service_date: date
    user_id: uuid.UUID | None
    capture_decisions: bool
    dry_run: bool


class AssignmentService:
    """Runs auto-assign for one restaurant-day. Built per request from the app's shared parts."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        resolver: StrategicConfigResolver,
        config: AllocatorConfig,
        *,
        environment: str,
        clock: Callable[[], datetime],
        run_deadline_s: float,
        statement_timeout_ms: int = 0,
        on_run_finished: Callable[[RunSummary], None] | None = None,
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.resolver = resolver
        self.config = config
        self.environment = environment
        self.clock = clock
        self.run_deadline_s = run_deadline_s
        self.statement_timeout_ms = statement_timeout_ms
        self.on_run_finished = on_run_finished

    async def service_date(self, session: AsyncSession, restaurant_id: uuid.UUID, requested: date | None) -> date:
        """The requested date, else today in the restaurant's timezone (docs/assign-tables.md §2.1)."""
        if requested is not None:
            return requested
        try:
            timezone = await repo.restaurant_timezone(session, restaurant_id)
        except DBAPIError as exc:
            raise DatabaseUnavailable("Unable to resolve service date") from exc
        return repo.today_in(timezone, self.clock())

    async def run(self, request: AssignmentRequest) -> AssignTablesResponse:
        started = time.perf_counter()
        deadline = RunDeadline.after(self.run_deadline_s, self.statement_timeout_ms)
        rid, service_date = request.restaurant_id, request.service_date
        if request.dry_run:
            plan, day = await self._plan(rid, service_date, request.capture_decisions)
            response = build_response(plan, day, None, capture=request.capture_decisions, dry_run=True)
            self._finished(_log_summary(rid, service_date, plan, response, started, dry_run=True))
            return response
        commit_ms = 0.0
        try:
            async with repo.run_lock(self.engine, rid, service_date):
                plan, day = await self._plan(rid, service_date, request.capture_decisions)
                outcomes: Outcomes = {}
                commit_started = time.perf_counter()
                if plan.assigned:
                    outcomes = await commit_plan(self.engine, rid, day, plan, request.user_id, deadline)
                commit_ms = (time.perf_counter() - commit_started) * 1000
        except repo.RunInProgress:
            raise AssignmentRunInProgress(
                f"Another auto-assign run is in progress for this restaurant on {service_date.isoformat()}"
            ) from None
        except repo.SchemaOutOfDate as exc:
            # e.g. the new code deployed before `migrate`: say so instead of skipping every booking; the first
            # commit already failed, so nothing of the run was written
            raise NotReady(
                f"The database schema is older than this service needs: {exc}; {repo.MIGRATE_HINT}"
            ) from exc
        except ServiceError:
            raise
        except Exception as exc:
            # the database went away (lock connection, load or a commit): 503 + Retry-After, never a 500;
            # batches committed before that stay committed (each booking is atomic on its own)
            if is_connection_error(exc):
                raise DatabaseUnavailable("The database could not be reached during the run; retry shortly") from exc
            raise
        response = build_response(plan, day, outcomes, capture=request.capture_decisions, dry_run=False)
        self._finished(_log_summary(rid, service_date, plan, response, started, dry_run=False, commit_ms=commit_ms))
        return response

    def _finished(self, summary: RunSummary) -> None:
        if self.on_run_finished is not None:
            self.on_run_finished(summary)

    async def _plan(self, rid: uuid.UUID, service_date: date, capture: bool) -> tuple[DayPlan, DayInput]:
        try:
            async with self.sessionmaker() as load_session:
                day, flags = await repo.load_day(
                    load_session, rid, service_date, environment=self.environment
                )
                await load_session.commit()
        except DBAPIError as exc:
            if is_sqlstate_error(exc, repo.SCHEMA_STATES):
                raise NotReady(
                    f"The database schema is older than this service needs: {exc.orig}; {repo.MIGRATE_HINT}"
                ) from exc
            # docs/assign-tables.md §6 [REC]: bookings/tables unreadable → 503 before the loop, never an empty 200
            raise DatabaseUnavailable("Bookings or tables could not be read") from exc
        # the resolver takes its own connection; the load session is closed by now (pool deadlock lesson)
        provider = await ResolvedWeightsProvider.load(self.resolver, [rid])
        weights = provider.resolve(str(rid))
        config = repo.apply_flag_overrides(self.config, flags)
        options = endpoint_planner_options(capture, len(day.bookings), now=self.clock())
        # CPU-bound (up to the planner's budget): keep the event loop free for other requests
        plan = await asyncio.to_thread(plan_day, day, config, weights, options)
        return plan, day


def endpoint_planner_options(capture_decisions: bool, bookings: int = 0, *, now: datetime | None = None) -> PlannerOptions:
    """The planner options of a run of ``bookings`` bookings (the benchmarks import this, so they measure
    what the endpoint does)."""
    size = max(1.0, bookings / ENDPOINT_BASE_BOOKINGS)
    safety = min(ENDPOINT_MAX_SAFETY_BUDGET_S, ENDPOINT_SAFETY_BUDGET_S * size)
    return PlannerOptions(
        capture_decisions=capture_decisions,
        time_budget_s=safety,
        total_budget_s=safety,
        max_iterations=round(ENDPOINT_MAX_ITERATIONS / size**ENDPOINT_ITERATION_EXPONENT),
        bound=True,
        now=now,
    )


def _ordered_ids(day: DayInput, ids: tuple[str, ...]) -> list[str]:
    """Plan order for a committed alternative: capacity ascending, then table number (docs/assign-tables.md §2.2)."""
    by_id = {t.id: t for t in day.tables}
    return sorted(ids, key=lambda t: (by_id[t].capacity, by_id[t].number) if t in by_id else (0, t))


async def commit_with_alternatives(
    pg: asyncpg.Connection,
    rid: uuid.UUID,
    planned: PlannedAssignment,
    user_id: uuid.UUID | None,
    first: repo.CommitOutcome | None = None,
    deadline: RunDeadline | None = None,
) -> tuple[repo.CommitOutcome, int]:
    """The planned set, then its alternatives while the failure is one another set may avoid. ``first``:
    the planned set's outcome when a batch already tried it (only the alternatives are left). Each attempt
    is bounded by the time the ``deadline`` leaves; none starts after it (the booking is then skipped with
    RUN_DEADLINE_EXCEEDED)."""
    deadline = deadline or _unbounded()
    candidates = [planned.table_ids, *planned.alternatives][:MAX_COMMIT_ATTEMPTS]
    outcome = first or repo.CommitOutcome(False, code=ASSIGNMENT_CONFLICT)
    if first is not None and deadline.explains(first):
        return DEADLINE_EXCEEDED, 1
    if first is not None and (first.ok or not first.retryable):
        return first, 1
    for attempt, tables in enumerate(candidates, start=1):
        if attempt == 1 and first is not None:
            continue
        if deadline.expired():
            return DEADLINE_EXCEEDED, attempt - 1
        key = (
            planned.idempotency_key
            if attempt == 1
            else idempotency_key(str(rid), planned.booking_id, tables, planned.block_start, planned.block_end)
        )
        outcome = await repo.commit_assignment(
            pg, rid, planned.booking_id, tables,
            idempotency_key=key, require_adjacency=planned.require_adjacency, assigned_by=user_id,
            start_at=planned.block_start, end_at=planned.block_end,
            timeout_ms=deadline.timeout_ms(),
        )
        if deadline.explains(outcome):
            return DEADLINE_EXCEEDED, attempt
        if outcome.ok or not outcome.retryable:
            return outcome, attempt
    return outcome, len(candidates)


def commit_lanes(
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
    engine: AsyncEngine,
    rid: uuid.UUID,
    day: DayInput,
    plan: DayPlan,
    user_id: uuid.UUID | None,
    deadline: RunDeadline | None = None,
) -> Outcomes:
    """Commit every planned booking on up to COMMIT_LANES connections at once, COMMIT_BATCH_SIZE bookings per
    statement (each booking atomic on its own); a booking whose planned set failed in a way another set may
    avoid then tries its alternatives one by one.

    A lost connection stops every lane before its next batch (the one in flight on another lane finishes,
    its transaction is whole either way) and is re-raised: the run answers 503, earlier commits stay.

    ``deadline``: no batch or booking starts after it, and each statement is bounded by the time it leaves;
    what was not committed by then is skipped with RUN_DEADLINE_EXCEEDED (docs/assign-tables.md §8.6)."""
    deadline = deadline or _unbounded()
    outcomes: Outcomes = {}
    stop = asyncio.Event()

    async def run_lane(lane: list[PlannedAssignment]) -> None:
        try:
            async with repo.commit_connection(engine) as pg:
                for start in range(0, len(lane), COMMIT_BATCH_SIZE):
                    if stop.is_set():
                        return
                    if deadline.expired():
                        return  # the rest of the lane is skipped (filled in below)
                    batch = lane[start : start + COMMIT_BATCH_SIZE]
                    firsts = await repo.commit_batch(pg, rid, batch, assigned_by=user_id,
                                                     timeout_ms=deadline.timeout_ms())
                    for planned in batch:
                        first = firsts.get(planned.booking_id) if firsts is not None else None
                        outcomes[planned.booking_id] = await commit_with_alternatives(
                            pg, rid, planned, user_id, first, deadline
                        )
        except BaseException:
            stop.set()
            raise

    results = await asyncio.gather(*(run_lane(lane) for lane in commit_lanes(day, plan.assigned)),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    for planned in plan.assigned:  # never started: the deadline passed first
        outcomes.setdefault(planned.booking_id, (DEADLINE_EXCEEDED, 0))
    return outcomes


def build_response(
    plan: DayPlan,
    day: DayInput,
    outcomes: Outcomes | None,
    *,
    capture: bool,
    dry_run: bool,
) -> AssignTablesResponse:
    """The response of a run: plan order, committed bookings assigned, failed commits skipped with the
    commit's reason (their decision rewritten to match). ``outcomes`` None: a dry run, the plan as it would be
    committed. ``decisions`` is left unset unless captured (the route omits unset fields)."""
    planned = {a.booking_id: a for a in plan.assigned}
    plan_skips = {s.booking_id: s for s in plan.skipped}
    decisions = list(plan.decisions or [])
    assigned: list[AssignedBody] = []
    skipped: list[SkippedBody] = []
    for pos, booking_id in enumerate(plan.order):
        decision = decisions[pos] if pos < len(decisions) else None
        if booking_id in plan_skips:
            s = plan_skips[booking_id]
            skipped.append(SkippedBody(bookingId=booking_id, reason=s.reason, reasonCode=s.reason_code))
            continue
        a = planned[booking_id]
        if outcomes is None:
            assigned.append(AssignedBody(bookingId=booking_id, tableIds=list(a.table_ids), relaxed=list(a.relaxed)))
            continue
        outcome, attempts = outcomes[booking_id]
        commit_info: dict[str, Any] = {"attempts": attempts, "status": "assigned" if outcome.ok else "skipped"}
        if outcome.ok:
            ids = list(a.table_ids) if set(outcome.table_ids) == set(a.table_ids) else _ordered_ids(day, outcome.table_ids)
            assigned.append(AssignedBody(bookingId=booking_id, tableIds=ids, relaxed=list(a.relaxed)))
            commit_info.update(tableIds=ids, alternativeUsed=ids != list(a.table_ids),
                               alreadyAssigned=outcome.already_assigned)
        else:
            code = outcome.code or "ASSIGNMENT_REPOSITORY_ERROR"
            reason = COMMIT_REASONS.get(code, COMMIT_CONFLICT_REASON)
            skipped.append(SkippedBody(bookingId=booking_id, reason=reason, reasonCode=code))
            commit_info.update(reasonCode=code, sqlstate=outcome.sqlstate, error=outcome.message)
            if decision is not None:
                decision_after_failed_commit(decision, reason, code)
        if decision is not None:
            decision["commit"] = sanitise(commit_info)
    fields: dict[str, Any] = {
        "date": plan.service_date.isoformat(),
        "assigned": assigned,
        "skipped": skipped,
        "serviceFallbacks": [ServiceFallbackBody(**f.to_json()) for f in plan.service_fallbacks],
        "planner": plan.planner,
        "dryRun": dry_run,
    }
    if plan.bound is not None:  # the endpoint always computes it (endpoint_planner_options)
        fields["bound"] = BoundBody(**plan.bound.to_json())
    if capture:
        fields["decisions"] = decisions
    return AssignTablesResponse(**fields)


def _log_summary(
    rid: uuid.UUID,
    service_date: date,
    plan: DayPlan,
    response: AssignTablesResponse,
    started: float,
    *,
    dry_run: bool,
    commit_ms: float = 0.0,
) -> RunSummary:
    reasons: dict[str, int] = {}
    for s in response.skipped:
        reasons[s.reasonCode] = reasons.get(s.reasonCode, 0) + 1
    log.info(
        "auto-assign run restaurant=%s date=%s dry_run=%s planner=%s evaluated=%d assigned=%d skipped=%d "
        "skip_reasons=%s plan_ms=%.1f commit_ms=%.1f total_ms=%.1f",
        rid, service_date.isoformat(), dry_run, plan.planner, len(plan.order), len(response.assigned),
        len(response.skipped), json.dumps(reasons, sort_keys=True), plan.timings.get("totalMs", 0.0),
        commit_ms, (time.perf_counter() - started) * 1000,
    )
    return RunSummary(
        planner=plan.planner,
        dry_run=dry_run,
        duration_s=time.perf_counter() - started,
        assigned=len(response.assigned),
        skipped_reason_codes=tuple(s.reasonCode for s in response.skipped),
    )
