"""Revision 0010 (the relaxation ladder's policy columns, clamp as the overrun default): a second run
executes no DDL, stored rows keep their values, the downgrade restores the replaced default and drops only
what 0010 added (refusing while rows hold values unless allowed), and upgrading again reaches head."""

from __future__ import annotations

import uuid

from service.schema import migrate
from tests.support import pg
from tests.support.ddl_audit import recorded_objects

POLICY = "restaurant_allocator_policies"
REVISION = "0010_allocator_relaxations"
NEW = ("relax_overage", "relaxed_max_overage", "relax_member_limits", "relax_adjacency")


def _default(url: str) -> str | None:
    return pg.run(url, "SELECT column_default FROM information_schema.columns WHERE table_schema = 'public'"
                       f" AND table_name = '{POLICY}' AND column_name = 'overrun_policy'")[0][0]


def _columns(url: str) -> set[str]:
    return {r[0] for r in pg.run(url, "SELECT column_name FROM information_schema.columns"
                                      f" WHERE table_schema = 'public' AND table_name = '{POLICY}'")}


def test_0010_upgrade_downgrade_round_trip(head_db: str) -> None:
    url = head_db
    assert _default(url) == "'clamp'::text" and set(NEW) <= _columns(url)
    assert recorded_objects(url, lambda: migrate.upgrade(url, "head")) == []
    rid = uuid.uuid4()
    pg.run(url, "INSERT INTO restaurants (id, name, slug) VALUES (%s, 'R', %s)", (rid, f"r-{rid}"))
    pg.run(url, f"INSERT INTO {POLICY} (restaurant_id, overrun_policy) VALUES (%s, 'skip')", (rid,))
    try:
        migrate.downgrade(url, "0009_error_sqlstates")
    except Exception as exc:  # the new columns hold values in that row: operator data
        assert "capacity_downgrade_data_loss" in str(exc)
    else:
        raise AssertionError("downgrade dropped policy values without allow_data_loss")
    assert set(NEW) <= _columns(url)
    migrate.downgrade(url, "0009_error_sqlstates", allow_data_loss="true")
    assert _default(url) == "'skip'::text"  # the replaced default, restored
    assert not set(NEW) & _columns(url)
    assert pg.run(url, f"SELECT overrun_policy FROM {POLICY} WHERE restaurant_id = %s", (rid,)) == [("skip",)]
    assert pg.run(url, f"SELECT count(*) FROM capacity_schema_ledger WHERE revision = '{REVISION}'") == [(0,)]
    migrate.upgrade(url, "head")
    assert _default(url) == "'clamp'::text"
    # an operator's stored choice is never rewritten by the new default
    assert pg.run(url, f"SELECT overrun_policy, relaxed_max_overage FROM {POLICY} WHERE restaurant_id = %s",
                  (rid,)) == [("skip", 4)]
    assert recorded_objects(url, lambda: migrate.upgrade(url, "head")) == []
