"""The docs/assign-tables.md §2.2 response body built from a plan and its commit outcomes (no database: plain data in)."""

from __future__ import annotations

from typing import Any

from service.assign.repository import CommitOutcome
from service.assign.service import COMMIT_CONFLICT_REASON, build_response
from service.domain.allocator.day_plan import ASSIGNMENT_CONFLICT
from tests.domain.builders import DAY, booking, make_day, run, table


def _body(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The response as sent: the route omits unset fields (``decisions`` when not captured)."""
    return build_response(*args, **kwargs).model_dump(exclude_unset=True)


def test_empty_day_and_capture_off():
    day = make_day([table("A", 4)], [])
    plan = run(day)
    assert _body(plan, day, {}, capture=True, dry_run=False) == {
        "date": DAY.isoformat(),
        "assigned": [],
        "skipped": [],
        "serviceFallbacks": [],
        "planner": plan.planner,
        "dryRun": False,
        "decisions": [],
    }
    quiet_day = make_day([table("A", 4)], [booking("b", "18:00", 2)])
    quiet = run(quiet_day, capture_decisions=False)
    assert "decisions" not in _body(quiet, quiet_day, None, capture=False, dry_run=True)


def test_commit_outcomes_move_failures_into_skipped_in_processing_order():
    tables = [table("A", 2), table("B", 2), table("C", 4)]
    day = make_day(tables, [booking("b1", "18:00", 2), booking("b2", "18:00", 2), booking("b3", "18:15", 4)])
    plan = run(day)
    planned = {a.booking_id: a for a in plan.assigned}
    assert list(planned) == ["b1", "b2", "b3"]
    outcomes = {
        "b1": (CommitOutcome(False, code=ASSIGNMENT_CONFLICT), 3),
        "b2": (CommitOutcome(True, planned["b2"].table_ids), 1),
        "b3": (CommitOutcome(True, planned["b3"].table_ids), 1),
    }
    body = _body(plan, day, outcomes, capture=True, dry_run=False)
    assert [a["bookingId"] for a in body["assigned"]] == ["b2", "b3"]
    assert body["skipped"] == [
        {"bookingId": "b1", "reason": COMMIT_CONFLICT_REASON, "reasonCode": ASSIGNMENT_CONFLICT}
    ]
    failed = next(d for d in body["decisions"] if d["bookingId"] == "b1")
    assert failed["selected"] is None and failed["reasonCode"] == ASSIGNMENT_CONFLICT
    assert failed["rejectionClassification"] == "strategic"  # scarcity is positive
    assert failed["availabilitySnapshot"] is None and failed["commit"]["attempts"] == 3
    assert len(body["serviceFallbacks"]) == 3
    assert planned["b3"].alternatives == ()  # the only 4-top: nothing else to try
