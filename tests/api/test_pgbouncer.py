"""Auto-assign and strategic config through a real PgBouncer in transaction mode (server connections
shared between clients from one transaction to the next), the way the Supabase pooler runs."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from service.settings import Settings
from tests.api.conftest import make_settings, running_app, runtime_url
from tests.support.pgbouncer import pgbouncer, pgbouncer_binary, through
from tests.support.requirements import unavailable


@pytest.fixture(autouse=True)
def _pgbouncer_installed() -> None:
    if pgbouncer_binary() is None:
        unavailable("pgbouncer not installed (.ci/run installs it)")


def _pooled_settings(aw, port: int, **extra) -> Settings:
    return make_settings(
        aw.db_url,
        database_url=SecretStr(through(runtime_url(aw.db_url), port)),
        db_behind_pooler=True,
        # LISTEN needs a session of its own: the direct URL (Settings refuses a pooler without one)
        strategic_config_listen_url=SecretStr(runtime_url(aw.db_url)),
        db_pool_size=6,
        **extra,
    )


async def test_assign_and_strategic_config_through_transaction_pooling(aw, pg_admin_url):
    with pgbouncer(pg_admin_url, pool_size=2) as port:
        async with running_app(_pooled_settings(aw, port)) as (_, client):
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            owner = aw.auth("owner")
            # several clients at once over 2 server connections: statements of different clients meet
            # on the same server connection, which is where cached prepared statements collide
            reads = await asyncio.gather(*(
                client.get("/api/ops/settings/strategic-config", params={"restaurantId": str(aw.rid)},
                           headers=owner)
                for _ in range(12)
            ))
            assert [r.status_code for r in reads] == [200] * 12, [r.text for r in reads if r.status_code != 200]
            write = await client.post(
                "/api/ops/settings/strategic-config", headers=owner,
                json={"restaurantId": str(aw.rid), "weights": {"scarcity": 31}},
            )
            assert write.status_code == 200, write.text
            internal = await asyncio.gather(*(
                client.get(f"/internal/v1/restaurants/{aw.rid}/strategic-config", headers={
                    "Authorization": f"Bearer {aw.settings.internal_api_keys.get_secret_value()}"})
                for _ in range(6)
            ))
            assert all(r.status_code == 200 for r in internal), [r.text for r in internal]
            assert internal[0].json()["weights"]["scarcity"] == 31

            for i in range(3):
                aw.booking(2, f"{18 + i}:00", f"{19 + i}:00")
            dry = await aw.assign(client, dryRun=True)
            assert dry.status_code == 200, dry.text
            would_assign = {a["bookingId"] for a in dry.json()["assigned"]}
            assert len(would_assign) >= 3 and aw.assignments() == {}
            runs = await asyncio.gather(aw.assign(client), aw.assign(client, who="manager"))
            # the two runs race for the (restaurant, date) run lock — through the pooler too: either the
            # second waits its turn and finds nothing left, or it is refused with 409
            assert sorted(r.status_code for r in runs) in ([200, 200], [200, 409]), [r.text for r in runs]
            assigned = [a["bookingId"] for r in runs if r.status_code == 200 for a in r.json()["assigned"]]
            assert sorted(assigned) == sorted(would_assign)  # each booking once, none twice
            assert set(aw.assignments()) == would_assign
            # no run lock outlives its run on some pooled server connection (a session-level lock did)
            assert aw.sql("""SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                             WHERE l.locktype = 'advisory' AND d.datname = current_database()""")[0][0] == 0
            again = await aw.assign(client)
            assert again.status_code == 200 and again.json()["assigned"] == []


def test_a_pooler_without_a_listen_url_refuses_to_start():
    with pytest.raises(ValueError, match="CAPACITY_STRATEGIC_CONFIG_LISTEN_URL"):
        Settings(database_url=SecretStr("postgresql://u@pooler:6543/db"), db_behind_pooler=True)
    Settings(database_url=SecretStr("postgresql://u@pooler:6543/db"), db_behind_pooler=True,
             strategic_config_listen=False)
