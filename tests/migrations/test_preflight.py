"""The pre-flight (docs/schema.md §5.1, §5.5 step 2) and the adoption fixtures it governs: D, D2, D3, B4, F1, F2,
case 8 (lock timeout in 0003) and the privilege checks of case 7a.

Fixtures are built as docs/schema.md §6.2 says: a database at head, altered, then (except F1/F2) without
capacity_alembic_version and capacity_schema_ledger so the next upgrade sees a never-migrated database.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from service.schema import migrate, preflight
from service.settings import Settings
from tests.support import pg
from tests.support.ddl_audit import ddl_audit
from tests.support.fixtures import (
    FORGET_HISTORY_SQL,
    SHAPE_A,
    SHAPE_B,
    SHAPE_D,
    allocation_sql,
    bypass_deferred_checks_sql,
    duplicate_scope_sql,
    replace_overlap_constraint_sql,
    version_rows_sql,
)
from tests.support.floor import Floor, seed_floor

HEAD = migrate.HEAD
TARGET_DEF = (
    'EXCLUDE USING gist (restaurant_id WITH =, resource_type WITH =, resource_id WITH =, "window" WITH &&) '
    "WHERE ((NOT shadow)) DEFERRABLE"
)


def _error(exc: BaseException) -> psycopg.Error:
    """The driver error behind whatever Alembic/SQLAlchemy wrapped it in."""
    while not isinstance(exc, psycopg.Error):
        exc = exc.__cause__ or getattr(exc, "orig", None)
        assert exc is not None, "not a database error"
    return exc


def _snapshot(url: str) -> dict:
    """What must not change when migrate refuses: tables, constraints, row counts of the capacity tables."""
    tables = [r[0] for r in pg.run(url, "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                                        "AND relkind IN ('r','v','i') ORDER BY 1")]
    constraints = pg.run(url, "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                              "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2")
    counts = {
        t: pg.run(url, f"SELECT count(*) FROM public.{t}")[0][0]
        for t in ("allocations", "bookings", "booking_table_assignments", "strategic_configs")
    }
    return {"relations": tables, "constraints": constraints, "counts": counts}


def _history_absent(url: str) -> bool:
    return pg.run(
        url, "SELECT to_regclass('public.capacity_alembic_version') IS NULL AND "
             "to_regclass('public.capacity_schema_ledger') IS NULL"
    ) == [(True,)]


def _overlap_def(url: str) -> str | None:
    rows = pg.run(url, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = 'public.allocations'::regclass AND conname = 'allocations_no_overlap'")
    return rows[0][0] if rows else None


@pytest.fixture
def floor(head_db: str) -> Floor:
    return seed_floor(head_db)


def _fixture_d(url: str, floor: Floor) -> tuple[str, str]:
    """Fixture D: target constraint gone, two non-shadow table allocations 18:00–20:00 and 19:00–21:00."""
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    pg.run(url, "\n".join([
        replace_overlap_constraint_sql(None),
        allocation_sql(a, str(floor.restaurant), str(floor.b1), str(floor.t1), "2031-06-13 18:00+00", "2031-06-13 20:00+00"),
        allocation_sql(b, str(floor.restaurant), str(floor.b2), str(floor.t1), "2031-06-13 19:00+00", "2031-06-13 21:00+00"),
        FORGET_HISTORY_SQL,
    ]))
    return a, b


def test_fixture_d_refused_before_any_revision_then_rerun_succeeds(head_db: str, floor: Floor) -> None:
    a, b = _fixture_d(head_db, floor)
    before = _snapshot(head_db)
    with ddl_audit(head_db) as audit, pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head")
    error = _error(err.value)
    assert error.diag.message_primary == "capacity_preflight_overlap"
    assert a in error.diag.message_detail and b in error.diag.message_detail
    assert audit.objects == []  # refused before any DDL
    assert _history_absent(head_db)
    assert _snapshot(head_db) == before

    report = preflight.preflight_report(head_db)
    pairs = [r for r in report if r["kind"] == "allocation_overlap"]
    assert [{pairs[0]["id_a"], pairs[0]["id_b"]}] == [{a, b}]

    pg.run(head_db, "DELETE FROM allocations WHERE id = %s", (b,))
    migrate.upgrade(head_db, "head")
    assert pg.run(head_db, "SELECT version_num FROM capacity_alembic_version") == [(HEAD,)]
    assert _overlap_def(head_db) == TARGET_DEF
    assert preflight.preflight_report(head_db) == []


def test_plain_upgrade_refuses_in_0003_too(head_db: str, floor: Floor) -> None:
    """The revision's own guard (second line of defence), with the up-front pre-flight skipped."""
    _fixture_d(head_db, floor)
    with pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head", skip_preflight="true")
    assert _error(err.value).diag.message_primary == "capacity_preflight_overlap"
    assert pg.run(head_db, "SELECT version_num FROM capacity_alembic_version") == [("0002_merge_groups",)]
    assert _overlap_def(head_db) is None


@pytest.mark.parametrize("shape", [SHAPE_B, SHAPE_D], ids=["shape_b", "shape_d"])
def test_fixture_d2_old_shape_replaced_and_saved(head_db: str, shape: tuple[str, str]) -> None:
    pg.run(head_db, replace_overlap_constraint_sql(shape, redundant_index=True) + "\n" + FORGET_HISTORY_SQL)
    old_def = _overlap_def(head_db)
    assert old_def != TARGET_DEF

    migrate.upgrade(head_db, "0003_overlap_confirm_cache")
    assert _overlap_def(head_db) == TARGET_DEF
    saved = pg.run(
        head_db,
        "SELECT object_name, action, previous_definition FROM capacity_schema_ledger "
        "WHERE revision = '0003_overlap_confirm_cache' AND object_name IN "
        "('allocations.allocations_no_overlap', 'allocations_resource_window_idx') ORDER BY 1",
    )
    assert saved[0] == ("allocations.allocations_no_overlap", "replaced", old_def)
    assert saved[1][:2] == ("allocations_resource_window_idx", "replaced")
    assert pg.run(head_db, "SELECT to_regclass('public.allocations_resource_window_idx')") == [(None,)]

    # the downgrade puts back exactly what was saved, not a guessed shape
    migrate.downgrade(head_db, "0002_merge_groups")
    assert _overlap_def(head_db) == old_def
    assert pg.run(head_db, "SELECT to_regclass('public.allocations_resource_window_idx') IS NOT NULL") == [(True,)]


def test_fixture_d3_only_shadow_overlaps_pass(head_db: str, floor: Floor) -> None:
    shadow, real = str(uuid.uuid4()), str(uuid.uuid4())
    pg.run(head_db, replace_overlap_constraint_sql(SHAPE_A) + "\n" + bypass_deferred_checks_sql("\n".join([
        allocation_sql(shadow, str(floor.restaurant), str(floor.b1), str(floor.t1),
                       "2031-06-13 18:00+00", "2031-06-13 20:00+00", shadow=True),
        allocation_sql(real, str(floor.restaurant), str(floor.b2), str(floor.t1),
                       "2031-06-13 19:00+00", "2031-06-13 21:00+00"),
    ])) + "\n" + FORGET_HISTORY_SQL)

    migrate.upgrade(head_db, "head")
    assert _overlap_def(head_db) == TARGET_DEF
    assert pg.run(head_db, "SELECT count(*) FROM pg_constraint WHERE conname = 'allocations_resource_window_excl'") == [(0,)]
    saved = pg.run(head_db, "SELECT action, previous_definition FROM capacity_schema_ledger "
                            "WHERE object_name = 'allocations.allocations_resource_window_excl'")
    assert len(saved) == 1 and saved[0][0] == "replaced" and "INITIALLY DEFERRED" in saved[0][1]
    assert pg.run(head_db, "SELECT count(*) FROM allocations WHERE id IN (%s, %s)", (shadow, real)) == [(2,)]


def test_fixture_b4_duplicate_scope_refused(head_db: str, floor: Floor) -> None:
    ids = (str(uuid.uuid4()), str(uuid.uuid4()))
    pg.run(head_db, duplicate_scope_sql(str(floor.restaurant), ids) + "\n" + FORGET_HISTORY_SQL)
    before = _snapshot(head_db)
    with ddl_audit(head_db) as audit, pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head")
    error = _error(err.value)
    assert error.diag.message_primary == "strategic_configs_duplicate_scope"
    assert all(i in error.diag.message_detail for i in ids)
    assert audit.objects == []
    assert _history_absent(head_db)
    assert _snapshot(head_db) == before
    groups = [r for r in preflight.preflight_report(head_db) if r["check"] == "strategic_configs_duplicate_scope"]
    assert len(groups) == 1 and set(groups[0]["ids"].split(", ")) == set(ids)


def test_several_global_rows_are_a_duplicate_scope(head_db: str) -> None:
    pg.run(
        head_db,
        "ALTER TABLE strategic_configs DROP CONSTRAINT strategic_configs_restaurant_id_key;"
        "INSERT INTO strategic_configs (restaurant_id) VALUES (NULL), (NULL);",
    )
    with pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head")
    assert "global" in _error(err.value).diag.message_detail


@pytest.mark.parametrize(
    "versions, unknown",
    [(("0007_future_thing",), "0007_future_thing"), (("0003_overlap_confirm_cache", "0099_botched_branch"), "0099_botched_branch")],
    ids=["F1", "F2"],
)
def test_fixtures_f1_f2_unknown_revisions_refused_before_any_ddl(head_db: str, versions, unknown: str) -> None:
    pg.run(head_db, version_rows_sql(*versions))
    before = _snapshot(head_db)
    ledger_before = pg.run(head_db, "SELECT count(*) FROM capacity_schema_ledger")
    with ddl_audit(head_db) as audit, pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head")
    error = _error(err.value)
    assert error.diag.message_primary == "capacity_unknown_revision"
    assert f"unknown revision(s) in capacity_alembic_version: {unknown}; known head: {HEAD}" in error.diag.message_detail
    assert audit.objects == []
    assert sorted(r[0] for r in pg.run(head_db, "SELECT version_num FROM capacity_alembic_version")) == sorted(versions)
    assert pg.run(head_db, "SELECT count(*) FROM capacity_schema_ledger") == ledger_before
    assert _snapshot(head_db) == before


def test_all_findings_reported_together(head_db: str, floor: Floor) -> None:
    """One refusal lists every finding (overlap and duplicate scope here), not just the first."""
    _fixture_d(head_db, floor)
    pg.run(head_db, duplicate_scope_sql(str(floor.restaurant), (str(uuid.uuid4()), str(uuid.uuid4()))))
    with pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head")
    detail = _error(err.value).diag.message_detail
    assert "capacity_preflight_overlap:" in detail and "strategic_configs_duplicate_scope:" in detail


def test_preflight_passes_on_empty_and_head(empty_db: str, head_db: str) -> None:
    sql = preflight.preflight_sql([HEAD], Settings())
    pg.run(empty_db, sql)
    pg.run(head_db, sql)
    assert preflight.preflight_report(empty_db) == []
    assert preflight.preflight_report(head_db) == []


def test_incompatible_column_type_refused(head_db: str) -> None:
    pg.run(head_db, "DROP VIEW merge_group_members_v;"
                    "ALTER TABLE booking_table_assignments DROP CONSTRAINT booking_table_assignments_merge_group_id_fkey;"
                    "ALTER TABLE booking_table_assignments ALTER COLUMN merge_group_id TYPE text;" + FORGET_HISTORY_SQL)
    with pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head")
    detail = _error(err.value).diag.message_detail
    assert "capacity_drift_column_type: booking_table_assignments.merge_group_id is text, expected uuid" in detail
    assert _history_absent(head_db)


def test_non_owner_without_create_privilege_is_refused(
    head_db: str, pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 7a's privilege part: a login without CREATEROLE while a role is missing, that neither owns the
    tables nor may create in public."""
    role = f"h2_stranger_{uuid.uuid4().hex[:8]}"
    pg.run(pg_admin_url, f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEROLE")
    try:
        # it may read (the checks are read-only queries) but neither create nor alter
        pg.run(head_db, f"REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO {role};"
                        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};")
        stranger = make_url(head_db).set(username=role, password=None).render_as_string(hide_password=False)
        # roles are cluster-wide and shared by parallel tests, so "a required role is missing" is simulated
        # with a never-created name rather than by dropping a real one
        missing = f"h2_missing_{uuid.uuid4().hex[:8]}"
        monkeypatch.setattr(preflight, "REQUIRED_ROLES", (*preflight.REQUIRED_ROLES, missing))
        with pytest.raises(psycopg.errors.RaiseException) as err:
            pg.run(stranger, preflight.preflight_sql([HEAD], Settings()))
        detail = err.value.diag.message_detail
        assert f"{role} lacks CREATE on schema public" in detail
        assert "neither owner nor member of the owner" in detail and "allocations" in detail
        assert f"role(s) {missing} missing and {role} lacks CREATEROLE" in detail
        assert f"CREATE ROLE {missing} NOLOGIN;" in detail
    finally:
        pg.run(head_db, f"DROP OWNED BY {role}")  # its grants in this database
        pg.run(pg_admin_url, f"DROP ROLE IF EXISTS {role}")


def test_size_gate(head_db: str, floor: Floor) -> None:
    """A rewrite of a table above CAPACITY_MIGRATE_MAX_LOCKED_ROWS needs -x allow_long_lock=true."""
    pg.run(head_db, "INSERT INTO booking_table_assignments (booking_id, table_id) VALUES (%s, %s)", (floor.b1, floor.t1))
    pg.run(head_db, "INSERT INTO booking_table_assignments (booking_id, table_id) VALUES (%s, %s), (%s, %s)",
           (floor.b2, floor.t2, floor.b1, floor.t3))
    pg.run(head_db, "DROP VIEW merge_group_members_v;"
                    "ALTER TABLE booking_table_assignments DROP COLUMN assignment_window;" + FORGET_HISTORY_SQL)
    tiny = Settings(migrate_max_locked_rows=1)
    with pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head", tiny)
    assert _error(err.value).diag.message_primary == "capacity_size_gate"
    # the real count (3), not a planner estimate or a probe stopped just past the limit (2)
    assert "rewrites 3 rows under ACCESS EXCLUSIVE (limit 1)" in _error(err.value).diag.message_detail
    assert _history_absent(head_db)
    # the revision's own gate, for a plain upgrade without the up-front pre-flight
    with pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head", tiny, skip_preflight="true")
    assert _error(err.value).diag.message_primary == "capacity_size_gate"
    assert "rewrites 3 rows under ACCESS EXCLUSIVE (limit 1)" in _error(err.value).diag.message_detail
    migrate.upgrade(head_db, "head", tiny, allow_long_lock="true")
    assert pg.run(head_db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'booking_table_assignments'::regclass "
                           "AND attname = 'assignment_window' AND NOT attisdropped") == [(1,)]


def test_case_8_lock_timeout_in_0003_then_rerun(empty_db: str) -> None:
    """Another session holding ACCESS SHARE on allocations: 0003 fails with 55P03 (a transient failure:
    0001–0002 stay applied) and leaves no partial constraint; once the session ends a re-run succeeds."""
    fast = Settings(migrate_lock_timeout="1s")
    migrate.upgrade(empty_db, "0002_merge_groups", fast)
    with psycopg.connect(empty_db) as reader:
        reader.execute("SELECT count(*) FROM allocations")  # ACCESS SHARE until the transaction ends
        with pytest.raises(Exception) as err:
            migrate.upgrade(empty_db, "head", fast)
        assert _error(err.value).sqlstate == "55P03"
        reader.rollback()
    assert pg.run(empty_db, "SELECT version_num FROM capacity_alembic_version") == [("0002_merge_groups",)]
    assert _overlap_def(empty_db) is None
    assert pg.run(empty_db, "SELECT count(*) FROM pg_constraint WHERE conname LIKE 'allocations_no_overlap%'") == [(0,)]
    migrate.upgrade(empty_db, "head", fast)
    assert _overlap_def(empty_db) == TARGET_DEF


def test_overlapping_assignments_and_invalid_windows_refused(head_db: str, floor: Floor) -> None:
    """The other two parts of 0003's pre-flight: assignment windows overlapping on one table while
    no_overlapping_table_assignments is missing, and allocations with an empty or unbounded window."""
    first, second, empty = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    pg.run(head_db, "ALTER TABLE booking_table_assignments DROP CONSTRAINT no_overlapping_table_assignments;"
                    "ALTER TABLE allocations DROP CONSTRAINT allocations_window_valid;")
    for row_id, booking, start, end in ((first, floor.b1, "18:00", "20:00"), (second, floor.b2, "19:00", "21:00")):
        pg.run(head_db, "INSERT INTO booking_table_assignments (id, booking_id, table_id, start_at, end_at) "
                        "VALUES (%s, %s, %s, %s, %s)",
               (row_id, booking, floor.t1, f"2031-06-13 {start}+00", f"2031-06-13 {end}+00"))
    pg.run(head_db, 'INSERT INTO allocations (id, restaurant_id, booking_id, resource_type, resource_id, "window") '
                    "VALUES (%s, %s, %s, 'table', %s, 'empty')", (empty, floor.restaurant, floor.b1, floor.t2))
    pg.run(head_db, FORGET_HISTORY_SQL)

    with pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head")
    error = _error(err.value)
    assert error.diag.message_primary == "capacity_preflight_overlap"
    detail = error.diag.message_detail
    assert "overlapping booking_table_assignments pair(s)" in detail and str(first) in detail and str(second) in detail
    assert "empty or unbounded window" in detail and str(empty) in detail
    assert _history_absent(head_db)

    kinds = {r["kind"]: r for r in preflight.preflight_report(head_db)}
    assert {kinds["assignment_overlap"]["id_a"], kinds["assignment_overlap"]["id_b"]} == {str(first), str(second)}
    assert kinds["invalid_window"]["id_a"] == str(empty)


# --------------------------------------------------------------------------------------------------
# the O(n log n) overlap search finds exactly the pairs a self-join finds
# --------------------------------------------------------------------------------------------------
NAIVE_ALLOCATION_PAIRS = """SELECT least(a1.id, a2.id), greatest(a1.id, a2.id) FROM public.allocations a1
  JOIN public.allocations a2 ON a2.restaurant_id = a1.restaurant_id AND a2.resource_type = a1.resource_type
   AND a2.resource_id = a1.resource_id AND a1.id < a2.id AND a1."window" && a2."window"
 WHERE NOT a1.shadow AND NOT a2.shadow ORDER BY 1, 2"""

NAIVE_ASSIGNMENT_PAIRS = """SELECT least(b1.id, b2.id), greatest(b1.id, b2.id) FROM public.booking_table_assignments b1
  JOIN public.booking_table_assignments b2 ON b2.table_id = b1.table_id AND b1.id < b2.id
   AND tstzrange(b1.start_at, b1.end_at, '[)') && tstzrange(b2.start_at, b2.end_at, '[)')
 WHERE b1.start_at < b1.end_at AND b2.start_at < b2.end_at ORDER BY 1, 2"""


def test_overlap_search_finds_the_pairs_a_self_join_finds(empty_db: str) -> None:
    """Random windows on few resources: shared starts, nested windows, touching ends with every bound
    inclusivity, empty and unbounded windows, shadow rows, NULL and reversed assignment times."""
    pg.run(
        empty_db,
        """CREATE TABLE public.allocations (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), restaurant_id int,
               booking_id uuid DEFAULT gen_random_uuid(), resource_type text, resource_id int, "window" tstzrange,
               shadow boolean);
           CREATE TABLE public.booking_table_assignments (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
               booking_id uuid DEFAULT gen_random_uuid(), table_id int, start_at timestamptz, end_at timestamptz);
           SELECT setseed(0.42);
           INSERT INTO public.allocations (restaurant_id, resource_type, resource_id, "window", shadow)
           SELECT 1 + (random() * 1)::int, (ARRAY['table', 'merge_group'])[1 + (random() * 1)::int],
                  (random() * 3)::int,
                  CASE WHEN random() < 0.03 THEN tstzrange(NULL, '2025-01-01 12:00'::timestamptz)
                       WHEN random() < 0.03 THEN tstzrange('2025-01-01 20:00'::timestamptz, NULL)
                       ELSE tstzrange(s, s + make_interval(hours => (random() * 3)::int),
                                      (ARRAY['[)', '[]', '()', '(]'])[1 + (random() * 3)::int]) END,
                  random() < 0.2
             FROM (SELECT '2025-01-01 10:00'::timestamptz + make_interval(hours => (random() * 12)::int) AS s
                     FROM generate_series(1, 400)) g;
           INSERT INTO public.booking_table_assignments (table_id, start_at, end_at)
           SELECT (random() * 4)::int, s,
                  CASE WHEN random() < 0.03 THEN NULL ELSE s + make_interval(hours => (random() * 4)::int - 1) END
             FROM (SELECT '2025-01-01 10:00'::timestamptz + make_interval(hours => (random() * 12)::int) AS s
                     FROM generate_series(1, 400)) g;""",
    )
    fast_allocations = pg.run(empty_db, f"SELECT id_a, id_b FROM ({preflight.ALLOCATION_OVERLAPS_SQL}) p ORDER BY 1, 2")
    fast_assignments = pg.run(empty_db, f"SELECT id_a, id_b FROM ({preflight.ASSIGNMENT_OVERLAPS_SQL}) p ORDER BY 1, 2")
    assert len(fast_allocations) > 100 and len(fast_assignments) > 100  # the data does overlap
    assert fast_allocations == pg.run(empty_db, NAIVE_ALLOCATION_PAIRS)
    assert fast_assignments == pg.run(empty_db, NAIVE_ASSIGNMENT_PAIRS)


def test_size_gate_for_the_overlap_constraint_build(empty_db: str) -> None:
    """Building allocations_no_overlap (0003) locks allocations for the whole index build: above
    CAPACITY_MIGRATE_MAX_LOCKED_ROWS the pre-flight and 0003's own gate refuse with the real row count,
    -x allow_long_lock=true builds it."""
    migrate.upgrade(empty_db, "0002_merge_groups")
    floor = seed_floor(empty_db)
    for i in range(3):
        start, end = f"2031-06-1{i + 1} 18:00+00", f"2031-06-1{i + 1} 20:00+00"
        pg.run(empty_db, allocation_sql(str(uuid.uuid4()), str(floor.restaurant), None, str(floor.t1), start, end))
    small = Settings(migrate_max_locked_rows=2)
    with pytest.raises(Exception) as err:
        migrate.upgrade(empty_db, "head", small)
    assert _error(err.value).diag.message_primary == "capacity_size_gate"
    assert "indexes 3 rows (limit 2)" in (_error(err.value).diag.message_detail or "")
    with pytest.raises(Exception) as err:
        migrate.upgrade(empty_db, "head", small, skip_preflight="true")
    assert "indexes 3 rows (limit 2)" in (_error(err.value).diag.message_detail or "")
    assert pg.run(empty_db, "SELECT version_num FROM capacity_alembic_version") == [("0002_merge_groups",)]
    migrate.upgrade(empty_db, "head", small, allow_long_lock="true")
    assert pg.run(empty_db, "SELECT count(*) FROM pg_constraint WHERE conname = 'allocations_no_overlap'") == [(1,)]
    migrate.upgrade(empty_db, "head", small)  # at head: nothing left to build, no gate
