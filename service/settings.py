"""Service configuration: the only object that reads the environment (pydantic-settings).

Most settings carry the ``CAPACITY_`` prefix; a few keep the names the replaced platform used
(``DATABASE_URL`` and the ``FEATURE_*`` flags) so existing deployments need no renaming. Every value is
validated at start-up: an invalid one refuses to start with one line naming the variable and what it
accepts (:func:`load_settings`), never a clamp or a silent default (docs/operations.md §2). The allocator's
``FEATURE_*`` flags become an :class:`AllocatorConfig` in :meth:`Settings.allocator_config`; their ranges
and defaults come from the domain (``AllocatorConfig``, ``service.domain.weights``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.dburl import InvalidDatabaseUrl, to_sqlalchemy_url
from service.domain.allocator.model import (
    ADJACENCY_MIN_PARTY_SIZE_RANGE,
    K_MAX_RANGE,
    LOOKAHEAD_WINDOW_MINUTES_RANGE,
    MAX_COMBINATION_EVALUATIONS_RANGE,
    MAX_PLANS_PER_SLACK_RANGE,
    AdjacencyMode,
    AllocatorConfig,
)
from service.domain.weights import DEFAULT_LOOKAHEAD_PENALTY, LOOKAHEAD_PENALTY_RANGE, SCARCITY_RANGE

_ALLOCATOR_DEFAULTS = AllocatorConfig()


def _flag(name: str, description: str, **kw: Any) -> Any:
    """A FEATURE_* variable (the replaced platform's names, kept as they are)."""
    return Field(validation_alias=AliasChoices(name, name.lower()), description=description, **kw)


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "capacity-service"


_FLAG_FIELDS = (
    "selector_scarcity_weight",
    "selector_lookahead_penalty_weight",
    "allocator_merges_enabled",
    "combination_planner",
    "allocator_k_max",
    "allocator_require_adjacency",
    "allocator_adjacency_min_party_size",
    "allocator_adjacency_mode",
    "selector_max_plans_per_slack",
    "selector_max_combination_evaluations",
    "selector_lookahead",
    "selector_lookahead_window_minutes",
    "planner_time_pruning",
    "allocator_service_fail_hard",
    "holds_enabled",
    "holds_strict_conflicts",
    "adjacency_query_undirected",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAPACITY_", env_file=None, extra="ignore", populate_by_name=True)

    # --- database -------------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "CAPACITY_DATABASE_URL"),
        description="postgresql://user:password@host:port/db. Unset: `serve` runs an embedded PostgreSQL.",
    )
    migration_database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MIGRATION_DATABASE_URL", "CAPACITY_MIGRATION_DATABASE_URL"),
        description="Optional owner/admin login for migrate, preflight and ensure-capacity-rules; "
        "defaults to DATABASE_URL. Lets the API run as the non-owner role capacity_app.",
    )
    data_dir: Path = Field(default_factory=default_data_dir, description="Embedded PostgreSQL data lives here.")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_connect_timeout_s: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0, description="Per-statement limit for API queries.")
    db_behind_pooler: bool = Field(
        default=False,
        description="Set when connecting through PgBouncer/Supabase pooler in transaction mode: "
        "disables asyncpg's prepared-statement cache.",
    )

    assign_run_deadline_s: float = Field(
        default=20.0, ge=1, le=300,
        description="Overall deadline of an assign-tables run: bookings not committed by then are skipped "
        "with RUN_DEADLINE_EXCEEDED (docs/assign-tables.md §8.6).",
    )

    environment: str = Field(
        default="production",
        min_length=1,
        description="Deployment environment: which feature_flag_overrides rows apply (their environment "
        "column, e.g. production or staging).",
    )

    # --- migrations -----------------------------------------------------------------------------
    migrate_lock_timeout: str = Field(default="5s", pattern=r"^\d+(ms|s|min)?$")
    migrate_max_locked_rows: int = Field(default=200_000, ge=0)

    # --- HTTP -----------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes for `serve`.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one JSON object per line (uvicorn and the service alike); text: for a terminal."
    )
    graceful_shutdown_s: float = Field(
        default=20.0, gt=0, le=600,
        description="On SIGTERM: how long in-flight requests may take to finish before they are cancelled.",
    )
    readiness_cache_s: float = Field(
        default=60.0, ge=0, description="How long the schema verdict of /readyz is reused (reachability is "
        "probed on every call)."
    )
    readiness_probe_timeout_s: float = Field(
        default=1.0, gt=0, le=30, description="Bound of the per-call database probe of /readyz (SELECT 1)."
    )
    max_request_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=64 * 1_048_576, description="Largest request body accepted (413 above)."
    )

    # --- auth -----------------------------------------------------------------------------------
    jwt_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CAPACITY_JWT_SECRET", "SUPABASE_JWT_SECRET"),
        description="HS256 shared secret for user and service JWTs (Supabase's JWT secret).",
    )
    jwks_url: str | None = Field(default=None, description="JWKS endpoint for RS256/ES256 tokens (optional).")
    jwt_audience: str = Field(default="authenticated", description="Required `aud` of user tokens.")
    jwt_issuer: str | None = Field(default=None, description="Required `iss`, if set.")
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)
    internal_api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated static API keys accepted as service credentials on /internal/* routes.",
    )

    # --- strategic config (docs/strategic-config.md §3.1, §3.4, §3.5) ------------------------------------
    selector_scarcity_weight: float | None = Field(
        default=None,
        ge=SCARCITY_RANGE[0],
        le=SCARCITY_RANGE[1],
        allow_inf_nan=False,
        validation_alias=AliasChoices("FEATURE_SELECTOR_SCARCITY_WEIGHT", "selector_scarcity_weight"),
        description="Env default scarcity weight for restaurants without a strategic_configs row (0–1000; "
        "unset: 22). Out of range refuses to start.",
    )
    selector_lookahead_penalty_weight: int = Field(
        default=DEFAULT_LOOKAHEAD_PENALTY,
        ge=LOOKAHEAD_PENALTY_RANGE[0],
        le=LOOKAHEAD_PENALTY_RANGE[1],
        validation_alias=AliasChoices(
            "FEATURE_SELECTOR_LOOKAHEAD_PENALTY_WEIGHT", "selector_lookahead_penalty_weight"
        ),
        description="Lookahead penalty per blocked future booking when no strategic override is set.",
    )
    strategic_config_cache_ttl_s: float = Field(
        default=30.0, ge=0, le=3600, description="In-process TTL of resolved strategic configs (upper bound on "
        "staleness when a change notification is missed)."
    )
    strategic_config_last_known_good_s: float = Field(
        default=600.0, ge=0, le=86_400,
        description="How old a cached config may be and still be served (degraded) while the store is down.",
    )
    strategic_config_probe_interval_s: float = Field(
        default=60.0, gt=0, le=3600, description="How often the strategic_configs schema probe re-runs."
    )
    strategic_config_listen: bool = Field(
        default=True,
        description="LISTEN on strategic_config_changed so a write on any replica invalidates this one.",
    )
    strategic_config_listen_url: SecretStr | None = Field(
        default=None,
        description="Direct (session-mode) URL for the LISTEN connection when DATABASE_URL goes through a "
        "transaction-mode pooler, which does not deliver notifications. Default: DATABASE_URL.",
    )
    metrics_enabled: bool = Field(default=True, description="Expose GET /metrics (Prometheus text format).")

    # --- allocator flags (docs/assign-tables.md §5) ------------------------------------------------
    allocator_merges_enabled: bool = _flag(
        "FEATURE_ALLOCATOR_MERGES_ENABLED", "Allow merged (multi-table) plans.",
        default=_ALLOCATOR_DEFAULTS.merges_enabled,
    )
    combination_planner: bool | None = _flag(
        "FEATURE_COMBINATION_PLANNER", "Enumerate table combinations; unset: follows the merges flag.",
        default=None,
    )
    allocator_k_max: int = _flag(
        "FEATURE_ALLOCATOR_K_MAX", "Most tables in one merged plan.",
        default=_ALLOCATOR_DEFAULTS.k_max, ge=K_MAX_RANGE[0], le=K_MAX_RANGE[1],
    )
    allocator_require_adjacency: bool = _flag(
        "FEATURE_ALLOCATOR_REQUIRE_ADJACENCY", "Merged tables must be adjacent.",
        default=_ALLOCATOR_DEFAULTS.require_adjacency,
    )
    allocator_adjacency_min_party_size: int | None = _flag(
        "FEATURE_ALLOCATOR_ADJACENCY_MIN_PARTY_SIZE",
        "Adjacency is required only from this party size on; unset: always.",
        default=_ALLOCATOR_DEFAULTS.adjacency_min_party_size,
        ge=ADJACENCY_MIN_PARTY_SIZE_RANGE[0], le=ADJACENCY_MIN_PARTY_SIZE_RANGE[1],
    )
    allocator_adjacency_mode: AdjacencyMode = _flag(
        "FEATURE_ALLOCATOR_ADJACENCY_MODE", "How merged tables must touch.",
        default=_ALLOCATOR_DEFAULTS.adjacency_mode,
    )
    selector_max_plans_per_slack: int = _flag(
        "FEATURE_SELECTOR_MAX_PLANS_PER_SLACK", "Candidate plans kept per slack value.",
        default=_ALLOCATOR_DEFAULTS.max_plans_per_slack,
        ge=MAX_PLANS_PER_SLACK_RANGE[0], le=MAX_PLANS_PER_SLACK_RANGE[1],
    )
    selector_max_combination_evaluations: int = _flag(
        "FEATURE_SELECTOR_MAX_COMBINATION_EVALUATIONS", "Combinations scored per booking.",
        default=_ALLOCATOR_DEFAULTS.max_combination_evaluations,
        ge=MAX_COMBINATION_EVALUATIONS_RANGE[0], le=MAX_COMBINATION_EVALUATIONS_RANGE[1],
    )
    selector_lookahead: bool = _flag(
        "FEATURE_SELECTOR_LOOKAHEAD", "Penalise plans that block later bookings.",
        default=_ALLOCATOR_DEFAULTS.lookahead_enabled,
    )
    selector_lookahead_window_minutes: int = _flag(
        "FEATURE_SELECTOR_LOOKAHEAD_WINDOW_MINUTES", "How far ahead the lookahead looks.",
        default=_ALLOCATOR_DEFAULTS.lookahead_window_minutes,
        ge=LOOKAHEAD_WINDOW_MINUTES_RANGE[0], le=LOOKAHEAD_WINDOW_MINUTES_RANGE[1],
    )
    planner_time_pruning: bool = _flag(
        "FEATURE_PLANNER_TIME_PRUNING_ENABLED", "Only time-free tables are candidates.",
        default=_ALLOCATOR_DEFAULTS.time_pruning,
    )
    allocator_service_fail_hard: bool = _flag(
        "FEATURE_ALLOCATOR_SERVICE_FAIL_HARD", "A booking outside every service period is skipped.",
        default=_ALLOCATOR_DEFAULTS.service_fail_hard,
    )
    holds_enabled: bool = _flag(
        "FEATURE_HOLDS_ENABLED", "Active table holds block tables.", default=_ALLOCATOR_DEFAULTS.holds_enabled,
    )
    holds_strict_conflicts: bool = _flag(
        "FEATURE_HOLDS_STRICT_CONFLICTS_ENABLED", "A hold conflict is a skip, not a lower score.",
        default=_ALLOCATOR_DEFAULTS.holds_strict_conflicts,
    )
    adjacency_query_undirected: bool = _flag(
        "FEATURE_ADJACENCY_QUERY_UNDIRECTED", "Adjacency rows count in both directions.",
        default=_ALLOCATOR_DEFAULTS.adjacency_undirected,
    )

    @field_validator(*_FLAG_FIELDS, mode="before")
    @classmethod
    def _empty_flag_is_unset(cls, value: Any) -> Any:
        # the replaced platform read FEATURE_X= as "not set"; kept for the FEATURE_* flags only (an empty
        # DATABASE_URL must not quietly mean "start an embedded database")
        if isinstance(value, str) and not value.strip():
            raise PydanticUseDefault()
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_any_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url", "migration_database_url", "strategic_config_listen_url")
    @classmethod
    def _postgresql_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                to_sqlalchemy_url(value.get_secret_value(), kind="async")
            except InvalidDatabaseUrl:
                # the URL itself is never echoed: it may carry a password
                raise ValueError("must be a postgresql:// URL") from None
        return value

    def allocator_config(self) -> AllocatorConfig:
        """The allocator's flags, as validated here (create_app builds it once)."""
        merges = self.allocator_merges_enabled
        return dataclasses.replace(
            _ALLOCATOR_DEFAULTS,
            combination_planner=merges if self.combination_planner is None else self.combination_planner,
            merges_enabled=merges,
            k_max=self.allocator_k_max,
            require_adjacency=self.allocator_require_adjacency,
            adjacency_min_party_size=self.allocator_adjacency_min_party_size,
            adjacency_mode=self.allocator_adjacency_mode,
            max_plans_per_slack=self.selector_max_plans_per_slack,
            max_combination_evaluations=self.selector_max_combination_evaluations,
            lookahead_enabled=self.selector_lookahead,
            lookahead_window_minutes=self.selector_lookahead_window_minutes,
            lookahead_penalty_weight=self.selector_lookahead_penalty_weight,
            time_pruning=self.planner_time_pruning,
            service_fail_hard=self.allocator_service_fail_hard,
            holds_enabled=self.holds_enabled,
            holds_strict_conflicts=self.holds_strict_conflicts,
            adjacency_undirected=self.adjacency_query_undirected,
        )

    # --- embedded mode --------------------------------------------------------------------------
    load_demo_data: bool = Field(default=True, description="Seed a demo restaurant into a new embedded database.")

    @model_validator(mode="after")
    def _listen_needs_a_session_connection(self) -> Settings:
        # A transaction-mode pooler hands each transaction to any server connection: LISTEN would be
        # registered on a connection we no longer hold and notifications would never arrive.
        if self.db_behind_pooler and self.strategic_config_listen and self.strategic_config_listen_url is None:
            raise ValueError(
                "CAPACITY_DB_BEHIND_POOLER=true needs CAPACITY_STRATEGIC_CONFIG_LISTEN_URL (a direct or "
                "session-mode URL for LISTEN/NOTIFY) or CAPACITY_STRATEGIC_CONFIG_LISTEN=false (changes on "
                "other replicas then arrive within CAPACITY_STRATEGIC_CONFIG_CACHE_TTL_S)"
            )
        return self


class SettingsError(Exception):
    """An invalid setting: the message is one line per variable, ready for stderr."""


def variable_name(field: str) -> str:
    """The environment variable an operator sets for ``field`` (its first alias, else the prefixed name)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and alias.choices and isinstance(alias.choices[0], str):
        return alias.choices[0]
    if isinstance(alias, str):
        return alias
    return f"CAPACITY_{field.upper()}"


def _field_of(name: str) -> str:
    """The field behind a name in a validation error (pydantic reports an alias when one was used)."""
    if name in Settings.model_fields:
        return name
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and name in alias.choices:
            return field
    return name


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def accepted_values(info: FieldInfo) -> str:
    """What a field accepts, in an operator's words ("an integer 1–5", "one of a, b", ...)."""
    annotation = _unwrap_optional(info.annotation)
    bounds = {type(m).__name__: m for m in info.metadata}
    low = next((getattr(bounds[k], k.lower()) for k in ("Ge", "Gt") if k in bounds), None)
    high = next((getattr(bounds[k], k.lower()) for k in ("Le", "Lt") if k in bounds), None)
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    if annotation is bool:
        return "true or false (also 1/0, yes/no, on/off)"
    if annotation is SecretStr and info.description and "postgresql://" in info.description:
        return "a postgresql:// URL"
    kind = {int: "an integer", float: "a number"}.get(annotation)
    if kind is None:
        return info.description or "a valid value"
    if low is not None and high is not None:
        return f"{kind} {low}–{high}"
    if low is not None:
        return f"{kind} ≥ {low}" if "Ge" in bounds else f"{kind} > {low}"
    return kind


def describe_error(exc: ValidationError) -> str:
    """One line per invalid variable: its name, the value given (never a secret's) and what it accepts."""
    lines = []
    for error in exc.errors():
        if not error["loc"]:  # a rule across settings (a model validator): its message names the variables
            lines.append("invalid configuration: " + str(error["msg"]).removeprefix("Value error, "))
            continue
        located = str(error["loc"][0])
        field = _field_of(located)
        info = Settings.model_fields.get(field)
        name = located if located != field else variable_name(field)
        given = error.get("input")
        secret = info is not None and _unwrap_optional(info.annotation) is SecretStr
        shown = "" if secret or not isinstance(given, str | int | float) else f"={given}"
        accepted = accepted_values(info) if info is not None else error["msg"]
        lines.append(f"invalid setting {name}{shown}: expected {accepted}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; :class:`SettingsError` with :func:`describe_error`'s text when a
    value is invalid (the CLI prints it and exits 2, no traceback)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_error(exc)) from None


def get_settings() -> Settings:
    return load_settings()
