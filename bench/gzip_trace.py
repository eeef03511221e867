"""Response size of the decision trace on the wire (not a test of speed; tests/app/test_gzip_trace.py
asserts the size target).

Plans the benchmark days (bench/assign_day.py: 400 and 2,000 bookings) with captureDecisions, builds the
endpoint's dry-run response body, and sends it through the app's own GZipMiddleware settings
(service/observability/setup.py). Prints, per day: the uncompressed body (the same-run baseline), the bytes
on the wire at the configured level, and levels 1 and 9 for comparison, each with the compression time
(best of --repeats).

    uv run python bench/gzip_trace.py [--only small|large] [--repeats N] [--seed N]

Target (issue 12): the 400-booking day's trace under 1 MB on the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from assign_day import SCENARIOS, generate_day  # noqa: E402
from starlette.middleware.gzip import GZipMiddleware  # noqa: E402

from service.assign.service import build_response, endpoint_planner_options  # noqa: E402
from service.domain.allocator.model import AllocatorConfig  # noqa: E402
from service.domain.allocator.planner import plan_day  # noqa: E402
from service.observability.setup import GZIP_LEVEL, GZIP_MINIMUM_BYTES  # noqa: E402


def trace_body(scenario_name: str = "small", seed: int = 7) -> bytes:
    """The dry-run response with decisions of a benchmark day, serialised as the endpoint's JSONResponse."""
    scenario = next(s for s in SCENARIOS if s.name == scenario_name)
    day = generate_day(scenario, seed)
    options = replace(endpoint_planner_options(True, len(day.bookings)), capture_decisions=True)
    plan = plan_day(day, AllocatorConfig(), None, options)
    # the bytes the route sends (service.responses.model_response)
    return build_response(plan, day, None, capture=True, dry_run=True).model_dump_json(exclude_unset=True).encode()


async def wire_bytes(body: bytes, level: int = GZIP_LEVEL) -> tuple[int, float]:
    """(bytes on the wire, seconds) for ``body`` sent through GZipMiddleware as the app configures it."""

    async def endpoint(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    app = GZipMiddleware(endpoint, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=level)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        began = time.perf_counter()
        async with client.stream("GET", "/", headers={"Accept-Encoding": "gzip"}) as response:
            async for _ in response.aiter_raw():
                pass
            elapsed = time.perf_counter() - began
            assert response.headers.get("content-encoding") == "gzip"
            return response.num_bytes_downloaded, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"{'day':<28} {'raw bytes':>12} {'level':>6} {'wire bytes':>12} {'ratio':>7} {'gzip ms':>9}")
    for scenario in SCENARIOS:
        if args.only and scenario.name != args.only:
            continue
        body = trace_body(scenario.name, args.seed)
        label = f"{scenario.tables} tables / {scenario.bookings} bookings"
        print(f"{label:<28} {len(body):>12,} {'none':>6} {len(body):>12,} {1.0:>7.3f} {0.0:>9.1f}")
        for level in sorted({1, GZIP_LEVEL, 9}):
            runs = [asyncio.run(wire_bytes(body, level)) for _ in range(args.repeats)]
            size = runs[0][0]
            best = min(t for _, t in runs)
            mark = " (served)" if level == GZIP_LEVEL else ""
            print(f"{'':<28} {'':>12} {level:>6} {size:>12,} {size / len(body):>7.3f} {best * 1000:>9.1f}{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
