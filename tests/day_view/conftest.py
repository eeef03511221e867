from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import make_settings, running_app
from tests.day_view.support import DemoDay, seed_demo_day


@pytest.fixture
def demo(head_db: str) -> DemoDay:
    return seed_demo_day(head_db, make_settings(head_db))


@pytest.fixture
async def demo_app(demo: DemoDay) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(demo.settings) as pair:
        yield pair
