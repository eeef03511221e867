"""Roles, tenant-context helpers, trigger helpers and per-table security (docs/schema.md §3.5, §3.6, §4.2).

Everything here returns guarded SQL text (DO blocks reading the catalogs), so an offline script and an
online run make the same decisions, and a second run executes no DDL.

Interface for revisions:
- ``roles_sql()`` — create missing roles (or refuse naming the statement an administrator must run).
- ``BASE_FUNCTIONS`` — the table-independent functions revision 0001 ensures (``ddl.ensure_function``);
  ``drop_legacy_set_restaurant_context(revision)`` removes the original 1-argument overload.
- ``table_security_sql(revision, table)`` — RLS + policies + dropped permissive policies + grants + anon
  revoke + greenfield owner for one table; table-driven by ``POLICIES``.
- ``default_privileges_sql()`` — ``ALTER DEFAULT PRIVILEGES FOR ROLE capacity_owner`` (guarded).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.schema.ddl import (
    Function,
    do_block,
    dollar,
    drop_open_policies,
    drop_policy,
    ensure_grants,
    ensure_owner_greenfield,
    ensure_policy,
    ensure_rls,
    ledger_insert,
    lit,
    revoke_all,
)
from service.schema.released.catalog import READ_ONLY_TABLES

OWNER_ROLE = "capacity_owner"
SERVICE_ROLE = "service_role"
APP_ROLE = "capacity_app"


# --------------------------------------------------------------------------------------------------
# roles (docs/schema.md §4.2)
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Role:
    name: str
    attributes: str  # what follows CREATE ROLE <name>


ROLES: list[Role] = [
    Role("anon", "NOLOGIN"),
    Role("authenticated", "NOLOGIN"),
    Role(SERVICE_ROLE, "NOLOGIN NOBYPASSRLS"),
    Role(OWNER_ROLE, "NOLOGIN"),
    # No password: deployments set one (or use their own auth method); local tests log in with trust.
    Role(APP_ROLE, "LOGIN INHERIT NOSUPERUSER NOBYPASSRLS NOCREATEROLE"),
]

_CAN_CREATE_ROLES = "(SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user)"


def _create_role(role: Role) -> str:
    stmt = f"CREATE ROLE {role.name} {role.attributes}"
    return f"""IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {lit(role.name)}) THEN
    IF NOT {_CAN_CREATE_ROLES} THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'capacity_missing_role',
            DETAIL = {lit(f'role {role.name} does not exist and the migrating user may not create roles')},
            HINT = {lit(f'an administrator must run: {stmt};')};
    END IF;
    BEGIN
        EXECUTE {dollar(stmt, 'ddl')};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another migrator created it at the same time
    END;
END IF;"""


def _grant_membership(group: str, member_sql: str, member_label: str) -> str:
    """GRANT group TO member unless already a member; refuse with the statement when not allowed."""
    return f"""IF NOT EXISTS (SELECT 1 FROM pg_auth_members am
               JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
               WHERE g.rolname = {lit(group)} AND m.rolname = {member_sql}) THEN
    -- PostgreSQL 16+ lets CREATEROLE grant only roles it holds ADMIN OPTION on; 15 lets it grant any.
    IF NOT ((SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
            OR pg_has_role(current_user, {lit(group)}, 'MEMBER WITH ADMIN OPTION')
            OR ((SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user)
                AND current_setting('server_version_num')::int < 160000)) THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'capacity_missing_role_grant',
            DETAIL = format('%s is not a member of {group} and the migrating user may not grant it', {member_sql}),
            HINT = format('an administrator must run: GRANT {group} TO %s;', {member_label});
    END IF;
    BEGIN
        EXECUTE format('GRANT {group} TO %I', {member_sql});
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
    END;
END IF;"""


def roles_sql() -> str:
    """Create each missing role; make capacity_app a member of service_role; when the migrating user is not
    a superuser, make it a member of capacity_owner so it can hand objects over (ALTER … OWNER TO)."""
    body = "\n".join(_create_role(r) for r in ROLES)
    body += "\n" + _grant_membership(SERVICE_ROLE, lit(APP_ROLE), lit(APP_ROLE))
    body += (
        "\nIF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN\n"
        + _grant_membership(OWNER_ROLE, "current_user::text", "quote_ident(current_user)")
        + "\nEND IF;"
    )
    return do_block(body)


# --------------------------------------------------------------------------------------------------
# table-independent functions (docs/schema.md §3.5, §3.6)
# --------------------------------------------------------------------------------------------------
_UUID_RE = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

CURRENT_RESTAURANT_ID = Function(
    signature="public.current_restaurant_id()",
    header="public.current_restaurant_id() RETURNS uuid LANGUAGE plpgsql STABLE",
    body=f"""
DECLARE
    v_raw text;
BEGIN
    -- After a transaction-scoped set_config the GUC reads '' (not NULL) in later transactions.
    v_raw := nullif(btrim(coalesce(current_setting('app.restaurant_id', true), '')), '');
    IF v_raw IS NULL THEN
        v_raw := nullif(btrim(coalesce(current_setting('request.header.x-restaurant-id', true), '')), '');
    END IF;
    IF v_raw IS NULL THEN
        RETURN NULL;
    END IF;
    -- A regex instead of an exception block: this runs per row inside RLS policies.
    IF lower(v_raw) !~ '{_UUID_RE}' THEN
        RAISE EXCEPTION 'Invalid restaurant context value' USING ERRCODE = '22023';
    END IF;
    RETURN v_raw::uuid;
END
""",
)

REQUIRE_RESTAURANT_CONTEXT = Function(
    signature="public.require_restaurant_context()",
    header="public.require_restaurant_context() RETURNS uuid LANGUAGE plpgsql STABLE",
    body="""
DECLARE
    v_id uuid;
BEGIN
    v_id := public.current_restaurant_id();
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'Restaurant context is required' USING ERRCODE = '42501';
    END IF;
    RETURN v_id;
END
""",
)

SET_RESTAURANT_CONTEXT = Function(
    signature="public.set_restaurant_context(uuid, boolean)",
    header=(
        "public.set_restaurant_context(p_restaurant_id uuid, p_local boolean DEFAULT true) RETURNS uuid "
        "LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp"
    ),
    body="""
BEGIN
    -- Transaction scope by default: a pooled connection must not carry one client's tenant to the next.
    PERFORM set_config('app.restaurant_id', coalesce(p_restaurant_id::text, ''), coalesce(p_local, true));
    RETURN p_restaurant_id;
END
""",
    security_definer=True,
)

SET_UPDATED_AT = Function(
    signature="public.set_updated_at()",
    header="public.set_updated_at() RETURNS trigger LANGUAGE plpgsql",
    body="""
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
""",
    grant_to=(),
)

# SECURITY DEFINER so the restaurant's timezone is readable whatever the caller's tenant context.
SET_BOOKING_INSTANTS = Function(
    signature="public.set_booking_instants()",
    header=(
        "public.set_booking_instants() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
        "SET search_path = public, pg_temp"
    ),
    body="""
DECLARE
    v_tz text;
BEGIN
    SELECT nullif(btrim(r.timezone), '') INTO v_tz FROM public.restaurants r WHERE r.id = NEW.restaurant_id;
    v_tz := coalesce(v_tz, 'Europe/London');
    IF NEW.booking_date IS NULL OR NEW.start_time IS NULL THEN
        RETURN NEW;
    END IF;
    NEW.start_at := (NEW.booking_date + NEW.start_time) AT TIME ZONE v_tz;
    IF NEW.end_time IS NOT NULL THEN
        -- an end time at or before the start belongs to the next day (service past midnight)
        NEW.end_at := (NEW.booking_date + NEW.end_time
                       + CASE WHEN NEW.end_time <= NEW.start_time THEN interval '1 day' ELSE interval '0' END)
                      AT TIME ZONE v_tz;
    END IF;
    RETURN NEW;
END
""",
    security_definer=True,
    grant_to=(),
)

# Order matters: require_restaurant_context() calls current_restaurant_id().
BASE_FUNCTIONS: list[Function] = [
    SET_UPDATED_AT,
    CURRENT_RESTAURANT_ID,
    REQUIRE_RESTAURANT_CONTEXT,
    SET_RESTAURANT_CONTEXT,
    SET_BOOKING_INSTANTS,
]

# Greenfield needs it for bookings_set_instants; on an adopted database the booking domain owns it (docs/schema.md §3.6).
BOOKING_DOMAIN_FUNCTIONS = (SET_BOOKING_INSTANTS,)

LEGACY_SET_RESTAURANT_CONTEXT = "public.set_restaurant_context(uuid)"


def drop_legacy_set_restaurant_context(revision: str) -> str:
    """The original 1-argument overload would make ``set_restaurant_context(x)`` ambiguous; save and drop it."""
    sig = LEGACY_SET_RESTAURANT_CONTEXT
    return do_block(
        f"""IF to_regprocedure({lit(sig)}) IS NOT NULL THEN
    {ledger_insert(revision, 'function', sig, 'replaced', f'pg_get_functiondef(to_regprocedure({lit(sig)}))')}
    EXECUTE {dollar(f'DROP FUNCTION {sig}', 'ddl')};
END IF;"""
    )


# --------------------------------------------------------------------------------------------------
# policies (docs/schema.md §4.2 item 4, docs/strategic-config.md §4.3)
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    name: str
    spec: str  # what follows CREATE POLICY <name> ON <table>
    staff: bool = False  # an `authenticated` policy: only where auth.uid() exists (Supabase)


HAS_AUTH_UID = "to_regprocedure('auth.uid()') IS NOT NULL"
TENANT = "public.require_restaurant_context()"
_MEMBER_OF = "SELECT m.restaurant_id FROM public.restaurant_memberships m WHERE m.user_id = auth.uid()"
_ADMIN_OF = _MEMBER_OF + " AND m.role = ANY (ARRAY['owner'::text, 'manager'::text])"


def _tenant_all(label: str, condition: str) -> Policy:
    return Policy(
        f"Tenant service role can manage {label}",
        f"FOR ALL TO {SERVICE_ROLE} USING ({condition}) WITH CHECK ({condition})",
    )


def _tenant_read(label: str, condition: str) -> Policy:
    return Policy(f"Tenant service role can read {label}", f"FOR SELECT TO {SERVICE_ROLE} USING ({condition})")


def _staff_read(label: str, column: str = "restaurant_id") -> Policy:
    return Policy(
        f"Staff can view {label}", f"FOR SELECT TO authenticated USING ({column} IN ({_MEMBER_OF}))", staff=True
    )


def _own(table: str) -> str:
    return f"{table}.restaurant_id = {TENANT}"


def _via(table: str, column: str, parent: str) -> str:
    return f"EXISTS (SELECT 1 FROM public.{parent} p WHERE p.id = {table}.{column} AND p.restaurant_id = {TENANT})"


POLICIES: dict[str, list[Policy]] = {
    "restaurants": [
        _tenant_read("restaurants", "restaurants.id = public.current_restaurant_id()"),
        _staff_read("restaurants", "id"),
    ],
    "restaurant_memberships": [
        # Membership is checked before any tenant context exists (authorisation step), so not tenant-scoped.
        Policy("Service role can read memberships", f"FOR SELECT TO {SERVICE_ROLE} USING (true)"),
        Policy("Staff can view own memberships", "FOR SELECT TO authenticated USING (user_id = auth.uid())",
               staff=True),
    ],
    "zones": [_tenant_all("zones", _own("zones")), _staff_read("zones")],
    "table_inventory": [_tenant_all("table inventory", _own("table_inventory")), _staff_read("table inventory")],
    "table_adjacencies": [_tenant_all("table adjacencies", _via("table_adjacencies", "table_a", "table_inventory"))],
    "restaurant_service_periods": [
        _tenant_all("service periods", _own("restaurant_service_periods")), _staff_read("service periods"),
    ],
    "restaurant_operating_hours": [
        _tenant_all("operating hours", _own("restaurant_operating_hours")), _staff_read("operating hours"),
    ],
    "bookings": [_tenant_all("bookings", _own("bookings")), _staff_read("bookings")],
    "booking_slots": [_tenant_all("booking slots", _own("booking_slots")), _staff_read("booking slots")],
    "allocations": [_tenant_all("allocations", _own("allocations")), _staff_read("allocations")],
    "booking_table_assignments": [
        _tenant_all("booking table assignments", _via("booking_table_assignments", "booking_id", "bookings")),
    ],
    "table_holds": [_tenant_all("table holds", _own("table_holds")), _staff_read("table holds")],
    "table_hold_members": [_tenant_all("table hold members", _via("table_hold_members", "hold_id", "table_holds"))],
    "table_hold_windows": [_tenant_all("table hold windows", _own("table_hold_windows"))],
    "booking_assignment_idempotency": [
        _tenant_all("booking assignment idempotency",
                    _via("booking_assignment_idempotency", "booking_id", "bookings")),
    ],
    "feature_flag_overrides": [
        Policy("Service role can read feature flag overrides", f"FOR SELECT TO {SERVICE_ROLE} USING (true)"),
    ],
    "demand_profiles": [_tenant_read("demand profiles", _own("demand_profiles")), _staff_read("demand profiles")],
    "table_scarcity_metrics": [
        _tenant_read("table scarcity metrics", _own("table_scarcity_metrics")), _staff_read("table scarcity metrics"),
    ],
    "restaurant_capacity_rules": [
        _tenant_all("capacity rules", _own("restaurant_capacity_rules")), _staff_read("capacity rules"),
    ],
    "strategic_configs": [
        # service_role reads its restaurant's row and the global row, writes only its restaurant's row.
        _tenant_read("strategic configs", f"{_own('strategic_configs')} OR strategic_configs.restaurant_id IS NULL"),
        _tenant_all("strategic configs", _own("strategic_configs")),
        # docs/strategic-config.md §4.3 (replaces the original two staff policies)
        Policy(
            "Members can view strategic configs",
            f"FOR SELECT TO authenticated USING (restaurant_id IN ({_MEMBER_OF}) OR (restaurant_id IS NULL "
            "AND EXISTS (SELECT 1 FROM public.restaurant_memberships m WHERE m.user_id = auth.uid())))",
            staff=True,
        ),
        Policy("Owners and managers can insert strategic configs",
               f"FOR INSERT TO authenticated WITH CHECK (restaurant_id IN ({_ADMIN_OF}))", staff=True),
        Policy("Owners and managers can update strategic configs",
               f"FOR UPDATE TO authenticated USING (restaurant_id IN ({_ADMIN_OF})) "
               f"WITH CHECK (restaurant_id IN ({_ADMIN_OF}))", staff=True),
        Policy("Owners and managers can delete strategic configs",
               f"FOR DELETE TO authenticated USING (restaurant_id IN ({_ADMIN_OF}))", staff=True),
    ],
    "booking_confirmation_results": [
        _tenant_all("booking confirmation results", _own("booking_confirmation_results")),
    ],
    # revision 0006: per-restaurant allocator policy
    "restaurant_allocator_policies": [
        _tenant_all("allocator policies", _own("restaurant_allocator_policies")),
    ],
}

# docs/schema.md §4.2 item 6: the original's permissive policies; one leftover `USING (true)` would void the tenant policies.
DROPPED_POLICIES: dict[str, list[str]] = {
    "allocations": ["Service role can manage allocations"],
    "zones": ["Service role can manage zones"],
    "table_inventory": ["Service role can manage table inventory"],
    "table_adjacencies": ["Service role can manage adjacencies"],
    "table_holds": ["Service role can manage holds"],
    "table_hold_members": ["Service role can manage table hold members"],
    "booking_table_assignments": ["Service role can manage table assignments"],
    "booking_slots": ["Service role can manage booking slots"],
    "restaurant_service_periods": ["Service role can manage service periods"],
    "restaurant_operating_hours": ["Service role can manage operating hours"],
    "restaurant_capacity_rules": ["Service role can manage capacity rules"],
    # docs/strategic-config.md §4.3: global rows writable by any signed-in user; names the role `ops`.
    "strategic_configs": ["Users can view strategic configs for their restaurants", "Ops managers can manage strategic configs"],
}

DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
# Shared with the booking domain: their original policies are left in place (docs/schema.md §4.2 item 6).
CO_OWNED_TABLES = frozenset({"restaurants", "restaurant_memberships", "bookings"})


def service_privileges(table: str) -> tuple[str, ...]:
    return ("SELECT",) if table in READ_ONLY_TABLES else DML


def table_security_sql(revision: str, table: str) -> str:
    """RLS, policies, grants and greenfield ownership for one table; nothing runs if the table is absent."""
    parts = [ensure_rls(table)]
    parts += [drop_policy(table, name) for name in DROPPED_POLICIES.get(table, [])]
    if table not in CO_OWNED_TABLES:
        # any other permissive `USING (true)` policy, whatever its name (co-owned tables: doctor warns)
        own = [pol.name for pol in POLICIES[table]]
        parts.append(drop_open_policies(revision, table, SERVICE_ROLE, keep=own))
    for pol in POLICIES[table]:
        parts.append(ensure_policy(revision, table, pol.name, pol.spec, only_if=HAS_AUTH_UID if pol.staff else None))
    parts.append(ensure_grants(table, SERVICE_ROLE, service_privileges(table)))
    parts.append(revoke_all(table, "anon"))
    parts.append(ensure_owner_greenfield(table, OWNER_ROLE))
    return "\n".join(parts)


def default_privileges_sql() -> str:
    """Future tables created by capacity_owner: DML for service_role (guarded by pg_default_acl)."""
    have = f"""EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a
              WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = {lit(OWNER_ROLE)})
                AND d.defaclnamespace = 'public'::regnamespace AND d.defaclobjtype = 'r'
                AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = {lit(SERVICE_ROLE)})
                AND a.privilege_type = %s)"""
    missing = " OR ".join(f"NOT {have % lit(p)}" for p in DML)
    stmt = (
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public "
        f"GRANT {', '.join(DML)} ON TABLES TO {SERVICE_ROLE}"
    )
    return do_block(
        f"""IF {missing} THEN
    EXECUTE {dollar(stmt, 'ddl')};
END IF;"""
    )


def owner_schema_privileges_sql() -> str:
    """capacity_owner needs CREATE on schema public to be handed objects there (ALTER … OWNER TO checks it
    for non-superusers); PostgreSQL 15+ grants CREATE on public to the database owner only."""
    stmt = f"GRANT CREATE ON SCHEMA public TO {OWNER_ROLE}"
    return do_block(
        f"""IF NOT has_schema_privilege({lit(OWNER_ROLE)}, 'public', 'CREATE') THEN
    BEGIN
        EXECUTE {dollar(stmt, 'ddl')};
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'capacity_missing_schema_privilege',
            DETAIL = format('%s may not grant CREATE on schema public to {OWNER_ROLE}', current_user),
            HINT = {lit(f'an administrator must run: {stmt};')};
    END;
END IF;"""
    )


def schema_usage_sql() -> str:
    return do_block(
        f"""IF NOT has_schema_privilege({lit(SERVICE_ROLE)}, 'public', 'USAGE') THEN
    EXECUTE 'GRANT USAGE ON SCHEMA public TO {SERVICE_ROLE}';
END IF;"""
    )


__all__ = [
    "BASE_FUNCTIONS",
    "POLICIES",
    "ROLES",
    "default_privileges_sql",
    "drop_legacy_set_restaurant_context",
    "owner_schema_privileges_sql",
    "roles_sql",
    "schema_usage_sql",
    "table_security_sql",
]
