"""Application service of the day view: read the day, check a posted plan against it, render."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from service.day_view import repository
from service.day_view.model import Day, Plan, Skip
from service.day_view.render_svg import render_timeline
from service.day_view.schemas import PlanOverlayBody
from service.errors import DatabaseUnavailable, ErrorDetail, NotReady, RestaurantNotFound, ServiceError
from service.repository.database import is_sqlstate_error

# Undefined function / table / column: the database is older than this service needs.
SCHEMA_STATES = frozenset({"42883", "42P01", "42703"})


class PlanDoesNotMatchDay(ServiceError):
    """A posted plan names another date, or bookings or tables that are not this restaurant-day's."""

    status, code, title = 400, "PLAN_DOES_NOT_MATCH_DAY", "Plan does not match the day"


async def read_day(session: AsyncSession, restaurant_id: uuid.UUID, service_date: date) -> Day:
    """The day in one snapshot. Start of a transaction: the caller has committed its membership check."""
    try:
        day = await repository.load_day(session, restaurant_id, service_date)
    except DBAPIError as exc:
        if is_sqlstate_error(exc, SCHEMA_STATES):
            raise NotReady(f"The database schema is older than this service needs: {exc.orig}") from exc
        raise DatabaseUnavailable("The day could not be read") from exc
    if day is None:
        raise RestaurantNotFound()
    return day


def plan_for_day(day: Day, body: PlanOverlayBody) -> Plan:
    """The posted plan as a :class:`Plan`, refused whole (400) when it names anything the day does not have:
    drawing half a plan would hide the mismatch."""
    problems: list[ErrorDetail] = []
    if body.date is not None and body.date != day.service_date.isoformat():
        problems.append(ErrorDetail(field="date", reason=f"the plan is for {body.date}, not {day.service_date}"))
    bookings = {b.id for b in day.bookings}
    tables = {t.id for t in day.tables}
    for i, item in enumerate(body.assigned):
        if str(item.bookingId) not in bookings:
            problems.append(ErrorDetail(field=f"assigned.{i}.bookingId", reason="not a booking of this day"))
        for j, table_id in enumerate(item.tableIds):
            if str(table_id) not in tables:
                problems.append(ErrorDetail(field=f"assigned.{i}.tableIds.{j}", reason="not a table of this restaurant"))
    for i, skip in enumerate(body.skipped):
        if str(skip.bookingId) not in bookings:
            problems.append(ErrorDetail(field=f"skipped.{i}.bookingId", reason="not a booking of this day"))
    if problems:
        shown = "; ".join(f"{p.field}: {p.reason}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise PlanDoesNotMatchDay(shown + more, details=problems)
    bound = body.bound
    return Plan(
        assigned={str(a.bookingId): tuple(str(t) for t in a.tableIds) for a in body.assigned},
        skipped={str(s.bookingId): Skip(s.reasonCode, s.reason) for s in body.skipped},
        planner=body.planner,
        bound=bound,
        run_id=body.runId,
        title="Dry-run plan" if body.dryRun or body.runId is None else f"Run {body.runId}",
    )


def timeline(day: Day, now: datetime, plan: Plan | None = None) -> str:
    return render_timeline(day, now=now, plan=plan)
