"""Revision 0002_merge_groups (docs/schema.md §5.4): fixtures A and A2 of §6.2, FK shape drift, the back-fills,
and the downgrade's data-loss rule."""

from __future__ import annotations

import logging
import uuid

import psycopg
import pytest

from service.schema import migrate
from tests.support import pg
from tests.support.fixtures import FORGET_HISTORY_SQL, allocation_sql, fixture_a2_sql, fixture_a_sql
from tests.support.floor import Floor, add_booking, seed_floor

REV = "0002_merge_groups"
BTA = "booking_table_assignments"
FK = "booking_table_assignments_merge_group_id_fkey"
EVENING = ("2031-06-13 17:30+00", "2031-06-13 19:30+00")


def _error(exc: BaseException) -> psycopg.Error:
    while not isinstance(exc, psycopg.Error):
        exc = exc.__cause__ or getattr(exc, "orig", None)
        assert exc is not None, "not a database error"
    return exc


def _column_exists(url: str, table: str, column: str) -> bool:
    return pg.run(
        url,
        "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s AND NOT attisdropped",
        (f"public.{table}", column),
    ) == [(1,)]


def _fk(url: str) -> list[tuple]:
    return pg.run(url, "SELECT pg_get_constraintdef(oid), convalidated FROM pg_constraint "
                       "WHERE conrelid = 'public.booking_table_assignments'::regclass AND conname = %s", (FK,))


def _ledger(url: str, kind: str, name: str) -> list[tuple]:
    return pg.run(url, "SELECT action FROM capacity_schema_ledger WHERE revision = %s AND object_kind = %s "
                       "AND object_name = %s", (REV, kind, name))


def _commit_b2_on_t2_t3(url: str, floor: Floor) -> list[tuple]:
    return pg.run(url, "SELECT * FROM assign_tables_atomic_v2(%s, ARRAY[%s, %s]::uuid[], NULL, true)",
                  (floor.b2, floor.t2, floor.t3))


@pytest.fixture
def floor(head_db: str) -> Floor:
    return seed_floor(head_db)


def test_fixture_a_column_fk_and_index_added(head_db: str, floor: Floor) -> None:
    pg.run(head_db, fixture_a_sql())
    # seed 000: the commit names merge_group_id, so without the column a merged commit fails with 42703
    with pytest.raises(psycopg.errors.UndefinedColumn):
        _commit_b2_on_t2_t3(head_db, floor)

    migrate.upgrade(head_db, "head")
    assert _column_exists(head_db, BTA, "merge_group_id")
    assert _fk(head_db) == [("FOREIGN KEY (merge_group_id) REFERENCES allocations(id) ON DELETE SET NULL", True)]
    assert pg.run(head_db, "SELECT indisvalid FROM pg_index "
                           "WHERE indexrelid = to_regclass('public.booking_table_assignments_merge_group_idx')") == [(True,)]
    assert _ledger(head_db, "column", f"{BTA}.merge_group_id") == [("created",)]

    rows = _commit_b2_on_t2_t3(head_db, floor)
    groups = {r[3] for r in rows}
    assert len(rows) == 2 and len(groups) == 1 and None not in groups
    members = pg.run(head_db, "SELECT table_id FROM merge_group_members_v WHERE merge_group_id = %s", (groups.pop(),))
    assert {r[0] for r in members} == {floor.t2, floor.t3}


def test_fixture_a2_adopted_without_42710_and_kept_by_downgrade(head_db: str) -> None:
    pg.run(head_db, fixture_a2_sql())
    migrate.upgrade(head_db, REV)
    assert _ledger(head_db, "column", f"{BTA}.merge_group_id") == [("adopted",)]
    assert _ledger(head_db, "constraint", f"{BTA}.{FK}") == [("adopted",)]

    migrate.downgrade(head_db, "0001_base")
    assert _column_exists(head_db, BTA, "merge_group_id")
    assert len(_fk(head_db)) == 1
    assert _column_exists(head_db, BTA, "allocation_id")  # pre-existing (adopted) as well
    # what 0002 did create goes: the view (the fixture dropped it with the column)
    assert pg.run(head_db, "SELECT to_regclass('public.merge_group_members_v')") == [(None,)]

    migrate.upgrade(head_db, "head")
    assert _fk(head_db)[0][1] is True


def test_fk_of_the_expected_name_with_another_target_is_drift(head_db: str) -> None:
    pg.run(head_db, fixture_a2_sql(fk_target="bookings(id) ON DELETE CASCADE"))
    with pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head")
    error = _error(err.value)
    assert "capacity_drift_fk_shape" in error.diag.message_detail and FK in error.diag.message_detail
    # and the revision's own guard says the same when the up-front pre-flight is skipped
    with pytest.raises(Exception) as err:
        migrate.upgrade(head_db, "head", skip_preflight="true")
    assert _error(err.value).diag.message_primary == "capacity_drift_fk_shape"
    assert pg.run(head_db, "SELECT version_num FROM capacity_alembic_version") == [("0001_base",)]


def test_backfills_on_an_adopted_database(head_db: str, floor: Floor, caplog: pytest.LogCaptureFixture) -> None:
    """merge_group_id from the single merge_group allocation; ambiguous bookings left NULL and counted;
    allocation_id from the overlapping table allocation; assigned_zone_id from the tables' common zone."""
    group = uuid.uuid4()
    pg.run(head_db, 'INSERT INTO allocations (id, restaurant_id, booking_id, resource_type, resource_id, "window") '
                    "VALUES (%s, %s, %s, 'merge_group', %s, tstzrange(%s, %s, '[)'))",
           (group, floor.restaurant, floor.b2, group, *EVENING))
    table_allocs = {}
    for table in (floor.t2, floor.t3):
        table_allocs[table] = uuid.uuid4()
        pg.run(head_db, allocation_sql(str(table_allocs[table]), str(floor.restaurant), str(floor.b2), str(table), *EVENING))
        pg.run(head_db, f"INSERT INTO {BTA} (booking_id, table_id, start_at, end_at) VALUES (%s, %s, %s, %s)",
               (floor.b2, table, *EVENING))
    # B3: two tables, two merge_group allocations -> ambiguous
    b3 = add_booking(head_db, floor.restaurant, 6, "21:00", "22:30")
    late = ("2031-06-13 20:00+00", "2031-06-13 21:30+00")
    for _ in range(2):
        g = uuid.uuid4()
        pg.run(head_db, 'INSERT INTO allocations (id, restaurant_id, booking_id, resource_type, resource_id, "window") '
                        "VALUES (%s, %s, %s, 'merge_group', %s, tstzrange(%s, %s, '[)'))",
               (g, floor.restaurant, b3, g, *late))
    for table in (floor.t1, floor.t4):
        pg.run(head_db, f"INSERT INTO {BTA} (booking_id, table_id, start_at, end_at) VALUES (%s, %s, %s, %s)",
               (b3, table, *late))
    pg.run(head_db, "UPDATE bookings SET assigned_zone_id = NULL;" + FORGET_HISTORY_SQL)

    caplog.set_level(logging.INFO, logger="capacity.migrations")
    migrate.upgrade(head_db, "head")

    rows = pg.run(head_db, f"SELECT table_id, merge_group_id, allocation_id FROM {BTA} WHERE booking_id = %s", (floor.b2,))
    assert {(r[0], r[1], r[2]) for r in rows} == {(t, group, a) for t, a in table_allocs.items()}
    assert pg.run(head_db, f"SELECT merge_group_id FROM {BTA} WHERE booking_id = %s", (b3,)) == [(None,), (None,)]
    zones = dict(pg.run(head_db, "SELECT id, assigned_zone_id FROM bookings WHERE id IN (%s, %s)", (floor.b2, b3)))
    assert zones == {floor.b2: floor.zone, b3: None}  # B3's tables are in two zones
    assert any("merge_group_id: 2 rows set; 1 multi-table bookings left NULL" in m for m in caplog.messages)


def test_downgrade_refuses_to_drop_merge_groups_in_use(empty_db: str) -> None:
    migrate.upgrade(empty_db, REV)
    floor = seed_floor(empty_db)
    group = uuid.uuid4()
    pg.run(empty_db, 'INSERT INTO allocations (id, restaurant_id, booking_id, resource_type, resource_id, "window") '
                     "VALUES (%s, %s, %s, 'merge_group', %s, tstzrange(%s, %s, '[)'))",
           (group, floor.restaurant, floor.b2, group, *EVENING))
    pg.run(empty_db, f"INSERT INTO {BTA} (booking_id, table_id, merge_group_id) VALUES (%s, %s, %s)",
           (floor.b2, floor.t2, group))

    with pytest.raises(Exception) as err:
        migrate.downgrade(empty_db, "0001_base")
    assert _error(err.value).diag.message_primary == "capacity_downgrade_data_loss"
    assert _column_exists(empty_db, BTA, "merge_group_id")
    assert pg.run(empty_db, "SELECT version_num FROM capacity_alembic_version") == [(REV,)]

    migrate.downgrade(empty_db, "0001_base", allow_data_loss="true")
    for column in ("merge_group_id", "allocation_id", "assignment_window"):
        assert not _column_exists(empty_db, BTA, column)
    assert not _column_exists(empty_db, "bookings", "assigned_zone_id")
    assert pg.run(empty_db, "SELECT to_regclass('public.merge_group_members_v')") == [(None,)]
    assert pg.run(empty_db, "SELECT count(*) FROM capacity_schema_ledger WHERE revision = %s", (REV,)) == [(0,)]
    # and back up again
    migrate.upgrade(empty_db, REV)
    assert _column_exists(empty_db, BTA, "merge_group_id")
