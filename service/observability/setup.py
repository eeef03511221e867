"""Wiring for ``create_app``: one call adds compression, request ids, metrics and the /metrics route."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from starlette.middleware.gzip import GZipMiddleware

from service.observability.logging import register_secret
from service.observability.metrics import ServiceMetrics, render
from service.observability.middleware import ObservabilityMiddleware, refresh_pool_gauges
from service.settings import Settings

# Below this a response goes out as is (probes, config reads); above it gzip pays for itself. The
# 400-booking day's decision trace (5.7 MB of JSON) compresses to well under 1 MB (bench/gzip_trace.py).
GZIP_MINIMUM_BYTES = 1024
# level 6: nearly the ratio of 9 at a fraction of the CPU on multi-megabyte traces (bench/gzip_trace.py)
GZIP_LEVEL = 6


def _register_settings_secrets(settings: Settings) -> None:
    from sqlalchemy.engine import make_url

    for secret in (settings.jwt_secret, settings.internal_api_keys):
        if secret is not None:
            value = secret.get_secret_value()
            register_secret(value)
            for key in value.split(","):
                register_secret(key.strip())
    for url in (settings.database_url, settings.migration_database_url, settings.strategic_config_listen_url):
        if url is None:
            continue
        try:
            register_secret(make_url(url.get_secret_value()).password)
        except Exception:  # an unparsable URL fails elsewhere, with a clear message
            continue


def install_observability(app: FastAPI, settings: Settings, registry: CollectorRegistry) -> ServiceMetrics:
    _register_settings_secrets(settings)
    metrics = ServiceMetrics(registry)
    app.state.service_metrics = metrics
    # added first = inner: the metrics see the compressed response's status, compression sees the body
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=GZIP_LEVEL)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    if settings.metrics_enabled:
        router = APIRouter(tags=["metrics"])

        @router.get("/metrics", operation_id="getMetrics", include_in_schema=False)
        async def prometheus_metrics(request: Request) -> Response:
            refresh_pool_gauges(request.app, metrics)
            return Response(render(registry), media_type=CONTENT_TYPE_LATEST)

        app.include_router(router)
    return metrics
