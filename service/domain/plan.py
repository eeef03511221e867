"""Allocator outputs: the day plan the HTTP layer commits and turns into the §2.2 response."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .windows import iso_utc

NO_SUITABLE_TABLES_REASON = (
    "No suitable tables available (No tables meet the capacity requirements for this party size.)"
)

PLANNER_GREEDY = "greedy"
PLANNER_LNS = "lns"
PLANNER_FALLBACK = "greedy-fallback"

# Skip reason codes (assign-tables.md §7.12); the commit ones are produced by the HTTP layer.
SERVICE_OVERRUN = "SERVICE_OVERRUN"
NO_SUITABLE_TABLES = "NO_SUITABLE_TABLES"
CONFLICTS_EXISTING = "CONFLICTS_EXISTING"
WINDOW_INVALID = "WINDOW_INVALID"
SERVICE_NOT_FOUND = "SERVICE_NOT_FOUND"
ASSIGNMENT_CONFLICT = "ASSIGNMENT_CONFLICT"
ASSIGNMENT_VALIDATION = "ASSIGNMENT_VALIDATION"
ASSIGNMENT_REPOSITORY_ERROR = "ASSIGNMENT_REPOSITORY_ERROR"
CAPACITY_EXCEEDED = "CAPACITY_EXCEEDED"


def idempotency_key(
    restaurant_id: str, booking_id: str, table_ids: tuple[str, ...], start: datetime, end: datetime
) -> str:
    """Deterministic per (restaurant, booking, sorted tables, window): a resent run reuses it (§8.5)."""
    material = "|".join(
        ["auto-assign", restaurant_id, booking_id, ",".join(sorted(table_ids)), iso_utc(start), iso_utc(end)]
    )
    return "auto-assign:" + hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PlannedAssignment:
    """One booking's chosen table set, ready for `assign_tables_atomic_v2` (§8.1)."""

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
    # Other table sets free in the final plan, best first: what to try if the commit conflicts (§7.11).
    alternatives: tuple[tuple[str, ...], ...] = ()

    @property
    def sorted_table_ids(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.table_ids)))

    def commit_args(self) -> dict[str, Any]:
        return {
            "p_booking_id": self.booking_id,
            "p_table_ids": list(self.sorted_table_ids),
            "p_idempotency_key": self.idempotency_key,
            "p_require_adjacency": self.require_adjacency,
            "p_start_at": iso_utc(self.block_start),
            "p_end_at": iso_utc(self.block_end),
        }


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

    def assignment_for(self, booking_id: str) -> PlannedAssignment | None:
        return next((a for a in self.assigned if a.booking_id == booking_id), None)

    def response(self, outcomes: Mapping[str, CommitOutcome] | None = None) -> dict[str, Any]:
        """The §2.2 body. Without `outcomes` it describes the plan; with them (from the commit
        path) committed alternatives replace the planned tables and failed commits become skips,
        all lists staying in processing order."""
        outcomes = outcomes or {}
        rank = {booking_id: n for n, booking_id in enumerate(self.order)}
        assigned: list[dict[str, Any]] = []
        skipped: list[tuple[int, dict[str, Any]]] = [
            (rank[s.booking_id], {"bookingId": s.booking_id, "reason": s.reason, "reasonCode": s.reason_code})
            for s in self.skipped
        ]
        failed: dict[str, CommitOutcome] = {}
        committed: dict[str, tuple[str, ...]] = {}
        for a in self.assigned:
            outcome = outcomes.get(a.booking_id)
            if outcome is not None and outcome.table_ids is None:
                failed[a.booking_id] = outcome
                skipped.append(
                    (
                        rank[a.booking_id],
                        {
                            "bookingId": a.booking_id,
                            "reason": outcome.reason,
                            "reasonCode": outcome.reason_code,
                        },
                    )
                )
                continue
            tables = outcome.table_ids if outcome is not None and outcome.table_ids else a.table_ids
            committed[a.booking_id] = tables
            assigned.append({"bookingId": a.booking_id, "tableIds": list(tables)})
        body: dict[str, Any] = {
            "date": self.service_date.isoformat(),
            "assigned": assigned,
            "skipped": [entry for _, entry in sorted(skipped, key=lambda item: item[0])],
            "serviceFallbacks": [f.to_json() for f in self.service_fallbacks],
            "planner": self.planner,
        }
        if self.decisions is not None:
            body["decisions"] = [_after_commit(d, failed, committed) for d in self.decisions]
        return body


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    """What the commit path did with one planned assignment (§7.11, §8.3)."""

    booking_id: str
    table_ids: tuple[str, ...] | None  # tables actually committed (maybe an alternative); None = failed
    reason_code: str | None = None  # ASSIGNMENT_CONFLICT | ASSIGNMENT_VALIDATION | CAPACITY_EXCEEDED | …
    reason: str | None = None


COMMIT_OVERLAP_REASON = "Auto assign skipped: Supabase reported an overlapping assignment"


def _after_commit(
    decision: dict[str, Any], failed: Mapping[str, CommitOutcome], committed: Mapping[str, tuple[str, ...]]
) -> dict[str, Any]:
    booking_id = decision.get("bookingId")
    outcome = failed.get(booking_id)  # type: ignore[arg-type]
    if outcome is not None:
        penalties = decision.get("strategicPenalties") or {}
        positive = any((penalties.get(k) or 0) > 0 for k in ("slack", "scarcity", "futureConflict"))
        return {
            **decision,
            "selected": None,
            "availabilitySnapshot": None,
            "skipReason": outcome.reason,
            "reasonCode": outcome.reason_code,
            "rejectionClassification": "strategic" if positive else "hard",
        }
    tables = committed.get(booking_id)  # type: ignore[arg-type]
    selected = decision.get("selected")
    if tables is not None and selected is not None and list(tables) != selected.get("tableIds"):
        return {**decision, "committedTableIds": list(tables)}
    return decision


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
    """Decision sanitisation (§9.1): e-mails redacted in every string, personal name fields blanked.

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
