"""Candidate search and scoring: acceptance cases 13–30, adjacency modes, kMax, mobility (docs/assign-tables.md §7.5–7.10)."""

from __future__ import annotations

import itertools
import random

import pytest

from service.domain.allocator.floor import Floor
from service.domain.allocator.model import AllocatorConfig, Table
from service.domain.allocator.scoring import rank, score_plan

from .builders import SPEC_CONFIG, table


def ranked(tables, party, *, edges=(), config=SPEC_CONFIG, d=1.0, s=22.0, mode="connected", metrics=None):
    floor = Floor(tuple(tables), tuple(edges), config, mode, metrics)
    require = floor.require_adjacency(party)
    plan_set = floor.plans(party, True, require)
    scarcity = floor.scarcity_scores(party)
    return rank([score_plan(p, party, d, s, scarcity) for p in plan_set.plans]), plan_set.stats


def keys(plans):
    return [p.shape.key for p in plans]


def test_case13_exact_single_wins_and_max_party_excludes_members():
    tables = [
        table("A6", 6, min_party_size=2, max_party_size=6),
        table("M1", 3, max_party_size=4),
        table("M2", 3, max_party_size=4),
    ]
    plans, _ = ranked(tables, 5, edges=[("t-M1", "t-M2")])
    assert keys(plans) == ["A6"]
    assert plans[0].score == pytest.approx(27)


def test_case14_order_independence_and_tie_break_by_key():
    tables = case21_tables()
    edges = [(a.id, b.id) for a, b in itertools.combinations(tables, 2)]
    expected, _ = ranked(tables, 5, edges=edges)
    assert expected[0].shape.key == "C2A+C3A" and expected[0].score == pytest.approx(32)
    assert [p.score for p in expected[:4]] == pytest.approx([32] * 4)
    assert keys(expected[:4]) == ["C2A+C3A", "C2A+C3B", "C2B+C3A", "C2B+C3B"]
    rng = random.Random(7)
    for _ in range(5):
        shuffled = tables[:]
        rng.shuffle(shuffled)
        again, _ = ranked(shuffled, 5, edges=list(reversed(edges)))
        assert keys(again) == keys(expected)


def test_case15_overage_penalised():
    tables = [
        table("H1", 4, min_party_size=2, max_party_size=4),
        table("A6", 6, min_party_size=2, max_party_size=6),
    ]
    plans, _ = ranked(tables, 4)
    assert [(p.shape.key, p.slack, p.score) for p in plans] == [("H1", 0, 22), ("A6", 2, 32)]


def test_case16_combination_of_fixed_tables_when_mobility_is_ignored():
    config = AllocatorConfig(lookahead_enabled=False, merge_requires_movable=False)
    tables = [table("C1", 4, mobility="fixed"), table("C2", 4, mobility="fixed")]
    plans, stats = ranked(tables, 7, edges=[("t-C1", "t-C2")], config=config)
    assert keys(plans) == ["C1+C2"] and plans[0].slack == 1
    assert stats.k_max == 2  # kMax capped by the table count
    # [REC] default: merges need movable tables.
    plans, _ = ranked(tables, 7, edges=[("t-C1", "t-C2")])
    assert plans == []


def test_case17_capacity_prune():
    tables = [table("A", 4), table("B", 4), table("C", 4)]
    config = AllocatorConfig(lookahead_enabled=False, k_max=2)
    plans, stats = ranked(tables, 9, edges=[("t-A", "t-C")], config=config)
    assert plans == [] and stats.skipped["capacity"] >= 1


def test_case18_disconnected_allowed_when_no_edges():
    config = AllocatorConfig(lookahead_enabled=False, k_max=2)
    plans, _ = ranked([table("A", 4), table("B", 4)], 6, config=config)
    assert plans[0].shape.key == "A+B" and plans[0].shape.adjacency_status == "disconnected"


def test_case19_scarcity_steers_away_from_rare():
    tables = [
        table("R4", 4, max_party_size=6),
        table("C6A", 6, max_party_size=8),
        table("C6B", 6, max_party_size=8),
    ]
    plans, _ = ranked(tables, 4)
    assert [(p.shape.key, p.score) for p in plans] == [("C6A", 21), ("C6B", 21), ("R4", 22)]


def test_case20_and_23_demand_scales_slack_only():
    one, _ = ranked([table("T", 4)], 3, d=1)
    three, _ = ranked([table("T", 4)], 3, d=3)
    assert one[0].slack_penalty == 5 and three[0].slack_penalty == 15
    assert one[0].breakdown()["demand_multiplier"] == 1 and three[0].breakdown()["demand_multiplier"] == 3
    assert three[0].scarcity_penalty == one[0].scarcity_penalty
    metrics = {"capacity:4|category:dining|seating:standard": 0.2}
    low, _ = ranked([table("T", 4)], 2, d=1, metrics=metrics)
    high, _ = ranked([table("T", 4)], 2, d=2, metrics=metrics)
    assert (low[0].slack_penalty, high[0].slack_penalty) == (10, 20) and high[0].score > low[0].score


def case21_tables() -> list[Table]:
    return [table("R4", 4), table("C3A", 3), table("C3B", 3), table("C2A", 2), table("C2B", 2)]


def test_case21_rare_tables_raise_merge_penalty():
    tables = case21_tables()
    edges = [(a.id, b.id) for a, b in itertools.combinations(tables, 2)]
    plans, _ = ranked(tables, 5, edges=edges)
    by_key = {p.shape.key: p for p in plans}
    assert by_key["C2A+R4"].combination_penalty == pytest.approx(7)
    assert by_key["C2A+R4"].scarcity_penalty == pytest.approx(33)
    assert by_key["C3A+C3B"].combination_penalty == pytest.approx(6)
    assert by_key["C3A+C3B"].scarcity_penalty == pytest.approx(22)


def test_case22_peak_demand_vs_rare_table():
    metrics = {
        "capacity:4|category:dining|seating:standard": 1.0,
        "capacity:6|category:dining|seating:standard": 0.05,
    }
    tables = [table("R4", 4, max_party_size=4), table("C6", 6, max_party_size=6)]
    plans, _ = ranked(tables, 4, d=2, s=30, metrics=metrics)
    assert [(p.shape.key, p.score) for p in plans] == [("C6", pytest.approx(21.5)), ("R4", pytest.approx(30))]


def test_case25_isolated_adjacent_pair():
    plans, _ = ranked([table("A", 4), table("B", 4), table("C", 4)], 6, edges=[("t-A", "t-B")])
    assert keys(plans) == ["A+B"]
    p = plans[0]
    assert p.slack_penalty == 10
    assert p.combination_penalty == pytest.approx(16 / 3, abs=1e-3)
    assert p.score == pytest.approx(38, abs=5e-3)  # per-table scarcity is rounded to 4 dp


def test_case26_chain_triple():
    tables = [table("A", 2), table("B", 2), table("C", 2), table("D", 4)]
    plans, _ = ranked(tables, 6, edges=[("t-A", "t-B"), ("t-B", "t-C")])
    assert "A+B+C" in keys(plans)


def test_case27_cross_zone_never_merged():
    plans, _ = ranked([table("A", 4), table("B", 4, zone_id="Z2")], 6, edges=[("t-A", "t-B")])
    assert plans == []
    config = AllocatorConfig(lookahead_enabled=False, require_adjacency=False)
    plans, _ = ranked([table("A", 4), table("B", 4, zone_id="Z2")], 6, config=config)
    assert plans == []


def test_case28_oversized_table_excluded():
    plans, _ = ranked([table("S6", 6)], 2)
    assert plans == []


def test_case29_ring_without_combinations_has_no_plan():
    tables = [table(f"R{i:02d}", 6 if i % 4 == 0 else 4) for i in range(36)]
    edges = [(f"t-R{i:02d}", f"t-R{(i + k) % 36:02d}") for i in range(36) for k in range(1, 6)]
    floor = Floor(tuple(tables), tuple(edges), SPEC_CONFIG, "connected")
    plan_set = floor.plans(10, False, True)
    assert plan_set.plans == () and plan_set.stats.singles_considered == 0


def test_invalid_tables_are_never_candidates():
    tables = [
        table("OOS", 4, status="out_of_service"),
        table("OFF", 4, active=False),
        table("NOZ", 4, zone_id=None),
        table("MIN", 4, min_party_size=3),
        table("OK", 4, status="occupied"),  # "now" statuses do not matter
    ]
    plans, _ = ranked(tables, 2)
    assert keys(plans) == ["OK"]


# --- adjacency modes on a small floor ------------------------------------------------------------
# A—B—C is a chain; H is a hub adjacent to X, Y, Z (which are not adjacent to each other);
# P, Q, R form a triangle. All 2-tops, party 6 needs three tables.
MODE_TABLES = [table(n, 2) for n in ["A", "B", "C", "H", "X", "Y", "P", "Q", "R"]]
MODE_EDGES = [
    ("t-A", "t-B"), ("t-B", "t-C"),
    ("t-H", "t-X"), ("t-H", "t-Y"),
    ("t-P", "t-Q"), ("t-Q", "t-R"), ("t-P", "t-R"),
]  # fmt: skip


def triples(mode: str) -> set[str]:
    plans, _ = ranked(MODE_TABLES, 6, edges=MODE_EDGES, mode=mode)
    return {p.shape.key for p in plans if p.shape.size == 3}


def test_connected_mode_accepts_chains_hubs_and_cliques():
    assert triples("connected") == {"A+B+C", "H+X+Y", "P+Q+R"}


def test_neighbors_mode_needs_a_hub():
    # A chain of three has a hub (B); a chain of four would not — checked below.
    assert triples("neighbors") == {"A+B+C", "H+X+Y", "P+Q+R"}
    tables = [table(n, 2) for n in "ABCD"]
    edges = [("t-A", "t-B"), ("t-B", "t-C"), ("t-C", "t-D")]
    config = AllocatorConfig(lookahead_enabled=False, k_max=4)
    connected, _ = ranked(tables, 8, edges=edges, config=config, mode="connected")
    neighbors, _ = ranked(tables, 8, edges=edges, config=config, mode="neighbors")
    assert keys(connected) == ["A+B+C+D"] and neighbors == []


def test_pairwise_mode_needs_a_clique():
    plans, _ = ranked(MODE_TABLES, 6, edges=MODE_EDGES, mode="pairwise")
    triple = [p for p in plans if p.shape.size == 3]
    assert [p.shape.key for p in triple] == ["P+Q+R"]
    assert triple[0].shape.adjacency_status == "pairwise"


def test_k_max_limits_group_size():
    config = AllocatorConfig(lookahead_enabled=False, k_max=2)
    plans, _ = ranked(MODE_TABLES, 6, edges=MODE_EDGES, config=config)
    assert plans == []
    config = AllocatorConfig(lookahead_enabled=False, k_max=5)
    tables = [table(n, 2) for n in "ABCDE"]
    edges = [("t-A", "t-B"), ("t-B", "t-C"), ("t-C", "t-D"), ("t-D", "t-E")]
    plans, _ = ranked(tables, 10, edges=edges, config=config)
    assert keys(plans) == ["A+B+C+D+E"]


def test_adjacency_min_party_size_relaxes_small_parties():
    config = AllocatorConfig(lookahead_enabled=False, adjacency_min_party_size=7)
    plans, _ = ranked([table("A", 4), table("B", 4), table("C", 4)], 6, edges=[("t-A", "t-B")], config=config)
    assert set(keys(plans)) == {"A+B", "A+C", "B+C"}


def brute_force_connected(floor: Floor, party: int, k_max: int) -> set[str]:
    found = set()
    members = [i for i in floor.eligible(party) if floor.capacity[i] <= party + 2]
    for k in range(2, k_max + 1):
        for combo in itertools.combinations(members, k):
            cap = sum(floor.capacity[i] for i in combo)
            zones = {floor.tables[i].zone_id for i in combo}
            if party <= cap <= party + 2 and len(zones) == 1 and floor.satisfies_mode(combo, "connected"):
                found.add("+".join(sorted(floor.tables[i].number for i in combo)))
    return found


@pytest.mark.parametrize("seed", range(6))
def test_connected_enumeration_is_complete_against_brute_force(seed):
    rng = random.Random(seed)
    tables = [
        table(f"T{i:02d}", rng.choice([2, 2, 3, 4, 4, 6]), zone_id=rng.choice(["Z", "Z", "Y"]))
        for i in range(14)
    ]
    ids = [t.id for t in tables]
    edges = [(a, b) for a, b in itertools.combinations(ids, 2) if rng.random() < 0.25]
    config = AllocatorConfig(lookahead_enabled=False, k_max=4)
    floor = Floor(tuple(tables), tuple(edges), config, "connected")
    for party in (4, 6, 9):
        got = {p.key for p in floor.plans(party, True, True).plans if p.size > 1}
        assert got == brute_force_connected(floor, party, 4)
