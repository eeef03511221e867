"""SIGTERM with an auto-assign run in flight: it finishes within the bound, or is cancelled and rolled back.

The run is made to wait deterministically: the test holds row locks on the day's bookings, polls
pg_stat_activity until the service's commit is waiting on them, then signals, then releases.
"""

from __future__ import annotations

import concurrent.futures
import signal
import socket

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from service.auth import mint_token
from service.demo import DEMO_OWNER_USER_ID, DEMO_RESTAURANT_ID, load_demo
from service.settings import Settings
from tests.api.conftest import JWT_SECRET, runtime_url
from tests.support import pg
from tests.support.live import live_server, wait_until

ASSIGN = "/api/ops/dashboard/assign-tables"


@pytest.fixture
def demo_db(head_db: str) -> str:
    load_demo(head_db)
    return head_db


def _waiting_on_lock(db: str) -> bool:
    name = make_url(db).database
    return bool(pg.run(db, """SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'
                                 AND application_name = 'capacity-service'""", (name,)))


def _service_backends(db: str) -> int:
    name = make_url(db).database
    return pg.run(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name LIKE "
                      "'capacity-service%%'", (name,))[0][0]


def _refuses_connections(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _assignments(db: str) -> int:
    return pg.run(db, "SELECT count(*) FROM booking_table_assignments")[0][0]


def _start_run(pool: concurrent.futures.ThreadPoolExecutor, url: str) -> concurrent.futures.Future:
    token = mint_token(Settings(capacity_jwt_secret=SecretStr(JWT_SECRET)), sub=str(DEMO_OWNER_USER_ID))
    return pool.submit(httpx.post, url + ASSIGN, headers={"Authorization": f"Bearer {token}"},
                       json={"restaurantId": str(DEMO_RESTAURANT_ID), "captureDecisions": False}, timeout=90)


def _lock_bookings(db: str) -> psycopg.Connection:
    conn = psycopg.connect(db)
    conn.execute("SELECT id FROM bookings WHERE restaurant_id = %s FOR UPDATE", (DEMO_RESTAURANT_ID,))
    return conn


def test_sigterm_lets_the_in_flight_run_finish(demo_db, tmp_path):
    env = {"DATABASE_URL": runtime_url(demo_db), "CAPACITY_JWT_SECRET": JWT_SECRET,
           "CAPACITY_GRACEFUL_SHUTDOWN_S": "60"}
    with live_server(env, tmp_path) as server, concurrent.futures.ThreadPoolExecutor(1) as pool:
        blocker = _lock_bookings(demo_db)
        try:
            run = _start_run(pool, server.url)
            wait_until(lambda: _waiting_on_lock(demo_db), timeout=30, what="the run to wait on the row locks")
            server.signal(signal.SIGTERM)
            # shutdown has begun (no new connections) while the run is still in flight
            wait_until(lambda: _refuses_connections(server.port), timeout=10, what="the listener to close")
            assert not run.done() and server.process.poll() is None
        finally:
            blocker.rollback()
            blocker.close()
        response = run.result(timeout=60)
        assert server.wait(timeout=30) == 0
    assert response.status_code == 200, response.text
    assigned = response.json()["assigned"]
    assert assigned  # the demo day: 18 of 20 bookings get tables
    assert _assignments(demo_db) == sum(len(a["tableIds"]) for a in assigned)


def test_a_run_past_the_bound_is_cancelled_and_rolled_back(demo_db, tmp_path):
    env = {"DATABASE_URL": runtime_url(demo_db), "CAPACITY_JWT_SECRET": JWT_SECRET,
           "CAPACITY_GRACEFUL_SHUTDOWN_S": "1"}
    with live_server(env, tmp_path) as server, concurrent.futures.ThreadPoolExecutor(1) as pool:
        blocker = _lock_bookings(demo_db)
        try:
            run = _start_run(pool, server.url)
            wait_until(lambda: _waiting_on_lock(demo_db), timeout=30, what="the run to wait on the row locks")
            server.signal(signal.SIGTERM)
            server.wait(timeout=30)  # the bound is 1 s: the process must not wait for the lock
            # every connection of the service is gone, so the waiting transaction was rolled back
            wait_until(lambda: _service_backends(demo_db) == 0, timeout=30, what="the service's sessions to end")
        finally:
            blocker.rollback()
            blocker.close()
        with pytest.raises(httpx.HTTPError):
            run.result(timeout=30).raise_for_status()
    assert "graceful shutdown exceeded" in server.logs()
    assert _assignments(demo_db) == 0
