"""Readiness: is the database reachable and is its schema what this version needs?

Two parts with different lifetimes:

- reachability, on *every* call: ``SELECT 1`` on one kept connection, bounded by
  ``CAPACITY_READINESS_PROBE_TIMEOUT_S`` (default 1 s). An outage turns /readyz 503 on the next probe and a
  recovery turns it back without waiting for any cache;
- the schema verdict: the doctor's cheap subset (service/schema/doctor/readiness.py) on a short-lived psycopg
  connection in a worker thread, as the service's own runtime role, reused for ``CAPACITY_READINESS_CACHE_S``
  (default 60 s) so probes do not hammer the catalog. A verdict of "unreachable" is never reused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import asyncpg
import psycopg

from service.dburl import to_libpq_url, to_sqlalchemy_url

log = logging.getLogger("capacity.readiness")


@dataclasses.dataclass(frozen=True)
class ReadinessReport:
    ready: bool
    degraded_reasons: list[str]
    findings: list[dict[str, Any]]

    @property
    def status(self) -> str:
        if not self.ready:
            return "not_ready"
        return "degraded" if self.degraded_reasons else "ready"


def _as_dict(finding: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(finding) and not isinstance(finding, type):
        return {k: v for k, v in dataclasses.asdict(finding).items() if v is not None}
    return dict(finding)


def evaluate(database_url: str, connect_timeout_s: float = 5.0) -> ReadinessReport:
    """Blocking: connect, run the readiness subset, classify."""
    from service.schema import doctor

    url = to_libpq_url(to_sqlalchemy_url(database_url, kind="sync"))
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(connect_timeout_s)), autocommit=True) as conn:
            findings = [_as_dict(f) for f in doctor.readiness_findings(conn)]
    except psycopg.OperationalError as exc:
        log.warning("readiness: database unreachable (%s)", type(exc).__name__)
        return UNREACHABLE
    errors = [f for f in findings if f.get("severity") == "error"]
    degraded = [
        str(f.get("actual") or f.get("code"))
        for f in findings
        if f.get("code") == "strategic_config_degraded"
    ]
    return ReadinessReport(ready=not errors, degraded_reasons=degraded, findings=findings)


UNREACHABLE = ReadinessReport(
    ready=False,
    degraded_reasons=[],
    findings=[{"code": "database_unreachable", "severity": "error", "object": "database"}],
)


def _is_unreachable(report: ReadinessReport) -> bool:
    return any(f.get("code") == "database_unreachable" for f in report.findings)


class ReadinessProbe:
    def __init__(
        self, database_url: str, ttl_s: float, connect_timeout_s: float = 5.0, probe_timeout_s: float = 1.0
    ) -> None:
        self._url = database_url
        self._dsn = to_libpq_url(to_sqlalchemy_url(database_url, kind="async"))
        self._ttl = ttl_s
        self._timeout = connect_timeout_s
        self._probe_timeout = probe_timeout_s
        self._cached: tuple[float, ReadinessReport] | None = None
        self._lock = asyncio.Lock()
        self._conn: asyncpg.Connection | None = None
        self._reachable: bool | None = None

    async def _ping(self) -> bool:
        """SELECT 1 within the probe timeout, reconnecting when the kept connection is gone."""
        try:
            async with asyncio.timeout(self._probe_timeout):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(
                        self._dsn,
                        timeout=self._probe_timeout,
                        statement_cache_size=0,  # simple query only: works behind a transaction pooler
                        server_settings={"application_name": "capacity-service readiness"},
                    )
                await self._conn.execute("SELECT 1")
            reachable, cause = True, ""
        except Exception as exc:  # any failure to answer in time is "unreachable"; the cause is logged
            reachable, cause = False, type(exc).__name__
            self._drop()
        if reachable != self._reachable:  # one line per change of state, not one per probe
            if reachable:
                log.info("readiness: database reachable")
            else:
                log.error("readiness: database unreachable (%s)", cause)
            self._reachable = reachable
        return reachable

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.close(), self._probe_timeout)
                except Exception:  # closing is best effort; never let it fail a shutdown
                    conn.terminate()

    async def report(self) -> ReadinessReport:
        async with self._lock:
            if not await self._ping():
                return UNREACHABLE
            now = time.monotonic()
            if self._cached and now - self._cached[0] < self._ttl and not _is_unreachable(self._cached[1]):
                return self._cached[1]
            report = await asyncio.to_thread(evaluate, self._url, self._timeout)
            # A failing schema verdict is not cached for the full TTL: a migration should show up quickly.
            self._cached = (now if report.ready else now - self._ttl + min(self._ttl, 5.0), report)
            return report
