"""``capacity-service`` command line.

serve                 run the HTTP API (no DATABASE_URL: embedded PostgreSQL, migrated, demo data)
migrate               pre-flight checks, then upgrade to head (refuses with every finding, changing nothing)
doctor                compare the live database with what this version needs
preflight             read-only report of what would make `migrate` refuse
ensure-capacity-rules operator action: create the optional restaurant_capacity_rules table
repair-history        rewrite an unknown/multiple version row once the schema is verified equal to a revision
mint-token            development: sign a JWT with the configured secret
openapi               print or write the OpenAPI document
plot                  draw one restaurant-day's timeline as SVG from the database (--dry-run: with the plan)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from service.dburl import redacted
from service.settings import Settings

log = logging.getLogger("capacity.cli")

EXIT_OK, EXIT_FINDINGS, EXIT_UNREACHABLE = 0, 1, 2


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
    )


def _require_url(settings: Settings, migration: bool = False) -> str:
    secret = settings.migration_database_url if migration and settings.migration_database_url else settings.database_url
    if secret is None:
        print("DATABASE_URL is not set (postgresql://user:password@host:port/dbname)", file=sys.stderr)
        raise SystemExit(EXIT_UNREACHABLE)
    return secret.get_secret_value()


# --------------------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service.app import create_app

    embedded = None
    if settings.database_url is None:
        from service import embedded as embedded_mod
        from service.demo import load_demo
        from service.schema import migrate

        embedded = embedded_mod.start(settings.data_dir)
        migrate.upgrade(embedded.admin_url, "head", settings)
        if embedded.created and settings.load_demo_data:
            rid = load_demo(embedded.admin_url)
            log.info("demo restaurant loaded: %s", rid)
        update = {"database_url": _secret(embedded.runtime_url)}
        if settings.jwt_secret is None and settings.jwks_url is None:
            update["jwt_secret"] = _secret(embedded_mod.dev_jwt_secret(settings.data_dir))
            log.info("development JWT secret in %s (mint tokens with `capacity-service mint-token`)", settings.data_dir)
        settings = settings.model_copy(update=update)
    if embedded is not None:
        # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so the
        # `finally` below stops the embedded server instead of the process dying around it.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    workers = args.workers or settings.workers
    try:
        common = {"host": args.host or settings.host, "port": args.port or settings.port, "log_level": settings.log_level}
        if workers > 1:
            # Worker processes build their own app from the environment; hand them what embedded mode decided.
            if embedded is not None:
                os.environ["DATABASE_URL"] = settings.database_url.get_secret_value()
                if settings.jwt_secret is not None:
                    os.environ["CAPACITY_JWT_SECRET"] = settings.jwt_secret.get_secret_value()
            uvicorn.run("service.app:app_from_environment", factory=True, workers=workers, **common)
        else:
            uvicorn.run(create_app(settings), **common)
    finally:
        if embedded is not None:
            embedded.stop()
    return EXIT_OK


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)


# --------------------------------------------------------------------------------------------------
def _print_db_error(exc: BaseException) -> None:
    diag = getattr(getattr(exc, "orig", exc), "diag", None)
    if diag is not None and diag.message_primary:
        print(f"migration refused: {diag.message_primary}", file=sys.stderr)
        if diag.message_detail:
            for line in diag.message_detail.splitlines():
                print(f"  - {line}", file=sys.stderr)
        if diag.message_hint:
            print(f"hint: {diag.message_hint}", file=sys.stderr)
    else:
        print(f"migration failed: {exc}", file=sys.stderr)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg
    from sqlalchemy.exc import DBAPIError

    from service.schema import migrate

    x_args = dict(kv.split("=", 1) for kv in args.x or [])
    if args.sql:
        sys.stdout.write(migrate.offline_sql(args.target, settings, **x_args))
        return EXIT_OK
    url = _require_url(settings, migration=True)
    log.info("migrating %s to %s", redacted(url), args.target)
    for attempt in range(1, 4):
        try:
            migrate.upgrade(url, args.target, settings, **x_args)
            print(f"database is at {args.target}")
            return EXIT_OK
        except (DBAPIError, psycopg.Error) as exc:
            orig = getattr(exc, "orig", exc)
            if getattr(orig, "sqlstate", None) == "55P03" and attempt < 3:
                # lock_timeout: a transient failure; every step is idempotent, so retry with back-off
                log.warning("lock timeout (attempt %d/3); retrying", attempt)
                time.sleep(2 * attempt)
                continue
            if isinstance(orig, psycopg.OperationalError):
                print(f"cannot connect to {redacted(url)}", file=sys.stderr)
                return EXIT_UNREACHABLE
            _print_db_error(exc)
            return EXIT_FINDINGS
    return EXIT_FINDINGS


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from service.schema import doctor

    url = _require_url(settings)
    try:
        with psycopg.connect(_libpq(url), autocommit=True, connect_timeout=5) as conn:
            findings = doctor.diagnose(conn, runtime_role=args.runtime_role)
    except psycopg.OperationalError:
        print(f"cannot connect to {redacted(url)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except psycopg.Error as exc:
        print(f"cannot read the catalog: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    out = doctor.render_json(findings) if args.format == "json" else doctor.render_text(findings)
    print(out)
    return doctor.exit_code(findings, args.fail_on)


def cmd_preflight(args: argparse.Namespace, settings: Settings) -> int:
    from service.schema import preflight

    url = _require_url(settings, migration=True)
    rows = preflight.preflight_report(_libpq(url))
    if args.format == "csv":
        import csv

        keys = sorted({k for r in rows for k in r})
        writer = csv.DictWriter(sys.stdout, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    else:
        print(json.dumps(rows, indent=2, default=str))
    return EXIT_FINDINGS if rows else EXIT_OK


def cmd_ensure_capacity_rules(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from service.schema.capacity_functions import ensure_capacity_rules_sql

    url = _require_url(settings, migration=True)
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute(ensure_capacity_rules_sql())
        conn.commit()
    print("restaurant_capacity_rules is present")
    return EXIT_OK


def cmd_repair_history(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from service.schema import doctor

    url = _require_url(settings, migration=True)
    with psycopg.connect(_libpq(url)) as conn:
        findings = [
            f
            for f in doctor.diagnose(conn, runtime_role=None)
            if f.severity == "error" and not f.code.startswith("version_")
        ]
        if args.to != doctor.HEAD_REVISION:
            print(f"repair-history only verifies against the head revision {doctor.HEAD_REVISION}", file=sys.stderr)
            return EXIT_FINDINGS
        if findings:
            print("schema differs from the manifest of " + args.to + "; version row NOT rewritten:", file=sys.stderr)
            print(doctor.render_text(findings), file=sys.stderr)
            return EXIT_FINDINGS
        with conn.cursor() as cur:
            cur.execute("DELETE FROM capacity_alembic_version")
            cur.execute("INSERT INTO capacity_alembic_version (version_num) VALUES (%s)", (args.to,))
        conn.commit()
    print(f"capacity_alembic_version now records {args.to}")
    return EXIT_OK


def cmd_mint_token(args: argparse.Namespace, settings: Settings) -> int:
    """Development only: sign a token with CAPACITY_JWT_SECRET so curl examples work locally."""
    from service.auth import mint_token
    from service.embedded import dev_jwt_secret

    if settings.jwt_secret is None and settings.database_url is None:
        settings = settings.model_copy(update={"jwt_secret": _secret(dev_jwt_secret(settings.data_dir))})
    if settings.jwt_secret is None:
        print("mint-token needs CAPACITY_JWT_SECRET (development helper)", file=sys.stderr)
        return EXIT_FINDINGS
    print(mint_token(settings, sub=args.sub, role=args.role, ttl_s=args.ttl))
    return EXIT_OK


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    from service.openapi import openapi_document

    text = json.dumps(openapi_document(), indent=2, sort_keys=False) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, settings: Settings) -> int:
    """The day view's timeline from the database (issue 14; the work is in service/day_view/plot.py)."""
    import datetime as dt
    import uuid

    from service.day_view.plot import plot

    try:
        rid, day = uuid.UUID(args.restaurant_id), dt.date.fromisoformat(args.date)
    except ValueError as exc:
        print(f"plot: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    out = plot(settings, _require_url(settings), rid, day, Path(args.out), dry_run=args.dry_run)
    print(f"wrote {out}")
    return EXIT_OK


def _libpq(url: str) -> str:
    from service.dburl import to_libpq_url, to_sqlalchemy_url

    return to_libpq_url(to_sqlalchemy_url(url, kind="sync"))


# --------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capacity-service", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, help="worker processes (default CAPACITY_WORKERS, 1)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("migrate", help="pre-flight, then upgrade the database to head")
    p.add_argument("--target", default="head")
    p.add_argument("--sql", action="store_true", help="print the guarded SQL script instead (offline mode)")
    p.add_argument("-x", action="append", metavar="KEY=VALUE", help="allow_long_lock=true, allow_data_loss=true")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("doctor", help="compare the live database with what this version needs")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--fail-on", choices=["error", "warning"], default="error")
    p.add_argument("--runtime-role", default=None, help="role the service connects as (default: the current user)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("preflight", help="list everything that would make `migrate` refuse (read-only)")
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.set_defaults(func=cmd_preflight)

    p = sub.add_parser("ensure-capacity-rules", help="create the optional restaurant_capacity_rules table")
    p.set_defaults(func=cmd_ensure_capacity_rules)

    p = sub.add_parser("repair-history", help="rewrite the version row after verifying the schema")
    p.add_argument("--to", required=True)
    p.set_defaults(func=cmd_repair_history)

    p = sub.add_parser("mint-token", help="development: sign a JWT with CAPACITY_JWT_SECRET")
    p.add_argument("--sub", help="user id (omit for --role service_role)")
    p.add_argument("--role", default="authenticated")
    p.add_argument("--ttl", type=int, default=3600)
    p.set_defaults(func=cmd_mint_token)

    p = sub.add_parser("openapi", help="print the OpenAPI document")
    p.add_argument("--out")
    p.set_defaults(func=cmd_openapi)

    p = sub.add_parser("plot", help="draw a restaurant-day's timeline (SVG) from the database")
    p.add_argument("--restaurant-id", required=True)
    p.add_argument("--date", required=True, help="service date YYYY-MM-DD")
    p.add_argument("--dry-run", action="store_true", help="lay the auto-assign dry-run plan over the day")
    p.add_argument("-o", "--out", required=True, help="SVG file to write")
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    _configure_logging(settings.log_level)
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
