"""Released revisions are frozen (issue 9 item 1).

- A fresh database upgraded to each released revision has exactly the committed schema of that revision
  (tests/migrations/schema_at/<revision>.json): editing a definition a released revision reads, or a helper
  it renders its SQL with, fails here.
- A database at each released revision, upgraded to head, equals a greenfield database at head (the
  doctor's manifest, function bodies included), so every path an operator can be on ends in one schema.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.schema import doctor, migrate
from service.schema.released import RELEASED_REVISIONS
from tests.migrations.frozen_history import load_snapshot, manifest_at, snapshot_path
from tests.support import pg


def test_released_revisions_are_the_oldest_part_of_the_chain_and_each_has_a_snapshot() -> None:
    chain = migrate.revisions()
    assert chain[: len(RELEASED_REVISIONS)] == RELEASED_REVISIONS
    assert [r for r in RELEASED_REVISIONS if not snapshot_path(r).exists()] == []


def test_head_is_the_last_revision_of_the_script_directory() -> None:
    assert migrate.HEAD == migrate.revisions()[-1] == doctor.HEAD_REVISION


@pytest.fixture
def scratch_db(pg_admin_url: str) -> Iterator[str]:
    url = pg.create_database(pg_admin_url, "cap_frozen")
    yield url
    pg.drop_database(pg_admin_url, url)


def _diff(expected: dict, actual: dict) -> list[str]:
    """Keys of the manifest's object maps that differ (readable failure instead of a 3,000-line dict)."""
    out = []
    for section in sorted(set(expected) | set(actual)):
        exp, act = expected.get(section), actual.get(section)
        if isinstance(exp, dict) and isinstance(act, dict):
            out += [f"{section}.{k}" for k in sorted(set(exp) | set(act)) if exp.get(k) != act.get(k)]
        elif exp != act:
            out.append(section)
    return out


@pytest.mark.parametrize("revision", RELEASED_REVISIONS)
def test_fresh_upgrade_to_a_released_revision_produces_its_committed_schema(scratch_db: str, revision: str) -> None:
    migrate.upgrade(scratch_db, revision)
    expected = load_snapshot(revision)
    actual = manifest_at(scratch_db, revision)
    assert _diff(expected, actual) == [], f"released revision {revision} no longer produces its committed schema"
    assert actual == expected


@pytest.mark.parametrize("revision", RELEASED_REVISIONS)
def test_upgrade_from_each_released_revision_to_head_equals_greenfield_head(
    scratch_db: str, head_db: str, revision: str
) -> None:
    migrate.upgrade(scratch_db, revision)
    migrate.upgrade(scratch_db, "head")
    greenfield = manifest_at(head_db, migrate.HEAD)
    upgraded = manifest_at(scratch_db, migrate.HEAD)
    assert _diff(greenfield, upgraded) == []
    assert upgraded == greenfield
    assert pg.run(scratch_db, "SELECT version_num FROM capacity_alembic_version") == [(migrate.HEAD,)]


def test_alembic_revision_writes_a_guarded_skeleton_that_upgrades_and_downgrades(
    scratch_db: str, tmp_path: Path
) -> None:
    """``alembic revision -m ...`` (the repository's script.py.mako) gives a revision built on the guarded
    helpers; as generated (nothing declared yet) it upgrades, re-runs and downgrades cleanly."""
    from alembic import command

    shutil.copytree(migrate.REPO_ROOT / "alembic", tmp_path / "alembic")
    cfg = migrate.alembic_config(scratch_db)
    cfg.set_main_option("script_location", str(tmp_path / "alembic"))
    script = command.revision(cfg, message="add kitchen note", rev_id="9999_skeleton")
    assert script is not None and not isinstance(script, list)
    text = Path(script.path).read_text()
    assert "from service.schema.ddl import" in text and "ensure_columns(revision" in text
    assert f"down_revision = {migrate.HEAD!r}" in text
    command.upgrade(cfg, "head")
    assert pg.run(scratch_db, "SELECT version_num FROM capacity_alembic_version") == [("9999_skeleton",)]
    command.downgrade(cfg, "-1")
    assert pg.run(scratch_db, "SELECT version_num FROM capacity_alembic_version") == [(migrate.HEAD,)]
