"""Request and response bodies of ``POST /api/ops/dashboard/assign-tables`` (docs/assign-tables.md §2).

The response is built as these models (``service.assign.service.build_response``) and FastAPI serialises
it through them, so the OpenAPI document describes exactly what is sent.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictBool, WithJsonSchema
from pydantic_core import PydanticCustomError

from service.http.fields import CanonicalUuid

# The service dates a run can plan (docs/assign-tables.md §2.1): the day is read with a day of padding on
# each side plus the restaurant's offset, so the calendar's last days cannot be planned; 2000 is before any
# booking this platform holds. One source: the model's check, its message and the OpenAPI text use it.
SERVICE_DATE_MIN = date(2000, 1, 1)
SERVICE_DATE_MAX = date(9998, 12, 31)
# Shape only (ASCII digits, month 01-12, day 01-31); the calendar and the range are checked after it
_DATE_SHAPE = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_DATE_RANGE = f"{SERVICE_DATE_MIN.isoformat()} to {SERVICE_DATE_MAX.isoformat()}"


def _service_date(raw: object) -> date:
    if not isinstance(raw, str) or not re.fullmatch(_DATE_SHAPE.strip("^$"), raw):
        raise PydanticCustomError("date_shape", "must be a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        # the shape alone let 2025-02-30 through (the original took 2025-13-45)
        raise PydanticCustomError("date_calendar", "not a calendar date") from None
    if not SERVICE_DATE_MIN <= day <= SERVICE_DATE_MAX:
        raise PydanticCustomError("date_range", "must be between {lo} and {hi}",
                                  {"lo": SERVICE_DATE_MIN.isoformat(), "hi": SERVICE_DATE_MAX.isoformat()})
    return day


# A JSON string (never a number or a timestamp pydantic would also turn into a date)
ServiceDate = Annotated[
    date,
    PlainValidator(_service_date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": _DATE_SHAPE,
                    "description": f"Service date YYYY-MM-DD, {_DATE_RANGE}"}),
]


class AssignTablesRequest(BaseModel):
    """Unknown fields are refused (docs/assign-tables.md §2.1): a typo such as ``dryrun`` must not run a
    real, writing assignment."""

    model_config = ConfigDict(extra="forbid")

    restaurantId: CanonicalUuid
    date: ServiceDate | None = Field(
        default=None,
        description=f"Service date YYYY-MM-DD ({_DATE_RANGE}); absent/null = today in the restaurant's timezone",
    )
    captureDecisions: StrictBool = Field(default=True, description="Include the per-booking decision trace")
    dryRun: StrictBool = Field(default=False, description="Plan and explain only: nothing is written")


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
