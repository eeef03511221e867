"""The suite-sized run of bench/stress_assign.py: concurrent runs of one day over two replicas, runs of
other restaurants, staff assignments through assign_tables_atomic_v2 and arriving bookings, then the
invariants (0 overlaps, one table set per booking, every booking assigned or skipped with a reason, the
ledgers consistent). A second test proves the invariant checks can fail."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from stress_assign import StressConfig, check_invariants, seed_restaurant, stress  # noqa: E402

from tests.support import pg  # noqa: E402

SMALL = StressConfig(runs=8, others=2, other_runs=2, manual=12, tables=12, bookings=40, arrivals=8, replicas=2)


async def test_concurrent_runs_staff_and_arrivals_keep_every_invariant(head_db: str) -> None:
    report = await stress(head_db, SMALL)
    assert report.invariants and all(v == 0 for v in report.invariants.values()), report.invariants
    assert report.unexplained == []
    assert set(report.statuses) <= {200, 409}, report.statuses
    assert len(report.main_runs) == SMALL.runs  # every concurrent run completed (409 → retried)
    assert report.assigned_bookings > 0 and report.manual_ok > 0  # both paths really wrote


def test_the_invariant_checks_see_a_second_table_set_and_a_missing_allocation(head_db: str) -> None:
    import random

    r = seed_restaurant(head_db, random.Random(3), tables=6, bookings=3)  # capacities 2…8: all fit
    booking, table = pg.run(head_db, "SELECT b.id, t.id FROM bookings b JOIN table_inventory t "
                                     "ON t.restaurant_id = b.restaurant_id AND t.capacity >= b.party_size "
                                     "WHERE b.restaurant_id = %s LIMIT 1", (r.rid,))[0]
    pg.run(head_db, "SELECT * FROM assign_tables_atomic_v2(%s, %s, 'k1', false, NULL, NULL, NULL)", (booking, [table]))
    assert all(v == 0 for v in check_invariants(head_db, [r.rid]).values())
    pg.run(head_db, """INSERT INTO booking_assignment_idempotency (booking_id, idempotency_key, table_ids,
                                                                    assignment_window, table_set_hash)
                       SELECT booking_id, 'k2', table_ids, assignment_window, 'other'
                         FROM booking_assignment_idempotency WHERE booking_id = %s""", (booking,))
    pg.run(head_db, "DELETE FROM allocations WHERE booking_id = %s", (booking,))
    found = check_invariants(head_db, [r.rid])
    assert found["bookings with two table sets"] == 1
    assert found["assignments without an allocation"] == 1
