"""The cheap subset of the doctor ``/readyz`` runs on the service's own connection."""

from __future__ import annotations

from typing import Any

import psycopg

from service.schema.doctor.checked_objects import (
    CAPACITY_RULES,
    LEDGER_TABLE,
    NO_OVERLAP,
    STRATEGIC_TABLE,
    VERSION_TABLE,
)
from service.schema.doctor.findings import Finding
from service.schema.doctor.live_catalog import _adopted_functions, _optional, _ReadOnly, one_row
from service.schema.doctor.manifest import load_manifest
from service.schema.doctor.normalise import _norm_type, normalize_sql
from service.schema.doctor.rules import _con_text
from service.schema.doctor.strategic_probe import _strategic_finding, strategic_config_state


def readiness_findings(conn: psycopg.Connection, manifest: dict[str, Any] | None = None) -> list[Finding]:
    """The cheap subset for ``/readyz``, run on the service's own connection (so the role checks are errors):
    version row = head; owned tables exist; allocations_no_overlap shape; merge_group_id present; function
    markers; runtime-role attributes; the strategic-config schema probe."""
    manifest = manifest or load_manifest()
    head = manifest["head"]
    tables = sorted(t for t, v in manifest["tables"].items() if v["kind"] == "table")
    functions = manifest["functions"]
    con = manifest["constraints"].get(f"{NO_OVERLAP[0]}.{NO_OVERLAP[1]}")
    out: list[Finding] = []
    with _ReadOnly(conn):
        versions = None
        version_table = one_row(conn.execute(f"SELECT to_regclass('public.{VERSION_TABLE}') IS NOT NULL"))[0]
        if version_table:
            rows = _optional(conn, f"SELECT version_num FROM public.{VERSION_TABLE} ORDER BY 1")
            versions = [r[0] for r in rows] if rows is not None else None
        present = {
            t for t, ok in conn.execute(
                "SELECT t, to_regclass('public.' || t) IS NOT NULL FROM unnest(%s::text[]) t", (tables,))
            if ok
        }
        row = one_row(conn.execute(
            """SELECT pg_get_constraintdef(oid), condeferrable, condeferred FROM pg_constraint
                WHERE conrelid = to_regclass('public.allocations') AND conname = 'allocations_no_overlap'"""
        ))
        merge_col = one_row(conn.execute(
            """SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('public.booking_table_assignments')
                                 AND attname = 'merge_group_id' AND NOT attisdropped)"""
        ))[0]
        markers = {
            f"{name}({_norm_type(args).replace('public.', '')})": comment
            for name, args, comment in conn.execute(
                """SELECT p.proname, oidvectortypes(p.proargtypes), obj_description(p.oid, 'pg_proc')
                     FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY(%s)""",
                (sorted({fn["name"] for fn in functions.values()}),))
        }
        adopted = set(_adopted_functions(conn)) if one_row(conn.execute(
            f"SELECT to_regclass('public.{LEDGER_TABLE}') IS NOT NULL"))[0] else set()
        user, superuser, bypass, supabase = one_row(conn.execute(
            """SELECT current_user::text, r.rolsuper, r.rolbypassrls,
                      to_regprocedure('auth.uid()') IS NOT NULL
                      OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_admin')
                 FROM pg_roles r WHERE r.rolname = current_user"""
        ))
        owned_by_me = [
            r[0] for r in conn.execute(
                """SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
                      AND c.relname = ANY(%s) AND pg_has_role(current_user, c.relowner, 'USAGE') ORDER BY 1""",
                (tables,))
        ]
        cols = one_row(conn.execute(
            """SELECT ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass('public.strategic_configs')
                               AND attnum > 0 AND NOT attisdropped)"""
        ))[0]
    if version_table and versions is None:
        out.append(Finding("version_unreadable", "error", VERSION_TABLE, head, "no SELECT privilege",
                           f"GRANT SELECT ON public.{VERSION_TABLE} TO service_role"))
    elif versions != [head]:
        unknown = [v for v in versions or [] if v not in manifest["revisions"]]
        code = "version_unknown_revision" if unknown else (
            "version_table_missing" if versions is None else "version_not_head")
        out.append(Finding(code, "error", VERSION_TABLE, head, ", ".join(versions or []) or None,
                           "run capacity-service migrate"))
    for t in tables:
        if t in present:
            continue
        if t == CAPACITY_RULES:
            out.append(Finding("capacity_rules_absent", "warning", t, "present", "absent"))
        elif t != STRATEGIC_TABLE:
            out.append(Finding("table_missing", "error", t, "present", "absent", "run capacity-service migrate"))
    if con is not None and "allocations" in present:
        actual = None if row is None else {"definition": normalize_sql(row[0]), "deferrable": row[1], "deferred": row[2]}
        expected = {k: con[k] for k in ("definition", "deferrable", "deferred")}
        if actual != expected:
            out.append(Finding("constraint_shape_mismatch", "error", "allocations.allocations_no_overlap",
                               _con_text(con), _con_text(actual) if actual else "missing",
                               "run capacity-service migrate"))
    if "booking_table_assignments" in present and not merge_col:
        out.append(Finding("merge_group_id_missing", "error", "booking_table_assignments.merge_group_id",
                           "uuid", None, "run capacity-service migrate"))
    for sig, fn in functions.items():
        if sig in adopted:
            continue  # another domain's function, left as found on this adopted database
        if sig not in markers:
            out.append(Finding("function_missing", "error", sig, fn["marker"], None, "run capacity-service migrate"))
        elif markers[sig] != fn["marker"]:
            out.append(Finding("function_marker_mismatch", "error", sig, fn["marker"], markers[sig],
                               "run capacity-service migrate"))
    reasons = []
    if superuser:
        reasons.append("superuser")
    if owned_by_me:
        reasons.append("owns (or has the privileges of the owner of): " + ", ".join(owned_by_me))
    if bypass and not supabase:
        reasons.append("BYPASSRLS")
    if reasons:
        out.append(Finding("runtime_role_bypasses_rls", "error", user, "not superuser, not owner, NOBYPASSRLS",
                           "; ".join(reasons), "connect the service as capacity_app"))
    if bypass and supabase:
        out.append(Finding("tenant_rls_inert", "warning", user, "NOBYPASSRLS", "BYPASSRLS"))
    state = strategic_config_state(cols if STRATEGIC_TABLE in present else None)
    finding = _strategic_finding(state)
    if finding:
        out.append(finding)
    return out
