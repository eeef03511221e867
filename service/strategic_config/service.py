"""The strategic-config application service: resolve (TTL cache, degraded mode), write (If-Match).

- Entries live ``strategic_config_cache_ttl_s`` (30 s, the original's TTL) and are dropped early when any
  replica writes: the write path sends ``NOTIFY strategic_config_changed '<restaurant id>'`` in its
  transaction and every replica LISTENs on a dedicated asyncpg connection (reconnecting; after a
  reconnect the whole cache is dropped because notifications may have been missed).
- The schema probe runs at start-up, every ``strategic_config_probe_interval_s`` and after any
  schema-class error. When it is not ``ok`` the resolver serves env/hard defaults marked degraded, logs
  at ERROR once per cause, sets ``strategic_config_degraded{reason}`` and counts fallback resolutions.
- A transient store failure serves the last value loaded at most ``strategic_config_last_known_good_s``
  ago, marked ``store_unavailable``; without one it raises 503 ``STRATEGIC_CONFIG_STORE_UNAVAILABLE``
  (never silently env defaults for a restaurant that may have a row).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.domain.config_resolution import (
    READABLE_SCHEMA_STATES,
    SCHEMA_DEGRADED_REASONS,
    EnvDefaults,
    ResolvedConfig,
    WeightsInput,
    degraded_reason_for,
    etag_matches,
    resolve,
)
from service.domain.weights import SchemaState
from service.errors import (
    ConfigVersionMismatch,
    StrategicConfigSchemaUnavailable,
    StrategicConfigStoreUnavailable,
)
from service.repository.memberships import set_tenant_context
from service.settings import Settings
from service.strategic_config import repository as repo
from service.strategic_config.metrics import StrategicConfigMetrics

log = logging.getLogger("capacity.strategic_config")

@dataclass
class _Entry:
    loaded_at: float
    resolved: ResolvedConfig
    restaurant_exists: bool
    fresh: bool = True


class _StoreDown(Exception):
    """Internal: the store failed for a non-schema reason."""


def _is_outage(exc: BaseException) -> bool:
    return isinstance(exc, (DBAPIError, OSError, TimeoutError, ConnectionError, asyncpg.PostgresError))


class StrategicConfigService:
    """The single resolver (docs/strategic-config.md §3.6) behind the ops API, the internal API and the
    allocator (``StrategicConfigResolver`` protocol in service/domain/config_resolution.py)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: StrategicConfigMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._maker = sessionmaker
        self.env = EnvDefaults(
            scarcity=settings.selector_scarcity_weight, lookahead_penalty=settings.selector_lookahead_penalty_weight
        )
        self._ttl = settings.strategic_config_cache_ttl_s
        self._lkg = settings.strategic_config_last_known_good_s
        self._probe_interval = settings.strategic_config_probe_interval_s
        self.metrics = metrics
        self._clock = clock
        self._entries: dict[uuid.UUID, _Entry] = {}
        self._inflight: dict[uuid.UUID, asyncio.Task[_Entry]] = {}
        self._generation: dict[uuid.UUID, int] = {}
        self._epoch = 0  # bumped by invalidate_all: loads started before it must not be kept fresh
        self._state: SchemaState = "ok"
        self._probed_at: float | None = None
        self._probe_lock = asyncio.Lock()
        self._probe_task: asyncio.Task[None] | None = None
        self._logged_causes: set[str] = set()

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        with contextlib.suppress(_StoreDown):
            await self.probe()
        self._probe_task = asyncio.create_task(self._probe_loop(), name="strategic-config-probe")

    async def stop(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
            self._probe_task = None

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval)
            self.prune()
            with contextlib.suppress(_StoreDown):
                await self.probe()

    def prune(self) -> None:
        """Forget entries too old to be served even as last-known-good."""
        horizon = self._clock() - max(self._ttl, self._lkg)
        for rid in [rid for rid, entry in self._entries.items() if entry.loaded_at < horizon]:
            del self._entries[rid]

    # --- schema probe --------------------------------------------------------------------------------

    @property
    def schema_state(self) -> SchemaState:
        return self._state

    async def probe(self) -> SchemaState:
        """Re-read the catalog; on a change of state the cache is dropped (its entries were resolved
        under the old state)."""
        async with self._probe_lock:
            try:
                async with self._maker() as session, session.begin():
                    state = await repo.probe_schema(session)
            except Exception as exc:
                if _is_outage(exc):
                    self._cause("probe_failed", f"strategic config schema probe failed: {type(exc).__name__}")
                    raise _StoreDown() from exc
                raise
            self._clear_cause("probe_failed")
            self._probed_at = self._clock()
            if state != self._state:
                log.info("strategic_configs schema state: %s -> %s", self._state, state)
                self._state = state
                self.invalidate_all(origin="schema_change")
            reason = degraded_reason_for(state)
            for candidate in SCHEMA_DEGRADED_REASONS:
                self.metrics.degraded.labels(reason=candidate).set(1 if candidate == reason else 0)
            if reason is not None:
                self._cause(
                    reason,
                    f"strategic_configs is not usable ({reason}): the allocator and the APIs use environment "
                    "defaults until the migration 0005_strategic_config_columns is applied",
                )
            else:
                for candidate in SCHEMA_DEGRADED_REASONS:
                    self._clear_cause(candidate)
                if state == "legacy_json_present":
                    log.warning("strategic_configs still has the legacy weights column (migration not finished)")
            return state

    def _cause(self, cause: str, message: str) -> None:
        """ERROR once per cause; logged again only after the cause cleared and came back."""
        if cause not in self._logged_causes:
            self._logged_causes.add(cause)
            log.error(message, extra={"strategic_config_degraded_reason": cause})

    def _clear_cause(self, cause: str) -> None:
        if cause in self._logged_causes:
            self._logged_causes.discard(cause)
            log.info("strategic config recovered from %s", cause)

    # --- invalidation --------------------------------------------------------------------------------

    def invalidate(self, restaurant_id: uuid.UUID, *, origin: str = "local") -> None:
        """Mark stale but keep it: a stale entry is still a last-known-good value during an outage."""
        self._generation[restaurant_id] = self._generation.get(restaurant_id, 0) + 1
        entry = self._entries.get(restaurant_id)
        if entry is not None:
            entry.fresh = False
        self.metrics.invalidations.labels(origin=origin).inc()

    def invalidate_all(self, *, origin: str = "local") -> None:
        self._epoch += 1
        for entry in self._entries.values():
            entry.fresh = False
        self.metrics.invalidations.labels(origin=origin).inc()

    def on_notification(self, payload: str) -> None:
        try:
            restaurant_id = uuid.UUID(payload)
        except ValueError:
            # a hand-written NOTIFY without a restaurant (e.g. after editing the global row): drop all
            self.invalidate_all(origin="notify")
            return
        # the global row feeds every restaurant without its own row, so its id cannot be narrowed
        self.invalidate(restaurant_id, origin="notify")

    # --- reads ---------------------------------------------------------------------------------------

    async def resolve(self, restaurant_id: uuid.UUID) -> ResolvedConfig:
        """The allocator's entry point (and the ops GET's): resolved config, maybe degraded.
        Raises StrategicConfigStoreUnavailable when the store is down and nothing recent is known."""
        resolved, _ = await self.lookup(restaurant_id)
        return resolved

    async def lookup(self, restaurant_id: uuid.UUID) -> tuple[ResolvedConfig, bool]:
        """Resolved config plus whether the restaurant exists (the internal endpoint's 404)."""
        entry = self._entries.get(restaurant_id)
        if entry is not None and entry.fresh and self._clock() - entry.loaded_at < self._ttl:
            self.metrics.cache_hits.inc()
            return self._count(entry.resolved), entry.restaurant_exists
        try:
            entry = await self._load_shared(restaurant_id)
        except _StoreDown as exc:
            stale = self._entries.get(restaurant_id)
            if stale is not None and self._clock() - stale.loaded_at <= self._lkg:
                self.metrics.degraded.labels(reason="store_unavailable").set(1)
                self._cause("store_unavailable", "strategic config store unavailable: serving last-known values")
                return self._count(stale.resolved.as_degraded("store_unavailable")), stale.restaurant_exists
            self.metrics.degraded.labels(reason="store_unavailable").set(1)
            self._cause("store_unavailable", "strategic config store unavailable and no recent value cached")
            raise StrategicConfigStoreUnavailable(
                "The strategic config store is unavailable and no recent value is known; retry shortly"
            ) from exc.__cause__
        self.metrics.degraded.labels(reason="store_unavailable").set(0)
        self._clear_cause("store_unavailable")
        return self._count(entry.resolved), entry.restaurant_exists

    def _count(self, resolved: ResolvedConfig) -> ResolvedConfig:
        if resolved.degraded and resolved.degraded_reason:
            self.metrics.fallbacks.labels(reason=resolved.degraded_reason).inc()
        return resolved

    async def _load_shared(self, restaurant_id: uuid.UUID) -> _Entry:
        """Single flight per restaurant: a burst of misses costs one query."""
        task = self._inflight.get(restaurant_id)
        if task is None:
            task = asyncio.create_task(self._load_and_store(restaurant_id))
            self._inflight[restaurant_id] = task
            task.add_done_callback(lambda _done: self._inflight.pop(restaurant_id, None))
        # shield: a cancelled request must not cancel the load other waiters share
        return await asyncio.shield(task)

    async def _load_and_store(self, restaurant_id: uuid.UUID) -> _Entry:
        generation = self._generation.get(restaurant_id, 0)
        epoch = self._epoch
        self.metrics.cache_loads.inc()
        entry = await self._load(restaurant_id)
        if not entry.restaurant_exists:
            # not cached: a restaurant created a moment later must not answer 404 for a whole TTL
            return entry
        entry.fresh = generation == self._generation.get(restaurant_id, 0) and epoch == self._epoch
        self._entries[restaurant_id] = entry
        return entry

    async def _load(self, restaurant_id: uuid.UUID) -> _Entry:
        for attempt in range(2):
            state = self._state
            try:
                async with self._maker() as session, session.begin():
                    await set_tenant_context(session, restaurant_id)
                    if state not in READABLE_SCHEMA_STATES:
                        exists = await repo.restaurant_exists(session, restaurant_id)
                        resolved = resolve(restaurant_id, None, self.env, state)
                        return _Entry(self._clock(), resolved, exists)
                    result = await repo.read_config(session, restaurant_id)
            except Exception as exc:
                if repo.is_schema_error(exc) and attempt == 0:
                    # the table changed under us: re-probe, then answer under the new state
                    await self.probe()
                    continue
                if _is_outage(exc):
                    raise _StoreDown() from exc
                raise
            resolved = resolve(restaurant_id, result.row, self.env, state)
            return _Entry(self._clock(), resolved, result.restaurant_exists)
        raise _StoreDown()

    # --- writes --------------------------------------------------------------------------------------

    async def write(
        self,
        restaurant_id: uuid.UUID,
        weights: WeightsInput,
        *,
        actor: uuid.UUID | None,
        if_match: str | None = None,
    ) -> ResolvedConfig:
        """Upsert the restaurant's row (full replacement) and return the resolved result. Never writes
        into the legacy JSON: a degraded schema is a 503 naming the reason."""
        if self._state not in READABLE_SCHEMA_STATES:
            # a migration may have landed since the last probe
            with contextlib.suppress(_StoreDown):
                await self.probe()
        if self._state not in READABLE_SCHEMA_STATES:
            raise self._schema_unavailable()
        try:
            async with self._maker() as session, session.begin():
                await set_tenant_context(session, restaurant_id)
                if if_match is not None:
                    await repo.lock_restaurant_row(session, restaurant_id)
                    current = await repo.read_config(session, restaurant_id)
                    current_tag = resolve(restaurant_id, current.row, self.env, self._state).etag
                    if not etag_matches(if_match, current_tag):
                        raise ConfigVersionMismatch(
                            "The configuration changed since it was read (If-Match does not match)",
                            current_etag=current_tag,
                        )
                stored = await repo.upsert_config(session, restaurant_id, weights, actor)
        except DBAPIError as exc:
            if repo.is_schema_error(exc):
                with contextlib.suppress(_StoreDown):
                    await self.probe()
                raise self._schema_unavailable() from exc
            raise
        resolved = resolve(restaurant_id, stored, self.env, self._state)
        # this replica sees its own write at once; the NOTIFY reaches the others (and us, harmlessly)
        self.invalidate(restaurant_id, origin="write")
        self._entries[restaurant_id] = _Entry(self._clock(), resolved, True)
        log.info(
            "strategic config written",
            extra={"restaurant_id": str(restaurant_id), "actor": str(actor) if actor else None,
                   "version": resolved.version},
        )
        return resolved

    def _schema_unavailable(self) -> StrategicConfigSchemaUnavailable:
        reason = degraded_reason_for(self._state) or "unknown"
        return StrategicConfigSchemaUnavailable(
            f"strategic_configs is not usable ({reason}); apply migration 0005_strategic_config_columns "
            "(capacity-service migrate) before changing the weights"
        )
