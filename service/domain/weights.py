"""The strategic weights: the one place their ranges, defaults, column scales, clamping and names live.

Everything else derives from this module: ``Settings`` (the ``FEATURE_SELECTOR_*`` bounds), the
resolution in ``config_resolution`` (clamping what is applied), write validation (the accepted ranges and
the rounding to the column scales), the OpenAPI body schema, and the test that reads the migrated
database's CHECK constraints and column types and proves they agree (``tests/app/test_weights_schema.py``).
The migrations themselves are frozen, so they cannot import this; the test is what keeps them equal.

The allocator consumes one :class:`StrategicWeights` snapshot per run (docs/strategic-config.md §3.6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

# --- defaults (docs/strategic-config.md §3.1) --------------------------------------------------------
DEFAULT_SCARCITY = 22
DEFAULT_LOOKAHEAD_PENALTY = 500

# --- ranges ---------------------------------------------------------------------------------------------
SCARCITY_RANGE: tuple[int, int] = (0, 1000)
DEMAND_MULTIPLIER_RANGE: tuple[int, int] = (0, 10)
FUTURE_CONFLICT_PENALTY_RANGE: tuple[int, int] = (0, 100_000)
# FEATURE_SELECTOR_LOOKAHEAD_PENALTY_WEIGHT: the env weight used when no override is stored
LOOKAHEAD_PENALTY_RANGE: tuple[int, int] = (1, 100_000)

# --- names ----------------------------------------------------------------------------------------------
Source = Literal["db", "env"]
Scope = Literal["restaurant", "global", "default"]
SchemaState = Literal["ok", "table_missing", "columns_missing", "legacy_json_only", "legacy_json_present"]
DegradedReason = Literal["table_missing", "columns_missing", "legacy_json_only", "store_unavailable"]


@dataclass(frozen=True, slots=True)
class WeightColumn:
    """One stored weight: its JSON name, its ``strategic_configs`` column and what the column accepts."""

    field: str  # JSON name in the API bodies
    column: str
    bounds: tuple[int, int]
    required: bool
    precision: int  # numeric(precision, scale)
    scale: int


SCARCITY = WeightColumn("scarcity", "scarcity_weight", SCARCITY_RANGE, True, 8, 2)
DEMAND_MULTIPLIER = WeightColumn(
    "demandMultiplier", "demand_multiplier_override", DEMAND_MULTIPLIER_RANGE, False, 8, 3
)
FUTURE_CONFLICT_PENALTY = WeightColumn(
    "futureConflictPenalty", "future_conflict_penalty", FUTURE_CONFLICT_PENALTY_RANGE, False, 10, 2
)
WEIGHT_COLUMNS: tuple[WeightColumn, ...] = (SCARCITY, DEMAND_MULTIPLIER, FUTURE_CONFLICT_PENALTY)


# --- clamping -------------------------------------------------------------------------------------------
def finite_number(value: object) -> float | None:
    """``value`` as a finite float; None for a missing, boolean, non-numeric or non-finite value."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def clamp(value: object, bounds: tuple[int, int], default: float) -> float:
    """Clamp into ``bounds``; a missing or non-finite value becomes ``default`` (the original used the
    minimum, which silently turned a broken row into "no scarcity at all")."""
    number = finite_number(value)
    if number is None:
        return float(default)
    low, high = bounds
    return float(min(max(number, low), high))


def clamp_optional(value: float | None, bounds: tuple[int, int]) -> float | None:
    """An optional override: None (and a non-finite value) stays "no override"."""
    if finite_number(value) is None:
        return None
    return clamp(value, bounds, 0.0)


# --- the allocator's snapshot ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StrategicWeights:
    """One resolved snapshot of the three strategic values, as the allocator applies them.

    ``demand_multiplier_override`` None means "use demand profiles"; ``future_conflict_penalty`` None
    means "use the lookahead env weight". :meth:`normalised` clamps into the ranges above.
    """

    scarcity: float = float(DEFAULT_SCARCITY)
    demand_multiplier_override: float | None = None
    future_conflict_penalty: float | None = None
    source: Source = "env"
    scope: Scope = "default"
    degraded: bool = False
    degraded_reason: str | None = None
    version: str | None = None

    def normalised(self) -> StrategicWeights:
        return StrategicWeights(
            scarcity=clamp(self.scarcity, SCARCITY_RANGE, DEFAULT_SCARCITY),
            demand_multiplier_override=clamp_optional(self.demand_multiplier_override, DEMAND_MULTIPLIER_RANGE),
            future_conflict_penalty=clamp_optional(self.future_conflict_penalty, FUTURE_CONFLICT_PENALTY_RANGE),
            source=self.source,
            scope=self.scope,
            degraded=self.degraded,
            degraded_reason=self.degraded_reason,
            version=self.version,
        )

    @property
    def effective_demand_override(self) -> float | None:
        """The override as the demand factor uses it: ≤ 0 counts as 1 (docs/strategic-config.md §5.4)."""
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
    """What the planner asks for a restaurant's weights (implemented by the resolution's snapshot)."""

    def resolve(self, restaurant_id: str) -> StrategicWeights: ...


class StaticWeightsProvider:
    """A provider returning fixed weights: for tests, the benchmark and env-only operation."""

    def __init__(self, weights: StrategicWeights | None = None) -> None:
        self._weights = (weights or StrategicWeights()).normalised()

    def resolve(self, restaurant_id: str) -> StrategicWeights:
        return self._weights
