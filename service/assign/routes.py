"""``POST /api/ops/dashboard/assign-tables``: parse, authorise, run, return (docs/assign-tables.md §2, §3).

Order of checks: authenticate (401, a dependency), validate the body (400), authorise (403, also for an
unknown restaurant), then the run (``service.assign.service``), whose response model is returned as is.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from service.assign.models import AssignTablesRequest, AssignTablesResponse
from service.assign.service import AssignmentRequest, AssignmentService, RunSummary
from service.auth import MEMBER_ROLES, UserDep
from service.errors import (
    AssignmentRunInProgress,
    AuthUnavailable,
    DatabaseUnavailable,
    ErrorDetail,
    Forbidden,
    InvalidBody,
    NotReady,
    ServiceError,
    StrategicConfigStoreUnavailable,
    Unauthenticated,
    problem_responses,
)
from service.observability.metrics import ServiceMetrics, observe_assign_run
from service.repository.database import SessionDep
from service.repository.memberships import membership_role
from service.responses import model_response

PATH = "/api/ops/dashboard/assign-tables"

router = APIRouter(tags=["assign-tables"])


async def get_clock() -> Callable[[], datetime]:
    """"Now" for the default service date (tests override this dependency)."""
    return lambda: datetime.now(UTC)


def record_assign_run(metrics: ServiceMetrics, summary: RunSummary) -> None:
    observe_assign_run(
        metrics,
        planner=summary.planner,
        dry_run=summary.dry_run,
        duration_s=summary.duration_s,
        assigned=summary.assigned,
        skipped_reason_codes=summary.skipped_reason_codes,
    )


# async: FastAPI runs plain ``def`` dependencies in the thread pool (see service/auth.py)
async def get_assignment_service(
    request: Request, clock: Annotated[Callable[[], datetime], Depends(get_clock)]
) -> AssignmentService:
    state = request.app.state  # the parts create_app's lifespan built
    return AssignmentService(
        state.engine,
        state.sessionmaker,
        state.strategic_config,
        state.allocator_config,
        environment=state.settings.environment,
        clock=clock,
        run_deadline_s=state.settings.assign_run_deadline_s,
        statement_timeout_ms=state.settings.db_statement_timeout_ms,
        on_run_finished=functools.partial(record_assign_run, state.service_metrics),
    )


AssignmentServiceDep = Annotated[AssignmentService, Depends(get_assignment_service)]


_EXAMPLE = {
    "date": "2025-10-31",
    "assigned": [{"bookingId": "0f8b3c7e-3b7d-4c38-9d7e-2f0b8f1d2a11",
                  "tableIds": ["5b3f0d8e-9a61-4d0b-8a1e-3c1f5f1e7a01"]}],
    "skipped": [{"bookingId": "8d0e2f5a-6c4b-4f1e-9b2d-7a3c5e9f1b22",
                 "reason": "No suitable tables available (No tables meet the capacity requirements for this party size.)",
                 "reasonCode": "NO_SUITABLE_TABLES"}],
    "serviceFallbacks": [
        {"bookingId": "0f8b3c7e-3b7d-4c38-9d7e-2f0b8f1d2a11", "usedFallback": False, "fallbackService": None},
        {"bookingId": "8d0e2f5a-6c4b-4f1e-9b2d-7a3c5e9f1b22", "usedFallback": False, "fallbackService": None},
    ],
    "decisions": [],
    "planner": "greedy",
    "dryRun": False,
}

_REQUEST_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {
            "schema": AssignTablesRequest.model_json_schema(),
            "example": {"restaurantId": "6f1c7a52-0c55-4f31-9a0e-55d8e2f1b4a0", "date": "2025-10-31"},
        }},
    }
}


def _parse(raw: bytes) -> AssignTablesRequest:
    if not raw.strip():
        raise InvalidBody("The request body is empty")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidBody("The request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidBody("The request body must be a JSON object")
    try:
        body = AssignTablesRequest.model_validate(payload)
    except ValidationError as exc:
        details = [
            ErrorDetail(field=".".join(str(p) for p in e["loc"]) or "body", reason=e["msg"]) for e in exc.errors()
        ]
        raise InvalidBody("; ".join(f"{d.field}: {d.reason}" for d in details), details=details) from None
    return body


@router.post(
    PATH,
    operation_id="assignTablesForDay",
    response_model=AssignTablesResponse,
    responses={
        200: {"content": {"application/json": {"example": _EXAMPLE}}},
        **problem_responses(
            InvalidBody, Unauthenticated, Forbidden, AssignmentRunInProgress, ServiceError, AuthUnavailable,
            DatabaseUnavailable, StrategicConfigStoreUnavailable, NotReady,
        ),
    },
    openapi_extra=_REQUEST_DOC,
)
async def assign_tables_for_day(
    request: Request, user: UserDep, session: SessionDep, assignments: AssignmentServiceDep
) -> Response:
    """Auto-assign tables to every booking of the date that has none. Each booking is committed
    atomically; conflicts become skips with a ``reasonCode``. Any member role may run it."""
    # authentication already ran (dependency): anonymous callers learn nothing from validation
    body = _parse(await request.body())
    rid = body.restaurantId
    role = await membership_role(session, user.user_id, rid)  # type: ignore[arg-type]
    if role not in MEMBER_ROLES:
        await session.commit()
        raise Forbidden()  # also for a restaurant that does not exist (docs/assign-tables.md §3)
    service_date = await assignments.service_date(session, rid, body.date)
    # hand the request connection back: the run takes its own (lock, load, resolver, commits)
    await session.commit()
    response = await assignments.run(
        AssignmentRequest(
            restaurant_id=rid,
            service_date=service_date,
            user_id=user.user_id,
            capture_decisions=body.captureDecisions,
            dry_run=body.dryRun,
        )
    )
    return model_response(response, exclude_unset=True)  # decisions stays absent unless captured
