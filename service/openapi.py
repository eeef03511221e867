"""The committed OpenAPI document (openapi/openapi.json) is generated from the app itself."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from service.app import create_app
from service.settings import Settings


def openapi_document() -> dict[str, Any]:
    # No connection is made: the lifespan (engine, readiness) does not run for schema generation.
    settings = Settings(database_url=SecretStr("postgresql://openapi@localhost/openapi"))
    return create_app(settings).openapi()
