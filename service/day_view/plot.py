"""``capacity-service plot``: the timeline SVG straight from the database (DATABASE_URL), no server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from service.day_view import service
from service.day_view.model import Plan
from service.repository.database import build_engine, build_sessionmaker
from service.settings import Settings


async def render_day(settings: Settings, database_url: str, restaurant_id: uuid.UUID, service_date: date,
                     *, dry_run: bool, now: datetime) -> str:
    engine = build_engine(database_url, settings)
    try:
        maker = build_sessionmaker(engine)
        plan: Plan | None = None
        if dry_run:
            from service.day_view.planning import dry_run_plan

            plan = await dry_run_plan(engine, maker, settings, restaurant_id, service_date)
        async with maker() as session:
            day = await service.read_day(session, restaurant_id, service_date)
            await session.commit()
        return service.timeline(day, now, plan)
    finally:
        await engine.dispose()


def plot(settings: Settings, database_url: str, restaurant_id: uuid.UUID, service_date: date, out: Path,
         *, dry_run: bool) -> Path:
    svg = asyncio.run(render_day(settings, database_url, restaurant_id, service_date, dry_run=dry_run,
                                 now=datetime.now(UTC)))
    out.write_text(svg, encoding="utf-8")
    return out
