"""Plan + commit benchmark for auto-assign against real PostgreSQL (not a test).

Takes the synthetic day of bench/assign_day.py (``generate_day``, 60 tables / 400 bookings), writes it
into a fresh database at head (created and dropped by this script), then times what the endpoint does
after authorisation, with the endpoint's own planner options and commit function: read the day as the
runtime role, plan it, commit every planned booking through ``commit_planned_assignments`` (batches of
bookings per statement, each booking atomic on its own, on the endpoint's parallel commit lanes). ``measure`` is also what the plan + commit
column of bench/assign_day.py runs. The run lock and the strategic resolver are left out
(one statement each).

    uv run python bench/assign_commit.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
                                         [--seed N] [--rounds N] [--keep]

Target (issue 5): 400-booking day planned and committed in < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from assign_day import SCENARIOS, generate_day  # noqa: E402

from service.assign import repository as repo  # noqa: E402
from service.assign.service import commit_plan, endpoint_planner_options  # noqa: E402
from service.domain.allocator.model import DayInput  # noqa: E402
from service.domain.allocator.planner import plan_day  # noqa: E402
from service.domain.weights import StrategicWeights  # noqa: E402
from service.schema import migrate  # noqa: E402

NS = uuid.UUID("6f1c7a52-0c55-4f31-9a0e-55d8e2f1b4a0")


def _uid(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(NS, f"{kind}:{key}")


def _url(admin_url: str, database: str, user: str | None = None) -> str:
    url = make_url(admin_url).set(database=database)
    if user:
        url = url.set(username=user, password=None)
    return url.render_as_string(hide_password=False)


def seed(url: str, day: DayInput) -> uuid.UUID:
    """Write the synthetic day as rows; returns the restaurant id."""
    rid = _uid("restaurant", day.restaurant_id)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO restaurants (id, name, slug, timezone) VALUES (%s, 'Bench', 'bench', %s)",
                    (rid, day.policy.timezone))
        for zone in sorted({t.zone_id for t in day.tables if t.zone_id}):
            cur.execute("INSERT INTO zones (id, restaurant_id, name) VALUES (%s, %s, %s)",
                        (_uid("zone", zone), rid, zone))
        cur.executemany(
            """INSERT INTO table_inventory (id, restaurant_id, zone_id, table_number, capacity, min_party_size,
                                            max_party_size, category, mobility)
               VALUES (%s, %s, %s, %s, %s, %s, %s, 'dining', %s::table_mobility)""",
            [(_uid("table", t.id), rid, _uid("zone", t.zone_id or ""), t.number, t.capacity, t.min_party_size,
              t.max_party_size, t.mobility) for t in day.tables])
        cur.executemany("INSERT INTO table_adjacencies (table_a, table_b) VALUES (%s, %s)",
                        [(_uid("table", a), _uid("table", b)) for a, b in day.adjacency])
        cur.executemany(
            """INSERT INTO restaurant_service_periods (restaurant_id, name, start_time, end_time, booking_option)
               VALUES (%s, %s, %s, %s, %s)""",
            [(rid, p.name, p.start, p.end, p.kind) for p in day.policy.service_periods])
        # the generator's per-service overrun rules collapse to the restaurant's single policy: clamp
        cur.execute("INSERT INTO restaurant_allocator_policies (restaurant_id, overrun_policy) VALUES (%s, 'clamp')",
                    (rid,))
        cur.executemany(
            """INSERT INTO bookings (id, restaurant_id, booking_date, start_time, end_time, start_at, end_at,
                                     party_size, status, customer_name, customer_email, customer_phone, reference)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::booking_status, 'Guest', 'guest@example.test', '+440',
                       %s)""",
            [(_uid("booking", b.id), rid, b.booking_date, b.start_time,
              b.end_at.astimezone(b.start_at.tzinfo).time() if b.end_at and b.start_at else None,
              b.start_at, b.end_at, b.party_size, b.status, b.id) for b in day.bookings])
        for hold in day.holds:
            hid = _uid("hold", hold.id)
            zone = next(t.zone_id for t in day.tables if t.id == hold.table_ids[0])
            cur.execute("""INSERT INTO table_holds (id, restaurant_id, zone_id, start_at, end_at, expires_at)
                           VALUES (%s, %s, %s, %s, %s, now() + interval '1 day')""",
                        (hid, rid, _uid("zone", zone or ""), hold.start_at, hold.end_at))
            cur.executemany("INSERT INTO table_hold_members (hold_id, table_id) VALUES (%s, %s)",
                            [(hid, _uid("table", t)) for t in hold.table_ids])
        conn.commit()
        # bookings the generator seats by hand, through the same commit function staff flows use
        for b in day.bookings:
            if b.assigned_table_ids and b.start_at and b.end_at:
                try:
                    with conn.transaction():
                        cur.execute("SELECT 1 FROM assign_tables_atomic_v2(%s, %s, NULL, false, NULL, %s, %s)",
                                    (_uid("booking", b.id), [_uid("table", t) for t in b.assigned_table_ids],
                                     b.start_at, b.end_at))
                except psycopg.Error:
                    pass  # the generator does not avoid collisions between manual seatings
    return rid


async def run_once(runtime_url: str, rid: uuid.UUID, service_date) -> dict[str, float | int]:
    engine = create_async_engine("postgresql+asyncpg" + runtime_url.removeprefix("postgresql"), pool_size=4)
    try:
        async with engine.connect() as warm:  # connection set-up is not part of a request's cost
            await warm.close()
        t0 = time.perf_counter()
        from sqlalchemy.ext.asyncio import async_sessionmaker

        async with async_sessionmaker(engine)() as session:
            day, flags = await repo.load_day(session, rid, service_date, environment="production")
            await session.commit()
        t1 = time.perf_counter()
        plan = plan_day(day, None, StrategicWeights(), endpoint_planner_options(False, len(day.bookings)))
        t2 = time.perf_counter()
        outcomes = await commit_plan(engine, rid, day, plan, None)
        t3 = time.perf_counter()
        committed = sum(outcome.ok for outcome, _ in outcomes.values())
        skipped = len(outcomes) - committed
        return {"load_ms": (t1 - t0) * 1000, "plan_ms": (t2 - t1) * 1000, "commit_ms": (t3 - t2) * 1000,
                "total_ms": (t3 - t0) * 1000, "evaluated": len(plan.order), "committed": committed,
                "commit_skipped": skipped, "planner": plan.planner}
    finally:
        await engine.dispose()


def measure(day: DayInput, admin_url: str, rounds: int, *, keep: bool = False,
            report: Callable[[int, dict], None] | None = None) -> list[dict[str, float | int]]:
    """Time read + plan + commit of ``day`` ``rounds`` times, each in a fresh database at head."""
    results = []
    for round_no in range(rounds):
        name = f"capacity_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = _url(admin_url, name)
            migrate.upgrade(url, "head")
            rid = seed(url, day)
            # steady state, as in production: planner statistics present, the bulk load's dirty pages and
            # autovacuum work not competing with the timed run
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                conn.execute("CHECKPOINT")
            result = asyncio.run(run_once(_url(admin_url, name, "capacity_app"), rid, day.service_date))
            results.append(result)
            if report:
                report(round_no, result)
        finally:
            if not (keep and round_no == rounds - 1):
                with psycopg.connect(admin_url, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                print(f"kept database {name}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="fresh database per round")
    parser.add_argument("--keep", action="store_true", help="keep the last database (for inspection)")
    args = parser.parse_args(argv)
    scenario = SCENARIOS[0]
    day = generate_day(scenario, args.seed)

    def report(round_no: int, result: dict) -> None:
        print(f"round {round_no + 1}: " + ", ".join(
            f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))

    results = measure(day, args.admin_url, args.rounds, keep=args.keep, report=report)
    median = statistics.median(r["total_ms"] for r in results)
    print(f"{scenario.bookings} bookings / {scenario.tables} tables: median load+plan+commit {median:.0f} ms "
          f"(target < 1000 ms) — {'OK' if median < 1000 else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
