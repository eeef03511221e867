"""strategic_configs: schema probe, whole-row read, upsert + change notification.

Runs as the runtime role under RLS: callers set the tenant context (``set_tenant_context``) first; the
service_role policy then shows the restaurant's row and the global row, and lets it write only the
restaurant's row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.config_resolution import (
    StoredConfig,
    WeightsInput,
    schema_state_from_columns,
)
from service.domain.weights import SchemaState
from service.repository.database import is_sqlstate_error

CHANGE_CHANNEL = "strategic_config_changed"

# SQLSTATEs that mean "the table or a column is not what this code expects", not an outage.
SCHEMA_SQLSTATES = frozenset({"42P01", "42703"})

# Same catalog facts as the doctor's probe (service/schema/doctor/strategic_probe.py): table present, its live columns.
_PROBE_SQL = text(
    """
    SELECT to_regclass('public.strategic_configs') IS NOT NULL AS table_exists,
           COALESCE((SELECT array_agg(a.attname::text)
                       FROM pg_attribute a
                      WHERE a.attrelid = to_regclass('public.strategic_configs')
                        AND a.attnum > 0 AND NOT a.attisdropped), ARRAY[]::text[]) AS columns
    """
)

# Whole-row selection (docs/strategic-config.md §3.6 step 1): the restaurant's row, else the single global row.
_READ_SQL = text(
    """
    SELECT (SELECT true FROM restaurants WHERE id = :rid) AS restaurant_exists,
           c.restaurant_id IS NOT NULL AS is_restaurant_row,
           c.scarcity_weight, c.demand_multiplier_override, c.future_conflict_penalty,
           c.version, c.updated_at, c.found
      FROM (SELECT 1) AS one
      LEFT JOIN LATERAL (
            SELECT restaurant_id, scarcity_weight, demand_multiplier_override, future_conflict_penalty,
                   version, updated_at, true AS found
              FROM strategic_configs
             WHERE restaurant_id = :rid OR restaurant_id IS NULL
             ORDER BY restaurant_id NULLS LAST, updated_at DESC
             LIMIT 1) AS c ON true
    """
)

_EXISTS_SQL = text("SELECT true FROM restaurants WHERE id = :rid")

_LOCK_CURRENT_SQL = text(
    """
    SELECT scarcity_weight, demand_multiplier_override, future_conflict_penalty, version, updated_at
      FROM strategic_configs WHERE restaurant_id = :rid FOR UPDATE
    """
)

_UPSERT_SQL = text(
    """
    INSERT INTO strategic_configs AS s
           (restaurant_id, scarcity_weight, demand_multiplier_override, future_conflict_penalty, updated_by)
    VALUES (:rid, :scarcity, :multiplier, :penalty, :actor)
    ON CONFLICT (restaurant_id) DO UPDATE
       SET scarcity_weight = EXCLUDED.scarcity_weight,
           demand_multiplier_override = EXCLUDED.demand_multiplier_override,
           future_conflict_penalty = EXCLUDED.future_conflict_penalty,
           updated_by = EXCLUDED.updated_by
    RETURNING scarcity_weight, demand_multiplier_override, future_conflict_penalty, version, updated_at
    """
)

# Delivered only on commit, so other replicas never see a change that was rolled back.
_NOTIFY_SQL = text("SELECT pg_notify(:channel, :rid)")


@dataclass(frozen=True)
class ReadResult:
    restaurant_exists: bool
    row: StoredConfig | None


def is_schema_error(exc: BaseException) -> bool:
    return is_sqlstate_error(exc, SCHEMA_SQLSTATES)


def _stored(r: Row[Any], scope: Literal["restaurant", "global"]) -> StoredConfig:
    """A result row carrying the weight columns, version and updated_at."""
    return StoredConfig(
        scope=scope,
        scarcity=r.scarcity_weight,
        demand_multiplier=r.demand_multiplier_override,
        future_conflict_penalty=r.future_conflict_penalty,
        version=int(r.version),
        updated_at=r.updated_at,
    )


async def probe_schema(session: AsyncSession) -> SchemaState:
    result = (await session.execute(_PROBE_SQL)).one()
    return schema_state_from_columns(bool(result.table_exists), set(result.columns or ()))


async def restaurant_exists(session: AsyncSession, restaurant_id: uuid.UUID) -> bool:
    """Needs the tenant context: the restaurants policy shows only the current restaurant."""
    return (await session.execute(_EXISTS_SQL, {"rid": restaurant_id})).scalar_one_or_none() is True


async def read_config(session: AsyncSession, restaurant_id: uuid.UUID) -> ReadResult:
    """Needs the tenant context. Raises DBAPIError (42P01/42703) when the schema is degraded."""
    r = (await session.execute(_READ_SQL, {"rid": restaurant_id})).one()
    row = None
    if r.found:
        row = _stored(r, "restaurant" if r.is_restaurant_row else "global")
    return ReadResult(restaurant_exists=r.restaurant_exists is True, row=row)


async def lock_restaurant_row(session: AsyncSession, restaurant_id: uuid.UUID) -> StoredConfig | None:
    """The restaurant's own row, locked until commit (If-Match compares against it)."""
    r = (await session.execute(_LOCK_CURRENT_SQL, {"rid": restaurant_id})).one_or_none()
    return None if r is None else _stored(r, "restaurant")


async def upsert_config(
    session: AsyncSession, restaurant_id: uuid.UUID, weights: WeightsInput, actor: uuid.UUID | None
) -> StoredConfig:
    """Full replacement keyed on restaurant_id; the touch trigger sets updated_at and bumps version.
    Queues the change notification in the same transaction."""
    r = (
        await session.execute(
            _UPSERT_SQL,
            {
                "rid": restaurant_id,
                "scarcity": weights.scarcity,
                "multiplier": weights.demand_multiplier,
                "penalty": weights.future_conflict_penalty,
                "actor": actor,
            },
        )
    ).one()
    await session.execute(_NOTIFY_SQL, {"channel": CHANGE_CHANNEL, "rid": str(restaurant_id)})
    return _stored(r, "restaurant")
