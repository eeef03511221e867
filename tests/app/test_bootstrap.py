"""The README's commands (``./run …``) on a PEP 668 "externally managed" Python.

The test builds such a Python the way Debian ships one: a prefix with the interpreter, its standard
library (hard links to this machine's) and an ``EXTERNALLY-MANAGED`` marker, checks that ``pip install``
really refuses there, then bootstraps with ``./run`` from a local stand-in for the PyPI JSON API serving a
stand-in uv wheel — so the test needs no network, and a wrong checksum is refused.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from tests.support.live import REPO
from tests.support.requirements import unavailable

RUN = REPO / "run"


def _uv_version() -> str:
    return next(line.split('"')[1] for line in RUN.read_text().splitlines() if line.startswith("UV_VERSION = "))


def _link_tree(src: Path, dst: Path, *ignore: str) -> None:
    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link, ignore=shutil.ignore_patterns(*ignore), symlinks=True)


@pytest.fixture(scope="module")
def managed_python(tmp_path_factory) -> Path:
    """A system-like Python prefix marked EXTERNALLY-MANAGED (PEP 668); returns its interpreter."""
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = base / "lib" / version
    binary = Path(getattr(sys, "_base_executable", "") or base / "bin" / version).resolve()
    if not (stdlib / "os.py").exists() or not binary.exists():
        unavailable("this Python's layout is not a plain prefix")
    prefix = tmp_path_factory.mktemp("pep668") / "usr"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy2(binary, prefix / "bin" / "python3")
    _link_tree(stdlib, prefix / "lib" / version, "site-packages", "dist-packages", "test", "__pycache__")
    site = prefix / "lib" / version / "site-packages"
    site.mkdir()
    if (stdlib / "site-packages" / "pip").is_dir():
        _link_tree(stdlib / "site-packages" / "pip", site / "pip", "__pycache__")
    (prefix / "lib" / version / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=This Python is managed by the system package manager (test double).\n"
    )
    python = prefix / "bin" / "python3"
    shown = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    assert shown.stdout.strip() == str(prefix), shown.stderr
    return python


class _FakeIndex(http.server.ThreadingHTTPServer):
    routes: dict[str, bytes]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's API)
        body = self.server.routes.get(self.path)  # type: ignore[attr-defined]
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        if body is not None:
            self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


def _fake_wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(f"uv-{_uv_version()}.data/scripts/uv")
        info.external_attr = 0o755 << 16
        archive.writestr(info, '#!/bin/sh\necho "stand-in uv: $*"\n')
    return buffer.getvalue()


def _wheel_name() -> str:
    import platform

    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    if sys.platform == "darwin":
        return f"uv-{_uv_version()}-py3-none-macosx_11_0_{'arm64' if arch == 'aarch64' else arch}.whl"
    return f"uv-{_uv_version()}-py3-none-manylinux_2_17_{arch}.manylinux2014_{arch}.whl"


def _serve(routes: dict[str, bytes]) -> _FakeIndex:
    server = _FakeIndex(("127.0.0.1", 0), _Handler)
    server.routes = routes
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _index(digest: str | None = None, *, versioned: bool = True) -> _FakeIndex:
    wheel = _fake_wheel()
    # relative, as the mirror here serves them (real PyPI gives absolute URLs; urljoin handles both)
    entry = {"filename": _wheel_name(), "url": "../../../files/uv.whl" if versioned else "../../files/uv.whl",
             "digests": {"sha256": digest or hashlib.sha256(wheel).hexdigest()}}
    routes = {"/files/uv.whl": wheel}
    if versioned:
        routes[f"/pypi/uv/{_uv_version()}/json"] = json.dumps({"urls": [entry]}).encode()
    else:  # a mirror serving only the project document
        routes["/pypi/uv/json"] = json.dumps({"urls": [], "releases": {_uv_version(): [entry]}}).encode()
    return _serve(routes)


def _run(python: Path, tools: Path, index: _FakeIndex, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tools.parent), "CAPACITY_TOOLS_DIR": str(tools),
           "CAPACITY_UV_INDEX": f"http://127.0.0.1:{index.server_address[1]}/pypi"}
    return subprocess.run([python, RUN, *args], capture_output=True, text=True, env=env, timeout=60)


def test_pip_install_is_refused_on_the_managed_python(managed_python):
    if not any((managed_python.parent.parent / "lib").glob("python3*/site-packages/pip")):
        unavailable("no pip to demonstrate with")
    done = subprocess.run([managed_python, "-m", "pip", "install", "uv"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1"}, timeout=60)
    assert done.returncode != 0
    assert "externally-managed-environment" in done.stdout + done.stderr


@pytest.mark.parametrize("versioned", [True, False], ids=["pypi", "mirror"])
def test_run_bootstraps_uv_on_the_managed_python(managed_python, tmp_path, versioned):
    index = _index(versioned=versioned)
    try:
        done = _run(managed_python, tmp_path / "tools", index, "pytest", "-q")
        again = _run(managed_python, tmp_path / "tools", index, "capacity-service", "serve")
    finally:
        index.shutdown()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stand-in uv: run --frozen pytest -q"
    assert again.stdout.strip() == "stand-in uv: run --frozen capacity-service serve"
    assert "fetching" in done.stderr and "fetching" not in again.stderr  # downloaded once


def test_run_refuses_a_wheel_whose_checksum_differs(managed_python, tmp_path):
    index = _index(digest="0" * 64)
    try:
        done = _run(managed_python, tmp_path / "tools", index, "pytest")
    finally:
        index.shutdown()
    assert done.returncode != 0 and "checksum mismatch" in done.stderr
    assert not list((tmp_path / "tools").rglob("uv"))


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    start = readme.index("Run the tests:")
    block = readme[start:].split("```bash\n", 1)[1].split("```", 1)[0].strip()
    assert block == "./run pytest"
    assert block in [line.strip() for line in ci]
    serve = readme[readme.index("## Quick start"):start].split("```bash\n", 1)[1].split("```", 1)[0].strip()
    assert serve == "./run capacity-service serve"
