"""The application factory."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from service.api import assign_tables, health, strategic_config
from service.auth import TokenVerifier
from service.day_view import routes as day_view_routes
from service.dburl import to_libpq_url, to_sqlalchemy_url
from service.domain.model import AllocatorConfig
from service.errors import install_error_handlers
from service.readiness import ReadinessProbe
from service.repository.database import build_engine, build_sessionmaker
from service.settings import Settings
from service.strategic_config_cache import ChangeListener, StrategicConfigMetrics, StrategicConfigService

log = logging.getLogger("capacity.app")


def create_app(settings: Settings) -> FastAPI:
    if settings.database_url is None:
        raise ValueError("create_app needs settings.database_url (the CLI starts an embedded server when unset)")
    database_url = settings.database_url.get_secret_value()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine(database_url, settings)
        app.state.engine = engine
        app.state.sessionmaker = build_sessionmaker(engine)
        app.state.readiness = ReadinessProbe(
            database_url, ttl_s=settings.readiness_cache_s, connect_timeout_s=settings.db_connect_timeout_s
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
            await engine.dispose()

    app = FastAPI(
        title="capacity-service",
        version="0.1.0",
        summary="Table auto-assignment and strategic config for the restaurant-booking platform.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings)
    # FEATURE_* flags read once; an out-of-range value refuses to start (assign-tables.md §5)
    app.state.allocator_config = AllocatorConfig.from_env()
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(strategic_config.ops_router)
    app.include_router(strategic_config.internal_router)
    app.include_router(assign_tables.router)
    day_view_routes.register(app)
    # one registry per app: tests and the benchmark run several apps in one process
    app.state.metrics = StrategicConfigMetrics()
    if settings.metrics_enabled:
        app.include_router(strategic_config.metrics_router)
    return app


def app_from_environment() -> FastAPI:
    """Factory for uvicorn worker processes (``serve --workers N``): settings come from the environment."""
    from service.settings import get_settings

    return create_app(get_settings())
