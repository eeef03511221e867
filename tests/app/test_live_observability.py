"""Against a live ``serve``: every log line is one JSON object with the request id, no secret ever reaches
the log, and ``--workers 2`` metrics add up across the workers."""

from __future__ import annotations

import json

import httpx
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from service.auth import mint_token
from service.demo import DEMO_OWNER_USER_ID, DEMO_RESTAURANT_ID, load_demo
from service.settings import Settings
from tests.api.conftest import runtime_url
from tests.app.test_observability import samples
from tests.support.live import free_port, live_server, wait_until

JWT_SECRET = "live-jwt-secret-Zq8w3Kp0-never-in-logs"
API_KEY = "live-api-key-Hh71xPq-never-in-logs"
DB_PASSWORD = "db-pass-Ux4nVv9-never-in-logs"
WRONG_KEY = "wrong-key-Jd83Lmq-never-in-logs"


def _with_password(url: str, password: str) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def _json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # raises on any line that is not JSON


def test_logs_are_json_with_request_ids_and_never_contain_secrets(head_db, tmp_path):
    load_demo(head_db)
    token = mint_token(Settings(capacity_jwt_secret=SecretStr(JWT_SECRET)), sub=str(DEMO_OWNER_USER_ID))
    service_token = mint_token(Settings(capacity_jwt_secret=SecretStr(JWT_SECRET)), sub=None, role="service_role")
    env = {
        # trust authentication on the test server: the password is accepted and must still never be logged
        "DATABASE_URL": _with_password(runtime_url(head_db), DB_PASSWORD),
        "CAPACITY_JWT_SECRET": JWT_SECRET,
        "CAPACITY_INTERNAL_API_KEYS": f"other-key-123456,{API_KEY}",
        "CAPACITY_LOG_LEVEL": "debug",
    }
    rid = str(DEMO_RESTAURANT_ID)
    with live_server(env, tmp_path) as server:
        with httpx.Client(base_url=server.url) as http:
            ok = http.get("/api/ops/settings/strategic-config", params={"restaurantId": rid},
                          headers={"Authorization": f"Bearer {token}", "X-Request-ID": "smoke-ops-1"})
            http.post("/api/ops/dashboard/assign-tables", headers={"Authorization": f"Bearer {token}"},
                      json={"restaurantId": rid, "dryRun": True})
            http.get(f"/internal/v1/restaurants/{rid}/strategic-config", headers={"Authorization": f"Bearer {API_KEY}"})
            http.get(f"/internal/v1/restaurants/{rid}/strategic-config",
                     headers={"Authorization": f"Bearer {service_token}"})
            denied = http.get(f"/internal/v1/restaurants/{rid}/strategic-config",
                              headers={"Authorization": f"Bearer {WRONG_KEY}"})
            http.get(f"/internal/v1/restaurants/{rid}/strategic-config?token={WRONG_KEY}")
            http.post("/api/ops/dashboard/assign-tables", headers={"Authorization": f"Bearer {token}"},
                      content=b"{not json")
        # the access line of the last request is written after its response: wait for it, never sleep
        wait_until(lambda: server.logs().count('"uvicorn.access"') >= 7, timeout=10, what="access lines")
    logs = server.logs()
    for secret in (JWT_SECRET, API_KEY, DB_PASSWORD, WRONG_KEY, token, service_token, token.split(".")[1]):
        assert secret not in logs
    records = _json_lines(logs)
    assert {r["logger"] for r in records} >= {"uvicorn.error", "uvicorn.access", "capacity.assign_tables"}
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert all(r["requestId"] and r["method"] and r["status"] for r in access)
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "smoke-ops-1"
    assert any(r["requestId"] == "smoke-ops-1" and r["status"] == 200 for r in access)
    assert denied.status_code == 401
    assert any(r["requestId"] == denied.json()["requestId"] and r["status"] == 401 for r in access)
    run = [r for r in records if r["logger"] == "capacity.assign_tables"]
    assert run and all(r["requestId"] for r in run)  # an app line carries the id of the request it served


def test_unreachable_database_password_is_not_logged(tmp_path):
    env = {
        "DATABASE_URL": f"postgresql://capacity_app:{DB_PASSWORD}@127.0.0.1:{free_port()}/capacity",
        "CAPACITY_STRATEGIC_CONFIG_LISTEN_URL": f"postgresql://listener:{DB_PASSWORD}x@127.0.0.1:{free_port()}/c",
        "CAPACITY_DB_CONNECT_TIMEOUT_S": "1",
        "CAPACITY_LOG_LEVEL": "debug",
    }
    with live_server(env, tmp_path) as server:
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 503
        wait_until(lambda: "change listener" in server.logs(), timeout=20, what="listener retry line")
    logs = server.logs()
    assert DB_PASSWORD not in logs
    _json_lines(logs)


def test_two_workers_report_one_aggregate(head_db, tmp_path):
    env = {"DATABASE_URL": runtime_url(head_db), "CAPACITY_DB_POOL_SIZE": "3", "CAPACITY_WORKERS": "2"}
    with live_server(env, tmp_path) as server:
        # fresh connections until both workers have answered (the kernel picks the accepting process)
        sent = 0

        def both_workers_served() -> bool:
            nonlocal sent
            httpx.get(server.url + "/healthz", headers={"Connection": "close"})
            sent += 1
            pids = {r["pid"] for r in _json_lines(server.logs())
                    if r["logger"] == "uvicorn.access" and r["path"] == "/healthz"}
            return len(pids) == 2

        wait_until(both_workers_served, timeout=60, interval=0, what="both workers to serve /healthz")
        # the access line can trail the response: wait for all of them, then count across scrapes
        wait_until(lambda: server.logs().count('"path": "/healthz"') >= sent, timeout=10, what="access lines")
        scrapes = [httpx.get(server.url + "/metrics", headers={"Connection": "close"}).text for _ in range(6)]
    key = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    for text in scrapes:
        # whichever worker answers the scrape, it reports both workers' requests: ours plus the one
        # successful start-up probe of live_server
        assert samples(text, "http_requests_total")[key] == sent + 1
        assert samples(text, "db_pool_size")[()] == 6  # 3 per worker, summed over both live workers
