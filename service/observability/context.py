"""The request id of the request being served, readable from anywhere (log filter, problem bodies)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
# what a caller may hand us: short, printable, nothing that could forge a log line or a header
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> None:
    _request_id.set(value)


def accept_or_generate(header_value: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, otherwise a fresh one."""
    if header_value and _ACCEPTED.match(header_value):
        return header_value
    return uuid.uuid4().hex


def request_id_headers() -> dict[str, str]:
    value = _request_id.get()
    return {REQUEST_ID_HEADER: value} if value else {}
