"""Day planner: the spec's greedy engine (docs/assign-tables.md §7), then a day-level optimiser.

Stage 1 — greedy: bookings in start order, each gets its best-ranked conflict-free plan (with the
lookahead penalty of docs/assign-tables.md §7.9); what it seats immediately blocks later bookings. This is the original's
behaviour and the guaranteed fallback.

Stage 2 — optimiser ("lns", see optimiser.py): large-neighbourhood search over the whole day that
maximises (seated, covers, -score). Its result replaces greedy's only if it is lexicographically
at least as good; an exception in it leaves greedy's plan ("greedy-fallback"). It stops at a
deterministic iteration cap or at the wall-clock budget, whichever comes first; only the budget
makes the plan timing-dependent, and `DayPlan.optimiser["budgetExhausted"]` reports it.

Internally windows are epoch seconds and table sets are int bitmasks (see floor.py).
"""

from __future__ import annotations

import bisect
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any

from service.domain.weights import StrategicWeights

from .bound import BOUND_COLUMN_LIMIT, METHOD_CANDIDATES, Bound, PackingDay, plan_bound
from .bound import Column as BoundColumn
from .day_plan import (
    CONFLICTS_EXISTING,
    NO_SUITABLE_TABLES,
    NO_SUITABLE_TABLES_REASON,
    PLANNER_EXACT,
    PLANNER_FALLBACK,
    PLANNER_GREEDY,
    PLANNER_LNS,
    DayPlan,
    Objective,
    PlannedAssignment,
    PlannedSkip,
    ServiceFallback,
    idempotency_key,
    rejection_classification,
)
from .floor import Floor, PlanShape
from .model import (
    ACTIVE_BOOKING_STATUSES,
    RELAX_ADJACENCY,
    RELAX_MEMBER_LIMITS,
    RELAX_OVERAGE,
    AllocatorConfig,
    Booking,
    DayInput,
    Table,
)
from .optimiser import PackingBooking, optimise
from .scoring import DemandResult, ScoredPlan, demand_multiplier, rank, score_plan
from .trace import BookingEvaluation, DayEvaluation, decision_trace
from .windows import BookingWindow, WindowError, compute_window, iso_utc, policy_zone


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


@dataclass(slots=True)
class _Static:
    """A busy interval that the run cannot move: existing allocation/assignment or active hold."""

    table: int
    start: float
    end: float
    kind: str  # "booking" | "hold"
    owner: str | None  # booking id the interval belongs to (own rows never block)


@dataclass(slots=True)
class _Ctx:
    """Per evaluated booking."""

    pos: int
    booking: Booking
    window: BookingWindow | None = None
    error: WindowError | None = None
    start: float = 0.0
    end: float = 0.0
    require_adjacency: bool = False
    demand: DemandResult | None = None
    combinations: bool = False
    plans: list[ScoredPlan] = field(default_factory=list)
    stats: Any = None
    eligible_count: int = 0
    static_busy: int = 0
    static_hits: list[_Static] = field(default_factory=list)
    # greedy trace (decision capture)
    considered: list[ScoredPlan] = field(default_factory=list)
    lookahead: dict[str, Any] | None = None
    planner_ms: float = 0.0
    # lookahead cache when this booking is someone's future booking (docs/assign-tables.md §7.9)
    lookahead_shapes: list[int] | None = None
    lookahead_combinations: bool = False
    witnesses: list[int] = field(default_factory=list)
    witness_tables: int = 0
    # relaxation ladder (docs/assign-tables.md §7.13): what the relaxed seat needed, and that rung's plans
    relaxed: tuple[str, ...] = ()
    relaxed_plans: list[ScoredPlan] | None = None

    @property
    def party(self) -> int:
        return self.booking.party_size


@dataclass(slots=True)
class PlannerOptions:
    optimiser: bool = True
    time_budget_s: float = 1.0  # wall-clock cap of the optimiser stage
    # Optional cap on the whole plan() call: the optimiser gets what greedy left of it (and at
    # most time_budget_s); greedy itself always runs to the end.
    total_budget_s: float | None = None
    # Deterministic cap: when it binds before the clock, the same input gives the same plan (docs/assign-tables.md §10).
    max_iterations: int = 600
    seed: int = 0
    capture_decisions: bool = True
    # An upper bound on the bookings any plan could seat, and the exact plan when a solve fits the budget
    # (docs/assign-tables.md §7.14). Off (the default for direct callers): no solver runs and the plan
    # carries no bound; the endpoint turns it on (service/assign/service.py endpoint_planner_options).
    bound: bool = False
    now: datetime | None = None  # decision timestamps; None = DayInput.now (none at all without either)


class DayPlanner:
    def __init__(
        self,
        day: DayInput,
        config: AllocatorConfig | None = None,
        weights: StrategicWeights | None = None,
        options: PlannerOptions | None = None,
        clock: Callable[[], float] = _time.perf_counter,
    ) -> None:
        self.day = day
        self.config = config or AllocatorConfig()
        self.weights = (weights or StrategicWeights()).normalised()
        self.options = options or PlannerOptions()
        self.clock = clock
        self.mode = day.policy.adjacency_mode or self.config.adjacency_mode
        self.floor = Floor(day.tables, day.adjacency, self.config, self.mode, dict(day.scarcity_metrics))
        self.zone = policy_zone(day.policy.timezone)
        self._ranked: dict[tuple[int, bool, bool, float], list[ScoredPlan]] = {}
        self.penalty_weight = (
            self.weights.future_conflict_penalty
            if self.weights.future_conflict_penalty is not None
            else float(self.config.lookahead_penalty_weight)
        )
        self.penalty_source = (
            "strategic_override" if self.weights.future_conflict_penalty is not None else "env"
        )
        # Everything plan() works on is built here, so no method depends on another having run first.
        # The clock starts now: the whole-plan budget and setupMs include this set-up, as plan_day
        # constructs and plans in one go.
        self._started = clock()
        self.ctx, self.statics = self._contexts()
        windowed = sorted((c for c in self.ctx if c.window is not None), key=lambda c: (c.start, c.pos))
        self.by_start = windowed
        self.starts = [c.start for c in windowed]
        self.max_len = max((c.end - c.start for c in windowed), default=0.0)
        self._block_static_intervals()
        n = len(self.ctx)
        self.dyn = [0] * n  # per booking: tables the plan's earlier choices block in its window
        self.plan_of: list[ScoredPlan | None] = [None] * n
        self.stage_of: list[str] = ["greedy"] * n
        # the final plan's occupancy, filled by _index_final once the plan is fixed
        self._occupants: list[list[int]] = [[] for _ in self.floor.tables]
        self._final_busy: dict[int, int] = {}
        self._planned = False
        self._setup_done = clock()

    # ------------------------------------------------------------------------------------------
    # setup
    # ------------------------------------------------------------------------------------------
    def _order(self, bookings: list[Booking]) -> list[Booking]:
        def key(b: Booking) -> tuple[bool, float, time, str]:
            at = b.start_at.timestamp() if b.start_at is not None and b.start_at.tzinfo else None
            return (at is None, at or 0.0, b.start_time or time.max, b.id)

        return sorted(bookings, key=key)

    def _contexts(self) -> tuple[list[_Ctx], list[_Static]]:
        """One context per booking to plan, in processing order, and the intervals nothing can move."""
        cfg = self.config
        day = self.day
        active = [b for b in day.bookings if b.status in ACTIVE_BOOKING_STATUSES]
        ordered = self._order(active)
        contexts: list[_Ctx] = []
        statics: list[_Static] = []
        for booking in ordered:
            if booking.already_assigned:
                statics.extend(self._assigned_intervals(booking))
                continue
            ctx = _Ctx(len(contexts), booking)
            result = compute_window(booking, day.policy, fail_hard=cfg.service_fail_hard)
            if isinstance(result, WindowError):
                ctx.error = result
            else:
                ctx.window = result
                ctx.start, ctx.end = _epoch(result.block_start), _epoch(result.block_end)
            contexts.append(ctx)
        index = self.floor.index
        for iv in day.busy:
            t = index.get(iv.table_id)
            if t is not None and iv.start < iv.end:
                statics.append(_Static(t, _epoch(iv.start), _epoch(iv.end), iv.kind, iv.booking_id))
        if cfg.holds_enabled:
            for hold in day.holds:
                if day.now is not None and hold.expires_at <= day.now:
                    continue
                for table_id in hold.table_ids:
                    t = index.get(table_id)
                    if t is not None and hold.start_at < hold.end_at:
                        statics.append(
                            _Static(t, _epoch(hold.start_at), _epoch(hold.end_at), "hold", hold.booking_id)
                        )
        return contexts, statics

    def _block_static_intervals(self) -> None:
        """Mark each booking's tables that an immovable interval blocks in its window."""
        for static in self.statics:
            for c in self._overlapping(static.start, static.end):
                if static.owner is not None and static.owner == c.booking.id:
                    continue  # a booking's own hold or rows never block it (docs/assign-tables.md §7.4 [REC])
                c.static_busy |= 1 << static.table
                c.static_hits.append(static)

    def _assigned_intervals(self, booking: Booking) -> list[_Static]:
        if booking.assigned_start_at is not None and booking.assigned_end_at is not None:
            start, end = booking.assigned_start_at, booking.assigned_end_at
        else:
            # Recomputed without the overrun check: another booking's overrun must not abort (docs/assign-tables.md §7.4).
            result = compute_window(booking, self.day.policy, check_overrun=False)
            if isinstance(result, WindowError):
                return []
            start, end = result.block_start, result.block_end
        out = []
        for table_id in booking.assigned_table_ids:
            t = self.floor.index.get(table_id)
            if t is not None and start < end:
                out.append(_Static(t, _epoch(start), _epoch(end), "booking", booking.id))
        return out

    def _overlapping(self, start: float, end: float) -> list[_Ctx]:
        lo = bisect.bisect_left(self.starts, start - self.max_len)
        hi = bisect.bisect_left(self.starts, end)
        return [c for c in self.by_start[lo:hi] if c.end > start and c.start < end and c.start < c.end]

    # ------------------------------------------------------------------------------------------
    # candidate plans per booking
    # ------------------------------------------------------------------------------------------
    def _ranked_plans(
        self, party: int, combinations: bool, require_adjacency: bool, d: float
    ) -> list[ScoredPlan]:
        key = (party, combinations, require_adjacency, d)
        cached = self._ranked.get(key)
        if cached is None:
            plan_set = self.floor.plans(party, combinations, require_adjacency)
            scarcity = self.floor.scarcity_scores(party)
            cached = rank([score_plan(s, party, d, self.weights.scarcity, scarcity) for s in plan_set.plans])
            self._ranked[key] = cached
        return cached

    def _pruned_plans(self, ctx: _Ctx, combinations: bool, busy: int, d: float) -> list[ScoredPlan]:
        """Time pruning on: only time-free tables are candidates, scarcity counts only them (docs/assign-tables.md §7.5)."""
        floor = self.floor
        free = [i for i in floor.eligible(ctx.party) if not busy >> i & 1]
        ctx.eligible_count = len(free)
        k_max = min(self.config.effective_k_max, len(free))
        scarcity = floor.scarcity_scores(ctx.party, among=free)
        shapes = [
            s
            for s in floor.plans(ctx.party, combinations, ctx.require_adjacency).plans
            if not s.mask & busy and s.size <= k_max
        ]
        return rank([score_plan(s, ctx.party, d, self.weights.scarcity, scarcity) for s in shapes])

    def _prepare(self, ctx: _Ctx) -> None:
        assert ctx.window is not None
        block_local = ctx.window.block_start.astimezone(self.zone)
        ctx.demand = demand_multiplier(
            block_local,
            ctx.window.service_key,
            self.weights,
            self.day.demand_profiles,
            self.day.demand_rules,
        )
        ctx.require_adjacency = self.floor.require_adjacency(ctx.party)
        ctx.eligible_count = len(self.floor.eligible(ctx.party))

    def _plans_for(self, ctx: _Ctx, busy: int) -> None:
        cfg = self.config
        assert ctx.demand is not None
        d = ctx.demand.multiplier

        def get(combinations: bool) -> list[ScoredPlan]:
            if cfg.time_pruning:
                return self._pruned_plans(ctx, combinations, busy, d)
            return self._ranked_plans(ctx.party, combinations, ctx.require_adjacency, d)

        ctx.combinations = cfg.combination_planner
        plans = get(ctx.combinations)
        if not plans and not cfg.combination_planner and cfg.merges_enabled:
            ctx.combinations = True  # second pass: merges when no single table fits (docs/assign-tables.md §7.7)
            plans = get(True)
        if not plans and cfg.time_pruning:
            # [REC] docs/assign-tables.md §7.5: fitting tables that are all busy are a conflict, not "no suitable tables".
            plans = self._ranked_plans(ctx.party, ctx.combinations, ctx.require_adjacency, d)
        ctx.plans = plans
        ctx.stats = self.floor.plans(ctx.party, ctx.combinations, ctx.require_adjacency).stats

    # ------------------------------------------------------------------------------------------
    # stage 1: greedy (the spec engine)
    # ------------------------------------------------------------------------------------------
    def _greedy(self) -> None:
        cfg = self.config
        lookahead_on = cfg.lookahead_enabled
        evaluate = max(1, cfg.lookahead_max_plans)
        for ctx in self.ctx:
            began = self.clock()
            if ctx.window is None:
                continue
            self._prepare(ctx)
            busy = ctx.static_busy | self.dyn[ctx.pos]
            self._plans_for(ctx, busy)
            if not ctx.plans:
                ctx.planner_ms = (self.clock() - began) * 1000
                continue
            want = evaluate + 1 if lookahead_on else 1
            if self.options.capture_decisions:
                want = max(want, cfg.decision_candidate_limit)
            free: list[ScoredPlan] = []
            for p in ctx.plans:
                if not p.shape.mask & busy:
                    free.append(p)
                    if len(free) >= want:
                        break
            if not free:
                ctx.considered = ctx.plans[: cfg.decision_candidate_limit]
                ctx.planner_ms = (self.clock() - began) * 1000
                continue
            if lookahead_on:
                head = self._lookahead(ctx, free[:evaluate])
                free = rank(head + free[evaluate:])
            chosen = free[0]
            ctx.considered = free
            self._assign(ctx.pos, chosen, "greedy")
            ctx.planner_ms = (self.clock() - began) * 1000

    def _assign(self, pos: int, plan: ScoredPlan, stage: str) -> None:
        self.plan_of[pos] = plan
        self.stage_of[pos] = stage
        mask = plan.shape.mask
        ctx = self.ctx[pos]
        for other in self._overlapping(ctx.start, ctx.end):
            self.dyn[other.pos] |= mask

    def _lookahead(self, ctx: _Ctx, plans: list[ScoredPlan]) -> list[ScoredPlan]:
        """docs/assign-tables.md §7.9: penalise plans that leave an overlapping future booking without any plan.

        A future booking with `need` pairwise-disjoint free plans (need = largest evaluated plan
        size + 1) cannot be stranded by any evaluated plan, so it is skipped; those witnesses are
        cached per booking and stay valid while none of their tables becomes busy for it.
        """
        began = self.clock()
        horizon = ctx.start + self.config.lookahead_window_minutes * 60
        lo = bisect.bisect_right(self.starts, ctx.start)
        hi = bisect.bisect_right(self.starts, min(horizon, ctx.end - 1e-9))
        need = max(p.shape.size for p in plans) + 1
        penalties = [0.0] * len(plans)
        conflicts: list[dict[str, str]] = []
        considered = 0
        plan_of = self.plan_of
        dyn = self.dyn
        for f in self.by_start[lo:hi]:
            if plan_of[f.pos] is not None or f.start <= ctx.start or f.pos == ctx.pos:
                continue
            considered += 1
            busy_f = f.static_busy | dyn[f.pos]
            if len(f.witnesses) >= need and not busy_f & f.witness_tables:
                continue  # enough disjoint free plans: no plan of ctx can strand f
            if f.lookahead_shapes is None or f.lookahead_combinations != ctx.combinations:
                require = self.floor.require_adjacency(f.party, ignore_edges=True)  # [ORIG] quirk, docs/assign-tables.md §7.9
                f.lookahead_shapes = [
                    q.mask for q in self.floor.plans(f.party, ctx.combinations, require).plans
                ]
                f.lookahead_combinations = ctx.combinations
            shapes = f.lookahead_shapes
            witnesses: list[int] = []
            used = 0
            for m in shapes:
                if m & busy_f or m & used:
                    continue
                witnesses.append(m)
                used |= m
                if len(witnesses) >= need:
                    break
            f.witnesses, f.witness_tables = witnesses, used
            if len(witnesses) >= need:
                continue
            for k, p in enumerate(plans):
                pm = p.shape.mask
                if any(not w & pm for w in witnesses):
                    continue
                blocked = busy_f | pm
                if any(not m & blocked for m in shapes):
                    continue
                penalties[k] += self.penalty_weight
                conflicts.append({"bookingId": f.booking.id, "planKey": p.shape.key})
        result = [p.with_penalty(pen) if pen else p for p, pen in zip(plans, penalties, strict=True)]
        ctx.lookahead = {
            "enabled": True,
            "evaluationMs": round((self.clock() - began) * 1000, 2),
            "futureBookingsConsidered": considered,
            "penalizedPlans": sum(1 for pen in penalties if pen),
            "totalPenalty": sum(penalties),
            "windowMinutes": self.config.lookahead_window_minutes,
            "conflicts": conflicts,
        }
        return result

    # ------------------------------------------------------------------------------------------
    # stage 2: day-level optimiser (optimiser.py)
    # ------------------------------------------------------------------------------------------
    def _optimise(self) -> dict[str, Any]:
        opts = self.options
        began = self.clock()
        deadline = began + max(0.0, opts.time_budget_s)
        if opts.total_budget_s is not None:
            # Leave a little for building the output after the optimiser.
            deadline = min(deadline, self._started + opts.total_budget_s * 0.9)
        items: list[PackingBooking] = []
        owners: list[int] = []
        usable_of: list[list[ScoredPlan]] = []
        shared: dict[tuple[int, int], tuple[list[ScoredPlan], tuple[tuple[int, ...], ...], tuple[str, ...]]] = {}
        for ctx in self.ctx:
            if ctx.window is None or not ctx.plans:
                continue
            key = (id(ctx.plans), ctx.static_busy)
            got = shared.get(key)
            if got is None:
                usable = [p for p in ctx.plans if not p.shape.mask & ctx.static_busy]
                plans = tuple(p.shape.indices for p in usable)
                zones = tuple(self.floor.tables[p.shape.indices[0]].zone_id or "" for p in usable)
                got = (usable, plans, zones)
                shared[key] = got
            usable, plans, zones = got
            if not plans:
                continue
            items.append(PackingBooking(ctx.start, ctx.end, ctx.party, plans, zones))
            owners.append(ctx.pos)
            usable_of.append(usable)
        initial: list[int | None] = []
        for pos, usable in zip(owners, usable_of, strict=True):
            chosen = self.plan_of[pos]
            if chosen is None:
                initial.append(None)
            else:
                mask = chosen.shape.mask
                initial.append(next(k for k, p in enumerate(usable) if p.shape.mask == mask))
        result = optimise(
            items,
            self.floor.capacity,
            initial,
            deadline=deadline,
            clock=self.clock,
            max_iterations=opts.max_iterations,
            seed=opts.seed,
        )
        moved = 0
        for pos, usable, k in zip(owners, usable_of, result.choice, strict=True):
            old = self.plan_of[pos]
            new = usable[k] if k is not None else None
            if (old is None and new is None) or (
                old is not None and new is not None and old.shape.mask == new.shape.mask
            ):
                continue
            self.plan_of[pos] = new
            self.stage_of[pos] = "optimiser"
            moved += 1
        return {
            "name": PLANNER_LNS,
            "iterations": result.iterations,
            "improvements": result.improvements,
            "constructionUsed": result.constructed_better,
            "bookingsChanged": moved,
            "budgetExhausted": result.budget_exhausted,
            "budgetMs": round(opts.time_budget_s * 1000, 1),
            "maxIterations": opts.max_iterations,
            "elapsedMs": round((self.clock() - began) * 1000, 2),
            **result.stats,
        }

    # ------------------------------------------------------------------------------------------
    # stage 3: the relaxation ladder (docs/assign-tables.md §7.13)
    # ------------------------------------------------------------------------------------------
    def _rungs(self) -> list[tuple[str, AllocatorConfig]]:
        """The restaurant's enabled rungs, each config cumulative over the ones before it; a rung that
        would change nothing (e.g. a relaxed overage not above the strict one) is left out."""
        policy, cfg = self.day.policy, self.config
        rungs: list[tuple[str, AllocatorConfig]] = []
        current = cfg
        if policy.relax_overage and policy.relaxed_max_overage > cfg.max_overage:
            current = replace(current, max_overage=policy.relaxed_max_overage)
            rungs.append((RELAX_OVERAGE, current))
        if policy.relax_member_limits and cfg.max_party_applies_to_members:
            current = replace(current, max_party_applies_to_members=False)
            rungs.append((RELAX_MEMBER_LIMITS, current))
        if policy.relax_adjacency and cfg.require_adjacency and self.floor.has_edges:
            current = replace(current, require_adjacency=False)
            rungs.append((RELAX_ADJACENCY, current))
        return rungs

    def _busy_now(self, ctx: _Ctx) -> int:
        busy = ctx.static_busy
        for o in self._overlapping(ctx.start, ctx.end):
            plan = self.plan_of[o.pos]
            if plan is not None and o.pos != ctx.pos:
                busy |= plan.shape.mask
        return busy

    def _needs(self, ctx: _Ctx, plan: ScoredPlan) -> tuple[str, ...]:
        """Which strict rules ``plan`` breaks for ``ctx``: the flags a relaxed seat carries."""
        cfg, floor, party = self.config, self.floor, ctx.party
        shape = plan.shape
        needs: list[str] = []
        if shape.total_capacity - party > cfg.max_overage or any(
            floor.capacity[i] > party + cfg.max_overage for i in shape.indices
        ):
            needs.append(RELAX_OVERAGE)
        if shape.size > 1 and cfg.max_party_applies_to_members and any(
            (t := floor.tables[i]).max_party_size and t.max_party_size > 0 and party > t.max_party_size
            for i in shape.indices
        ):
            needs.append(RELAX_MEMBER_LIMITS)
        if shape.size > 1 and floor.require_adjacency(party) and (
            shape.adjacency_status == "disconnected" or not floor.satisfies_mode(shape.indices, self.mode)
        ):
            needs.append(RELAX_ADJACENCY)
        return tuple(needs)

    def _relax(self) -> dict[str, Any]:
        """Seat what the strict plan left unseated, rung by rung, each rung only for the bookings no stricter
        rung seated, on tables free around every seat already made (no strict seat ever moves)."""
        summary: dict[str, Any] = {"rungs": [], "seated": {}}
        rungs = self._rungs()
        if not rungs:
            return summary
        for name, rung_cfg in rungs:
            floor = Floor(self.day.tables, self.day.adjacency, rung_cfg, self.mode, dict(self.day.scarcity_metrics))
            ranked_of: dict[tuple[int, float], list[ScoredPlan]] = {}
            seated = 0
            for ctx in self.ctx:
                if ctx.window is None or self.plan_of[ctx.pos] is not None or ctx.demand is None:
                    continue
                d = ctx.demand.multiplier
                require = floor.require_adjacency(ctx.party)
                ranked = ranked_of.get((ctx.party, d))
                if ranked is None:
                    combinations = rung_cfg.combination_planner
                    shapes = floor.plans(ctx.party, combinations, require).plans
                    if not shapes and not combinations and rung_cfg.merges_enabled:
                        shapes = floor.plans(ctx.party, True, require).plans
                    scarcity = floor.scarcity_scores(ctx.party)
                    ranked = rank([score_plan(sh, ctx.party, d, self.weights.scarcity, scarcity) for sh in shapes])
                    ranked_of[(ctx.party, d)] = ranked
                if not ranked:
                    continue
                busy = self._busy_now(ctx)
                chosen = next((p for p in ranked if not p.shape.mask & busy), None)
                if chosen is None:
                    continue
                ctx.relaxed = self._needs(ctx, chosen)
                ctx.relaxed_plans = ranked
                ctx.require_adjacency = require and ctx.require_adjacency
                self.plan_of[ctx.pos] = chosen
                self.stage_of[ctx.pos] = "relaxed"
                seated += 1
            summary["rungs"].append(name)
            summary["seated"][name] = seated
        return summary

    # ------------------------------------------------------------------------------------------
    # stage 4: the bound, and the exact plan when it fits the budget (docs/assign-tables.md §7.14)
    # ------------------------------------------------------------------------------------------
    def _bound(self) -> Bound:
        """Columns: every booking's strict candidates, plus (when the ladder runs) its last rung's, flagged
        relaxed — the rules the plan was made under. An exact plan that seats more replaces the plan."""
        rungs = self._rungs()
        rung_floor = None
        if rungs:
            rung_floor = Floor(self.day.tables, self.day.adjacency, rungs[-1][1], self.mode,
                               dict(self.day.scarcity_metrics))
        positions = [c for c in self.ctx if c.window is not None and c.demand is not None]
        combinations = self.config.combination_planner or self.config.merges_enabled
        extra: dict[int, tuple[PlanShape, ...]] = {}
        if rung_floor is not None:
            for ctx in positions:
                if ctx.party not in extra:
                    require = rung_floor.require_adjacency(ctx.party)
                    extra[ctx.party] = rung_floor.plans(ctx.party, combinations, require).plans
        with_any = sum(1 for c in positions if c.plans or extra.get(c.party))
        estimate = sum(len(c.plans) + len(extra.get(c.party, ())) for c in positions)
        if estimate > BOUND_COLUMN_LIMIT:
            # Too big to solve within the planner's budget: the bound is the bookings with any candidate.
            seated = sum(1 for c in positions if self.plan_of[c.pos] is not None)
            return Bound(with_any, seated >= with_any, METHOD_CANDIDATES, solver={"columns": estimate})
        columns: list[BoundColumn] = []
        shapes_of: list[tuple[_Ctx, PlanShape, bool]] = []
        current: list[int | None] = []
        for b, ctx in enumerate(positions):
            chosen = self.plan_of[ctx.pos]
            candidates = [(p.shape, False) for p in ctx.plans] + [(sh, True) for sh in extra.get(ctx.party, ())]
            kept: list[int] = []
            mine: int | None = None
            for shape, relaxed in sorted(candidates, key=lambda c: (c[0].mask.bit_count(), c[1], c[0].mask)):
                mask = shape.mask
                if mask & ctx.static_busy:
                    continue
                is_chosen = chosen is not None and chosen.shape.mask == mask
                # A superset of a kept set never seats more: dropped, unless it is the plan's own choice.
                if not is_chosen and any(k & mask == k for k in kept):
                    continue
                kept.append(mask)
                if is_chosen:
                    mine = len(columns)
                columns.append(BoundColumn(b, mask, relaxed, shape.total_capacity - ctx.party))
                shapes_of.append((ctx, shape, relaxed))
            current.append(mine)
        result = plan_bound(PackingDay([c.start for c in positions], [c.end for c in positions], columns), current)
        if result.exact_choice is not None:
            for b, ctx in enumerate(positions):
                k = result.exact_choice[b]
                if k is None:
                    self.plan_of[ctx.pos] = None
                    ctx.relaxed, ctx.relaxed_plans = (), None
                    continue
                _, shape, relaxed = shapes_of[k]
                old = self.plan_of[ctx.pos]
                if old is not None and old.shape.mask == shape.mask:
                    continue
                assert ctx.demand is not None
                floor = rung_floor if relaxed and rung_floor is not None else self.floor
                plan = score_plan(shape, ctx.party, ctx.demand.multiplier, self.weights.scarcity,
                                  floor.scarcity_scores(ctx.party))
                needs = self._needs(ctx, plan) if relaxed else ()
                self.plan_of[ctx.pos] = plan
                self.stage_of[ctx.pos] = "exact"
                ctx.relaxed = needs
                ctx.relaxed_plans = [plan] if needs else None
                if RELAX_ADJACENCY in needs:
                    ctx.require_adjacency = False
        return result

    # ------------------------------------------------------------------------------------------
    # results
    # ------------------------------------------------------------------------------------------
    def _objective(self) -> Objective:
        seated = covers = 0
        score = 0.0
        for ctx in self.ctx:
            plan = self.plan_of[ctx.pos]
            if plan is not None:
                seated += 1
                covers += ctx.party
                score += plan.score - plan.future_conflict_penalty
        return Objective(seated, covers, score)

    def plan(self) -> DayPlan:
        if self._planned:
            raise RuntimeError("a DayPlanner plans once; build a new one for another plan")
        self._planned = True
        t0, t_setup = self._started, self._setup_done
        self._greedy()
        t_greedy = self.clock()
        greedy_obj = self._objective()
        greedy_plans = list(self.plan_of)
        greedy_stages = list(self.stage_of)
        planner = PLANNER_GREEDY
        optimiser: dict[str, Any] = {"name": None}
        if self.options.optimiser:
            try:
                optimiser = self._optimise()
                final = self._objective()
                if final.key() < greedy_obj.key():  # never worse than greedy
                    raise RuntimeError("optimiser produced a worse plan")
                improved = final.key() > greedy_obj.key()
                if not improved:  # an equally good plan is no reason to depart from the spec engine
                    self.plan_of, self.stage_of = list(greedy_plans), list(greedy_stages)
                planner = PLANNER_FALLBACK if optimiser["budgetExhausted"] and not improved else PLANNER_LNS
            except Exception as exc:  # the greedy plan stays the guaranteed answer
                self.plan_of, self.stage_of = greedy_plans, greedy_stages
                optimiser = {"name": PLANNER_LNS, "error": type(exc).__name__ + ": " + str(exc)}
                planner = PLANNER_FALLBACK
        relaxation = self._relax()
        t_relaxed = self.clock()
        bound = self._bound() if self.options.bound else None
        if bound is not None and bound.exact_choice is not None:
            planner = PLANNER_EXACT
        t_opt = self.clock()
        final_obj = self._objective()
        result = self._build(planner, greedy_obj, final_obj, optimiser)
        result.relaxation = relaxation
        result.bound = bound
        t_end = self.clock()
        result.timings = {
            "setupMs": round((t_setup - t0) * 1000, 2),
            "greedyMs": round((t_greedy - t_setup) * 1000, 2),
            "optimiserMs": round((t_relaxed - t_greedy) * 1000, 2),
            "boundMs": round((t_opt - t_relaxed) * 1000, 2),
            "outputMs": round((t_end - t_opt) * 1000, 2),
            "totalMs": round((t_end - t0) * 1000, 2),
        }
        return result

    def _index_final(self) -> None:
        """Per table, the bookings seated on it in the final plan (a handful per table per day)."""
        self._occupants = [[] for _ in self.floor.tables]
        self._final_busy = {}
        for pos, plan in enumerate(self.plan_of):
            if plan is not None:
                for t in plan.shape.indices:
                    self._occupants[t].append(pos)

    def _free_in_final(self, pos: int, mask: int) -> bool:
        return not mask & self._busy_in_final(pos)

    def _busy_in_final(self, pos: int) -> int:
        """Tables ``pos`` cannot take in the final plan: its immovable intervals plus every other booking's
        tables during its window (computed once per booking: alternatives and decisions test many sets)."""
        busy = self._final_busy.get(pos)
        if busy is None:
            ctx = self.ctx[pos]
            busy = ctx.static_busy
            for o in self._overlapping(ctx.start, ctx.end):
                plan = self.plan_of[o.pos]
                if plan is not None and o.pos != pos:
                    busy |= plan.shape.mask
            self._final_busy[pos] = busy
        return busy

    def _conflict_reason(self, ctx: _Ctx) -> tuple[str, list[str]]:
        """`Conflicts with existing …` for the best-ranked plan against the final day state."""
        best = ctx.plans[0].shape
        kinds: set[str] = set()
        tables: list[int] = []
        members = best.mask
        for iv in ctx.static_hits:
            if members >> iv.table & 1:
                kinds.add("holds" if iv.kind == "hold" else "bookings")
                if iv.table not in tables:
                    tables.append(iv.table)
        for t in best.indices:
            for other in self._occupants[t]:
                o = self.ctx[other]
                if other != ctx.pos and o.start < ctx.end and ctx.start < o.end:
                    kinds.add("bookings")
                    if t not in tables:
                        tables.append(t)
        ids = [self.floor.tables[t].id for t in sorted(tables)]
        if kinds == {"holds", "bookings"}:
            what = "holds and bookings"
        elif kinds:
            what = next(iter(kinds))
        else:
            return "Conflicts with existing conflicts", ids
        return f"Conflicts with existing {what} on tables {', '.join(ids)}", ids

    def _alternatives(self, pos: int, chosen: ScoredPlan, limit: int = 2) -> tuple[tuple[str, ...], ...]:
        ctx = self.ctx[pos]
        out = []
        for p in ctx.relaxed_plans if ctx.relaxed_plans is not None else ctx.plans:
            if p.shape.mask == chosen.shape.mask or not self._free_in_final(pos, p.shape.mask):
                continue
            out.append(tuple(sorted(self.floor.tables[i].id for i in p.shape.indices)))
            if len(out) >= limit:
                break
        return tuple(out)

    def _build(self, planner: str, greedy: Objective, final: Objective, optimiser: dict[str, Any]) -> DayPlan:
        day = self.day
        assigned: list[PlannedAssignment] = []
        skipped: list[PlannedSkip] = []
        fallbacks: list[ServiceFallback] = []
        evaluations: list[BookingEvaluation] | None = [] if self.options.capture_decisions else None
        self._index_final()
        for ctx in self.ctx:
            window = ctx.window
            used = window.used_fallback if window else bool(ctx.error and ctx.error.used_fallback)
            service = None
            if used:
                svc = window.service if window else (ctx.error.service if ctx.error else None)
                service = svc.service_key if svc else None
            fallbacks.append(ServiceFallback(ctx.booking.id, used, service))
            plan = self.plan_of[ctx.pos]
            skip: PlannedSkip | None = None
            best: ScoredPlan | None = None
            if ctx.error is not None:
                skip = PlannedSkip(ctx.booking.id, ctx.error.reason, ctx.error.code, "hard")
            elif plan is None and not ctx.plans:
                skip = PlannedSkip(ctx.booking.id, NO_SUITABLE_TABLES_REASON, NO_SUITABLE_TABLES, "hard")
            elif plan is None:
                best = ctx.plans[0]
                reason, _ = self._conflict_reason(ctx)
                skip = PlannedSkip(ctx.booking.id, reason, CONFLICTS_EXISTING, self._classify(reason, best))
            else:
                assert window is not None
                ids = tuple(self.floor.tables[i].id for i in plan.shape.indices)
                assigned.append(
                    PlannedAssignment(
                        booking_id=ctx.booking.id,
                        table_ids=ids,
                        table_numbers=tuple(self.floor.tables[i].number for i in plan.shape.indices),
                        block_start=window.block_start,
                        block_end=window.block_end,
                        require_adjacency=ctx.require_adjacency,
                        idempotency_key=idempotency_key(
                            day.restaurant_id, ctx.booking.id, ids, window.block_start, window.block_end
                        ),
                        score=round(plan.score, 4),
                        party_size=ctx.party,
                        stage=self.stage_of[ctx.pos],
                        alternatives=self._alternatives(ctx.pos, plan),
                        relaxed=ctx.relaxed,
                    )
                )
            if skip is not None:
                skipped.append(skip)
            if evaluations is not None:
                evaluations.append(self._evaluation(ctx, plan, skip, best))
        evaluation = None
        if evaluations is not None:
            # the domain reads no clock of its own: the caller's "now", else the day's (read with the data)
            moment = self.options.now or self.day.now
            evaluation = DayEvaluation(
                restaurant_id=day.restaurant_id,
                planner=planner,
                stamp=iso_utc(moment) if moment is not None else None,
                config=self.config,
                adjacency_mode=self.mode,
                weights=self.weights,
                penalty_weight=self.penalty_weight,
                penalty_source=self.penalty_source,
                tables=tuple(self.floor.tables),
                bookings=evaluations,
            )
        return DayPlan(
            restaurant_id=day.restaurant_id,
            service_date=day.service_date,
            planner=planner,
            order=[c.booking.id for c in self.ctx],
            assigned=assigned,
            skipped=skipped,
            service_fallbacks=fallbacks,
            decisions=decision_trace(evaluation) if evaluation is not None else None,
            evaluation=evaluation,
            timings={},
            greedy=greedy,
            final=final,
            optimiser=optimiser,
        )

    @staticmethod
    def _classify(reason: str | None, best: ScoredPlan | None) -> str | None:
        if best is None:
            return rejection_classification(reason, 0, 0, 0)
        return rejection_classification(reason, best.slack_penalty, best.scarcity_penalty, best.future_conflict_penalty)

    def _evaluation(self, ctx: _Ctx, plan: ScoredPlan | None, skip: PlannedSkip | None, best: ScoredPlan | None) -> BookingEvaluation:
        """What the decision trace needs of one booking, read from the planner's state once the plan is fixed."""
        if plan is not None and ctx.relaxed_plans is not None:
            shown = [p for p in ctx.relaxed_plans if self._free_in_final(ctx.pos, p.shape.mask)]
        elif plan is not None and self.stage_of[ctx.pos] == "greedy":
            shown = ctx.considered  # conflict-free when greedy decided, lookahead penalties included
        elif plan is not None:
            shown = [p for p in ctx.plans if self._free_in_final(ctx.pos, p.shape.mask)]
            if not any(p.shape.mask == plan.shape.mask for p in shown):
                shown = [plan, *shown]
        elif skip is not None and skip.reason_code == CONFLICTS_EXISTING:
            shown = ctx.plans
        else:
            shown = []
        eligible = self.floor.eligible(ctx.party)
        remaining: tuple[Table, ...] = ()
        if plan is not None:
            chosen = set(plan.shape.indices)
            remaining = tuple(self.floor.tables[i] for i in eligible if i not in chosen)
        return BookingEvaluation(
            booking_id=ctx.booking.id,
            party_size=ctx.party,
            window=ctx.window,
            window_failed=ctx.error is not None,
            selected=plan,
            stage=self.stage_of[ctx.pos],
            skip=skip,
            best=best,
            shown=shown,
            remaining=remaining,
            eligible_count=ctx.eligible_count,
            eligible_total=len(eligible),
            accepted_plans=len(ctx.plans),
            combinations=ctx.combinations,
            require_adjacency=ctx.require_adjacency,
            demand=ctx.demand,
            stats=ctx.stats,
            lookahead=ctx.lookahead,
            planner_ms=ctx.planner_ms,
            overrun=ctx.window.overrun if ctx.window else (ctx.error.overrun if ctx.error else None),
            relaxed=ctx.relaxed,
        )


@dataclass(frozen=True, slots=True)
class InstanceBooking:
    """One evaluated booking as a packing problem: for exact solvers and benchmarks."""

    booking_id: str
    party_size: int
    start: float  # block window, epoch seconds
    end: float
    plans: tuple[tuple[int, ...], ...]  # candidate table-index sets not blocked by immovable intervals


def export_instance(planner: DayPlanner) -> list[InstanceBooking]:
    """The day as the planner saw it (call after `plan()`): same windows, same candidate plans.

    Plans that are supersets of another plan of the same booking are dropped: they can never seat
    more bookings or covers than the subset, so maximum seated/covers are unchanged.
    """
    out = []
    for ctx in planner.ctx:
        if ctx.window is None or not ctx.plans:
            out.append(InstanceBooking(ctx.booking.id, ctx.party, ctx.start, ctx.end, ()))
            continue
        masks = sorted(
            {p.shape.mask for p in ctx.plans if not p.shape.mask & ctx.static_busy}, key=int.bit_count
        )
        kept: list[int] = []
        for m in masks:
            if not any(k & m == k for k in kept):
                kept.append(m)
        plans = tuple(tuple(i for i in range(m.bit_length()) if m >> i & 1) for m in kept)
        out.append(InstanceBooking(ctx.booking.id, ctx.party, ctx.start, ctx.end, plans))
    return out


def plan_day(
    day: DayInput,
    config: AllocatorConfig | None = None,
    weights: StrategicWeights | None = None,
    options: PlannerOptions | None = None,
) -> DayPlan:
    """Plan one restaurant's service date. Pure: no I/O, deterministic for the same input unless
    the optimiser's wall-clock budget runs out (reported in `DayPlan.optimiser`)."""
    return DayPlanner(day, config, weights, options).plan()
