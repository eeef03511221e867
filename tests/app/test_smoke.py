"""``capacity-service smoke`` against a live uvicorn: passes on a healthy deployment (and writes nothing),
fails with a non-zero exit on a broken one (database down, wrong credentials)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import SecretStr

from service.auth import mint_token
from service.demo import DEMO_OWNER_USER_ID, DEMO_RESTAURANT_ID, load_demo
from service.settings import Settings
from tests.api.conftest import API_KEY, JWT_SECRET, runtime_url
from tests.support import pg
from tests.support.live import REPO, free_port, live_server

STEPS = [
    "openapi document",
    "liveness /healthz",
    "readiness /readyz",
    "ops strategic config",
    "internal strategic config",
    "assign-tables dry run",
    "dry run wrote nothing",
    "strategic config unchanged",
]


def _token() -> str:
    return mint_token(Settings(capacity_jwt_secret=SecretStr(JWT_SECRET)), sub=str(DEMO_OWNER_USER_ID))


def _smoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "smoke", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.fixture
def demo_db(head_db: str) -> str:
    load_demo(head_db)
    return head_db


def _server_env(db_url: str) -> dict[str, str]:
    return {"DATABASE_URL": db_url, "CAPACITY_JWT_SECRET": JWT_SECRET, "CAPACITY_INTERNAL_API_KEYS": API_KEY}


def _assignment_count(db: str) -> int:
    return pg.run(db, "SELECT count(*) FROM booking_table_assignments")[0][0]


def test_smoke_passes_against_a_healthy_deployment_and_writes_nothing(demo_db, tmp_path):
    token = _token()
    with live_server(_server_env(runtime_url(demo_db)), tmp_path) as server:
        before = _assignment_count(demo_db)
        done = _smoke("--base-url", server.url, "--restaurant-id", str(DEMO_RESTAURANT_ID),
                      "--token", token, "--api-key", API_KEY, "--json")
        after = _assignment_count(demo_db)
        # the same through environment variables, human report
        human = _smoke(env={"CAPACITY_SMOKE_BASE_URL": server.url,
                            "CAPACITY_SMOKE_RESTAURANT_ID": str(DEMO_RESTAURANT_ID),
                            "CAPACITY_SMOKE_TOKEN": token, "CAPACITY_SMOKE_API_KEY": API_KEY})
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert [s["name"] for s in report["steps"]] == STEPS
    assert all(s["ok"] for s in report["steps"])
    dry = next(s for s in report["steps"] if s["name"] == "assign-tables dry run")
    assert "would be assigned" in dry["detail"] and not dry["detail"].startswith("0 would")  # 20 demo bookings
    assert before == after == 0
    assert human.returncode == 0, human.stdout + human.stderr
    assert human.stdout.splitlines()[0].endswith(f"passed ({len(STEPS)}/{len(STEPS)} steps)")
    for output in (done.stdout + done.stderr, human.stdout + human.stderr):
        assert token not in output and API_KEY not in output


def test_smoke_fails_when_the_database_is_down(tmp_path):
    token = _token()
    down = f"postgresql://capacity_app:pw@127.0.0.1:{free_port()}/capacity"
    env = {**_server_env(down), "CAPACITY_DB_CONNECT_TIMEOUT_S": "1"}
    with live_server(env, tmp_path) as server:
        done = _smoke("--base-url", server.url, "--restaurant-id", str(DEMO_RESTAURANT_ID),
                      "--token", token, "--api-key", API_KEY, "--json", "--timeout", "15")
    assert done.returncode == 1, done.stdout + done.stderr
    steps = {s["name"]: s for s in json.loads(done.stdout)["steps"]}
    assert steps["liveness /healthz"]["ok"]  # the process is alive …
    assert not steps["readiness /readyz"]["ok"]  # … but not ready
    assert steps["readiness /readyz"]["status"] == 503 and "NOT_READY" in steps["readiness /readyz"]["detail"]
    assert steps["readiness /readyz"]["requestId"]
    assert not steps["assign-tables dry run"]["ok"]


def test_smoke_fails_with_wrong_credentials(demo_db, tmp_path):
    with live_server(_server_env(runtime_url(demo_db)), tmp_path) as server:
        done = _smoke("--base-url", server.url, "--restaurant-id", str(DEMO_RESTAURANT_ID),
                      "--token", "not-a-token", "--api-key", "wrong-key")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert "FAILED" in lines[0]
    failing = [line for line in lines[1:] if line.strip().startswith("FAIL")]
    assert any("ops strategic config" in line and " 401 " in line and "UNAUTHENTICATED" in line for line in failing)
    assert any("internal strategic config" in line and " 401 " in line for line in failing)
    assert "wrong-key" not in done.stdout and "not-a-token" not in done.stdout


def test_smoke_names_missing_options():
    done = _smoke("--base-url", "http://127.0.0.1:9")
    assert done.returncode == 1
    assert "--restaurant-id (or CAPACITY_SMOKE_RESTAURANT_ID)" in done.stderr
    assert "--token (or CAPACITY_SMOKE_TOKEN)" in done.stderr


def test_smoke_reports_a_response_that_breaks_the_published_contract():
    """A deployment whose answers differ from its own OpenAPI document fails, step by step."""
    import httpx

    from service import smoke
    from service.openapi import openapi_document

    document = openapi_document()

    def deployment(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/openapi.json":
            return httpx.Response(200, json=document)
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "sleeping"})  # not the documented enum
        if request.url.path == "/readyz":
            return httpx.Response(200, json={"status": "ready"})
        return httpx.Response(200, text="<html>ok</html>", headers={"content-type": "text/html"})

    report = smoke.run(base_url="http://deployment.test", restaurant_id=str(DEMO_RESTAURANT_ID), token="t",
                       api_key="k", timeout_s=5, transport=httpx.MockTransport(deployment))
    steps = {s.name: s for s in report.steps}
    assert not report.ok
    assert steps["openapi document"].ok and steps["readiness /readyz"].ok
    assert not steps["liveness /healthz"].ok
    assert "does not match the OpenAPI document" in steps["liveness /healthz"].detail
    assert "sleeping" in steps["liveness /healthz"].detail or "status" in steps["liveness /healthz"].detail
    assert not steps["ops strategic config"].ok  # wrong content type for a documented JSON response
