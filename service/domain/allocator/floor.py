"""The floor: tables, adjacency and the complete candidate search (docs/assign-tables.md §7.5–7.7).

Complexity choices:
- Tables are indexed in plan order (capacity, then table number) and every table set is an int
  bitmask, so "is this plan free?" is one AND against the booking's busy mask.
- Candidate plans do not depend on time, only on (party size, combinations on/off, adjacency
  required), so they are enumerated once per key and cached for the whole day; bookings only
  filter them by their busy mask.
- Connected groups are enumerated with ESU (Wernicke 2006): each connected induced subgraph of size
  2..kMax is produced exactly once by growing from its lowest-index seed through the exclusive
  neighbourhood. Capacities are positive, so a branch whose capacity already exceeds
  party + maxOverage is cut. `pairwise`/`neighbors` are subsets of `connected` and are filtered
  afterwards. Without an adjacency requirement, plain k-subsets per zone are enumerated over
  capacity-sorted tables with the same capacity cut.
- Groups never cross zones (a table without zone is not eligible at all, docs/assign-tables.md §7.5 [REC]).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .model import AdjacencyMode, AllocatorConfig, Table


def table_type_key(table: Table) -> str:
    category = (table.category or "").strip().lower() or "uncategorized"
    seating = (table.seating_type or "").strip().lower() or "standard"
    return f"capacity:{table.capacity}|category:{category}|seating:{seating}"


def iter_bits(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


@dataclass(frozen=True, slots=True)
class PlanShape:
    """A time-independent candidate: one table or a group of tables, in plan order."""

    key: str
    indices: tuple[int, ...]
    mask: int
    total_capacity: int
    fragmentation: int
    adjacency_cost: int
    adjacency_status: str
    zone_count: int

    @property
    def size(self) -> int:
        return len(self.indices)


@dataclass(slots=True)
class EnumerationStats:
    singles_considered: int = 0
    combinations_enumerated: int = 0
    combinations_accepted: int = 0
    skipped: dict[str, int] = field(
        default_factory=lambda: {
            "capacity": 0,
            "overage": 0,
            "adjacency": 0,
            "kmax": 0,
            "zone": 0,
            "limit": 0,
            "bucket": 0,
            "adjacency_frontier": 0,
            "capacity_upper_bound": 0,
        }
    )
    k_max: int = 0
    capped: bool = False


@dataclass(frozen=True, slots=True)
class PlanSet:
    plans: tuple[PlanShape, ...]
    stats: EnumerationStats
    combinations_enabled: bool


class Floor:
    """Static view of one restaurant's tables and adjacency for a run."""

    def __init__(
        self,
        tables: tuple[Table, ...] | list[Table],
        adjacency: tuple[tuple[str, str], ...] | list[tuple[str, str]],
        config: AllocatorConfig,
        mode: AdjacencyMode,
        scarcity_metrics: dict[str, float] | None = None,
    ) -> None:
        self.config = config
        self.mode = mode
        ordered = sorted(tables, key=lambda t: (t.capacity, t.number, t.id))
        self.tables: list[Table] = ordered
        self.index: dict[str, int] = {t.id: i for i, t in enumerate(ordered)}
        self.capacity = [t.capacity for t in ordered]
        self.type_keys = [table_type_key(t) for t in ordered]
        self.neighbours = [0] * len(ordered)
        edge_count = 0
        for a, b in adjacency:
            ia, ib = self.index.get(a), self.index.get(b)
            if ia is None or ib is None or ia == ib:
                continue
            # An edge counts in either direction (docs/assign-tables.md §7.6).
            self.neighbours[ia] |= 1 << ib
            self.neighbours[ib] |= 1 << ia
            edge_count += 1
        self.has_edges = edge_count > 0
        self.metrics = {k: round(v, 4) for k, v in (scarcity_metrics or {}).items() if v and v > 0}
        self._eligible: dict[tuple[int, bool], list[int]] = {}
        self._plans: dict[tuple[int, bool, bool], PlanSet] = {}
        self._scarcity: dict[int, list[float]] = {}

    # -- eligibility ------------------------------------------------------------------------------
    def _base_ok(self, table: Table) -> bool:
        return (
            table.active is True
            and table.status != "out_of_service"
            and table.capacity > 0
            and table.zone_id is not None
        )

    def eligible(self, party: int, *, for_members: bool = False) -> list[int]:
        """docs/assign-tables.md §7.5 candidates. `for_members` drops the max-party limit when the config says so ([LATER])."""
        ignore_max = for_members and not self.config.max_party_applies_to_members
        key = (party, ignore_max)
        cached = self._eligible.get(key)
        if cached is not None:
            return cached
        result = []
        for i, t in enumerate(self.tables):
            if not self._base_ok(t):
                continue
            if not ignore_max and t.max_party_size and t.max_party_size > 0 and party > t.max_party_size:
                continue
            if t.min_party_size and t.min_party_size > 0 and party < t.min_party_size:
                continue
            result.append(i)
        self._eligible[key] = result
        return result

    # -- scarcity (docs/assign-tables.md §7.8.2) -----------------------------------------------------------------------
    def scarcity_scores(self, party: int, among: list[int] | None = None) -> list[float]:
        """Per-table scarcity; fallback = 1 / eligible tables of the same type (rounded 4 dp)."""
        if among is None:
            cached = self._scarcity.get(party)
            if cached is not None:
                return cached
        pool = self.eligible(party) if among is None else among
        counts = Counter(self.type_keys[i] for i in pool)
        scores = [0.0] * len(self.tables)
        for i, type_key in enumerate(self.type_keys):
            metric = self.metrics.get(type_key)
            if metric is not None:
                scores[i] = metric
            elif counts.get(type_key):
                scores[i] = round(1.0 / counts[type_key], 4)
            else:
                scores[i] = 1.0
        if among is None:
            self._scarcity[party] = scores
        return scores

    # -- adjacency helpers -----------------------------------------------------------------------
    def _reach(self, indices: tuple[int, ...]) -> tuple[int, int]:
        """BFS from the first table inside the set: (max depth, number reached)."""
        members = 0
        for i in indices:
            members |= 1 << i
        seen = 1 << indices[0]
        frontier = seen
        depth = 0
        while True:
            nxt = 0
            for i in iter_bits(frontier):
                nxt |= self.neighbours[i] & members
            nxt &= ~seen
            if not nxt:
                break
            depth += 1
            seen |= nxt
            frontier = nxt
        return depth, seen.bit_count()

    def satisfies_mode(self, indices: tuple[int, ...], mode: AdjacencyMode) -> bool:
        if len(indices) < 2:
            return True
        members = 0
        for i in indices:
            members |= 1 << i
        if mode == "pairwise":
            return all((self.neighbours[i] | (1 << i)) & members == members for i in indices)
        if mode == "neighbors":
            return any((self.neighbours[i] | (1 << i)) & members == members for i in indices)
        return self._reach(indices)[1] == len(indices)

    def _shape(self, indices: tuple[int, ...]) -> PlanShape:
        ordered = tuple(sorted(indices))  # index order == (capacity, number) plan order
        caps = [self.capacity[i] for i in ordered]
        total = sum(caps)
        mask = 0
        for i in ordered:
            mask |= 1 << i
        key = "+".join(sorted(self.tables[i].number for i in ordered))
        if len(ordered) == 1:
            return PlanShape(key, ordered, mask, total, 0, 0, "single", 1)
        depth, reached = self._reach(ordered)
        connected = reached == len(ordered)
        cost = depth if connected else max(depth, len(ordered))
        if not connected:
            status = "disconnected"
        elif self.mode in ("pairwise", "neighbors") and self.satisfies_mode(ordered, self.mode):
            status = self.mode
        else:
            status = "connected"
        zones = {self.tables[i].zone_id for i in ordered}
        return PlanShape(key, ordered, mask, total, total - max(caps), cost, status, len(zones))

    # -- candidate plans (docs/assign-tables.md §7.7) ------------------------------------------------------------------
    def require_adjacency(self, party: int, *, ignore_edges: bool = False) -> bool:
        cfg = self.config
        if not cfg.require_adjacency:
            return False
        if not ignore_edges and not self.has_edges:
            return False
        return cfg.adjacency_min_party_size is None or party >= cfg.adjacency_min_party_size

    def plans(self, party: int, combinations: bool, require_adjacency: bool) -> PlanSet:
        key = (party, combinations, require_adjacency)
        cached = self._plans.get(key)
        if cached is None:
            cached = self._enumerate(party, combinations, require_adjacency)
            self._plans[key] = cached
        return cached

    def _enumerate(self, party: int, combinations: bool, require_adjacency: bool) -> PlanSet:
        cfg = self.config
        max_cap = party + cfg.max_overage
        stats = EnumerationStats()
        eligible = self.eligible(party)
        plans: list[PlanShape] = []
        for i in eligible:
            if self.capacity[i] > max_cap:
                stats.skipped["overage"] += 1
                continue
            if self.capacity[i] >= party:
                stats.singles_considered += 1
                plans.append(self._shape((i,)))
        members = [
            i
            for i in self.eligible(party, for_members=True)
            if self.capacity[i] <= max_cap
            and (not cfg.merge_requires_movable or self.tables[i].mobility == "movable")
        ]
        # kMax is capped by the eligible tables; with member limits lifted ([LATER]) members may be more of
        # them than the tables eligible on their own (otherwise members ⊆ eligible and this is the original cap).
        k_max = min(cfg.effective_k_max, max(len(eligible), len(members)))
        stats.k_max = k_max
        if combinations and k_max >= 2 and len(members) >= 2:
            by_zone: dict[str | None, list[int]] = defaultdict(list)
            for i in members:
                by_zone[self.tables[i].zone_id].append(i)
            found: list[tuple[int, ...]] = []
            for zone in sorted(by_zone, key=str):
                group = by_zone[zone]
                if len(group) < 2:
                    continue
                if require_adjacency:
                    self._connected_sets(group, party, max_cap, k_max, found, stats)
                else:
                    self._any_sets(group, party, max_cap, k_max, found, stats)
            for indices in found:
                if require_adjacency and not self.satisfies_mode(indices, self.mode):
                    stats.skipped["adjacency"] += 1
                    continue
                stats.combinations_accepted += 1
                plans.append(self._shape(indices))
        return PlanSet(tuple(plans), stats, combinations)

    def _record(
        self, subset: Iterable[int], cap: int, party: int, found: list[tuple[int, ...]], stats: EnumerationStats
    ) -> None:
        stats.combinations_enumerated += 1
        if cap < party:
            stats.skipped["capacity"] += 1
        else:
            found.append(tuple(subset))

    def _connected_sets(
        self, group: list[int], party: int, max_cap: int, k_max: int, found: list[tuple[int, ...]],
        stats: EnumerationStats,
    ) -> None:
        allowed = 0
        for i in group:
            allowed |= 1 << i
        cap_of = self.capacity
        nb = self.neighbours
        cap_limit = self.config.enumeration_cap

        def extend(subset: list[int], sub_mask: int, sub_nbrs: int, ext: int, seed: int, cap: int) -> None:
            if len(subset) >= 2:
                if stats.combinations_enumerated >= cap_limit:
                    stats.capped = True
                    return
                self._record(subset, cap, party, found, stats)
            if len(subset) == k_max:
                return
            while ext:
                low = ext & -ext
                ext ^= low
                w = low.bit_length() - 1
                if cap + cap_of[w] > max_cap:
                    stats.skipped["capacity_upper_bound"] += 1
                    continue
                # ESU: only vertices above the seed that are not yet in or next to the subset.
                exclusive = nb[w] & allowed & ~sub_mask & ~sub_nbrs & ~((1 << (seed + 1)) - 1)
                subset.append(w)
                extend(subset, sub_mask | low, sub_nbrs | nb[w], ext | exclusive, seed, cap + cap_of[w])
                subset.pop()

        for v in group:
            higher = nb[v] & allowed & ~((1 << (v + 1)) - 1)
            if not higher:
                continue
            extend([v], 1 << v, nb[v], higher, v, cap_of[v])

    def _any_sets(
        self, group: list[int], party: int, max_cap: int, k_max: int, found: list[tuple[int, ...]],
        stats: EnumerationStats,
    ) -> None:
        ordered = sorted(group)  # capacity ascending by construction
        cap_of = self.capacity
        cap_limit = self.config.enumeration_cap

        def extend(subset: list[int], start: int, cap: int) -> None:
            if len(subset) >= 2:
                if stats.combinations_enumerated >= cap_limit:
                    stats.capped = True
                    return
                self._record(subset, cap, party, found, stats)
            if len(subset) == k_max:
                return
            for pos in range(start, len(ordered)):
                w = ordered[pos]
                if cap + cap_of[w] > max_cap:
                    stats.skipped["capacity_upper_bound"] += 1
                    break  # later tables are at least as large
                subset.append(w)
                extend(subset, pos + 1, cap + cap_of[w])
                subset.pop()

        extend([], 0, 0)
