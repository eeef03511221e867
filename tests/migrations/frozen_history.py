"""The committed schema of every released revision (tests/migrations/schema_at/<revision>.json).

Each file is the doctor's manifest (tables and columns, constraints, indexes, enums, functions with body
md5 and marker, triggers, policies, grants, roles, extensions) of a fresh database upgraded to exactly that
revision. ``test_frozen_history.py`` compares a fresh upgrade with it, so a released revision that starts
producing something else fails the suite.

A snapshot is written once, when its revision is released, and never regenerated:

    uv run python -m tests.migrations.frozen_history postgresql://postgres@127.0.0.1:5432/postgres

writes the snapshots that are missing and leaves existing ones alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import psycopg

from service.schema import doctor, migrate
from service.schema.released import RELEASED_REVISIONS
from tests.support import pg

SNAPSHOT_DIR = Path(__file__).with_name("schema_at")


def snapshot_path(revision: str) -> Path:
    return SNAPSHOT_DIR / f"{revision}.json"


def manifest_at(url: str, revision: str) -> dict[str, Any]:
    """The manifest of the database at ``url``, which is at ``revision``."""
    chain = list(migrate.revisions())
    with psycopg.connect(url, autocommit=True) as conn:
        return doctor.build_manifest(conn, revisions=chain[: chain.index(revision) + 1])


def load_snapshot(revision: str) -> dict[str, Any]:
    return json.loads(snapshot_path(revision).read_text())


def write_missing(admin_url: str) -> list[str]:
    written = []
    for revision in RELEASED_REVISIONS:
        path = snapshot_path(revision)
        if path.exists():
            continue
        url = pg.create_database(admin_url, "cap_snapshot")
        try:
            migrate.upgrade(url, revision)
            path.write_text(doctor.manifest_text(manifest_at(url, revision)))
        finally:
            pg.drop_database(admin_url, url)
        written.append(revision)
    return written


if __name__ == "__main__":
    for rev in write_missing(sys.argv[1]):
        print(f"wrote {snapshot_path(rev)}")
