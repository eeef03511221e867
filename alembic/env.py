"""Alembic environment for capacity-service.

- Version table ``capacity_alembic_version`` (an adopted database may already have another tool's
  ``alembic_version``), one transaction per revision.
- A session advisory lock serialises concurrent migrators (two replicas starting together).
- ``lock_timeout`` bounds every DDL lock wait; a timeout fails the revision cleanly (55P03).
- The pre-flight checks (service/schema/preflight.py) run before any revision, online and offline, so a
  refused migration leaves the database exactly as it was — no version table, no ledger row.
- Offline (``--sql``): the same SQL is printed, with Alembic's own version-table statements rewritten
  into guarded forms so the script can be applied twice (``psql -v ON_ERROR_STOP=1``).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from logging.config import fileConfig
from typing import TextIO, cast

import psycopg
from alembic import context
from psycopg.errors import Diagnostic
from sqlalchemy import create_engine, pool, text

from service.dburl import to_libpq_url, to_sqlalchemy_url
from service.schema.preflight import preflight_sql
from service.settings import Settings

VERSION_TABLE = "capacity_alembic_version"
LOCK_SQL = "SELECT pg_advisory_lock(hashtextextended('capacity-service:migrations', 0))"
UNLOCK_SQL = "SELECT pg_advisory_unlock(hashtextextended('capacity-service:migrations', 0))"
TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended('capacity-service:migrations', 0))"
LOCK_POLL_S = 0.5

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("capacity.migrations")


def _settings() -> Settings:
    return config.attributes.get("settings") or Settings()


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return url
    secret = _settings().database_url
    if secret is None:
        raise SystemExit("DATABASE_URL is not set (use the postgresql://user@host:port/db form)")
    return secret.get_secret_value()


def _session_settings(settings: Settings) -> list[str]:
    return [
        f"SET lock_timeout = '{settings.migrate_lock_timeout}'",
        "SET statement_timeout = 0",
        "SET client_min_messages = notice",
    ]


def _known_revisions() -> list[str]:
    script = context.script
    return [rev.revision for rev in script.walk_revisions()]


def _skip_preflight() -> bool:
    return context.get_x_argument(as_dictionary=True).get("skip_preflight", "false").lower() == "true"


class _GuardedVersionStatements:
    """Offline output filter: make Alembic's version-table statements re-runnable."""

    _create = re.compile(rf"^CREATE TABLE {VERSION_TABLE} ", re.M)
    _insert = re.compile(rf"^INSERT INTO {VERSION_TABLE} \(version_num\) VALUES \('([^']+)'\)(?: RETURNING [\w.]+)?;", re.M)

    def __init__(self, out):
        self._out = out

    def write(self, chunk: str) -> int:
        chunk = self._create.sub(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} ", chunk)
        chunk = self._insert.sub(
            lambda m: f"INSERT INTO {VERSION_TABLE} (version_num) SELECT '{m.group(1)}' "
            f"WHERE NOT EXISTS (SELECT 1 FROM {VERSION_TABLE});",
            chunk,
        )
        return self._out.write(chunk)

    def flush(self) -> None:
        self._out.flush()


def run_migrations_offline() -> None:
    settings = _settings()
    buffer = _GuardedVersionStatements(config.output_buffer or sys.stdout)
    context.configure(
        url=to_sqlalchemy_url(_database_url(), kind="sync") if _has_url() else "postgresql+psycopg://",
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        version_table=VERSION_TABLE,
        transaction_per_migration=True,
        output_buffer=cast(TextIO, buffer),  # write/flush is all Alembic calls
    )
    buffer.write("\\set ON_ERROR_STOP on\n\n")
    for stmt in _session_settings(settings):
        buffer.write(stmt + ";\n")
    buffer.write(LOCK_SQL + ";\n\n")
    if not _skip_preflight():
        buffer.write(preflight_sql(_known_revisions(), settings) + "\n\n")
    with context.begin_transaction():
        context.run_migrations()
    buffer.write("\n" + UNLOCK_SQL + ";\n")


def _has_url() -> bool:
    try:
        _database_url()
    except SystemExit:
        return False
    return True


def _acquire_migration_lock(connection) -> None:
    """Poll ``pg_try_advisory_lock`` between short transactions instead of blocking in
    ``pg_advisory_lock``: a backend blocked inside a statement holds a snapshot, and the lock holder's
    ``CREATE INDEX CONCURRENTLY`` waits for every older snapshot — the two would deadlock."""
    waited = False
    while True:
        got = connection.execute(text(TRY_LOCK_SQL)).scalar()
        connection.commit()
        if got:
            return
        if not waited:
            log.info("another migrator holds the migration lock; waiting")
            waited = True
        time.sleep(LOCK_POLL_S)


def _log_notice(diag: Diagnostic) -> None:
    """Server NOTICEs (progress of long steps, back-fill counts) go to the migration log on stderr.
    ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` cannot be guarded by a catalog check, so on a fresh
    database every index built in the revision transaction meets its concurrent twin and the server
    says "already exists, skipping" (42P07): expected, kept at DEBUG."""
    if diag.sqlstate == "42P07" and (diag.message_primary or "").endswith(", skipping"):
        log.debug("%s", diag.message_primary)
    else:
        log.info("%s", diag.message_primary)


PROGRESS_POLL_S = 2.0
_INDEX_PROGRESS_SQL = """SELECT coalesce(nullif(index_relid, 0)::regclass::text, 'new index'), relid::regclass::text, phase,
       blocks_done, blocks_total, tuples_done, tuples_total
  FROM pg_stat_progress_create_index WHERE pid = %s"""


class _IndexBuildProgress(threading.Thread):
    """Index builds (CREATE INDEX CONCURRENTLY, and the index behind an exclusion constraint, built under
    its ALTER TABLE) are single statements that can run for minutes on a large table: a second connection
    reads pg_stat_progress_create_index for the migration's backend every PROGRESS_POLL_S seconds and logs
    phase, blocks and tuples done / total with the elapsed time. Autocommit one-row reads: it holds no
    snapshot a concurrent index build would wait for."""

    def __init__(self, url: str, backend_pid: int):
        super().__init__(name="capacity-migration-progress", daemon=True)
        self.url = url
        self.backend_pid = backend_pid
        self._halt = threading.Event()

    def run(self) -> None:
        started: dict[str, float] = {}
        try:
            with psycopg.connect(self.url, autocommit=True, application_name="capacity-service migrate progress") as conn:
                while not self._halt.wait(PROGRESS_POLL_S):
                    for index, table, phase, blocks, blocks_total, tuples, tuples_total in conn.execute(
                        _INDEX_PROGRESS_SQL, (self.backend_pid,)
                    ):
                        first = started.setdefault(f"{table}.{index}", time.monotonic())
                        log.info("capacity index build %s on %s: %s, blocks %s / %s, tuples %s / %s, %.0f s",
                                 index, table, phase, blocks, blocks_total, tuples, tuples_total,
                                 time.monotonic() - first)
        except psycopg.Error as exc:  # progress is a courtesy; the migration goes on without it
            log.debug("index build progress unavailable: %s", exc)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=PROGRESS_POLL_S * 2)


def run_migrations_online() -> None:
    settings = _settings()
    connectable = config.attributes.get("connection")
    engine = None
    if connectable is None:
        engine = create_engine(
            to_sqlalchemy_url(_database_url(), kind="sync"),
            poolclass=pool.NullPool,
            connect_args={"application_name": "capacity-service migrate"},
        )
        connectable = engine.connect()
    connection = connectable
    try:
        raw = connection.connection.driver_connection
        assert raw is not None, "the migration connection is closed"
        raw.add_notice_handler(_log_notice)
        progress = None
        if engine is not None:
            progress = _IndexBuildProgress(to_libpq_url(engine.url), raw.info.backend_pid)
            progress.start()
        # Session-level settings and lock, outside the revision transactions.
        with connection.begin():
            for stmt in _session_settings(settings):
                connection.execute(text(stmt))
        _acquire_migration_lock(connection)
        try:
            if not _skip_preflight():
                # Read-only; its transaction is rolled back whether it passes or refuses.
                with connection.begin() as trans, raw.cursor() as cur:
                    cur.execute(preflight_sql(_known_revisions(), settings))
                    trans.rollback()
            context.configure(
                connection=connection,
                version_table=VERSION_TABLE,
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if connection.in_transaction():
                connection.rollback()
            connection.execute(text(UNLOCK_SQL))
            connection.commit()
            if progress is not None:
                progress.stop()
    finally:
        if engine is not None:
            connection.close()
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
