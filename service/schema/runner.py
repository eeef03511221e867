"""Executes revision SQL the same way online and offline.

Online, the text goes to the driver unparsed (psycopg simple-query protocol: several statements per call,
no bind-parameter parsing of ``:name`` or ``%``), so what runs is byte for byte what ``--sql`` prints.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from alembic import context, op

log = logging.getLogger("capacity.migrations")


def run_sql(*chunks: str) -> None:
    sql = "\n".join(c.strip() for c in chunks if c and c.strip())
    if not sql:
        return
    ctx = op.get_context()
    if ctx.as_sql:
        ctx.impl.static_output(sql)
        return
    raw = op.get_bind().connection.driver_connection
    assert raw is not None, "the migration connection is closed"
    with raw.cursor() as cur:
        cur.execute(sql)


# Fault injection (docs/schema.md §7 case 5): ``migrate.upgrade(..., fault_after_autocommit_block=N)`` puts N in
# the Alembic config; the run then dies right after its N-th autocommit block, as a killed process would
# (what the block did is committed, the rest of the revision and its version row are not).
FAULT_AFTER_BLOCK = "fault_after_autocommit_block"
BLOCKS_DONE = "autocommit_blocks_done"


class InjectedFault(RuntimeError):
    """The migration was stopped on purpose by the fault-injection hook."""


@contextlib.contextmanager
def autocommit() -> Iterator[None]:
    """Statements that must not run in a transaction (CREATE INDEX CONCURRENTLY, short VALIDATE steps).

    Entering the block commits what the revision did so far; every step is re-runnable, so a failure
    later in the revision is repaired by running the upgrade again.
    """
    with op.get_context().autocommit_block():
        yield
    if not op.get_context().as_sql:
        _count_block_and_maybe_fail()


def _count_block_and_maybe_fail() -> None:
    attributes = context.config.attributes
    done = attributes.get(BLOCKS_DONE, 0) + 1
    attributes[BLOCKS_DONE] = done
    if attributes.get(FAULT_AFTER_BLOCK) == done:
        raise InjectedFault(f"fault injected after autocommit block {done}")


def x_flag(name: str) -> bool:
    """A boolean ``-x name=true`` option. Read in Python on purpose: it is baked into the generated SQL as a
    literal (the offline script records the operator's choice), it never inspects the database."""
    value = context.get_x_argument(as_dictionary=True).get(name, "false")
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def migration_settings():
    """The Settings the migration was started with (tests pass their own through the Alembic config)."""
    from service.settings import Settings

    return context.config.attributes.get("settings") or Settings()
