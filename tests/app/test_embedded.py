"""The zero-configuration path: embedded PostgreSQL, migrated, demo data once, data kept across restarts.

Always runs on the embedded server (PostgreSQL 18 binaries), whatever TEST_DATABASE_URL says, so the
migration chain is exercised on both the production major version and a newer one.
"""

from __future__ import annotations

import psycopg

from service import embedded
from service.demo import DEMO_RESTAURANT_ID, load_demo
from service.schema import migrate
from tests.support.live import embedded_data_dir


def test_embedded_database_is_migrated_seeded_once_and_persistent():
    with embedded_data_dir() as data:
        _migrated_seeded_once_and_persistent(data)


def _migrated_seeded_once_and_persistent(tmp_path):
    db = embedded.start(tmp_path)
    try:
        assert db.created
        migrate.upgrade(db.admin_url, "head")
        load_demo(db.admin_url)
        with psycopg.connect(db.runtime_url) as conn:
            # the runtime role sees rows only inside its tenant context (RLS)
            conn.execute("SELECT set_config('app.restaurant_id', %s, true)", (str(DEMO_RESTAURANT_ID),))
            bookings = conn.execute("SELECT count(*) FROM bookings").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM table_inventory").fetchone()[0]
        assert bookings == 20
        assert tables == 11
    finally:
        db.stop()

    again = embedded.start(tmp_path)
    try:
        assert not again.created  # same data directory: nothing re-created, demo not re-loaded
        with psycopg.connect(again.admin_url) as conn:
            version = conn.execute("SELECT version_num FROM capacity_alembic_version").fetchone()[0]
            count = conn.execute("SELECT count(*) FROM bookings").fetchone()[0]
        assert version == migrate.HEAD
        assert count == 20
    finally:
        again.stop()


def test_dev_jwt_secret_is_stable(tmp_path):
    first = embedded.dev_jwt_secret(tmp_path)
    assert len(first) >= 32
    assert embedded.dev_jwt_secret(tmp_path) == first
    assert (tmp_path / "dev-jwt-secret").stat().st_mode & 0o077 == 0
