"""Per-restaurant allocator policy (revision 0006) end to end: the migration itself (guards, CHECKs,
downgrade, tenant RLS), and what each stored value changes in an assign-tables run — adjacency mode for
merged tables (connected | pairwise | neighbors, env default with per-restaurant override), overrun
policy, the stored-end rule, buffers and turn bands."""

from __future__ import annotations

import dataclasses
import json
import uuid

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from service.schema import migrate
from tests.api.assign_support import PATH, AssignWorld
from tests.api.conftest import runtime_url
from tests.support import pg
from tests.support.ddl_audit import recorded_objects
from tests.support.floor import TIMEZONE, add_booking

POLICY = "restaurant_allocator_policies"


def _set_policy(aw: AssignWorld, restaurant: uuid.UUID | None = None, **values) -> None:
    cols = ["restaurant_id", *values]
    params = [restaurant or aw.rid, *(json.dumps(v) if k == "turn_bands" else v for k, v in values.items())]
    aw.sql(f"INSERT INTO {POLICY} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})", params)


# ------------------------------------------------------------------------------------------------------
# the migration
# ------------------------------------------------------------------------------------------------------
def test_second_upgrade_runs_no_ddl(head_db: str) -> None:
    assert recorded_objects(head_db, lambda: migrate.upgrade(head_db, "head")) == []
    assert pg.run(head_db, "SELECT version_num FROM capacity_alembic_version") == [(migrate.HEAD,)]


def test_defaults_are_the_originals_and_checks_hold(aw: AssignWorld) -> None:
    aw.sql(f"INSERT INTO {POLICY} (restaurant_id) VALUES (%s)", (aw.rid,))
    row = aw.sql(f"""SELECT adjacency_mode, overrun_policy, respect_booking_end, buffer_pre_minutes,
                            buffer_post_minutes, turn_bands, version FROM {POLICY} WHERE restaurant_id = %s""",
                 (aw.rid,))
    # the original's values, except the overrun default: clamp since revision 0009 (docs/assign-tables.md §7.3)
    assert row == [(None, "clamp", True, 0, 5, None, 1)]
    aw.sql(f"UPDATE {POLICY} SET overrun_policy = 'skip' WHERE restaurant_id = %s", (aw.rid,))
    assert aw.sql(f"SELECT version FROM {POLICY} WHERE restaurant_id = %s", (aw.rid,)) == [(2,)]
    for bad in (
        "adjacency_mode = 'diagonal'",
        "overrun_policy = 'maybe'",
        "buffer_pre_minutes = -1",
        "buffer_post_minutes = 241",
        "turn_bands = '[1, 2]'::jsonb",
    ):
        with pytest.raises(psycopg.errors.CheckViolation):
            aw.sql(f"UPDATE {POLICY} SET {bad} WHERE restaurant_id = %s", (aw.rid,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        aw.sql(f"INSERT INTO {POLICY} (restaurant_id) VALUES (%s)", (uuid.uuid4(),))
    # the policy goes with its restaurant
    aw.sql("DELETE FROM restaurants WHERE id = %s", (aw.rid,))
    assert aw.sql(f"SELECT count(*) FROM {POLICY}") == [(0,)]


def test_runtime_role_sees_only_its_tenant(aw: AssignWorld) -> None:
    _set_policy(aw, overrun_policy="allow")
    _set_policy(aw, aw.other_restaurant, overrun_policy="clamp")
    with psycopg.connect(runtime_url(aw.db_url)) as conn:
        conn.execute("SELECT set_config('app.restaurant_id', %s, true)", (str(aw.rid),))
        assert conn.execute(f"SELECT overrun_policy FROM {POLICY}").fetchall() == [("allow",)]
        # the other tenant's row is invisible, so an unfiltered UPDATE touches only ours
        assert len(conn.execute(f"UPDATE {POLICY} SET buffer_post_minutes = 10 RETURNING 1").fetchall()) == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # WITH CHECK: no row for another tenant
            conn.execute(f"INSERT INTO {POLICY} (restaurant_id) VALUES (%s)", (aw.other_restaurant,))
    with psycopg.connect(runtime_url(aw.db_url)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"SELECT * FROM {POLICY}").fetchall()  # no tenant context at all


def test_downgrade_keeps_operator_data_unless_allowed(aw: AssignWorld) -> None:
    url = aw.db_url
    _set_policy(aw, overrun_policy="allow")
    with pytest.raises(Exception, match="capacity_downgrade_data_loss"):
        migrate.downgrade(url, "0005_strategic_config_columns")
    assert pg.run(url, f"SELECT count(*) FROM {POLICY}") == [(1,)]
    migrate.downgrade(url, "0005_strategic_config_columns", allow_data_loss="true")
    assert pg.run(url, f"SELECT to_regclass('public.{POLICY}'), "
                       "to_regprocedure('public.restaurant_allocator_policies_touch()')") == [(None, None)]
    assert pg.run(url, "SELECT count(*) FROM capacity_schema_ledger WHERE revision = '0006_allocator_policy'") == [(0,)]
    migrate.upgrade(url, "head")
    assert pg.run(url, f"SELECT count(*) FROM {POLICY}") == [(0,)]
    assert recorded_objects(url, lambda: migrate.upgrade(url, "head")) == []


def test_offline_script_guards_the_new_table() -> None:
    script = migrate.offline_sql("0005_strategic_config_columns:head")
    assert f"CREATE TABLE public.{POLICY}" in script
    # every CREATE sits inside a DO block guarded by a catalog read (never a bare statement)
    for line in script.splitlines():
        assert not line.startswith(("CREATE TABLE", "ALTER TABLE", "CREATE POLICY", "GRANT", "CREATE TRIGGER"))


# ------------------------------------------------------------------------------------------------------
# adjacency mode for merged tables
# ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Chain:
    restaurant: uuid.UUID
    a: uuid.UUID
    b: uuid.UUID
    c: uuid.UUID
    booking: uuid.UUID


def _chain(aw: AssignWorld) -> Chain:
    """A–B–C, three movable 4-tops in one zone, edges A–B and B–C only; one party of 10 at 18:00."""
    r, z = uuid.uuid4(), uuid.uuid4()
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    aw.sql("INSERT INTO restaurants (id, name, slug, timezone) VALUES (%s, 'Chain', %s, %s)",
           (r, f"chain-{r.hex[:8]}", TIMEZONE))
    aw.sql("INSERT INTO zones (id, restaurant_id, name) VALUES (%s, %s, 'Z')", (z, r))
    for t, n in ((a, "A"), (b, "B"), (c, "C")):
        aw.sql("INSERT INTO table_inventory (id, restaurant_id, zone_id, table_number, capacity, category, mobility)"
               " VALUES (%s, %s, %s, %s, 4, 'dining', 'movable')", (t, r, z, n))
    aw.sql("INSERT INTO table_adjacencies (table_a, table_b) VALUES (%s, %s), (%s, %s)", (a, b, b, c))
    aw.sql("INSERT INTO restaurant_memberships (user_id, restaurant_id, role) VALUES (%s, %s, 'host')",
           (aw.users["owner"], r))
    booking = add_booking(aw.db_url, r, 10, "18:00", "20:00", status="pending_allocation")
    return Chain(r, a, b, c, booking)


@pytest.mark.parametrize(
    ("env_mode", "stored_mode", "assigned"),
    [
        ("connected", None, True),  # a chain is connected
        ("pairwise", None, False),  # A and C share no edge: no clique of three
        ("neighbors", None, True),  # B is adjacent to both others
        ("pairwise", "neighbors", True),  # the restaurant's value overrides the env
        ("connected", "pairwise", False),
    ],
)
async def test_merged_tables_follow_the_adjacency_mode(
    aw: AssignWorld, app_client: tuple[FastAPI, httpx.AsyncClient], env_mode: str, stored_mode: str | None,
    assigned: bool,
) -> None:
    app, client = app_client
    chain = _chain(aw)
    app.state.allocator_config = dataclasses.replace(app.state.allocator_config, adjacency_mode=env_mode)
    if stored_mode:
        _set_policy(aw, chain.restaurant, adjacency_mode=stored_mode)
    resp = await client.post(PATH, json={"restaurantId": str(chain.restaurant), "date": aw.floor.date.isoformat()},
                             headers=aw.auth("owner"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["decisions"][0]["plannerConfig"]["adjacencyMode"] == (stored_mode or env_mode)
    rows = aw.sql("SELECT table_id, merge_group_id FROM booking_table_assignments WHERE booking_id = %s",
                  (chain.booking,))
    if assigned:
        assert {tuple(sorted(a["tableIds"])) for a in body["assigned"]} == {
            tuple(sorted(str(t) for t in (chain.a, chain.b, chain.c)))}
        assert {r[0] for r in rows} == {chain.a, chain.b, chain.c}
        groups = {r[1] for r in rows}
        assert len(groups) == 1 and None not in groups  # one merge group for the three rows
    else:
        assert body["assigned"] == [] and rows == []
        assert body["skipped"][0]["reasonCode"] == "NO_SUITABLE_TABLES"


# ------------------------------------------------------------------------------------------------------
# windows: overrun policy, stored end, buffers, turn bands
# ------------------------------------------------------------------------------------------------------
async def _b1_window(aw: AssignWorld, client: httpx.AsyncClient) -> dict:
    body = (await aw.assign(client, dryRun=True)).json()
    return next(d["window"] for d in body["decisions"] if d["bookingId"] == str(aw.floor.b1))


async def test_stored_end_buffers_and_turn_bands(aw: AssignWorld, app_client) -> None:
    _, client = app_client
    # default: the window never ends before the stored end (B1 ends 20:00 BST = 19:00Z), + 5 min buffer
    assert await _b1_window(aw, client) == {"start": "2031-06-13T17:00:00Z", "end": "2031-06-13T19:05:00Z"}
    _set_policy(aw, respect_booking_end=False)
    # turn times rule: party 2 at dinner = 60 min + 5
    assert await _b1_window(aw, client) == {"start": "2031-06-13T17:00:00Z", "end": "2031-06-13T18:05:00Z"}
    aw.sql(f"UPDATE {POLICY} SET buffer_pre_minutes = 10, buffer_post_minutes = 15,"
           " turn_bands = '{\"dinner\": {\"bands\": [[2, 30], [6, 45]], \"larger\": 50}}' WHERE restaurant_id = %s",
           (aw.rid,))
    assert await _b1_window(aw, client) == {"start": "2031-06-13T16:50:00Z", "end": "2031-06-13T17:45:00Z"}


async def test_overrun_policy(aw: AssignWorld, app_client) -> None:
    _, client = app_client
    late = aw.booking(4, "22:30", "23:30", status="pending_allocation")  # Dinner ends 23:00

    async def outcome() -> str:
        body = (await aw.assign(client, dryRun=True)).json()
        if any(a["bookingId"] == str(late) for a in body["assigned"]):
            return "assigned"
        return next(s["reasonCode"] for s in body["skipped"] if s["bookingId"] == str(late))

    # No policy row: a real closing clamps by default (docs/assign-tables.md §7.3).
    body = (await aw.assign(client, dryRun=True)).json()
    assert any(a["bookingId"] == str(late) for a in body["assigned"])
    clamped = next(d for d in body["decisions"] if d["bookingId"] == str(late))
    assert clamped["overrun"] == {"period": "Dinner", "minutes": 50, "resolution": "clamp"}
    # clamped at closing, then the promised 23:30 end (+5 min buffer) still wins (docs/assign-tables.md §7.3)
    assert clamped["window"]["end"] == "2031-06-13T22:35:00Z"
    # The original's skip, as this docs/assign-tables.md §13 case assumed, is the restaurant's policy set to skip.
    _set_policy(aw, overrun_policy="skip")
    assert await outcome() == "SERVICE_OVERRUN"
    aw.sql(f"UPDATE {POLICY} SET overrun_policy = 'allow' WHERE restaurant_id = %s", (aw.rid,))
    assert await outcome() == "assigned"
    resp = await aw.assign(client)
    assert any(a["bookingId"] == str(late) for a in resp.json()["assigned"])
    rows = aw.sql("SELECT end_at FROM booking_table_assignments WHERE booking_id = %s", (late,))
    # 22:30 BST + 75 min (party 4) + 5 min buffer, past the stored 23:30 end and the 23:00 service end
    assert rows and all(r[0].isoformat() == "2031-06-13T22:50:00+00:00" for r in rows)
