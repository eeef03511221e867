"""Benchmark: the internal strategic-config read API vs a bare Starlette/asyncpg endpoint, same run.

    uv run python bench/config_read.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                                        [--connections 64] [--duration 10] [--warmup 2]

What it does: creates a scratch database on the given server (superuser URL; default TEST_DATABASE_URL,
else the local server; ``--embedded`` starts an embedded PostgreSQL), migrates it to head, seeds one
restaurant with a strategic_configs row, then serves

- **service**: the real app (``create_app``) under uvicorn, as the runtime role ``capacity_app``,
  authenticated with a configured API key, cache on (TTL 30 s, LISTEN/NOTIFY on);
- **bare**: a minimal Starlette app under uvicorn whose handler reads the same row through an asyncpg
  pool on every request, as the same runtime role under the same RLS (so it sets the tenant context in
  its transaction), with no auth, no cache and no resolution — the floor for "serve this row over HTTP".

Each server runs under uvicorn with ``--workers`` processes (default one per CPU, as deployed; uvloop,
httptools, no access log). The load generator is a separate
process with ``--connections`` keep-alive HTTP/1.1 connections, each sending requests back to back for
``--duration`` seconds after ``--warmup``. It prints requests/s, p50/p99 latency and the ratio
service/bare. Both servers and the generator share the machine, so absolute numbers depend on it;
the ratio is the comparable figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

API_KEY = "bench-internal-api-key"
RESTAURANT_ID = uuid.UUID("7b6f8f3e-3c1d-4a8e-9a51-0d0c1b2a3f40")


# --- the two servers (run inside uvicorn subprocesses via --factory) ----------------------------------


def service_app():  # pragma: no cover - runs under uvicorn
    from service.app import create_app
    from service.settings import Settings

    return create_app(Settings())


def bare_app():  # pragma: no cover - runs under uvicorn
    import asyncpg
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    dsn = os.environ["BENCH_BARE_DSN"]
    state: dict[str, asyncpg.Pool] = {}

    async def read(request):
        rid = uuid.UUID(request.path_params["rid"])
        # same role and RLS as the service: the tenant context must be set in the transaction
        async with state["pool"].acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('app.restaurant_id', $1, true)", str(rid))
            row = await conn.fetchrow(
                "SELECT scarcity_weight, demand_multiplier_override, future_conflict_penalty, version, updated_at "
                "FROM strategic_configs WHERE restaurant_id = $1",
                rid,
            )
        if row is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(
            {
                "restaurantId": str(rid),
                "weights": {
                    "scarcity": float(row["scarcity_weight"]),
                    "demandMultiplier": None if row[1] is None else float(row[1]),
                    "futureConflictPenalty": None if row[2] is None else float(row[2]),
                },
                "version": row["version"],
                "updatedAt": row["updated_at"].isoformat(),
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        state["pool"] = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        yield
        await state["pool"].close()

    return Starlette(
        routes=[Route("/internal/v1/restaurants/{rid}/strategic-config", read)], lifespan=lifespan
    )


# --- load generator -----------------------------------------------------------------------------------


async def _one_connection(
    host: str,
    port: int,
    request: bytes,
    warm_until: float,
    stop_at: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            end = time.perf_counter()
            if start >= warm_until:
                latencies.append(end - start)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


def _load_worker(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    connections: int,
    warmup: float,
    duration: float,
    out: mp.Queue,
) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}\r\n".encode()

    async def main() -> tuple[list[float], list[int]]:
        latencies: list[float] = []
        errors: list[int] = []
        now = time.perf_counter()
        warm_until, stop_at = now + warmup, now + warmup + duration
        await asyncio.gather(
            *(
                _one_connection(host, port, request, warm_until, stop_at, latencies, errors)
                for _ in range(connections)
            )
        )
        return latencies, errors

    latencies, errors = asyncio.run(main())
    out.put((latencies, errors))


def run_load(
    port: int, path: str, headers: dict[str, str], connections: int, warmup: float, duration: float
) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(
        target=_load_worker, args=("127.0.0.1", port, path, headers, connections, warmup, duration, queue)
    )
    proc.start()
    latencies, errors = queue.get()
    proc.join()
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(p * n))] * 1000 if n else float("nan")

    return {
        "requests": n,
        "rps": n / duration,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.fmean(latencies) * 1000 if n else float("nan"),
        "errors": len(errors),
    }


def _wrk_ms(text: str) -> float:
    value = float(text.rstrip("usm"))
    if text.endswith("us"):
        return value / 1000
    if text.endswith("ms"):
        return value
    return value * 1000  # seconds


def run_wrk(
    port: int, path: str, headers: dict[str, str], connections: int, warmup: float, duration: float
) -> dict[str, float]:
    """The same measurement with wrk (C, one thread): a much lighter generator, so on a small machine
    the server under test gets the CPU the Python generator would otherwise take."""
    url = f"http://127.0.0.1:{port}{path}"
    head = [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")]
    base = ["wrk", "-t1", f"-c{connections}", "--latency", *head, url]
    if warmup > 0:
        subprocess.run([*base[:3], f"-d{max(1, round(warmup))}s", *base[3:]], check=True, capture_output=True)
    out = subprocess.run(
        [*base[:3], f"-d{max(1, round(duration))}s", *base[3:]], check=True, capture_output=True, text=True
    ).stdout
    stats: dict[str, float] = {"errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.strip().startswith("50%"):
            stats["p50_ms"] = _wrk_ms(parts[1])
        elif line.strip().startswith("99%"):
            stats["p99_ms"] = _wrk_ms(parts[1])
        elif line.startswith("Requests/sec:"):
            stats["rps"] = float(parts[1])
        elif "requests in" in line:
            stats["requests"] = float(parts[0])
        elif parts[:1] == ["Latency"] and len(parts) >= 2 and parts[1] != "Distribution":
            stats["mean_ms"] = _wrk_ms(parts[1])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            stats["errors"] = float(parts[-1])
    return stats


# --- orchestration ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int, path: str, headers: dict[str, str], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer 200 on {path}")


@contextlib.contextmanager
def uvicorn_server(factory: str, env: dict[str, str], workers: int) -> Iterator[int]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    from service.schema import migrate
    from tests.support import pg

    url = pg.create_database(admin_url, "cap_bench")
    try:
        migrate.upgrade(url, "head")
        pg.run(
            url, "INSERT INTO restaurants (id, name, slug) VALUES (%s, 'Bench', 'bench')", (RESTAURANT_ID,)
        )
        pg.run(
            url,
            "INSERT INTO strategic_configs (restaurant_id, scarcity_weight, demand_multiplier_override) "
            "VALUES (%s, 30, 1.25)",
            (RESTAURANT_ID,),
        )
        yield url
    finally:
        pg.drop_database(admin_url, url)


@contextlib.contextmanager
def postgres(args: argparse.Namespace) -> Iterator[str]:
    if args.embedded:
        from tests.support import pg

        os.environ.pop("TEST_DATABASE_URL", None)
        with pg.postgres_server() as url:
            yield url
        return
    yield args.database_url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="superuser URL of a PostgreSQL server (a scratch database is created and dropped)",
    )
    parser.add_argument("--embedded", action="store_true", help="start an embedded PostgreSQL instead")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="uvicorn worker processes per server (same for both; default: one per CPU, as deployed)",
    )
    parser.add_argument(
        "--generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator: wrk when installed (auto), else the built-in asyncio one",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args()
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk") is not None)
    load = run_wrk if use_wrk else run_load
    load_before = os.getloadavg()[0]  # other work on the machine skews absolute numbers, not the ratio

    from sqlalchemy.engine import make_url

    path = f"/internal/v1/restaurants/{RESTAURANT_ID}/strategic-config"
    with postgres(args) as admin_url, scratch_database(admin_url) as db_url:
        runtime = (
            make_url(db_url).set(username="capacity_app", password=None).render_as_string(hide_password=False)
        )
        results: dict[str, dict[str, float]] = {}

        bare_env = {"BENCH_BARE_DSN": runtime}
        with uvicorn_server("bench.config_read:bare_app", bare_env, args.workers) as port:
            _wait_ready(port, path, {})
            results["bare"] = load(port, path, {}, args.connections, args.warmup, args.duration)

        service_env = {
            "DATABASE_URL": runtime,
            "CAPACITY_INTERNAL_API_KEYS": API_KEY,
            "CAPACITY_LOG_LEVEL": "warning",
        }
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with uvicorn_server("bench.config_read:service_app", service_env, args.workers) as port:
            _wait_ready(port, path, headers)
            results["service"] = load(port, path, headers, args.connections, args.warmup, args.duration)

    ratio = results["service"]["rps"] / results["bare"]["rps"] if results["bare"]["rps"] else float("nan")
    print(
        f"strategic-config internal read, {args.connections} connections, {args.duration:.0f}s "
        f"(+{args.warmup:.0f}s warm-up), {args.workers} uvicorn worker(s) per server, {os.cpu_count()} CPUs, "
        f"load average before: {load_before:.1f}, generator: {'wrk' if use_wrk else 'python'}"
    )
    print(f"{'target':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name in ("service", "bare"):
        r = results[name]
        print(f"{name:<10}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>8.0f}")
    print(
        f"throughput ratio service/bare: {ratio:.2f} (target >= 0.7); "
        f"service p99 {results['service']['p99_ms']:.1f} ms (target < 20 ms)"
    )
    if args.json:
        print(json.dumps({"ratio": ratio, **results}, indent=2))


if __name__ == "__main__":
    main()
