"""Pre-flight, refusal and full migration on a large database at 0001 (issue 9 item 3; not a test).

Builds, once per run, a database at revision 0001 with one restaurant, 60 tables, 300,000 bookings,
300,000 booking_table_assignments and 300,000 table allocations (5,000 per table, back to back, no
overlap), then times on copies of it:

- ``preflight``: ``capacity-service preflight`` (the full read-only report);
- ``refusal``: ``migrate`` on a copy with one planted overlapping assignment (must refuse, naming the pair);
- ``migrate``: ``migrate -x allow_long_lock=true`` from 0001 to head.

The same steps on a copy with 3,000 rows of each kind give the same-run baseline. Progress lines the
migration writes to stderr are passed through with a timestamp, so the gaps between them are visible.

    uv run python bench/preflight_large.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
                                           [--rows 300000] [--tables 60] [--only preflight,refusal,migrate]

Targets: preflight < 10 s, refusal < 60 s, migrate < 60 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.schema import migrate  # noqa: E402

RESTAURANT = "00000000-0000-4000-8000-000000000001"
ZONE = "00000000-0000-4000-8000-000000000002"


def _url(admin_url: str, database: str) -> str:
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def build_at_0001(admin_url: str, name: str, rows: int, tables: int) -> str:
    """A database at 0001 holding ``rows`` bookings, assignments and allocations on ``tables`` tables."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = _url(admin_url, name)
    migrate.upgrade(url, "0001_base")
    per_table = -(-rows // tables)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"""
INSERT INTO restaurants (id, name, slug) VALUES ('{RESTAURANT}', 'Bench', 'bench');
INSERT INTO zones (id, restaurant_id, name) VALUES ('{ZONE}', '{RESTAURANT}', 'Main');
INSERT INTO table_inventory (id, restaurant_id, zone_id, table_number, capacity, category)
SELECT ('00000000-0000-4000-9000-' || lpad(t::text, 12, '0'))::uuid, '{RESTAURANT}', '{ZONE}', 'T' || t, 4, 'dining'
  FROM generate_series(1, {tables}) t;
-- booking i sits at table (i % tables) + 1, slot k = i / tables: four 2-hour slots a day, back to back
INSERT INTO bookings (id, restaurant_id, booking_date, start_time, end_time, party_size,
                      customer_name, customer_email, customer_phone, reference, status)
SELECT ('00000000-0000-4000-a000-' || lpad(i::text, 12, '0'))::uuid, '{RESTAURANT}',
       date '2020-01-01' + (i / {tables}) / 4,
       time '12:00' + make_interval(hours => 2 * ((i / {tables}) % 4)),
       time '14:00' + make_interval(hours => 2 * ((i / {tables}) % 4)),
       2, 'Guest ' || i, 'guest' || i || '@example.com', '+440000' || i, 'R' || i, 'confirmed'
  FROM generate_series(0, {rows - 1}) i;
INSERT INTO booking_table_assignments (booking_id, table_id, start_at, end_at)
SELECT b.id, ('00000000-0000-4000-9000-' || lpad(((i % {tables}) + 1)::text, 12, '0'))::uuid, b.start_at, b.end_at
  FROM generate_series(0, {rows - 1}) i
  JOIN bookings b ON b.id = ('00000000-0000-4000-a000-' || lpad(i::text, 12, '0'))::uuid;
INSERT INTO allocations (restaurant_id, booking_id, resource_type, resource_id, "window")
SELECT '{RESTAURANT}', bta.booking_id, 'table', bta.table_id, tstzrange(bta.start_at, bta.end_at, '[)')
  FROM booking_table_assignments bta;
"""
        )
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM bookings), (SELECT count(*) FROM booking_table_assignments),"
            " (SELECT count(*) FROM allocations)"
        ).fetchone()
    print(f"built {name}: bookings, assignments, allocations = {counts}; {per_table} per table", flush=True)
    return url


def clone(admin_url: str, template: str) -> str:
    name = f"{template}_c{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return _url(admin_url, name)


def drop(admin_url: str, url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")


def cli(url: str, *args: str) -> tuple[float, int, str, str]:
    """Run ``capacity-service`` with DATABASE_URL=url, echoing stderr with elapsed time; returns
    (seconds, exit code, stdout, stderr)."""
    env = {**os.environ, "DATABASE_URL": url}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    err_lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        err_lines.append(line)
        if "alembic.runtime.plugins" in line:
            continue
        print(f"    [{time.perf_counter() - started:6.1f} s] {line.rstrip()[:200]}", flush=True)
    out = proc.stdout.read() if proc.stdout else ""
    code = proc.wait()
    return time.perf_counter() - started, code, out, "".join(err_lines)


def plant_overlap(url: str, tables: int) -> str:
    """One assignment that overlaps an existing one on table 1 (another booking, half an hour later)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            """INSERT INTO booking_table_assignments (booking_id, table_id, start_at, end_at)
               SELECT b2.id, a.table_id, a.start_at + interval '30 minutes', a.end_at + interval '30 minutes'
                 FROM booking_table_assignments a
                 JOIN bookings b2 ON b2.id = '00000000-0000-4000-a000-000000000001'
                WHERE a.booking_id = '00000000-0000-4000-a000-000000000000'
               RETURNING id"""
        ).fetchone()
    assert row is not None
    return str(row[0])


def run_all(admin_url: str, template: str, only: set[str], tables: int, label: str) -> dict[str, float]:
    results: dict[str, float] = {}
    if "preflight" in only:
        url = clone(admin_url, template)
        try:
            print(f"  [{label}] preflight", flush=True)
            secs, code, out, _ = cli(url, "preflight")
            results["preflight"] = secs
            print(f"  [{label}] preflight: {secs:.1f} s, exit {code}, {len(out.splitlines())} report line(s)")
        finally:
            drop(admin_url, url)
    if "refusal" in only:
        url = clone(admin_url, template)
        try:
            planted = plant_overlap(url, tables)
            print(f"  [{label}] refusal (planted assignment {planted})", flush=True)
            secs, code, _, err = cli(url, "migrate", "-x", "allow_long_lock=true")
            named = planted in err
            results["refusal"] = secs
            print(f"  [{label}] refusal: {secs:.1f} s, exit {code}, planted pair named: {named}")
        finally:
            drop(admin_url, url)
    if "migrate" in only:
        url = clone(admin_url, template)
        try:
            print(f"  [{label}] migrate to head", flush=True)
            secs, code, _, _ = cli(url, "migrate", "-x", "allow_long_lock=true")
            results["migrate"] = secs
            print(f"  [{label}] migrate: {secs:.1f} s, exit {code}")
        finally:
            drop(admin_url, url)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--tables", type=int, default=60)
    parser.add_argument("--baseline-rows", type=int, default=3_000)
    parser.add_argument("--only", default="preflight,refusal,migrate")
    parser.add_argument("--keep", action="store_true", help="keep the template databases")
    args = parser.parse_args()
    only = set(args.only.split(","))
    tag = uuid.uuid4().hex[:6]
    templates = {}
    try:
        for label, rows in (("baseline", args.baseline_rows), ("large", args.rows)):
            started = time.perf_counter()
            name = f"cap_bench_pre_{label}_{tag}"
            build_at_0001(args.admin_url, name, rows, args.tables)
            templates[label] = name
            print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
        results = {label: run_all(args.admin_url, t, only, args.tables, label) for label, t in templates.items()}
    finally:
        if not args.keep:
            for name in templates.values():
                drop(args.admin_url, _url(args.admin_url, name))
    print()
    print(f"{'step':10} {'baseline s':>11} {'large s':>9} {'target s':>9}")
    for step, target in (("preflight", 10), ("refusal", 60), ("migrate", 60)):
        if step in only:
            b, lg = results["baseline"].get(step, float("nan")), results["large"].get(step, float("nan"))
            print(f"{step:10} {b:11.1f} {lg:9.1f} {target:9d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
