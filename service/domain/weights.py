"""Strategic scoring weights as the allocator consumes them (strategic-config.md §3.6, §5.4 Option B).

The resolver that reads `strategic_configs` lives outside the domain; it hands the allocator one
`StrategicWeights` snapshot per auto-assign run through `StrategicWeightsProvider`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

DEFAULT_SCARCITY_WEIGHT = 22.0
SCARCITY_RANGE = (0.0, 1000.0)
DEMAND_OVERRIDE_RANGE = (0.0, 10.0)
PENALTY_RANGE = (0.0, 100_000.0)

StrategicSource = Literal["db", "env"]
StrategicScope = Literal["restaurant", "global", "default"]


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(high, max(low, value))


@dataclass(frozen=True, slots=True)
class StrategicWeights:
    """One resolved snapshot of the three strategic values.

    `demand_multiplier_override` None means "use demand profiles"; `future_conflict_penalty` None
    means "use the lookahead env weight". Values are clamped on construction via `normalised()`.
    """

    scarcity: float = DEFAULT_SCARCITY_WEIGHT
    demand_multiplier_override: float | None = None
    future_conflict_penalty: float | None = None
    source: StrategicSource = "env"
    scope: StrategicScope = "default"
    degraded: bool = False
    degraded_reason: str | None = None
    version: str | None = None

    def normalised(self) -> StrategicWeights:
        scarcity = self.scarcity
        # Non-finite falls back to the default, not to the minimum (strategic-config.md §3.6).
        scarcity = (
            DEFAULT_SCARCITY_WEIGHT if not math.isfinite(scarcity) else _clamp(scarcity, SCARCITY_RANGE)
        )
        demand = self.demand_multiplier_override
        if demand is not None:
            demand = _clamp(demand, DEMAND_OVERRIDE_RANGE) if math.isfinite(demand) else None
        penalty = self.future_conflict_penalty
        if penalty is not None:
            penalty = _clamp(penalty, PENALTY_RANGE) if math.isfinite(penalty) else None
        return StrategicWeights(
            scarcity=scarcity,
            demand_multiplier_override=demand,
            future_conflict_penalty=penalty,
            source=self.source,
            scope=self.scope,
            degraded=self.degraded,
            degraded_reason=self.degraded_reason,
            version=self.version,
        )

    @property
    def effective_demand_override(self) -> float | None:
        """The override as `d` uses it: ≤ 0 is normalised to 1 (§7.8.3, Option B)."""
        if self.demand_multiplier_override is None:
            return None
        return self.demand_multiplier_override if self.demand_multiplier_override > 0 else 1.0

    def telemetry(self) -> dict[str, object]:
        return {
            "source": self.source,
            "scope": self.scope,
            "degraded": self.degraded,
            "degradedReason": self.degraded_reason,
            "version": self.version,
        }


class StrategicWeightsProvider(Protocol):
    """Implemented by the strategic-config resolution (strategic-config.md §3.6)."""

    def resolve(self, restaurant_id: str) -> StrategicWeights: ...


class StaticWeightsProvider:
    """A provider returning fixed weights: for tests, the benchmark and env-only operation."""

    def __init__(self, weights: StrategicWeights | None = None) -> None:
        self._weights = (weights or StrategicWeights()).normalised()

    def resolve(self, restaurant_id: str) -> StrategicWeights:
        return self._weights
