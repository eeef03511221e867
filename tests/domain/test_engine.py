"""End-to-end allocator behaviour without a database: acceptance cases 1–12, 31, 48 and docs/assign-tables.md §12 edges."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from service.domain.allocator.day_plan import sanitise
from service.domain.allocator.model import (
    SHIPPED_DEMAND_RULES,
    AllocatorConfig,
    BusyInterval,
    DemandProfile,
    DemandRule,
    Hold,
    RestaurantPolicy,
)
from service.domain.allocator.windows import iso_utc
from service.domain.weights import StrategicWeights

from .builders import DAY, LONDON, RESTAURANT, assigned_map, booking, make_day, run, table


def at(hhmm: str, day=DAY) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=LONDON)


def decision(plan, booking_id):
    return next(d for d in plan.decisions if d["bookingId"] == booking_id)


def test_case1_smallest_suitable_table():
    tables = [table("A1", 2, max_party_size=2), table("B4", 4, min_party_size=2)]
    bookings = [
        booking("b1", "18:00", 2),
        booking("b2", "19:00", 4, status="confirmed", assigned_table_ids=("t-B4",)),
    ]
    plan = run(make_day(tables, bookings))
    assert assigned_map(plan) == {"b1": ["t-A1"]}
    assert plan.skipped == []
    assert [sorted(a.table_ids) for a in plan.assigned] == [["t-A1"]]
    snap = decision(plan, "b1")["availabilitySnapshot"]
    assert snap == {
        "totalCandidates": 2,
        "remainingAfterSelection": 1,
        "remainingTables": [{"id": "t-B4", "tableNumber": "B4", "capacity": 4}],
    }
    assert decision(plan, "b1")["selected"]["score"] == 22
    assert len(plan.decisions) == 1  # the already-assigned booking is in no list


def test_case2_nothing_usable():
    plan = run(make_day([table("D1", 2, status="out_of_service")], [booking("b", "12:00", 2)]))
    assert plan.assigned == []
    assert "No suitable tables" in plan.skipped[0].reason
    assert plan.skipped[0].reason_code == "NO_SUITABLE_TABLES"


def test_case3_capture_on():
    tables = [table("A1", 4, max_party_size=4)]
    plan = run(make_day(tables, [booking("small", "18:00", 2), booking("large", "19:30", 6)]))
    assert assigned_map(plan) == {"small": ["t-A1"]}
    assert [s.booking_id for s in plan.skipped] == ["large"]
    first, second = plan.decisions
    assert first["selected"]["tableIds"] == ["t-A1"] and first["skipReason"] is None
    assert first["availabilitySnapshot"] == {
        "totalCandidates": 1,
        "remainingAfterSelection": 0,
        "remainingTables": [],
    }
    assert second["selected"] is None and "No suitable tables" in second["skipReason"]
    assert second["availabilitySnapshot"] is None
    assert second["rejectionClassification"] == "hard"


def test_case4_status_filter():
    tables = [table("A1", 4, max_party_size=4)]
    bookings = [
        booking("cancelled", "19:00", 4, status="cancelled"),
        booking("completed", "18:00", 2, status="completed"),
        booking("active", "20:00", 3),
    ]
    plan = run(make_day(tables, bookings))
    assert assigned_map(plan) == {"active": ["t-A1"]}
    assert plan.order == ["active"] and len(plan.service_fallbacks) == 1


def test_case6_lookahead_prefers_a_merge_and_case48_penalty_override():
    tables = [
        table("T8", 8, min_party_size=2, max_party_size=8),
        table("C1", 3, min_party_size=2),
        table("C2", 3, min_party_size=2),
    ]
    bookings = [booking("now", "18:00", 6), booking("future", "19:00", 8, status="confirmed")]
    day = make_day(tables, bookings, adjacency=[("t-C1", "t-C2")], demand_rules=SHIPPED_DEMAND_RULES)
    config = AllocatorConfig(
        lookahead_enabled=True,
        lookahead_window_minutes=180,
        lookahead_penalty_weight=1000,
        require_adjacency=False,
    )
    no_lookahead = run(
        day, AllocatorConfig(lookahead_enabled=False, require_adjacency=False), optimiser=False
    )
    scores = {c["tableIds"].__str__(): c["score"] for c in decision(no_lookahead, "now")["candidates"]}
    assert scores == {str(["t-T8"]): 33.5, str(["t-C1", "t-C2"]): 34.0}

    plan = run(day, config)
    assert assigned_map(plan) == {"now": ["t-C1", "t-C2"], "future": ["t-T8"]}
    now = decision(plan, "now")
    assert now["plannerConfig"]["lookahead"]["enabled"] is True
    assert now["plannerConfig"]["lookahead"]["penaltySource"] == "env"
    assert now["plannerConfig"]["demandRule"]["label"] == "weekday-dinner"
    t8 = next(c for c in now["candidates"] if c["tableIds"] == ["t-T8"])
    assert t8["scoreBreakdown"]["future_conflict_penalty"] > 0
    assert now["diagnostics"]["lookahead"]["conflicts"] == [{"bookingId": "future", "planKey": "T8"}]

    # Case 48: a strategic penalty of 0 switches the penalty off; T8 scores lower and wins.
    zero = run(
        day,
        config,
        StrategicWeights(future_conflict_penalty=0, source="db", scope="restaurant"),
        optimiser=False,
    )
    assert assigned_map(zero)["now"] == ["t-T8"]
    assert "future" not in assigned_map(zero)
    assert decision(zero, "now")["plannerConfig"]["lookahead"]["penaltySource"] == "strategic_override"


def test_case7_best_single():
    tables = [
        table("T2", 2, max_party_size=2),
        table("T4", 4, min_party_size=2, max_party_size=4),
        table("T6", 6, min_party_size=2),
        table("M1", 2),
        table("M2", 2),
    ]
    plan = run(make_day(tables, [booking("b", "19:00", 4)], adjacency=[("t-M1", "t-M2")]))
    assert assigned_map(plan) == {"b": ["t-T4"]}
    d = decision(plan, "b")
    assert ["t-T4"] in [c["tableIds"] for c in d["candidates"]]
    assert d["featureFlags"]["selectorScoring"] is True


def test_case8_impossible_party():
    plan = run(make_day([table("A", 4), table("B", 3)], [booking("b", "20:00", 10)]))
    assert plan.skipped[0].reason_code == "NO_SUITABLE_TABLES"
    assert "capacity" in plan.skipped[0].reason.lower()
    d = decision(plan, "b")
    assert d["rejectionClassification"] == "hard" and d["availabilitySnapshot"] is None


def test_case9_merge_fallback_pass():
    config = AllocatorConfig(lookahead_enabled=False, combination_planner=False, merges_enabled=True)
    plan = run(make_day([table("M1", 3), table("M2", 4)], [booking("b", "19:30", 6)]), config)
    assert assigned_map(plan) == {"b": ["t-M1", "t-M2"]}
    selected = decision(plan, "b")["selected"]
    assert selected["score"] == 65 and selected["adjacencyStatus"] == "disconnected"
    assert decision(plan, "b")["plannerConfig"]["combinationEnabled"] is True
    # Production default: merges off → the party cannot be seated.
    off = AllocatorConfig(lookahead_enabled=False, combination_planner=False, merges_enabled=False)
    assert run(make_day([table("M1", 3), table("M2", 4)], [booking("b", "19:30", 6)]), off).assigned == []


def test_case10_overrun_skip():
    # The original skipped by default; now clamp (docs/assign-tables.md §7.3), so this case sets skip.
    plan = run(make_day([table("L1", 4, min_party_size=2, max_party_size=4)], [booking("b", "14:00", 4)],
                        policy=RestaurantPolicy(overrun="skip")))
    skip = plan.skipped[0]
    assert skip.reason == "Reservation would run past closing at 15:00 (end of lunch)."
    assert skip.reason_code == "SERVICE_OVERRUN"
    d = decision(plan, "b")
    assert d["rejectionClassification"] == "hard" and d["window"] is None and d["plannerConfig"] is None
    # The per-restaurant policy can allow it instead ([LATER] lunch rule).
    allowed = run(
        make_day(
            [table("L1", 4, max_party_size=4)],
            [booking("b", "14:00", 4)],
            policy=RestaurantPolicy(overrun="allow"),
        )
    )
    assert assigned_map(allowed) == {"b": ["t-L1"]}


def test_case11_avoids_conflicting_table():
    tables = [table("C1", 2, max_party_size=2), table("C2", 4, min_party_size=2, max_party_size=4)]
    bookings = [
        booking("existing", "18:00", 2, status="confirmed", assigned_table_ids=("t-C1",)),
        booking("target", "18:00", 2),
    ]
    assert assigned_map(run(make_day(tables, bookings))) == {"target": ["t-C2"]}


def test_case12_all_plans_held():
    hold = Hold("h1", ("t-H1",), at("19:00"), at("20:30"), expires_at=at("23:00"))
    day = make_day(
        [table("H1", 4, max_party_size=4)], [booking("b", "19:00", 4)], holds=(hold,), now=at("10:00")
    )
    plan = run(day)
    skip = plan.skipped[0]
    assert skip.reason == "Conflicts with existing holds on tables t-H1"
    assert skip.reason_code == "CONFLICTS_EXISTING"
    assert decision(plan, "b")["rejectionClassification"] == "strategic"
    # Expired holds and the booking's own hold do not block (docs/assign-tables.md §12, §7.4 [REC]).
    expired = make_day([table("H1", 4)], [booking("b", "19:00", 4)], holds=(hold,), now=at("23:30"))
    assert assigned_map(run(expired)) == {"b": ["t-H1"]}
    own = Hold("h2", ("t-H1",), at("19:00"), at("20:30"), expires_at=at("23:00"), booking_id="b")
    assert assigned_map(run(make_day([table("H1", 4)], [booking("b", "19:00", 4)], holds=(own,)))) == {
        "b": ["t-H1"]
    }


def test_busy_map_from_allocations_of_any_status_and_combined_reason():
    tables = [table("A", 4), table("B", 4)]
    busy = (BusyInterval("t-A", at("18:30"), at("20:00"), "booking", booking_id="checked-in"),)
    hold = Hold("h", ("t-B",), at("18:00"), at("19:00"), expires_at=at("23:00"))
    plan = run(make_day(tables, [booking("b", "18:00", 4)], busy=busy, holds=(hold,), now=at("12:00")))
    assert plan.skipped[0].reason.startswith("Conflicts with existing ")
    # Both plans conflict; the reason describes the best-ranked one (A, a booking).
    assert plan.skipped[0].reason == "Conflicts with existing bookings on tables t-A"
    touching = (BusyInterval("t-A", at("16:00"), at("18:00")),)
    assert assigned_map(run(make_day(tables, [booking("b", "18:00", 4)], busy=touching))) == {"b": ["t-A"]}


def test_bookings_assigned_earlier_in_the_run_block_later_ones():
    plan = run(make_day([table("A", 4)], [booking("first", "18:00", 4), booking("second", "18:30", 4)]))
    assert assigned_map(plan) == {"first": ["t-A"]}
    assert plan.skipped[0].reason == "Conflicts with existing bookings on tables t-A"


def test_case31_lookahead_penalises_the_plan_that_strands_a_future_booking():
    metrics = {
        "capacity:6|category:dining|seating:standard": 0.2,
        "capacity:8|category:dining|seating:standard": 0.8,
    }
    tables = [
        table("T6", 6, min_party_size=2, max_party_size=6),
        table("T8", 8, min_party_size=4, max_party_size=8),
    ]
    day = make_day(
        tables, [booking("current", "19:45", 6), booking("future", "20:00", 8)], scarcity_metrics=metrics
    )
    plan = run(day, AllocatorConfig(lookahead_enabled=True), optimiser=False)
    d = decision(plan, "current")
    assert d["diagnostics"]["lookahead"]["conflicts"] == [{"bookingId": "future", "planKey": "T8"}]
    t8 = next(c for c in d["candidates"] if c["tableIds"] == ["t-T8"])
    assert t8["scoreBreakdown"]["future_conflict_penalty"] == 500


def test_case48_demand_override_and_zero_override_normalised():
    day = make_day([table("T", 4)], [booking("b", "19:00", 3)])
    plan = run(day, weights=StrategicWeights(demand_multiplier_override=3, source="db", scope="restaurant"))
    d = decision(plan, "b")
    assert d["selected"]["scoreBreakdown"]["slack_penalty"] == 15
    assert d["plannerConfig"]["demandMultiplier"] == 3
    assert d["plannerConfig"]["demandRule"]["source"] == "strategic_override"
    assert d["plannerConfig"]["strategicConfig"]["source"] == "db"
    zero = decision(run(day, weights=StrategicWeights(demand_multiplier_override=0)), "b")
    assert zero["plannerConfig"]["demandMultiplier"] == 1


def test_worked_example_with_all_three_weights():
    metrics = {"capacity:8|category:dining|seating:standard": 0.3333}
    profile = (DemandProfile(4, "dinner", 1.5),)  # Thursday dinner
    day = make_day(
        [table("E8", 8)], [booking("b", "19:00", 7)], scarcity_metrics=metrics, demand_profiles=profile
    )
    selected = decision(run(day), "b")["selected"]
    assert selected["score"] == pytest.approx(14.8326)
    assert selected["scoreBreakdown"]["slack_penalty"] == 7.5
    assert selected["scoreBreakdown"]["scarcity_penalty"] == pytest.approx(7.3326)
    zero = decision(run(day, weights=StrategicWeights(scarcity=0)), "b")["selected"]
    assert zero["score"] == pytest.approx(7.5)


def test_case24_demand_rule_priority():
    friday = DAY + timedelta(days=1)
    rules = (
        DemandRule("friday-generic", "dinner", (5,), 1.2, "17:00", "22:30", 0),
        DemandRule("friday-early", "dinner", (5,), 1.1, "17:00", "19:00", 1),
        DemandRule("friday-late", "dinner", (5,), 1.5, "21:00", "23:00", 2),
    )
    policy = RestaurantPolicy(overrun="allow")
    day = make_day(
        [table("A", 4), table("B", 4)],
        [booking("early", "18:30", 2, day=friday), booking("late", "21:30", 2, day=friday)],
        demand_rules=rules,
        policy=policy,
        day=friday,
    )
    plan = run(day)
    assert decision(plan, "early")["plannerConfig"]["demandMultiplier"] == 1.1
    assert decision(plan, "early")["plannerConfig"]["demandRule"]["label"] == "friday-early"
    assert decision(plan, "late")["plannerConfig"]["demandMultiplier"] == 1.5


def test_case30_time_pruning_counts():
    tables = [table(f"S{i}", 6) for i in range(10)]
    busy = tuple(BusyInterval(f"t-S{i}", at("17:00"), at("21:00")) for i in range(6))
    day = make_day(tables, [booking("b", "18:00", 6)], busy=busy)
    pruned = decision(run(day, AllocatorConfig(lookahead_enabled=False, time_pruning=True)), "b")
    assert pruned["diagnostics"]["timePruning"]["prunedByTime"] == 6
    assert pruned["availabilitySnapshot"]["totalCandidates"] == 4
    unpruned = decision(run(day), "b")
    assert unpruned["availabilitySnapshot"]["totalCandidates"] == 10
    assert pruned["selected"]["tableIds"] == unpruned["selected"]["tableIds"] == ["t-S6"]


def test_time_pruning_still_reports_conflicts_when_fitting_tables_are_busy():
    busy = (BusyInterval("t-A", at("17:00"), at("21:00")),)
    day = make_day([table("A", 4)], [booking("b", "18:00", 4)], busy=busy)
    plan = run(day, AllocatorConfig(lookahead_enabled=False, time_pruning=True))
    # [REC] capacity-fitting tables exist but all are busy: a conflict, not "no suitable tables".
    assert plan.skipped[0].reason_code == "CONFLICTS_EXISTING"
    assert plan.skipped[0].reason == "Conflicts with existing bookings on tables t-A"


def test_fallback_service_and_window_invalid_entries():
    day = make_day([table("A", 4)], [booking("morning", "11:00", 2), booking("zero", "18:00", 0)])
    plan = run(day)
    fallbacks = {f.booking_id: f for f in plan.service_fallbacks}
    assert fallbacks["morning"].used_fallback and fallbacks["morning"].fallback_service == "lunch"
    assert assigned_map(plan) == {"morning": ["t-A"]}
    assert plan.skipped[0].reason_code == "WINDOW_INVALID" and not fallbacks["zero"].used_fallback
    fail_hard = run(day, AllocatorConfig(lookahead_enabled=False, service_fail_hard=True))
    assert {s.booking_id: s.reason_code for s in fail_hard.skipped} == {
        "morning": "SERVICE_NOT_FOUND",
        "zero": "WINDOW_INVALID",
    }


def test_commit_arguments_and_deterministic_idempotency_key():
    tables = [table("B", 2, id="bbb"), table("A", 2, id="aaa")]
    day = make_day(tables, [booking("b", "18:00", 4)], adjacency=[("aaa", "bbb")])
    first, second = run(day), run(day)
    planned = first.assigned[0]
    assert sorted(set(planned.table_ids)) == ["aaa", "bbb"]
    assert planned.require_adjacency is True
    assert iso_utc(planned.block_start) == "2025-10-30T18:00:00Z" and iso_utc(planned.block_end) == "2025-10-30T19:20:00Z"
    assert planned.idempotency_key == second.assigned[0].idempotency_key
    other = run(make_day(tables, [booking("c", "18:00", 4)], adjacency=[("aaa", "bbb")]))
    assert other.assigned[0].idempotency_key != first.assigned[0].idempotency_key
    assert first.assigned[0].idempotency_key.startswith("auto-assign:")


def test_decisions_are_json_ready_and_sanitised():
    plan = run(make_day([table("A", 4)], [booking("b", "18:00", 2)]))
    json.dumps(plan.decisions)
    cleaned = sanitise(
        {"skipReason": "ask john.doe@example.com", "guestName": "John", "nested": [{"name": "x"}]}
    )
    assert cleaned == {
        "skipReason": "ask [redacted-email]",
        "guestName": "[redacted]",
        "nested": [{"name": "[redacted]"}],
    }
    assert plan.decisions[0]["restaurantId"] == RESTAURANT


def test_sanitise_cleans_shared_containers_everywhere_and_returns_a_copy():
    """Decisions reuse containers (topCandidates is candidates): every occurrence is cleaned, tuples
    become lists, scalars pass through, and the input is left as it was."""
    shared = [{"note": "mail ann@example.org", "guestName": "Ann", "score": 1.5, "ok": True, "n": None}]
    value = {"candidates": shared, "topCandidates": shared, "pair": ("x@y.io", 3)}
    cleaned = sanitise(value)
    expected_candidate = {"note": "mail [redacted-email]", "guestName": "[redacted]", "score": 1.5, "ok": True, "n": None}
    assert cleaned == {
        "candidates": [expected_candidate],
        "topCandidates": [expected_candidate],
        "pair": ["[redacted-email]", 3],
    }
    assert shared[0]["guestName"] == "Ann" and value["pair"] == ("x@y.io", 3)
    cleaned["candidates"][0]["note"] = "changed"
    assert shared[0]["note"] == "mail ann@example.org"


def test_adjacency_mode_per_restaurant_override_reaches_the_planner():
    tables = [table(n, 2) for n in "ABC"]
    edges = [("t-A", "t-B"), ("t-B", "t-C")]
    chain = make_day(tables, [booking("b", "18:00", 6)], adjacency=edges)
    assert assigned_map(run(chain)) == {"b": ["t-A", "t-B", "t-C"]}
    pairwise = make_day(
        tables,
        [booking("b", "18:00", 6)],
        adjacency=edges,
        policy=RestaurantPolicy(adjacency_mode="pairwise"),
    )
    assert run(pairwise).skipped[0].reason_code == "NO_SUITABLE_TABLES"
