"""The ops page in a real browser: headless Chromium (the Debian package, driven by Playwright's Python
package, no browser download) against a live ``capacity-service serve`` on the demo restaurant.

The test types a token into the page, counts the booking bars in the rendered DOM and compares them with
the API, asks for the dry run and compares again, and saves a screenshot (``CAPACITY_UPDATE_SCREENSHOT=1``
also copies it to docs/img/day-view.png, the README's picture)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import JWT_SECRET, runtime_url
from tests.day_view.support import AFTER_THE_RUN, AFTERNOON_FOURS, ASSIGN_PATH, add_booking
from tests.support.requirements import unavailable

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a container: no sandbox; nothing that talks to the network on its own.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 60


def _chromium_or_skip() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    unavailable("chromium is not installed: apt-get install -y chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(demo, tmp_path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": runtime_url(demo.db_url), "CAPACITY_JWT_SECRET": JWT_SECRET,
           "CAPACITY_HOST": "127.0.0.1", "CAPACITY_PORT": str(port), "CAPACITY_LOG_LEVEL": "warning"}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {(tmp_path / 'server.log').read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not answer /healthz in time")
            time.sleep(0.1)  # polling interval while waiting for the port, not an ordering sleep
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_page_draws_the_api_day_and_the_dry_run(demo, live_server, tmp_path):
    chromium = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    base, auth = live_server, demo.auth()
    # the demo day after a morning run (which merges T1+T2 for a group) and three bookings taken since
    for b in AFTERNOON_FOURS:
        add_booking(demo, *b)
    run = httpx.post(base + ASSIGN_PATH, json=demo.assign_body(captureDecisions=False), headers=auth, timeout=30)
    assert run.status_code == 200, run.text
    for b in AFTER_THE_RUN:
        add_booking(demo, *b)
    day = httpx.get(base + demo.day_path, headers=auth).json()
    on_tables = [b for b in day["bookings"] if b["tableIds"]]
    assert any(len(b["tableIds"]) > 1 for b in on_tables)  # a merged set to show
    dry = httpx.post(base + ASSIGN_PATH, json=demo.assign_body(dryRun=True, captureDecisions=False),
                     headers=auth, timeout=30).json()
    assert dry["assigned"] and dry["skipped"]

    token = demo.token()
    console_errors: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 2560, "height": 720}, device_scale_factor=1, timezone_id="Europe/London",
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            page.goto(f"{base}/ops/days?restaurantId={demo.rid}&date={demo.date.isoformat()}")
            page.fill("#token", token)
            page.click("#show")
            page.wait_for_selector("body[data-state=ready]", timeout=30_000)
            current_bars = page.locator("#current svg g.booking-bar")
            assert current_bars.count() == len(on_tables)
            drawn_ids = set(current_bars.evaluate_all("els => els.map(e => e.dataset.bookingId)"))
            assert drawn_ids == {b["id"] for b in on_tables}
            # two merged sets since the relaxation ladder (docs/assign-tables.md §7.13)
            assert page.locator("#current g.booking-bar[data-kind=merged]").count() == 2
            assert page.locator("#current text.unassigned").count() == sum(b["needsTable"] for b in day["bookings"])

            page.click("#dry-run")
            page.wait_for_selector("#plan svg", timeout=30_000)
            page.wait_for_selector("body[data-state=ready]", timeout=30_000)
            assert page.locator("#plan svg g.booking-bar").count() == len(on_tables) + len(dry["assigned"])
            planned = page.locator("#plan g.booking-bar[data-kind^=planned]")
            assert set(planned.evaluate_all("els => els.map(e => e.dataset.bookingId)")) == {
                a["bookingId"] for a in dry["assigned"]}
            assert page.locator("#plan text.unassigned").count() == len(dry["skipped"])
            # the token went only into the header: not into the address, not into storage (box unticked)
            assert token not in page.url
            assert page.evaluate("() => sessionStorage.length + localStorage.length") == 0
            shot = tmp_path / "day-view.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
    assert console_errors == []  # a CSP violation or a script error would show here
    assert shot.stat().st_size > 20_000
    if os.environ.get("CAPACITY_UPDATE_SCREENSHOT"):
        target = REPO / "docs" / "img" / "day-view.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
