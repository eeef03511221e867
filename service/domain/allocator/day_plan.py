"""Allocator outputs: the day plan the HTTP layer commits and turns into the response of docs/assign-tables.md §2.2."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from .windows import iso_utc

if TYPE_CHECKING:
    from .bound import Bound
    from .trace import DayEvaluation

NO_SUITABLE_TABLES_REASON = (
    "No suitable tables available (No tables meet the capacity requirements for this party size.)"
)

PLANNER_GREEDY = "greedy"
PLANNER_LNS = "lns"
PLANNER_FALLBACK = "greedy-fallback"
PLANNER_EXACT = "exact"  # the exact MILP plan replaced the optimiser's (docs/assign-tables.md §7.14)

# Skip reason codes (docs/assign-tables.md §7.12); the window ones live in windows.py, the commit ones are
# produced by the HTTP layer.
NO_SUITABLE_TABLES = "NO_SUITABLE_TABLES"
CONFLICTS_EXISTING = "CONFLICTS_EXISTING"
ASSIGNMENT_CONFLICT = "ASSIGNMENT_CONFLICT"
ASSIGNMENT_VALIDATION = "ASSIGNMENT_VALIDATION"
ASSIGNMENT_REPOSITORY_ERROR = "ASSIGNMENT_REPOSITORY_ERROR"
CAPACITY_EXCEEDED = "CAPACITY_EXCEEDED"
# the run's overall deadline passed before the booking was committed (docs/assign-tables.md §8.6)
RUN_DEADLINE_EXCEEDED = "RUN_DEADLINE_EXCEEDED"


def idempotency_key(
    restaurant_id: str, booking_id: str, table_ids: tuple[str, ...], start: datetime, end: datetime
) -> str:
    """Deterministic per (restaurant, booking, sorted tables, window): a resent run reuses it (docs/assign-tables.md §8.5)."""
    material = "|".join(
        ["auto-assign", restaurant_id, booking_id, ",".join(sorted(table_ids)), iso_utc(start), iso_utc(end)]
    )
    return "auto-assign:" + hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PlannedAssignment:
    """One booking's chosen table set, ready for `assign_tables_atomic_v2` (docs/assign-tables.md §8.1)."""

    booking_id: str
    table_ids: tuple[str, ...]  # plan order: capacity ascending, then table number
    table_numbers: tuple[str, ...]
    block_start: datetime  # UTC, p_start_at
    block_end: datetime  # UTC, p_end_at
    require_adjacency: bool
    idempotency_key: str
    score: float
    party_size: int
    stage: str  # "greedy" or "optimiser": which planner stage placed it
    # Other table sets free in the final plan, best first: what to try if the commit conflicts (docs/assign-tables.md §7.11).
    alternatives: tuple[tuple[str, ...], ...] = ()
    # Strict rules this seat needed relaxed (docs/assign-tables.md §7.13); empty for a strict seat.
    relaxed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedSkip:
    booking_id: str
    reason: str
    reason_code: str
    classification: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceFallback:
    booking_id: str
    used_fallback: bool
    fallback_service: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "bookingId": self.booking_id,
            "usedFallback": self.used_fallback,
            "fallbackService": self.fallback_service,
        }


@dataclass(frozen=True, slots=True)
class Objective:
    """Lexicographic plan quality: more seated, then more covers, then lower total score."""

    seated: int
    covers: int
    score: float

    def key(self) -> tuple[int, int, float]:
        return (self.seated, self.covers, -round(self.score, 6))

    def to_json(self) -> dict[str, Any]:
        return {"seated": self.seated, "covers": self.covers, "score": round(self.score, 4)}


@dataclass(slots=True)
class DayPlan:
    restaurant_id: str
    service_date: date
    planner: str
    # Evaluated bookings in processing order; each is in exactly one of assigned / skipped.
    order: list[str]
    assigned: list[PlannedAssignment]
    skipped: list[PlannedSkip]
    service_fallbacks: list[ServiceFallback]
    decisions: list[dict[str, Any]] | None
    timings: dict[str, float]
    greedy: Objective
    final: Objective
    optimiser: dict[str, Any] = field(default_factory=dict)
    # what the decision trace is built from (service/domain/allocator/trace.py); None unless captured
    evaluation: DayEvaluation | None = None
    # the relaxation ladder's rungs tried and bookings each seated (docs/assign-tables.md §7.13)
    relaxation: dict[str, Any] = field(default_factory=dict)
    # upper bound on bookings any plan could seat (docs/assign-tables.md §7.14); None when not computed
    bound: Bound | None = None


# rejectionClassification (docs/assign-tables.md §7.12): "strategic" when the reason names a strategic cause or the best plan
# carries a positive slack, scarcity or future-conflict penalty; else "hard" when there is a reason.
STRATEGIC_REASON_WORDS = ("conflicts with existing", "future conflict", "lookahead", "strategic")


def rejection_classification(reason: str | None, slack: float, scarcity: float, future_conflict: float) -> str | None:
    if reason is None:
        return None
    lowered = reason.lower()
    if any(word in lowered for word in STRATEGIC_REASON_WORDS) or slack > 0 or scarcity > 0 or future_conflict > 0:
        return "strategic"
    return "hard"


def decision_after_failed_commit(decision: dict[str, Any], reason: str, code: str) -> None:
    """A planned booking whose commit failed is a skip in its decision too (docs/assign-tables.md §9.1): nothing selected, no
    availability snapshot, the commit's reason and code, classified from the best plan's penalties."""
    penalties = decision.get("strategicPenalties") or {}
    decision.update(
        selected=None,
        availabilitySnapshot=None,
        skipReason=reason,
        reasonCode=code,
        rejectionClassification=rejection_classification(
            reason,
            penalties.get("slack") or 0,
            penalties.get("scarcity") or 0,
            penalties.get("futureConflict") or 0,
        ),
    )


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_NAME_FIELDS = frozenset(
    {
        "name",
        "guestName",
        "guest_name",
        "customerName",
        "customer_name",
        "primaryGuestName",
        "primary_guest_name",
        "createdByName",
        "created_by_name",
        "assignedToName",
        "assigned_to_name",
    }
)


def sanitise(value: Any) -> Any:
    """Decision sanitisation (docs/assign-tables.md §9.1): e-mails redacted in every string, personal name fields blanked.

    Returns a new JSON-shaped structure (tuples become lists). A decision repeats containers (its
    ``topCandidates`` is its ``candidates``; score breakdowns are shared), so each container is cleaned
    once per call and its clean copy reused; strings without "@" skip the e-mail pattern (it needs one)."""
    return _sanitise(value, {})


# Scalars returned as they are, tested by exact type inline (most of a decision's ~400,000 values).
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})


def _sanitise(value: Any, done: dict[int, Any]) -> Any:
    if isinstance(value, str):
        return _EMAIL.sub("[redacted-email]", value) if "@" in value else value
    if not isinstance(value, dict | list | tuple):
        return value
    clean = done.get(id(value))
    if clean is not None:
        return clean
    plain = _PLAIN_TYPES
    if isinstance(value, dict):
        clean = {}
        for k, v in value.items():
            kind = type(v)
            if k in _NAME_FIELDS:
                clean[k] = "[redacted]"
            elif kind in plain or (kind is str and "@" not in v):
                clean[k] = v
            else:
                clean[k] = _sanitise(v, done)
    else:
        clean = [
            v if type(v) in plain or (type(v) is str and "@" not in v) else _sanitise(v, done) for v in value
        ]
    done[id(value)] = clean
    return clean
