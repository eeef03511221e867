"""The expected shape: a greenfield head database's snapshot, restricted to what the service owns
(``service/schema/manifest.json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from service.schema import migrate
from service.schema.doctor.checked_objects import CHECKED_ROLES, SERVICE_TABLES
from service.schema.doctor.live_catalog import inspect_live

MANIFEST_PATH = Path(__file__).resolve().parents[1] / "manifest.json"
MANIFEST_FORMAT = 1
HEAD_REVISION = migrate.HEAD


def _known_revisions() -> list[str]:
    """Revision ids of the Alembic chain, oldest first."""
    return list(migrate.revisions())


def build_manifest(conn: psycopg.Connection, *, revisions: Sequence[str] | None = None) -> dict[str, Any]:
    """The expected state, taken from a greenfield database at head: only what the service owns."""
    snap = inspect_live(conn)
    revisions = list(revisions) if revisions is not None else _known_revisions()
    owned = {t: v for t, v in snap["tables"].items() if t not in SERVICE_TABLES}
    return {
        "format": MANIFEST_FORMAT,
        "head": revisions[-1] if revisions else None,
        "revisions": revisions,
        "tables": owned,
        "constraints": {k: v for k, v in snap["constraints"].items() if v["table"] in owned},
        "indexes": {k: v for k, v in snap["indexes"].items() if v["table"] in owned},
        "enums": snap["enums"],
        "functions": {k: {f: v for f, v in fn.items() if f != "unguarded_optional_table"}
                      for k, fn in snap["functions"].items()},
        "triggers": {k: v for k, v in snap["triggers"].items() if v["table"] in owned},
        "policies": {k: v for k, v in snap["policies"].items() if v["table"] in owned},
        "grants": {t: g for t, g in snap["grants"].items() if t in owned},
        "roles": {
            r: {f: v for f, v in attrs.items() if f != "privileges_of_table_owners"}
            for r, attrs in snap["roles"].items()
            if r in CHECKED_ROLES
        },
        "extensions": [e for e in snap["extensions"] if e == "btree_gist"],
    }


def manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    return json.loads(path.read_text())
