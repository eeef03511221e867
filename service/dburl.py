"""One DATABASE_URL for every consumer.

Operators give the plain ``postgresql://user:pass@host:port/db`` form every PostgreSQL tool understands;
the driver prefix each consumer needs (asyncpg for the app, psycopg for Alembic and the CLI) is added here.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

_DRIVERS = {"async": "postgresql+asyncpg", "sync": "postgresql+psycopg"}


class InvalidDatabaseUrl(ValueError):
    pass


def to_sqlalchemy_url(raw: str, *, kind: str) -> URL:
    """Turn a libpq-style URL into a SQLAlchemy URL for the given driver kind ("async" or "sync")."""
    try:
        url = make_url(raw)
    except Exception as exc:  # make_url raises ArgumentError with the URL in the message
        raise InvalidDatabaseUrl("DATABASE_URL is not a valid postgresql:// URL") from exc
    backend = url.get_backend_name()
    if backend not in ("postgresql", "postgres"):
        raise InvalidDatabaseUrl(f"DATABASE_URL must use the postgresql:// scheme, not {backend}://")
    return url.set(drivername=_DRIVERS[kind])


def to_libpq_url(url: URL) -> str:
    """Back to the plain postgresql:// form (for psql, pg_dump, messages)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def redacted(raw: str) -> str:
    """For logs: never print a password."""
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"
