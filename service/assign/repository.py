"""Auto-assign persistence: load one restaurant-day as a ``DayInput``, serialise runs, commit plans.

Every transaction sets the tenant context first (the runtime role is under tenant RLS, docs/assign-tables.md §3);
every query also filters by restaurant explicitly (docs/assign-tables.md §3 item 3).

- :func:`load_day` — one REPEATABLE READ transaction, so the day is read as one snapshot.
- :func:`run_lock` — session-level ``pg_try_advisory_lock`` on a dedicated connection for the whole run;
  :class:`RunInProgress` at once when another run holds it (no waiting).
- :func:`commit_batch` / :func:`commit_assignment` — a batch of planned bookings in one statement, or one
  booking, through revision 0007's functions; each booking is its own transaction or subtransaction: lock
  the booking row, refuse if it already has another table set (docs/assign-tables.md §8.5 [REC]), call
  ``assign_tables_atomic_v2``; errors are classified by SQLSTATE (docs/assign-tables.md §8.3); a broken connection or
  a schema older than the code is re-raised for a 503.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg
from sqlalchemy import Result, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.domain.allocator.day_plan import (
    ASSIGNMENT_CONFLICT,
    ASSIGNMENT_REPOSITORY_ERROR,
    ASSIGNMENT_VALIDATION,
    CAPACITY_EXCEEDED,
    PlannedAssignment,
)
from service.domain.allocator.model import (
    ACTIVE_BOOKING_STATUSES,
    ADJACENCY_MODES,
    AllocatorConfig,
    Booking,
    BusyInterval,
    DayInput,
    DemandProfile,
    Hold,
    RestaurantPolicy,
    ServicePeriod,
    Table,
    TurnBands,
)
from service.domain.allocator.windows import policy_zone
from service.repository.memberships import set_tenant_context

log = logging.getLogger("capacity.assign_tables")

# Feature-flag override keys honoured from the database (docs/assign-tables.md §5) → AllocatorConfig field.
FLAG_OVERRIDES: Mapping[str, str] = {
    "adjacency.query.undirected": "adjacency_undirected",
    "planner.time_pruning.enabled": "time_pruning",
    "allocator.service.fail_hard": "service_fail_hard",
    "holds.strict_conflicts.enabled": "holds_strict_conflicts",
}

_CONFLICT_STATES = frozenset({"23P01", "23505"})
_VALIDATION_STATES = frozenset({"23514", "23503", "23502", "22023", "22000", "P0002", "P0003"})


# Undefined function / table / column: the database is older (or more drifted) than this service needs.
SCHEMA_STATES = frozenset({"42883", "42P01", "42703"})
MIGRATE_HINT = "run `capacity-service migrate` (or check `capacity-service doctor`)"


class RunInProgress(Exception):
    """Another auto-assign run holds the (restaurant, date) lock."""


class SchemaOutOfDate(RuntimeError):
    """A statement of the run met a missing function, table or column: the run stops (503), it never turns
    every booking into a skip."""


# --------------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------------
async def restaurant_timezone(session: AsyncSession, restaurant_id: uuid.UUID) -> str | None:
    """The restaurant's timezone (None when the row is not visible). Sets the tenant context itself."""
    await set_tenant_context(session, restaurant_id)
    result = await session.execute(
        text("SELECT timezone FROM restaurants WHERE id = :r"), {"r": restaurant_id}
    )
    return result.scalar_one_or_none()


def today_in(timezone: str | None, now: datetime) -> date:
    """"Today" in the restaurant's timezone (blank → Europe/London, never UTC: docs/assign-tables.md §4)."""
    return now.astimezone(policy_zone(timezone)).date()


def parse_turn_bands(raw: Any) -> dict[str, TurnBands] | None:
    """``{"dinner": {"bands": [[2, 60], [4, 75]], "larger": 90}, …}`` → TurnBands per service key.
    None (column NULL) → the original's bands. A malformed entry is ignored (the CHECK only pins the type)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = json.loads(raw)
    out: dict[str, TurnBands] = {}
    for key, spec in (raw or {}).items():
        try:
            bands = tuple(sorted((int(p), int(m)) for p, m in spec["bands"]))
            larger = int(spec.get("larger", bands[-1][1] if bands else 90))
        except (KeyError, TypeError, ValueError, IndexError):
            continue
        if all(m > 0 for _, m in bands) and larger > 0:
            out[str(key).lower()] = TurnBands(bands, larger)
    return out or None


def _policy(timezone: str | None, periods: tuple[ServicePeriod, ...], row: Mapping[str, Any] | None) -> RestaurantPolicy:
    base = RestaurantPolicy(timezone=(timezone or "").strip() or "Europe/London", service_periods=periods)
    if row is None:
        return base
    mode = row["adjacency_mode"]
    bands = parse_turn_bands(row["turn_bands"])
    return replace(
        base,
        overrun=row["overrun_policy"],
        respect_booking_end=row["respect_booking_end"],
        buffer_pre_minutes=row["buffer_pre_minutes"],
        buffer_post_minutes=row["buffer_post_minutes"],
        adjacency_mode=mode if mode in ADJACENCY_MODES else None,
        turn_bands={**base.turn_bands, **bands} if bands else base.turn_bands,
        relax_overage=row["relax_overage"],
        relaxed_max_overage=row["relaxed_max_overage"],
        relax_member_limits=row["relax_member_limits"],
        relax_adjacency=row["relax_adjacency"],
    )


def _rows(result: Result[Any]) -> list[Mapping[str, Any]]:
    return [dict(r) for r in result.mappings().all()]


async def load_day(
    session: AsyncSession,
    restaurant_id: uuid.UUID,
    service_date: date,
    *,
    environment: str,
) -> tuple[DayInput, dict[str, bool]]:
    """Read everything the planner needs for one restaurant-day (docs/assign-tables.md §6, §7.1).

    Returns the day and the feature-flag overrides found (key → value). Call inside a fresh session;
    the caller commits/closes it before doing anything else with the pool."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    await set_tenant_context(session, restaurant_id)
    p = {"r": restaurant_id, "d": service_date}
    tz_row = (await session.execute(text("SELECT timezone, now() AS now FROM restaurants WHERE id = :r"), p)).one()
    timezone, now = tz_row.timezone, tz_row.now
    zone = policy_zone(timezone)
    # the local calendar day, padded by a day on each side: windows of neighbouring bookings and
    # holds can reach into it (DST days are 23/25 h long, so pad instead of computing exact bounds)
    day_start = datetime.combine(service_date, time.min, zone) - timedelta(days=1)
    day_end = datetime.combine(service_date + timedelta(days=1), time.min, zone) + timedelta(days=1)
    p_win = {**p, "lo": day_start, "hi": day_end}

    table_rows = _rows(await session.execute(text(
        """SELECT id, table_number, capacity, zone_id, min_party_size, max_party_size, mobility::text AS mobility,
                  active, status::text AS status, category::text AS category, seating_type::text AS seating_type,
                  section
             FROM table_inventory WHERE restaurant_id = :r ORDER BY table_number, id"""), p))
    tables = tuple(
        Table(
            id=str(t["id"]), number=t["table_number"], capacity=t["capacity"],
            zone_id=str(t["zone_id"]) if t["zone_id"] else None, min_party_size=t["min_party_size"],
            max_party_size=t["max_party_size"], mobility=t["mobility"] or "movable", active=t["active"],
            status=t["status"] or "available", category=t["category"], seating_type=t["seating_type"],
            section=t["section"],
        )
        for t in table_rows
    )
    adjacency = tuple(
        (str(a), str(b))
        for a, b in (await session.execute(text(
            """SELECT a.table_a, a.table_b FROM table_adjacencies a
                 JOIN table_inventory t ON t.id = a.table_a AND t.restaurant_id = :r
                ORDER BY 1, 2"""), p)).all()
    )
    booking_rows = _rows(await session.execute(text(
        """SELECT b.id, b.party_size, b.booking_date, b.start_time, b.end_time, b.start_at, b.end_at,
                  b.status::text AS status,
                  COALESCE(array_agg(a.table_id ORDER BY a.table_id) FILTER (WHERE a.table_id IS NOT NULL),
                           '{}') AS table_ids,
                  min(a.start_at) AS assigned_start, max(a.end_at) AS assigned_end
             FROM bookings b
             LEFT JOIN booking_table_assignments a ON a.booking_id = b.id
            WHERE b.restaurant_id = :r AND b.booking_date = :d
              AND b.status::text = ANY (:statuses)
            GROUP BY b.id
            ORDER BY b.start_at NULLS LAST, b.start_time, b.id"""), {**p, "statuses": sorted(ACTIVE_BOOKING_STATUSES)}))
    bookings = tuple(
        Booking(
            id=str(b["id"]), party_size=b["party_size"], booking_date=b["booking_date"],
            start_time=b["start_time"], end_time=b["end_time"], start_at=b["start_at"], end_at=b["end_at"],
            status=b["status"], assigned_table_ids=tuple(str(t) for t in b["table_ids"]),
            assigned_start_at=b["assigned_start"], assigned_end_at=b["assigned_end"],
        )
        for b in booking_rows
    )
    # Every non-shadow table allocation and assignment row overlapping the day blocks its table, whatever
    # the booking's status (docs/assign-tables.md §12 item 7 [REC]).
    busy_rows = (await session.execute(text(
        """SELECT resource_id AS table_id, lower("window") AS s, upper("window") AS e, booking_id
             FROM allocations
            WHERE restaurant_id = :r AND resource_type = 'table' AND NOT shadow
              AND "window" && tstzrange(:lo, :hi, '[)')
           UNION ALL
           SELECT a.table_id, a.start_at, a.end_at, a.booking_id
             FROM booking_table_assignments a JOIN bookings b ON b.id = a.booking_id
            WHERE b.restaurant_id = :r AND a.start_at IS NOT NULL AND a.end_at IS NOT NULL
              AND a.start_at < :hi AND a.end_at > :lo"""), p_win)).all()
    busy = tuple(
        BusyInterval(str(t), s, e, "booking", str(bk) if bk else None)
        for t, s, e, bk in busy_rows
        if s is not None and e is not None
    )
    hold_rows = (await session.execute(text(
        """SELECT h.id, h.booking_id, h.start_at, h.end_at, h.expires_at,
                  COALESCE(array_agg(m.table_id ORDER BY m.table_id) FILTER (WHERE m.table_id IS NOT NULL), '{}')
             FROM table_holds h LEFT JOIN table_hold_members m ON m.hold_id = h.id
            WHERE h.restaurant_id = :r AND h.expires_at > now() AND h.start_at < :hi AND h.end_at > :lo
            GROUP BY h.id"""), p_win)).all()
    holds = tuple(
        Hold(str(hid), tuple(str(t) for t in members), s, e, exp, str(bk) if bk else None)
        for hid, bk, s, e, exp, members in hold_rows
    )
    periods = tuple(
        ServicePeriod(name, start, end, dow, option)
        for name, start, end, dow, option in (await session.execute(text(
            """SELECT name, start_time, end_time, day_of_week, booking_option FROM restaurant_service_periods
                WHERE restaurant_id = :r ORDER BY start_time, name"""), p)).all()
    )
    policy_row = (await session.execute(text(
        """SELECT adjacency_mode, overrun_policy, respect_booking_end, buffer_pre_minutes, buffer_post_minutes,
                  turn_bands, relax_overage, relaxed_max_overage, relax_member_limits, relax_adjacency
             FROM restaurant_allocator_policies WHERE restaurant_id = :r"""), p)).mappings().first()
    scarcity = {
        tt: float(score)
        for tt, score in (await session.execute(text(
            "SELECT table_type, scarcity_score FROM table_scarcity_metrics WHERE restaurant_id = :r"), p)).all()
    }
    profiles = tuple(
        DemandProfile(int(dow), str(window), float(mult))
        for dow, window, mult in (await session.execute(text(
            """SELECT day_of_week, service_window, multiplier FROM demand_profiles
                WHERE restaurant_id = :r ORDER BY day_of_week, service_window, priority NULLS LAST, id"""), p)).all()
    )
    flags: dict[str, bool] = {}
    for flag, value in (await session.execute(text(
        """SELECT flag, value FROM feature_flag_overrides
            WHERE flag = ANY (:flags) AND (environment IS NULL OR environment = :env)
            ORDER BY (environment IS NULL) DESC, updated_at NULLS FIRST"""),
        {"flags": list(FLAG_OVERRIDES), "env": environment})).all():
        flags[flag] = bool(value)  # environment-specific rows come last and win
    day = DayInput(
        restaurant_id=str(restaurant_id),
        service_date=service_date,
        tables=tables,
        bookings=bookings,
        adjacency=adjacency,
        policy=_policy(timezone, periods, dict(policy_row) if policy_row is not None else None),
        busy=busy,
        holds=holds,
        scarcity_metrics=scarcity,
        demand_profiles=profiles,
        now=now,
    )
    return day, flags


def apply_flag_overrides(config: AllocatorConfig, flags: Mapping[str, bool]) -> AllocatorConfig:
    changes: dict[str, Any] = {FLAG_OVERRIDES[k]: v for k, v in flags.items() if k in FLAG_OVERRIDES}
    return replace(config, **changes) if changes else config


# --------------------------------------------------------------------------------------------------
# run lock
# --------------------------------------------------------------------------------------------------
def run_lock_name(restaurant_id: uuid.UUID, service_date: date) -> str:
    return f"capacity:auto-assign:{restaurant_id}:{service_date.isoformat()}"


@contextlib.asynccontextmanager
async def run_lock(engine: AsyncEngine, restaurant_id: uuid.UUID, service_date: date) -> AsyncIterator[None]:
    """Hold the (restaurant, date) auto-assign lock for the block; raises :class:`RunInProgress` at once.

    A transaction-level lock in a transaction this connection keeps open for the whole run (the
    per-booking commits use other connections, so they do not release it). Not a session-level lock:
    behind a transaction-mode pooler the unlock may reach another server connection, and the lock
    would stay behind on the first one for whoever gets it next (found by tests/api/test_pgbouncer.py).
    """
    async with engine.connect() as conn:
        name = run_lock_name(restaurant_id, service_date)
        got = (await conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended(:n, 0))"), {"n": name})).scalar_one()
        if not got:
            await conn.rollback()
            raise RunInProgress(name)
        try:
            yield
        finally:
            try:
                await conn.rollback()  # ends the transaction, and with it the lock
            except DBAPIError:
                # the connection broke: the server released the lock with the session; never pool it
                await conn.invalidate()


# --------------------------------------------------------------------------------------------------
# commit
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CommitOutcome:
    ok: bool
    table_ids: tuple[str, ...] = ()
    code: str | None = None  # skip reason code when not ok
    sqlstate: str | None = None
    message: str | None = None
    retryable: bool = False  # another table set may succeed (conflict / validation)
    already_assigned: bool = False  # the booking held exactly this set before (a retried run)


# The commit path's own errors have SQLSTATEs of their own, class "CA" (revision 0009,
# docs/schema.md §3.7), so the class comes from the SQLSTATE alone: their message texts are kept for the original
# platform's callers and may change without changing what the service does. Anything else raised as
# P0001 (raise_exception) is not one of ours and ends as a repository error.
COMMIT_ERROR_STATES: Mapping[str, tuple[str, bool]] = {
    "CA001": (CAPACITY_EXCEEDED, False),  # capacity_exceeded_post_assignment
    "CA002": (ASSIGNMENT_CONFLICT, True),  # allocations_no_overlap
    "CA003": (ASSIGNMENT_CONFLICT, True),  # hold conflict
}


def classify(sqlstate: str | None) -> tuple[str, bool]:
    """(skip code, retry with another table set?) from the SQLSTATE: docs/assign-tables.md §8.3 [REC]."""
    if sqlstate is None:
        return ASSIGNMENT_REPOSITORY_ERROR, False
    if sqlstate in COMMIT_ERROR_STATES:
        return COMMIT_ERROR_STATES[sqlstate]
    if sqlstate in _CONFLICT_STATES:
        return ASSIGNMENT_CONFLICT, True
    if sqlstate in _VALIDATION_STATES:
        return ASSIGNMENT_VALIDATION, True
    return ASSIGNMENT_REPOSITORY_ERROR, False


# One statement per booking (revision 0007's commit_planned_assignment: tenant context, booking lock, status
# and held-tables checks, assign_tables_atomic_v2), run outside an explicit transaction so it is its own. Raw
# asyncpg on the pooled connection: a 400-booking day makes ~265 of these in a row, and both SQLAlchemy's
# per-statement overhead and the six round trips of the step-by-step version were a third of commit time.
_COMMIT = "SELECT outcome, booking_status, table_id FROM commit_planned_assignment($1, $2, $3::uuid[], $4, $5, $6, $7, $8)"
# The same for a batch of bookings in one statement (see commit_batch).
_COMMIT_BATCH = (
    "SELECT booking_id, outcome, booking_status, table_id, error_sqlstate, error_message"
    " FROM commit_planned_assignments($1, $2::jsonb, $3)"
)


# What a statement bounded by :func:`_fetch_bounded` fails with when its time is up: lock_not_available
# (lock_timeout) and query_canceled (statement_timeout).
TIMEOUT_STATES = frozenset({"55P03", "57014"})


async def _fetch_bounded(pg: asyncpg.Connection, timeout_ms: int | None, sql: str, *args: Any) -> list[asyncpg.Record]:
    """``pg.fetch`` in a transaction of its own whose lock waits and run time end after ``timeout_ms``
    (None: the connection's own limits). SET LOCAL lives and dies with the transaction, so it is safe
    behind a transaction-mode pooler (the pooled server connection keeps nothing of it)."""
    rows: list[asyncpg.Record]
    if timeout_ms is None:
        rows = await pg.fetch(sql, *args)
        return rows
    if timeout_ms < 1:
        raise ValueError("timeout_ms must be at least 1 (0 would switch the limits off)")
    ms = int(timeout_ms)
    # one round trip: BEGIN and both limits as one simple query
    await pg.execute(f"BEGIN; SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}")
    try:
        rows = await pg.fetch(sql, *args)
    except BaseException:
        if not pg.is_closed() and pg.is_in_transaction():
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await pg.execute("ROLLBACK")
        raise
    await pg.execute("COMMIT")
    return rows


class ConnectionLost(ConnectionError):
    """The database connection broke during a commit (the run ends with 503)."""


@contextlib.asynccontextmanager
async def commit_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection for all commits of a run (one checkout and ping, not one per booking)."""
    try:
        async with engine.connect() as sa_conn:
            raw = await sa_conn.get_raw_connection()
            yield raw.driver_connection
    except (asyncpg.InterfaceError, OSError) as exc:
        raise ConnectionLost(str(exc)) from exc


async def commit_assignment(
    pg: asyncpg.Connection,
    restaurant_id: uuid.UUID,
    booking_id: str,
    table_ids: tuple[str, ...],
    *,
    idempotency_key: str,
    require_adjacency: bool,
    assigned_by: uuid.UUID | None,
    start_at: datetime,
    end_at: datetime,
    timeout_ms: int | None = None,
) -> CommitOutcome:
    """Commit one booking's table set in its own transaction on ``pg`` (see :func:`commit_connection`), its
    lock waits and run time bounded by ``timeout_ms`` when given (the run's deadline).
    Database errors become outcomes; a broken connection raises :class:`ConnectionLost` (503 for the run)."""
    wanted = [uuid.UUID(t) for t in sorted(set(table_ids))]
    try:
        rows = await _fetch_bounded(pg, timeout_ms, _COMMIT, restaurant_id, uuid.UUID(booking_id), wanted,
                                    idempotency_key, require_adjacency, assigned_by, start_at, end_at)
    except asyncpg.PostgresError as exc:
        _raise_if_fatal(exc.sqlstate, str(exc), exc)
        return _error_outcome(exc.sqlstate, str(exc))
    except (asyncpg.InterfaceError, OSError) as exc:
        raise ConnectionLost(str(exc)) from exc
    return _outcome(rows)


async def commit_batch(
    pg: asyncpg.Connection,
    restaurant_id: uuid.UUID,
    planned: Sequence[PlannedAssignment],
    *,
    assigned_by: uuid.UUID | None,
    timeout_ms: int | None = None,
) -> dict[str, CommitOutcome] | None:
    """Commit each booking's planned set in one statement for the whole batch (``commit_planned_assignments``:
    one transaction, a subtransaction per booking, every lock taken up front). Returns each booking's
    outcome, as :func:`commit_assignment` would; None when the statement failed as a whole (e.g. a statement
    or lock timeout), in which case nothing of the batch was written and the caller commits one by one.
    ``timeout_ms``: as for :func:`commit_assignment`."""
    items = [
        {
            "booking_id": p.booking_id,
            "table_ids": sorted(set(p.table_ids)),
            "idempotency_key": p.idempotency_key,
            "require_adjacency": p.require_adjacency,
            "start_at": p.block_start.isoformat(),
            "end_at": p.block_end.isoformat(),
        }
        for p in planned
    ]
    try:
        rows = await _fetch_bounded(pg, timeout_ms, _COMMIT_BATCH, restaurant_id, json.dumps(items), assigned_by)
    except asyncpg.PostgresError as exc:
        _raise_if_fatal(exc.sqlstate, str(exc), exc)
        log.warning("batch commit failed as a whole (SQLSTATE %s); committing its %d bookings one by one",
                    exc.sqlstate, len(items))
        return None
    except (asyncpg.InterfaceError, OSError) as exc:
        raise ConnectionLost(str(exc)) from exc
    by_booking: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        by_booking.setdefault(str(row["booking_id"]), []).append(row)
    out: dict[str, CommitOutcome] = {}
    for booking_id, booking_rows in by_booking.items():
        first = booking_rows[0]
        if first["outcome"] == "error":
            _raise_if_fatal(first["error_sqlstate"], first["error_message"], None)
            out[booking_id] = _error_outcome(first["error_sqlstate"], first["error_message"])
        else:
            out[booking_id] = _outcome(booking_rows)
    return out


def _outcome(rows: Sequence[Mapping[str, Any]]) -> CommitOutcome:
    """A booking's rows from commit_planned_assignment(s) as an outcome."""
    outcome = rows[0]["outcome"] if rows else "not_found"
    tables = tuple(str(r["table_id"]) for r in rows if r["table_id"] is not None)
    if outcome == "assigned":
        return CommitOutcome(True, tables)
    if outcome == "already_assigned":  # docs/assign-tables.md §8.5 [REC]: the identical set is a retry
        return CommitOutcome(True, tables, already_assigned=True)
    if outcome == "holds_other_tables":  # docs/assign-tables.md §8.5 [REC]: never a second table set
        return CommitOutcome(False, code=ASSIGNMENT_CONFLICT, message="booking already holds other tables")
    if outcome == "inactive":  # cancelled (or seated, …) since the day was read
        return CommitOutcome(False, code=ASSIGNMENT_VALIDATION, message=f"booking is {rows[0]['booking_status']}")
    return CommitOutcome(False, code=ASSIGNMENT_VALIDATION, sqlstate="P0002",
                         message="booking not found for this restaurant")


def _raise_if_fatal(state: str | None, message: str, cause: BaseException | None) -> None:
    """A broken connection or a schema older than the code ends the run (503), never a skip."""
    if state and (state.startswith("08") or state.startswith("57P")):
        raise ConnectionLost(message) from cause
    if state in SCHEMA_STATES:
        raise SchemaOutOfDate(f"{message} (SQLSTATE {state})") from cause


def _error_outcome(state: str | None, message: str) -> CommitOutcome:
    code, retryable = classify(state)
    return CommitOutcome(False, code=code, sqlstate=state, message=message, retryable=retryable)
