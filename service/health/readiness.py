"""Readiness: is the database reachable and is its schema what this version needs?

Runs the doctor's cheap subset (service/schema/doctor/readiness.py) on a short-lived psycopg connection in a worker
thread, as the service's own runtime role, and caches the verdict (``CAPACITY_READINESS_CACHE_S``,
default 60 s) so probes do not hammer the catalog.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

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
        return ReadinessReport(
            ready=False,
            degraded_reasons=[],
            findings=[{"code": "database_unreachable", "severity": "error", "object": "database"}],
        )
    errors = [f for f in findings if f.get("severity") == "error"]
    degraded = [
        str(f.get("actual") or f.get("code"))
        for f in findings
        if f.get("code") == "strategic_config_degraded"
    ]
    return ReadinessReport(ready=not errors, degraded_reasons=degraded, findings=findings)


class ReadinessProbe:
    def __init__(self, database_url: str, ttl_s: float, connect_timeout_s: float = 5.0) -> None:
        self._url = database_url
        self._ttl = ttl_s
        self._timeout = connect_timeout_s
        self._cached: tuple[float, ReadinessReport] | None = None
        self._lock = asyncio.Lock()

    async def report(self) -> ReadinessReport:
        async with self._lock:
            now = time.monotonic()
            if self._cached and now - self._cached[0] < self._ttl:
                return self._cached[1]
            report = await asyncio.to_thread(evaluate, self._url, self._timeout)
            # A failing verdict is not cached for the full TTL: recovery should show up quickly.
            self._cached = (now if report.ready else now - self._ttl + min(self._ttl, 5.0), report)
            return report
