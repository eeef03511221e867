"""Stress test of auto-assign against real PostgreSQL (run by hand; a smaller run is in the suite).

On one restaurant-day: ``--runs`` concurrent assign requests (spread over ``--replicas`` app instances
sharing the database; a run refused with 409 because another holds the day's run lock retries after a
short jitter, so every one of them completes a run), while runs for ``--others`` other restaurants go on,
staff assign single bookings directly through ``assign_tables_atomic_v2`` (``--manual`` of them) and new
bookings keep arriving. Afterwards it checks what must hold whatever the interleaving:

- 0 overlapping allocations (no table held by two bookings at once), in the assignments and the ledger;
- no booking with two table sets (one idempotency key and one ledger row per assigned booking);
- every booking of every run answered assigned, or skipped with a reason code; after the stress, one
  more run per restaurant lists every still-unassigned booking as skipped with a reason;
- the confirmation cache consistent: the idempotency ledger's table set and the allocations ledger equal
  the stored assignments of each booking; the day-level run writes no booking_confirmation_results row.

Same-run baseline: one run of an identical restaurant alone, before the stress.

    uv run python bench/stress_assign.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--runs 20] [--others 3] [--manual 40] [--tables 24] [--bookings 120] [--replicas 2] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from pydantic import SecretStr
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.app import create_app  # noqa: E402
from service.auth import mint_token  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests.support.floor import SERVICE_DATE, TIMEZONE  # noqa: E402

ASSIGN = "/api/ops/dashboard/assign-tables"
JWT_SECRET = "stress-secret-0123456789abcdef0123456789"
CAPACITIES = (2, 2, 4, 4, 6, 8)


@dataclass
class StressConfig:
    runs: int = 20
    others: int = 3
    other_runs: int = 4  # runs per other restaurant
    manual: int = 40
    tables: int = 24
    bookings: int = 120
    arrivals: int = 20  # bookings added to the main day while the runs go on
    replicas: int = 2
    seed: int = 7


@dataclass
class Restaurant:
    rid: uuid.UUID
    owner: uuid.UUID
    tables: list[tuple[uuid.UUID, uuid.UUID, int]]  # (table, zone, capacity)


@dataclass
class Report:
    statuses: dict[int, int] = field(default_factory=dict)
    main_runs: list[float] = field(default_factory=list)  # seconds per successful run of the main day
    refused_409: int = 0
    manual_ok: int = 0
    manual_rejected: dict[str, int] = field(default_factory=dict)
    unexplained: list[str] = field(default_factory=list)  # a booking neither assigned nor skipped with a reason
    invariants: dict[str, int] = field(default_factory=dict)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    assigned_bookings: int = 0
    seconds: float = 0.0
    baseline_s: float = 0.0

    def ok(self) -> bool:
        return (
            not self.unexplained
            and all(v == 0 for v in self.invariants.values())
            and set(self.statuses) <= {200, 409}
        )


def _with(url: str, *, database: str | None = None, user: str | None = None) -> str:
    u = make_url(url)
    if database:
        u = u.set(database=database)
    if user:
        u = u.set(username=user, password=None)
    return u.render_as_string(hide_password=False)


def _booking(cur: psycopg.Cursor, rid: uuid.UUID, rng: random.Random) -> uuid.UUID:
    booking = uuid.uuid4()
    start_min = 17 * 60 + 15 * rng.randrange(0, 19)  # 17:00 … 21:30
    length = rng.choice((90, 105, 120))
    start = f"{start_min // 60:02d}:{start_min % 60:02d}"
    end_min = min(start_min + length, 23 * 60)
    end = f"{end_min // 60:02d}:{end_min % 60:02d}"
    cur.execute(
        """INSERT INTO bookings (id, restaurant_id, booking_date, start_time, end_time, start_at, end_at, party_size,
                                 status, customer_name, customer_email, customer_phone, reference)
           VALUES (%(id)s, %(r)s, %(d)s, %(s)s, %(e)s, (%(d)s::date + %(s)s::time) AT TIME ZONE %(tz)s,
                   (%(d)s::date + %(e)s::time) AT TIME ZONE %(tz)s, %(p)s, 'pending_allocation',
                   'Guest', 'guest@example.test', '+440000000', %(ref)s)""",
        {"id": booking, "r": rid, "d": SERVICE_DATE, "s": start, "e": end, "tz": TIMEZONE,
         "p": rng.choice((1, 2, 2, 2, 3, 4, 4, 5, 6, 8)), "ref": f"S-{booking.hex[:10]}"},
    )
    return booking


def seed_restaurant(url: str, rng: random.Random, tables: int, bookings: int) -> Restaurant:
    rid, owner = uuid.uuid4(), uuid.uuid4()
    zones = [uuid.uuid4() for _ in range(3)]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO restaurants (id, name, slug, timezone) VALUES (%s, 'Stress', %s, %s)",
                    (rid, f"stress-{rid.hex[:10]}", TIMEZONE))
        for n, zone in enumerate(zones):
            cur.execute("INSERT INTO zones (id, restaurant_id, name) VALUES (%s, %s, %s)", (zone, rid, f"Z{n}"))
        made: list[tuple[uuid.UUID, uuid.UUID, int]] = []
        for n in range(tables):
            table, zone, capacity = uuid.uuid4(), zones[n % len(zones)], CAPACITIES[n % len(CAPACITIES)]
            cur.execute(
                """INSERT INTO table_inventory (id, restaurant_id, zone_id, table_number, capacity, category, mobility)
                   VALUES (%s, %s, %s, %s, %s, 'dining', 'movable')""", (table, rid, zone, f"T{n + 1}", capacity))
            made.append((table, zone, capacity))
        for zone in zones:  # neighbours in a zone are adjacent: merges are possible
            in_zone = [t for t, z, _ in made if z == zone]
            for a, b in zip(in_zone, in_zone[1:], strict=False):
                cur.execute("INSERT INTO table_adjacencies (table_a, table_b) VALUES (%s, %s)", (a, b))
        cur.execute("""INSERT INTO restaurant_service_periods (restaurant_id, name, start_time, end_time, booking_option)
                       VALUES (%s, 'Dinner', '17:00', '23:00', 'dinner')""", (rid,))
        cur.execute("INSERT INTO restaurant_memberships (user_id, restaurant_id, role) VALUES (%s, %s, 'owner')",
                    (owner, rid))
        for _ in range(bookings):
            _booking(cur, rid, rng)
    return Restaurant(rid=rid, owner=owner, tables=made)


@contextlib.asynccontextmanager
async def _replica(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://stress", timeout=120) as client:
            yield client


def _check_answer(report: Report, body: dict[str, Any]) -> None:
    for s in body["skipped"]:
        if not s.get("reasonCode") or not s.get("reason"):
            report.unexplained.append(s["bookingId"])
        report.skip_reasons[s["reasonCode"]] = report.skip_reasons.get(s["reasonCode"], 0) + 1


async def _run(client: httpx.AsyncClient, settings: Settings, r: Restaurant, report: Report,
               rng: random.Random) -> float:
    """One completed run of the restaurant's day (409s retried after a jitter); its seconds."""
    headers = {"Authorization": f"Bearer {mint_token(settings, sub=str(r.owner))}"}
    body = {"restaurantId": str(r.rid), "date": SERVICE_DATE.isoformat(), "captureDecisions": False}
    while True:
        started = time.perf_counter()
        resp = await client.post(ASSIGN, json=body, headers=headers)
        report.statuses[resp.status_code] = report.statuses.get(resp.status_code, 0) + 1
        if resp.status_code == 409:
            report.refused_409 += 1
            await asyncio.sleep(rng.uniform(0.01, 0.05))  # back-off jitter, not ordering
            continue
        if resp.status_code != 200:
            report.unexplained.append(f"HTTP {resp.status_code}: {resp.text[:200]}")
            return 0.0
        data = resp.json()
        _check_answer(report, data)
        answered = {a["bookingId"] for a in data["assigned"]} | {s["bookingId"] for s in data["skipped"]}
        if len(answered) != len(data["assigned"]) + len(data["skipped"]):
            report.unexplained.append("a booking answered twice in one run")
        return time.perf_counter() - started


def _manual(url: str, r: Restaurant, rng: random.Random, report: Report) -> None:
    """Staff assign one still-unassigned booking by hand, through the database function."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            """SELECT b.id, b.party_size FROM bookings b
                WHERE b.restaurant_id = %s AND NOT EXISTS (SELECT 1 FROM booking_table_assignments a
                                                             WHERE a.booking_id = b.id)
                ORDER BY random() LIMIT 1""", (r.rid,)).fetchone()
        if row is None:
            return
        booking, party = row
        fitting = [t for t, _, capacity in r.tables if capacity >= party]
        if not fitting:
            return
        table = rng.choice(fitting)
        try:
            conn.execute("SELECT * FROM assign_tables_atomic_v2(%s, %s, %s, false, NULL, NULL, NULL)",
                         (booking, [table], f"staff-{uuid.uuid4().hex[:12]}"))
            report.manual_ok += 1
        except psycopg.Error as exc:  # overlap, raced booking, …: the database refuses, nothing half-done
            state = exc.sqlstate or type(exc).__name__
            report.manual_rejected[state] = report.manual_rejected.get(state, 0) + 1


def _arrivals(url: str, r: Restaurant, rng: random.Random, count: int) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for _ in range(count):
            _booking(cur, r.rid, rng)


def check_invariants(url: str, rids: list[uuid.UUID]) -> dict[str, int]:
    ids = [str(r) for r in rids]
    with psycopg.connect(url, autocommit=True) as conn:
        def one(sql: str) -> int:
            return int(conn.execute(sql, {"r": ids}).fetchone()[0])

        return {
            "overlapping assignments": one(
                """SELECT count(*) FROM booking_table_assignments x JOIN booking_table_assignments y
                     ON x.table_id = y.table_id AND x.id < y.id
                    AND tstzrange(x.start_at, x.end_at, '[)') && tstzrange(y.start_at, y.end_at, '[)')
                   JOIN bookings b ON b.id = x.booking_id WHERE b.restaurant_id::text = ANY(%(r)s)"""),
            "overlapping ledger allocations": one(
                """SELECT count(*) FROM allocations x JOIN allocations y
                     ON x.resource_type = y.resource_type AND x.resource_id = y.resource_id AND x.id < y.id
                    AND x."window" && y."window" AND NOT x.shadow AND NOT y.shadow
                  WHERE x.restaurant_id::text = ANY(%(r)s)"""),
            "bookings with two table sets": one(
                """SELECT count(*) FROM (
                     SELECT a.booking_id FROM booking_table_assignments a JOIN bookings b ON b.id = a.booking_id
                      WHERE b.restaurant_id::text = ANY(%(r)s)
                      GROUP BY a.booking_id
                     HAVING count(DISTINCT a.idempotency_key) > 1 OR count(DISTINCT a.start_at) > 1
                         OR (SELECT count(*) FROM booking_assignment_idempotency i
                              WHERE i.booking_id = a.booking_id) <> 1) s"""),
            "ledger table set differs from the assignments": one(
                """SELECT count(*) FROM (
                     SELECT a.booking_id, array_agg(a.table_id ORDER BY a.table_id) AS tables
                       FROM booking_table_assignments a JOIN bookings b ON b.id = a.booking_id
                      WHERE b.restaurant_id::text = ANY(%(r)s) GROUP BY a.booking_id) s
                   JOIN booking_assignment_idempotency i ON i.booking_id = s.booking_id
                  WHERE ARRAY(SELECT DISTINCT x FROM unnest(i.table_ids) AS x ORDER BY x) <> s.tables"""),
            "allocations differ from the assignments": one(
                """SELECT count(*) FROM (
                     SELECT booking_id, resource_id FROM allocations
                      WHERE resource_type = 'table' AND NOT shadow AND restaurant_id::text = ANY(%(r)s)
                     EXCEPT SELECT a.booking_id, a.table_id FROM booking_table_assignments a
                      JOIN bookings b ON b.id = a.booking_id WHERE b.restaurant_id::text = ANY(%(r)s)
                   ) d"""),
            "assignments without an allocation": one(
                """SELECT count(*) FROM booking_table_assignments a JOIN bookings b ON b.id = a.booking_id
                    WHERE b.restaurant_id::text = ANY(%(r)s) AND NOT EXISTS (
                      SELECT 1 FROM allocations l WHERE l.booking_id = a.booking_id AND l.resource_type = 'table'
                         AND l.resource_id = a.table_id AND NOT l.shadow)"""),
            "confirmation results written by day runs": one(
                "SELECT count(*) FROM booking_confirmation_results WHERE restaurant_id::text = ANY(%(r)s)"),
        }


async def stress(admin_db_url: str, cfg: StressConfig) -> Report:
    """Run the stress on the database at ``admin_db_url`` (superuser, at head); the app connects as the
    runtime role capacity_app."""
    rng = random.Random(cfg.seed)
    main = seed_restaurant(admin_db_url, rng, cfg.tables, cfg.bookings)
    others = [seed_restaurant(admin_db_url, rng, cfg.tables, cfg.bookings // 2) for _ in range(cfg.others)]
    twin = seed_restaurant(admin_db_url, random.Random(cfg.seed), cfg.tables, cfg.bookings)  # baseline day
    settings = Settings(database_url=SecretStr(_with(admin_db_url, user="capacity_app")),
                        capacity_jwt_secret=SecretStr(JWT_SECRET), strategic_config_listen=False,
                        db_pool_size=10, readiness_cache_s=0)
    report = Report()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(_replica(settings)) for _ in range(cfg.replicas)]
        report.baseline_s = await _run(clients[0], settings, twin, Report(), rng)
        started = time.perf_counter()

        async def main_run(i: int) -> None:
            report.main_runs.append(await _run(clients[i % len(clients)], settings, main, report, rng))

        async def other_runs(i: int, r: Restaurant) -> None:
            for _ in range(cfg.other_runs):
                await _run(clients[i % len(clients)], settings, r, report, rng)

        async def staff() -> None:
            for _ in range(cfg.manual):
                await asyncio.to_thread(_manual, admin_db_url, main, rng, report)

        async def arrivals() -> None:
            for _ in range(cfg.arrivals):
                await asyncio.to_thread(_arrivals, admin_db_url, main, rng, 1)

        await asyncio.gather(
            *(main_run(i) for i in range(cfg.runs)),
            *(other_runs(i, r) for i, r in enumerate(others)),
            staff(), arrivals(),
        )
        report.seconds = time.perf_counter() - started
        # the closing runs: every booking still without tables must be reported skipped with a reason
        for r in (main, *others):
            headers = {"Authorization": f"Bearer {mint_token(settings, sub=str(r.owner))}"}
            resp = await clients[0].post(ASSIGN, json={"restaurantId": str(r.rid), "date": SERVICE_DATE.isoformat(),
                                                       "captureDecisions": False}, headers=headers)
            report.statuses[resp.status_code] = report.statuses.get(resp.status_code, 0) + 1
            if resp.status_code != 200:
                report.unexplained.append(f"closing run HTTP {resp.status_code}")
                continue
            data = resp.json()
            _check_answer(report, data)
            skipped = {s["bookingId"] for s in data["skipped"] if s.get("reasonCode")}
            with psycopg.connect(admin_db_url) as conn:
                unassigned = {str(b) for (b,) in conn.execute(
                    """SELECT id FROM bookings b WHERE restaurant_id = %s AND NOT EXISTS
                         (SELECT 1 FROM booking_table_assignments a WHERE a.booking_id = b.id)""", (r.rid,))}
            report.unexplained += sorted(unassigned - skipped)
    report.invariants = check_invariants(admin_db_url, [main.rid, *(o.rid for o in others)])
    with psycopg.connect(admin_db_url) as conn:
        report.assigned_bookings = int(conn.execute(
            """SELECT count(DISTINCT a.booking_id) FROM booking_table_assignments a JOIN bookings b
                 ON b.id = a.booking_id WHERE b.restaurant_id = ANY(%s)""",
            ([main.rid, *(o.rid for o in others)],)).fetchone()[0])
    return report


def _print(cfg: StressConfig, report: Report) -> None:
    runs = sorted(report.main_runs)
    p95 = runs[min(len(runs) - 1, int(0.95 * len(runs)))] if runs else 0.0
    print(f"stress: {cfg.runs} concurrent runs on one day over {cfg.replicas} replicas, {cfg.others} other "
          f"restaurants x {cfg.other_runs} runs, {cfg.manual} staff assignments, {cfg.arrivals} arrivals; "
          f"{cfg.tables} tables, {cfg.bookings} bookings on the main day")
    print(f"  wall {report.seconds:.2f} s; main-day run median {statistics.median(runs) if runs else 0:.3f} s, "
          f"p95 {p95:.3f} s; same-run baseline (one run alone) {report.baseline_s:.3f} s")
    print(f"  HTTP {dict(sorted(report.statuses.items()))}; 409 retried {report.refused_409}; staff assignments "
          f"{report.manual_ok} ok, refused {report.manual_rejected}")
    print(f"  assigned bookings {report.assigned_bookings}; skip reasons {json.dumps(report.skip_reasons, sort_keys=True)}")
    for name, value in report.invariants.items():
        print(f"  {name}: {value}")
    print(f"  bookings not explained: {len(report.unexplained)} {report.unexplained[:5]}")
    print("  RESULT:", "ok" if report.ok() else "VIOLATION")


def main() -> int:
    from service.schema import migrate

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    defaults = StressConfig()
    for name in ("runs", "others", "other_runs", "manual", "tables", "bookings", "arrivals", "replicas", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    cfg = StressConfig(**{k: getattr(args, k) for k in vars(defaults)})
    name = f"cap_stress_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = _with(args.admin_url, database=name)
    try:
        migrate.upgrade(url, "head")
        report = asyncio.run(stress(url, cfg))
        _print(cfg, report)
        return 0 if report.ok() else 1
    finally:
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
