"""What an operator sees on stderr while migrating (issue 9 item 3): progress of the pre-flight checks and
back-fills, and no wall of "already exists, skipping" notices on a fresh database."""

from __future__ import annotations

import logging

import pytest

from service.schema import migrate
from tests.support import pg
from tests.support.floor import Floor, seed_floor


def _messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "capacity.migrations" and r.levelno >= level]


def test_fresh_database_migration_prints_progress_and_no_skipping_notices(
    empty_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="capacity.migrations"):
        migrate.upgrade(empty_db, "head")
    shown = _messages(caplog)
    assert [m for m in shown if "already exists, skipping" in m] == []
    # the server did say it (CREATE INDEX CONCURRENTLY IF NOT EXISTS after the greenfield build): kept at DEBUG
    assert any("already exists, skipping" in m for m in _messages(caplog, logging.DEBUG))
    assert any(m.startswith("capacity pre-flight allocation overlaps: 0 rows checked in") for m in shown)
    assert any(m.startswith("capacity back-fill bookings.assigned_zone_id: 0 / 0 rows walked") for m in shown)


def test_backfill_progress_counts_rows_walked_and_set(
    empty_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrate.upgrade(empty_db, "0001_base")
    floor: Floor = seed_floor(empty_db)
    pg.run(empty_db, "INSERT INTO booking_table_assignments (booking_id, table_id) VALUES (%s, %s), (%s, %s)",
           (floor.b1, floor.t1, floor.b2, floor.t2))
    with caplog.at_level(logging.INFO, logger="capacity.migrations"):
        migrate.upgrade(empty_db, "0002_merge_groups")
    bookings = pg.run(empty_db, "SELECT count(*) FROM bookings")[0][0]
    shown = _messages(caplog)
    assert any(
        m.startswith(f"capacity back-fill bookings.assigned_zone_id: {bookings} / {bookings} rows walked, 2 rows set")
        for m in shown
    ), shown
    # one walk fills both columns of booking_table_assignments, by booking
    assert any(
        m.startswith("capacity back-fill booking_table_assignments.allocation_id, merge_group_id: 2 / 2 bookings walked, 0 rows set")
        for m in shown
    ), shown
    assert "capacity back-fill booking_table_assignments.allocation_id: 0 rows set" in shown, shown
