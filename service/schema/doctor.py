"""Schema doctor: compare the live database with the shape this version of the service needs (schema.md §6.3).

Read-only (the checks run in a READ ONLY transaction). Three parts:

- :func:`inspect_live` — a normalised catalog snapshot of schema ``public`` plus the cluster facts the
  service depends on (roles, btree_gist, version table, kill-switch settings);
- :func:`build_manifest` — the snapshot of a *greenfield head* database, restricted to what the service
  owns. It is committed as ``service/schema/manifest.json``; regenerate it after changing a revision with

      uv run python -m service.schema.doctor --write-manifest postgresql://postgres@127.0.0.1:5432/<db at head>
      uv run python -m service.schema.doctor --write-manifest --fresh postgresql://postgres@127.0.0.1:5432/postgres

  (the second form builds a scratch database at head from this checkout and drops it afterwards;
  ``tests/migrations/test_doctor.py::test_manifest_is_fresh`` fails while the committed file is stale);
- :func:`diagnose` — every finding of §6.3, and :func:`readiness_findings` — the cheap subset ``/readyz`` runs.

Normalisation (so the manifest built on PostgreSQL 15 equals the one built on 18 and an adopted database
is compared by shape, not by spelling): PG 18's catalogued NOT NULL constraints (contype ``n``) are
ignored; definitions are lower-cased, ``public.`` qualifiers, double quotes, ``::type`` casts, NOT VALID
and deferrability clauses are dropped (the latter two are compared as flags), whitespace is collapsed.

**Runtime role (decision).** §4.2 rule 1 is about the role the *service* connects as. ``diagnose`` checks
the role named by ``runtime_role``; without it, ``current_user``. Operators usually run
``capacity-service doctor`` as the migration user, which is often a superuser or the owner's member, so:
when the role was *not* named explicitly, a superuser / owner / BYPASSRLS finding on it is reported as
``info`` (``runtime_role_bypasses_rls``, hint: pass ``--runtime-role``); when it was named, it is an
``error``. :func:`readiness_findings` runs on the service's own connection, so there it is always an
``error`` (acceptance case 32).

**Severities §6.3 leaves open (decisions).** Errors: a missing/mismatched policy or RLS switched off on
an owned table, a permissive ``USING (true)`` service-role policy on an *owned* table (OR-combined, it
voids the tenant policies; on co-owned tables it is the §6.3 warning), missing EXECUTE / service_role
table grants, constraint shape drift of PK/UNIQUE/EXCLUDE/FK. Warnings: missing plain index, trigger
missing or different, CHECK shape drift, grants to anon, EXECUTE for PUBLIC on a SECURITY DEFINER
function. Info: default-expression differences, a co-owned column stricter (NOT NULL) than our copy,
columns/constraints catalog.py exempts on adoption, an adopted updated_at trigger under another name.
While ``strategic_configs`` is not in its 0005 shape, errors on its sub-objects are lowered to warnings
(the allocator keeps serving on defaults, strategic-config.md §3.5).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from service.schema import migrate

MANIFEST_PATH = Path(__file__).with_name("manifest.json")
MANIFEST_FORMAT = 1
HEAD_REVISION = migrate.HEAD

VERSION_TABLE = "capacity_alembic_version"
LEDGER_TABLE = "capacity_schema_ledger"
SERVICE_TABLES = frozenset({VERSION_TABLE, LEDGER_TABLE})
CO_OWNED_TABLES = frozenset({"restaurants", "restaurant_memberships", "bookings"})
CAPACITY_RULES = "restaurant_capacity_rules"
STRATEGIC_TABLE = "strategic_configs"
WEIGHT_COLUMNS = ("scarcity_weight", "demand_multiplier_override", "future_conflict_penalty")
PROBE_COLUMNS = (*WEIGHT_COLUMNS, "updated_at")
LEGACY_WEIGHTS_COLUMN = "weights"
OWNER_ROLE = "capacity_owner"
CHECKED_ROLES = ("service_role", "capacity_app")
GRANT_ROLES = ("service_role", "authenticated", "anon")
KILL_SWITCH = "app.capacity.post_assignment.enabled"
KILL_SWITCH_OFF = frozenset({"off", "false", "0", "no"})
NO_OVERLAP = ("allocations", "allocations_no_overlap")
MERGE_GROUP_COLUMN = ("booking_table_assignments", "merge_group_id")

SEVERITIES = ("info", "warning", "error")
_UPDATED_AT_FUNCTION = re.compile(r"updated_at|timestamp|touch", re.I)
_BEFORE_UPDATE = re.compile(r"\bbefore\b[^()]*\bupdate\b")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}

# Objects an adopted database may carry that greenfield does not create (§2, §6.3 "tolerated extras").
TOLERATED_EXTRAS: dict[str, str] = {
    "table_inventory.table_inventory_allowed_capacity_fkey": "FK to allowed_capacities (original)",
    "table_inventory.table_inventory_allowed_capacity_fk": "FK to allowed_capacities (original)",
    "restaurant_service_periods.restaurant_service_periods_booking_option_fkey": "FK to booking_occasions (original)",
    "booking_table_assignments.booking_table_assignments_table_id_slot_id_key": "original unique key, kept on adoption",
    "uniq_zones_restaurant_lower_name": "duplicate zone name index (original)",
    "booking_confirmation_results_hold_idx": "redundant with the hold_id unique constraint (original)",
    "table_adjacencies_canonical_unique": "canonical-order index (original)",
    "booking_table_assignments.booking_table_assignments_audit": "original audit trigger (booking domain)",
}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # error | warning | info
    object: str
    expected: str | None = None
    actual: str | None = None
    hint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


# --------------------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------------------
_CAST = re.compile(
    r"::(?:[a-z_][a-z0-9_]*\.)?"
    r"(?:character varying|timestamp with(?:out)? time zone|time with(?:out)? time zone|double precision|"
    r"bit varying|[a-z_][a-z0-9_]*)(?:\(\d+(?:,\d+)?\))?(?:\[\])*"
)
_REDUNDANT_PARENS = re.compile(r"(?<![\w\]])\((\w+|'[^']*')\)")
_PUNCT_SPACE = re.compile(r"\s*([^\w\s'])\s*")
_DEFERRABILITY = re.compile(r"\b(?:not deferrable|deferrable|initially deferred|initially immediate)\b")


def normalize_sql(text: str | None) -> str | None:
    """Canonical spelling of a catalog-printed expression or definition (comparison only, never executed)."""
    if text is None:
        return None
    s = text.lower().replace('"', "")
    s = _PUNCT_SPACE.sub(r"\1", re.sub(r"\s+", " ", s))
    s = _CAST.sub("", s)
    s = re.sub(r"(?<![\w.])public\.", "", s)
    s = re.sub(r"\bnot valid\b", "", s)
    s = _DEFERRABILITY.sub("", s)
    while True:
        stripped = _REDUNDANT_PARENS.sub(r"\1", s)
        if stripped == s:
            break
        s = stripped
    # Deparsers differ in spacing around operators and parentheses: keep spaces only between words.
    return _PUNCT_SPACE.sub(r"\1", re.sub(r"\s+", " ", s)).strip()


def _norm_type(formatted: str) -> str:
    return re.sub(r"^public\.", "", formatted.replace('"', ""))


def _norm_config(config: Sequence[str] | None) -> list[str]:
    return sorted(re.sub(r"\s+", "", c).replace('"', "").lower() for c in (config or []))


# --------------------------------------------------------------------------------------------------
# live snapshot
# --------------------------------------------------------------------------------------------------
_NOT_EXTENSION_MEMBER = """NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '{cat}'::regclass
                                    AND dep.objid = {oid} AND dep.deptype = 'e')"""

_Q_TABLES = f"""
SELECT c.oid, c.relname, c.relkind::text, c.relrowsecurity, pg_get_userbyid(c.relowner)
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND {_NOT_EXTENSION_MEMBER.format(cat='pg_class', oid='c.oid')}"""

_Q_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.oid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped"""

# contype 'n' = PostgreSQL 18's catalogued NOT NULL constraints; nullability is compared per column.
_Q_CONSTRAINTS = """
SELECT c.relname, con.conname, con.contype::text, pg_get_constraintdef(con.oid), con.condeferrable,
       con.condeferred, con.convalidated
  FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
 WHERE c.oid = ANY(%s) AND con.contype <> 'n'"""

_Q_INDEXES = """
SELECT t.relname, i.relname, pg_get_indexdef(x.indexrelid), x.indisvalid, x.indisready,
       EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid AND con.conrelid = x.indrelid
                  AND con.contype IN ('p', 'u', 'x'))
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
 WHERE t.oid = ANY(%s)"""

_Q_ENUMS = f"""
SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
  FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
 WHERE t.typnamespace = 'public'::regnamespace
   AND {_NOT_EXTENSION_MEMBER.format(cat='pg_type', oid='t.oid')}
 GROUP BY t.typname"""

_Q_FUNCTIONS = f"""
SELECT p.proname, oidvectortypes(p.proargtypes), md5(p.prosrc), p.prosecdef, p.provolatile::text,
       p.proconfig, obj_description(p.oid, 'pg_proc'), p.prokind::text, l.lanname,
       pg_get_userbyid(p.proowner),
       ARRAY(SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
               FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
              WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner ORDER BY 1),
       (p.prosrc ILIKE ('%%' || %s || '%%')) AND p.prosrc NOT ILIKE '%%to_regclass%%'
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'public'::regnamespace
   AND {_NOT_EXTENSION_MEMBER.format(cat='pg_proc', oid='p.oid')}"""

_Q_TRIGGERS = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), p.proname, t.tgenabled::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE c.oid = ANY(%s) AND NOT t.tgisinternal"""

_Q_POLICIES = """
SELECT c.relname, pol.polname, pol.polcmd::text, pol.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END FROM unnest(pol.polroles) r ORDER BY 1),
       pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid)
  FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
 WHERE c.oid = ANY(%s)"""

_Q_GRANTS = """
SELECT c.relname, r.rolname, array_agg(DISTINCT a.privilege_type::text ORDER BY a.privilege_type::text)
  FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a, pg_roles r
 WHERE r.oid = a.grantee AND c.oid = ANY(%s) AND r.rolname = ANY(%s)
 GROUP BY c.relname, r.rolname"""

_Q_ROLES = """
SELECT r.rolname, r.rolcanlogin, r.rolbypassrls, r.rolsuper,
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
              WHERE m.member = r.oid ORDER BY 1),
       ARRAY(SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c
              WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
                AND c.relname <> ALL(%s) AND pg_has_role(r.oid, c.relowner, 'USAGE') ORDER BY 1)
  FROM pg_roles r WHERE r.rolname = ANY(%s)"""

_Q_SETTINGS = """
SELECT coalesce(r.rolname, ''), coalesce(d.datname, ''), s.setconfig
  FROM pg_db_role_setting s
  LEFT JOIN pg_roles r ON r.oid = s.setrole
  LEFT JOIN pg_database d ON d.oid = s.setdatabase
 WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))"""

_Q_SESSION = """
SELECT current_user::text, current_database()::text, current_setting('server_version_num')::int,
       to_regprocedure('auth.uid()') IS NOT NULL OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_admin'),
       to_regclass('public.alembic_version') IS NOT NULL,
       to_regclass('supabase_migrations.schema_migrations') IS NOT NULL"""


class _ReadOnly:
    """A READ ONLY transaction when the connection is idle; a savepoint inside a caller's transaction."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def __enter__(self) -> psycopg.Connection:
        idle = self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        self.tx = self.conn.transaction()
        self.tx.__enter__()
        if idle:
            self.conn.execute("SET TRANSACTION READ ONLY")
        return self.conn

    def __exit__(self, *exc: Any) -> None:
        self.tx.__exit__(*exc)


def _optional(conn: psycopg.Connection, sql: str, params: Any = None) -> list[tuple] | None:
    """Run a query that may fail for lack of privilege (RLS, no SELECT); None when it did."""
    try:
        with conn.transaction():
            return conn.execute(sql, params).fetchall()
    except psycopg.Error:
        return None


def inspect_live(conn: psycopg.Connection, *, roles: Iterable[str] = ()) -> dict[str, Any]:
    """Normalised snapshot of schema ``public`` and the related cluster facts (all objects, owned or not)."""
    with _ReadOnly(conn):
        return _inspect(conn, roles)


def _inspect(conn: psycopg.Connection, roles: Iterable[str]) -> dict[str, Any]:
    user, dbname, server_version, supabase, foreign_alembic, supabase_history = conn.execute(_Q_SESSION).fetchone()
    snap: dict[str, Any] = {
        "session": {
            "current_user": user,
            "database": dbname,
            "server_version_num": server_version,
            "supabase": supabase,
            "foreign_alembic_version": foreign_alembic,
            "supabase_migration_history": supabase_history,
        }
    }
    table_rows = conn.execute(_Q_TABLES).fetchall()
    oids = [r[0] for r in table_rows]
    tables: dict[str, Any] = {}
    for _oid, name, kind, rls, owner in table_rows:
        tables[name] = {"kind": "view" if kind in ("v", "m") else "table", "rls": rls, "owner": owner, "columns": {}}
    for table, col, typ, not_null, default, generated in conn.execute(_Q_COLUMNS, (oids,)):
        tables[table]["columns"][col] = {
            "type": _norm_type(typ),
            "not_null": not_null,
            "default": normalize_sql(default),
            "generated": normalize_sql(generated),
        }
    snap["tables"] = tables

    snap["constraints"] = {
        f"{t}.{n}": {
            "table": t,
            "name": n,
            "kind": kind,
            "definition": normalize_sql(defn),
            "deferrable": deferrable,
            "deferred": deferred,
            "validated": validated,
        }
        for t, n, kind, defn, deferrable, deferred, validated in conn.execute(_Q_CONSTRAINTS, (oids,))
    }
    snap["indexes"] = {
        n: {
            "table": t,
            "definition": normalize_sql(defn),
            "valid": valid and ready,
            "constraint": backs_constraint,
        }
        for t, n, defn, valid, ready, backs_constraint in conn.execute(_Q_INDEXES, (oids,))
    }
    snap["enums"] = {name: list(labels) for name, labels in conn.execute(_Q_ENUMS)}
    functions: dict[str, Any] = {}
    for (name, args, body_md5, secdef, volatility, config, comment, kind, language, owner, grantees,
         unguarded) in conn.execute(_Q_FUNCTIONS, (CAPACITY_RULES,)):
        functions[f"{name}({_norm_type(args).replace('public.', '')})"] = {
            "name": name,
            "kind": kind,
            "language": language,
            "md5": body_md5,
            "security_definer": secdef,
            "volatility": volatility,
            "config": _norm_config(config),
            "marker": comment,
            "owner": owner,
            "execute": list(grantees),
            "unguarded_optional_table": bool(unguarded),
        }
    snap["functions"] = functions
    snap["triggers"] = {
        f"{t}.{n}": {"table": t, "name": n, "definition": normalize_sql(defn), "function": fn, "enabled": enabled != "D"}
        for t, n, defn, fn, enabled in conn.execute(_Q_TRIGGERS, (oids,))
    }
    snap["policies"] = {
        f"{t}.{n}": {
            "table": t,
            "name": n,
            "command": cmd,
            "permissive": permissive,
            "roles": list(pol_roles),
            "using": normalize_sql(using),
            "with_check": normalize_sql(check),
        }
        for t, n, cmd, permissive, pol_roles, using, check in conn.execute(_Q_POLICIES, (oids,))
    }
    grants: dict[str, dict[str, list[str]]] = {}
    for t, role, privileges in conn.execute(_Q_GRANTS, (oids, list(GRANT_ROLES))):
        grants.setdefault(t, {})[role] = list(privileges)
    snap["grants"] = grants
    wanted_roles = sorted({*CHECKED_ROLES, OWNER_ROLE, user, *roles})
    snap["roles"] = {
        name: {"login": login, "bypassrls": bypass, "superuser": superuser, "member_of": list(member_of),
               "privileges_of_table_owners": list(owners)}
        for name, login, bypass, superuser, member_of, owners in conn.execute(
            _Q_ROLES, (list(SERVICE_TABLES), wanted_roles)
        )
    }
    snap["extensions"] = sorted(r[0] for r in conn.execute("SELECT extname FROM pg_extension"))
    versions = None
    if VERSION_TABLE in tables:
        rows = _optional(conn, f"SELECT version_num FROM public.{VERSION_TABLE} ORDER BY 1")
        versions = [r[0] for r in rows] if rows is not None else None
    snap["version"] = versions
    snap["settings"] = [
        {"role": role, "database": db, "config": list(config or [])}
        for role, db, config in (_optional(conn, _Q_SETTINGS) or [])
    ]
    snap["supabase_migration_versions"] = None
    if supabase_history:
        rows = _optional(conn, "SELECT count(*) FROM supabase_migrations.schema_migrations")
        snap["supabase_migration_versions"] = rows[0][0] if rows else None
    snap["adopted_functions"] = _adopted_functions(conn) if LEDGER_TABLE in tables else []
    snap["strategic_config_global_row"] = None
    if STRATEGIC_TABLE in tables and "restaurant_id" in tables[STRATEGIC_TABLE]["columns"]:
        rows = _optional(conn, f"SELECT EXISTS (SELECT 1 FROM public.{STRATEGIC_TABLE} WHERE restaurant_id IS NULL)")
        snap["strategic_config_global_row"] = rows[0][0] if rows else None
    return snap


_Q_ADOPTED_FUNCTIONS = f"""
SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')'
  FROM public.{LEDGER_TABLE} l JOIN pg_proc p ON p.oid = to_regprocedure(l.object_name)
 WHERE l.object_kind = 'function' AND l.action = 'adopted'
   AND coalesce(obj_description(p.oid, 'pg_proc'), '') NOT LIKE 'capacity-service:%'"""


def _adopted_functions(conn: psycopg.Connection) -> list[str]:
    """Owned-by-name functions a revision left as found because another domain owns them on this database
    (``ensure_function(..., keep_existing_when_adopted=True)``, e.g. the booking domain's set_booking_instants)."""
    rows = _optional(conn, _Q_ADOPTED_FUNCTIONS)
    return sorted({_norm_type(r[0]).replace("public.", "") for r in rows or []})


# --------------------------------------------------------------------------------------------------
# manifest
# --------------------------------------------------------------------------------------------------
def _known_revisions() -> list[str]:
    """Revision ids of the Alembic chain, oldest first."""
    return list(migrate.revisions())


def build_manifest(conn: psycopg.Connection, *, revisions: Sequence[str] | None = None) -> dict[str, Any]:
    """The expected state, taken from a greenfield database at head: only what the service owns."""
    snap = inspect_live(conn)
    revisions = list(revisions) if revisions is not None else _known_revisions()
    owned = {t: v for t, v in snap["tables"].items() if t not in SERVICE_TABLES}
    return {
        "format": MANIFEST_FORMAT,
        "head": revisions[-1] if revisions else None,
        "revisions": revisions,
        "tables": owned,
        "constraints": {k: v for k, v in snap["constraints"].items() if v["table"] in owned},
        "indexes": {k: v for k, v in snap["indexes"].items() if v["table"] in owned},
        "enums": snap["enums"],
        "functions": {k: {f: v for f, v in fn.items() if f != "unguarded_optional_table"}
                      for k, fn in snap["functions"].items()},
        "triggers": {k: v for k, v in snap["triggers"].items() if v["table"] in owned},
        "policies": {k: v for k, v in snap["policies"].items() if v["table"] in owned},
        "grants": {t: g for t, g in snap["grants"].items() if t in owned},
        "roles": {
            r: {f: v for f, v in attrs.items() if f != "privileges_of_table_owners"}
            for r, attrs in snap["roles"].items()
            if r in CHECKED_ROLES
        },
        "extensions": [e for e in snap["extensions"] if e == "btree_gist"],
    }


def manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------------
# strategic-config schema probe (strategic-config.md §3.5)
# --------------------------------------------------------------------------------------------------
def strategic_config_state(columns: Iterable[str] | None) -> str:
    """``columns`` = the live column names of strategic_configs, or None when the table is missing."""
    if columns is None:
        return "table_missing"
    present = set(columns)
    complete = all(c in present for c in PROBE_COLUMNS)
    legacy = LEGACY_WEIGHTS_COLUMN in present
    if complete:
        return "legacy_json_present" if legacy else "ok"
    return "legacy_json_only" if legacy else "columns_missing"


def strategic_config_schema_state(conn: psycopg.Connection) -> str:
    """ok | table_missing | columns_missing | legacy_json_only | legacy_json_present."""
    with _ReadOnly(conn):
        row = conn.execute(
            f"""SELECT to_regclass('public.{STRATEGIC_TABLE}') IS NOT NULL,
                       ARRAY(SELECT attname::text FROM pg_attribute
                              WHERE attrelid = to_regclass('public.{STRATEGIC_TABLE}') AND attnum > 0
                                AND NOT attisdropped)"""
        ).fetchone()
    return strategic_config_state(row[1] if row[0] else None)


def _strategic_finding(state: str) -> Finding | None:
    if state == "ok":
        return None
    if state == "legacy_json_present":
        return Finding(
            "strategic_config_legacy_json_present", "warning", STRATEGIC_TABLE,
            expected="numeric weight columns only", actual=state,
            hint="revision 0005 renames weights to weights_legacy; run capacity-service migrate",
        )
    return Finding(
        "strategic_config_degraded", "warning", STRATEGIC_TABLE,
        expected="ok", actual=state,
        hint="the allocator uses env defaults until revision 0005 has run (capacity-service migrate)",
    )


# --------------------------------------------------------------------------------------------------
# diagnosis
# --------------------------------------------------------------------------------------------------
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
        """An adopted table keeps its own BEFORE UPDATE updated_at-style trigger (§3.6): not drift."""
        if expected["function"] != "set_updated_at" or (live is not None and live["definition"] == expected["definition"]):
            return None
        candidates = [live] if live is not None else [
            t for t in self.live["triggers"].values() if t["table"] == expected["table"]
        ]
        for t in candidates:
            if _BEFORE_UPDATE.search(t["definition"] or "") and _UPDATED_AT_FUNCTION.search(t["function"]):
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


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _con_text(con: dict[str, Any] | None) -> str | None:
    if con is None:
        return None
    flags = []
    if con["deferrable"]:
        flags.append("deferrable initially " + ("deferred" if con["deferred"] else "immediate"))
    return " ".join([con["definition"], *flags])


def diagnose(conn: psycopg.Connection, manifest: dict[str, Any] | None = None, *,
             runtime_role: str | None = None) -> list[Finding]:
    """Every §6.3 finding, most severe first. ``runtime_role``: see the module docstring."""
    manifest = manifest or load_manifest()
    live = inspect_live(conn, roles=[runtime_role] if runtime_role else [])
    role = runtime_role or live["session"]["current_user"]
    return _Diagnosis(manifest, live, role, explicit_role=runtime_role is not None).run()


# --------------------------------------------------------------------------------------------------
# readiness subset
# --------------------------------------------------------------------------------------------------
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
        version_table = conn.execute(f"SELECT to_regclass('public.{VERSION_TABLE}') IS NOT NULL").fetchone()[0]
        if version_table:
            rows = _optional(conn, f"SELECT version_num FROM public.{VERSION_TABLE} ORDER BY 1")
            versions = [r[0] for r in rows] if rows is not None else None
        present = {
            t for t, ok in conn.execute(
                "SELECT t, to_regclass('public.' || t) IS NOT NULL FROM unnest(%s::text[]) t", (tables,))
            if ok
        }
        row = conn.execute(
            """SELECT pg_get_constraintdef(oid), condeferrable, condeferred FROM pg_constraint
                WHERE conrelid = to_regclass('public.allocations') AND conname = 'allocations_no_overlap'"""
        ).fetchone()
        merge_col = conn.execute(
            """SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('public.booking_table_assignments')
                                 AND attname = 'merge_group_id' AND NOT attisdropped)"""
        ).fetchone()[0]
        markers = {
            f"{name}({_norm_type(args).replace('public.', '')})": comment
            for name, args, comment in conn.execute(
                """SELECT p.proname, oidvectortypes(p.proargtypes), obj_description(p.oid, 'pg_proc')
                     FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY(%s)""",
                (sorted({fn["name"] for fn in functions.values()}),))
        }
        adopted = set(_adopted_functions(conn)) if conn.execute(
            f"SELECT to_regclass('public.{LEDGER_TABLE}') IS NOT NULL").fetchone()[0] else set()
        user, superuser, bypass, supabase = conn.execute(
            """SELECT current_user::text, r.rolsuper, r.rolbypassrls,
                      to_regprocedure('auth.uid()') IS NOT NULL
                      OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_admin')
                 FROM pg_roles r WHERE r.rolname = current_user"""
        ).fetchone()
        owned_by_me = [
            r[0] for r in conn.execute(
                """SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
                      AND c.relname = ANY(%s) AND pg_has_role(current_user, c.relowner, 'USAGE') ORDER BY 1""",
                (tables,))
        ]
        cols = conn.execute(
            """SELECT ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass('public.strategic_configs')
                               AND attnum > 0 AND NOT attisdropped)"""
        ).fetchone()[0]
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


# --------------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------------
def render_text(findings: Sequence[Finding]) -> str:
    if not findings:
        return "no findings: the schema matches this version's manifest"
    lines = []
    for f in findings:
        lines.append(f"{f.severity.upper():7} {f.code}  {f.object}")
        if f.expected is not None:
            lines.append(f"        expected: {f.expected}")
        if f.actual is not None:
            lines.append(f"        actual:   {f.actual}")
        if f.hint:
            lines.append(f"        fix:      {f.hint}")
    counts = {s: sum(1 for f in findings if f.severity == s) for s in reversed(SEVERITIES)}
    lines.append(", ".join(f"{n} {s}" + ("s" if n != 1 else "") for s, n in counts.items()))
    return "\n".join(lines)


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps({"findings": [f.as_dict() for f in findings]}, indent=2)


def exit_code(findings: Sequence[Finding], fail_on: str = "error") -> int:
    """0: no finding at or above ``fail_on``; 1: at least one."""
    threshold = _RANK[fail_on]
    return 1 if any(_RANK[f.severity] >= threshold for f in findings) else 0


# --------------------------------------------------------------------------------------------------
# python -m service.schema.doctor
# --------------------------------------------------------------------------------------------------
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


if __name__ == "__main__":
    raise SystemExit(main())
