"""Canonical spelling of catalog-printed SQL, so definitions compare by shape, not by how a server prints them."""

from __future__ import annotations

import re
from collections.abc import Sequence

_CAST = re.compile(
    r"::(?:[a-z_][a-z0-9_]*\.)?"
    r"(?:character varying|timestamp with(?:out)? time zone|time with(?:out)? time zone|double precision|"
    r"bit varying|[a-z_][a-z0-9_]*)(?:\(\d+(?:,\d+)?\))?(?:\[\])*"
)
_REDUNDANT_PARENS = re.compile(r"(?<![\w\]])\((\w+|'[^']*')\)")
_PUNCT_SPACE = re.compile(r"\s*([^\w\s'])\s*")
_DEFERRABILITY = re.compile(r"\b(?:not deferrable|deferrable|initially deferred|initially immediate)\b")


def normalize_sql(text: str | None) -> str | None:
    """Canonical spelling of a catalog-printed expression or definition (comparison only, never executed)."""
    if text is None:
        return None
    s = text.lower().replace('"', "")
    s = _PUNCT_SPACE.sub(r"\1", re.sub(r"\s+", " ", s))
    s = _CAST.sub("", s)
    s = re.sub(r"(?<![\w.])public\.", "", s)
    s = re.sub(r"\bnot valid\b", "", s)
    s = _DEFERRABILITY.sub("", s)
    while True:
        stripped = _REDUNDANT_PARENS.sub(r"\1", s)
        if stripped == s:
            break
        s = stripped
    # Deparsers differ in spacing around operators and parentheses: keep spaces only between words.
    return _PUNCT_SPACE.sub(r"\1", re.sub(r"\s+", " ", s)).strip()


def _norm_type(formatted: str) -> str:
    return re.sub(r"^public\.", "", formatted.replace('"', ""))


def _norm_config(config: Sequence[str] | None) -> list[str]:
    return sorted(re.sub(r"\s+", "", c).replace('"', "").lower() for c in (config or []))
