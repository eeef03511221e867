"""Cross-replica cache invalidation: LISTEN on ``strategic_config_changed`` (docs/strategic-config.md §3.4).

Every write sends ``NOTIFY strategic_config_changed '<restaurant id>'`` in its transaction; each replica
listens on one dedicated asyncpg connection and reconnects with backoff. After any (re)connect the whole
cache is dropped, because notifications sent while nobody listened are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from service.strategic_config import repository as repo
from service.strategic_config.service import StrategicConfigService

log = logging.getLogger("capacity.strategic_config")

# lets operators (and tests) find the listener among the service's connections
LISTENER_APPLICATION_NAME = "capacity-service-config-listener"


class ChangeListener:
    """LISTEN strategic_config_changed on a dedicated asyncpg connection; reconnects with backoff."""

    def __init__(
        self,
        dsn: str,
        service: StrategicConfigService,
        *,
        connect_timeout_s: float = 5.0,
        keepalive_s: float = 10.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._service = service
        self._connect_timeout = connect_timeout_s
        self._keepalive = keepalive_s
        self._max_backoff = max_backoff_s
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.connects = 0  # successful (re)connections, for diagnostics and tests

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="strategic-config-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._service.on_notification(payload)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn,
                    timeout=self._connect_timeout,
                    server_settings={"application_name": LISTENER_APPLICATION_NAME},
                )
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=closed: ev.set())
                await conn.add_listener(repo.CHANGE_CHANNEL, self._on_notify)
                # anything written while we were not listening is unknown to us
                self._service.invalidate_all(origin="listener_connect")
                self.connects += 1
                self.connected.set()
                backoff = 0.5
                log.info("listening on %s", repo.CHANGE_CHANNEL)
                while not closed.is_set():
                    try:
                        await asyncio.wait_for(closed.wait(), timeout=self._keepalive)
                    except TimeoutError:
                        # a silently dropped connection would otherwise never be noticed
                        await conn.fetchval("SELECT 1", timeout=self._connect_timeout)
                log.warning("change listener connection closed; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("change listener: %s; retrying in %.1fs", type(exc).__name__, backoff)
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=2)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)
