"""Pure ASGI middleware: request id in and out, one metrics sample per request, pool gauges kept fresh."""

from __future__ import annotations

import time
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability.context import REQUEST_ID_HEADER, accept_or_generate, set_request_id
from service.observability.metrics import UNMATCHED_ROUTE, ServiceMetrics, mark_worker_gone


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/internal/v1/restaurants/{restaurant_id}/…``), never the raw path."""
    route = scope.get("route")
    if route is None and "endpoint" in scope:
        # plain Starlette routes (FastAPI's /openapi.json, /docs) leave only the endpoint behind
        app = scope.get("app")
        route = next((r for r in getattr(app, "routes", ()) if getattr(r, "endpoint", None) is scope["endpoint"]), None)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def refresh_pool_gauges(app: Any, metrics: ServiceMetrics) -> None:
    engine = getattr(getattr(app, "state", None), "engine", None)
    if engine is not None:
        metrics.observe_pool(engine.pool)


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_or_generate(Headers(scope=scope).get(REQUEST_ID_HEADER))
        # deliberately not reset afterwards: the 500 handler outside this middleware still needs it,
        # and every request runs in a task (context) of its own
        set_request_id(request_id)
        started = time.perf_counter()
        status = 500  # an exception escaping the app becomes a 500 outside this middleware

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.observe_http(route_template(scope), scope["method"], status, time.perf_counter() - started)
            refresh_pool_gauges(scope.get("app"), self.metrics)

    def _lifespan_send(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                mark_worker_gone()
            await send(message)

        return lifespan_send
