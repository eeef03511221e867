"""Installs the cross-cutting HTTP layer on an app: one call from create_app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.errors import PayloadTooLarge, UnsupportedMediaType, problem_responses
from service.http.catch_all import CatchAllMiddleware
from service.http.json_body import StrictJsonBodyMiddleware
from service.settings import Settings


def install_http_hardening(app: FastAPI, settings: Settings) -> None:
    """Order matters: Starlette puts the last added middleware outermost, so the catch-all wraps the body
    checks and everything below them (a fault anywhere becomes a problem+json, never a dropped socket)."""
    app.add_middleware(StrictJsonBodyMiddleware, max_body_bytes=settings.max_request_body_bytes)
    app.add_middleware(CatchAllMiddleware)
    _document_body_rules(app)


def _document_body_rules(app: FastAPI) -> None:
    """Every operation with a request body may answer 413 and 415 (docs/http.md): say so in the OpenAPI
    document, derived from the same error classes, so clients and the fuzzer know the statuses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        problem = {"$ref": "#/components/schemas/Problem"}
        for status, entry in problem_responses(PayloadTooLarge, UnsupportedMediaType).items():
            rendered = {"description": entry["description"],
                        "content": {media: {"schema": problem} for media in entry["content"]}}
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    if isinstance(operation, dict) and "requestBody" in operation:
                        operation.setdefault("responses", {}).setdefault(str(status), rendered)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
