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

log = logging.getLogger("capacity.errors")

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """Body of every error response."""

    type: str = Field(default="about:blank")
    title: str
    status: int
    code: str = Field(description="Stable machine-readable error code")
    detail: str | None = None
    errors: list[dict[str, Any]] | None = Field(default=None, description="Field errors for validation failures")
    findings: list[dict[str, Any]] | None = Field(default=None, description="Schema findings (readiness)")


class ServiceError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        findings: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.findings = findings
        self.headers = headers or {}

    def problem(self) -> Problem:
        return Problem(
            title=self.title,
            status=self.status,
            code=self.code,
            detail=self.detail,
            errors=self.errors,
            findings=self.findings,
        )


class ValidationFailed(ServiceError):
    status = 400
    code = "VALIDATION_ERROR"
    title = "Request is invalid"


class Unauthenticated(ServiceError):
    status = 401
    code = "UNAUTHENTICATED"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(ServiceError):
    status = 403
    code = "FORBIDDEN"
    title = "Not allowed"


class NotFound(ServiceError):
    status = 404
    code = "NOT_FOUND"
    title = "Not found"


class Conflict(ServiceError):
    status = 409
    code = "CONFLICT"
    title = "Conflict"


class DatabaseUnavailable(ServiceError):
    status = 503
    code = "DATABASE_UNAVAILABLE"
    title = "Database unavailable"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": "5"})
        super().__init__(detail, **kw)


class NotReady(ServiceError):
    status = 503
    code = "NOT_READY"
    title = "Service not ready"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": "30"})
        super().__init__(detail, **kw)


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
        headers=err.headers,
    )


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
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return _render(ValidationFailed("One or more fields are invalid", errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}
        problem = Problem(title=str(exc.detail), status=exc.status_code, code=codes.get(exc.status_code, "HTTP_ERROR"))
        return JSONResponse(
            problem.model_dump(exclude_none=True), status_code=exc.status_code, media_type=PROBLEM_JSON
        )

    @app.exception_handler(DBAPIError)
    async def _dbapi(_: Request, exc: DBAPIError) -> JSONResponse:
        if is_connection_error(exc):
            log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else type(exc).__name__)
            return _render(DatabaseUnavailable("The database could not be reached; retry shortly"))
        log.exception("unexpected database error")
        return _render(ServiceError("Unexpected database error"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if is_connection_error(exc):
            return _render(DatabaseUnavailable("The database could not be reached; retry shortly"))
        log.exception("unhandled error")
        return _render(ServiceError())
