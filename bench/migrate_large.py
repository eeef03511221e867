"""Upgrade a database with 1,000,000 allocations to head while a writer keeps inserting (issue 9 item 4).

Not a test. Builds a database at 0002 (the revision before the overlap constraint allocations_no_overlap)
holding ``--rows`` non-overlapping table allocations on 60 tables, then:

1. baseline: the writer alone for ``--baseline-s`` seconds (one INSERT per statement, autocommit, each on
   a fresh resource so none can overlap): latency p50 / p99 / max;
2. migration: ``upgrade head`` (the library call the CLI makes) while the same writer runs; the writer's
   longest stall (its slowest INSERT) and p99 while the migration ran, and the migration's wall time.

    uv run python bench/migrate_large.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
                                         [--rows 1000000] [--baseline-s 10] [--keep]

Target: longest writer stall < 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.schema import migrate  # noqa: E402
from service.settings import Settings  # noqa: E402

RESTAURANT = "00000000-0000-4000-8000-000000000001"
BEFORE_OVERLAP_CONSTRAINT = "0002_merge_groups"


def _url(admin_url: str, database: str) -> str:
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def build(admin_url: str, name: str, rows: int, tables: int = 60) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = _url(admin_url, name)
    migrate.upgrade(url, BEFORE_OVERLAP_CONSTRAINT)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO restaurants (id, name, slug) VALUES ('{RESTAURANT}', 'Bench', 'bench')")
        # allocation i on table (i % tables), slot i / tables: back-to-back two-hour windows, no overlap
        conn.execute(
            f"""INSERT INTO allocations (restaurant_id, resource_type, resource_id, "window")
                SELECT '{RESTAURANT}', 'table', ('00000000-0000-4000-9000-' || lpad((i % {tables})::text, 12, '0'))::uuid,
                       tstzrange(timestamptz '2020-01-01 00:00+00' + make_interval(hours => 2 * (i / {tables})),
                                 timestamptz '2020-01-01 02:00+00' + make_interval(hours => 2 * (i / {tables})), '[)')
                  FROM generate_series(0, {rows - 1}) i"""
        )
        conn.execute("VACUUM ANALYZE allocations")
    return url


class Writer(threading.Thread):
    """Inserts one allocation per statement until stopped; records each statement's latency."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[tuple[float, float]] = []  # (started, seconds)
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._halt.is_set():
                resource = uuid.uuid4()
                started = time.perf_counter()
                try:
                    conn.execute(
                        """INSERT INTO allocations (restaurant_id, resource_type, resource_id, "window")
                           VALUES (%s, 'table', %s, tstzrange(now(), now() + interval '2 hours'))""",
                        (RESTAURANT, resource),
                    )
                except psycopg.Error as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
                self.latencies.append((started, time.perf_counter() - started))

    def stop(self) -> None:
        self._halt.set()
        self.join()


def summary(samples: list[float]) -> str:
    if not samples:
        return "no inserts"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{len(samples)} inserts, p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-s", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    name = f"cap_bench_migrate_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    url = build(args.admin_url, name, args.rows)
    print(f"built {name} at {BEFORE_OVERLAP_CONSTRAINT} with {args.rows} allocations in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    try:
        writer = Writer(url)
        writer.start()
        time.sleep(args.baseline_s)  # the baseline window: the writer alone
        baseline = [s for _, s in writer.latencies]
        mark = len(writer.latencies)
        print(f"baseline (writer alone, {args.baseline_s:.0f} s): {summary(baseline)}", flush=True)
        migration_started = time.perf_counter()
        migrate.upgrade(url, "head", Settings(), allow_long_lock="true")
        migration_s = time.perf_counter() - migration_started
        writer.stop()
        during = [s for t, s in writer.latencies[mark:] if t <= migration_started + migration_s]
        print(f"migration {BEFORE_OVERLAP_CONSTRAINT} -> head: {migration_s:.1f} s")
        print(f"writer during the migration: {summary(during)}")
        print(f"writer's longest stall: {max(during, default=0.0):.2f} s (target < 2 s); errors: {writer.errors[:3]}")
    finally:
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
