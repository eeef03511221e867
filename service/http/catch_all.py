"""The last line of defence: any exception the routes did not map becomes a problem+json response.

Why a middleware and not ``@app.exception_handler(Exception)``: Starlette hands that handler to its
ServerErrorMiddleware, which sends the response and then *re-raises* the exception so the server logs it.
uvicorn sees an exception after the response started and closes the kept-alive connection without
``Connection: close`` — the client's next request on it fails — and logs a traceback per request. This
middleware sits inside ServerErrorMiddleware, answers, and returns normally; the fault is logged once per
cause (service/http/faults.py).
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import DatabaseUnavailable, ServiceError, is_connection_error, render_problem
from service.http.faults import cause_of, faults


class CatchAllMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                # half a response is on the wire: nothing honest can follow it on this connection
                faults.report(cause_of(exc), "error after the response started", exc=exc)
                raise
            err: ServiceError
            if is_connection_error(exc):
                faults.report(
                    f"database_unavailable:{type(exc).__qualname__}",
                    f"database unavailable: {type(exc).__name__}",
                    level=logging.WARNING,
                )
                err = DatabaseUnavailable("The database could not be reached; retry shortly")
            else:
                faults.report(cause_of(exc), f"unhandled error: {type(exc).__name__}", exc=exc)
                err = ServiceError()
            await render_problem(err)(scope, receive, send)
