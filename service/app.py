"""The application factory."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from service.api import health
from service.auth import TokenVerifier
from service.errors import install_error_handlers
from service.readiness import ReadinessProbe
from service.repository.database import build_engine, build_sessionmaker
from service.settings import Settings

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
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="capacity-service",
        version="0.1.0",
        summary="Table auto-assignment and strategic config for the restaurant-booking platform.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings)
    install_error_handlers(app)
    app.include_router(health.router)
    return app
