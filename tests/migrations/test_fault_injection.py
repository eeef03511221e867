"""docs/schema.md §7 case 5: every revision, killed right after each of its autocommit blocks (the fault-injection
hook in service/schema/runner.py) and then re-run, completes and leaves what an uninterrupted run leaves: the
same manifest (the doctor's snapshot of everything the service owns) and the same ledger, so a later
downgrade removes exactly what an uninterrupted run would have let it remove. Greenfield and adoption of the
original platform's database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from service.schema import doctor, migrate
from service.schema.runner import InjectedFault
from tests.migrations.test_adopt_original import load_original
from tests.support import pg

# autocommit blocks of a full run: 0001 ×2, 0002, 0003 ×2, 0005, 0006, 0010 (checked below, so a new block in a
# revision fails here until it is covered)
BLOCKS = 8


def _state(url: str) -> tuple[dict, list[tuple], list[tuple]]:
    with psycopg.connect(url) as conn:
        manifest = doctor.build_manifest(conn)
    ledger = pg.run(
        url,
        "SELECT revision, object_kind, object_name, action FROM capacity_schema_ledger ORDER BY 1, 2, 3, 4",
    )
    version = pg.run(url, "SELECT version_num FROM capacity_alembic_version")
    return manifest, ledger, version


def _uninterrupted(admin_url: str, prepare) -> Iterator[tuple[int, tuple]]:
    url = pg.create_database(admin_url, "cap_fault_ref")
    try:
        prepare(url)
        blocks = migrate.upgrade(url, "head")
        yield blocks, _state(url)
    finally:
        pg.drop_database(admin_url, url)


@pytest.fixture(scope="module")
def greenfield_reference(pg_admin_url: str) -> Iterator[tuple[int, tuple]]:
    yield from _uninterrupted(pg_admin_url, lambda url: None)


@pytest.fixture(scope="module")
def adopted_reference(pg_admin_url: str) -> Iterator[tuple[int, tuple]]:
    yield from _uninterrupted(pg_admin_url, load_original)


def test_a_full_run_has_the_autocommit_blocks_covered_here(greenfield_reference, adopted_reference) -> None:
    assert greenfield_reference[0] == adopted_reference[0] == BLOCKS


def _killed_then_rerun(url: str, block: int) -> None:
    with pytest.raises(InjectedFault):
        migrate.upgrade(url, "head", fault_after_autocommit_block=block)
    # the run really stopped part-way: head is not recorded
    recorded = pg.run(url, "SELECT to_regclass('public.capacity_alembic_version') IS NOT NULL")[0][0]
    if recorded:
        assert pg.run(url, "SELECT version_num FROM capacity_alembic_version") != [(migrate.HEAD,)]
    migrate.upgrade(url, "head")


@pytest.mark.parametrize("block", range(1, BLOCKS + 1))
def test_greenfield_killed_after_an_autocommit_block_then_rerun(empty_db: str, greenfield_reference, block: int) -> None:
    _killed_then_rerun(empty_db, block)
    assert _state(empty_db) == greenfield_reference[1]


@pytest.mark.parametrize("block", range(1, BLOCKS + 1))
def test_adoption_killed_after_an_autocommit_block_then_rerun(empty_db: str, adopted_reference, block: int) -> None:
    load_original(empty_db)
    _killed_then_rerun(empty_db, block)
    assert _state(empty_db) == adopted_reference[1]
