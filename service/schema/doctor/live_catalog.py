"""A normalised snapshot of the live catalog of schema ``public`` and the cluster facts the service depends on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from service.schema.doctor.checked_objects import (
    CAPACITY_RULES,
    CHECKED_ROLES,
    GRANT_ROLES,
    LEDGER_TABLE,
    OWNER_ROLE,
    SERVICE_TABLES,
    STRATEGIC_TABLE,
    VERSION_TABLE,
)
from service.schema.doctor.normalise import _norm_config, _norm_type, normalize_sql

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


def one_row(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    """The row of a query that always returns exactly one (aggregates, catalog probes)."""
    row = cursor.fetchone()
    assert row is not None, "a one-row query returned no row"
    return tuple(row)


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
    user, dbname, server_version, supabase, foreign_alembic, supabase_history = one_row(conn.execute(_Q_SESSION))
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
