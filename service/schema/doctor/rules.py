"""The docs/schema.md §6.3 rules: every finding the doctor reports, from the manifest and a live snapshot."""

from __future__ import annotations

from typing import Any

import psycopg

from service.schema.doctor.checked_objects import (
    BEFORE_UPDATE,
    CAPACITY_RULES,
    CO_OWNED_TABLES,
    GRANT_ROLES,
    KILL_SWITCH,
    KILL_SWITCH_OFF,
    LEDGER_TABLE,
    MERGE_GROUP_COLUMN,
    NO_OVERLAP,
    PROBE_COLUMNS,
    SERVICE_TABLES,
    STRATEGIC_TABLE,
    TOLERATED_EXTRAS,
    UPDATED_AT_FUNCTION,
    VERSION_TABLE,
)
from service.schema.doctor.findings import SEVERITIES, Finding, _text
from service.schema.doctor.live_catalog import inspect_live
from service.schema.doctor.manifest import load_manifest
from service.schema.doctor.strategic_probe import _strategic_finding, strategic_config_state


def _catalog_sets() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """Greenfield-only constraint/index names and per-table columns not checked on adoption (catalog.py)."""
    try:
        from service.schema.released import catalog
    except ImportError:  # catalog not importable: check everything strictly
        return frozenset(), {}
    return (
        frozenset(getattr(catalog, "GREENFIELD_ONLY", frozenset())),
        dict(getattr(catalog, "ADOPTION_SKIPS_COLUMNS", {})),
    )


class _Diagnosis:
    def __init__(self, manifest: dict[str, Any], live: dict[str, Any], runtime_role: str, explicit_role: bool):
        self.m = manifest
        self.live = live
        self.runtime_role = runtime_role
        self.explicit_role = explicit_role
        self.findings: list[Finding] = []
        self.greenfield_only, self.adoption_skips = _catalog_sets()
        self.live_tables = live["tables"]
        sc = self.live_tables.get(STRATEGIC_TABLE)
        self.strategic_state = strategic_config_state(list(sc["columns"]) if sc else None)
        # Tables whose sub-objects are not checked: absent optional tables (reported once instead).
        self.skip_tables = {t for t in (CAPACITY_RULES, STRATEGIC_TABLE) if t not in self.live_tables}
        # Until revision 0005 has run, strategic_configs drift keeps the service serving on defaults.
        self.soft_tables = {STRATEGIC_TABLE} if self.strategic_state not in ("ok", "legacy_json_present") else set()

    def add(self, code: str, severity: str, obj: str, expected: Any = None, actual: Any = None,
            hint: str | None = None, table: str | None = None) -> None:
        if severity == "error" and table in self.soft_tables:
            severity = "warning"
        self.findings.append(Finding(code, severity, obj, _text(expected), _text(actual), hint))

    def run(self) -> list[Finding]:
        self.check_version()
        self.check_extensions()
        self.check_tables()
        self.check_constraints()
        self.check_indexes()
        self.check_enums()
        self.check_functions()
        self.check_triggers()
        self.check_policies()
        self.check_grants()
        self.check_roles()
        self.check_settings()
        self.check_strategic()
        self.check_history()
        order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
        return sorted(self.findings, key=lambda f: (order[f.severity], f.code, f.object))

    # -- version -------------------------------------------------------------------------------
    def check_version(self) -> None:
        versions = self.live["version"]
        head = self.m["head"]
        if VERSION_TABLE not in self.live_tables:
            self.add("version_table_missing", "error", VERSION_TABLE, head, None,
                     "run capacity-service migrate (never alembic stamp on an adopted database)")
            return
        if versions is None:
            self.add("version_unreadable", "warning", VERSION_TABLE, head, None,
                     "grant SELECT on the version table to the role running the check")
            return
        unknown = [v for v in versions if v not in self.m["revisions"]]
        if unknown:
            self.add("version_unknown_revision", "error", VERSION_TABLE, head, ", ".join(versions),
                     "capacity-service repair-history --to " + head)
        elif versions != [head]:
            self.add("version_not_head", "error", VERSION_TABLE, head, ", ".join(versions) or "(empty)",
                     "run capacity-service migrate")
        if LEDGER_TABLE not in self.live_tables:
            self.add("ledger_missing", "warning", LEDGER_TABLE, "present", None,
                     "re-run capacity-service migrate; downgrades cannot tell created from adopted objects")

    def check_extensions(self) -> None:
        for ext in self.m["extensions"]:
            if ext not in self.live["extensions"]:
                self.add("extension_missing", "error", ext, "installed", None,
                         f"CREATE EXTENSION {ext} (needed by allocations_no_overlap)")

    # -- tables and columns --------------------------------------------------------------------
    def check_tables(self) -> None:
        for name, exp in self.m["tables"].items():
            live = self.live_tables.get(name)
            if live is None:
                self.table_missing(name, exp)
                continue
            if exp["kind"] == "table":
                if exp["rls"] and not live["rls"]:
                    self.add("rls_disabled", "error", name, "row level security enabled", "disabled",
                             f"ALTER TABLE public.{name} ENABLE ROW LEVEL SECURITY", table=name)
                if live["owner"] != exp["owner"]:
                    self.add("owner_mismatch", "warning", name, exp["owner"], live["owner"],
                             "adopted table: ownership stays as found; SECURITY DEFINER functions need an owner that bypasses RLS",
                             table=name)
            self.check_columns(name, exp, live)
        for name, live in self.live_tables.items():
            if name not in self.m["tables"] and name not in SERVICE_TABLES:
                self.add("extra_table", "info", name, None, live["kind"])

    def table_missing(self, name: str, exp: dict[str, Any]) -> None:
        if name == CAPACITY_RULES:
            self.add("capacity_rules_absent", "warning", name, "present", "absent",
                     "capacity limits are unbounded; capacity-service ensure-capacity-rules creates the table")
        elif name == STRATEGIC_TABLE:
            pass  # check_strategic reports strategic_config_degraded
        elif exp["kind"] == "view":
            self.add("view_missing", "warning", name, "present", "absent", "run capacity-service migrate")
        else:
            self.add("table_missing", "error", name, "present", "absent", "run capacity-service migrate")

    def check_columns(self, table: str, exp: dict[str, Any], live: dict[str, Any]) -> None:
        skips = self.adoption_skips.get(table, frozenset())
        for col, ec in exp["columns"].items():
            obj = f"{table}.{col}"
            lc = live["columns"].get(col)
            lenient = col in skips  # columns the capacity domain does not depend on (catalog.py)
            if lc is None:
                if table == STRATEGIC_TABLE and col in PROBE_COLUMNS:
                    continue  # strategic_config_degraded covers it
                sev = "info" if lenient else "error"
                code = "merge_group_id_missing" if (table, col) == MERGE_GROUP_COLUMN else "column_missing"
                self.add(code, sev, obj, ec["type"], None, "run capacity-service migrate", table=table)
                continue
            if lc["type"] != ec["type"]:
                alias = ec["type"] == "text" and lc["type"].split("(")[0] in ("character varying", "citext")
                sev = "info" if (lenient or alias) else "error"
                self.add("column_type_mismatch", sev, obj, ec["type"], lc["type"],
                         "no automatic type change: convert by hand", table=table)
            if ec["not_null"] != lc["not_null"] and exp["kind"] == "table":
                stricter = lc["not_null"] and not ec["not_null"]
                # A co-owned table may be stricter than our minimal copy (the booking domain owns it).
                sev = "info" if lenient or (stricter and table in CO_OWNED_TABLES) else "error"
                self.add("column_nullability_mismatch", sev, obj,
                         "NOT NULL" if ec["not_null"] else "nullable",
                         "NOT NULL" if lc["not_null"] else "nullable", table=table)
            if ec["generated"] != lc["generated"]:
                self.add("column_generated_mismatch", "info" if lenient else "error", obj,
                         ec["generated"], lc["generated"], table=table)
            elif ec["default"] != lc["default"]:
                self.add("column_default_mismatch", "info", obj, ec["default"], lc["default"], table=table)
        for col, lc in live["columns"].items():
            if col not in exp["columns"]:
                self.add("extra_column", "info", f"{table}.{col}", None, lc["type"])

    # -- constraints and indexes ---------------------------------------------------------------
    def check_constraints(self) -> None:
        live_all = self.live["constraints"]
        for key, ec in self.m["constraints"].items():
            table = ec["table"]
            if table not in self.live_tables or table in self.skip_tables:
                continue
            lc = live_all.get(key)
            critical = ec["kind"] in ("p", "u", "x", "f") or (table, ec["name"]) == NO_OVERLAP
            if lc is None:
                sev = "info" if ec["name"] in self.greenfield_only else "error"
                self.add("constraint_missing", sev, key, ec["definition"], None,
                         "run capacity-service migrate", table=table)
                continue
            shape_differs = (
                lc["kind"] != ec["kind"]
                or lc["definition"] != ec["definition"]
                or lc["deferrable"] != ec["deferrable"]
                or lc["deferred"] != ec["deferred"]
            )
            if shape_differs:
                lenient = ec["name"] in self.greenfield_only
                self.add("constraint_shape_mismatch",
                         "info" if lenient else ("error" if critical else "warning"), key,
                         _con_text(ec), _con_text(lc),
                         "capacity-service migrate replaces it (the old definition is saved in the ledger)",
                         table=table)
            if ec["validated"] and not lc["validated"]:
                self.add("constraint_not_validated", "warning", key, "validated", "NOT VALID",
                         f"resolve violating rows, then ALTER TABLE public.{table} VALIDATE CONSTRAINT {ec['name']}",
                         table=table)
        for key, lc in live_all.items():
            if key in self.m["constraints"] or lc["table"] not in self.m["tables"]:
                continue
            if key in TOLERATED_EXTRAS or (lc["kind"] == "f" and "references auth." in lc["definition"]):
                reason = TOLERATED_EXTRAS.get(key, "FK to auth.users (original)")
                self.add("tolerated_extra", "info", key, None, f"{lc['definition']} — {reason}")
            else:
                self.add("extra_constraint", "info", key, None, lc["definition"])
        if NO_OVERLAP[0] in self.live_tables and f"{NO_OVERLAP[0]}.{NO_OVERLAP[1]}" not in live_all:
            self.findings = [f for f in self.findings if f.object != f"{NO_OVERLAP[0]}.{NO_OVERLAP[1]}"]
            self.add("constraint_shape_mismatch", "error", f"{NO_OVERLAP[0]}.{NO_OVERLAP[1]}",
                     _con_text(self.m["constraints"].get(f"{NO_OVERLAP[0]}.{NO_OVERLAP[1]}")), "missing",
                     "capacity-service migrate adds it (pre-flight lists overlapping rows first)")

    def check_indexes(self) -> None:
        live_all = self.live["indexes"]
        for name, ei in self.m["indexes"].items():
            table = ei["table"]
            if table not in self.live_tables or table in self.skip_tables or ei["constraint"]:
                continue  # constraint-backed indexes are checked as constraints
            li = live_all.get(name)
            if li is None:
                sev = "info" if name in self.greenfield_only else "warning"
                self.add("index_missing", sev, name, ei["definition"], None, "run capacity-service migrate",
                         table=table)
            elif li["definition"] != ei["definition"]:
                self.add("index_shape_mismatch", "info" if name in self.greenfield_only else "warning", name,
                         ei["definition"], li["definition"], table=table)
        for name, li in live_all.items():
            if li["table"] not in self.m["tables"] and li["table"] not in SERVICE_TABLES:
                continue
            if not li["valid"]:
                self.add("index_invalid", "error", name, "indisvalid = true", "indisvalid = false",
                         "an interrupted CREATE INDEX CONCURRENTLY: re-run capacity-service migrate "
                         "(the owning revision drops and rebuilds it)")
            # An extra constraint's own index is reported with the constraint.
            if name not in self.m["indexes"] and li["table"] in self.m["tables"] and not li["constraint"]:
                if name in TOLERATED_EXTRAS:
                    self.add("tolerated_extra", "info", name, None, f"{li['definition']} — {TOLERATED_EXTRAS[name]}")
                else:
                    self.add("extra_index", "info", name, None, li["definition"])

    def check_enums(self) -> None:
        for name, labels in self.m["enums"].items():
            live = self.live["enums"].get(name)
            if live is None:
                self.add("enum_missing", "error", name, ", ".join(labels), None, "run capacity-service migrate")
                continue
            missing = [lb for lb in labels if lb not in live]
            extra = [lb for lb in live if lb not in labels]
            if missing:
                self.add("enum_label_missing", "error", name, ", ".join(labels), ", ".join(live),
                         "capacity-service migrate adds missing labels")
            if extra:
                self.add("enum_extra_labels", "info", name, None, ", ".join(extra))

    # -- functions -----------------------------------------------------------------------------
    def check_functions(self) -> None:
        live_all = self.live["functions"]
        owned_names = {f["name"] for f in self.m["functions"].values()}
        adopted = set(self.live.get("adopted_functions") or [])
        for sig, ef in self.m["functions"].items():
            lf = live_all.get(sig)
            if lf is None:
                self.add("function_missing", "error", sig, ef["marker"], None, "run capacity-service migrate")
                continue
            if sig in adopted:
                self.add("function_not_owned", "info", sig, f"md5 {ef['md5']}", f"md5 {lf['md5']}",
                         "another domain's function on this adopted database; left as found by the migration")
                continue
            if lf["md5"] != ef["md5"]:
                self.add("function_body_mismatch", "error", sig, f"md5 {ef['md5']}", f"md5 {lf['md5']}",
                         "capacity-service migrate replaces it (the old body is saved in the ledger)")
            elif lf["marker"] != ef["marker"]:
                self.add("function_marker_mismatch", "error", sig, ef["marker"], lf["marker"],
                         "capacity-service migrate re-creates it with the head's marker")
            attrs = ("security_definer", "volatility", "config", "language", "kind")
            diffs = [a for a in attrs if lf[a] != ef[a]]
            if diffs:
                self.add("function_attribute_mismatch", "error", sig,
                         {a: ef[a] for a in diffs}, {a: lf[a] for a in diffs}, "run capacity-service migrate")
            if lf["owner"] != ef["owner"]:
                self.add("owner_mismatch", "warning", sig, ef["owner"], lf["owner"])
            missing = [g for g in ef["execute"] if g not in lf["execute"]]
            extra = [g for g in lf["execute"] if g not in ef["execute"]]
            if missing:
                self.add("function_grant_missing", "error", sig, ", ".join(ef["execute"]), ", ".join(lf["execute"]),
                         "run capacity-service migrate")
            if extra:
                risky = ef["security_definer"] and ("PUBLIC" in extra or "anon" in extra)
                self.add("function_grant_extra", "warning" if risky else "info", sig,
                         ", ".join(ef["execute"]), ", ".join(lf["execute"]),
                         f"REVOKE ALL ON FUNCTION {sig} FROM PUBLIC" if risky else None)
        for sig, lf in live_all.items():
            if sig in self.m["functions"]:
                pass
            elif lf["name"] in owned_names:
                self.add("function_extra_overload", "error", sig, None, sig,
                         f"DROP FUNCTION public.{sig} (an overload makes calls ambiguous, SQLSTATE 42725)")
            else:
                self.add("unowned_function", "info", sig)
            if lf["unguarded_optional_table"]:
                owned = lf["name"] in owned_names
                self.add("unguarded_optional_table_reference", "error" if owned else "warning", sig,
                         f"to_regclass('public.{CAPACITY_RULES}') guard", "unguarded reference",
                         "42P01 where the table is absent; capacity-service migrate installs the guarded body")

    # -- triggers, policies, grants ------------------------------------------------------------
    def check_triggers(self) -> None:
        live_all = self.live["triggers"]
        for key, et in self.m["triggers"].items():
            table = et["table"]
            if table not in self.live_tables or table in self.skip_tables:
                continue
            lt = live_all.get(key)
            equivalent = self._updated_at_equivalent(et, lt)
            if equivalent:
                self.add("trigger_adopted_equivalent", "info", key, et["definition"], equivalent["definition"])
            elif lt is None:
                self.add("trigger_missing", "warning", key, et["definition"], None, "run capacity-service migrate",
                         table=table)
            elif lt["definition"] != et["definition"]:
                self.add("trigger_mismatch", "warning", key, et["definition"], lt["definition"], table=table)
            elif not lt["enabled"]:
                self.add("trigger_disabled", "warning", key, "enabled", "disabled", table=table)
        for key, lt in live_all.items():
            if key in self.m["triggers"] or lt["table"] not in self.m["tables"]:
                continue
            if key in TOLERATED_EXTRAS:
                self.add("tolerated_extra", "info", key, None, TOLERATED_EXTRAS[key])
            else:
                self.add("extra_trigger", "info", key, None, lt["definition"])

    def _updated_at_equivalent(self, expected: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any] | None:
        """An adopted table keeps its own BEFORE UPDATE updated_at-style trigger (docs/schema.md §3.6): not drift."""
        if expected["function"] != "set_updated_at" or (live is not None and live["definition"] == expected["definition"]):
            return None
        candidates = [live] if live is not None else [
            t for t in self.live["triggers"].values() if t["table"] == expected["table"]
        ]
        for t in candidates:
            if BEFORE_UPDATE.search(t["definition"] or "") and UPDATED_AT_FUNCTION.search(t["function"]):
                return t
        return None

    def check_policies(self) -> None:
        live_all = self.live["policies"]
        for key, ep in self.m["policies"].items():
            table = ep["table"]
            if table not in self.live_tables or table in self.skip_tables:
                continue
            lp = live_all.get(key)
            fields = ("command", "permissive", "roles", "using", "with_check")
            if lp is None:
                self.add("policy_missing", "error", key, ep["using"], None, "run capacity-service migrate", table=table)
            elif any(lp[f] != ep[f] for f in fields):
                self.add("policy_mismatch", "error", key, {f: ep[f] for f in fields}, {f: lp[f] for f in fields},
                         "run capacity-service migrate", table=table)
        for key, lp in live_all.items():
            table = lp["table"]
            if key in self.m["policies"] or table not in self.m["tables"]:
                continue
            exprs = (lp["using"], lp["with_check"])
            wide_open = (
                lp["permissive"]
                and any(e == "true" for e in exprs)
                and all(e in ("true", None) for e in exprs)
                and ("service_role" in lp["roles"] or "public" in lp["roles"])
            )
            if wide_open:
                # Permissive policies are OR-ed: one USING (true) voids every tenant policy on the table.
                sev = "warning" if table in CO_OWNED_TABLES else "error"
                self.add("permissive_service_policy", sev, key, "tenant-scoped policies only", "USING (true)",
                         f'DROP POLICY "{lp["name"]}" ON public.{table}')
            else:
                self.add("extra_policy", "info", key, None, lp["using"])

    def check_grants(self) -> None:
        for table, exp in self.m["grants"].items():
            if table not in self.live_tables or table in self.skip_tables:
                continue
            live = self.live["grants"].get(table, {})
            for role in GRANT_ROLES:
                want = set(exp.get(role, []))
                have = set(live.get(role, []))
                if want - have:
                    self.add("grant_missing", "error" if role == "service_role" else "warning", f"{table}:{role}",
                             ", ".join(sorted(want)), ", ".join(sorted(have)) or "(none)",
                             "run capacity-service migrate", table=table)
                if have - want:
                    self.add("grant_extra", "warning" if role == "anon" else "info", f"{table}:{role}",
                             ", ".join(sorted(want)) or "(none)", ", ".join(sorted(have)),
                             f"REVOKE ALL ON public.{table} FROM {role}" if role == "anon" else None)

    # -- roles ---------------------------------------------------------------------------------
    def check_roles(self) -> None:
        roles = self.live["roles"]
        supabase = self.live["session"]["supabase"]
        for name, exp in self.m["roles"].items():
            live = roles.get(name)
            if live is None:
                self.add("role_missing", "error", name, exp, None, "capacity-service migrate creates it (needs CREATEROLE)")
                continue
            if name == "service_role" and live["bypassrls"]:
                self.add("tenant_rls_inert", "warning", name, "NOBYPASSRLS", "BYPASSRLS",
                         "service_role bypasses RLS (Supabase): tenant isolation relies on the service's own scoping")
            for attr in ("login", "superuser", "bypassrls"):
                if live[attr] != exp[attr] and not (name == "service_role" and attr == "bypassrls"):
                    self.add("role_attribute_mismatch", "warning", f"{name}.{attr}", exp[attr], live[attr])
            missing = [g for g in exp["member_of"] if g not in live["member_of"]]
            if missing:
                self.add("role_membership_missing", "warning", name, ", ".join(exp["member_of"]),
                         ", ".join(live["member_of"]) or "(none)", f"GRANT {missing[0]} TO {name}")
        self.check_runtime_role(roles.get(self.runtime_role), supabase)

    def check_runtime_role(self, role: dict[str, Any] | None, supabase: bool) -> None:
        name = self.runtime_role
        if role is None:
            self.add("runtime_role_missing", "error" if self.explicit_role else "info", name, "existing role", None)
            return
        owners = [o for o in role["privileges_of_table_owners"] if o in self._owned_table_owners()]
        reasons = []
        if role["superuser"]:
            reasons.append("superuser")
        if owners:
            reasons.append("owns (or has the privileges of the owner of) owned tables: " + ", ".join(owners))
        if role["bypassrls"] and not supabase:
            reasons.append("BYPASSRLS")
        if role["bypassrls"] and supabase:
            self.add("tenant_rls_inert", "warning", name, "NOBYPASSRLS", "BYPASSRLS",
                     "Supabase role: tenant policies are not enforced for the service")
        if reasons:
            sev = "error" if self.explicit_role else "info"
            hint = ("connect the service as capacity_app (LOGIN, NOSUPERUSER, NOBYPASSRLS, member of service_role)"
                    if self.explicit_role else
                    "checked the role running the doctor; pass --runtime-role <service login> to check the service's role")
            self.add("runtime_role_bypasses_rls", sev, name, "not superuser, not owner, NOBYPASSRLS",
                     "; ".join(reasons), hint)

    def _owned_table_owners(self) -> set[str]:
        return {t["owner"] for n, t in self.live_tables.items() if n in self.m["tables"] and t["kind"] == "table"}

    # -- settings, strategic config, history ---------------------------------------------------
    def check_settings(self) -> None:
        for entry in self.live["settings"]:
            for item in entry["config"]:
                key, _, value = item.partition("=")
                if key == KILL_SWITCH and value.strip().lower() in KILL_SWITCH_OFF:
                    scope = " / ".join(
                        s for s in (f"role {entry['role']}" if entry["role"] else "",
                                    f"database {entry['database']}" if entry["database"] else "") if s
                    ) or "cluster"
                    self.add("kill_switch_off", "warning", scope, "unset (enabled)", value,
                             f"the post-assignment capacity check is disabled for new sessions; RESET {KILL_SWITCH}")

    def check_strategic(self) -> None:
        finding = _strategic_finding(self.strategic_state)
        if finding:
            self.findings.append(finding)
        if self.live.get("strategic_config_global_row") is False:
            self.add("strategic_config_no_global_row", "info", STRATEGIC_TABLE, "a global row (restaurant_id NULL)",
                     None, "env defaults apply to restaurants without their own row")

    def check_history(self) -> None:
        s = self.live["session"]
        if s["foreign_alembic_version"]:
            self.add("foreign_alembic_version", "info", "public.alembic_version", None, "present",
                     "another tool's version table; capacity-service uses capacity_alembic_version")
        if s["supabase_migration_history"]:
            count = self.live.get("supabase_migration_versions")
            self.add("supabase_migration_history", "info", "supabase_migrations.schema_migrations", None,
                     f"{count} versions" if count is not None else "present",
                     "never read or written by capacity-service")


def _con_text(con: dict[str, Any] | None) -> str | None:
    if con is None:
        return None
    flags = []
    if con["deferrable"]:
        flags.append("deferrable initially " + ("deferred" if con["deferred"] else "immediate"))
    return " ".join([con["definition"], *flags])


def diagnose(conn: psycopg.Connection, manifest: dict[str, Any] | None = None, *,
             runtime_role: str | None = None) -> list[Finding]:
    """Every docs/schema.md §6.3 finding, most severe first. ``runtime_role``: see the module docstring."""
    manifest = manifest or load_manifest()
    live = inspect_live(conn, roles=[runtime_role] if runtime_role else [])
    role = runtime_role or live["session"]["current_user"]
    return _Diagnosis(manifest, live, role, explicit_role=runtime_role is not None).run()
