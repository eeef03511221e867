"""The 400-booking day's decision trace goes out under 1 MB (a size target: measured, not timed)."""

from __future__ import annotations

import importlib.util
import sys

from tests.support.live import REPO


def _bench():
    sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location("gzip_trace", REPO / "bench" / "gzip_trace.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


async def test_the_400_booking_trace_is_under_one_megabyte_on_the_wire():
    bench = _bench()
    body = bench.trace_body("small")
    wire, _ = await bench.wire_bytes(body)
    assert len(body) > 4_000_000  # the uncompressed trace (≈6.3 MB): what would be sent without gzip
    assert wire < 1_000_000
