"""``Allow`` for 405 responses (RFC 9110 §15.5.6): every method some route serves on the path.

Starlette's router stops at the first route whose path matches and lists only that route's methods; a
path served by several routes (GET, POST and PUT of the strategic config) needs the union.
"""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import Scope


def allow_header(scope: Scope) -> str:
    router = getattr(scope.get("app"), "router", None)
    methods: set[str] = set()
    for route in getattr(router, "routes", ()):
        match, _ = route.matches({**scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))
