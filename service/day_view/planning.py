"""The one place the day view calls the auto-assign planner itself: ``capacity-service plot --dry-run``.

It makes the same calls, in the same order, as the dry-run branch of ``POST /api/ops/dashboard/assign-tables``
(service/api/assign_tables.py ``_plan``): read the day in one snapshot, resolve the strategic weights
through the strategic-config service, apply the database's feature-flag overrides, plan with the endpoint's
budget. Nothing is written. (The page does not use this: it calls the dry run over HTTP.)
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.api.assign_tables import endpoint_planner_options
from service.day_view.model import Plan, Skip
from service.domain.model import AllocatorConfig
from service.domain.planner import plan_day
from service.domain.strategic_config import ResolvedWeightsProvider
from service.repository import assignments as assign_repo
from service.settings import Settings
from service.strategic_config_cache import StrategicConfigMetrics, StrategicConfigService


async def dry_run_plan(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, restaurant_id: uuid.UUID, service_date: date
) -> Plan:
    async with sessionmaker() as session:
        day, flags = await assign_repo.load_day(session, restaurant_id, service_date,
                                                environment=settings.environment)
        await session.commit()
    config_service = StrategicConfigService(sessionmaker, settings, StrategicConfigMetrics())
    await config_service.start()
    try:
        provider = await ResolvedWeightsProvider.load(config_service, [restaurant_id])
    finally:
        await config_service.stop()
    config = assign_repo.apply_flag_overrides(AllocatorConfig.from_env(), flags)
    plan = plan_day(day, config, provider.resolve(str(restaurant_id)),
                    endpoint_planner_options(False, len(day.bookings)))
    return Plan(
        assigned={a.booking_id: tuple(a.table_ids) for a in plan.assigned},
        skipped={s.booking_id: Skip(s.reason_code, s.reason) for s in plan.skipped},
        planner=plan.planner,
        title="Dry-run plan",
    )
