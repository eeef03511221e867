"""Strategic config HTTP APIs (docs/strategic-config.md §2, §6) and the Prometheus endpoint.

- Ops dashboard: ``GET|POST|PUT /api/ops/settings/strategic-config`` — user JWT; any member reads,
  owner/manager writes; a non-member or unknown restaurant is 403 (existence is not leaked).
- Other services: ``GET /internal/v1/restaurants/{restaurantId}/strategic-config`` — service credential
  (``role: service_role`` JWT or a configured API key); ETag / If-None-Match → 304; Cache-Control.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from service.auth import ADMIN_ROLES, MEMBER_ROLES, ServiceDep, UserDep
from service.domain.config_resolution import ResolvedConfig, etag_matches, validate_weights
from service.domain.weights import WEIGHT_COLUMNS
from service.errors import (
    AuthUnavailable,
    DatabaseUnavailable,
    ErrorDetail,
    Forbidden,
    InvalidBody,
    InvalidQuery,
    OutOfRange,
    PreconditionFailed,
    RestaurantNotFound,
    StrategicConfigSchemaUnavailable,
    StrategicConfigStoreUnavailable,
    Unauthenticated,
    problem_responses,
)
from service.http.fields import UUID_JSON_SCHEMA, UUID_REASON, CanonicalUuid, parse_canonical_uuid
from service.repository.database import SessionDep
from service.repository.memberships import membership_role
from service.responses import model_response
from service.strategic_config.models import (
    InternalStrategicConfigBatch,
    InternalStrategicConfigBody,
    StrategicConfigBody,
)
from service.strategic_config.service import StrategicConfigService

OPS_PATH = "/api/ops/settings/strategic-config"
INTERNAL_PATH = "/internal/v1/restaurants/{restaurantId}/strategic-config"
OPS_CACHE_CONTROL = "private, no-cache"
INTERNAL_CACHE_CONTROL = "private, max-age=30, stale-if-error=600"
DEGRADED_HEADER = "X-Strategic-Config-Degraded"

ops_router = APIRouter(tags=["strategic-config"])
internal_router = APIRouter(tags=["internal"])


def _headers(resolved: ResolvedConfig, cache_control: str) -> dict[str, str]:
    headers = {"ETag": resolved.etag, "Cache-Control": cache_control}
    if resolved.degraded and resolved.degraded_reason:
        headers[DEGRADED_HEADER] = resolved.degraded_reason
    return headers


def _not_modified(resolved: ResolvedConfig, cache_control: str, if_none_match: str | None) -> Response | None:
    """304 when If-None-Match names the current representation, else None (send the body)."""
    if etag_matches(if_none_match, resolved.etag):
        return Response(status_code=304, headers=_headers(resolved, cache_control))
    return None


# async: FastAPI runs plain ``def`` dependencies in the thread pool (see service/auth.py)
async def get_strategic_config_service(request: Request) -> StrategicConfigService:
    service: StrategicConfigService = request.app.state.strategic_config  # built by create_app's lifespan
    return service


ConfigServiceDep = Annotated[StrategicConfigService, Depends(get_strategic_config_service)]


def _parse_uuid(raw: object, error: type[InvalidQuery] | type[InvalidBody], field: str) -> uuid.UUID:
    if raw is None or raw == "":
        raise error(f"{field} is required", details=[ErrorDetail(field=field, reason="required")])
    try:
        return parse_canonical_uuid(raw)
    except ValueError:
        raise error(f"{field} {UUID_REASON}", details=[ErrorDetail(field=field, reason=UUID_REASON)]) from None


# --- ops dashboard ---------------------------------------------------------------------------------


_CONFIG_EXAMPLE = {
    "restaurantId": "6f1c7a52-0c55-4f31-9a0e-55d8e2f1b4a0",
    "source": "db",
    "weights": {"scarcity": 30, "demandMultiplier": 1.25, "futureConflictPenalty": None},
    "updatedAt": "2025-10-31T09:12:44.123000+00:00",
    "scope": "restaurant",
    "effective": {"scarcity": 30, "demandMultiplier": 1.25, "futureConflictPenalty": 500},
    "degraded": False,
    "degradedReason": None,
    "version": 3,
}


@ops_router.get(
    OPS_PATH,
    operation_id="getStrategicConfig",
    response_model=StrategicConfigBody,
    responses={
        200: {"content": {"application/json": {"example": _CONFIG_EXAMPLE}}},
        304: {"description": "If-None-Match matched the current ETag"},
        **problem_responses(
            InvalidQuery, Unauthenticated, Forbidden, AuthUnavailable, DatabaseUnavailable,
            StrategicConfigStoreUnavailable,
        ),
    },
)
async def get_strategic_config(
    user: UserDep,
    session: SessionDep,
    service: ConfigServiceDep,
    restaurant_id: Annotated[CanonicalUuid, Query(alias="restaurantId")],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The strategic weights of one restaurant as the allocator resolves them. Any member role may read.
    Degraded schema → 200 with ``degraded: true``, ``source: "env"`` and ``X-Strategic-Config-Degraded``."""
    # authentication ran first (dependency), so anonymous callers learn nothing from validation
    rid = restaurant_id
    role = await membership_role(session, user.user_id, rid)  # type: ignore[arg-type]
    # hand the connection back before the resolver takes its own: holding one while waiting for a
    # second deadlocks the pool under load
    await session.commit()
    if role not in MEMBER_ROLES:
        raise Forbidden()
    resolved = await service.resolve(rid)
    if (not_modified := _not_modified(resolved, OPS_CACHE_CONTROL, if_none_match)) is not None:
        return not_modified
    return model_response(StrategicConfigBody.of(resolved), headers=_headers(resolved, OPS_CACHE_CONTROL))


def _parse_json(raw: bytes) -> Any:
    def _refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    if not raw.strip():
        raise InvalidBody("The request body is empty")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError):
        raise InvalidBody("The request body is not valid JSON") from None


# The top-level keys of a write; anything else is refused (docs/strategic-config.md §2.2)
WRITE_FIELDS = frozenset({"restaurantId", "weights"})


def _nullable_number(lo: int, hi: int) -> dict[str, Any]:
    return {"anyOf": [{"type": "number", "minimum": lo, "maximum": hi}, {"type": "null"}]}


# The body is parsed by hand (strict JSON numbers, 400 INVALID_BODY vs OUT_OF_RANGE), so its schema is
# documented here rather than inferred from a parameter.
_WRITE_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["restaurantId", "weights"],
                    "additionalProperties": False,
                    "properties": {
                        "restaurantId": UUID_JSON_SCHEMA,
                        "weights": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": [spec.field for spec in WEIGHT_COLUMNS if spec.required],
                            "properties": {
                                spec.field: (
                                    {"type": "number", "minimum": spec.bounds[0], "maximum": spec.bounds[1]}
                                    if spec.required
                                    else _nullable_number(*spec.bounds)
                                )
                                for spec in WEIGHT_COLUMNS
                            },
                        },
                    },
                },
                "example": {"restaurantId": "6f1c7a52-0c55-4f31-9a0e-55d8e2f1b4a0",
                            "weights": {"scarcity": 30, "demandMultiplier": 1.25}},
            }
        },
    }
}


async def _write(
    request: Request,
    user: UserDep,
    session: SessionDep,
    service: ConfigServiceDep,
    if_match: str | None,
) -> Response:
    payload = _parse_json(await request.body())
    if not isinstance(payload, dict):
        raise InvalidBody("The request body must be a JSON object")
    if unknown := sorted(set(payload) - WRITE_FIELDS):
        # a write replaces the row: a misspelt key would silently clear what it meant to set
        details = [ErrorDetail(field=key, reason="unknown field") for key in unknown]
        raise InvalidBody("; ".join(f"{d.field}: {d.reason}" for d in details), details=details)
    rid = _parse_uuid(payload.get("restaurantId"), InvalidBody, "restaurantId")
    if "weights" not in payload:
        raise InvalidBody("weights is required", details=[ErrorDetail(field="weights", reason="required")])
    weights, problems = validate_weights(payload["weights"])
    if problems:
        details = [ErrorDetail(field=p.field, reason=p.reason) for p in problems]
        message = "; ".join(f"{p.field}: {p.reason}" for p in problems)
        if any(p.kind == "type" for p in problems):
            raise InvalidBody(message, details=details)
        raise OutOfRange(message, details=details)
    assert weights is not None
    role = await membership_role(session, user.user_id, rid)  # type: ignore[arg-type]
    await session.commit()  # release the connection before the write takes its own (see GET)
    if role not in ADMIN_ROLES:
        raise Forbidden("Only owners and managers may change the strategic weights")
    resolved = await service.write(rid, weights, actor=user.user_id, if_match=if_match)
    return model_response(StrategicConfigBody.of(resolved), headers=_headers(resolved, OPS_CACHE_CONTROL))


_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"example": _CONFIG_EXAMPLE}}},
    **problem_responses(
        InvalidBody, OutOfRange, Unauthenticated, Forbidden, PreconditionFailed, AuthUnavailable,
        DatabaseUnavailable, StrategicConfigSchemaUnavailable,
    ),
}


@ops_router.post(
    OPS_PATH,
    operation_id="postStrategicConfig",
    response_model=StrategicConfigBody,
    responses=_WRITE_RESPONSES,
    openapi_extra=_WRITE_DOC,
)
async def post_strategic_config(
    request: Request,
    user: UserDep,
    session: SessionDep,
    service: ConfigServiceDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Create or replace (full replacement, not a patch) the restaurant's weights; owner/manager only.
    Returns the resolved config with the stored (column-rounded) values. ``If-Match`` → 412 on mismatch."""
    return await _write(request, user, session, service, if_match)


@ops_router.put(
    OPS_PATH,
    operation_id="putStrategicConfig",
    response_model=StrategicConfigBody,
    responses=_WRITE_RESPONSES,
    openapi_extra=_WRITE_DOC,
)
async def put_strategic_config(
    request: Request,
    user: UserDep,
    session: SessionDep,
    service: ConfigServiceDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Alias of POST with identical semantics (docs/strategic-config.md §2.5)."""
    return await _write(request, user, session, service, if_match)


# --- internal ----------------------------------------------------------------------------------------


@internal_router.get(
    INTERNAL_PATH,
    operation_id="getInternalStrategicConfig",
    response_model=InternalStrategicConfigBody,
    openapi_extra={
        "parameters": [
            {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "ETag of a cached copy: 304 while it is current"}
        ]
    },
    responses={
        304: {"description": "If-None-Match matched the current ETag"},
        **problem_responses(
            InvalidQuery, Unauthenticated, Forbidden, RestaurantNotFound, AuthUnavailable,
            StrategicConfigStoreUnavailable,
        ),
    },
)
async def get_internal_strategic_config(
    restaurantId: Annotated[CanonicalUuid, Path()],  # noqa: N803 - the path parameter keeps the API's spelling
    _service_caller: ServiceDep,
    service: ConfigServiceDep,
    request: Request,
) -> Response:
    """For other services: the same resolution as the dashboard and the allocator. Auth: ``Authorization:
    Bearer <JWT with role service_role | configured API key>``. 503 only when the store is down and no
    recent value is known — treat it as "abort", never as "use env defaults"."""
    rid = restaurantId
    resolved, exists = await service.lookup(rid)
    if not exists:
        raise RestaurantNotFound()
    # read off the request: a declared header parameter costs a measurable share of this hot path
    if_none_match = request.headers.get("if-none-match")
    if (not_modified := _not_modified(resolved, INTERNAL_CACHE_CONTROL, if_none_match)) is not None:
        return not_modified
    body = InternalStrategicConfigBody.at(resolved, datetime.now(UTC))
    return model_response(body, headers=_headers(resolved, INTERNAL_CACHE_CONTROL))


MAX_BATCH = 100  # ids per batch read (the query's minItems/maxItems in OpenAPI come from here)


@internal_router.get(
    "/internal/v1/strategic-configs",
    operation_id="listInternalStrategicConfigs",
    response_model=InternalStrategicConfigBatch,
    responses=problem_responses(
        InvalidQuery, Unauthenticated, Forbidden, AuthUnavailable, StrategicConfigStoreUnavailable
    ),
)
async def list_internal_strategic_configs(
    _service_caller: ServiceDep,
    service: ConfigServiceDep,
    restaurant_ids: Annotated[
        list[CanonicalUuid], Query(alias="restaurantId", min_length=1, max_length=MAX_BATCH)
    ],
) -> Response:
    """Batch form for reporting jobs: the same per-item objects as the single read, no ETag. Up to 100
    ids; unknown restaurants are listed in ``notFound`` instead of failing the batch."""
    ids = list(dict.fromkeys(restaurant_ids))
    resolved_at = datetime.now(UTC)
    items: list[InternalStrategicConfigBody] = []
    not_found: list[uuid.UUID] = []
    for rid in ids:
        resolved, exists = await service.lookup(rid)
        if not exists:
            not_found.append(rid)
            continue
        items.append(InternalStrategicConfigBody.at(resolved, resolved_at))
    batch = InternalStrategicConfigBatch(items=items, notFound=not_found)
    return model_response(batch, headers={"Cache-Control": "private, no-store"})
