"""A real PgBouncer in transaction mode in front of the test PostgreSQL, started per test on a free port.

The Debian package ``pgbouncer`` provides the binary (``.ci/run`` installs it when missing). PgBouncer
refuses to run as root, so under root it runs as the ``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tests.support.live import free_port, wait_until
from tests.support.requirements import unavailable


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
    )


@contextlib.contextmanager
def pgbouncer(admin_url: str, *, pool_size: int = 2) -> Iterator[int]:
    """Yield the port of a transaction-mode PgBouncer for every database on ``admin_url``'s server."""
    binary = pgbouncer_binary()
    assert binary is not None, "pgbouncer is not installed (apt-get install pgbouncer)"
    target = make_url(admin_url)
    if target.host is None:
        # the embedded fallback server listens on a private socket directory only
        unavailable("pgbouncer tests need a TCP PostgreSQL (TEST_DATABASE_URL, as in .ci/run)")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="capacity-pgbouncer-"))
    (workdir / "users.txt").write_text('"capacity_app" ""\n"postgres" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={_server_host(target)} port={target.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/users.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 200
server_reset_query =
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
"""
    )
    command = [binary, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(workdir, user.pw_uid, user.pw_gid)
        for f in workdir.iterdir():
            os.chown(f, user.pw_uid, user.pw_gid)
        command = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    probe = through(admin_url, port)

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"pgbouncer exited: {process.stdout.read().decode() if process.stdout else ''}")
        try:
            with psycopg.connect(probe, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    try:
        wait_until(answers, timeout=20, what="pgbouncer to accept connections")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _server_host(url) -> str:
    # TCP host, or the socket directory of the embedded fallback server (?host=/path)
    query_host = url.query.get("host")
    return url.host or (query_host if isinstance(query_host, str) else None) or "127.0.0.1"


def through(url: str, port: int) -> str:
    """The same database and login, via the pooler."""
    u = make_url(url)
    return u.difference_update_query(["host"]).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
