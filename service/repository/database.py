"""Async engine and per-request sessions (SQLAlchemy 2 + asyncpg).

The engine is built in the app's lifespan (never at import) and lives on ``app.state``; each request gets
one session (``SessionDep``) that commits when the handler returns. Routes commit it early when they hand
work to an application service, which opens its own sessions and connections (one checked-out connection
per request at a time: holding one while waiting for a second deadlocks the pool under load).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from service.dburl import to_sqlalchemy_url
from service.settings import Settings


def build_engine(database_url: str, settings: Settings) -> AsyncEngine:
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout_s,
        "server_settings": {
            "application_name": "capacity-service",
            "statement_timeout": str(settings.db_statement_timeout_ms),
        },
    }
    if settings.db_behind_pooler:
        # PgBouncer / Supabase pooler in transaction mode: server connections change hands between
        # transactions. No statement cache, unique statement names (asyncpg's per-connection counter
        # would collide on a shared server connection), and no statement_timeout startup parameter
        # (PgBouncer rejects unknown ones) — it is set per transaction below instead.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = lambda: f"__capacity_{uuid.uuid4().hex}__"
        del connect_args["server_settings"]["statement_timeout"]
    engine = create_async_engine(
        to_sqlalchemy_url(database_url, kind="async"),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
    if settings.db_behind_pooler:
        timeout_sql = f"SET LOCAL statement_timeout = {int(settings.db_statement_timeout_ms)}"

        @event.listens_for(engine.sync_engine, "begin")
        def _statement_timeout_per_transaction(conn: Any) -> None:
            conn.exec_driver_sql(timeout_sql)

    return engine


def build_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    maker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    return maker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def sqlstate_of(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind a driver or SQLAlchemy error, if any."""
    orig = getattr(exc, "orig", None) or exc
    for candidate in (orig, getattr(orig, "driver_exception", None), getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


def is_sqlstate_error(exc: BaseException, states: frozenset[str]) -> bool:
    return isinstance(exc, DBAPIError) and sqlstate_of(exc) in states
