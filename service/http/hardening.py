"""Installs the cross-cutting HTTP layer on an app: one call from create_app."""

from __future__ import annotations

from fastapi import FastAPI

from service.http.catch_all import CatchAllMiddleware
from service.http.json_body import StrictJsonBodyMiddleware
from service.settings import Settings


def install_http_hardening(app: FastAPI, settings: Settings) -> None:
    """Order matters: Starlette puts the last added middleware outermost, so the catch-all wraps the body
    checks and everything below them (a fault anywhere becomes a problem+json, never a dropped socket)."""
    app.add_middleware(StrictJsonBodyMiddleware, max_body_bytes=settings.max_request_body_bytes)
    app.add_middleware(CatchAllMiddleware)
