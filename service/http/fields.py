"""Field types every request shares, defined once: the body models, the query and the path parameters all
use these, so the rule and its OpenAPI description cannot drift apart.

- :data:`CanonicalUuid`: only the canonical spelling, ASCII ``8-4-4-4-12`` hex digits (either case) with
  hyphens. ``uuid.UUID`` and pydantic's lax UUID also take braces, ``urn:uuid:``, bare hex, non-ASCII
  digits and surrounding spaces; two spellings of one id would make two cache keys, ETags and log lines.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

# ASCII classes spelled out: ``\d`` / ``\w`` would match other scripts' digits in Python
CANONICAL_UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_CANONICAL_UUID = re.compile(CANONICAL_UUID_PATTERN.strip("^$"))
UUID_REASON = "must be a UUID in canonical form (8-4-4-4-12 hex digits)"
UUID_JSON_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid", "pattern": CANONICAL_UUID_PATTERN}


def parse_canonical_uuid(raw: object) -> uuid.UUID:
    """The UUID ``raw`` spells canonically; ValueError for anything else (another type included)."""
    if isinstance(raw, str) and _CANONICAL_UUID.fullmatch(raw):
        return uuid.UUID(raw)
    raise ValueError(UUID_REASON)


def _canonical_uuid(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):  # already parsed (e.g. a model built in code)
        return value
    try:
        return parse_canonical_uuid(value)
    except ValueError:
        raise PydanticCustomError("uuid_canonical", UUID_REASON) from None


CanonicalUuid = Annotated[uuid.UUID, BeforeValidator(_canonical_uuid), WithJsonSchema(UUID_JSON_SCHEMA)]
