"""Service configuration, read from the environment by pydantic-settings.

Most settings carry the ``CAPACITY_`` prefix; a few keep the names the replaced platform used
(``DATABASE_URL`` and the ``FEATURE_*`` flags) so existing deployments need no renaming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "capacity-service"


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

    # --- strategic config (strategic-config.md §3.1, §3.5, §6) ------------------------------------
    selector_scarcity_weight: float | None = Field(
        default=None,
        ge=0,
        le=1000,
        allow_inf_nan=False,
        validation_alias=AliasChoices("FEATURE_SELECTOR_SCARCITY_WEIGHT", "selector_scarcity_weight"),
        description="Env default scarcity weight for restaurants without a strategic_configs row (0–1000; "
        "unset: 22). Out of range refuses to start.",
    )
    selector_lookahead_penalty_weight: int = Field(
        default=500,
        ge=1,
        le=100_000,
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

    # --- embedded mode --------------------------------------------------------------------------
    load_demo_data: bool = Field(default=True, description="Seed a demo restaurant into a new embedded database.")


def get_settings() -> Settings:
    return Settings()
