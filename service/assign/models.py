"""Request and response bodies of ``POST /api/ops/dashboard/assign-tables`` (docs/assign-tables.md §2).

The response is built as these models (``service.assign.service.build_response``) and FastAPI serialises
it through them, so the OpenAPI document describes exactly what is sent.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AssignTablesRequest(BaseModel):
    """Unknown fields are ignored (docs/assign-tables.md §2.1)."""

    model_config = ConfigDict(extra="ignore")

    restaurantId: uuid.UUID
    date: str | None = Field(
        default=None,
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="Service date YYYY-MM-DD; absent/null = today in the restaurant's timezone",
    )
    captureDecisions: bool = Field(default=True, description="Include the per-booking decision trace")
    dryRun: bool = Field(default=False, description="Plan and explain only: nothing is written")


class AssignedBody(BaseModel):
    bookingId: str
    tableIds: list[str]
    relaxed: list[str] = Field(
        default_factory=list,
        description="Strict rules this seat needed relaxed, in ladder order: overage | memberLimits | adjacency "
        "(docs/assign-tables.md §7.13); empty for a strict seat",
    )


class SkippedBody(BaseModel):
    bookingId: str
    reason: str
    reasonCode: str


class ServiceFallbackBody(BaseModel):
    bookingId: str
    usedFallback: bool
    fallbackService: str | None


class BoundBody(BaseModel):
    """How good the plan is (docs/assign-tables.md §7.14)."""

    upperBound: int = Field(description="No plan under the same rules seats more bookings than this")
    optimal: bool = Field(description="The plan seats upperBound bookings: nothing better is possible")
    method: str = Field(description="exact (MILP proven) | lp (LP relaxation) | candidates (bookings with any candidate)")


class AssignTablesResponse(BaseModel):
    date: str
    assigned: list[AssignedBody]
    skipped: list[SkippedBody]
    serviceFallbacks: list[ServiceFallbackBody]
    decisions: list[dict[str, Any]] | None = Field(
        default=None, description="Present only when captureDecisions is true (docs/assign-tables.md §9)"
    )
    planner: str = Field(description="Which planner produced the plan: greedy | lns | greedy-fallback | exact")
    bound: BoundBody | None = Field(default=None, description="Upper bound on bookings seated (docs/assign-tables.md §7.14)")
    dryRun: bool
