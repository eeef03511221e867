"""Prometheus metrics of the HTTP layer, the connection pool and auto-assign runs.

Single process: one registry per app (tests and the benchmark run several apps in one process).
``serve --workers N``: every worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` (set up by the CLI
before any worker starts) and ``GET /metrics`` — answered by whichever worker — aggregates all of them:
counters and histograms are summed, pool gauges are summed over live workers.
"""

from __future__ import annotations

import os
from collections import Counter as _Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# request latency: the API's fast reads are ~1 ms, an assign run may take the planner's whole budget
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ASSIGN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
UNMATCHED_ROUTE = "unmatched"  # 404s: the raw path would let any caller create series


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time from request start to the end of the response body, by route template and method",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.pool_size = Gauge(
            "db_pool_size", "Configured connections per worker pool", registry=registry, multiprocess_mode="livesum"
        )
        self.pool_checked_out = Gauge(
            "db_pool_checked_out", "Connections in use", registry=registry, multiprocess_mode="livesum"
        )
        self.pool_checked_in = Gauge(
            "db_pool_checked_in", "Idle connections held by the pool", registry=registry, multiprocess_mode="livesum"
        )
        self.pool_overflow = Gauge(
            "db_pool_overflow",
            "Connections above the pool size (negative: pool not yet filled)",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.assign_runs = Counter(
            "assign_runs", "Auto-assign runs that produced a result", ["planner", "dry_run"], registry=registry
        )
        self.assign_duration = Histogram(
            "assign_run_duration_seconds",
            "Wall time of an auto-assign run (plan and commit)",
            ["planner", "dry_run"],
            buckets=ASSIGN_BUCKETS,
            registry=registry,
        )
        self.assign_assigned = Counter(
            "assign_bookings_assigned", "Bookings given tables by auto-assign", ["planner", "dry_run"],
            registry=registry,
        )
        self.assign_skipped = Counter(
            "assign_bookings_skipped", "Bookings auto-assign left unassigned, by reasonCode",
            ["reason_code", "dry_run"], registry=registry,
        )

    def observe_http(self, route: str, method: str, status: int, duration_s: float) -> None:
        self.http_requests.labels(route=route, method=method, status=str(status)).inc()
        self.http_duration.labels(route=route, method=method).observe(duration_s)

    def observe_pool(self, pool: Any) -> None:
        """``pool``: the SQLAlchemy pool behind the app's engine (QueuePool API)."""
        try:
            self.pool_size.set(pool.size())
            self.pool_checked_out.set(pool.checkedout())
            self.pool_checked_in.set(pool.checkedin())
            self.pool_overflow.set(pool.overflow())
        except AttributeError:  # a pool class without these counters (NullPool): nothing to report
            pass


def observe_assign_run(
    metrics: ServiceMetrics,
    *,
    planner: str,
    dry_run: bool,
    duration_s: float,
    assigned: int,
    skipped_reason_codes: Iterable[str],
) -> None:
    """Record one finished auto-assign run (call it where the run's response is built)."""
    dry = "true" if dry_run else "false"
    metrics.assign_runs.labels(planner=planner, dry_run=dry).inc()
    metrics.assign_duration.labels(planner=planner, dry_run=dry).observe(duration_s)
    metrics.assign_assigned.labels(planner=planner, dry_run=dry).inc(assigned)
    for code, count in _Tally(skipped_reason_codes).items():
        metrics.assign_skipped.labels(reason_code=code, dry_run=dry).inc(count)


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition: this app's registry, or every worker's samples in multiprocess mode."""
    if multiprocess_enabled():
        aggregate = CollectorRegistry()
        multiprocess.MultiProcessCollector(aggregate)
        return generate_latest(aggregate)
    return generate_latest(registry)


def mark_worker_gone() -> None:
    """On a worker's shutdown: drop its live gauges from the aggregate."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(os.getpid())
