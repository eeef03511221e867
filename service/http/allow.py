"""``Allow`` for 405 responses (RFC 9110 section 15.5.6): every method some route serves on the path.

The router stops at the first route whose path matches and lists only that route's methods (and routes of
included routers are nested), so a path served by several routes (GET, POST and PUT of the strategic
config) needs the union. Asking the router "would this method fully match?" works whatever the nesting.
"""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import Scope

CANDIDATE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def serves(scope: Scope, method: str | None = None) -> bool:
    """True when some route of the app in ``scope`` takes ``method`` (default: the request's) on its path."""
    router = getattr(scope.get("app"), "router", None)
    if router is None:
        return True
    probe = dict(scope) if method is None else {**scope, "method": method}
    return any(route.matches(dict(probe))[0] is Match.FULL for route in router.routes)


def allow_header(scope: Scope) -> str:
    return ", ".join(m for m in CANDIDATE_METHODS if serves(scope, m))
