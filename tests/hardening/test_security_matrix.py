"""Security matrix (issue 11): tenant isolation on every endpoint for every role, service credentials on
ops endpoints and user tokens on internal ones, JWT tampering, SQL metacharacters and NUL in every text
field, and RLS refusing the non-owner runtime role in direct SQL."""

from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import quote

import httpx
import jwt
import psycopg
import pytest

from service.auth import mint_token
from tests.api.conftest import API_KEY, JWT_SECRET, RUNTIME_ROLE, World, runtime_url

OPS = "/api/ops/settings/strategic-config"
ASSIGN = "/api/ops/dashboard/assign-tables"
INTERNAL = "/internal/v1/restaurants/{rid}/strategic-config"
BATCH = "/internal/v1/strategic-configs"
ROLES = {"olivia": "owner", "mike": "manager", "hana": "host", "sam": "server"}  # members of A


def _requests(rid: uuid.UUID) -> dict[str, tuple[str, str, dict]]:
    """Every operation that takes a restaurant, aimed at ``rid`` (the assign run is a dry run)."""
    write = {"json": {"restaurantId": str(rid), "weights": {"scarcity": 25}}}
    return {
        "read": ("GET", OPS, {"params": {"restaurantId": str(rid)}}),
        "post": ("POST", OPS, write),
        "put": ("PUT", OPS, write),
        "assign": ("POST", ASSIGN, {"json": {"restaurantId": str(rid), "dryRun": True}}),
        "internal": ("GET", INTERNAL.format(rid=rid), {}),
        "batch": ("GET", BATCH, {"params": {"restaurantId": str(rid)}}),
    }


def _expected(who: str, operation: str, own: bool) -> int:
    if who in ("service_jwt", "api_key"):
        return 200 if operation in ("internal", "batch") else 403
    if operation in ("internal", "batch"):
        return 403  # a user token on an internal endpoint
    if not own:
        return 403  # a member of another restaurant; existence is not leaked
    if operation in ("post", "put"):
        return 200 if {**ROLES, "una": "owner"}.get(who) in ("owner", "manager") else 403
    return 200


def _headers(world: World, who: str) -> dict[str, str]:
    if who == "service_jwt":
        return world.service_auth()
    if who == "api_key":
        return {"Authorization": f"Bearer {API_KEY}"}
    return world.auth(who)


async def test_every_role_on_every_endpoint_of_its_own_and_the_other_restaurant(world: World, client) -> None:
    callers = [*ROLES, "una", "service_jwt", "api_key"]  # una: owner of B
    wrong = []
    for who in callers:
        for target, own in ((world.a, who in ROLES), (world.b, who == "una")):
            for operation, (method, path, kw) in _requests(target).items():
                r = await client.request(method, path, headers=_headers(world, who), **kw)
                want = _expected(who, operation, own)
                if r.status_code != want:
                    wrong.append((who, "A" if target == world.a else "B", operation, r.status_code, want))
                elif want == 403:
                    assert r.json()["code"] == "FORBIDDEN"
    assert wrong == []
    writers = {row[0] for row in world.sql("SELECT updated_by FROM strategic_configs")}
    assert writers <= {world.users["olivia"], world.users["mike"], world.users["una"]}


async def test_a_stranger_with_a_valid_token_gets_403_everywhere(world: World, client) -> None:
    stranger = {"Authorization": f"Bearer {mint_token(world.settings, sub=str(uuid.uuid4()))}"}
    for method, path, kw in _requests(world.a).values():
        assert (await client.request(method, path, headers=stranger, **kw)).status_code == 403
    assert world.sql("SELECT count(*) FROM strategic_configs") == [(0,)]


# --- JWT tampering -------------------------------------------------------------------------------------


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hs512(claims: dict) -> str:
    """HS512 signature with the deployment's secret (only HS256 is accepted); hmac directly, because
    PyJWT warns about the key length for SHA-512."""
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS512', 'typ': 'JWT'})}.{_b64(claims)}"
    mac = hmac.new(JWT_SECRET.encode(), signing_input.encode(), hashlib.sha512).digest()
    return f"{signing_input}.{_b64(mac)}"


def _tampered(world: World) -> dict[str, str]:
    now = int(time.time())
    sub = str(world.users["olivia"])
    good = mint_token(world.settings, sub=sub)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims_b = {**claims, "sub": str(world.users["una"])}
    escalated = {**claims, "role": "service_role"}
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg none, no dot": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}",
        "other secret": jwt.encode(claims, "not-the-secret-0123456789abcdef0123", algorithm="HS256"),
        "sub swapped, old signature": f"{header}.{_b64(claims_b)}.{signature}",
        "role escalated, old signature": f"{header}.{_b64(escalated)}.{signature}",
        "signature stripped": f"{header}.{payload}.",
        "signature of another token": f"{header}.{payload}.{mint_token(world.settings, sub=sub, ttl_s=5).split('.')[2]}",
        "expired": jwt.encode({**claims, "exp": now - 3600, "iat": now - 7200}, JWT_SECRET, algorithm="HS256"),
        "no exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, JWT_SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "someone-else"}, JWT_SECRET, algorithm="HS256"),
        "no audience": jwt.encode({k: v for k, v in claims.items() if k != "aud"}, JWT_SECRET, algorithm="HS256"),
        "no subject": jwt.encode({k: v for k, v in claims.items() if k != "sub"}, JWT_SECRET, algorithm="HS256"),
        "HS512 with the secret": _hs512(claims),
        "RS256 header, HMAC body": f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{signature}",
        "garbage": "not.a.jwt",
        "not base64": "%%%.%%%.%%%",
        "API key with a suffix": API_KEY + "x",
        "API key prefix": API_KEY[:-1],
    }


@pytest.mark.parametrize("operation", ["read", "post", "assign", "internal", "batch"])
async def test_tampered_tokens_are_401(world: World, client: httpx.AsyncClient, operation: str) -> None:
    method, path, kw = _requests(world.a)[operation]
    accepted = []
    for name, token in _tampered(world).items():
        r = await client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        if r.status_code != 401 or r.json()["code"] != "UNAUTHENTICATED":
            accepted.append((name, r.status_code))
        assert token not in r.text  # never echoed
    for header in ("", "Bearer", "Bearer ", f"Basic {API_KEY}", f"Token {mint_token(world.settings, sub='x')}"):
        r = await client.request(method, path, headers={"Authorization": header} if header else {}, **kw)
        if r.status_code != 401:
            accepted.append((f"header {header[:12]!r}", r.status_code))
    assert accepted == []
    assert world.sql("SELECT count(*) FROM strategic_configs") == [(0,)]


# --- SQL metacharacters and NUL in every text field ----------------------------------------------------

NASTY = [
    "'; DROP TABLE bookings; --",
    "' OR '1'='1",
    "\" OR \"\"=\"",
    "\\",
    "%_%",
    "$$; SELECT pg_sleep(5); $$",
    "\x00",
    "abc\x00def",
    f"{uuid.uuid4()}\x00",
    f"{uuid.uuid4()}' OR 1=1 --",
    "😀" * 10,
    "\u202e",
]


async def test_metacharacters_and_nul_are_data_or_400(world: World, client: httpx.AsyncClient) -> None:
    owner = world.auth("olivia")
    service = world.service_auth()
    before = world.sql("SELECT (SELECT count(*) FROM bookings), (SELECT count(*) FROM restaurants), "
                       "(SELECT count(*) FROM restaurant_memberships)")
    odd = []
    for value in NASTY:
        attempts = [
            ("GET", OPS, {"params": {"restaurantId": value}}, owner),
            ("POST", OPS, {"json": {"restaurantId": value, "weights": {"scarcity": 20}}}, owner),
            ("POST", OPS, {"json": {"restaurantId": str(world.a), "weights": {"scarcity": value}}}, owner),
            ("PUT", OPS, {"json": {"restaurantId": str(world.a), "weights": {"scarcity": 20, "demandMultiplier": value}}}, owner),
            ("POST", ASSIGN, {"json": {"restaurantId": value, "dryRun": True}}, owner),
            ("POST", ASSIGN, {"json": {"restaurantId": str(world.a), "date": value, "dryRun": True}}, owner),
            ("POST", ASSIGN, {"json": {"restaurantId": str(world.a), "dryRun": True, "note": value}}, owner),
            ("GET", INTERNAL.format(rid=quote(value, safe="")), {}, service),
            ("GET", BATCH, {"params": {"restaurantId": [str(world.a), value]}}, service),
        ]
        for method, path, kw, headers in attempts:
            r = await client.request(method, path, headers=headers, **kw)
            # "data": a dry run or a read that treats the value as an ignored field; otherwise a clean 400/404
            if r.status_code not in (200, 400, 404) or r.status_code >= 500:
                odd.append((method, path[:40], repr(value)[:30], r.status_code, r.text[:120]))
            if r.status_code == 400:
                assert r.json()["code"] in ("INVALID_BODY", "INVALID_QUERY", "OUT_OF_RANGE")
        for header in ("If-Match", "If-None-Match"):
            if "\x00" in value or not value.isascii():
                continue  # not representable in an HTTP header; the transport refuses to send it
            r = await client.request("PUT", OPS, headers={**owner, header: value},
                                     json={"restaurantId": str(world.a), "weights": {"scarcity": 21}})
            if r.status_code not in (200, 412):
                odd.append(("PUT", header, value, r.status_code, r.text[:120]))
    assert odd == []
    after = world.sql("SELECT (SELECT count(*) FROM bookings), (SELECT count(*) FROM restaurants), "
                      "(SELECT count(*) FROM restaurant_memberships)")
    assert after == before


# --- RLS: the non-owner runtime role, direct SQL ---------------------------------------------------------


def test_rls_confines_the_runtime_role_to_its_tenant(world: World) -> None:
    world.set_row(world.b, 40)
    world.sql("INSERT INTO zones (id, restaurant_id, name) VALUES (%s, %s, 'B-zone')", (uuid.uuid4(), world.b))
    with psycopg.connect(runtime_url(world.db_url), autocommit=False) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (RUNTIME_ROLE,)
        assert conn.execute("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (
            False, False)
        conn.execute("SELECT set_config('app.restaurant_id', %s, true)", (str(world.a),))
        # B's rows are invisible from A's context, and cannot be changed or created
        assert conn.execute("SELECT count(*) FROM zones WHERE restaurant_id = %s", (world.b,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM strategic_configs WHERE restaurant_id = %s", (world.b,)).fetchone() == (0,)
        updated = conn.execute("UPDATE strategic_configs SET scarcity_weight = 1 WHERE restaurant_id = %s", (world.b,))
        assert updated.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO zones (id, restaurant_id, name) VALUES (%s, %s, 'sneaky')", (uuid.uuid4(), world.b))
        conn.rollback()
        # no tenant context at all: tenant tables refuse to answer rather than show everything
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="context is required"):
            conn.execute("SELECT count(*) FROM zones")
        conn.rollback()
        # turning RLS off is not the runtime role's to do
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE zones DISABLE ROW LEVEL SECURITY")
        conn.rollback()
    assert world.sql("SELECT scarcity_weight FROM strategic_configs WHERE restaurant_id = %s", (world.b,)) == [(40,)]
    assert world.sql("SELECT count(*) FROM zones WHERE name = 'sneaky'") == [(0,)]
