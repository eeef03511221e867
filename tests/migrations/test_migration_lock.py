"""docs/schema.md §7 case 6: migrators are serialised by a session advisory lock.

A second migrator waits for the first instead of racing it; both finish cleanly and the DDL runs once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psycopg

from service.schema import migrate
from tests.support import pg
from tests.support.ddl_audit import ddl_audit

LOCK_KEY = "hashtextextended('capacity-service:migrations', 0)"


def _migrator_connected(url: str) -> bool:
    rows = pg.run(
        url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'capacity-service migrate'"
    )
    return rows[0][0] > 0


def test_upgrade_waits_while_another_migrator_holds_the_lock(empty_db: str) -> None:
    holder = psycopg.connect(empty_db, autocommit=True)
    try:
        holder.execute(f"SELECT pg_advisory_lock({LOCK_KEY})")
        done = threading.Event()
        errors: list[BaseException] = []

        def upgrade() -> None:
            try:
                migrate.upgrade(empty_db, "head")
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=upgrade)
        worker.start()
        deadline = time.monotonic() + 30
        while not _migrator_connected(empty_db) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _migrator_connected(empty_db), "the migrator never connected"
        # it keeps waiting (polling for the lock) and creates nothing while another migrator holds it
        assert not done.wait(timeout=2.0)
        assert pg.run(empty_db, "SELECT to_regclass('public.capacity_alembic_version') IS NULL") == [(True,)]
    finally:
        holder.execute(f"SELECT pg_advisory_unlock({LOCK_KEY})")
        holder.close()
    worker.join(timeout=120)
    assert errors == []
    assert pg.run(empty_db, "SELECT version_num FROM capacity_alembic_version") == [(migrate.HEAD,)]


def test_two_concurrent_upgrades_both_succeed_and_run_the_ddl_once(pg_admin_url: str) -> None:
    single = pg.create_database(pg_admin_url, "cap_lock_single")
    racing = pg.create_database(pg_admin_url, "cap_lock_race")
    try:
        with ddl_audit(single) as once:
            migrate.upgrade(single, "head")
        # two replicas starting together: separate processes (Alembic's context is per process)
        env = {**os.environ, "DATABASE_URL": racing}
        with ddl_audit(racing) as raced:
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "service.cli", "migrate"],
                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                )
                for _ in range(2)
            ]
            outputs = [p.communicate(timeout=180)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert len(once.objects) > 0
        assert sorted(raced.objects) == sorted(once.objects)
        assert pg.run(racing, "SELECT version_num FROM capacity_alembic_version") == [(migrate.HEAD,)]
    finally:
        pg.drop_database(pg_admin_url, single)
        pg.drop_database(pg_admin_url, racing)
