from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from service.schema import migrate
from tests.support import pg


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with pg.postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def head_template(pg_admin_url: str) -> Iterator[str]:
    """A database migrated to head once per test process, cloned for every test that needs head."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = pg.create_database(pg_admin_url, f"cap_tpl_{worker}")
    migrate.upgrade(url, "head")
    name = make_url(url).database
    pg.run(pg_admin_url, f"ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
    yield name
    pg.run(pg_admin_url, f"ALTER DATABASE {name} WITH IS_TEMPLATE false ALLOW_CONNECTIONS true")
    pg.drop_database(pg_admin_url, url)


@pytest.fixture
def head_db(pg_admin_url: str, head_template: str) -> Iterator[str]:
    """A fresh database at head (cloned from the template)."""
    url = pg.create_database(pg_admin_url, "cap_head", template=head_template)
    yield url
    pg.drop_database(pg_admin_url, url)


@pytest.fixture
def empty_db(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database (no migrations)."""
    url = pg.create_database(pg_admin_url, "cap_empty")
    yield url
    pg.drop_database(pg_admin_url, url)
