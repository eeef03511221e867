"""docs/schema.md §7 cases 9–14 and the FK actions of case 15, on a database at head."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from service.schema import migrate
from tests.support import pg
from tests.support.ddl_audit import ddl_audit
from tests.support.fixtures import FORGET_HISTORY_SQL, allocation_sql
from tests.support.floor import Floor, seed_floor

EVENING = ("2031-06-13 18:00+00", "2031-06-13 20:00+00")
LATER = ("2031-06-13 19:00+00", "2031-06-13 21:00+00")


@pytest.fixture
def floor(head_db: str) -> Floor:
    return seed_floor(head_db)


def _alloc(url: str, floor: Floor, booking, resource, window, **kw) -> uuid.UUID:
    alloc_id = uuid.uuid4()
    pg.run(url, allocation_sql(str(alloc_id), str(floor.restaurant), booking and str(booking), str(resource), *window, **kw))
    return alloc_id


def test_overlap_rejected_at_the_statement_not_at_commit(head_db: str, floor: Floor) -> None:
    """Case 9: 23P01 naming allocations_no_overlap is raised by the INSERT inside an open transaction."""
    with psycopg.connect(head_db) as conn:
        conn.execute(allocation_sql(str(uuid.uuid4()), str(floor.restaurant), str(floor.b1), str(floor.t1), *EVENING))
        with pytest.raises(psycopg.errors.ExclusionViolation) as err:
            conn.execute(allocation_sql(str(uuid.uuid4()), str(floor.restaurant), str(floor.b2), str(floor.t1), *LATER))
        assert err.value.diag.constraint_name == "allocations_no_overlap"
        conn.rollback()


def test_shadow_row_does_not_block(head_db: str, floor: Floor) -> None:
    """Case 10."""
    _alloc(head_db, floor, floor.b1, floor.t1, EVENING, shadow=True)
    _alloc(head_db, floor, floor.b2, floor.t1, LATER)
    assert pg.run(head_db, "SELECT count(*) FROM allocations WHERE resource_id = %s", (floor.t1,)) == [(2,)]


def test_half_open_windows_touching_are_fine(head_db: str, floor: Floor) -> None:
    """Case 11: [18:00,20:00) and [20:00,22:00)."""
    _alloc(head_db, floor, floor.b1, floor.t1, EVENING)
    _alloc(head_db, floor, floor.b2, floor.t1, ("2031-06-13 20:00+00", "2031-06-13 22:00+00"))


def test_other_resource_type_does_not_conflict(head_db: str, floor: Floor) -> None:
    """Case 12: a `table` and a `hold` allocation on the same id and window."""
    _alloc(head_db, floor, floor.b1, floor.t1, EVENING, resource_type="table")
    _alloc(head_db, floor, floor.b2, floor.t1, LATER, resource_type="hold")


@pytest.mark.parametrize(
    "window_sql",
    ["'empty'::tstzrange", "tstzrange(NULL, '2031-06-13 20:00+00')", "tstzrange('2031-06-13 18:00+00', NULL)"],
)
def test_empty_or_unbounded_window_rejected(head_db: str, floor: Floor, window_sql: str) -> None:
    """Case 13 (and the unbounded variants of the same CHECK)."""
    with pytest.raises(psycopg.errors.CheckViolation) as err:
        pg.run(
            head_db,
            'INSERT INTO allocations (restaurant_id, booking_id, resource_type, resource_id, "window") '
            f"VALUES (%s, %s, 'table', %s, {window_sql})",
            (floor.restaurant, floor.b1, floor.t1),
        )
    assert err.value.diag.constraint_name == "allocations_window_valid"


def _assignment(url: str, booking, table, window) -> uuid.UUID:
    row_id = uuid.uuid4()
    pg.run(
        url,
        "INSERT INTO booking_table_assignments (id, booking_id, table_id, start_at, end_at) VALUES (%s, %s, %s, %s, %s)",
        (row_id, booking, table, *window),
    )
    return row_id


def test_overlapping_assignment_windows_rejected(head_db: str, floor: Floor) -> None:
    """Case 14."""
    _assignment(head_db, floor.b1, floor.t1, EVENING)
    with pytest.raises(psycopg.errors.ExclusionViolation) as err:
        _assignment(head_db, floor.b2, floor.t1, LATER)
    assert err.value.diag.constraint_name == "no_overlapping_table_assignments"


def test_deleting_merge_group_allocation_unlinks_assignments(head_db: str, floor: Floor) -> None:
    """Case 15, first half: ON DELETE SET NULL; the view lists the members while the group exists."""
    group = uuid.uuid4()
    pg.run(
        head_db,
        'INSERT INTO allocations (id, restaurant_id, booking_id, resource_type, resource_id, "window") '
        "VALUES (%s, %s, %s, 'merge_group', %s, tstzrange(%s, %s, '[)'))",
        (group, floor.restaurant, floor.b2, group, *EVENING),
    )
    for table in (floor.t2, floor.t3):
        pg.run(
            head_db,
            "INSERT INTO booking_table_assignments (booking_id, table_id, start_at, end_at, merge_group_id) "
            "VALUES (%s, %s, %s, %s, %s)",
            (floor.b2, table, *EVENING, group),
        )
    members = pg.run(head_db, "SELECT table_id FROM merge_group_members_v WHERE merge_group_id = %s", (group,))
    assert {r[0] for r in members} == {floor.t2, floor.t3}

    pg.run(head_db, "DELETE FROM allocations WHERE id = %s", (group,))
    rows = pg.run(head_db, "SELECT merge_group_id FROM booking_table_assignments WHERE booking_id = %s", (floor.b2,))
    assert rows == [(None,), (None,)]


def test_deleting_booking_cascades(head_db: str, floor: Floor) -> None:
    """Case 15, second half: allocations, assignments, idempotency rows and confirmation results go with it."""
    alloc = _alloc(head_db, floor, floor.b1, floor.t1, EVENING)
    pg.run(
        head_db,
        "INSERT INTO booking_table_assignments (booking_id, table_id, start_at, end_at, allocation_id) "
        "VALUES (%s, %s, %s, %s, %s)",
        (floor.b1, floor.t1, *EVENING, alloc),
    )
    pg.run(
        head_db,
        "INSERT INTO booking_assignment_idempotency (booking_id, idempotency_key, table_ids, assignment_window) "
        "VALUES (%s, 'k1', ARRAY[%s]::uuid[], tstzrange(%s, %s, '[)'))",
        (floor.b1, floor.t1, *EVENING),
    )
    pg.run(
        head_db,
        "INSERT INTO booking_confirmation_results (booking_id, idempotency_key, hold_id, restaurant_id, table_ids, "
        "assignment_window) VALUES (%s, 'k1', %s, %s, ARRAY[%s]::uuid[], tstzrange(%s, %s, '[)'))",
        (floor.b1, uuid.uuid4(), floor.restaurant, floor.t1, *EVENING),
    )
    pg.run(head_db, "DELETE FROM bookings WHERE id = %s", (floor.b1,))
    for table in ("allocations", "booking_table_assignments", "booking_assignment_idempotency",
                  "booking_confirmation_results"):
        assert pg.run(head_db, f"SELECT count(*) FROM {table} WHERE booking_id = %s", (floor.b1,)) == [(0,)], table


def test_rerun_on_adopted_head_touches_nothing(head_db: str) -> None:
    """Case 2a for 0002/0003: with the history dropped the revisions re-run in adopted mode; the target
    constraints are recognised by shape (deferrable or not) and no DDL object is touched."""
    pg.run(head_db, FORGET_HISTORY_SQL)
    migrate.upgrade(head_db, "0001_base")  # re-creates the history tables (and grants on them)
    with ddl_audit(head_db) as audit:
        migrate.upgrade(head_db, "0003_overlap_confirm_cache")
    assert audit.objects == []
    adopted = pg.run(
        head_db,
        "SELECT object_name, action FROM capacity_schema_ledger WHERE revision = '0003_overlap_confirm_cache' "
        "AND object_name IN ('allocations.allocations_no_overlap', "
        "'booking_table_assignments.no_overlapping_table_assignments') ORDER BY 1",
    )
    assert adopted == [("allocations.allocations_no_overlap", "adopted"),
                       ("booking_table_assignments.no_overlapping_table_assignments", "adopted")]


def test_downgrade_0003_refuses_to_drop_confirmation_results_with_rows(empty_db: str) -> None:
    """Greenfield: 0003's downgrade drops what it created, but not a confirmation cache holding rows
    unless -x allow_data_loss=true."""
    migrate.upgrade(empty_db, "0003_overlap_confirm_cache")
    floor = seed_floor(empty_db)
    pg.run(
        empty_db,
        "INSERT INTO booking_confirmation_results (booking_id, idempotency_key, hold_id, restaurant_id, table_ids, "
        "assignment_window) VALUES (%s, 'k1', %s, %s, ARRAY[%s]::uuid[], tstzrange(%s, %s, '[)'))",
        (floor.b1, uuid.uuid4(), floor.restaurant, floor.t1, *EVENING),
    )
    with pytest.raises(psycopg.errors.RaiseException, match="capacity_downgrade_data_loss"):
        migrate.downgrade(empty_db, "0002_merge_groups")
    assert pg.run(empty_db, "SELECT version_num FROM capacity_alembic_version") == [("0003_overlap_confirm_cache",)]

    migrate.downgrade(empty_db, "0002_merge_groups", allow_data_loss="true")
    assert pg.run(empty_db, "SELECT to_regclass('public.booking_confirmation_results')") == [(None,)]
    names = {"allocations_no_overlap", "allocations_window_valid", "no_overlapping_table_assignments"}
    assert pg.run(empty_db, "SELECT count(*) FROM pg_constraint WHERE conname = ANY (%s)", (list(names),)) == [(0,)]
    migrate.upgrade(empty_db, "0003_overlap_confirm_cache")
    assert pg.run(empty_db, "SELECT count(*) FROM pg_constraint WHERE conname = ANY (%s)", (list(names),)) == [(3,)]


def test_overlap_arriving_after_the_first_check_is_refused_under_the_lock_naming_the_pair(empty_db: str) -> None:
    """0003 does not repeat the pair search under its lock: the constraint build checks every pair. An
    overlap that slipped in after the first check (simulated by running the locked block alone) makes the
    build fail, and the block answers as the pre-flight does — the pair named, nothing left behind."""
    from alembic.script import ScriptDirectory

    migrate.upgrade(empty_db, "0002_merge_groups")
    floor = seed_floor(empty_db)
    first, second = uuid.uuid4(), uuid.uuid4()
    pg.run(empty_db, allocation_sql(str(first), str(floor.restaurant), str(floor.b1), str(floor.t1), *EVENING))
    pg.run(empty_db, allocation_sql(str(second), str(floor.restaurant), str(floor.b2), str(floor.t1), *LATER))
    script = ScriptDirectory.from_config(migrate.alembic_config(None))
    locked_block = script.get_revision("0003_overlap_confirm_cache").module._overlap_constraints()
    with pytest.raises(psycopg.errors.RaiseException) as err:
        pg.run(empty_db, locked_block)
    assert err.value.diag.message_primary == "capacity_preflight_overlap"
    assert f"{min(first, second)} & {max(first, second)}" in (err.value.diag.message_detail or "")
    assert pg.run(empty_db, "SELECT count(*) FROM pg_constraint WHERE conname LIKE 'allocations_no_overlap%'") == [(0,)]
