"""Allocator inputs: plain frozen dataclasses, filled by the repository layer (or by tests).

Defaults are the original's values (docs/assign-tables.md §5, §7.3) unless a field says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal

from service.domain.weights import DEFAULT_LOOKAHEAD_PENALTY

OverrunPolicy = Literal["skip", "clamp", "allow"]
OVERRUN_POLICIES: tuple[OverrunPolicy, ...] = ("skip", "clamp", "allow")
# At a real closing the guest is seated and the table is free from closing time (docs/assign-tables.md §7.3);
# the original skipped. Revision 0010's column default is this value (tests/app/test_allocator_policy_schema.py).
DEFAULT_OVERRUN_POLICY: OverrunPolicy = "clamp"
AdjacencyMode = Literal["connected", "pairwise", "neighbors"]
ADJACENCY_MODES: tuple[AdjacencyMode, ...] = ("connected", "pairwise", "neighbors")
ACTIVE_BOOKING_STATUSES = frozenset({"pending", "pending_allocation", "confirmed"})


@dataclass(frozen=True, slots=True)
class Table:
    id: str
    number: str
    capacity: int
    zone_id: str | None = "Z"
    min_party_size: int | None = 1
    max_party_size: int | None = None
    mobility: str = "movable"
    active: bool | None = True
    status: str = "available"
    category: str | None = "dining"
    seating_type: str | None = "standard"
    section: str | None = None


@dataclass(frozen=True, slots=True)
class Booking:
    id: str
    party_size: int
    booking_date: date
    start_time: time | None = None
    end_time: time | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    status: str = "pending_allocation"
    # Tables already assigned when the run starts; such bookings are never re-planned.
    assigned_table_ids: tuple[str, ...] = ()
    # Stored assignment window of those tables, preferred over a recomputed one (docs/assign-tables.md §7.4 [REC]).
    assigned_start_at: datetime | None = None
    assigned_end_at: datetime | None = None

    @property
    def already_assigned(self) -> bool:
        return bool(self.assigned_table_ids)


@dataclass(frozen=True, slots=True)
class ServicePeriod:
    """A `restaurant_service_periods` row. `kind` is its booking option (lunch/dinner/drinks/…)."""

    name: str
    start: time
    end: time
    day_of_week: int | None = None  # 0 = Sunday; None = every day
    kind: str | None = None

    @property
    def service_key(self) -> str:
        return (self.kind or self.name).lower()


DEFAULT_SERVICE_PERIODS: tuple[ServicePeriod, ...] = (
    ServicePeriod("lunch", time(12, 0), time(15, 0), None, "lunch"),
    ServicePeriod("dinner", time(17, 0), time(22, 0), None, "dinner"),
)


@dataclass(frozen=True, slots=True)
class TurnBands:
    """Dining minutes by party size: `(max_party, minutes)` ascending; `larger` beyond the last."""

    bands: tuple[tuple[int, int], ...]
    larger: int

    def minutes_for(self, party_size: int) -> int:
        if party_size <= 0:
            return self.bands[0][1] if self.bands else self.larger
        for max_party, minutes in self.bands:
            if party_size <= max_party:
                return minutes
        return self.larger


LUNCH_BANDS = TurnBands(((2, 60), (4, 75), (6, 85), (8, 85)), 85)
DINNER_BANDS = TurnBands(((2, 60), (4, 75), (6, 85), (8, 90)), 90)


# The relaxation ladder (docs/assign-tables.md §7.13): rung names in the order they are tried, as flagged in
# `assigned[].relaxed` and the decisions. One source for the defaults and the range; revision 0010's column
# defaults and CHECK agree (tests/app/test_allocator_policy_schema.py).
RELAX_OVERAGE = "overage"
RELAX_MEMBER_LIMITS = "memberLimits"
RELAX_ADJACENCY = "adjacency"
RELAXATION_ORDER: tuple[str, ...] = (RELAX_OVERAGE, RELAX_MEMBER_LIMITS, RELAX_ADJACENCY)
DEFAULT_RELAXED_MAX_OVERAGE = 4
RELAXED_MAX_OVERAGE_RANGE = (0, 20)
DEFAULT_RELAX_OVERAGE = True
DEFAULT_RELAX_MEMBER_LIMITS = True
DEFAULT_RELAX_ADJACENCY = False


@dataclass(frozen=True, slots=True)
class RestaurantPolicy:
    """Per-restaurant window rules. Turn bands and buffers are looked up by service key (kind, else
    name); a key without bands uses `default_bands` (the lunch bands, the original's first service)."""

    timezone: str = "Europe/London"
    service_periods: tuple[ServicePeriod, ...] = ()
    turn_bands: Mapping[str, TurnBands] = field(
        default_factory=lambda: {"lunch": LUNCH_BANDS, "dinner": DINNER_BANDS}
    )
    default_bands: TurnBands = LUNCH_BANDS
    buffer_pre_minutes: int = 0
    buffer_post_minutes: int = 5
    buffers_by_service: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    overrun: OverrunPolicy = DEFAULT_OVERRUN_POLICY
    overrun_by_service: Mapping[str, OverrunPolicy] = field(default_factory=dict)
    # True: a window never ends before the booking's stored end (what the guest was promised).
    respect_booking_end: bool = True
    adjacency_mode: AdjacencyMode | None = None  # None → AllocatorConfig.adjacency_mode
    # The relaxation ladder for bookings the strict plan leaves unseated (docs/assign-tables.md §7.13).
    relax_overage: bool = DEFAULT_RELAX_OVERAGE
    relaxed_max_overage: int = DEFAULT_RELAXED_MAX_OVERAGE
    relax_member_limits: bool = DEFAULT_RELAX_MEMBER_LIMITS
    relax_adjacency: bool = DEFAULT_RELAX_ADJACENCY

    @property
    def periods(self) -> tuple[ServicePeriod, ...]:
        return self.service_periods or DEFAULT_SERVICE_PERIODS

    def bands_for(self, service_key: str) -> TurnBands:
        return self.turn_bands.get(service_key, self.default_bands)

    def buffers_for(self, service_key: str) -> tuple[int, int]:
        return self.buffers_by_service.get(service_key, (self.buffer_pre_minutes, self.buffer_post_minutes))

    def overrun_for(self, service_key: str) -> OverrunPolicy:
        return self.overrun_by_service.get(service_key, self.overrun)


@dataclass(frozen=True, slots=True)
class BusyInterval:
    """A table blocked for `[start, end)`: an allocation/assignment row or an active hold member."""

    table_id: str
    start: datetime
    end: datetime
    kind: Literal["booking", "hold"] = "booking"
    booking_id: str | None = None
    hold_id: str | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    table_ids: tuple[str, ...]
    start_at: datetime
    end_at: datetime
    expires_at: datetime
    booking_id: str | None = None


@dataclass(frozen=True, slots=True)
class DemandProfile:
    """A `demand_profiles` row (only weekday, service and multiplier are matched, docs/assign-tables.md §7.8.3)."""

    day_of_week: int
    service_window: str
    multiplier: float


@dataclass(frozen=True, slots=True)
class DemandRule:
    """A fallback rule of the demand-profile file."""

    label: str
    service_window: str
    days: tuple[int, ...]
    multiplier: float
    start: str | None = None  # "HH:MM", None = 00:00
    end: str | None = None  # None = end of day
    priority: int = 0


SHIPPED_DEMAND_RULES: tuple[DemandRule, ...] = (
    DemandRule("weekday-lunch", "lunch", (1, 2, 3, 4, 5), 0.85, "11:30", "14:30"),
    DemandRule("weekday-dinner", "dinner", (1, 2, 3, 4), 1.15, "17:30", "21:30"),
    DemandRule("weekend-dinner-peak", "dinner", (5, 6), 1.35, "18:00", "22:30"),
    DemandRule("weekend-brunch", "lunch", (0, 6), 1.1, "10:00", "13:00"),
)


# Accepted ranges of the numeric flags (FEATURE_* variables, docs/assign-tables.md §5): Settings validates
# against these at start-up, so an AllocatorConfig built from Settings is always inside them.
K_MAX_RANGE = (1, 5)
ADJACENCY_MIN_PARTY_SIZE_RANGE = (1, 20)
MAX_PLANS_PER_SLACK_RANGE = (1, 500)
MAX_COMBINATION_EVALUATIONS_RANGE = (1, 5000)
LOOKAHEAD_WINDOW_MINUTES_RANGE = (5, 480)


@dataclass(frozen=True, slots=True)
class AllocatorConfig:
    """Feature flags and limits (docs/assign-tables.md §5). Built from ``Settings`` (the FEATURE_* variables)
    by create_app; the defaults here are the ones an unset variable gets."""

    combination_planner: bool = True
    merges_enabled: bool = True
    k_max: int = 3
    require_adjacency: bool = True
    adjacency_min_party_size: int | None = None
    adjacency_mode: AdjacencyMode = "connected"
    max_plans_per_slack: int = 50
    max_combination_evaluations: int = 500
    lookahead_enabled: bool = True
    lookahead_window_minutes: int = 120
    lookahead_penalty_weight: int = DEFAULT_LOOKAHEAD_PENALTY
    lookahead_max_plans: int = 20  # [LATER] only the best plans are probed
    max_overage: int = 2
    max_tables: int = 3
    time_pruning: bool = False
    service_fail_hard: bool = False
    holds_enabled: bool = True
    holds_strict_conflicts: bool = False
    adjacency_undirected: bool = True
    # [REC] merged plans only of movable tables; False reproduces the original planner (case 16).
    merge_requires_movable: bool = True
    # [ORIG] max_party_size also limits combination members; [LATER] drops that.
    max_party_applies_to_members: bool = True
    # Safety cap on the static combination enumeration per (party size, zone); reported when hit.
    enumeration_cap: int = 200_000
    # Decision traces list at most this many candidate plans (the selection itself sees all).
    decision_candidate_limit: int = 50

    @property
    def effective_k_max(self) -> int:
        low, high = K_MAX_RANGE
        return max(low, min(high, self.k_max))


@dataclass(frozen=True, slots=True)
class DayInput:
    """Everything the planner needs for one restaurant and service date."""

    restaurant_id: str
    service_date: date
    tables: tuple[Table, ...]
    bookings: tuple[Booking, ...]
    adjacency: tuple[tuple[str, str], ...] = ()
    policy: RestaurantPolicy = field(default_factory=RestaurantPolicy)
    busy: tuple[BusyInterval, ...] = ()  # existing non-shadow allocations / assignment rows
    holds: tuple[Hold, ...] = ()
    scarcity_metrics: Mapping[str, float] = field(default_factory=dict)  # table_type → score
    demand_profiles: tuple[DemandProfile, ...] = ()
    demand_rules: tuple[DemandRule, ...] = SHIPPED_DEMAND_RULES
    now: datetime | None = None  # for hold expiry; None = every hold is active
