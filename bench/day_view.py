"""Day view benchmark: how long a 200-table day takes to read, render and show (not a test).

    uv run python bench/day_view.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
                                    [--tables 200 --bookings 2000] [--rounds 15] [--no-browser]

Builds the synthetic day of bench/assign_day.py (200 tables in zones, 2,000 bookings, a few holds) in a
scratch database at head (created and dropped here), commits the endpoint's plan for it (so bookings sit on
tables, merged sets included), then times, as the runtime role ``capacity_app`` with a member's token:

- ``json``    GET /api/ops/dashboard/days/{id}/{date}            — the baseline: the day read alone, as JSON
- ``read``    the repository read alone (one snapshot)            — no HTTP, no serialisation
- ``render``  render_svg.render_timeline on the loaded day        — pure, no I/O
- ``svg``     GET …/timeline.svg                                  — read + render over HTTP
- ``plan``    POST …/timeline.svg with a dry-run response         — read + plan check + render
- ``page``    (headless Chromium, unless --no-browser) from the "Show day" click until the page has
              fetched JSON and SVG and the bars are in the DOM, against a live ``capacity-service serve``

HTTP rows go through the real app in-process (httpx's ASGI transport), median of ``--rounds`` after one
warm-up; the page row runs the same number of clicks. Numbers depend on the machine; the ratio svg/json is
the comparable one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from assign_commit import _url, run_once, seed  # noqa: E402
from assign_day import Scenario, generate_day  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from service.app import create_app  # noqa: E402
from service.auth import mint_token  # noqa: E402
from service.day_view import repository  # noqa: E402
from service.day_view.render_svg import render_timeline  # noqa: E402
from service.schema import migrate  # noqa: E402
from service.settings import Settings  # noqa: E402

SECRET = "bench-day-view-secret-0123456789abcdef"
USER = uuid.UUID("00000000-0000-4000-8000-00000000be01")


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.1f} ms  (p90 {sorted(samples)[int(len(samples) * 0.9) - 1] * 1000:.1f})"


async def _http_rows(runtime_url: str, rid: uuid.UUID, day_date: str, rounds: int) -> dict[str, list[float]]:
    settings = Settings(database_url=SecretStr(runtime_url), jwt_secret=SecretStr(SECRET),
                        strategic_config_listen=False, readiness_cache_s=60)
    app = create_app(settings)
    auth = {"Authorization": f"Bearer {mint_token(settings, sub=str(USER))}"}
    path = f"/api/ops/dashboard/days/{rid}/{day_date}"
    out: dict[str, list[float]] = {k: [] for k in ("json", "read", "render", "svg", "plan")}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
            dry = await client.post("/api/ops/dashboard/assign-tables", headers=auth,
                                    json={"restaurantId": str(rid), "date": day_date, "dryRun": True,
                                          "captureDecisions": False})
            dry.raise_for_status()
            plan = dry.json()
            svg_bytes = 0
            for n in range(rounds + 1):
                t0 = time.perf_counter()
                r = await client.get(path, headers=auth)
                t1 = time.perf_counter()
                r.raise_for_status()
                s = await client.get(path + "/timeline.svg", headers=auth)
                t2 = time.perf_counter()
                s.raise_for_status()
                p = await client.post(path + "/timeline.svg", headers=auth, json=plan)
                t3 = time.perf_counter()
                p.raise_for_status()
                async with app.state.sessionmaker() as session:
                    t4 = time.perf_counter()
                    day = await repository.load_day(session, rid, date.fromisoformat(day_date))
                    t5 = time.perf_counter()
                    await session.commit()
                t6 = time.perf_counter()
                render_timeline(day)
                t7 = time.perf_counter()
                if n == 0:  # warm-up
                    svg_bytes = len(s.content)
                    counts = (len(day.tables), len(day.bookings), sum(1 for b in day.bookings if b.table_ids),
                              sum(1 for b in day.bookings if len(b.table_ids) > 1), len(plan["assigned"]))
                    continue
                out["json"].append(t1 - t0)
                out["svg"].append(t2 - t1)
                out["plan"].append(t3 - t2)
                out["read"].append(t5 - t4)
                out["render"].append(t7 - t6)
    print(f"day: {counts[0]} tables, {counts[1]} bookings, {counts[2]} on tables ({counts[3]} merged); "
          f"dry run plans {counts[4]} more; SVG {svg_bytes / 1024:.0f} KiB")
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _page_row(runtime_url: str, rid: uuid.UUID, day_date: str, rounds: int) -> list[float] | str:
    chromium = shutil.which("chromium")
    if chromium is None:
        return "n/a (chromium not installed)"
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "DATABASE_URL": runtime_url, "CAPACITY_JWT_SECRET": SECRET, "CAPACITY_PORT": str(port),
           "CAPACITY_HOST": "127.0.0.1", "CAPACITY_LOG_LEVEL": "warning", "CAPACITY_STRATEGIC_CONFIG_LISTEN": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    samples: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    return "n/a (server did not start)"
                time.sleep(0.1)
        token = mint_token(Settings(jwt_secret=SecretStr(SECRET)), sub=str(USER))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{base}/ops/days?restaurantId={rid}&date={day_date}")
            page.fill("#token", token)
            for n in range(rounds + 1):
                t0 = time.perf_counter()
                page.click("#show")
                page.wait_for_function("() => document.body.dataset.state === 'ready' && "
                                       "document.querySelectorAll('#current g.booking-bar').length > 0",
                                       timeout=60_000)
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")  # one painted frame
                if n:
                    samples.append(time.perf_counter() - t0)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default=os.environ.get("TEST_DATABASE_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--bookings", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)

    day = generate_day(Scenario("day-view", args.tables, args.bookings), args.seed)
    name = f"capacity_bench_dv_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _url(args.admin_url, name)
        migrate.upgrade(url, "head")
        rid = seed(url, day)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO restaurant_memberships (user_id, restaurant_id, role) VALUES (%s, %s, 'host')",
                         (USER, rid))
        runtime = _url(args.admin_url, name, "capacity_app")
        asyncio.run(run_once(runtime, rid, day.service_date))  # the morning's run: bookings on tables
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        rows = asyncio.run(_http_rows(runtime, rid, day.service_date.isoformat(), args.rounds))
        page = "n/a (--no-browser)" if args.no_browser else _page_row(runtime, rid, day.service_date.isoformat(),
                                                                       args.rounds)
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(f"median of {args.rounds} (after one warm-up):")
    print(f"  json    GET day (baseline)      {_ms(rows['json'])}")
    print(f"  read    repository read only    {_ms(rows['read'])}")
    print(f"  render  SVG render only (pure)  {_ms(rows['render'])}")
    print(f"  svg     GET timeline.svg        {_ms(rows['svg'])}")
    print(f"  plan    POST timeline.svg+plan  {_ms(rows['plan'])}")
    if isinstance(page, str):
        print(f"  page    browser: show day       {page}")
    else:
        print(f"  page    browser: show day       {_ms(page)}")
    ratio = statistics.median(rows["svg"]) / statistics.median(rows["json"])
    print(f"svg / json = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
