"""Adoption of a database created by the original (Supabase-based) platform (docs/schema.md §1.2, §6).

The fixture ``tests/fixtures/original/platform_schema.sql`` is production around HEAD: no Alembic history of
ours, the original's policies, grants, function versions and overloads, legacy strategic_configs and real
rows. The operator runs the migration (library call or ``capacity-service migrate``); nothing may be lost
and the result must be the target shape, with a second run executing no DDL at all.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from service.schema import doctor, migrate
from tests.support import pg
from tests.support.ddl_audit import ddl_audit

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "original" / "platform_schema.sql"
REPO_ROOT = Path(__file__).resolve().parents[2]

R1 = "b0000000-0000-4000-8000-000000000001"
R2 = "b0000000-0000-4000-8000-000000000002"
MAIN_DINING = "c0000000-0000-4000-8000-000000000001"
TABLE_A2 = "d0000000-0000-4000-8000-000000000002"
TABLE_A4 = "d0000000-0000-4000-8000-000000000004"
BOOKING_MERGED = "e0000000-0000-4000-8000-000000000005"
BOOKING_PENDING_ALLOCATION = "e0000000-0000-4000-8000-000000000010"
BOOKING_UNASSIGNED = "e0000000-0000-4000-8000-000000000011"
BOOKING_LATE = "e0000000-0000-4000-8000-000000000014"
MERGE_GROUP_ALLOCATION = "f0000000-0000-4000-8000-000000000015"

# Tables the original fills from triggers: the migration's back-fill UPDATEs on booking_table_assignments
# fire the booking domain's audit trigger, so rows are added (never removed).
TRIGGER_FED = {"public.audit_logs"}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def load_original(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FIXTURE.read_text())


def row_counts(url: str) -> dict[str, int]:
    """Rows of every table outside the catalogs, our migration bookkeeping and the DDL audit."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            """SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
                 FROM information_schema.tables
                WHERE table_type = 'BASE TABLE'
                  AND table_schema NOT IN ('pg_catalog', 'information_schema', 'capacity_ddl_audit')
                  AND table_name NOT IN ('capacity_alembic_version', 'capacity_schema_ledger')
                ORDER BY 1"""
        ).fetchall()
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for (t,) in tables}


def catalog_snapshot(url: str) -> dict:
    """What a refused migration must leave identical (manifest-level view of the live catalog)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return json.loads(json.dumps(doctor.inspect_live(conn), sort_keys=True, default=str))


def run_cli_migrate(url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPACITY_") and k != "MIGRATION_DATABASE_URL"}
    env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "migrate"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


@functools.cache
def offline_script() -> str:
    return migrate.offline_sql()


def apply_offline_script(url: str) -> subprocess.CompletedProcess:
    """What a team with its own SQL pipeline does: the generated script through psql, stopping on error."""
    return subprocess.run(
        [pg.psql_executable(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
        input=offline_script(), capture_output=True, text=True, timeout=600, check=False,
    )


def operator_migrates(url: str, how: str) -> None:
    if how == "library":
        migrate.upgrade(url, "head")
    elif how == "cli":
        result = run_cli_migrate(url)
        assert result.returncode == 0, result.stderr
    else:
        result = apply_offline_script(url)
        assert result.returncode == 0, result.stderr


def scalar(url: str, sql: str, params: tuple | None = None):
    rows = pg.run(url, sql, params)
    return rows[0][0] if rows else None


# --------------------------------------------------------------------------------------------------
# the adoption itself
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("how", ["library", "cli", "offline"])
def test_original_platform_database_is_adopted_without_loss(empty_db: str, how: str) -> None:
    url = empty_db
    load_original(url)
    before = row_counts(url)
    assert before["public.bookings"] == 20 and before["public.allocations"] == 17
    foreign_history = pg.run(url, "SELECT version_num FROM public.alembic_version ORDER BY 1")
    legacy_weights = dict(pg.run(url, "SELECT id::text, weights FROM public.strategic_configs"))

    # The fixture reproduces the production failures the service was written for.
    with pytest.raises(errors.AmbiguousFunction):  # overload trap, 42725
        pg.run(url, "SELECT * FROM assign_tables_atomic_v2(%s::uuid, ARRAY[%s::uuid], 'k', false, NULL)",
               (BOOKING_UNASSIGNED, TABLE_A2))
    with pytest.raises(errors.UndefinedColumn):  # seed 000: merge_group_id missing, 42703
        pg.run(url, "SELECT * FROM assign_tables_atomic_v2(%s::uuid, ARRAY[%s::uuid], 'k', false, NULL, NULL, NULL)",
               (BOOKING_UNASSIGNED, TABLE_A2))

    operator_migrates(url, how)

    assert pg.run(url, "SELECT version_num FROM public.capacity_alembic_version") == [(migrate.HEAD,)]
    assert scalar(url, "SELECT action FROM capacity_schema_ledger WHERE object_kind = 'mode'") == "adopted"

    # every pre-existing row kept
    after = row_counts(url)
    for table, count in before.items():
        if table in TRIGGER_FED:
            assert after[table] >= count, table
        else:
            assert after[table] == count, f"{table}: {count} rows before, {after[table]} after"

    # the other tool's history is untouched
    assert pg.run(url, "SELECT version_num FROM public.alembic_version ORDER BY 1") == foreign_history

    # merge_group_id with its FK, and the merged booking's rows point at their merge-group allocation
    fk = pg.run(
        url,
        """SELECT confrelid::regclass::text, confdeltype, convalidated FROM pg_constraint
            WHERE conrelid = 'public.booking_table_assignments'::regclass
              AND conname = 'booking_table_assignments_merge_group_id_fkey'""",
    )
    assert fk == [("allocations", "n", True)]
    assert pg.run(
        url, "SELECT DISTINCT merge_group_id::text FROM booking_table_assignments WHERE booking_id = %s",
        (BOOKING_MERGED,),
    ) == [(MERGE_GROUP_ALLOCATION,)]

    # allocations_no_overlap in the target shape; shape (a) and its redundant index are gone
    con = pg.run(
        url,
        """SELECT pg_get_constraintdef(oid), contype, condeferrable, condeferred FROM pg_constraint
            WHERE conrelid = 'public.allocations'::regclass AND conname = 'allocations_no_overlap'""",
    )
    assert len(con) == 1
    definition, contype, deferrable, deferred = con[0]
    assert (contype, deferrable, deferred) == ("x", True, False)
    assert "restaurant_id WITH =, resource_type WITH =, resource_id WITH =, \"window\" WITH &&" in definition
    assert "WHERE ((NOT shadow))" in definition
    assert scalar(url, """SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.allocations'::regclass
                           AND conname = 'allocations_resource_window_excl'""") == 0
    assert scalar(url, "SELECT to_regclass('public.allocations_resource_window_idx')") is None

    # legacy weights carried into the numeric columns; the JSON kept as weights_legacy
    configs = {
        cid: (float(s), None if p is None else float(p), d)
        for cid, s, p, d in pg.run(
            url,
            """SELECT id::text, scarcity_weight, future_conflict_penalty, demand_multiplier_override
                 FROM strategic_configs""",
        )
    }
    assert configs == {
        "c6000000-0000-4000-8000-000000000001": (30.0, None, None),  # {"scarcity_weight": 30}
        "c6000000-0000-4000-8000-000000000002": (12.0, 50.0, None),  # camelCase keys
        "c6000000-0000-4000-8000-000000000003": (22.0, None, None),  # "high" skipped → default
    }
    assert dict(pg.run(url, "SELECT id::text, weights_legacy FROM strategic_configs")) == legacy_weights
    assert scalar(url, """SELECT count(*) FROM information_schema.columns
                           WHERE table_name = 'strategic_configs' AND column_name = 'weights'""") == 0

    # one commit function left
    assert scalar(url, "SELECT count(*) FROM pg_proc WHERE proname = 'assign_tables_atomic_v2'") == 1

    # a second run is a no-op: no DDL object at all
    with ddl_audit(url) as audit:
        operator_migrates(url, how)
    assert audit.objects == []
    assert pg.run(url, "SELECT version_num FROM public.capacity_alembic_version") == [(migrate.HEAD,)]

    # the drift check finds no error on the adopted database
    with psycopg.connect(url, autocommit=True) as conn:
        findings = doctor.diagnose(conn)
    assert [f for f in findings if f.severity == "error"] == []

    # the guarded capacity check: a five-argument commit works although restaurant_capacity_rules is absent
    assert scalar(url, "SELECT to_regclass('public.restaurant_capacity_rules')") is None
    rows = pg.run(
        url,
        "SELECT table_id::text, merge_group_id FROM assign_tables_atomic_v2(%s::uuid, ARRAY[%s::uuid], %s, false, NULL)",
        (BOOKING_UNASSIGNED, TABLE_A2, "adoption-test-1"),
    )
    assert rows == [(TABLE_A2, None)]
    assert scalar(url, "SELECT assigned_zone_id::text FROM bookings WHERE id = %s", (BOOKING_UNASSIGNED,)) == MAIN_DINING
    assert scalar(
        url,
        """SELECT count(*) FROM allocations WHERE booking_id = %s AND resource_type = 'table'
              AND resource_id = %s AND NOT shadow""",
        (BOOKING_UNASSIGNED, TABLE_A2),
    ) == 1


@pytest.mark.slow
def test_booking_domain_instants_function_is_left_alone(empty_db: str) -> None:
    url = empty_db
    load_original(url)
    body = "SELECT md5(pg_get_functiondef('public.set_booking_instants()'::regprocedure))"
    original = scalar(url, body)
    migrate.upgrade(url, "head")
    assert scalar(url, body) == original


def _function_bodies(url: str) -> dict[str, str]:
    return dict(pg.run(
        url,
        """SELECT p.oid::regprocedure::text, md5(pg_get_functiondef(p.oid)) FROM pg_proc p
            WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'""",
    ))


def _allocation_constraints(url: str) -> list[tuple]:
    return pg.run(
        url,
        """SELECT conname, pg_get_constraintdef(oid), condeferrable, condeferred FROM pg_constraint
            WHERE conrelid = 'public.allocations'::regclass ORDER BY conname""",
    )


@pytest.mark.slow
def test_downgrade_of_the_adopted_database_restores_the_originals(empty_db: str) -> None:
    """Cases 37/38 on the original's database: what 0003-0005 replaced comes back as it was."""
    url = empty_db
    load_original(url)
    bodies = _function_bodies(url)
    allocation_constraints = _allocation_constraints(url)
    weights = pg.run(url, "SELECT id::text, weights FROM strategic_configs ORDER BY id")
    migrate.upgrade(url, "head")
    # 0001 owns set_updated_at and keeps its version (set_booking_instants is left as found)
    replaced_by_base = {"set_updated_at()"}

    # 0005 refuses to drop numeric columns that now hold values
    with pytest.raises(Exception, match="capacity_downgrade_data_loss"):
        migrate.downgrade(url, "0004_capacity_functions")
    migrate.downgrade(url, "0004_capacity_functions", allow_data_loss="true")
    assert pg.run(url, "SELECT id::text, weights FROM strategic_configs ORDER BY id") == weights

    migrate.downgrade(url, "0003_overlap_confirm_cache")
    restored = _function_bodies(url)
    for signature, md5 in bodies.items():
        if signature not in replaced_by_base:
            assert restored.get(signature) == md5, signature
    assert scalar(url, "SELECT count(*) FROM pg_proc WHERE proname = 'assign_tables_atomic_v2'") == 2

    migrate.downgrade(url, "0002_merge_groups")
    assert _allocation_constraints(url) == allocation_constraints
    assert scalar(url, "SELECT to_regclass('public.allocations_resource_window_idx')::text") == "allocations_resource_window_idx"

    # 0002 back-filled merge_group_id on this database, so undoing it needs the data-loss flag; 0001 then refuses
    with pytest.raises(Exception, match="capacity_downgrade_data_loss"):
        migrate.downgrade(url, "base")
    with pytest.raises(Exception, match="adopted"):
        migrate.downgrade(url, "base", allow_data_loss="true")
    assert pg.run(url, "SELECT version_num FROM public.capacity_alembic_version") == [("0001_base",)]


_SCHEMA_PARTS = ("tables", "constraints", "indexes", "enums", "functions", "triggers", "policies", "grants", "version")


@pytest.mark.slow
def test_offline_script_adopts_like_an_online_run(pg_admin_url: str, empty_db: str) -> None:
    """Case 7 on the original's database: the printed script leaves the same schema as an online run."""
    online = pg.create_database(pg_admin_url, "cap_adopt_online")
    try:
        for url in (online, empty_db):
            load_original(url)
        migrate.upgrade(online, "head")
        result = apply_offline_script(empty_db)
        assert result.returncode == 0, result.stderr
        online_schema, offline_schema = catalog_snapshot(online), catalog_snapshot(empty_db)
        for part in _SCHEMA_PARTS:
            assert offline_schema[part] == online_schema[part], part
        assert row_counts(empty_db) == row_counts(online)
    finally:
        pg.drop_database(pg_admin_url, online)


# --------------------------------------------------------------------------------------------------
# refusal: overlapping allocations the old constraint no longer prevented
# --------------------------------------------------------------------------------------------------
def _insert_overlap(url: str) -> None:
    """Fixture D on the original database: the deferred constraint dropped, then two real overlaps."""
    pg.run(
        url,
        f"""ALTER TABLE public.allocations DROP CONSTRAINT allocations_resource_window_excl;
        INSERT INTO public.allocations (id, restaurant_id, booking_id, resource_type, resource_id, "window")
        VALUES ('f0000000-0000-4000-8000-000000000091', '{R1}', '{BOOKING_PENDING_ALLOCATION}', 'table', '{TABLE_A4}',
                '[2025-11-21 20:30:00+00,2025-11-21 22:05:00+00)'),
               ('f0000000-0000-4000-8000-000000000092', '{R1}', '{BOOKING_LATE}', 'table', '{TABLE_A4}',
                '[2025-11-21 21:00:00+00,2025-11-21 22:05:00+00)');""",
    )


def _assert_unchanged(url: str, counts: dict[str, int], catalog: dict) -> None:
    assert scalar(url, "SELECT to_regclass('public.capacity_alembic_version')") is None
    assert scalar(url, "SELECT to_regclass('public.capacity_schema_ledger')") is None
    assert row_counts(url) == counts
    assert catalog_snapshot(url) == catalog


@pytest.mark.slow
def test_overlapping_allocations_are_refused_before_any_change(empty_db: str) -> None:
    url = empty_db
    load_original(url)
    _insert_overlap(url)
    counts = row_counts(url)
    catalog = catalog_snapshot(url)

    with pytest.raises(Exception) as refused:
        migrate.upgrade(url, "head")
    diag = getattr(getattr(refused.value, "orig", refused.value), "diag", None)
    assert diag is not None and diag.message_primary == "capacity_preflight_overlap"
    assert "f0000000-0000-4000-8000-000000000091" in diag.message_detail
    assert "f0000000-0000-4000-8000-000000000092" in diag.message_detail
    _assert_unchanged(url, counts, catalog)

    result = run_cli_migrate(url)
    assert result.returncode != 0
    assert "capacity_preflight_overlap" in result.stderr
    _assert_unchanged(url, counts, catalog)

    # the offline script refuses in its leading pre-flight block, before Alembic's version table
    result = apply_offline_script(url)
    assert result.returncode != 0
    assert "capacity_preflight_overlap" in result.stderr
    _assert_unchanged(url, counts, catalog)


def test_backfill_audits_each_filled_assignment_once(empty_db: str) -> None:
    """0002 fills allocation_id and merge_group_id in one UPDATE per row: the original's audit trigger stays
    on (schema.md, choices) and records each back-filled assignment exactly once, whichever columns it got."""
    load_original(empty_db)
    audited = "SELECT count(*) FROM public.audit_logs WHERE action = 'assignment_updated'"
    before = scalar(empty_db, audited)
    migrate.upgrade(empty_db, "head")
    filled = dict(pg.run(
        empty_db,
        """SELECT id::text, (allocation_id IS NOT NULL)::int + (merge_group_id IS NOT NULL)::int
             FROM booking_table_assignments WHERE allocation_id IS NOT NULL OR merge_group_id IS NOT NULL""",
    ))
    assert 2 in filled.values()  # the merged booking's rows get both columns: two rules, one audit entry
    entries = pg.run(
        empty_db,
        """SELECT metadata->>'assignment_id', count(*) FROM public.audit_logs
            WHERE action = 'assignment_updated' GROUP BY 1""",
    )
    assert scalar(empty_db, audited) - before == len(filled)
    assert dict(entries) == {assignment: 1 for assignment in filled}
