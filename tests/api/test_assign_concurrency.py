"""Concurrency and outages of POST /api/ops/dashboard/assign-tables (docs/assign-tables.md §8.5, case 45): two
runs for one restaurant-day never double-book a table nor give a booking two table sets — with the run
lock (two replicas), and without it (the commit transaction and the database constraints are the last
line of defence: conflicts become skips, never a 500). A database outage is 503 with Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from service.assign import repository as repo
from service.assign import service as assign_service
from tests.api.assign_support import AssignWorld, seed_assign_world
from tests.api.conftest import make_settings, running_app


@pytest.fixture
def busy(head_db: str) -> AssignWorld:
    """The floor plus a crowded evening: more parties than the four tables can seat."""
    aw = seed_assign_world(head_db, make_settings(head_db, strategic_config_listen=False))
    for start, end, party in [
        ("17:00", "18:30", 2), ("17:15", "18:45", 4), ("17:30", "19:00", 3), ("18:00", "19:30", 2),
        ("18:15", "19:45", 4), ("18:45", "20:15", 2), ("19:00", "20:30", 4), ("19:30", "21:00", 6),
        ("20:00", "21:30", 2), ("20:30", "22:00", 4), ("21:00", "22:30", 3),
    ]:
        aw.booking(party, start, end, status="pending_allocation")
    return aw


def _assert_consistent(aw: AssignWorld) -> dict[str, set[str]]:
    """No table double-booked, no booking with two table sets (one key, one merge group per booking)."""
    overlaps = aw.sql(
        """SELECT count(*) FROM booking_table_assignments x JOIN booking_table_assignments y
             ON x.table_id = y.table_id AND x.id < y.id
            AND tstzrange(x.start_at, x.end_at, '[)') && tstzrange(y.start_at, y.end_at, '[)')
           JOIN bookings b ON b.id = x.booking_id WHERE b.restaurant_id = %s""", (aw.rid,))
    assert overlaps == [(0,)]
    sets = aw.sql(
        """SELECT a.booking_id, count(DISTINCT a.idempotency_key), count(DISTINCT i.idempotency_key)
             FROM booking_table_assignments a JOIN bookings b ON b.id = a.booking_id
             LEFT JOIN booking_assignment_idempotency i ON i.booking_id = a.booking_id
            WHERE b.restaurant_id = %s GROUP BY a.booking_id""", (aw.rid,))
    assert all(keys == 1 and ledger == 1 for _, keys, ledger in sets), sets
    return aw.assignments()


def _reported(bodies: list[dict]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for body in bodies:
        for a in body["assigned"]:
            assert out.setdefault(a["bookingId"], set(a["tableIds"])) == set(a["tableIds"])
    return out


async def test_two_replicas_at_once(busy: AssignWorld) -> None:
    async with running_app(busy.settings) as (_, one), running_app(busy.settings) as (_, two):
        first, second = await asyncio.gather(busy.assign(one), busy.assign(two))
    statuses = sorted([first.status_code, second.status_code])
    assert statuses in ([200, 200], [200, 409]), (first.text, second.text)
    for resp in (first, second):
        if resp.status_code == 409:
            assert resp.json()["code"] == "ASSIGNMENT_RUN_IN_PROGRESS" and resp.headers["Retry-After"]
    stored = _assert_consistent(busy)
    oks = [r.json() for r in (first, second) if r.status_code == 200]
    assert _reported(oks) == stored
    assert len(stored) >= 4  # the day was really assigned


async def test_without_the_run_lock_the_database_still_wins(
    busy: AssignWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both runs plan the same snapshot and commit the same tables; the loser's bookings end up skipped
    (ASSIGNMENT_CONFLICT) or reported as already holding that very set — every answer is a 200."""

    @contextlib.asynccontextmanager
    async def no_lock(*_a, **_k):
        yield

    monkeypatch.setattr(repo, "run_lock", no_lock)
    async with running_app(busy.settings) as (_, one), running_app(busy.settings) as (_, two):
        responses = await asyncio.gather(busy.assign(one), busy.assign(two), busy.assign(one))
    assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
    stored = _assert_consistent(busy)
    bodies = [r.json() for r in responses]
    assert _reported(bodies) == stored
    for body in bodies:
        for s in body["skipped"]:
            assert s["reasonCode"] in {"ASSIGNMENT_CONFLICT", "CONFLICTS_EXISTING", "NO_SUITABLE_TABLES",
                                       "SERVICE_OVERRUN"}


@pytest.mark.parametrize("pair", [("t2", "t3"), ("t1", "t4")])  # same zone (the dangerous one), two zones
async def test_concurrent_commits_of_one_booking_give_one_table_set(busy: AssignWorld, pair: tuple[str, str]) -> None:
    """The booking row lock in the commit transaction: two different sets at once → exactly one wins."""
    engine = create_async_engine(
        "postgresql+asyncpg" + busy.settings.database_url.get_secret_value().removeprefix("postgresql"))
    start, end = datetime(2031, 6, 13, 17, 0, tzinfo=UTC), datetime(2031, 6, 13, 19, 5, tzinfo=UTC)
    try:
        for _ in range(5):
            booking = busy.booking(2, "18:00", "20:00", status="pending_allocation", date=busy.floor.date)

            async def commit(table: str, booking=booking):
                async with repo.commit_connection(engine) as pg:
                    return await repo.commit_assignment(
                        pg, busy.rid, str(booking), (busy.table(table),), idempotency_key=f"k-{table}",
                        require_adjacency=False, assigned_by=None, start_at=start, end_at=end)

            outcomes = await asyncio.gather(*(commit(t) for t in pair))
            assert sorted(o.ok for o in outcomes) == [False, True], outcomes
            loser = next(o for o in outcomes if not o.ok)
            assert loser.code == "ASSIGNMENT_CONFLICT"
            assert len(busy.assignments()[str(booking)]) == 1
            busy.sql("DELETE FROM allocations WHERE booking_id = %s", (booking,))
            busy.sql("DELETE FROM booking_table_assignments WHERE booking_id = %s", (booking,))
    finally:
        await engine.dispose()


async def test_database_outage_during_the_run_is_503(busy: AssignWorld) -> None:
    async with running_app(busy.settings) as (app, _):
        live = app.state.engine
        app.state.engine = create_async_engine("postgresql+asyncpg://capacity_app@127.0.0.1:1/none",
                                               connect_args={"timeout": 1})
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                resp = await busy.assign(http)
        finally:
            await app.state.engine.dispose()
            app.state.engine = live
    assert resp.status_code == 503, resp.text
    assert resp.json()["code"] == "DATABASE_UNAVAILABLE"
    assert resp.headers["Retry-After"].isdigit()
    assert busy.assignments() == {}


def test_unknown_sqlstates_are_repository_errors() -> None:
    """Case 44 classification table (docs/assign-tables.md §8.3): by SQLSTATE alone (docs/schema.md §6.1)."""
    assert repo.classify("23P01") == ("ASSIGNMENT_CONFLICT", True)
    assert repo.classify("23505") == ("ASSIGNMENT_CONFLICT", True)
    assert repo.classify("CA002") == ("ASSIGNMENT_CONFLICT", True)
    assert repo.classify("CA003") == ("ASSIGNMENT_CONFLICT", True)
    assert repo.classify("CA001") == ("CAPACITY_EXCEEDED", False)
    for state in ("23514", "23503", "23502", "22023", "22000", "P0002", "P0003"):
        assert repo.classify(state) == ("ASSIGNMENT_VALIDATION", True)
    assert repo.classify("XX000") == ("ASSIGNMENT_REPOSITORY_ERROR", False)
    assert repo.classify("42501") == ("ASSIGNMENT_REPOSITORY_ERROR", False)
    # a bare raise_exception is nobody's class, whatever its text says
    assert repo.classify("P0001") == ("ASSIGNMENT_REPOSITORY_ERROR", False)
    assert repo.classify(None) == ("ASSIGNMENT_REPOSITORY_ERROR", False)


async def test_connection_lost_mid_run_is_503_and_earlier_commits_stay(
    busy: AssignWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/assign-tables.md §8.3: a lost connection ends the run with 503; bookings committed before it stay committed (the
    commits run on parallel lanes, so "before" is whatever reported ok, on any lane)."""
    real = repo.commit_batch
    calls = 0
    committed: dict[str, set[str]] = {}

    async def flaky(pg, rid, planned, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 3:
            # what the real connection does when the server goes away mid-commit
            await pg.close()
        outcomes = await real(pg, rid, planned, **kwargs)
        for booking_id, outcome in (outcomes or {}).items():
            if outcome.ok:
                committed[booking_id] = set(outcome.table_ids)
        return outcomes

    monkeypatch.setattr(assign_service, "COMMIT_BATCH_SIZE", 1)  # one booking per statement: "two before"
    monkeypatch.setattr(repo, "commit_batch", flaky)
    async with running_app(busy.settings) as (_, http):
        resp = await busy.assign(http)
    assert resp.status_code == 503, resp.text
    assert resp.json()["code"] == "DATABASE_UNAVAILABLE" and resp.headers["Retry-After"].isdigit()
    assert len(committed) >= 2  # the two commits before the loss
    assert busy.assignments() == committed  # exactly the commits that reported ok stayed
    _assert_consistent(busy)


def test_commit_lanes_keep_each_zone_on_one_lane_in_plan_order() -> None:
    """Parallel commits: a zone never spans two lanes (the commit function locks per zone), each lane keeps
    the plan's order, the biggest zones are spread first, and no more lanes than zones or COMMIT_LANES."""
    from types import SimpleNamespace

    from service.assign.service import commit_lanes

    zones = {"a1": "A", "a2": "A", "b1": "B", "c1": "C", "d1": "D"}
    day = SimpleNamespace(tables=[SimpleNamespace(id=t, zone_id=z) for t, z in zones.items()])
    plan = [SimpleNamespace(booking_id=f"k{i}", table_ids=(t,))
            for i, t in enumerate(["a1", "b1", "a2", "c1", "a1", "b1", "d1", "a2"])]
    lanes = commit_lanes(day, plan, 3)  # type: ignore[arg-type]
    assert [[p.booking_id for p in lane] for lane in lanes] == [
        ["k0", "k2", "k4", "k7"],  # zone A (4 bookings) alone
        ["k1", "k5"],  # zone B (2)
        ["k3", "k6"],  # zones C and D (1 each) on the lightest lane
    ]
    assert len(commit_lanes(day, plan, 1)) == 1 and commit_lanes(day, plan, 1)[0] == plan
    assert len(commit_lanes(day, plan[:1], 3)) == 1  # one zone: one lane


async def test_a_batch_that_fails_as_a_whole_is_committed_one_by_one(
    busy: AssignWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """A staff transaction holds one planned booking's row past the statement timeout: the batch holding it
    times out as a whole (nothing of it written) and its bookings are committed one by one — every other
    planned booking is assigned, the locked one is skipped, and the day still answers 200."""
    settings = make_settings(busy.db_url, strategic_config_listen=False, db_statement_timeout_ms=400)
    async with running_app(settings) as (_, http):
        dry = (await busy.assign(http, dryRun=True)).json()
        planned = {a["bookingId"] for a in dry["assigned"]}
        victim = dry["assigned"][0]["bookingId"]
        with psycopg.connect(busy.db_url) as staff:
            staff.execute("SELECT 1 FROM bookings WHERE id = %s FOR UPDATE", (victim,))
            resp = await busy.assign(http)
            staff.rollback()
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {a["bookingId"] for a in body["assigned"]} == planned - {victim}
    skip = next(s for s in body["skipped"] if s["bookingId"] == victim)
    assert skip["reasonCode"] == "ASSIGNMENT_REPOSITORY_ERROR"
    assert set(busy.assignments()) == planned - {victim}
    _assert_consistent(busy)
    fallbacks = [r.getMessage() for r in caplog.records if "one by one" in r.getMessage()]
    assert len(fallbacks) == 1 and "SQLSTATE 57014" in fallbacks[0]  # the victim's batch, timed out
    assert int(fallbacks[0].split("its ")[1].split()[0]) >= 2  # with other bookings in it
