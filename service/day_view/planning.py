"""The one place the day view calls the auto-assign planner itself: ``capacity-service plot --dry-run``.

It runs the assign flow's own dry run (``AssignmentService.run`` with ``dry_run=True``, the same function
behind ``POST /api/ops/dashboard/assign-tables``): one snapshot of the day, the strategic weights through the
strategic-config service, the database's feature-flag overrides, the endpoint's planner budget. Nothing is
written and no run lock is taken. (The page does not use this: it calls the dry run over HTTP.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.assign.service import AssignmentRequest, AssignmentService
from service.day_view.model import Plan, Skip
from service.settings import Settings
from service.strategic_config.metrics import StrategicConfigMetrics
from service.strategic_config.service import StrategicConfigService


async def dry_run_plan(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    restaurant_id: uuid.UUID,
    service_date: date,
) -> Plan:
    config_service = StrategicConfigService(sessionmaker, settings, StrategicConfigMetrics())
    await config_service.start()
    try:
        assignments = AssignmentService(
            engine, sessionmaker, config_service, settings.allocator_config(),
            environment=settings.environment, clock=lambda: datetime.now(UTC),
            run_deadline_s=settings.assign_run_deadline_s, statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        response = await assignments.run(
            AssignmentRequest(restaurant_id=restaurant_id, service_date=service_date, user_id=None,
                              capture_decisions=False, dry_run=True)
        )
    finally:
        await config_service.stop()
    return Plan(
        assigned={a.bookingId: tuple(a.tableIds) for a in response.assigned},
        skipped={s.bookingId: Skip(s.reasonCode, s.reason) for s in response.skipped},
        planner=response.planner,
        title="Dry-run plan",
    )
