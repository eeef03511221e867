"""``capacity-service smoke``: the deploy pipeline's check that a deployment really works.

Each step is one HTTP exchange with its own timeout, and every response is validated (status, content
type, body schema) against the OpenAPI document the deployment itself publishes at ``/openapi.json``,
with openapi-core. The dry-run check runs assign-tables twice with ``dryRun: true`` for the same date:
auto-assign only considers bookings without tables, so if the first run had written anything, the second
would see a different set of bookings. The internal config's ETag must also be unchanged (304).

Credentials are sent, never printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

ENV = {
    "base_url": "CAPACITY_SMOKE_BASE_URL",
    "restaurant_id": "CAPACITY_SMOKE_RESTAURANT_ID",
    "token": "CAPACITY_SMOKE_TOKEN",
    "api_key": "CAPACITY_SMOKE_API_KEY",
    "timeout": "CAPACITY_SMOKE_TIMEOUT_S",
}
DEFAULT_STEP_TIMEOUT_S = 10.0
ASSIGN_PATH = "/api/ops/dashboard/assign-tables"
OPS_CONFIG_PATH = "/api/ops/settings/strategic-config"
INTERNAL_CONFIG_PATH = "/internal/v1/restaurants/{restaurant_id}/strategic-config"


class StepFailed(Exception):
    """The step ran but its answer is wrong."""


@dataclass
class StepResult:
    name: str
    ok: bool
    status: int | None = None
    ms: float = 0.0
    detail: str = ""
    requestId: str | None = None


@dataclass
class SmokeReport:
    baseUrl: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def to_json(self) -> str:
        return json.dumps({"ok": self.ok, "baseUrl": self.baseUrl, "steps": [asdict(s) for s in self.steps]})

    def to_text(self) -> str:
        passed = sum(s.ok for s in self.steps)
        verdict = "passed" if self.ok else "FAILED"
        lines = [f"smoke {self.baseUrl}: {verdict} ({passed}/{len(self.steps)} steps)"]
        for s in self.steps:
            status = "-" if s.status is None else str(s.status)
            line = f"  {'ok  ' if s.ok else 'FAIL'} {s.name:<27} {status:>4} {s.ms:7.1f} ms"
            if s.detail:
                line += f"  {s.detail}"
            if not s.ok and s.requestId:
                line += f" [requestId {s.requestId}]"
            lines.append(line)
        return "\n".join(lines)


# --- openapi-core adapters: the protocol objects it validates ------------------------------------------
class _Request:
    def __init__(self, request: httpx.Request) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self._request = request
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
        )

    @property
    def host_url(self) -> str:
        url = self._request.url
        return f"{url.scheme}://{url.netloc.decode()}"

    @property
    def path(self) -> str:
        return self._request.url.path

    @property
    def method(self) -> str:
        return self._request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self._request.content or None

    @property
    def content_type(self) -> str:
        return self._request.headers.get("content-type", "").lower()


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        from werkzeug.datastructures import Headers

        self._response = response
        self.headers = Headers(list(response.headers.items()))

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def content_type(self) -> str:
        return self._response.headers.get("content-type", "").lower()

    @property
    def data(self) -> bytes | None:
        return self._response.content


def _validation_message(exc: Exception) -> str:
    causes = getattr(exc, "schema_errors", None) or getattr(getattr(exc, "__cause__", None), "schema_errors", None)
    if causes:
        return "; ".join(
            f"{'/'.join(str(p) for p in e.absolute_path) or 'body'}: {e.message}" for e in list(causes)[:3]
        )
    message, cause = str(exc), str(exc.__cause__ or "")
    return message + (f" ({cause})" if cause and cause not in message else "")


def _problem_summary(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:120]
    if isinstance(body, dict) and "code" in body:
        return f"{body.get('code')}: {body.get('detail') or body.get('title')}"
    return ""


class _Runner:
    def __init__(self, client: httpx.Client, report: SmokeReport) -> None:
        self.client = client
        self.report = report
        self.openapi: Any = None

    def step(
        self,
        name: str,
        method: str,
        path: str,
        *,
        expect: int,
        check: Callable[[httpx.Response], str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        started = time.perf_counter()
        result = StepResult(name=name, ok=False)
        response: httpx.Response | None = None
        try:
            response = self.client.request(method, path, **kwargs)
            result.status = response.status_code
            result.requestId = response.headers.get("x-request-id")
            if response.status_code != expect:
                raise StepFailed(f"expected {expect}; " + _problem_summary(response))
            if self.openapi is not None:
                try:
                    self.openapi.validate_response(_Request(response.request), _Response(response))
                except Exception as exc:  # openapi-core's error family
                    raise StepFailed("response does not match the OpenAPI document: " + _validation_message(exc)) from exc
            result.detail = check(response) if check else ""
            result.ok = True
        except StepFailed as exc:
            result.detail = str(exc)
        except httpx.TimeoutException:
            result.detail = f"no answer within {self.client.timeout.read}s"
        except httpx.HTTPError as exc:
            result.detail = f"{type(exc).__name__}: {exc}"
        result.ms = round((time.perf_counter() - started) * 1000, 1)
        self.report.steps.append(result)
        return response if result.ok else None


def run(
    *,
    base_url: str,
    restaurant_id: str,
    token: str,
    api_key: str,
    timeout_s: float,
    transport: httpx.BaseTransport | None = None,
) -> SmokeReport:
    """``transport``: tests hand in a stand-in deployment; the command always talks HTTP."""
    from openapi_core import OpenAPI

    report = SmokeReport(baseUrl=base_url.rstrip("/"))
    user = {"Authorization": f"Bearer {token}"}
    service = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(
        base_url=report.baseUrl, timeout=timeout_s, follow_redirects=False, transport=transport
    ) as client:
        runner = _Runner(client, report)

        def load_document(response: httpx.Response) -> str:
            try:
                runner.openapi = OpenAPI.from_dict(response.json())
            except Exception as exc:
                raise StepFailed(f"not a valid OpenAPI document: {exc}") from exc
            return f"OpenAPI {response.json().get('openapi')}, {len(response.json().get('paths', {}))} paths"

        if runner.step("openapi document", "GET", "/openapi.json", expect=200, check=load_document) is None:
            return report  # nothing to validate against; the deployment is not what it should be

        runner.step("liveness /healthz", "GET", "/healthz", expect=200)

        def readiness(response: httpx.Response) -> str:
            body = response.json()
            reasons = body.get("degradedReasons") or []
            return body["status"] + (f" ({', '.join(reasons)})" if reasons else "")

        runner.step("readiness /readyz", "GET", "/readyz", expect=200, check=readiness)
        runner.step(
            "ops strategic config", "GET", OPS_CONFIG_PATH, expect=200, params={"restaurantId": restaurant_id},
            headers=user,
        )
        internal_path = INTERNAL_CONFIG_PATH.format(restaurant_id=restaurant_id)
        internal = runner.step("internal strategic config", "GET", internal_path, expect=200, headers=service)

        def dry_run_body(response: httpx.Response) -> str:
            body = response.json()
            if body.get("dryRun") is not True:
                raise StepFailed("the response does not say dryRun: true")
            return f"{len(body['assigned'])} would be assigned, {len(body['skipped'])} skipped, planner {body['planner']}"

        first = runner.step(
            "assign-tables dry run", "POST", ASSIGN_PATH, expect=200, check=dry_run_body, headers=user,
            json={"restaurantId": restaurant_id, "dryRun": True, "captureDecisions": False},
        )
        if first is None:
            return report
        first_body = first.json()

        def nothing_written(response: httpx.Response) -> str:
            def bookings(body: dict[str, Any]) -> set[str]:
                return {a["bookingId"] for a in body["assigned"]} | {s["bookingId"] for s in body["skipped"]}

            before, after = bookings(first_body), bookings(response.json())
            if before != after:
                raise StepFailed(
                    f"the dry run changed which bookings are unassigned ({len(before)} before, {len(after)} after)"
                )
            return f"same {len(after)} unassigned bookings on {first_body['date']}"

        runner.step(
            "dry run wrote nothing", "POST", ASSIGN_PATH, expect=200, check=nothing_written, headers=user,
            json={"restaurantId": restaurant_id, "date": first_body["date"], "dryRun": True, "captureDecisions": False},
        )
        etag = internal.headers.get("etag") if internal is not None else None
        if etag:
            runner.step(
                "strategic config unchanged", "GET", internal_path, expect=304,
                headers={**service, "If-None-Match": etag},
            )
    return report
