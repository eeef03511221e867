"""The application factory."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from service.assign import routes as assign_tables
from service.auth import TokenVerifier
from service.day_view import routes as day_view_routes
from service.dburl import to_libpq_url, to_sqlalchemy_url
from service.errors import install_error_handlers
from service.health import routes as health
from service.health.readiness import ReadinessProbe
from service.http.hardening import install_http_hardening
from service.observability.setup import install_observability
from service.repository.database import build_engine, build_sessionmaker
from service.settings import Settings
from service.solver_output import silence_solver_banner
from service.strategic_config import routes as strategic_config
from service.strategic_config.listener import ChangeListener
from service.strategic_config.metrics import StrategicConfigMetrics
from service.strategic_config.service import StrategicConfigService

log = logging.getLogger("capacity.app")


def create_app(settings: Settings) -> FastAPI:
    if settings.database_url is None:
        raise ValueError("create_app needs settings.database_url (the CLI starts an embedded server when unset)")
    database_url = settings.database_url.get_secret_value()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        silence_solver_banner()  # before any request: HiGHS's banner would break the JSON log lines
        engine = build_engine(database_url, settings)
        app.state.engine = engine
        app.state.sessionmaker = build_sessionmaker(engine)
        app.state.readiness = ReadinessProbe(
            database_url, ttl_s=settings.readiness_cache_s, connect_timeout_s=settings.db_connect_timeout_s,
            probe_timeout_s=settings.readiness_probe_timeout_s,
        )
        report = await app.state.readiness.report()
        if report.ready:
            log.info("schema check: %s", report.status)
        else:
            log.error("schema check: NOT READY — %s", ", ".join(f.get("code", "?") for f in report.findings))
        config_service = StrategicConfigService(app.state.sessionmaker, settings, app.state.metrics)
        app.state.strategic_config = config_service
        await config_service.start()
        listener = None
        if settings.strategic_config_listen:
            listen_url = (
                settings.strategic_config_listen_url.get_secret_value()
                if settings.strategic_config_listen_url
                else database_url
            )
            listener = ChangeListener(
                to_libpq_url(to_sqlalchemy_url(listen_url, kind="async")),
                config_service,
                connect_timeout_s=settings.db_connect_timeout_s,
            )
            app.state.strategic_config_listener = listener
            await listener.start()
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            await config_service.stop()
            await app.state.readiness.close()
            await engine.dispose()

    app = FastAPI(
        title="capacity-service",
        version="0.1.0",
        summary="Table auto-assignment and strategic config for the restaurant-booking platform.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings)
    # FEATURE_* flags, validated by Settings (an invalid one refused to start before we got here)
    app.state.allocator_config = settings.allocator_config()
    install_error_handlers(app)
    install_http_hardening(app, settings)
    app.include_router(health.router)
    app.include_router(strategic_config.ops_router)
    app.include_router(strategic_config.internal_router)
    app.include_router(assign_tables.router)
    day_view_routes.register(app)
    # one registry per app: tests and the benchmark run several apps in one process
    app.state.metrics = StrategicConfigMetrics()
    # request ids, gzip, HTTP/pool/assign metrics and GET /metrics (multi-worker aware)
    install_observability(app, settings, app.state.metrics.registry)
    return app


def app_from_environment() -> FastAPI:
    """Factory for uvicorn worker processes (``serve --workers N``): settings come from the environment."""
    import sys

    from service.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(78) from None  # EX_CONFIG, as the CLI
    return create_app(settings)
