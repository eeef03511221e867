"""A real ``capacity-service serve`` in a subprocess, for tests that need uvicorn itself: workers, signals,
log lines, the smoke command against a deployment."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class LiveServer:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def live_server(
    env: dict[str, str], tmp_path: Path, *, args: tuple[str, ...] = (), wait: bool = True, name: str = "server"
) -> Iterator[LiveServer]:
    """Start ``serve`` with exactly ``env`` on top of a minimal environment; stop it (SIGTERM) at the end."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    full_env = {
        **base,
        "CAPACITY_PORT": str(port),
        "CAPACITY_READINESS_CACHE_S": "0",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", *args],
            cwd=REPO,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(process=process, port=port, log_path=log_path)
    try:
        if wait:
            wait_until(
                lambda: _answers(server.url) or process.poll() is not None, timeout=60, what=f"{name} to answer"
            )
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{server.logs()}")
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@contextlib.contextmanager
def embedded_data_dir() -> Iterator[Path]:
    """A data directory for the embedded PostgreSQL outside pytest's temporary tree: under root the server
    runs as another user, and any pytest session starting meanwhile resets /tmp/pytest-of-<user> to 0700,
    which would lock that user out mid-initdb."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="capacity-embedded-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
