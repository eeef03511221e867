"""Property-based fuzzing of every operation in the app's own OpenAPI document (schemathesis), against a
live uvicorn on a seeded database, with real credentials: a member's token on /api/ops/*, a service
token on /internal/*. Half of the generated requests are pointed at the seeded restaurant (so runs,
reads and writes really happen), the rest keep the generated ids (403/404 paths). Both valid requests
and requests that break the documented schema are generated.

Checks on every response: no 5xx, the status code is documented for the operation, the content type is
a documented one, the body matches the documented schema, documented headers are present, and a request
generated to break the schema is refused with a 4xx (the server enforces what the document says).
"""

from __future__ import annotations

import time

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.auth import mint_token
from tests.api.assign_support import AssignWorld
from tests.hardening.live import serve_in_thread

# Examples per operation: 6 operations with inputs x 300 (+ the two probes) ≈ 1,800 requests, ~30 s.
EXAMPLES_PER_OPERATION = 300
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,  # a request that breaks the documented schema is refused (4xx), never served
]


def _seed(aw: AssignWorld) -> None:
    for start, end, party in [("18:00", "19:30", 2), ("18:30", "20:00", 4), ("19:00", "20:30", 3)]:
        aw.booking(party, start, end, status="pending_allocation")


def _pin_restaurant(case, rid: str) -> None:
    if case.path_parameters and "restaurantId" in case.path_parameters:
        case.path_parameters["restaurantId"] = rid
    if case.query and "restaurantId" in case.query:
        case.query["restaurantId"] = [rid] if isinstance(case.query["restaurantId"], list) else rid
    if isinstance(case.body, dict) and "restaurantId" in case.body:
        case.body["restaurantId"] = rid


def _fuzz_operation(operation, auth: dict[str, str], base: str, session, rid: str, tally) -> None:
    # valid requests (they must succeed or be refused as documented) and requests that break the schema
    # (they must be refused with a documented 4xx, never a 5xx). Only valid requests are pinned to the
    # seeded restaurant: pinning a negative case could overwrite the very value that broke the schema
    cases = operation.as_strategy(GenerationMode.POSITIVE).map(lambda case: (case, True))
    if operation.path_parameters or operation.query or operation.body or operation.headers:
        negative = operation.as_strategy(GenerationMode.NEGATIVE).map(lambda case: (case, False))
        cases = st.one_of(cases, negative)

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests every run: a failure here is reproducible, never a flake
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(generated=cases, pin=st.booleans())
    def run(generated, pin: bool) -> None:
        case, valid = generated
        if pin and valid:
            _pin_restaurant(case, rid)
        case.headers = {**(case.headers or {}), **auth}
        response = case.call_and_validate(base_url=base, session=session, checks=CHECKS)
        tally(operation.label, response.status_code)

    run()


def test_every_operation_survives_generated_requests(aw: AssignWorld) -> None:
    _seed(aw)
    app = create_app(aw.settings.model_copy(update={"strategic_config_listen": False}))
    schema = schemathesis.openapi.from_dict(app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7, [op.label for op in operations]
    user = {"Authorization": f"Bearer {mint_token(aw.settings, sub=str(aw.users['owner']))}"}
    service = {"Authorization": f"Bearer {mint_token(aw.settings, sub=None, role='service_role')}"}
    sent: dict[str, int] = {}
    statuses: dict[int, int] = {}

    def tally(label: str, status: int) -> None:
        sent[label] = sent.get(label, 0) + 1
        statuses[status] = statuses.get(status, 0) + 1

    started = time.monotonic()
    with serve_in_thread(app) as base, requests.Session() as session:
        for operation in operations:
            auth = service if operation.path.startswith("/internal/") else user
            _fuzz_operation(operation, auth, base, session, str(aw.rid), tally)
    elapsed = time.monotonic() - started
    total = sum(sent.values())
    print(f"fuzz: {total} requests in {elapsed:.1f} s; per operation {sent}; statuses {statuses}")
    assert total >= 1_000, sent
    assert set(sent) == {op.label for op in operations}  # every operation was exercised
    # the fuzz reached both the happy path and the refusals
    assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0, statuses
