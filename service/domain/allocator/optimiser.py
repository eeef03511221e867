"""Day-level optimiser: large-neighbourhood search over the whole day's seating.

The day is a packing problem: booking i has a block window and a list of candidate table sets;
choose at most one set per booking so that no table carries two overlapping windows. Objective,
lexicographic: bookings seated, then covers, then lower total plan score.

Method (all deterministic for a given input and iteration cap):
1. Construction: bookings by window end (or parties of up to 2, 4 or 6 first, then by window
   end), each on the free set with fewest tables, then the least idle time left around it on
   those tables ("best fit in time") and fewest seats, in either order; the best of five such
   variants, or the caller's plan (greedy) if better, is the starting point.
2. Ruin and recreate, driven by a seeded RNG over the unseated bookings u:
   - zone ruin: the tables u could use in one zone, over u's window ± a margin;
   - targeted ruin: u takes one of its sets, whoever blocks it is evicted;
   - table sweep: a few tables of similar size over a long stretch of the service;
   - re-pack: a few same-size tables (sometimes the whole size class) over the whole day,
     re-sequenced by window end onto the table free the latest (exact for identical tables).
   Removed bookings plus nearby unseated ones are re-inserted by the construction rule in a
   perturbed order. A region is kept if it seats more bookings than before, or as many while using no more
   capacity × time (leaving room for later moves) — or, half of the time, as many regardless of
   capacity × time, a walk along the plateau; else it is restored exactly. Late in long runs a
   one-booking downhill step is sometimes kept to leave a plateau; the best plan seen is returned.
3. Polish: each seated booking moves to its best-scored free table set (score only; the seated
   set does not change).

Time is compressed to the distinct window endpoints, so every window is an int bitmask and
"table t is free for booking i" is one AND; half-open overlap is preserved exactly.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import or_


@dataclass(frozen=True, slots=True)
class PackingBooking:
    start: float
    end: float
    party_size: int
    # Candidate table sets in rank order (best score first); table indices within each set.
    plans: tuple[tuple[int, ...], ...]
    zone_of_plan: tuple[str, ...] = ()


@dataclass(slots=True)
class OptimiserResult:
    choice: list[int | None]  # plan index per booking
    iterations: int = 0
    improvements: int = 0
    budget_exhausted: bool = False
    constructed_better: bool = False
    stats: dict[str, float] = field(default_factory=dict)


def dominance_filter(masks: Sequence[int], subsets_of: dict[int, tuple[int, ...] | None]) -> list[int]:
    """Indices of plans that are not a strict superset of another plan: a superset can never seat
    more bookings than its subset, so count-oriented moves only need the minimal sets. A duplicate set
    keeps its first index. ``subsets_of`` caches each set's proper subsets across bookings (the same
    table groups recur in every party size's plan list)."""
    present = set(masks)
    seen: set[int] = set()
    kept: list[int] = []
    for k, m in enumerate(masks):
        if m in seen:
            continue
        seen.add(m)
        if m not in subsets_of:
            subsets_of[m] = _proper_subsets(m)
        subsets = subsets_of[m]
        if subsets is None:  # a set of more than 8 tables: scan instead of enumerating 2^n subsets
            if any(p != m and p & m == p for p in present):
                continue
        elif any(sub in present for sub in subsets):
            continue
        kept.append(k)
    return kept


def _proper_subsets(mask: int) -> tuple[int, ...] | None:
    """Every non-empty proper subset of ``mask``; None above 8 members. Candidate sets have a handful of
    tables (kMax), so enumerating them is far cheaper than comparing with every other set of a big party."""
    bits = []
    rest = mask
    while rest:
        low = rest & -rest
        bits.append(low)
        rest ^= low
    if len(bits) > 8:
        return None
    out = []
    for pick in range(1, (1 << len(bits)) - 1):
        sub = 0
        for b, bit in enumerate(bits):
            if pick >> b & 1:
                sub |= bit
        out.append(sub)
    return tuple(out)


class DayOptimiser:
    def __init__(
        self,
        bookings: Sequence[PackingBooking],
        capacities: Sequence[int],
        *,
        seed: int = 0,
        margin_seconds: float = 1800.0,
        clock: Callable[[], float],
    ) -> None:
        self.bookings = bookings
        self.cap = list(capacities)
        self.clock = clock
        self.rng = random.Random(seed)
        self.margin = margin_seconds
        n = len(bookings)
        points = sorted({b.start for b in bookings} | {b.end for b in bookings})
        self.coord = points
        where = {p: k for k, p in enumerate(points)}
        self.s = [where[b.start] for b in bookings]
        self.e = [where[b.end] for b in bookings]
        self.w = [((1 << (self.e[i] - self.s[i])) - 1) << self.s[i] for i in range(n)]
        self.length = [b.end - b.start for b in bookings]
        self.party = [b.party_size for b in bookings]
        # Bookings of one party size share one plans tuple: derive per-plan data once per tuple.
        # The same table groups recur across those tuples: mask and seats once per group.
        derived: dict[int, tuple[list[int], list[int], int, list[int]]] = {}
        plan_info: dict[tuple[int, ...], tuple[int, int]] = {}
        subsets_of: dict[int, tuple[int, ...] | None] = {}
        cap = self.cap
        self.lean: list[list[int]] = []
        self.masks: list[list[int]] = []
        self.seats: list[list[int]] = []
        self.union: list[int] = []
        for b in bookings:
            got = derived.get(id(b.plans))
            if got is None:
                masks: list[int] = []
                seats: list[int] = []
                for plan in b.plans:
                    info = plan_info.get(plan)
                    if info is None:
                        m = c = 0
                        for t in plan:
                            m |= 1 << t
                            c += cap[t]
                        info = plan_info[plan] = (m, c)
                    masks.append(info[0])
                    seats.append(info[1])
                kept = dominance_filter(masks, subsets_of)
                kept.sort(key=lambda k, b=b, seats=seats: (len(b.plans[k]), seats[k], k))  # type: ignore[misc]
                got = (kept, seats, reduce(or_, masks, 0), masks)
                derived[id(b.plans)] = got
            self.lean.append(got[0])
            self.masks.append(got[3])
            self.seats.append(got[1])
            self.union.append(got[2])
        self.single: list[dict[int, int]] = []
        single_cache: dict[int, dict[int, int]] = {}
        for b in bookings:
            got_single = single_cache.get(id(b.plans))
            if got_single is None:
                got_single = {plan[0]: k for k, plan in enumerate(b.plans) if len(plan) == 1}
                single_cache[id(b.plans)] = got_single
            self.single.append(got_single)
        # Tables each booking can take alone (a mask), so insertion checks them in one AND.
        self.single_union = [sum(1 << t for t in one) for one in self.single]
        self.on_table: list[list[int]] = [[] for _ in self.cap]
        for j, one in enumerate(self.single):
            for t in one:
                self.on_table[t].append(j)
        self.by_capacity: dict[int, list[int]] = {}
        for t, c in enumerate(self.cap):
            self.by_capacity.setdefault(c, []).append(t)
        self.min_footprint = [
            min((self.seats[i][k] for k in self.lean[i]), default=0) * self.length[i] for i in range(n)
        ]
        self.by_start = sorted(range(n), key=lambda i: (bookings[i].start, i))
        self.starts = [bookings[i].start for i in self.by_start]
        self.max_len = max(self.length, default=0.0)
        self.occ = [0] * len(self.cap)
        self.all_tables = (1 << len(self.cap)) - 1
        # free_at[p]: tables free at compressed point p (mirror of occ, read by the insertion)
        self.free_at = [self.all_tables] * len(points)
        self.choice: list[int | None] = [None] * n
        self.temperature = 0.0
        self.repack_share = 0.3
        self.seats_first_share = 0.3
        # Share of equally-seated regions kept even when they use more capacity × time: a walk
        # along the plateau finds re-packings that a strict footprint rule never reaches.
        self.plateau_share = 0.5

    # -- state -------------------------------------------------------------------------------------
    def is_free(self, i: int, k: int) -> bool:
        w = self.w[i]
        occ = self.occ
        for t in self.bookings[i].plans[k]:  # noqa: SIM110 - a plain loop is faster on this hot path
            if occ[t] & w:
                return False
        return True

    def put(self, i: int, k: int) -> None:
        self.choice[i] = k
        w = self.w[i]
        for t in self.bookings[i].plans[k]:
            self.occ[t] |= w
        keep = ~self.masks[i][k]
        free_at = self.free_at
        for p in range(self.s[i], self.e[i]):
            free_at[p] &= keep

    def _take(self, i: int) -> None:
        k = self.choice[i]
        assert k is not None
        keep = ~self.w[i]
        for t in self.bookings[i].plans[k]:
            self.occ[t] &= keep
        mask = self.masks[i][k]
        free_at = self.free_at
        for p in range(self.s[i], self.e[i]):
            free_at[p] |= mask
        self.choice[i] = None

    def gap(self, i: int, plan: tuple[int, ...]) -> float:
        """Idle time left around the window on these tables (before and after): best fit in time."""
        s, e = self.s[i], self.e[i]
        below = (1 << s) - 1
        start, end = self.bookings[i].start, self.bookings[i].end
        coord = self.coord
        gap = 0.0
        for t in plan:
            occ = self.occ[t]
            last = (occ & below).bit_length()
            gap += start - coord[last] if last else 86_400.0
            above = occ >> e
            if above:
                gap += coord[e + (above & -above).bit_length() - 1] - end
            else:
                gap += 86_400.0
        return gap

    def insert(self, order: Sequence[int], seats_first: bool = False) -> list[int]:
        placed = []
        free_at = self.free_at
        single_union = self.single_union
        for i in order:
            best = None
            # (gap, seats, k) / (seats, gap, k) for one table, (size, ...) for a set: one branch per booking
            best_key: tuple[float, ...] | None = None
            key: tuple[float, ...]
            plans = self.bookings[i].plans
            masks = self.masks[i]
            free = self.all_tables
            for p in range(self.s[i], self.e[i]):
                free &= free_at[p]
            if not free & self.union[i]:
                continue
            ones = free & single_union[i]
            if ones:
                # A free one-table set beats every combination (fewest tables first): look only at
                # the free tables rather than scanning all of the booking's sets.
                single = self.single[i]
                seats = self.seats[i]
                while ones:
                    low = ones & -ones
                    ones ^= low
                    k = single[low.bit_length() - 1]
                    gap = self.gap(i, plans[k])
                    key = (seats[k], gap, k) if seats_first else (gap, seats[k], k)
                    if best_key is None or key < best_key:
                        best, best_key = k, key
            else:
                for k in self.lean[i]:
                    if masks[k] & free != masks[k]:
                        continue
                    size = len(plans[k])
                    if best_key is not None and size > best_key[0]:
                        break  # lean sets come fewest tables first
                    if seats_first:
                        key = (size, self.seats[i][k], self.gap(i, plans[k]), k)
                    else:
                        key = (size, self.gap(i, plans[k]), self.seats[i][k], k)
                    if best_key is None or key < best_key:
                        best, best_key = k, key
            if best is not None:
                self.put(i, best)
                placed.append(i)
        return placed

    def _footprint(self, items: Sequence[int]) -> float:
        total = 0.0
        for i in items:
            k = self.choice[i]
            if k is not None:
                total += self.seats[i][k] * self.length[i]
        return total

    def objective(self) -> tuple[int, int]:
        seated = covers = 0
        for i, k in enumerate(self.choice):
            if k is not None:
                seated += 1
                covers += self.party[i]
        return seated, covers

    # -- stages ------------------------------------------------------------------------------------
    def load(self, choice: Sequence[int | None]) -> None:
        self.occ = [0] * len(self.cap)
        self.free_at = [self.all_tables] * len(self.coord)
        self.choice = [None] * len(self.bookings)
        for i, k in enumerate(choice):
            if k is not None:
                self.put(i, k)

    def construct(self, deadline: float | None = None) -> list[int | None]:
        """Best of a few insertion orders and set preferences (most seated, then covers). Window-end
        order alone leaves big parties holding combinations that small parties could share;
        seating the parties of up to 4 or 6 first, fewest seats first, packs the day tighter."""
        seated = [i for i, b in enumerate(self.bookings) if b.plans]
        by_end = sorted(seated, key=lambda i: (self.e[i], self.s[i], i))
        variants = (
            (by_end, False),
            (sorted(by_end, key=lambda i: self.party[i] > 4), True),
            (sorted(by_end, key=lambda i: self.party[i] > 6), False),
            (by_end, True),
            (sorted(by_end, key=lambda i: self.party[i] > 2), True),
        )
        best: list[int | None] = [None] * len(self.bookings)
        best_value: tuple[int, int] | None = None
        for order, seats_first in variants:
            if best_value is not None and deadline is not None and self.clock() > deadline:
                break
            self.load([None] * len(self.bookings))
            self.insert(order, seats_first)
            value = self.objective()
            if best_value is None or value > best_value:
                best, best_value = list(self.choice), value
        self.load(best)
        return best

    def _near(self, lo: float, hi: float) -> list[int]:
        a = bisect.bisect_left(self.starts, lo - self.max_len)
        b = bisect.bisect_left(self.starts, hi)
        bookings = self.bookings
        return [j for j in self.by_start[a:b] if bookings[j].end > lo]

    def _step(self, u: int) -> bool:
        rng = self.rng
        bookings = self.bookings
        plans_u = bookings[u].plans
        roll = rng.random()
        forced: int | None = None
        if roll < 0.35:
            # Zone ruin: the tables u could use in one zone, over u's window ± margin.
            lo, hi = bookings[u].start - self.margin, bookings[u].end + self.margin
            zones = bookings[u].zone_of_plan
            pick = rng.randrange(len(plans_u))
            region = 0
            for k, plan in enumerate(plans_u):
                if not zones or zones[k] == zones[pick]:
                    for t in plan:
                        region |= 1 << t
        elif roll < 0.7:
            # Targeted ruin: seat u on one of its sets and evict whoever blocks it.
            lo, hi = bookings[u].start - self.margin, bookings[u].end + self.margin
            forced = self.lean[u][rng.randrange(len(self.lean[u]))]
            region = 0
            for t in plans_u[forced]:
                region |= 1 << t
        else:
            # Table sweep: a few tables of similar size over a long stretch of the service, so
            # whole sequences of bookings on them can be re-packed.
            anchor = rng.choice(plans_u[rng.choice(self.lean[u])])
            size = self.cap[anchor]
            similar = [t for t, c in enumerate(self.cap) if t != anchor and abs(c - size) <= 2]
            region = 1 << anchor
            for t in rng.sample(similar, min(len(similar), rng.randint(1, 4))):
                region |= 1 << t
            lo, hi = bookings[u].start - 3 * self.margin, bookings[u].end + 3 * self.margin
        near = self._near(lo, hi)
        removed: list[int] = []
        for j in near:
            chosen = self.choice[j]
            if chosen is None:
                continue
            for t in bookings[j].plans[chosen]:
                if region >> t & 1:
                    if forced is None or self.w[j] & self.w[u]:
                        removed.append(j)
                    break
        if forced is not None:
            for j in removed:
                for t in bookings[j].plans[self.choice[j]]:  # type: ignore[index]
                    region |= 1 << t
        before = (len(removed), -self._footprint(removed))
        saved = [(j, self.choice[j]) for j in removed]
        for j in removed:
            self._take(j)
        pool = [j for j in near if self.choice[j] is None and j != u and self.union[j] & region] + removed
        placed: list[int] = []
        if forced is not None:
            self.put(u, forced)
            placed.append(u)
        else:
            pool.append(u)
        if rng.random() < 0.5:
            noise = rng.random() * 3600.0
            pool = sorted(set(pool), key=lambda j: (bookings[j].end + rng.uniform(0.0, noise), j))
        else:  # smallest seats × time first: seating count favours small footprints
            noise = 1.0 + rng.random()
            pool = sorted(set(pool), key=lambda j: (self.min_footprint[j] * rng.uniform(1.0, noise), j))
        placed += self.insert(pool, seats_first=rng.random() < self.seats_first_share)
        after = (len(placed), -self._footprint(placed))
        if after >= before or (after[0] == before[0] and rng.random() < self.plateau_share):
            return after[0] > before[0]
        if after[0] == before[0] - 1 and rng.random() < self.temperature:
            return False  # occasionally step down one booking to leave a plateau; best is kept
        self._restore(placed, saved)
        return False

    def _restore(self, placed: Sequence[int], saved: Sequence[tuple[int, int | None]]) -> None:
        """Undo a rejected move: unseat what it placed, put back what it removed."""
        for j in placed:
            self._take(j)
        for j, k in saved:
            self.put(j, k)  # type: ignore[arg-type]

    def _repack(self, u: int) -> bool:
        """Re-sequence a few same-size tables over the whole day: bookings seated alone on them and
        unseated ones that fit them, by window end onto the table free the latest (optimal for
        identical tables); bookings that no longer fit try any other free set."""
        rng = self.rng
        bookings = self.bookings
        anchors = list(self.single[u])
        if not anchors:
            return False
        anchor = rng.choice(anchors)
        same = [t for t in self.by_capacity[self.cap[anchor]] if t != anchor]
        if rng.random() < 0.3:
            tables = [anchor, *same]  # the whole size class: exact for identical tables
        else:
            tables = [anchor, *rng.sample(same, min(len(same), rng.randint(0, 3)))]
        region = 0
        for t in tables:
            region |= 1 << t
        removed = []
        pool = []
        # Only bookings with a one-table set on these tables can be in the pool or seated alone here.
        candidates: set[int] = set()
        for t in tables:
            candidates.update(self.on_table[t])
        for j in sorted(candidates):
            k = self.choice[j]
            if k is None:
                pool.append(j)
            elif len(bookings[j].plans[k]) == 1 and region >> bookings[j].plans[k][0] & 1:
                removed.append(j)
        before = (len(removed), -self._footprint(removed))
        saved = [(j, self.choice[j]) for j in removed]
        was_seated = set(removed)
        for j in removed:
            self._take(j)
        pool = sorted(set(pool) | was_seated, key=lambda j: (self.e[j], self.s[j], j))
        placed = []
        leftovers = []
        for j in pool:
            best = best_gap = None
            for t in tables:
                k = self.single[j].get(t)
                if k is None or self.occ[t] & self.w[j]:
                    continue
                gap = self.gap(j, (t,))
                if best_gap is None or gap < best_gap:
                    best, best_gap = k, gap
            if best is None:
                if j in was_seated:
                    leftovers.append(j)
                continue
            self.put(j, best)
            placed.append(j)
        placed += self.insert(leftovers)
        after = (len(placed), -self._footprint(placed))
        if after >= before:
            return after[0] > before[0]
        self._restore(placed, saved)
        return False

    def search(self, deadline: float, max_iterations: int) -> tuple[int, int, bool]:
        iterations = improvements = 0
        best = current = self.objective()
        best_choice = list(self.choice)
        exhausted = False
        while iterations < max_iterations:
            if self.clock() > deadline:
                exhausted = True
                break
            unseated = [i for i, b in enumerate(self.bookings) if b.plans and self.choice[i] is None]
            if not unseated:
                break
            # Occasional downhill steps after the first quarter of the run; never below best − 3.
            self.temperature = (
                0.02 if iterations > max_iterations // 4 and current[0] > best[0] - 3 else 0.0
            )
            for _ in range(32):
                iterations += 1
                u = unseated[self.rng.randrange(len(unseated))]
                if self.choice[u] is None:
                    if self.rng.random() < self.repack_share:
                        self._repack(u)
                    else:
                        self._step(u)
            current = self.objective()
            if current > best:
                best = current
                best_choice = list(self.choice)
                improvements += 1
        self.load(best_choice)
        return iterations, improvements, exhausted

    def polish(self) -> None:
        """Best-scored free set for every seated booking; the seated set is unchanged."""
        for i in self.by_start:
            k = self.choice[i]
            if k is None or k == 0:
                continue
            self._take(i)
            for better in range(len(self.bookings[i].plans)):
                if self.is_free(i, better):
                    self.put(i, better)
                    break


def optimise(
    bookings: Sequence[PackingBooking],
    capacities: Sequence[int],
    initial: Sequence[int | None],
    *,
    deadline: float,
    clock: Callable[[], float],
    max_iterations: int = 200_000,
    seed: int = 0,
) -> OptimiserResult:
    opt = DayOptimiser(bookings, capacities, seed=seed, clock=clock)
    constructed = opt.construct(deadline)
    built = opt.objective()
    opt.load(initial)
    start = opt.objective()
    constructed_better = built > start
    if constructed_better:
        opt.load(constructed)
    iterations, improvements, exhausted = opt.search(deadline, max_iterations)
    opt.polish()
    return OptimiserResult(
        choice=list(opt.choice),
        iterations=iterations,
        improvements=improvements,
        budget_exhausted=exhausted,
        constructed_better=constructed_better,
        stats={"constructedSeated": built[0], "initialSeated": start[0]},
    )
