"""One JSON log format for uvicorn's lines and the service's, each carrying the request id; secrets scrubbed.

Scrubbing happens on the formatted line, so it covers the message, its arguments, extra fields and
tracebacks alike: bearer tokens, anything shaped like a JWT, passwords inside database URLs or libpq
strings, and every secret value the running configuration holds (JWT secret, API keys, URL passwords).
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import threading
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from service.observability.context import current_request_id

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # scheme://user:password@host — the user stays, the password goes
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s\"']*:)[^@\s\"']+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"(?i)\b(password|passwd|secret|api[_-]?key|token)(\s*[=:]\s*)(?!\[redacted\])[^\s,;&\"']+"),
     r"\1\2" + REDACTED),
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Never print this value (and its JSON-escaped form). Short values are ignored: they would
    redact ordinary words."""
    if not value or len(value) < 6:
        return
    with _secrets_lock:
        _secrets.add(value)
        _secrets.add(json.dumps(value)[1:-1])


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    # longest first, so a secret that contains another is removed whole
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RequestContextFilter(logging.Filter):
    """Adds ``requestId`` to every record; spells out uvicorn's access-log arguments as fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.requestId = current_request_id()
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, http_version, status = record.args
            record.client = client
            record.method = method
            record.path = path
            record.httpVersion = http_version
            record.status = status
        return True


class JsonLogFormatter(JsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "process": "pid"})
        super().__init__("%(levelname)s %(name)s %(process)d %(message)s", *args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class TextLogFormatter(logging.Formatter):
    """For a developer's terminal (CAPACITY_LOG_FORMAT=text); still one shape, still scrubbed."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(name)s] [%(requestId)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def log_config(level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document; uvicorn takes it as ``log_config`` (also in each worker)."""
    formatter = "service.observability.logging.JsonLogFormatter" if fmt == "json" else (
        "service.observability.logging.TextLogFormatter"
    )
    level_name = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_context": {"()": "service.observability.logging.RequestContextFilter"}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_context"],
            }
        },
        # uvicorn's loggers carry no handler of their own: every line goes through the one above
        "loggers": {
            "uvicorn": {"handlers": [], "level": level_name, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level_name, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level_name, "propagate": True},
        },
        "root": {"handlers": ["stderr"], "level": level_name},
    }


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    logging.config.dictConfig(log_config(level, fmt))
