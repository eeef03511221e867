"""Adoption of drifted function definitions — docs/schema.md §6.2 fixtures A (merged commit), E1–E4, case 37 (functions).

Each fixture starts from a head database, applies the alteration (archived original bodies live in
tests/fixtures/original/), then drops the version table and the ledger so that the next upgrade sees a
never-migrated, adopted database.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from service.schema import migrate
from service.schema.released.capacity_functions import FUNCTIONS, LEGACY_ASSIGN_5ARG
from tests.support import pg
from tests.support.floor import commit, count, seed_floor

ORIGINAL = Path(__file__).resolve().parents[1] / "fixtures" / "original"
REVISION = "0004_capacity_functions"


def _head_marker(function: str) -> str:
    """The marker a greenfield head database carries on ``function`` (from the committed manifest)."""
    manifest = json.loads((migrate.REPO_ROOT / "service" / "schema" / "manifest.json").read_text(encoding="utf-8"))
    return manifest["functions"][function]["marker"]
SIG_7 = "public.assign_tables_atomic_v2(uuid, uuid[], text, boolean, uuid, timestamptz, timestamptz)"
SIG_VALIDATE = "public.validate_booking_capacity_after_assignment(uuid)"
ARCHIVED = (
    "validate_booking_capacity_after_assignment_20251101170000.sql",
    "assign_tables_atomic_v2_5arg.sql",
    "assign_tables_atomic_v2_87a741f.sql",
)


def _install_original(url: str, name: str) -> None:
    pg.run(url, (ORIGINAL / name).read_text(encoding="utf-8"))


def _forget_history(url: str) -> None:
    pg.run(url, "DROP TABLE capacity_alembic_version; DROP TABLE capacity_schema_ledger")


def _functiondef_md5(url: str, signature: str) -> str | None:
    return pg.run(url, "SELECT md5(pg_get_functiondef(to_regprocedure(%s)))", (signature,))[0][0]


def _own_functions(url: str) -> list[tuple]:
    """0004's functions with their row version: an unchanged xmin means CREATE OR REPLACE did not run."""
    return pg.run(
        url,
        "SELECT p.oid::regprocedure::text, p.xmin::text, md5(pg_get_functiondef(p.oid)),"
        " obj_description(p.oid, 'pg_proc') FROM pg_proc p"
        " WHERE p.oid IN (SELECT to_regprocedure(s) FROM unnest(%s::text[]) AS s) ORDER BY 1",
        ([fn.signature for fn in FUNCTIONS],),
    )


def _comment(url: str, signature: str) -> str | None:
    return pg.run(url, "SELECT obj_description(to_regprocedure(%s), 'pg_proc')", (signature,))[0][0]


# -------------------------------------------------------------------------------------------------
# E1: the unguarded capacity function, rules table absent
# -------------------------------------------------------------------------------------------------
def test_e1_unguarded_capacity_function_is_replaced(head_db: str) -> None:
    pg.run(head_db, "DROP TABLE restaurant_capacity_rules")
    _install_original(head_db, "validate_booking_capacity_after_assignment_20251101170000.sql")
    _forget_history(head_db)
    f = seed_floor(head_db)

    with pytest.raises(errors.UndefinedTable):  # seed 003: 42P01 from inside the commit
        commit(head_db, f.b1, [f.t1])

    migrate.upgrade(head_db, "head")

    assert len(commit(head_db, f.b1, [f.t1])) == 1
    # 0004 replaced the unguarded body; later revisions re-created it (0008: both column shapes; 0009: its
    # SQLSTATE): the head definition, marker and all, is the greenfield one
    assert _comment(head_db, SIG_VALIDATE) == _head_marker("validate_booking_capacity_after_assignment(uuid)")
    saved = pg.run(
        head_db,
        "SELECT action, previous_definition FROM capacity_schema_ledger"
        " WHERE revision = %s AND object_kind = 'function' AND object_name = %s",
        (REVISION, SIG_VALIDATE),
    )
    assert saved[0][0] == "replaced" and "service_policy" in saved[0][1]
    assert pg.run(head_db, "SELECT to_regclass('public.restaurant_capacity_rules')") == [(None,)]


# -------------------------------------------------------------------------------------------------
# E2: both overloads present
# -------------------------------------------------------------------------------------------------
def test_e2_five_argument_overload_is_dropped(head_db: str) -> None:
    _install_original(head_db, "assign_tables_atomic_v2_5arg.sql")
    _forget_history(head_db)
    f = seed_floor(head_db)
    five_positional = "SELECT * FROM assign_tables_atomic_v2(%s, %s, NULL, false, NULL)"

    with pytest.raises(errors.AmbiguousFunction):  # 42725
        pg.run(head_db, five_positional, (f.b1, [f.t1]))

    migrate.upgrade(head_db, "head")

    assert pg.run(head_db, "SELECT to_regprocedure(%s)", (LEGACY_ASSIGN_5ARG,)) == [(None,)]
    assert count(head_db, "SELECT count(*) FROM pg_proc WHERE proname = 'assign_tables_atomic_v2'") == 1
    rows = pg.run(head_db, five_positional, (f.b1, [f.t1]))
    assert [r[0] for r in rows] == [f.t1]


# -------------------------------------------------------------------------------------------------
# E3 (+ case 37, functions): the 87a741f alias-fix body, replaced and restored byte for byte
# -------------------------------------------------------------------------------------------------
def test_e3_alias_fix_body_replaced_and_restored_by_downgrade(head_db: str) -> None:
    _install_original(head_db, "assign_tables_atomic_v2_87a741f.sql")
    _install_original(head_db, "assign_tables_atomic_v2_5arg.sql")
    _install_original(head_db, "validate_booking_capacity_after_assignment_20251101170000.sql")
    before = {sig: _functiondef_md5(head_db, sig) for sig in (SIG_7, LEGACY_ASSIGN_5ARG, SIG_VALIDATE)}
    original_src = pg.run(head_db, "SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(%s)", (SIG_7,))[0][0]
    assert "hashtext(v_zone::text), ((v_start AT TIME ZONE v_tz)::date" in original_src  # (zone, day) lock
    _forget_history(head_db)

    migrate.upgrade(head_db, "head")

    assert _functiondef_md5(head_db, SIG_7) != before[SIG_7]
    assert _comment(head_db, SIG_7) == _head_marker(
        "assign_tables_atomic_v2(uuid, uuid[], text, boolean, uuid, timestamp with time zone, timestamp with time zone)")
    saved = pg.run(
        head_db,
        "SELECT md5(previous_definition) FROM capacity_schema_ledger"
        " WHERE revision = %s AND object_kind = 'function' AND object_name = %s",
        (REVISION, SIG_7.replace("timestamptz", "timestamp with time zone")),
    )
    assert saved == [(before[SIG_7],)]

    migrate.downgrade(head_db, "0003_overlap_confirm_cache")

    after = {sig: _functiondef_md5(head_db, sig) for sig in (SIG_7, LEGACY_ASSIGN_5ARG, SIG_VALIDATE)}
    assert after == before  # old bodies and the 5-argument overload are back, md5-equal


def test_e3_second_upgrade_after_adoption_is_a_no_op_for_functions(head_db: str) -> None:
    _install_original(head_db, "assign_tables_atomic_v2_87a741f.sql")
    _forget_history(head_db)
    migrate.upgrade(head_db, "head")
    snapshot = _own_functions(head_db)
    migrate.upgrade(head_db, "head")  # nothing to do: version row at head
    pg.run(head_db, "DELETE FROM capacity_alembic_version")
    migrate.upgrade(head_db, "head")  # full re-run: every definition equal → skipped
    again = _own_functions(head_db)
    assert again == snapshot


# -------------------------------------------------------------------------------------------------
# E4: confirmation cache present, tenant helper missing
# -------------------------------------------------------------------------------------------------
def test_e4_missing_tenant_helper_is_recreated(head_db: str) -> None:
    # Policies call the helper, so production's state (table, no helper) means no tenant policies either.
    pg.run(head_db, "DROP FUNCTION public.require_restaurant_context() CASCADE")
    assert count(
        head_db, "SELECT count(*) FROM pg_policy WHERE polrelid = 'public.booking_confirmation_results'::regclass"
    ) == 0
    _forget_history(head_db)

    migrate.upgrade(head_db, "head")  # no 42710

    assert pg.run(head_db, "SELECT to_regprocedure('public.require_restaurant_context()') IS NOT NULL") == [(True,)]
    policies = pg.run(
        head_db,
        "SELECT polname, pg_get_expr(polqual, polrelid) FROM pg_policy"
        " WHERE polrelid = 'public.booking_confirmation_results'::regclass",
    )
    assert any("require_restaurant_context()" in (qual or "") for _, qual in policies)
    fks = pg.run(
        head_db,
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.booking_confirmation_results'::regclass"
        " AND contype = 'f'",
    )
    assert fks == [(2,)]
    # The commit still works end to end on the adopted database.
    f = seed_floor(head_db)
    assert len(commit(head_db, f.b2, [f.t2, f.t3], adjacency=True)) == 2


# -------------------------------------------------------------------------------------------------
# A: merge_group_id missing, original commit body present
# -------------------------------------------------------------------------------------------------
def test_fixture_a_merged_commit_before_and_after(head_db: str) -> None:
    # The view and the FK/index on the column go with it (the 87a741f shape had none of them).
    pg.run(head_db, "ALTER TABLE booking_table_assignments DROP COLUMN merge_group_id CASCADE")
    _install_original(head_db, "assign_tables_atomic_v2_87a741f.sql")
    _forget_history(head_db)
    f = seed_floor(head_db)

    with pytest.raises(errors.UndefinedColumn):  # seed 000: 42703 → the endpoint's 500
        commit(head_db, f.b2, [f.t2, f.t3], adjacency=True)

    migrate.upgrade(head_db, "head")

    fk = pg.run(
        head_db,
        "SELECT convalidated, confdeltype FROM pg_constraint"
        " WHERE conrelid = 'public.booking_table_assignments'::regclass"
        " AND conname = 'booking_table_assignments_merge_group_id_fkey'",
    )
    assert fk == [(True, "n")]
    assert pg.run(head_db, "SELECT to_regclass('public.booking_table_assignments_merge_group_idx') IS NOT NULL") == [
        (True,)
    ]
    rows = commit(head_db, f.b2, [f.t2, f.t3], adjacency=True)
    assert sorted(r[0] for r in rows) == sorted([f.t2, f.t3])
    merge_ids = {r[3] for r in rows}
    assert len(merge_ids) == 1 and None not in merge_ids


def test_original_bodies_are_valid_sql(empty_db: str) -> None:
    """The archived bodies must at least be creatable (plpgsql checks syntax at CREATE time)."""
    with psycopg.connect(empty_db, autocommit=True) as conn:
        for name in ARCHIVED:
            conn.execute((ORIGINAL / name).read_text(encoding="utf-8"))


def test_greenfield_downgrade_drops_functions_and_triggers_then_upgrade_restores(head_db: str) -> None:
    """Case 4 for 0004: what the revision created goes away on downgrade and comes back identical."""
    before = [(sig, md5, comment) for sig, _, md5, comment in _own_functions(head_db)]
    triggers = (
        "SELECT tgrelid::regclass::text, tgname, tgfoid::regprocedure::text FROM pg_trigger"
        " WHERE NOT tgisinternal AND tgfoid IN (SELECT to_regprocedure(s) FROM unnest(%s::text[]) AS s) ORDER BY 1, 2"
    )
    trigger_rows = pg.run(head_db, triggers, ([fn.signature for fn in FUNCTIONS],))
    assert len(trigger_rows) == 6

    migrate.downgrade(head_db, "0003_overlap_confirm_cache")
    assert _own_functions(head_db) == []
    assert count(head_db, "SELECT count(*) FROM capacity_schema_ledger WHERE revision = %s", (REVISION,)) == 0

    migrate.upgrade(head_db, "head")
    assert [(sig, md5, comment) for sig, _, md5, comment in _own_functions(head_db)] == before
    assert pg.run(head_db, triggers, ([fn.signature for fn in FUNCTIONS],)) == trigger_rows
