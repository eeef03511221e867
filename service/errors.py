"""One family of errors, one HTTP mapping.

Every error the API can return is a :class:`ServiceError` subclass carrying its HTTP status and a stable,
machine-readable ``code``. One handler renders them as ``application/problem+json`` (RFC 9457) with that
code; routes list the classes they can raise in ``responses=`` via :func:`problem_responses`, so the
OpenAPI document names every failure. Database outages become 503 ``DATABASE_UNAVAILABLE`` with
``Retry-After`` — never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.http.allow import allow_header
from service.http.faults import cause_of, faults
from service.observability.context import current_request_id, request_id_headers

log = logging.getLogger("capacity.errors")

PROBLEM_JSON = "application/problem+json"


class ErrorDetail(BaseModel):
    field: str
    reason: str


class Problem(BaseModel):
    """Body of every error response: RFC 9457 members plus the shared extension members of the specs
    (docs/assign-tables.md §2.3): ``code`` to branch on, ``error``/``message`` for the original dashboard."""

    type: str = Field(default="about:blank")
    title: str
    status: int
    detail: str | None = None
    code: str = Field(description="Stable machine-readable error code")
    error: str = Field(description="The original platform's error sentence (compatibility)")
    message: str = Field(description="Human-readable message (read by the dashboard's fetch helper)")
    details: list[ErrorDetail] | None = Field(default=None, description="Field errors for validation failures")
    findings: list[dict[str, Any]] | None = Field(default=None, description="Schema findings (readiness)")
    requestId: str | None = Field(
        default_factory=current_request_id, description="The request's X-Request-ID (also in the log lines)"
    )


class ServiceError(Exception):
    """Base of every error the API returns; ``title`` doubles as the original's ``error`` sentence."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL"
    title: ClassVar[str] = "Internal server error"
    retry_after: ClassVar[int | None] = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        details: list[ErrorDetail] | None = None,
        findings: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.details = details
        self.findings = findings
        self.headers = dict(headers or {})
        if self.retry_after is not None:
            self.headers.setdefault("Retry-After", str(self.retry_after))

    def problem(self) -> Problem:
        return Problem(
            title=self.title,
            status=self.status,
            detail=self.detail,
            code=self.code,
            error=self.title,
            message=self.detail or self.title,
            details=self.details,
            findings=self.findings,
        )


class InvalidBody(ServiceError):
    status, code, title = 400, "INVALID_BODY", "Invalid request body"


class PayloadTooLarge(ServiceError):
    status, code, title = 413, "PAYLOAD_TOO_LARGE", "Request body too large"


class UnsupportedMediaType(ServiceError):
    status, code, title = 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"


class InvalidQuery(ServiceError):
    status, code, title = 400, "INVALID_QUERY", "Invalid query"


class OutOfRange(ServiceError):
    status, code, title = 400, "OUT_OF_RANGE", "Invalid request body"


class Unauthenticated(ServiceError):
    status, code, title = 401, "UNAUTHENTICATED", "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(ServiceError):
    status, code, title = 403, "FORBIDDEN", "Forbidden"


class RestaurantNotFound(ServiceError):
    status, code, title = 404, "RESTAURANT_NOT_FOUND", "Restaurant not found"


class AssignmentRunInProgress(ServiceError):
    """Another auto-assign run holds the (restaurant, date) lock; the caller retries, never waits."""

    status, code, title, retry_after = 409, "ASSIGNMENT_RUN_IN_PROGRESS", "Auto assign already running", 5


class PreconditionFailed(ServiceError):
    status, code, title = 412, "PRECONDITION_FAILED", "Precondition failed"


class ConfigVersionMismatch(PreconditionFailed):
    """A conditional write named a version that is no longer current. Raised by the application service
    with the current tag; the HTTP answer (412 with that ``ETag`` header) is decided here."""

    def __init__(self, detail: str | None = None, *, current_etag: str) -> None:
        super().__init__(detail, headers={"ETag": current_etag})
        self.current_etag = current_etag


class AuthUnavailable(ServiceError):
    status, code, title, retry_after = 503, "AUTH_UNAVAILABLE", "Unable to verify session", 30


class DatabaseUnavailable(ServiceError):
    status, code, title, retry_after = 503, "DATABASE_UNAVAILABLE", "Database unavailable", 5


class StrategicConfigSchemaUnavailable(ServiceError):
    """strategic_configs missing, a weight column missing, or legacy JSON only: writes need a migration."""

    status, code, title, retry_after = 503, "STRATEGIC_CONFIG_SCHEMA_UNAVAILABLE", "Unable to update strategic settings", 30


class StrategicConfigStoreUnavailable(ServiceError):
    """The config store failed and no last-known value is recent enough: callers must not guess."""

    status, code, title, retry_after = 503, "STRATEGIC_CONFIG_STORE_UNAVAILABLE", "Unable to load strategic settings", 30


class NotReady(ServiceError):
    status, code, title, retry_after = 503, "NOT_READY", "Service not ready", 30


def problem_responses(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entry for a route: each status with the codes it may carry."""
    by_status: dict[int, list[str]] = {}
    for err in errors:
        by_status.setdefault(err.status, []).append(err.code)
    return {
        status: {
            "model": Problem,
            "description": "Codes: " + ", ".join(sorted(set(codes))),
            "content": {PROBLEM_JSON: {}},
        }
        for status, codes in sorted(by_status.items())
    }


def _render(err: ServiceError) -> JSONResponse:
    return JSONResponse(
        err.problem().model_dump(exclude_none=True),
        status_code=err.status,
        media_type=PROBLEM_JSON,
        # the 500 handler runs outside the request-id middleware: carry the header here too
        headers={**err.headers, **request_id_headers()},
    )


def render_problem(err: ServiceError, *, close: bool = False) -> JSONResponse:
    """The response of ``err`` for code outside the exception handlers (ASGI middleware); ``close``
    when the request body was left unread, so the connection cannot carry another request."""
    response = _render(err)
    if close:
        response.headers["Connection"] = "close"
    return response


def is_connection_error(exc: BaseException) -> bool:
    """True when the database could not be reached or the connection broke."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (ConnectionError, OSError, TimeoutError))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return _render(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default is 422; the specs keep the original's 400 (the dashboard checks it).
        errors = exc.errors()
        details = [
            ErrorDetail(field=".".join(str(p) for p in e.get("loc", ())[1:]) or "body", reason=e.get("msg", ""))
            for e in errors
        ]
        in_body = any(e.get("loc", ("body",))[0] == "body" for e in errors)
        err_cls = InvalidBody if in_body else InvalidQuery
        return _render(err_cls("; ".join(f"{d.field}: {d.reason}" for d in details), details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}
        title = str(exc.detail)
        code = codes.get(exc.status_code, "HTTP_ERROR")
        problem = Problem(title=title, status=exc.status_code, code=code, error=title, message=title)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allow_header(request.scope)  # every route on the path, not just the first
        return JSONResponse(
            problem.model_dump(exclude_none=True), status_code=exc.status_code, media_type=PROBLEM_JSON,
            headers=headers,
        )

    @app.exception_handler(DBAPIError)
    async def _dbapi(_: Request, exc: DBAPIError) -> JSONResponse:
        if is_connection_error(exc):
            name = type(exc.orig).__name__ if exc.orig else type(exc).__name__
            # one line per cause and minute, not one per request of the outage
            faults.report(f"database_unavailable:{name}", f"database unavailable: {name}", level=logging.WARNING)
            return _render(DatabaseUnavailable("The database could not be reached; retry shortly"))
        faults.report(cause_of(exc), "unexpected database error", exc=exc)
        return _render(ServiceError("Unexpected database error"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Normally unreached: service/http/catch_all.py answers first (this handler's caller, Starlette's
        # ServerErrorMiddleware, re-raises afterwards and uvicorn then drops the connection).
        if is_connection_error(exc):
            return _render(DatabaseUnavailable("The database could not be reached; retry shortly"))
        faults.report(cause_of(exc), "unhandled error", exc=exc)
        return _render(ServiceError())
