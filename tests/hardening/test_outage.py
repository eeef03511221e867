"""Issue 11 outage proof: the test starts its own PostgreSQL, runs the service as a uvicorn subprocess on
it, drives traffic over kept-alive connections, kills the database mid-traffic and brings it back.

Asserted: database endpoints answer 503 + Retry-After (never a 500, never a dropped connection),
/readyz is 503 within 2 s of the stop, /healthz stays 200, no booking is half-assigned, and within 2 s of
the database accepting connections again /readyz and every database endpoint answer 200 — without
restarting the service. The measured detection and recovery times are printed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from service.auth import mint_token
from service.schema import migrate
from service.settings import Settings
from tests.api.assign_support import PATH as ASSIGN
from tests.api.assign_support import seed_assign_world
from tests.api.conftest import API_KEY, JWT_SECRET, runtime_url
from tests.api.test_assign_concurrency import _assert_consistent
from tests.hardening.live import serve_in_subprocess
from tests.hardening.own_pg import own_postgres
from tests.support import pg

OPS = "/api/ops/settings/strategic-config"
DETECT_WITHIN_S = 2.0
RECOVER_WITHIN_S = 2.0


@dataclass
class Traffic:
    records: list[tuple[float, str, int, dict]] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def loop(self, client: httpx.AsyncClient, method: str, url: str, **kw) -> None:
        while not self.stop.is_set():
            try:
                r = await client.request(method, url, **kw)
            except httpx.TransportError as exc:
                self.transport_errors.append(f"{method} {url}: {type(exc).__name__} {exc}")
                continue
            self.records.append((time.monotonic(), url, r.status_code, dict(r.headers)))
            await asyncio.sleep(0.01)  # pacing, not ordering: ~50 requests/s per loop

    def between(self, start: float, end: float, url: str) -> list[tuple[int, dict]]:
        return [(s, h) for t, u, s, h in self.records if start <= t <= end and u == url]


async def _until(check, within_s: float, what: str) -> float:
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > within_s:
            raise AssertionError(f"not within {within_s} s: {what}")
        await asyncio.sleep(0.02)


async def test_database_outage_mid_traffic(tmp_path: Path) -> None:
    with own_postgres() as server:
        db_url = pg.create_database(server.admin_url, "cap_outage")
        migrate.upgrade(db_url, "head")
        settings = Settings(database_url=SecretStr(runtime_url(db_url)), capacity_jwt_secret=SecretStr(JWT_SECRET))
        aw = seed_assign_world(db_url, settings)
        for start, end, party in [("17:00", "18:30", 2), ("18:00", "19:30", 4), ("19:00", "20:30", 3),
                                  ("19:30", "21:00", 2), ("20:00", "21:30", 4)]:
            aw.booking(party, start, end, status="pending_allocation")
        env = {
            "DATABASE_URL": runtime_url(db_url),
            "CAPACITY_JWT_SECRET": JWT_SECRET,
            "CAPACITY_INTERNAL_API_KEYS": API_KEY,
            "CAPACITY_READINESS_CACHE_S": "60",  # only the schema verdict may be cached
            "CAPACITY_DB_CONNECT_TIMEOUT_S": "1",
            "CAPACITY_DB_POOL_SIZE": "5",
        }
        user = {"Authorization": f"Bearer {mint_token(settings, sub=str(aw.users['owner']))}"}
        ops_url = f"{OPS}?restaurantId={aw.rid}"
        dry = {"restaurantId": str(aw.rid), "date": aw.floor.date.isoformat(), "dryRun": True}
        real = {**dry, "dryRun": False}
        log_path = tmp_path / "uvicorn.log"
        with serve_in_subprocess(env, log_path) as base:
            limits = httpx.Limits(max_connections=6, max_keepalive_connections=6)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
                assert (await client.get("/readyz")).status_code == 200
                assert (await client.get(ops_url, headers=user)).status_code == 200
                traffic = Traffic()
                loops = [
                    traffic.loop(client, "GET", "/healthz"),
                    traffic.loop(client, "GET", ops_url, headers=user),
                    traffic.loop(client, "POST", ASSIGN, json=dry, headers=user),
                    traffic.loop(client, "POST", ASSIGN, json=real, headers=user),
                ]
                tasks = [asyncio.create_task(loop) for loop in loops]
                await _until(lambda: _async(len(traffic.records) > 40), 30, "warm-up traffic")

                stopped_at = time.monotonic()
                await asyncio.to_thread(server.stop)
                await _until(lambda: _status(client, "/readyz", 503), DETECT_WITHIN_S, "/readyz 503")
                detect_s = time.monotonic() - stopped_at
                # the outage lasts until the database endpoints have answered 503 a few times each
                await _until(lambda: _async(_outage_seen(traffic, stopped_at, ops_url)), 10, "503s during the outage")
                outage_end = time.monotonic()

                await asyncio.to_thread(server.start)
                back_at = time.monotonic()

                async def all_back() -> bool:
                    ready = await client.get("/readyz")
                    ops = await client.get(ops_url, headers=user)
                    run = await client.post(ASSIGN, json=dry, headers=user)
                    return ready.status_code == ops.status_code == run.status_code == 200

                await _until(all_back, RECOVER_WITHIN_S, "recovery of /readyz and the database endpoints")
                recover_s = time.monotonic() - back_at
                await _until(lambda: _async(_after(traffic, back_at + recover_s, ops_url) >= 3), 10, "traffic after")
                traffic.stop.set()
                await asyncio.gather(*tasks)
                final = await client.post(ASSIGN, json=real, headers=user)

        print(f"outage: /readyz 503 after {detect_s:.3f} s, recovery {recover_s:.3f} s after the database "
              f"was back; {len(traffic.records)} requests, {len(traffic.transport_errors)} transport errors")
        assert not traffic.transport_errors, traffic.transport_errors[:5]
        assert detect_s <= DETECT_WITHIN_S
        statuses = {s for _, _, s, _ in traffic.records}
        assert statuses <= {200, 409, 503}, statuses  # 409: two runs of one day overlapped (run lock)
        assert all(s == 200 for s, _ in traffic.between(0, float("inf"), "/healthz"))
        during = traffic.between(stopped_at + DETECT_WITHIN_S, outage_end, ops_url) + traffic.between(
            stopped_at + DETECT_WITHIN_S, outage_end, ASSIGN
        )
        assert during and all(s == 503 and h.get("retry-after") for s, h in during), during[:3]
        assert not any(h.get("connection") == "close" for _, _, _, h in traffic.records)
        log = log_path.read_text()
        assert "Exception in ASGI application" not in log
        assert "Traceback" not in log, log[-3000:]
        # a line per cause (pool, readiness, change listener retries), not one per failed request
        failed = sum(1 for _, _, s, _ in traffic.records if s == 503)
        assert failed > 20 and len(log.splitlines()) <= 12, (failed, log)

        assert final.status_code == 200, final.text
        body = final.json()
        stored = _assert_consistent(aw)  # 0 overlaps, 0 bookings with two table sets (no partial booking)
        answered = {a["bookingId"] for a in body["assigned"]} | {s["bookingId"] for s in body["skipped"]}
        pending = {str(b) for (b,) in aw.sql(
            "SELECT id FROM bookings WHERE restaurant_id = %s AND id NOT IN "
            "(SELECT booking_id FROM booking_table_assignments)", (aw.rid,))}
        assert pending <= answered  # every unassigned booking was considered and skipped with a reason
        assert all(s["reasonCode"] for s in body["skipped"])
        assert stored  # the day was really assigned


async def _async(value: bool) -> bool:
    return value


async def _status(client: httpx.AsyncClient, url: str, want: int) -> bool:
    return (await client.get(url)).status_code == want


def _outage_seen(traffic: Traffic, since: float, ops_url: str) -> bool:
    recent = [s for t, u, s, _ in traffic.records if t > since + DETECT_WITHIN_S and u in (ops_url, ASSIGN)]
    return len(recent) >= 10


def _after(traffic: Traffic, since: float, ops_url: str) -> int:
    return sum(1 for t, u, s, _ in traffic.records if t > since and u == ops_url and s == 200)
