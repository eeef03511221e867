"""Strict request bodies, before any route sees them.

Every route that takes a body takes JSON; this layer makes "JSON" mean one thing everywhere:

- ``Content-Type`` must be ``application/json`` (or ``application/<x>+json``), charset UTF-8 if given →
  else 415 ``UNSUPPORTED_MEDIA_TYPE``. An empty body is left to the route (it answers 400 "empty").
- At most ``max_body_bytes`` (setting ``CAPACITY_MAX_REQUEST_BODY_BYTES``) → else 413
  ``PAYLOAD_TOO_LARGE``, at once when ``Content-Length`` says so, else as soon as the stream passes it.
- Valid UTF-8 JSON, nested at most :data:`MAX_JSON_DEPTH` levels (never a RecursionError), no key twice
  in one object (the stdlib silently keeps the last), only finite numbers that fit a double (NaN,
  Infinity, ``1e999``, a 310-digit integer are refused, never clamped) → else 400 ``INVALID_BODY`` (the
  code the routes already use for malformed JSON) with ``details[0].reason`` one of :data:`REASONS`.

415 and 400 are raised when the route *reads* the body, not here: authentication runs first, so an
anonymous caller gets 401 whatever it sent (the routes' documented order: 401, then 400, then 403).
413 is answered here, before the body is buffered.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import (
    ErrorDetail,
    InvalidBody,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
    render_problem,
)
from service.http.allow import serves

# Deepest nesting a request body may have. The bodies of this API are two levels deep; 32 leaves room
# for additive fields and stays far below the parser's recursion limit.
MAX_JSON_DEPTH = 32
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# details[0].reason of a body refused while decoding (stable: clients and tests branch on them)
NOT_UTF8, NOT_JSON, TOO_DEEP = "not UTF-8", "not valid JSON", "nested too deep"
DUPLICATE_KEY, NUMBER_OUT_OF_RANGE = "duplicate key", "number out of range"
REASONS = (NOT_UTF8, NOT_JSON, TOO_DEEP, DUPLICATE_KEY, NUMBER_OUT_OF_RANGE)
# Longest decimal integer that can still be a finite double (1.8e308 has 309 digits).
_MAX_INT_DIGITS = len(str(int(sys.float_info.max)))


def is_json_media_type(content_type: str) -> bool:
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    _, _, subtype = media.partition("/")
    if not (media == "application/json" or (media.startswith("application/") and subtype.endswith("+json"))):
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _invalid(message: str, reason: str, field: str = "body") -> InvalidBody:
    return InvalidBody(message, details=[ErrorDetail(field=field, reason=reason)])


class _Rejected(Exception):
    def __init__(self, error: ServiceError) -> None:
        self.error = error


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Rejected(_invalid(f"The key {key!r} appears twice in one object", DUPLICATE_KEY, key))
        out[key] = value
    return out


def _finite_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _Rejected(_invalid(f"The integer {text[:20]}… is too large", NUMBER_OUT_OF_RANGE))
    value = int(text)
    try:
        float(value)
    except OverflowError:
        raise _Rejected(_invalid(f"The integer {text[:20]}… is too large", NUMBER_OUT_OF_RANGE)) from None
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Rejected(_invalid(f"The number {text[:40]} is out of range", NUMBER_OUT_OF_RANGE))
    return value


def _constant(name: str) -> Any:
    raise _Rejected(_invalid(f"{name} is not a JSON number", NUMBER_OUT_OF_RANGE))


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        children: Iterable[Any] = node.values() if isinstance(node, dict) else node
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode ``raw`` strictly; raise the ServiceError describing the first problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("The request body is not valid UTF-8", NOT_UTF8) from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_int=_finite_int,
            parse_float=_finite_float,
            parse_constant=_constant,
        )
    except _Rejected as rejected:
        raise rejected.error from None
    except RecursionError:
        raise _invalid(f"The request body is nested deeper than {max_depth} levels", TOO_DEEP) from None
    except ValueError:
        raise _invalid("The request body is not valid JSON", NOT_JSON) from None
    if _depth(value) > max_depth:
        raise _invalid(f"The request body is nested deeper than {max_depth} levels", TOO_DEEP)
    return value


class StrictJsonBodyMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS or not serves(scope):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        too_large = PayloadTooLarge(f"The request body is larger than {self.max_body_bytes} bytes")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await render_problem(too_large, close=True)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await render_problem(too_large, close=True)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        error: ServiceError | None = None
        if body.strip():
            content_type = headers.get("content-type")
            if content_type is None or not is_json_media_type(content_type):
                error = UnsupportedMediaType(
                    f"The request body must be application/json (got {content_type or 'no Content-Type'})"
                )
            else:
                try:
                    check_json(body, self.max_depth)
                except ServiceError as exc:
                    error = exc
        await self.app(scope, _replay(body, error, receive), send)


def _replay(body: bytes, error: ServiceError | None, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        if error is not None:
            # raised inside the route's ``await request.body()``: the app's error handlers render it
            raise error
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
