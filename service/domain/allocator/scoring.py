"""Plan scoring (docs/assign-tables.md §7.8) and the demand multiplier (docs/assign-tables.md §7.8.3), lower score is better.

All three strategic weights are used (docs/strategic-config.md §5.4 Option B): the scarcity weight `s`,
the demand-multiplier override (replaces `d`) and the future-conflict penalty (replaces the
lookahead weight, see planner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from service.domain.weights import StrategicWeights

from .floor import PlanShape
from .model import DemandProfile, DemandRule

W_OVERAGE = 5.0
W_TABLE_COUNT = 3.0
W_FRAGMENTATION = 2.0
W_ZONE_BALANCE = 4.0
W_ADJACENCY_COST = 1.0


@dataclass(frozen=True, slots=True)
class DemandResult:
    multiplier: float
    rule: dict[str, object] | None


def _minute(text: str | None, default: int) -> int:
    if not text or not text.strip():
        return default
    hours, _, minutes = text.strip().partition(":")
    return int(hours) * 60 + int(minutes or 0)


def _normal(value: float | None) -> float:
    if value is None or not math.isfinite(value) or value <= 0:
        return 1.0
    return float(value)


def demand_multiplier(
    start_local: datetime,
    service_key: str,
    weights: StrategicWeights,
    profiles: tuple[DemandProfile, ...],
    rules: tuple[DemandRule, ...],
) -> DemandResult:
    """Override → profile row → fallback rules (priority ↓, shorter window, earlier start) → 1."""
    weekday = (start_local.weekday() + 1) % 7
    override = weights.effective_demand_override
    if override is not None:
        return DemandResult(
            override,
            {
                "label": "strategic_override",
                "source": "strategic_override",
                "serviceWindow": service_key,
                "days": [weekday],
                "start": None,
                "end": None,
                "priority": None,
            },
        )
    for profile in profiles:
        if profile.day_of_week == weekday and profile.service_window.lower() == service_key:
            return DemandResult(
                _normal(profile.multiplier),
                {
                    "label": None,
                    "source": "restaurant",
                    "serviceWindow": service_key,
                    "days": [weekday],
                    "start": None,
                    "end": None,
                    "priority": None,
                },
            )
    minute = start_local.hour * 60 + start_local.minute
    best: tuple[tuple[int, int, int], DemandRule] | None = None
    for rule in rules:
        if rule.service_window.lower() != service_key or weekday not in rule.days:
            continue
        begin, end = _minute(rule.start, 0), _minute(rule.end, 24 * 60)
        if not begin <= minute < end:
            continue
        rank = (-rule.priority, end - begin, begin)
        if best is None or rank < best[0]:
            best = (rank, rule)
    if best is not None:
        rule = best[1]
        return DemandResult(
            _normal(rule.multiplier),
            {
                "label": rule.label,
                "source": "fallback",
                "serviceWindow": rule.service_window,
                "days": list(rule.days),
                "start": rule.start,
                "end": rule.end,
                "priority": rule.priority,
            },
        )
    return DemandResult(1.0, None)


@dataclass(frozen=True, slots=True)
class ScoredPlan:
    shape: PlanShape
    score: float
    slack: int
    slack_penalty: float
    structural_penalty: float
    combination_penalty: float
    scarcity_penalty: float
    demand_multiplier: float
    future_conflict_penalty: float = 0.0

    @property
    def rank_key(self) -> tuple[float, int, int, int, int, int, str]:
        s = self.shape
        return (self.score, self.slack, s.size, s.total_capacity, s.fragmentation, s.adjacency_cost, s.key)

    def with_penalty(self, penalty: float) -> ScoredPlan:
        return ScoredPlan(
            self.shape,
            self.score + penalty,
            self.slack,
            self.slack_penalty,
            self.structural_penalty,
            self.combination_penalty,
            self.scarcity_penalty,
            self.demand_multiplier,
            self.future_conflict_penalty + penalty,
        )

    def breakdown(self) -> dict[str, float]:
        return {
            "slack_penalty": round(self.slack_penalty, 4),
            "scarcity_penalty": round(self.scarcity_penalty, 4),
            "structural_penalty": round(self.structural_penalty, 4),
            "demand_multiplier": self.demand_multiplier,
            "combination_penalty": round(self.combination_penalty, 4),
            "future_conflict_penalty": round(self.future_conflict_penalty, 4),
            "total_score": round(self.score, 4),
        }


def score_plan(shape: PlanShape, party: int, d: float, s: float, scarcity: list[float]) -> ScoredPlan:
    n = shape.size
    slack = max(shape.total_capacity - party, 0)
    scarcity_sum = sum(scarcity[i] for i in shape.indices)
    slack_penalty = slack * W_OVERAGE * d
    if n > 1:
        amplifier = min(3.0, 1.0 + scarcity_sum / n) if s > 0 and scarcity_sum > 0 else 1.0
        combination = ((n - 1) * W_TABLE_COUNT + shape.adjacency_cost * W_ADJACENCY_COST) * amplifier
    else:
        combination = 0.0
    structural = combination + shape.fragmentation * W_FRAGMENTATION + (shape.zone_count - 1) * W_ZONE_BALANCE
    scarcity_penalty = scarcity_sum * max(s, 0.0)
    return ScoredPlan(
        shape,
        slack_penalty + structural + scarcity_penalty,
        slack,
        slack_penalty,
        structural,
        combination,
        scarcity_penalty,
        d,
    )


def rank(plans: list[ScoredPlan]) -> list[ScoredPlan]:
    return sorted(plans, key=lambda p: p.rank_key)
