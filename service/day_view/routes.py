"""Day view HTTP routes (docs/day-view.md).

- ``GET  /api/ops/dashboard/days/{restaurantId}/{date}``              the day as JSON
- ``GET  /api/ops/dashboard/days/{restaurantId}/{date}/timeline.svg`` the day as a timeline
- ``POST /api/ops/dashboard/days/{restaurantId}/{date}/timeline.svg`` the day with a posted plan (the
  auto-assign response, e.g. a dry run) laid over it
- ``GET  /ops/days`` (+ its script and stylesheet) the ops page; it holds no data and no secret, the user
  pastes a token that the page sends in the ``Authorization`` header

Same auth as the ops API: a user JWT of a member (any role) of the restaurant; a non-member and an unknown
restaurant are both 403. Order: authenticate (401), validate the path and body (400), authorise (403).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException

from service.auth import MEMBER_ROLES, Principal, UserDep
from service.day_view import service
from service.day_view.model import Day
from service.day_view.schemas import DayViewBody, PlanOverlayBody, day_body
from service.errors import (
    AuthUnavailable,
    DatabaseUnavailable,
    ErrorDetail,
    Forbidden,
    InvalidBody,
    InvalidQuery,
    NotReady,
    Unauthenticated,
    problem_responses,
)
from service.http.fields import CanonicalUuid
from service.repository.database import SessionDep
from service.repository.memberships import membership_role

DAY_PATH = "/api/ops/dashboard/days/{restaurantId}/{date}"
SVG_PATH = DAY_PATH + "/timeline.svg"
PAGE_PATH = "/ops/days"
STATIC_DIR = FsPath(__file__).parent / "static"
# name → media type: the only files the page route serves
PAGE_ASSETS = {"days.js": "text/javascript; charset=utf-8", "days.css": "text/css; charset=utf-8"}
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
SVG_MEDIA_TYPE = "image/svg+xml"
NO_STORE = {"Cache-Control": "private, no-store"}
# The page: its own script and stylesheet only, API calls to this origin only, no framing, no inline code.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# An SVG opened on its own is a document too: it may run nothing.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

router = APIRouter(tags=["day-view"])
page_router = APIRouter(include_in_schema=False)

RestaurantParam = Annotated[CanonicalUuid, Path(alias="restaurantId", description="The restaurant's id")]
DateParam = Annotated[str, Path(alias="date", pattern=DATE_PATTERN, description="Service date YYYY-MM-DD",
                                examples=["2025-10-31"])]
_ERRORS = problem_responses(InvalidQuery, Unauthenticated, Forbidden, AuthUnavailable, DatabaseUnavailable, NotReady)
_SVG_DOC = {"description": "The timeline (SVG document)", "content": {SVG_MEDIA_TYPE: {"schema": {"type": "string"}}}}


def _clock(request: Request) -> Callable[[], datetime]:
    return getattr(request.app.state, "day_view_clock", None) or (lambda: datetime.now(UTC))


def _service_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidQuery("date is not a calendar date",
                           details=[ErrorDetail(field="date", reason="not a calendar date")]) from None


async def _authorised_day(session: AsyncSession, user: Principal, restaurant_id: uuid.UUID, raw_date: str) -> Day:
    service_date = _service_date(raw_date)
    role = await membership_role(session, user.user_id, restaurant_id)  # type: ignore[arg-type]
    await session.commit()  # the day is read in a transaction of its own (one snapshot)
    if role not in MEMBER_ROLES:
        raise Forbidden()  # also for a restaurant that does not exist
    return await service.read_day(session, restaurant_id, service_date)


def _svg(text: str) -> Response:
    return Response(text, media_type=SVG_MEDIA_TYPE, headers={**NO_STORE, "Content-Security-Policy": SVG_CSP})


@router.get(DAY_PATH, operation_id="getDayView", response_model=DayViewBody, responses=_ERRORS)
async def get_day(restaurant_id: RestaurantParam, raw_date: DateParam, user: UserDep, session: SessionDep,
                  response: Response) -> DayViewBody:
    """Zones, tables, the day's service periods, every booking of the date with its current tables, and the
    holds not yet expired. Any member role may read it."""
    day = await _authorised_day(session, user, restaurant_id, raw_date)
    response.headers.update(NO_STORE)
    return day_body(day)


@router.get(SVG_PATH, operation_id="getDayTimeline", response_class=Response,
            responses={200: _SVG_DOC, **_ERRORS})
async def get_timeline(request: Request, restaurant_id: RestaurantParam, raw_date: DateParam, user: UserDep,
                       session: SessionDep) -> Response:
    """The day as a table × time timeline: one row per table grouped by zone, one bar per booking, holds
    and out-of-service tables shaded, bookings without a table listed below, a "now" line on today."""
    day = await _authorised_day(session, user, restaurant_id, raw_date)
    return _svg(service.timeline(day, _clock(request)()))


@router.post(SVG_PATH, operation_id="renderDayTimelineWithPlan", response_class=Response,
             responses={200: _SVG_DOC, **problem_responses(InvalidBody, service.PlanDoesNotMatchDay), **_ERRORS})
async def post_timeline(request: Request, restaurant_id: RestaurantParam, raw_date: DateParam,
                        plan: PlanOverlayBody, user: UserDep, session: SessionDep) -> Response:
    """The timeline with a plan laid over it: post the ``assign-tables`` response (``dryRun: true``) as it
    came back. Planned bars are drawn orange and dashed, skipped bookings are listed with their reason
    codes; ``bound`` and ``runId`` are shown when present. Nothing is written."""
    day = await _authorised_day(session, user, restaurant_id, raw_date)
    return _svg(service.timeline(day, _clock(request)(), service.plan_for_day(day, plan)))


@page_router.get(PAGE_PATH)
async def ops_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "days.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@page_router.get(PAGE_PATH + "/{asset}")
async def ops_page_asset(asset: str) -> FileResponse:
    media_type = PAGE_ASSETS.get(asset)
    if media_type is None:
        raise HTTPException(404, "Not Found")
    return FileResponse(STATIC_DIR / asset, media_type=media_type, headers=PAGE_HEADERS)


def register(app: FastAPI) -> None:
    """The day view's routes on the app (the one line create_app needs)."""
    app.include_router(router)
    app.include_router(page_router)
