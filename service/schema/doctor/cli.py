"""``python -m service.schema.doctor``: run the doctor, or write the manifest."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import psycopg

from service.schema.doctor.findings import SEVERITIES, exit_code, render_json, render_text
from service.schema.doctor.manifest import MANIFEST_PATH, build_manifest, manifest_text
from service.schema.doctor.rules import diagnose


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.schema.doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="postgresql:// URL")
    parser.add_argument("--write-manifest", action="store_true",
                        help="the URL is a greenfield database at head: write service/schema/manifest.json from it")
    parser.add_argument("--fresh", action="store_true",
                        help="with --write-manifest: the URL is an admin URL; build a scratch database at head "
                             "from this checkout, write the manifest from it, drop it")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--fail-on", choices=list(SEVERITIES), default="error")
    parser.add_argument("--runtime-role", default=None)
    args = parser.parse_args(argv)
    if args.write_manifest and args.fresh:
        return _write_manifest_fresh(args.url)
    try:
        conn = psycopg.connect(args.url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        print(f"cannot connect: {exc}", file=sys.stderr)
        return 2
    with conn:
        if args.write_manifest:
            MANIFEST_PATH.write_text(manifest_text(build_manifest(conn)))
            print(f"wrote {MANIFEST_PATH}")
            return 0
        findings = diagnose(conn, runtime_role=args.runtime_role)
    print(render_json(findings) if args.format == "json" else render_text(findings))
    return exit_code(findings, args.fail_on)


def _write_manifest_fresh(admin_url: str) -> int:
    import uuid

    from sqlalchemy.engine import make_url

    from service.schema import migrate

    name = f"capacity_manifest_{uuid.uuid4().hex[:10]}"
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        migrate.upgrade(url, "head")
        with psycopg.connect(url, autocommit=True) as conn:
            MANIFEST_PATH.write_text(manifest_text(build_manifest(conn)))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(f"wrote {MANIFEST_PATH}")
    return 0
