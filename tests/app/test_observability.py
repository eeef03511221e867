"""Request ids, problem bodies that name them, gzip, Prometheus metrics by route template."""

from __future__ import annotations

import gzip
import re

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from service.app import create_app
from service.observability.metrics import observe_assign_run
from service.observability.setup import GZIP_MINIMUM_BYTES
from service.settings import Settings


def _app():
    return create_app(Settings(database_url=SecretStr("postgresql://nobody:pw@127.0.0.1:1/none")))


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://test"
    )


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


async def test_request_id_is_echoed_or_generated_and_named_in_problem_bodies():
    async with _client(_app()) as client:
        given = await client.get("/no/such/route", headers={"X-Request-ID": "deploy-42.a"})
        generated = await client.get("/no/such/route")
        forged = await client.get("/healthz", headers={"X-Request-ID": "x\" injected=1"})
    assert given.headers["x-request-id"] == "deploy-42.a"
    assert given.json()["requestId"] == "deploy-42.a"
    rid = generated.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid) and generated.json()["requestId"] == rid
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["x-request-id"])  # not echoed: unsafe characters


async def test_an_unexpected_500_still_carries_the_request_id():
    app = _app()

    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/explode", explode)
    async with _client(app) as client:
        response = await client.get("/explode", headers={"X-Request-ID": "trace-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-500"
    assert response.json()["requestId"] == "trace-500" and response.json()["code"] == "INTERNAL"


async def test_gzip_only_above_the_threshold():
    async with _client(_app()) as client:
        small = await client.get("/healthz", headers={"Accept-Encoding": "gzip"})
        large = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
        raw = await client.get("/openapi.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in small.headers and len(small.content) < GZIP_MINIMUM_BYTES
    assert large.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in raw.headers
    assert large.json() == raw.json()
    assert len(gzip.compress(raw.content)) < len(raw.content) / 3


async def test_http_metrics_use_the_route_template_not_the_raw_path():
    app = _app()
    async with _client(app) as client:
        for rid in ("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"):
            await client.get(f"/internal/v1/restaurants/{rid}/strategic-config")
        await client.get("/random/1")
        await client.get("/random/2")
        await client.get("/openapi.json")
        text = (await client.get("/metrics")).text
    counts = samples(text, "http_requests_total")
    template = "/internal/v1/restaurants/{restaurantId}/strategic-config"
    assert counts[(("method", "GET"), ("route", template), ("status", "401"))] == 2
    assert counts[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 2
    assert counts[(("method", "GET"), ("route", "/openapi.json"), ("status", "200"))] == 1
    assert not any("00000000" in dict(k)["route"] for k in counts)
    histogram = samples(text, "http_request_duration_seconds_count")
    assert histogram[(("method", "GET"), ("route", template))] == 2


async def test_observe_assign_run_feeds_the_assign_metrics():
    app = _app()
    metrics = app.state.service_metrics
    observe_assign_run(metrics, planner="lns", dry_run=False, duration_s=0.2, assigned=18,
                       skipped_reason_codes=["NO_SUITABLE_TABLES", "NO_SUITABLE_TABLES", "SERVICE_CLOSED"])
    observe_assign_run(metrics, planner="greedy", dry_run=True, duration_s=0.05, assigned=3, skipped_reason_codes=[])
    async with _client(app) as client:
        text = (await client.get("/metrics")).text
    skipped = samples(text, "assign_bookings_skipped_total")
    assert skipped[(("dry_run", "false"), ("reason_code", "NO_SUITABLE_TABLES"))] == 2
    assert skipped[(("dry_run", "false"), ("reason_code", "SERVICE_CLOSED"))] == 1
    assert samples(text, "assign_bookings_assigned_total")[(("dry_run", "false"), ("planner", "lns"))] == 18
    assert samples(text, "assign_runs_total")[(("dry_run", "true"), ("planner", "greedy"))] == 1
    assert samples(text, "assign_run_duration_seconds_count")[(("dry_run", "false"), ("planner", "lns"))] == 1
