"""Prometheus series of the strategic-config cache and resolver (docs/strategic-config.md §3.4)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from service.domain.config_resolution import ALL_DEGRADED_REASONS


class StrategicConfigMetrics:
    """Per-app registry: two apps in one process (tests, the benchmark) must not share series."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.degraded = Gauge(
            "strategic_config_degraded",
            "1 while strategic configs are served from fallback values for this reason",
            ["reason"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "strategic_config_fallback_resolutions",
            "Resolutions that returned fallback values (env defaults or last-known-good)",
            ["reason"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "strategic_config_cache_hits", "Resolutions answered from the in-process cache", registry=self.registry
        )
        self.cache_loads = Counter(
            "strategic_config_cache_loads", "Resolutions that read the database", registry=self.registry
        )
        self.invalidations = Counter(
            "strategic_config_invalidations",
            "Cache invalidations by origin",
            ["origin"],
            registry=self.registry,
        )
        for reason in ALL_DEGRADED_REASONS:
            self.degraded.labels(reason=reason).set(0)
