"""Who is calling: JWT bearer tokens (Supabase-compatible claims) and static service API keys.

- User tokens: HS256 with the shared secret, or RS256/ES256 keys from a JWKS endpoint when configured.
  Signature, ``exp`` (with a small leeway), ``aud`` and (optionally) ``iss`` are verified; ``alg: none``
  and any algorithm not configured are refused. Missing/invalid/expired → 401; a key set that cannot be
  fetched → 503 ``AUTH_UNAVAILABLE``.
- Service credentials: a JWT whose ``role`` claim is ``service_role``, or one of the configured API keys.
- Membership (who may act for which restaurant) is read from the service's own
  ``restaurant_memberships`` table, after authentication (``service/repository/memberships.py``).
"""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from service.errors import AuthUnavailable, Forbidden, Unauthenticated
from service.settings import Settings

SERVICE_ROLE = "service_role"
MEMBER_ROLES = frozenset({"owner", "manager", "host", "server"})
ADMIN_ROLES = frozenset({"owner", "manager"})


@dataclass(frozen=True)
class Principal:
    subject: str | None  # user id (sub) for users; None for API keys
    role: str  # JWT role claim: authenticated | service_role | …
    via: str  # "jwt" | "api_key"

    @property
    def is_service(self) -> bool:
        return self.role == SERVICE_ROLE

    @property
    def user_id(self) -> uuid.UUID | None:
        if self.is_service or self.subject is None:
            return None
        try:
            return uuid.UUID(self.subject)
        except ValueError:
            return None


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_s
        self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300) if settings.jwks_url else None
        keys = settings.internal_api_keys.get_secret_value() if settings.internal_api_keys else ""
        self._api_keys = [k.strip().encode() for k in keys.split(",") if k.strip()]

    def _is_api_key(self, token: str) -> bool:
        raw = token.encode()
        # compare against every key so timing does not reveal which one matched
        return any([hmac.compare_digest(raw, key) for key in self._api_keys])

    def may_block(self, token: str) -> bool:
        """True when verifying may fetch the JWKS over the network (only RS256/ES256 with a key set)."""
        if self._jwks is None or (self._api_keys and self._is_api_key(token)):
            return False
        try:
            return jwt.get_unverified_header(token).get("alg") in ("RS256", "ES256")
        except jwt.PyJWTError:
            return False

    def verify(self, token: str) -> Principal:
        if self._api_keys and self._is_api_key(token):
            return Principal(subject=None, role=SERVICE_ROLE, via="api_key")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("Malformed bearer token") from exc
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self._secret:
            key, algorithms = self._secret, ["HS256"]
        elif alg in ("RS256", "ES256") and self._jwks is not None:
            try:
                key = self._jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError as exc:
                raise AuthUnavailable("The signing key set could not be fetched") from exc
            except jwt.PyJWTError as exc:
                raise Unauthenticated("Unknown signing key") from exc
            algorithms = [alg]
        else:
            # covers alg "none" and any algorithm this deployment does not accept
            raise Unauthenticated("Token algorithm not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("Token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("Invalid token") from exc
        role = str(claims.get("role") or "")
        # Supabase service keys carry no audience; user tokens must carry ours.
        if role != SERVICE_ROLE and not _audience_matches(claims.get("aud"), self._audience):
            raise Unauthenticated("Token audience not accepted")
        sub = claims.get("sub")
        if role != SERVICE_ROLE and not sub:
            raise Unauthenticated("Token has no subject")
        return Principal(subject=str(sub) if sub else None, role=role or "authenticated", via="jwt")


def _audience_matches(aud: Any, expected: str) -> bool:
    if isinstance(aud, str):
        return aud == expected
    if isinstance(aud, list):
        return expected in aud
    return False


def mint_token(
    settings: Settings, *, sub: str | None, role: str = "authenticated", ttl_s: int = 3600, audience: str | None = None
) -> str:
    """Development helper (CLI ``mint-token``): sign an HS256 token with the configured secret."""
    if settings.jwt_secret is None:
        raise ValueError("CAPACITY_JWT_SECRET is not set")
    now = int(time.time())
    claims: dict[str, Any] = {"role": role, "iat": now, "exp": now + ttl_s}
    if sub:
        claims["sub"] = sub
    if role != SERVICE_ROLE:
        claims["aud"] = audience or settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


# Dependencies are ``async def``: FastAPI runs plain ``def`` dependencies in the thread pool, which
# dominated the cost of a cached read. Only a JWKS fetch can block, and that one goes to a thread.
async def get_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Missing bearer token")
    return token.strip()


async def current_principal(
    request: Request, verifier: Annotated[TokenVerifier, Depends(get_verifier)]
) -> Principal:
    token = _bearer(request)
    if verifier.may_block(token):
        return await run_in_threadpool(verifier.verify, token)
    return verifier.verify(token)


# OpenAPI security schemes, so /docs can authorise and clients know what to send. They only document:
# auto_error=False never rejects, and the credential is still parsed and verified above, exactly once.
USER_TOKEN = HTTPBearer(
    scheme_name="userToken",
    bearerFormat="JWT",
    description="A restaurant member's JWT (HS256 with the shared secret, or RS256/ES256 from the JWKS).",
    auto_error=False,
)
SERVICE_TOKEN = HTTPBearer(
    scheme_name="serviceToken",
    bearerFormat="JWT",
    description="A JWT whose role claim is service_role.",
    auto_error=False,
)
API_KEY = HTTPBearer(
    scheme_name="apiKey",
    description="One of the static keys in CAPACITY_INTERNAL_API_KEYS, sent as `Authorization: Bearer <key>`.",
    auto_error=False,
)
_Documented = HTTPAuthorizationCredentials | None


async def current_user(
    principal: Annotated[Principal, Depends(current_principal)],
    _documents: Annotated[_Documented, Security(USER_TOKEN)] = None,
) -> Principal:
    """A human user (ops dashboard). A service credential has no membership: 403."""
    if principal.user_id is None:
        raise Forbidden("This endpoint is for restaurant members; service callers use /internal/*")
    return principal


async def current_service(
    principal: Annotated[Principal, Depends(current_principal)],
    _token: Annotated[_Documented, Security(SERVICE_TOKEN)] = None,
    _key: Annotated[_Documented, Security(API_KEY)] = None,
) -> Principal:
    """Internal endpoints: service credentials only; a user token is 403."""
    if not principal.is_service:
        raise Forbidden("Internal endpoint: service credential required")
    return principal


UserDep = Annotated[Principal, Depends(current_user)]
ServiceDep = Annotated[Principal, Depends(current_service)]
