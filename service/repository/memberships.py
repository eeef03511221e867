"""Restaurant memberships: the authorisation source for user callers."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import DatabaseUnavailable


async def membership_role(session: AsyncSession, user_id: uuid.UUID, restaurant_id: uuid.UUID) -> str | None:
    """The caller's role for the restaurant, or None. A lookup failure is 503, never a silent 403."""
    try:
        result = await session.execute(
            text("SELECT role FROM restaurant_memberships WHERE user_id = :u AND restaurant_id = :r"),
            {"u": user_id, "r": restaurant_id},
        )
    except DBAPIError as exc:
        raise DatabaseUnavailable("Membership lookup failed") from exc
    return result.scalar_one_or_none()


async def set_tenant_context(session: AsyncSession, restaurant_id: uuid.UUID) -> None:
    """Transaction-scoped tenant context read by the RLS policies (docs/assign-tables.md §3)."""
    await session.execute(
        text("SELECT set_config('app.restaurant_id', :rid, true)"), {"rid": str(restaurant_id)}
    )
