"""Strategic config resolution: which row applies, what is effective, the ETag, write validation.

Ranges, defaults and clamping come from ``service.domain.weights``. Pure: no I/O, no framework imports. One resolution rule set serves the ops route, the internal endpoint
and the allocator, so what the dashboard shows is what the allocator uses (the seed 000 incident came from
two read paths with different rules).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, Protocol

from service.domain.weights import (
    DEFAULT_LOOKAHEAD_PENALTY,
    DEFAULT_SCARCITY,
    DEMAND_MULTIPLIER,
    DEMAND_MULTIPLIER_RANGE,
    FUTURE_CONFLICT_PENALTY,
    FUTURE_CONFLICT_PENALTY_RANGE,
    SCARCITY,
    SCARCITY_RANGE,
    WEIGHT_COLUMNS,
    DegradedReason,
    SchemaState,
    Scope,
    Source,
    StrategicWeights,
    clamp,
    finite_number,
)

# legacy_json_present (both shapes) reads fine: the numeric columns are authoritative (docs/strategic-config.md §3.5 item 1).
READABLE_SCHEMA_STATES: frozenset[str] = frozenset({"ok", "legacy_json_present"})
SCHEMA_DEGRADED_REASONS: tuple[str, ...] = ("table_missing", "columns_missing", "legacy_json_only")
ALL_DEGRADED_REASONS: tuple[str, ...] = (*SCHEMA_DEGRADED_REASONS, "store_unavailable")


def schema_state_from_columns(table_exists: bool, columns: set[str]) -> SchemaState:
    """Classify the strategic_configs shape from its column names (docs/strategic-config.md §3.5 item 1)."""
    if not table_exists:
        return "table_missing"
    # same rule as the doctor's probe (service/schema/doctor/strategic_probe.py strategic_config_state), so readiness and
    # the API never disagree: incomplete + legacy JSON = legacy_json_only (seed 000)
    complete = ({c.column for c in WEIGHT_COLUMNS} | {"updated_at"}) <= columns
    has_legacy = "weights" in columns
    if complete:
        return "legacy_json_present" if has_legacy else "ok"
    return "legacy_json_only" if has_legacy else "columns_missing"


def degraded_reason_for(state: SchemaState) -> DegradedReason | None:
    if state in READABLE_SCHEMA_STATES:
        return None
    return state  # type: ignore[return-value]


@dataclass(frozen=True)
class EnvDefaults:
    """Environment inputs of the resolution (validated at start-up by Settings)."""

    scarcity: float | None = None  # FEATURE_SELECTOR_SCARCITY_WEIGHT; None = unset
    lookahead_penalty: int = DEFAULT_LOOKAHEAD_PENALTY  # FEATURE_SELECTOR_LOOKAHEAD_PENALTY_WEIGHT


@dataclass(frozen=True)
class StoredConfig:
    """One strategic_configs row as read (values as stored, unclamped)."""

    scope: Literal["restaurant", "global"]
    scarcity: Decimal | None
    demand_multiplier: Decimal | None
    future_conflict_penalty: Decimal | None
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class Weights:
    scarcity: float
    demand_multiplier: float | None
    future_conflict_penalty: float | None


@dataclass(frozen=True)
class EffectiveWeights:
    """What the allocator applies: scarcity clamped; multiplier = override applied (None = demand
    profiles decide per booking); penalty = override, else the env lookahead weight."""

    scarcity: float
    demand_multiplier: float | None
    future_conflict_penalty: float
    demand_multiplier_source: Literal["strategic_override", "demand_profiles"]
    future_conflict_penalty_source: Literal["strategic_override", "env"]


@dataclass(frozen=True)
class ResolvedConfig:
    restaurant_id: uuid.UUID
    source: Source
    scope: Scope
    weights: Weights
    effective: EffectiveWeights
    updated_at: datetime | None
    version: int | None
    degraded: bool = False
    degraded_reason: DegradedReason | None = None
    etag: str = field(default="", compare=False)

    def as_degraded(self, reason: DegradedReason) -> ResolvedConfig:
        """The same values, marked degraded (last-known-good served while the store is down)."""
        return _with_etag(
            ResolvedConfig(
                restaurant_id=self.restaurant_id,
                source=self.source,
                scope=self.scope,
                weights=self.weights,
                effective=self.effective,
                updated_at=self.updated_at,
                version=self.version,
                degraded=True,
                degraded_reason=reason,
            )
        )


class StrategicConfigResolver(Protocol):
    """What the allocator depends on: one resolution per run, same TTL/invalidation/degraded rules as
    the HTTP APIs. Raises StrategicConfigStoreUnavailable (503) when it must not guess."""

    async def resolve(self, restaurant_id: uuid.UUID) -> ResolvedConfig: ...


def round_to_scale(value: float, scale: int) -> Decimal:
    """Round like numeric(p, scale) does (half away from zero)."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)


def env_scarcity(env: EnvDefaults) -> float:
    return clamp(env.scarcity, SCARCITY_RANGE, DEFAULT_SCARCITY)


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _effective(
    scarcity: float, multiplier: float | None, penalty: float | None, env: EnvDefaults
) -> EffectiveWeights:
    applied_multiplier: float | None = None
    if multiplier is not None:
        clamped = clamp(multiplier, DEMAND_MULTIPLIER_RANGE, 1.0)
        # a non-positive multiplier is treated as 1, as the original treats demand-profile values (docs/strategic-config.md §5.4)
        applied_multiplier = clamped if clamped > 0 else 1.0
    applied_penalty = (
        clamp(penalty, FUTURE_CONFLICT_PENALTY_RANGE, float(env.lookahead_penalty))
        if penalty is not None
        else float(env.lookahead_penalty)
    )
    return EffectiveWeights(
        scarcity=scarcity,
        demand_multiplier=applied_multiplier,
        future_conflict_penalty=applied_penalty,
        demand_multiplier_source="strategic_override"
        if applied_multiplier is not None
        else "demand_profiles",
        future_conflict_penalty_source="strategic_override" if penalty is not None else "env",
    )


def resolve(
    restaurant_id: uuid.UUID,
    row: StoredConfig | None,
    env: EnvDefaults,
    schema_state: SchemaState = "ok",
) -> ResolvedConfig:
    """Whole-row selection already happened (restaurant row, else global, else none); derive the rest."""
    reason = degraded_reason_for(schema_state)
    if reason is not None or row is None:
        scarcity = env_scarcity(env)
        resolved = ResolvedConfig(
            restaurant_id=restaurant_id,
            source="env",
            scope="default",
            weights=Weights(scarcity=scarcity, demand_multiplier=None, future_conflict_penalty=None),
            effective=_effective(scarcity, None, None, env),
            updated_at=None,
            version=None,
            degraded=reason is not None,
            degraded_reason=reason,
        )
        return _with_etag(resolved, env)
    stored_scarcity = _num(row.scarcity)
    # NOT NULL prevents a NULL scarcity; should one appear anyway, the env value applies before 22.
    effective_scarcity = clamp(
        stored_scarcity if stored_scarcity is not None else env.scarcity,
        SCARCITY_RANGE,
        DEFAULT_SCARCITY,
    )
    multiplier = _num(row.demand_multiplier)
    penalty = _num(row.future_conflict_penalty)
    resolved = ResolvedConfig(
        restaurant_id=restaurant_id,
        source="db",
        scope=row.scope,
        # the ops API shows stored values unclamped (docs/strategic-config.md §2.1); `effective` shows what is applied
        weights=Weights(
            scarcity=stored_scarcity if stored_scarcity is not None else effective_scarcity,
            demand_multiplier=multiplier,
            future_conflict_penalty=penalty,
        ),
        effective=_effective(effective_scarcity, multiplier, penalty, env),
        updated_at=row.updated_at,
        version=row.version,
    )
    return _with_etag(resolved, env)


def _with_etag(resolved: ResolvedConfig, env: EnvDefaults | None = None) -> ResolvedConfig:
    object.__setattr__(resolved, "etag", etag_for(resolved, env))
    return resolved


def etag_for(resolved: ResolvedConfig, env: EnvDefaults | None = None) -> str:
    """Strong ETag: scope + version for a row (plus a short digest of the timestamp, so a deleted and
    re-created row restarting at version 1 does not reuse an old tag), ``default-<hash>`` without one.
    Degraded answers get their own tag: their body differs."""
    suffix = f"-{resolved.degraded_reason}" if resolved.degraded else ""
    if resolved.scope == "default":
        basis = f"{resolved.weights.scarcity}|{resolved.effective.future_conflict_penalty}|{suffix}"
        return f'"default-{hashlib.sha256(basis.encode()).hexdigest()[:16]}"'
    stamp = resolved.updated_at.isoformat() if resolved.updated_at else ""
    digest = hashlib.sha256(f"{resolved.restaurant_id}|{stamp}".encode()).hexdigest()[:8]
    return f'"{resolved.scope}-{resolved.version}-{digest}{suffix}"'


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match / If-Match list semantics (``*`` matches any current representation)."""
    if not header:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


# --- write validation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsInput:
    """A validated write (full replacement): values rounded to the column scales."""

    scarcity: Decimal
    demand_multiplier: Decimal | None
    future_conflict_penalty: Decimal | None


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str
    kind: Literal["type", "range"]


def _is_json_number(value: Any) -> bool:
    # bools are ints in Python but not numbers in JSON; strings like "22" are refused (docs/strategic-config.md §2.2)
    # (a 310-digit integer overflows float(): not finite either)
    return isinstance(value, (int, float)) and finite_number(value) is not None


def validate_weights(weights: Any) -> tuple[WeightsInput | None, list[FieldProblem]]:
    """Validate the ``weights`` object of a write. Type problems win over range problems."""
    problems: list[FieldProblem] = []
    if not isinstance(weights, dict):
        return None, [FieldProblem("weights", "must be an object", "type")]
    # a write replaces the row, so a misspelt key would clear the value it meant to set: refuse it
    known = {spec.field for spec in WEIGHT_COLUMNS}
    problems += [FieldProblem(f"weights.{key}", "unknown field", "type") for key in sorted(weights, key=str)
                 if key not in known]
    values: dict[str, float | None] = {}
    for spec in WEIGHT_COLUMNS:
        lo, hi = spec.bounds
        path = f"weights.{spec.field}"
        value = weights.get(spec.field)
        if value is None:
            if spec.required:
                problems.append(FieldProblem(path, "required", "type"))
            values[spec.field] = None
            continue
        if not _is_json_number(value):
            problems.append(FieldProblem(path, "must be a finite number", "type"))
            continue
        if not lo <= value <= hi:
            problems.append(FieldProblem(path, f"must be between {lo} and {hi}", "range"))
            continue
        values[spec.field] = float(value)
    if problems:
        return None, problems
    scarcity = values[SCARCITY.field]
    assert scarcity is not None
    multiplier = values[DEMAND_MULTIPLIER.field]
    penalty = values[FUTURE_CONFLICT_PENALTY.field]
    return (
        WeightsInput(
            scarcity=round_to_scale(scarcity, SCARCITY.scale),
            demand_multiplier=None
            if multiplier is None
            else round_to_scale(multiplier, DEMAND_MULTIPLIER.scale),
            future_conflict_penalty=None
            if penalty is None
            else round_to_scale(penalty, FUTURE_CONFLICT_PENALTY.scale),
        ),
        [],
    )


# --- the allocator's view (service/domain/weights.py) ----------------------------------------------


def to_strategic_weights(resolved: ResolvedConfig) -> StrategicWeights:
    """The allocator's snapshot type. Values are the row's (clamped by ``normalised``); a missing
    override stays None so the allocator applies demand profiles / the env lookahead weight itself."""
    if resolved.scope == "default":
        scarcity, multiplier, penalty = resolved.effective.scarcity, None, None
    else:
        scarcity = resolved.effective.scarcity
        multiplier = resolved.weights.demand_multiplier
        penalty = resolved.weights.future_conflict_penalty
    return StrategicWeights(
        scarcity=scarcity,
        demand_multiplier_override=multiplier,
        future_conflict_penalty=penalty,
        source=resolved.source,
        scope=resolved.scope,
        degraded=resolved.degraded,
        degraded_reason=resolved.degraded_reason,
        version=None if resolved.version is None else str(resolved.version),
    ).normalised()


class ResolvedWeightsProvider:
    """``StrategicWeightsProvider`` over snapshots resolved before the run: the allocator's provider is
    synchronous and must use one snapshot for every booking of a run (docs/strategic-config.md §3.6), so the caller resolves
    asynchronously first (``await ResolvedWeightsProvider.load(resolver, ids)``) and hands this over."""

    def __init__(self, snapshots: dict[str, StrategicWeights]) -> None:
        self._snapshots = dict(snapshots)

    @classmethod
    async def load(
        cls, resolver: StrategicConfigResolver, restaurant_ids: list[uuid.UUID] | set[uuid.UUID]
    ) -> ResolvedWeightsProvider:
        snapshots = {}
        for rid in restaurant_ids:
            snapshots[str(rid)] = to_strategic_weights(await resolver.resolve(rid))
        return cls(snapshots)

    def resolve(self, restaurant_id: str) -> StrategicWeights:
        try:
            return self._snapshots[str(restaurant_id)]
        except KeyError:
            # resolving lazily here would need I/O inside the run: a programming error, not a fallback
            raise LookupError(
                f"strategic weights for {restaurant_id} were not resolved before the run"
            ) from None
