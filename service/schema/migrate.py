"""Programmatic access to the Alembic chain (used by the CLI, the embedded server and the tests)."""

from __future__ import annotations

import argparse
import functools
import io
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from service.schema.runner import BLOCKS_DONE, FAULT_AFTER_BLOCK
from service.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str | None, settings: Settings | None = None, **x_args: str) -> Config:
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "alembic"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["settings"] = settings or Settings()
    cfg.attributes["skip_logging_config"] = True
    if x_args:
        cfg.cmd_opts = _XOpts([f"{k}={v}" for k, v in x_args.items()])
    return cfg


class _XOpts(argparse.Namespace):
    """Stand-in for the argparse namespace Alembic reads ``-x`` options from."""

    def __init__(self, x: list[str]):
        super().__init__(x=x)


@functools.cache
def revisions() -> tuple[str, ...]:
    """Revision ids of the Alembic script directory, oldest first (the one source of the chain)."""
    script = ScriptDirectory.from_config(alembic_config(None))
    return tuple(r.revision for r in reversed(list(script.walk_revisions())))


def head() -> str:
    return revisions()[-1]


HEAD = head()


def upgrade(
    database_url: str,
    target: str = "head",
    settings: Settings | None = None,
    *,
    fault_after_autocommit_block: int | None = None,
    **x_args: str,
) -> int:
    """Upgrade to ``target``; returns how many autocommit blocks ran. ``fault_after_autocommit_block=N``
    (tests only) kills the run right after its N-th autocommit block (runner.InjectedFault)."""
    cfg = alembic_config(database_url, settings, **x_args)
    cfg.attributes[FAULT_AFTER_BLOCK] = fault_after_autocommit_block
    command.upgrade(cfg, target)
    return cfg.attributes.get(BLOCKS_DONE, 0)


def downgrade(database_url: str, target: str, settings: Settings | None = None, **x_args: str) -> None:
    command.downgrade(alembic_config(database_url, settings, **x_args), target)


def offline_sql(target: str = "head", settings: Settings | None = None, **x_args: str) -> str:
    cfg = alembic_config(None, settings, **x_args)
    buf = io.StringIO()
    cfg.output_buffer = buf
    command.upgrade(cfg, target, sql=True)
    return buf.getvalue()
