"""Response bodies of the strategic-config APIs (docs/strategic-config.md §2). The original's field names are
kept; the rest are additive. Routes return these models, so the OpenAPI document is what is sent.

Numbers are JSON numbers as the original rendered them (22, not 22.0); timestamps keep Python's ISO form
(``+00:00``), as before these models were used for the body.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from service.domain.config_resolution import ResolvedConfig
from service.domain.weights import DegradedReason, Scope, Source


def _number(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


JsonNumber = Annotated[float, PlainSerializer(_number, return_type=Any), WithJsonSchema({"type": "number"})]
OptionalJsonNumber = Annotated[
    float | None,
    PlainSerializer(_number, return_type=Any),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "null"}]}),
]
Timestamp = Annotated[
    datetime, PlainSerializer(_timestamp, return_type=Any), WithJsonSchema({"type": "string", "format": "date-time"})
]
OptionalTimestamp = Annotated[
    datetime | None,
    PlainSerializer(_timestamp, return_type=Any),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}),
]


class WeightsBody(BaseModel):
    scarcity: JsonNumber
    demandMultiplier: OptionalJsonNumber
    futureConflictPenalty: OptionalJsonNumber


class EffectiveBody(BaseModel):
    scarcity: JsonNumber
    demandMultiplier: OptionalJsonNumber = Field(description="Override applied; null = demand profiles decide")
    futureConflictPenalty: JsonNumber = Field(description="Override, else the env lookahead penalty weight")


class StrategicConfigBody(BaseModel):
    restaurantId: uuid.UUID
    source: Source
    weights: WeightsBody
    updatedAt: OptionalTimestamp
    scope: Scope
    effective: EffectiveBody
    degraded: bool
    degradedReason: DegradedReason | None
    version: int | None

    @classmethod
    def of(cls, resolved: ResolvedConfig) -> StrategicConfigBody:
        return cls(**_fields(resolved))


class InternalStrategicConfigBody(StrategicConfigBody):
    resolvedAt: Timestamp

    @classmethod
    def at(cls, resolved: ResolvedConfig, resolved_at: datetime) -> InternalStrategicConfigBody:
        return cls(**_fields(resolved), resolvedAt=resolved_at)


class InternalStrategicConfigBatch(BaseModel):
    items: list[InternalStrategicConfigBody]
    notFound: list[uuid.UUID] = Field(description="Requested ids with no restaurant")


def _fields(resolved: ResolvedConfig) -> dict[str, Any]:
    return {
        "restaurantId": resolved.restaurant_id,
        "source": resolved.source,
        "weights": WeightsBody(
            scarcity=resolved.weights.scarcity,
            demandMultiplier=resolved.weights.demand_multiplier,
            futureConflictPenalty=resolved.weights.future_conflict_penalty,
        ),
        "updatedAt": resolved.updated_at,
        "scope": resolved.scope,
        "effective": EffectiveBody(
            scarcity=resolved.effective.scarcity,
            demandMultiplier=resolved.effective.demand_multiplier,
            futureConflictPenalty=resolved.effective.future_conflict_penalty,
        ),
        "degraded": resolved.degraded,
        "degradedReason": resolved.degraded_reason,
        "version": resolved.version,
    }
