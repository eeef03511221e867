"""A live uvicorn (real sockets, real keep-alive) for the tests that must see connection-level behaviour.

``serve_in_thread`` runs the app in this process on its own event loop (the test talks to it over TCP);
``serve_in_subprocess`` runs ``capacity-service``'s app factory in a child process, configured by env.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

REPO = Path(__file__).resolve().parents[2]


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(interval_s)


@contextlib.contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    sock = free_socket()
    port = sock.getsockname()[1]
    # log_config=None: uvicorn's loggers propagate to the root logger, so caplog sees "Exception in ASGI
    # application" if it ever happens
    config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on", timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, "uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextlib.contextmanager
def serve_in_subprocess(env: dict[str, str], log_path: Path) -> Iterator[str]:
    with contextlib.closing(free_socket()) as probe:
        port = probe.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "service.app:app_from_environment",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--timeout-keep-alive",
        "60",
        "--log-level",
        "warning",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"uvicorn exited: {log_path.read_text()[-2000:]}")
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 60, "uvicorn subprocess answers /healthz", interval_s=0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
