"""Record every object DDL touches in a database (docs/schema.md §7 case 2: "a second run executes no DDL").

An event trigger on ``ddl_command_end`` copies each row of ``pg_event_trigger_ddl_commands()`` into a
table in its own schema (``capacity_ddl_audit``, so manifests of ``public`` are not affected). Objects are
counted, not events: a skipped ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` fires the event but reports
no object. Needs a superuser connection (event triggers).

    with ddl_audit(url) as audit:
        migrate.upgrade(url, "head")
    assert audit.objects == []
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg

SCHEMA = "capacity_ddl_audit"

_INSTALL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.objects (
    seq bigserial PRIMARY KEY,
    command_tag text,
    object_type text,
    object_identity text
);
CREATE OR REPLACE FUNCTION {SCHEMA}.record() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        INSERT INTO {SCHEMA}.objects (command_tag, object_type, object_identity)
        VALUES (r.command_tag, r.object_type, r.object_identity);
    END LOOP;
END
$fn$;
DROP EVENT TRIGGER IF EXISTS capacity_ddl_audit;
CREATE EVENT TRIGGER capacity_ddl_audit ON ddl_command_end EXECUTE FUNCTION {SCHEMA}.record();
TRUNCATE {SCHEMA}.objects;
"""

_REMOVE = f"""
DROP EVENT TRIGGER IF EXISTS capacity_ddl_audit;
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
"""


@dataclass
class DdlAudit:
    url: str
    objects: list[tuple[str, str, str]] = field(default_factory=list)

    def read(self) -> list[tuple[str, str, str]]:
        """(command_tag, object_type, object_identity) recorded so far, in order."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                f"SELECT command_tag, object_type, object_identity FROM {SCHEMA}.objects ORDER BY seq"
            ).fetchall()
        return [tuple(r) for r in rows]


def install(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_INSTALL)


def remove(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_REMOVE)


@contextlib.contextmanager
def ddl_audit(url: str) -> Iterator[DdlAudit]:
    """Record DDL objects while the block runs; ``audit.objects`` holds them afterwards."""
    install(url)
    audit = DdlAudit(url)
    try:
        yield audit
        audit.objects = audit.read()
    finally:
        remove(url)


def recorded_objects(url: str, action) -> list[tuple[str, str, str]]:
    """Run ``action()`` under the audit and return the DDL objects it touched."""
    with ddl_audit(url) as audit:
        action()
    return audit.objects
