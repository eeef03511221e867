"""The decision trace (docs/assign-tables.md §9.1): one camelCase JSON object per evaluated booking, built
from what the planner recorded in ``DayPlan.evaluation`` — outside the planner, which only plans.

The shapes are the dashboard's: keys and nesting are part of the contract and must not drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.domain.weights import StrategicWeights

from .day_plan import PlannedSkip, sanitise
from .floor import EnumerationStats
from .model import AdjacencyMode, AllocatorConfig, Table
from .scoring import DemandResult, ScoredPlan
from .windows import BookingWindow, Overrun, iso_utc


@dataclass(frozen=True, slots=True)
class BookingEvaluation:
    """What the planner knew about one evaluated booking once the plan was fixed."""

    booking_id: str
    party_size: int
    window: BookingWindow | None
    window_failed: bool  # no usable window (invalid, overrun, no service)
    selected: ScoredPlan | None
    stage: str  # which planner stage placed it ("greedy" | "optimiser")
    skip: PlannedSkip | None
    best: ScoredPlan | None  # the best plan of a booking skipped for conflicts
    shown: list[ScoredPlan]  # candidates to list, before the output limits
    remaining: tuple[Table, ...]  # eligible tables not in the selected plan (empty when nothing selected)
    eligible_count: int  # candidates the booking had (after time pruning when on)
    eligible_total: int  # candidates ignoring time
    accepted_plans: int
    combinations: bool
    require_adjacency: bool
    demand: DemandResult | None
    stats: EnumerationStats | None
    lookahead: dict[str, Any] | None
    planner_ms: float
    overrun: Overrun | None = None  # the block ran past a real closing (docs/assign-tables.md §7.3)
    relaxed: tuple[str, ...] = ()  # strict rules the seat needed relaxed (docs/assign-tables.md §7.13)


@dataclass(frozen=True, slots=True)
class DayEvaluation:
    """The run-level inputs of the trace and one :class:`BookingEvaluation` per evaluated booking."""

    restaurant_id: str
    planner: str
    stamp: str | None  # ISO UTC "now" of the run, when the caller gave one
    config: AllocatorConfig
    adjacency_mode: AdjacencyMode
    weights: StrategicWeights
    penalty_weight: float
    penalty_source: str
    tables: tuple[Table, ...]  # the floor's tables (plans hold indices into these)
    bookings: list[BookingEvaluation]


def decision_trace(evaluation: DayEvaluation) -> list[dict[str, Any]]:
    """The sanitised decision objects, in processing order."""
    return [sanitise(_decision(evaluation, booking)) for booking in evaluation.bookings]


def _summary(tables: tuple[Table, ...], plan: ScoredPlan) -> dict[str, Any]:
    shape = plan.shape
    return {
        "tableIds": [tables[i].id for i in shape.indices],
        "tableNumbers": [tables[i].number for i in shape.indices],
        "totalCapacity": shape.total_capacity,
        "tableCount": shape.size,
        "slack": plan.slack,
        "score": round(plan.score, 4),
        "adjacencyStatus": shape.adjacency_status,
        "scoreBreakdown": plan.breakdown(),
    }


def _penalties(plan: ScoredPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    parts = {
        "slack": plan.slack_penalty,
        "scarcity": plan.scarcity_penalty,
        "future_conflict": plan.future_conflict_penalty,
    }
    top = max(parts, key=lambda k: parts[k])
    return {
        "dominant": top if parts[top] > 0 else "unknown",
        "slack": round(plan.slack_penalty, 4),
        "scarcity": round(plan.scarcity_penalty, 4),
        "futureConflict": round(plan.future_conflict_penalty, 4),
    }


def _flags(cfg: AllocatorConfig) -> dict[str, bool]:
    return {
        "selectorScoring": True,
        "opsMetrics": False,
        "plannerTimePruning": cfg.time_pruning,
        "adjacencyUndirected": cfg.adjacency_undirected,
        "holdsStrictConflicts": cfg.holds_strict_conflicts,
        "allocatorFailHard": cfg.service_fail_hard,
        "selectorLookahead": cfg.lookahead_enabled,
    }


def _capped_candidates(cfg: AllocatorConfig, plans: list[ScoredPlan]) -> tuple[list[ScoredPlan], int, int]:
    """The output limits of docs/assign-tables.md §7.7: per-slack bucket for combinations, evaluation cap, list
    cap. Returns the listed plans and how many each limit dropped."""
    per_slack: dict[int, int] = {}
    out: list[ScoredPlan] = []
    bucket = limit = 0
    for p in plans:
        if p.shape.size > 1:
            if per_slack.get(p.slack, 0) >= cfg.max_plans_per_slack:
                bucket += 1
                continue
            per_slack[p.slack] = per_slack.get(p.slack, 0) + 1
        if len(out) >= min(cfg.decision_candidate_limit, cfg.max_combination_evaluations):
            limit += 1
            continue
        out.append(p)
    return out, bucket, limit


def _planner_config(run: DayEvaluation, b: BookingEvaluation) -> dict[str, Any]:
    cfg = run.config
    window = b.window
    demand = b.demand
    return {
        "combinationEnabled": b.combinations,
        "requireAdjacency": b.require_adjacency,
        "adjacencyRequiredGlobally": cfg.require_adjacency,
        "adjacencyMinPartySize": cfg.adjacency_min_party_size,
        "adjacencyMode": run.adjacency_mode,
        "kMax": cfg.effective_k_max,
        "bucketLimit": cfg.max_plans_per_slack,
        "evaluationLimit": cfg.max_combination_evaluations,
        "maxOverage": cfg.max_overage,
        "maxTables": cfg.max_tables,
        "weights": {
            "overage": 5,
            "tableCount": 3,
            "fragmentation": 2,
            "zoneBalance": 4,
            "adjacencyCost": 1,
            "scarcity": run.weights.scarcity,
        },
        "featureFlags": _flags(cfg),
        "serviceFallback": {
            "used": bool(window and window.used_fallback),
            "service": window.service_key if window and window.used_fallback else None,
        },
        "demandMultiplier": demand.multiplier if demand else 1.0,
        "demandRule": demand.rule if demand else None,
        "lookahead": {
            "enabled": cfg.lookahead_enabled,
            "windowMinutes": cfg.lookahead_window_minutes,
            "penaltyWeight": run.penalty_weight,
            "penaltySource": run.penalty_source,
        },
        "strategicConfig": run.weights.telemetry(),
        "window": {
            "service": window.service.name if window else None,
            "clamped": bool(window and window.clamped),
            "overrunAllowed": bool(window and window.overrun_allowed),
            "extendedToBookingEnd": bool(window and window.extended_to_booking_end),
            "continuedInto": list(window.continued_into) if window else [],
        },
    }


def _diagnostics(run: DayEvaluation, b: BookingEvaluation, bucket_skips: int, limit_skips: int) -> dict[str, Any]:
    cfg = run.config
    stats = b.stats
    skipped_counts = dict(stats.skipped) if stats else {}
    skipped_counts["bucket"] = skipped_counts.get("bucket", 0) + bucket_skips
    skipped_counts["limit"] = skipped_counts.get("limit", 0) + limit_skips
    diagnostics: dict[str, Any] = {
        "singlesConsidered": stats.singles_considered if stats else 0,
        "combinationsEnumerated": stats.combinations_enumerated if stats else 0,
        "combinationsAccepted": stats.combinations_accepted if stats else 0,
        "skipped": skipped_counts,
        "limits": {
            "kMax": stats.k_max if stats else cfg.effective_k_max,
            "maxPlansPerSlack": cfg.max_plans_per_slack,
            "maxCombinationEvaluations": cfg.max_combination_evaluations,
        },
        "totals": {
            "enumerated": (stats.singles_considered + stats.combinations_enumerated) if stats else 0,
            "accepted": b.accepted_plans,
        },
        "performance": {"plannerMs": round(b.planner_ms, 3), "tables": len(run.tables)},
        "lookahead": b.lookahead
        or {
            "enabled": cfg.lookahead_enabled,
            "evaluationMs": 0,
            "futureBookingsConsidered": 0,
            "penalizedPlans": 0,
            "totalPenalty": 0,
            "windowMinutes": cfg.lookahead_window_minutes,
            "conflicts": [],
        },
        "timePruning": {
            "prunedByTime": 0,
            "candidatesAfterTimePrune": b.eligible_count,
            "pruned_by_time": 0,
            "candidates_after_time_prune": b.eligible_count,
        },
    }
    if cfg.time_pruning:
        pruned = b.eligible_total - b.eligible_count
        diagnostics["timePruning"].update(prunedByTime=pruned, pruned_by_time=pruned)
    return diagnostics


def _overrun(overrun: Overrun | None) -> dict[str, Any] | None:
    if overrun is None:
        return None
    return {"period": overrun.period, "minutes": overrun.minutes, "resolution": overrun.resolution}


def _decision(run: DayEvaluation, b: BookingEvaluation) -> dict[str, Any]:
    plan, skip, window = b.selected, b.skip, b.window
    candidates, bucket_skips, limit_skips = _capped_candidates(run.config, b.shown)
    summaries = [_summary(run.tables, p) for p in candidates]
    snapshot = None
    if plan is not None:
        snapshot = {
            "totalCandidates": b.eligible_count,
            "remainingAfterSelection": len(b.remaining),
            "remainingTables": [{"id": t.id, "tableNumber": t.number, "capacity": t.capacity} for t in b.remaining],
        }
    planner_config = None if b.window_failed else _planner_config(run, b)
    diagnostics = None if b.window_failed else _diagnostics(run, b, bucket_skips, limit_skips)
    timing = {"totalMs": round(b.planner_ms, 2)}
    if b.planner_ms > 0:
        timing["plannerMs"] = round(b.planner_ms, 2)
    return {
        "type": "capacity.selector",
        "timestamp": run.stamp,
        "restaurantId": run.restaurant_id,
        "bookingId": b.booking_id,
        "partySize": b.party_size,
        "window": {"start": iso_utc(window.block_start), "end": iso_utc(window.block_end)} if window else None,
        "selected": _summary(run.tables, plan) if plan is not None else None,
        "candidates": summaries,
        "topCandidates": summaries,
        "overrun": _overrun(b.overrun),
        "relaxed": list(b.relaxed),
        "skipReason": skip.reason if skip else None,
        "reasonCode": skip.reason_code if skip else None,
        "rejectionClassification": skip.classification if skip else None,
        "strategicPenalties": _penalties(plan or b.best),
        "durationMs": round(b.planner_ms, 2),
        "featureFlags": _flags(run.config),
        "timing": timing,
        "plannerConfig": planner_config,
        "diagnostics": diagnostics,
        "availabilitySnapshot": snapshot,
        "planner": run.planner,
        "plannerStage": b.stage if plan is not None else None,
    }
