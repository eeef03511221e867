"""capacity-service command line.

serve                 run the HTTP API (no DATABASE_URL: embedded PostgreSQL, migrated, demo data)
smoke                 post-deploy check of a running deployment (health, readiness, config, dry-run assign)
migrate               pre-flight checks, then upgrade to head (refuses with every finding, changing nothing)
doctor                compare the live database with what this version needs
preflight             read-only report of what would make migrate refuse
ensure-capacity-rules operator action: create the optional restaurant_capacity_rules table
repair-history        rewrite an unknown/multiple version row once the schema is verified equal to a revision
demo-data             load the demo restaurant into a database that does not have it
mint-token            development: sign a JWT with the configured secret
healthcheck           exit 0 when the local server answers its probe (container HEALTHCHECK)
openapi               print or write the OpenAPI document
plot                  draw one restaurant-day's timeline as SVG from the database (--dry-run: with the plan)

Without DATABASE_URL, migrate, doctor, preflight, ensure-capacity-rules, repair-history and demo-data use
the embedded PostgreSQL in CAPACITY_DATA_DIR: the running serve's server, or one started for the command.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from service.dburl import redacted
from service.settings import Settings, SettingsError, load_settings

log = logging.getLogger("capacity.cli")

EXIT_OK, EXIT_FINDINGS, EXIT_UNREACHABLE = 0, 1, 2
EXIT_CONFIG = 78  # EX_CONFIG: the environment's settings are invalid

TOKEN_ROLES = ("authenticated", "service_role")


def _configure_logging(settings: Settings) -> None:
    from service.observability.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)


@contextlib.contextmanager
def _database_url(settings: Settings, migration: bool = False) -> Iterator[str]:
    """The URL an operator command works on: MIGRATION_DATABASE_URL / DATABASE_URL, else the embedded one."""
    secret = settings.migration_database_url if migration and settings.migration_database_url else settings.database_url
    if secret is not None:
        yield secret.get_secret_value()
        return
    from service import embedded

    try:
        with embedded.admin_url(settings.data_dir) as url:
            yield url
    except (FileNotFoundError, embedded.DataDirInUse) as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(EXIT_UNREACHABLE) from None


# --------------------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    workers = args.workers or settings.workers
    host, port = args.host or settings.host, args.port or settings.port
    metrics_dir = _prepare_metrics_dir(workers)
    # imported after the metrics directory exists: prometheus_client picks its storage at import time
    import uvicorn

    from service.app import create_app
    from service.observability.logging import log_config, register_secret

    embedded = None
    if settings.database_url is None:
        from service import embedded as embedded_mod
        from service.demo import load_demo
        from service.schema import migrate

        try:
            embedded = embedded_mod.start(settings.data_dir)
        except embedded_mod.DataDirInUse as exc:
            print(f"capacity-service serve: {exc}", file=sys.stderr)
            return EXIT_FINDINGS
        migrate.upgrade(embedded.admin_url, "head", settings)
        if embedded.created and settings.load_demo_data:
            rid = load_demo(embedded.admin_url)
            log.info("demo restaurant loaded: %s", rid)
        update = {"database_url": SecretStr(embedded.runtime_url)}
        if settings.jwt_secret is None and settings.jwks_url is None:
            secret = embedded_mod.dev_jwt_secret(settings.data_dir)
            register_secret(secret)
            update["jwt_secret"] = SecretStr(secret)
            log.info("development JWT secret in %s (mint tokens with capacity-service mint-token)", settings.data_dir)
        settings = settings.model_copy(update=update)
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit(0) so the `finally`
    # below stops the embedded server instead of the process dying around it, and an orderly stop on
    # request exits 0 rather than "killed by signal 15".
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        common: dict[str, Any] = {
            "host": host,
            "port": port,
            "log_level": settings.log_level,
            "log_config": log_config(settings.log_level, settings.log_format),
            # SIGTERM: stop accepting, let in-flight requests (an assign run) finish, then cancel them
            "timeout_graceful_shutdown": settings.graceful_shutdown_s,
            "server_header": False,
        }
        if workers > 1:
            # Worker processes build their own app from the environment; hand them what embedded mode decided.
            if embedded is not None:
                os.environ["DATABASE_URL"] = settings.database_url.get_secret_value()  # type: ignore[union-attr]
                if settings.jwt_secret is not None:
                    os.environ["CAPACITY_JWT_SECRET"] = settings.jwt_secret.get_secret_value()
            uvicorn.run("service.app:app_from_environment", factory=True, workers=workers, **common)
        else:
            uvicorn.run(create_app(settings), **common)
    finally:
        if embedded is not None:
            embedded.stop()
        if metrics_dir is not None:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)
    return EXIT_OK


def _prepare_metrics_dir(workers: int) -> str | None:
    """Several workers: each writes its samples to a shared directory that /metrics aggregates. Returns
    the directory this process created (removed on exit), None when the caller's own is used or none."""
    from_env = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if workers <= 1 and not from_env:
        return None
    created = None
    if not from_env:
        created = tempfile.mkdtemp(prefix="capacity-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):  # samples of an earlier run would be summed into this one
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    return created


def _exit_on_signal(signum: int, _frame: object) -> None:
    log.info("stopped by signal %d", signum)
    raise SystemExit(EXIT_OK)


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
    with _database_url(settings, migration=True) as url:
        log.info("migrating %s to %s", redacted(url), args.target)
        for attempt in range(1, 4):
            try:
                migrate.upgrade(url, args.target, settings, **x_args)
                print(f"database is at {args.target}")
                if args.runtime_password_env:
                    return _set_runtime_password(url, args.runtime_password_env)
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


def _set_runtime_password(url: str, variable: str) -> int:
    """Give the runtime role capacity_app the password held in the named environment variable (so it
    never appears on a command line or in a process list)."""
    import psycopg
    from psycopg import sql

    password = os.environ.get(variable)
    if not password:
        print(f"{variable} is not set or empty: the runtime role's password was not changed", file=sys.stderr)
        return EXIT_FINDINGS
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE capacity_app LOGIN PASSWORD {}").format(sql.Literal(password)))
    print(f"capacity_app may log in with the password from {variable}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from service.schema import doctor

    with _database_url(settings) as url:
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

    with _database_url(settings, migration=True) as url:
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

    from service.schema.released.capacity_functions import ensure_capacity_rules_sql

    with _database_url(settings, migration=True) as url:
        with psycopg.connect(_libpq(url)) as conn:
            conn.execute(ensure_capacity_rules_sql())
            conn.commit()
        print("restaurant_capacity_rules is present")
        return EXIT_OK


def cmd_repair_history(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from service.schema import doctor

    with _database_url(settings, migration=True) as url:
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
    from service.auth import SERVICE_ROLE, mint_token
    from service.embedded import dev_jwt_secret

    if args.role != SERVICE_ROLE and not args.sub:
        print("mint-token --role authenticated needs --sub <user uuid> (a restaurant member)", file=sys.stderr)
        return EXIT_FINDINGS
    if settings.jwt_secret is None and settings.database_url is None:
        settings = settings.model_copy(update={"jwt_secret": SecretStr(dev_jwt_secret(settings.data_dir))})
    if settings.jwt_secret is None:
        print("mint-token needs CAPACITY_JWT_SECRET (development helper)", file=sys.stderr)
        return EXIT_FINDINGS
    print(mint_token(settings, sub=args.sub, role=args.role, ttl_s=args.ttl))
    return EXIT_OK


def cmd_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from service.demo import DEMO_OWNER_USER_ID, DEMO_RESTAURANT_ID, load_demo

    with _database_url(settings, migration=True) as url:
        libpq = _libpq(url)
        with psycopg.connect(libpq) as conn:
            present = conn.execute("SELECT 1 FROM restaurants WHERE id = %s", (DEMO_RESTAURANT_ID,)).fetchone()
        if present:
            print(f"demo restaurant {DEMO_RESTAURANT_ID} is already there; nothing loaded")
        else:
            load_demo(libpq)
            print(f"demo restaurant {DEMO_RESTAURANT_ID} loaded (owner {DEMO_OWNER_USER_ID})")
    return EXIT_OK


def cmd_healthcheck(args: argparse.Namespace, settings: Settings) -> int:
    """For the container HEALTHCHECK: the configured port, liveness or (--ready) readiness."""
    import urllib.error
    import urllib.request

    path = "/readyz" if args.ready else "/healthz"
    url = f"http://127.0.0.1:{args.port or settings.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:  # noqa: S310 (fixed local URL)
            ok = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    return EXIT_OK if ok else EXIT_FINDINGS


def cmd_smoke(args: argparse.Namespace, settings: Settings) -> int:
    from service import smoke

    logging.getLogger("httpx").setLevel(logging.WARNING)  # the report says what happened, once
    missing = [name for name in ("base_url", "restaurant_id", "token", "api_key") if not getattr(args, name)]
    if missing:
        flags = ", ".join(f"--{m.replace('_', '-')} (or {smoke.ENV[m]})" for m in missing)
        print(f"smoke needs {flags}", file=sys.stderr)
        return EXIT_FINDINGS
    report = smoke.run(
        base_url=args.base_url,
        restaurant_id=args.restaurant_id,
        token=args.token,
        api_key=args.api_key,
        timeout_s=args.timeout,
    )
    print(report.to_json() if args.json else report.to_text())
    return EXIT_OK if report.ok else EXIT_FINDINGS


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
    with _database_url(settings) as url:
        out = plot(settings, url, rid, day, Path(args.out), dry_run=args.dry_run)
    print(f"wrote {out}")
    return EXIT_OK


def _libpq(url: str) -> str:
    from service.dburl import to_libpq_url, to_sqlalchemy_url

    return to_libpq_url(to_sqlalchemy_url(url, kind="sync"))


# --------------------------------------------------------------------------------------------------
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("capacity-service")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _env_default(variable: str) -> str | None:
    return os.environ.get(variable) or None


def build_parser() -> argparse.ArgumentParser:
    from service.smoke import DEFAULT_STEP_TIMEOUT_S, ENV

    parser = argparse.ArgumentParser(
        prog="capacity-service",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Settings come from the environment (CAPACITY_*, DATABASE_URL, FEATURE_*); see the README.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the HTTP API", description="Run the HTTP API (uvicorn).")
    p.add_argument("--host", help="bind address (default CAPACITY_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="bind port (default CAPACITY_PORT, 8000)")
    p.add_argument("--workers", type=int, help="worker processes (default CAPACITY_WORKERS, 1)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "smoke",
        help="post-deploy check of a running deployment",
        description="Check a deployment: /healthz, /readyz, the strategic config through the ops and the internal "
        "API, and a dry-run assign-tables that must write nothing; every response is validated against the "
        "OpenAPI document the server publishes. Exit 0 only when every step passes.",
    )
    p.add_argument("--base-url", default=_env_default(ENV["base_url"]),
                   help=f"the deployment, e.g. http://127.0.0.1:8000 (env {ENV['base_url']})")
    p.add_argument("--restaurant-id", default=_env_default(ENV["restaurant_id"]),
                   help=f"a restaurant the token's user is a member of (env {ENV['restaurant_id']})")
    p.add_argument("--token", default=_env_default(ENV["token"]),
                   help=f"a member's JWT for the ops API (env {ENV['token']})")
    p.add_argument("--api-key", default=_env_default(ENV["api_key"]),
                   help=f"a key from CAPACITY_INTERNAL_API_KEYS for the internal API (env {ENV['api_key']})")
    p.add_argument("--timeout", type=float, default=float(os.environ.get(ENV["timeout"], DEFAULT_STEP_TIMEOUT_S)),
                   help=f"seconds per step (env {ENV['timeout']}, default {DEFAULT_STEP_TIMEOUT_S:g})")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of the human report")
    p.set_defaults(func=cmd_smoke)

    p = sub.add_parser("migrate", help="pre-flight, then upgrade the database to head")
    p.add_argument("--target", default="head", help="revision to upgrade to (default head)")
    p.add_argument("--sql", action="store_true", help="print the guarded SQL script instead (offline mode)")
    p.add_argument("-x", action="append", metavar="KEY=VALUE",
                   help="migration switches: allow_long_lock=true, allow_data_loss=true")
    p.add_argument("--runtime-password-env", metavar="VARIABLE",
                   help="after migrating, set capacity_app's password from this environment variable")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("doctor", help="compare the live database with what this version needs")
    p.add_argument("--format", choices=["text", "json"], default="text", help="report format (default text)")
    p.add_argument("--fail-on", choices=["error", "warning"], default="error",
                   help="lowest severity that makes the exit code 1 (default error)")
    p.add_argument("--runtime-role", default=None, help="role the service connects as (default: the current user)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("preflight", help="list everything that would make migrate refuse (read-only)")
    p.add_argument("--format", choices=["json", "csv"], default="json", help="report format (default json)")
    p.set_defaults(func=cmd_preflight)

    p = sub.add_parser("ensure-capacity-rules", help="create the optional restaurant_capacity_rules table")
    p.set_defaults(func=cmd_ensure_capacity_rules)

    p = sub.add_parser("repair-history", help="rewrite the version row after verifying the schema")
    p.add_argument("--to", required=True, help="the revision the schema is verified against (the head revision)")
    p.set_defaults(func=cmd_repair_history)

    p = sub.add_parser("demo-data", help="load the demo restaurant (skipped when it is already there)")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("mint-token", help="development: sign a JWT with CAPACITY_JWT_SECRET")
    p.add_argument("--sub", help="user id (uuid) of a restaurant member; omit for --role service_role")
    p.add_argument("--role", default="authenticated", choices=TOKEN_ROLES,
                   help="authenticated (a user, needs --sub) or service_role (internal API)")
    p.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    p.set_defaults(func=cmd_mint_token)

    p = sub.add_parser("healthcheck", help="exit 0 when the local server answers (container HEALTHCHECK)")
    p.add_argument("--ready", action="store_true", help="check /readyz (database and schema) instead of /healthz")
    p.add_argument("--port", type=int, help="port to probe (default CAPACITY_PORT, 8000)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)")
    p.set_defaults(func=cmd_healthcheck)

    p = sub.add_parser("openapi", help="print the OpenAPI document")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.set_defaults(func=cmd_openapi)

    p = sub.add_parser("plot", help="draw a restaurant-day's timeline (SVG) from the database")
    p.add_argument("--restaurant-id", required=True, help="the restaurant's id (a UUID)")
    p.add_argument("--date", required=True, help="service date YYYY-MM-DD")
    p.add_argument("--dry-run", action="store_true", help="lay the auto-assign dry-run plan over the day")
    p.add_argument("-o", "--out", required=True, help="SVG file to write")
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)  # one line per variable, no traceback (refuse to start)
        return EXIT_CONFIG
    _configure_logging(settings)
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
