"""assign_tables_atomic_v2 at head — docs/schema.md §7 cases 17–25, assign_tables_first_fit (§3.4), and revision
0007's commit_planned_assignment (the auto-assign commit path)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import uuid
from dataclasses import replace
from zoneinfo import ZoneInfo

import asyncpg
import psycopg
import pytest
from psycopg import errors
from sqlalchemy.engine import make_url

from service.assign import repository as repo
from service.domain.allocator.day_plan import PlannedAssignment
from service.domain.allocator.model import ACTIVE_BOOKING_STATUSES
from service.schema import migrate
from service.schema.released.capacity_functions import (
    ASSIGN_TABLES_ATOMIC_V2,
    COMMIT_PLANNED_ASSIGNMENT,
    COMMIT_PLANNED_ASSIGNMENTS,
    VALIDATE_BOOKING_CAPACITY,
)
from tests.support import pg
from tests.support.floor import SERVICE_DATE, TIMEZONE, add_booking, commit, count, seed_floor

SIG_7 = "public.assign_tables_atomic_v2(uuid, uuid[], text, boolean, uuid, timestamptz, timestamptz)"


def _allocations(url: str, booking: uuid.UUID) -> list[tuple]:
    return pg.run(
        url,
        "SELECT id, resource_type, resource_id, shadow FROM allocations WHERE booking_id = %s ORDER BY resource_type, resource_id",
        (booking,),
    )


def _assignments(url: str, booking: uuid.UUID) -> list[tuple]:
    return pg.run(
        url,
        "SELECT table_id, allocation_id, merge_group_id FROM booking_table_assignments WHERE booking_id = %s ORDER BY table_id",
        (booking,),
    )


def test_17_single_table_commit(head_db: str) -> None:
    f = seed_floor(head_db)
    rows = commit(head_db, f.b1, [f.t1])

    assert [(r[0], r[3]) for r in rows] == [(f.t1, None)]
    start_at, end_at = pg.run(head_db, "SELECT start_at, end_at FROM bookings WHERE id = %s", (f.b1,))[0]
    assert (rows[0][1], rows[0][2]) == (start_at, end_at)
    allocs = _allocations(head_db, f.b1)
    assert [(a[1], a[2], a[3]) for a in allocs] == [("table", f.t1, False)]
    assert _assignments(head_db, f.b1) == [(f.t1, allocs[0][0], None)]
    assert pg.run(head_db, "SELECT assigned_zone_id FROM bookings WHERE id = %s", (f.b1,)) == [(f.zone,)]
    # The service date is in the future: the table is not reserved now.
    assert pg.run(head_db, "SELECT status::text FROM table_inventory WHERE id = %s", (f.t1,)) == [("available",)]


def test_17_table_reserved_while_now_is_inside_the_window(head_db: str) -> None:
    f = seed_floor(head_db)
    now = pg.run(head_db, "SELECT now()")[0][0]
    commit(head_db, f.b2, [f.t2], window=(now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)))
    assert pg.run(head_db, "SELECT status::text FROM table_inventory WHERE id = %s", (f.t2,)) == [("reserved",)]

    # Releasing the allocation makes it available again (trg_allocations_refresh).
    pg.run(head_db, "DELETE FROM booking_table_assignments WHERE booking_id = %s", (f.b2,))
    pg.run(head_db, "DELETE FROM allocations WHERE booking_id = %s", (f.b2,))
    assert pg.run(head_db, "SELECT status::text FROM table_inventory WHERE id = %s", (f.t2,)) == [("available",)]


def test_18_merged_commit_with_adjacency(head_db: str) -> None:
    f = seed_floor(head_db)
    rows = commit(head_db, f.b2, [f.t3, f.t2, f.t3], adjacency=True)

    assert sorted(r[0] for r in rows) == sorted([f.t2, f.t3])
    merge_ids = {r[3] for r in rows}
    assert len(merge_ids) == 1 and None not in merge_ids
    (mg,) = merge_ids
    groups = pg.run(
        head_db,
        "SELECT id, resource_id, shadow FROM allocations WHERE booking_id = %s AND resource_type = 'merge_group'",
        (f.b2,),
    )
    assert groups == [(mg, mg, False)]
    assert count(head_db, "SELECT count(*) FROM allocations WHERE booking_id = %s AND resource_type = 'table'", (f.b2,)) == 2
    assert all(a[1] is not None and a[2] == mg for a in _assignments(head_db, f.b2))
    members = pg.run(
        head_db, "SELECT table_id FROM merge_group_members_v WHERE merge_group_id = %s ORDER BY table_id", (mg,)
    )
    assert [m[0] for m in members] == sorted([f.t2, f.t3])


def test_19_merged_commit_without_edge_writes_nothing(head_db: str) -> None:
    f = seed_floor(head_db)
    with pytest.raises(errors.CheckViolation, match="not adjacent"):
        commit(head_db, f.b2, [f.t1, f.t2], adjacency=True)
    assert _allocations(head_db, f.b2) == []
    assert _assignments(head_db, f.b2) == []
    assert pg.run(head_db, "SELECT assigned_zone_id FROM bookings WHERE id = %s", (f.b2,)) == [(None,)]


def test_20_overlapping_commit_is_allocations_no_overlap(head_db: str) -> None:
    f = seed_floor(head_db)
    commit(head_db, f.b1, [f.t2])
    with pg.raises_sqlstate(pg.ALLOCATION_OVERLAP_STATE) as exc:
        commit(head_db, f.b2, [f.t2])
    assert exc.value.diag.message_primary == "allocations_no_overlap"
    assert _allocations(head_db, f.b2) == []
    assert _assignments(head_db, f.b2) == []


def test_21_idempotency_key(head_db: str) -> None:
    f = seed_floor(head_db)
    first = commit(head_db, f.b1, [f.t1], key="key-1")
    before = pg.run(
        head_db,
        "SELECT xmin::text, updated_at FROM booking_table_assignments WHERE booking_id = %s "
        "UNION ALL SELECT xmin::text, updated_at FROM allocations WHERE booking_id = %s",
        (f.b1, f.b1),
    )
    second = commit(head_db, f.b1, [f.t1], key="key-1")
    after = pg.run(
        head_db,
        "SELECT xmin::text, updated_at FROM booking_table_assignments WHERE booking_id = %s "
        "UNION ALL SELECT xmin::text, updated_at FROM allocations WHERE booking_id = %s",
        (f.b1, f.b1),
    )
    assert second == first
    assert after == before  # no row rewritten
    assert count(head_db, "SELECT count(*) FROM booking_assignment_idempotency WHERE booking_id = %s", (f.b1,)) == 1
    hash_ = pg.run(head_db, "SELECT table_set_hash FROM booking_assignment_idempotency WHERE booking_id = %s", (f.b1,))
    assert hash_ == [(pg.run(head_db, "SELECT md5(%s::text)", (str(f.t1),))[0][0],)]

    with pytest.raises(psycopg.Error) as exc:
        commit(head_db, f.b1, [f.t2], key="key-1")
    assert exc.value.sqlstate == "P0003"


def _hold(url: str, f, booking: uuid.UUID | None, table: uuid.UUID) -> uuid.UUID:
    hold = uuid.uuid4()
    params = {"h": hold, "r": f.restaurant, "b": booking, "z": f.zone, "b1": f.b1, "t": table}
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO table_holds (id, restaurant_id, booking_id, zone_id, start_at, end_at, expires_at)"
            " SELECT %(h)s, %(r)s, %(b)s, %(z)s, b1.start_at, b1.end_at, now() + interval '1 day'"
            " FROM bookings b1 WHERE b1.id = %(b1)s",
            params,
        )
        conn.execute("INSERT INTO table_hold_members (hold_id, table_id) VALUES (%(h)s, %(t)s)", params)
    return hold


def test_22_hold_of_another_booking_blocks(head_db: str) -> None:
    f = seed_floor(head_db)
    _hold(head_db, f, f.b2, f.t1)
    with pg.raises_sqlstate(pg.HOLD_CONFLICT_STATE, match="Hold conflict"):
        commit(head_db, f.b1, [f.t1])
    assert _assignments(head_db, f.b1) == []


def test_22_own_hold_becomes_the_real_allocation(head_db: str) -> None:
    f = seed_floor(head_db)
    _hold(head_db, f, f.b1, f.t1)
    shadow = _allocations(head_db, f.b1)
    assert [(a[1], a[2], a[3]) for a in shadow] == [("table", f.t1, True)]

    commit(head_db, f.b1, [f.t1])
    assert _allocations(head_db, f.b1) == [(shadow[0][0], "table", f.t1, False)]
    assert _assignments(head_db, f.b1) == [(f.t1, shadow[0][0], None)]


def test_22_unowned_hold_blocks_and_expired_hold_does_not(head_db: str) -> None:
    f = seed_floor(head_db)
    hold = _hold(head_db, f, None, f.t1)
    with pg.raises_sqlstate(pg.HOLD_CONFLICT_STATE, match="Hold conflict"):
        commit(head_db, f.b1, [f.t1])
    pg.run(head_db, "UPDATE table_holds SET expires_at = now() - interval '1 minute' WHERE id = %s", (hold,))
    assert len(commit(head_db, f.b1, [f.t1])) == 1


def test_23_zone_lock(head_db: str) -> None:
    f = seed_floor(head_db)
    commit(head_db, f.b1, [f.t1])
    with pytest.raises(errors.CheckViolation):
        commit(head_db, f.b1, [f.t4])
    assert [a[0] for a in _assignments(head_db, f.b1)] == [f.t1]


def test_23_zone_lock_from_existing_assignments(head_db: str) -> None:
    """Existing assignment rows in another zone refuse the commit even when assigned_zone_id is NULL."""
    f = seed_floor(head_db)
    commit(head_db, f.b1, [f.t1])
    pg.run(head_db, "UPDATE bookings SET assigned_zone_id = NULL WHERE id = %s", (f.b1,))
    with pytest.raises(errors.CheckViolation, match="another zone"):
        commit(head_db, f.b1, [f.t4])


def test_24_five_positional_arguments(head_db: str) -> None:
    f = seed_floor(head_db)
    rows = pg.run(
        head_db,
        "SELECT table_id, start_at, end_at, merge_group_id FROM assign_tables_atomic_v2(%s, %s, NULL, false, NULL)",
        (f.b1, [f.t1]),
    )
    booking = pg.run(head_db, "SELECT start_at, end_at FROM bookings WHERE id = %s", (f.b1,))[0]
    assert rows == [(f.t1, booking[0], booking[1], None)]
    assert count(head_db, "SELECT count(*) FROM pg_proc WHERE proname = 'assign_tables_atomic_v2'") == 1
    assert pg.run(head_db, "SELECT to_regprocedure(%s) IS NOT NULL", (SIG_7,)) == [(True,)]


def test_25_tenant_guard(head_db: str) -> None:
    f = seed_floor(head_db)
    with pytest.raises(errors.InsufficientPrivilege):
        commit(head_db, f.b1, [f.t1], settings={"app.restaurant_id": str(uuid.uuid4())})
    assert _assignments(head_db, f.b1) == []
    # The booking's own restaurant as context is fine.
    assert len(commit(head_db, f.b1, [f.t1], settings={"app.restaurant_id": str(f.restaurant)})) == 1


def test_validation_errors(head_db: str) -> None:
    f = seed_floor(head_db)
    with pytest.raises(errors.CheckViolation):
        commit(head_db, f.b1, [])
    with pytest.raises(psycopg.Error) as exc:
        commit(head_db, uuid.uuid4(), [f.t1])
    assert exc.value.sqlstate == "P0002"
    with pytest.raises(psycopg.Error) as exc:
        commit(head_db, f.b1, [uuid.uuid4()])
    assert exc.value.sqlstate == "P0002"
    with pytest.raises(psycopg.Error) as exc:
        pg.run(head_db, "SELECT * FROM assign_tables_atomic_v2(%s, %s, NULL, false, NULL, now(), NULL)", (f.b1, [f.t1]))
    assert exc.value.sqlstate == "22023"
    now = pg.run(head_db, "SELECT now()")[0][0]
    with pytest.raises(psycopg.Error) as exc:
        commit(head_db, f.b1, [f.t1], window=(now, now))
    assert exc.value.sqlstate == "22000"
    pg.run(head_db, "UPDATE table_inventory SET mobility = 'fixed' WHERE id = %s", (f.t3,))
    with pytest.raises(errors.CheckViolation, match="movable"):
        commit(head_db, f.b2, [f.t2, f.t3])
    pg.run(head_db, "UPDATE table_inventory SET active = false WHERE id = %s", (f.t1,))
    with pytest.raises(errors.CheckViolation, match="not active"):
        commit(head_db, f.b1, [f.t1])


def test_neighbouring_hour_buckets_are_locked(head_db: str) -> None:
    """A window crossing hour boundaries holds the advisory lock of every bucket it touches."""
    f = seed_floor(head_db)
    with psycopg.connect(head_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM assign_tables_atomic_v2(%s, %s)", (f.b1, [f.t1]))  # 18:00–20:00 London
        cur.execute(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            " AND classid::int = hashtext(%s) ORDER BY 1",
            (str(f.zone),),
        )
        buckets = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT (extract(epoch FROM start_at) / 3600)::bigint FROM bookings WHERE id = %s", (f.b1,))
        first = cur.fetchone()[0]
        conn.rollback()
    assert buckets == [first, first + 1]


def test_first_fit_skips_conflicting_candidates(head_db: str) -> None:
    f = seed_floor(head_db)
    commit(head_db, f.b1, [f.t2])
    b3 = add_booking(head_db, f.restaurant, 4, "18:30", "20:30")
    candidates = f'[["{f.t2}"], ["{f.t2}", "{f.t3}"], ["{f.t1}"]]'
    rows = pg.run(
        head_db,
        "SELECT table_id, merge_group_id FROM assign_tables_first_fit(%s, %s::jsonb, 'k', false)",
        (b3, candidates),
    )
    assert rows == [(f.t1, None)]
    keys = pg.run(head_db, "SELECT idempotency_key FROM booking_assignment_idempotency WHERE booking_id = %s", (b3,))
    assert keys == [("k-alt03",)]

    b4 = add_booking(head_db, f.restaurant, 2, "18:00", "19:00")
    with pg.raises_sqlstate(pg.ALLOCATION_OVERLAP_STATE, match="allocations_no_overlap"):
        pg.run(head_db, "SELECT * FROM assign_tables_first_fit(%s, %s::jsonb)", (b4, f'[["{f.t1}"], ["{f.t2}"]]'))
    assert _assignments(head_db, b4) == []


def test_hold_triggers_keep_windows_and_shadow_rows_in_step(head_db: str) -> None:
    f = seed_floor(head_db)
    hold = _hold(head_db, f, f.b1, f.t1)
    windows = "SELECT table_id, booking_id FROM table_hold_windows WHERE hold_id = %s"
    assert pg.run(head_db, windows, (hold,)) == [(f.t1, f.b1)]

    pg.run(head_db, "UPDATE table_holds SET end_at = end_at + interval '30 minutes' WHERE id = %s", (hold,))
    shadow_end = pg.run(
        head_db, "SELECT upper(\"window\") FROM allocations WHERE booking_id = %s AND shadow", (f.b1,)
    )
    hold_end = pg.run(head_db, "SELECT end_at FROM table_holds WHERE id = %s", (hold,))
    assert shadow_end == hold_end

    pg.run(head_db, "UPDATE table_holds SET booking_id = %s WHERE id = %s", (f.b2, hold))
    assert pg.run(head_db, "SELECT booking_id FROM allocations WHERE shadow", ()) == [(f.b2,)]

    pg.run(head_db, "DELETE FROM table_holds WHERE id = %s", (hold,))
    assert pg.run(head_db, windows, (hold,)) == []
    assert count(head_db, "SELECT count(*) FROM allocations WHERE shadow") == 0


def test_adjacency_requires_same_zone(head_db: str) -> None:
    f = seed_floor(head_db)
    with pytest.raises(errors.CheckViolation, match="same zone"):
        pg.run(head_db, "INSERT INTO table_adjacencies (table_a, table_b) VALUES (%s, %s)", (f.t1, f.t4))
    pg.run(head_db, "INSERT INTO table_adjacencies (table_a, table_b) VALUES (%s, %s)", (f.t1, f.t2))
    with pytest.raises(errors.CheckViolation, match="same zone"):
        pg.run(head_db, "UPDATE table_adjacencies SET table_b = %s WHERE table_a = %s", (f.t4, f.t1))


def test_booking_status_change_refreshes_tables(head_db: str) -> None:
    f = seed_floor(head_db)
    now = pg.run(head_db, "SELECT now()")[0][0]
    commit(head_db, f.b1, [f.t1], window=(now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)))
    status = "SELECT status::text FROM table_inventory WHERE id = %s"
    assert pg.run(head_db, status, (f.t1,)) == [("reserved",)]
    pg.run(head_db, "UPDATE bookings SET status = 'checked_in' WHERE id = %s", (f.b1,))
    assert pg.run(head_db, status, (f.t1,)) == [("occupied",)]


# --------------------------------------------------------------------------------------------------
# commit_planned_assignment (revision 0007): the auto-assign commit of one booking as one call
# --------------------------------------------------------------------------------------------------
PLANNED = "SELECT outcome, booking_status, table_id FROM commit_planned_assignment(%s, %s, %s, %s, false, NULL, NULL, NULL)"
SIG_PLANNED = COMMIT_PLANNED_ASSIGNMENT.signature


def _as_app(url: str) -> str:
    return make_url(url).set(username="capacity_app", password=None).render_as_string(hide_password=False)


def _planned(url: str, restaurant: uuid.UUID, booking: uuid.UUID, tables: list[uuid.UUID], key: str) -> list[tuple]:
    """One call as the runtime role, outside an explicit transaction (as the service makes it)."""
    with psycopg.connect(_as_app(url), autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(PLANNED, (restaurant, booking, tables, key)).fetchall()]


def _written(url: str) -> tuple[int, int, int]:
    return (
        count(url, "SELECT count(*) FROM booking_table_assignments"),
        count(url, "SELECT count(*) FROM allocations"),
        count(url, "SELECT count(*) FROM booking_assignment_idempotency"),
    )


def test_commit_planned_assignment_outcomes_as_the_runtime_role(head_db: str) -> None:
    f = seed_floor(head_db)
    assert _planned(head_db, f.restaurant, f.b1, [f.t2], "k1") == [("assigned", "confirmed", f.t2)]
    after_first = _written(head_db)
    assert after_first == (1, 1, 1)

    # the identical set again (another key): a retry, nothing written
    assert _planned(head_db, f.restaurant, f.b1, [f.t2], "k2") == [("already_assigned", "confirmed", f.t2)]
    # another set: never a second one; the held set is reported
    assert _planned(head_db, f.restaurant, f.b1, [f.t3], "k3") == [("holds_other_tables", "confirmed", f.t2)]
    # the booking seen through another restaurant's context: RLS hides it, nothing is written
    other = seed_floor(head_db)
    assert _planned(head_db, other.restaurant, f.b2, [f.t3], "k4") == [("not_found", None, None)]
    # cancelled since the day was read
    pg.run(head_db, "UPDATE bookings SET status = 'cancelled' WHERE id = %s", (f.b2,))
    assert _planned(head_db, f.restaurant, f.b2, [f.t3], "k5") == [("inactive", "cancelled", None)]
    assert _written(head_db) == after_first


def test_commit_planned_assignment_errors_roll_back_the_whole_call(head_db: str) -> None:
    """An overlap raised inside assign_tables_atomic_v2 leaves nothing of the call behind (the single
    statement is its own transaction); the service classifies its CA002 as ASSIGNMENT_CONFLICT."""
    f = seed_floor(head_db)
    _planned(head_db, f.restaurant, f.b1, [f.t2], "k1")
    before = _written(head_db)
    with pg.raises_sqlstate(pg.ALLOCATION_OVERLAP_STATE, match="allocations_no_overlap"):
        _planned(head_db, f.restaurant, f.b2, [f.t2], "k2")  # b2 overlaps b1 on T2
    assert _written(head_db) == before
    assert pg.run(head_db, "SELECT assigned_zone_id FROM bookings WHERE id = %s", (f.b2,)) == [(None,)]


def test_commit_planned_assignment_statuses_match_the_allocator() -> None:
    """The function's list of statuses auto-assign may commit is the allocator's ACTIVE_BOOKING_STATUSES."""
    listed = re.search(r"v_status NOT IN \(([^)]*)\)", COMMIT_PLANNED_ASSIGNMENT.body)
    assert listed is not None
    assert {s.strip().strip("'") for s in listed.group(1).split(",")} == set(ACTIVE_BOOKING_STATUSES)


def test_revision_0007_downgrade_drops_only_its_functions_and_upgrade_restores_them(head_db: str) -> None:
    signatures = [SIG_PLANNED, COMMIT_PLANNED_ASSIGNMENTS.signature]

    def own() -> list[tuple]:
        return pg.run(
            head_db,
            "SELECT s, md5(prosrc), obj_description(oid, 'pg_proc') FROM unnest(%s::text[]) s"
            " JOIN pg_proc ON oid = to_regprocedure(s) ORDER BY s",
            (signatures,),
        )

    def ours() -> int:
        return count(head_db, "SELECT count(*) FROM pg_proc WHERE obj_description(oid, 'pg_proc') LIKE 'capacity-service:%%'")

    before = own()
    assert len(before) == 2 and all(r[2].startswith("capacity-service:0007_commit_planned_assignment:") for r in before)
    # counted at 0007 itself: later revisions' downgrades drop functions of their own (0009's lookup)
    migrate.downgrade(head_db, "0007_commit_planned_assignment")
    assert own() == before
    others = ours()

    migrate.downgrade(head_db, "0006_allocator_policy")
    assert own() == []
    assert ours() == others - 2
    assert count(head_db, "SELECT count(*) FROM capacity_schema_ledger WHERE revision = '0007_commit_planned_assignment'") == 0

    migrate.upgrade(head_db, "head")
    assert own() == before


# --------------------------------------------------------------------------------------------------
# commit_planned_assignments (revision 0007): a batch in one statement, a subtransaction per booking
# --------------------------------------------------------------------------------------------------
BATCH = "SELECT booking_id, outcome, booking_status, table_id, error_sqlstate FROM commit_planned_assignments(%s, %s::jsonb)"


def _item(booking: uuid.UUID, tables: list[uuid.UUID], key: str, date: dt.date = SERVICE_DATE, start: str = "18:00",
          end: str = "20:00") -> dict:
    local = dt.datetime.combine(date, dt.time.fromisoformat(start), ZoneInfo(TIMEZONE))
    finish = dt.datetime.combine(date, dt.time.fromisoformat(end), ZoneInfo(TIMEZONE))
    return {"booking_id": str(booking), "table_ids": sorted(str(t) for t in tables), "idempotency_key": key,
            "require_adjacency": False, "start_at": local.isoformat(), "end_at": finish.isoformat()}


def test_batch_commits_each_booking_on_its_own(head_db: str) -> None:
    """One booking's failure rolls back that booking only; rows come back in item order."""
    f = seed_floor(head_db)
    cancelled = add_booking(head_db, f.restaurant, 2, "21:00", "22:00", status="cancelled")
    items = [_item(f.b1, [f.t2], "k1"), _item(f.b2, [f.t2], "k2"), _item(cancelled, [f.t1], "k3", start="21:00",
                                                                          end="22:00")]
    with psycopg.connect(_as_app(head_db), autocommit=True) as conn:
        rows = [tuple(r) for r in conn.execute(BATCH, (f.restaurant, json.dumps(items))).fetchall()]
    assert rows[0] == (f.b1, "assigned", "confirmed", f.t2, None)
    assert rows[1][:2] == (f.b2, "error") and rows[1][4] == pg.ALLOCATION_OVERLAP_STATE  # overlaps b1 on T2
    assert rows[2] == (cancelled, "inactive", "cancelled", None, None)
    assert _assignments(head_db, f.b1)[0][0] == f.t2
    assert _assignments(head_db, f.b2) == [] and _allocations(head_db, f.b2) == []
    assert pg.run(head_db, "SELECT assigned_zone_id FROM bookings WHERE id = %s", (f.b2,)) == [(None,)]


async def test_concurrent_batches_take_their_locks_in_one_order_and_never_deadlock(head_db: str) -> None:
    """A holds T1 and waits for T3 (held by a staff transaction); B wants T2 then T1. Taken booking by
    booking, A would then wait for B's T2 while B waits for A's T1: a deadlock, one booking lost after
    deadlock_timeout (checked: without the up-front locks this test fails). The batch takes every lock up
    front in the single commit's order, so B just waits."""
    f = seed_floor(head_db)
    other_day = SERVICE_DATE + dt.timedelta(days=1)
    a = [add_booking(head_db, f.restaurant, 2, "18:00", "19:00") for _ in range(3)]
    b = [add_booking(head_db, f.restaurant, 2, "18:00", "19:00", date=other_day) for _ in range(2)]
    batch_a = [_item(a[0], [f.t1], "a0"), _item(a[1], [f.t3], "a1"), _item(a[2], [f.t2], "a2")]
    batch_b = [_item(b[0], [f.t2], "b0", date=other_day), _item(b[1], [f.t1], "b1", date=other_day)]
    app_url = _as_app(head_db)

    async def run(items: list[dict]) -> list[tuple]:
        async with await psycopg.AsyncConnection.connect(app_url, autocommit=True) as conn:
            cur = await conn.execute(BATCH, (f.restaurant, json.dumps(items)))
            return [tuple(r) for r in await cur.fetchall()]

    with psycopg.connect(head_db) as staff:  # a staff transaction holding T3's row
        staff.execute("SELECT 1 FROM table_inventory WHERE id = %s FOR UPDATE", (f.t3,))
        first = asyncio.create_task(run(batch_a))
        await asyncio.sleep(0.3)
        second = asyncio.create_task(run(batch_b))
        await asyncio.sleep(0.3)
        staff.rollback()
        rows_a, rows_b = await asyncio.wait_for(asyncio.gather(first, second), timeout=30)
    assert [r[1] for r in rows_a] == ["assigned"] * 3
    assert [r[1] for r in rows_b] == ["assigned"] * 2


# --------------------------------------------------------------------------------------------------
# The service's classification of the commit path's errors, through the real functions (revision 0009)
# --------------------------------------------------------------------------------------------------
def _window(booking_start: str, booking_end: str) -> tuple[dt.datetime, dt.datetime]:
    zone = ZoneInfo(TIMEZONE)
    return (dt.datetime.combine(SERVICE_DATE, dt.time.fromisoformat(booking_start), zone),
            dt.datetime.combine(SERVICE_DATE, dt.time.fromisoformat(booking_end), zone))


def _overlap(url: str, f) -> tuple[uuid.UUID, uuid.UUID, tuple[str, str]]:
    _planned(url, f.restaurant, f.b1, [f.t2], "k1")
    return f.b2, f.t2, ("18:30", "20:30")


def _held(url: str, f) -> tuple[uuid.UUID, uuid.UUID, tuple[str, str]]:
    _hold(url, f, f.b2, f.t1)
    return f.b1, f.t1, ("18:00", "20:00")


def _over_capacity(url: str, f) -> tuple[uuid.UUID, uuid.UUID, tuple[str, str]]:
    pg.run(url, "INSERT INTO restaurant_capacity_rules (restaurant_id, service_period_id, max_covers) VALUES (%s, %s, 1)",
           (f.restaurant, f.dinner))
    return f.b1, f.t1, ("18:00", "20:00")


# The messages each case raises, and the function that raises them (to reword it below).
_CASES = {
    "CA002": (_overlap, "ASSIGNMENT_CONFLICT", True, "assign_tables_atomic_v2", "allocations_no_overlap"),
    "CA003": (_held, "ASSIGNMENT_CONFLICT", True, "assign_tables_atomic_v2", "Hold conflict prevents assignment"),
    "CA001": (_over_capacity, "CAPACITY_EXCEEDED", False, "validate_booking_capacity_after_assignment",
              "capacity_exceeded_post_assignment"),
}


_SIGNATURES = {"assign_tables_atomic_v2": ASSIGN_TABLES_ATOMIC_V2, "validate_booking_capacity_after_assignment":
               VALIDATE_BOOKING_CAPACITY}


def _live_body(url: str, name: str) -> str:
    return pg.run(url, "SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(%s)", (_SIGNATURES[name].signature,))[0][0]


def _replace_function(url: str, name: str, body: str) -> None:
    pg.run(url, replace(_SIGNATURES[name], body=body).create_sql)  # header as installed, body changed


@pytest.mark.parametrize("wording", ["as shipped", "reworded", "old SQLSTATE P0001"])
@pytest.mark.parametrize("state", sorted(_CASES))
async def test_commit_errors_are_classified_by_sqlstate_alone(head_db: str, state: str, wording: str) -> None:
    """Each of the commit path's SQLSTATEs maps to its skip code, single and batched, whatever the message
    says: reworded messages classify the same; the old texts under a bare P0001 are nobody's class."""
    setup, code, retryable, function, message = _CASES[state]
    f = seed_floor(head_db)
    booking, table, (start, end) = setup(head_db, f)
    body = _live_body(head_db, function)
    assert body.count(f"'{message}") >= 1 and f"ERRCODE = '{state}'" in body
    if wording == "reworded":
        _replace_function(head_db, function, body.replace(f"'{message}", "'reworded: "))
    elif wording == "old SQLSTATE P0001":
        _replace_function(head_db, function, body.replace(f"ERRCODE = '{state}'", "ERRCODE = 'P0001'"))
    expected = (code, retryable) if wording != "old SQLSTATE P0001" else ("ASSIGNMENT_REPOSITORY_ERROR", False)
    start_at, end_at = _window(start, end)

    planned = PlannedAssignment(booking_id=str(booking), table_ids=(str(table),), table_numbers=("T",),
                                block_start=start_at, block_end=end_at, require_adjacency=False,
                                idempotency_key="batched", score=0.0, party_size=2, stage="greedy")
    conn = await asyncpg.connect(_as_app(head_db))
    try:
        single = await repo.commit_assignment(
            conn, f.restaurant, str(booking), (str(table),), idempotency_key="single", require_adjacency=False,
            assigned_by=None, start_at=start_at, end_at=end_at)
        batched = await repo.commit_batch(conn, f.restaurant, [planned], assigned_by=None)
    finally:
        await conn.close()
    assert batched is not None
    for outcome in (single, batched[str(booking)]):
        assert not outcome.ok
        assert (outcome.code, outcome.retryable) == expected
        assert outcome.sqlstate == (state if wording != "old SQLSTATE P0001" else "P0001")
        assert (outcome.message or "").startswith("reworded: " if wording == "reworded" else message)
