"""Revision 0001_base (docs/schema.md §5.3): greenfield, idempotence, adoption, drift refusal, RLS, downgrade."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from service.schema import migrate
from service.schema.ddl import do_block
from service.schema.released import catalog, security
from tests.support import pg
from tests.support.ddl_audit import ddl_audit

BASE = "0001_base"
BASE_TABLES = catalog.BASE_TABLE_ORDER


def _columns(url: str, table: str) -> dict[str, str]:
    rows = pg.run(
        url,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (f"public.{table}",),
    )
    return dict(rows)


def _rerun_base(url: str) -> None:
    """Make Alembic apply 0001 again on a database that already has it (the version table stays)."""
    pg.run(url, "DELETE FROM capacity_alembic_version")
    migrate.upgrade(url, BASE)


def _as_user(url: str, user: str) -> str:
    return make_url(url).set(username=user, password=None).render_as_string(hide_password=False)


# --------------------------------------------------------------------------------------------------
# greenfield
# --------------------------------------------------------------------------------------------------
def test_greenfield_creates_tables_enums_functions_and_owner(empty_db: str) -> None:
    migrate.upgrade(empty_db, BASE)

    for table, expected in catalog.REVISION_COLUMNS[BASE].items():
        cols = _columns(empty_db, table)
        assert sorted(cols) == sorted(expected), table
        for name in expected:
            assert cols[name].replace("public.", "") == catalog.TABLES[table].column(name).type, (table, name)
    # Later revisions' columns and tables are not there yet.
    assert "merge_group_id" not in _columns(empty_db, "booking_table_assignments")
    assert "assigned_zone_id" not in _columns(empty_db, "bookings")
    assert "scarcity_weight" not in _columns(empty_db, "strategic_configs")
    assert pg.run(empty_db, "SELECT to_regclass('public.booking_confirmation_results')") == [(None,)]

    for enum, labels in catalog.ENUMS.items():
        rows = pg.run(
            empty_db,
            "SELECT enumlabel FROM pg_enum WHERE enumtypid = to_regtype(%s) ORDER BY enumsortorder",
            (f"public.{enum}",),
        )
        assert [r[0] for r in rows] == labels, enum

    for fn in security.BASE_FUNCTIONS:
        rows = pg.run(
            empty_db,
            "SELECT pg_get_userbyid(proowner), obj_description(oid, 'pg_proc') FROM pg_proc "
            "WHERE oid = to_regprocedure(%s)",
            (fn.signature,),
        )
        assert rows and rows[0][0] == "capacity_owner", fn.signature
        assert rows[0][1] == fn.marker(BASE)
    assert pg.run(empty_db, "SELECT to_regprocedure('public.set_restaurant_context(uuid)')") == [(None,)]

    owners = dict(pg.run(empty_db, "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"))
    for table in BASE_TABLES:
        assert owners[table] == "capacity_owner", table
    rls = dict(pg.run(empty_db, "SELECT relname, relrowsecurity FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"))
    assert all(rls[t] for t in BASE_TABLES)

    # What greenfield must not create (docs/schema.md §2).
    cons = {r[0] for r in pg.run(empty_db, "SELECT conname FROM pg_constraint")}
    assert "booking_table_assignments_table_id_slot_id_key" not in cons
    assert "allocations_no_overlap" not in cons
    assert {"allocations_booking_resource_key", "restaurants_timezone_not_blank", "table_hold_windows_no_overlap"} <= cons
    assert pg.run(empty_db, "SELECT count(*) FROM pg_constraint WHERE NOT convalidated") == [(0,)]
    assert pg.run(empty_db, "SELECT to_regclass('public.uniq_zones_restaurant_lower_name')") == [(None,)]
    assert pg.run(empty_db, "SELECT count(*) FROM pg_trigger WHERE tgname = 'booking_table_assignments_audit'") == [(0,)]
    assert pg.run(empty_db, "SELECT extname FROM pg_extension WHERE extname = 'btree_gist'") == [("btree_gist",)]
    assert pg.run(empty_db, "SELECT action FROM capacity_schema_ledger WHERE object_kind = 'mode'") == [("greenfield",)]


def test_greenfield_bookings_get_instants_from_restaurant_timezone(empty_db: str) -> None:
    migrate.upgrade(empty_db, BASE)
    rid = pg.run(empty_db, "INSERT INTO restaurants (name, slug) VALUES ('R', 'r') RETURNING id")[0][0]
    pg.run(
        empty_db,
        "INSERT INTO bookings (restaurant_id, booking_date, start_time, end_time, party_size, customer_name, "
        "customer_email, customer_phone, reference) VALUES (%s, '2025-07-01', '18:00', '20:00', 2, 'a', 'b', 'c', 'd')",
        (rid,),
    )
    rows = pg.run(empty_db, "SELECT start_at AT TIME ZONE 'UTC', end_at AT TIME ZONE 'UTC' FROM bookings")
    assert [tuple(str(v) for v in r) for r in rows] == [("2025-07-01 17:00:00", "2025-07-01 19:00:00")]


def test_second_run_executes_no_ddl(empty_db: str) -> None:
    migrate.upgrade(empty_db, BASE)
    with ddl_audit(empty_db) as audit:
        _rerun_base(empty_db)
    assert audit.objects == []
    assert pg.run(empty_db, "SELECT version_num FROM capacity_alembic_version") == [(BASE,)]


def test_ddl_audit_sees_ddl(empty_db: str) -> None:
    """The audit helper must be able to fail: a real DDL statement is recorded."""
    with ddl_audit(empty_db) as audit:
        pg.run(empty_db, "CREATE TABLE public.audit_probe (id int)")
    assert ("CREATE TABLE", "table", "public.audit_probe") in audit.objects


def test_downgrade_greenfield_removes_tables(empty_db: str) -> None:
    migrate.upgrade(empty_db, BASE)
    migrate.downgrade(empty_db, "base")
    left = pg.run(
        empty_db,
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'S')",
    )
    assert [r[0] for r in left] == ["capacity_alembic_version"]
    assert pg.run(empty_db, "SELECT count(*) FROM pg_type WHERE typname = ANY(%s)", (list(catalog.ENUMS),)) == [(0,)]
    assert pg.run(empty_db, "SELECT to_regprocedure('public.require_restaurant_context()')") == [(None,)]
    # Roles are cluster-wide and kept.
    assert pg.run(empty_db, "SELECT count(*) FROM pg_roles WHERE rolname = 'capacity_app'") == [(1,)]
    # And the base revision applies again cleanly.
    migrate.upgrade(empty_db, BASE)
    assert "restaurants" in {r[0] for r in pg.run(empty_db, "SELECT tablename FROM pg_tables")}


# --------------------------------------------------------------------------------------------------
# adoption
# --------------------------------------------------------------------------------------------------
ORIGINAL_SCHEMA = """
CREATE TYPE table_category AS ENUM ('bar', 'dining', 'lounge', 'patio', 'private');
CREATE TYPE table_status AS ENUM ('available', 'reserved', 'occupied');  -- out_of_service missing
CREATE TYPE booking_status AS ENUM ('confirmed', 'pending', 'cancelled', 'completed', 'no_show',
                                    'pending_allocation', 'checked_in', 'waitlisted');  -- extra label
CREATE TYPE booking_type AS ENUM ('breakfast', 'lunch', 'dinner', 'drinks');
CREATE TABLE restaurants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    slug text NOT NULL,
    timezone text,
    capacity integer,
    contact_email text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE zones (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    restaurant_id uuid NOT NULL REFERENCES restaurants(id) ON DELETE CASCADE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE table_inventory (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    restaurant_id uuid NOT NULL,
    zone_id uuid NOT NULL,
    table_number text NOT NULL,
    capacity integer NOT NULL,
    min_party_size integer NOT NULL DEFAULT 1,
    category table_category NOT NULL,
    status table_status NOT NULL DEFAULT 'available',
    active boolean NOT NULL DEFAULT true,
    legacy_code varchar(20),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE bookings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    restaurant_id uuid NOT NULL,
    booking_date date NOT NULL,
    start_time time NOT NULL,
    end_time time NOT NULL,
    party_size integer NOT NULL,
    status booking_status NOT NULL DEFAULT 'confirmed',
    customer_name varchar(200) NOT NULL,
    booking_type booking_type NOT NULL DEFAULT 'dinner',
    details text,
    internal_flag boolean,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- the original's session-scoped, 1-argument tenant setter (20251107094000)
CREATE FUNCTION public.set_restaurant_context(p_restaurant_id uuid) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    PERFORM set_config('app.restaurant_id', p_restaurant_id::text, false);
    RETURN p_restaurant_id;
END
$fn$;
INSERT INTO restaurants (id, name, slug, timezone) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'A', 'a', 'Europe/Paris'),
    ('00000000-0000-0000-0000-00000000000b', 'B', 'b', '  ');
INSERT INTO zones (id, restaurant_id, name) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'Main');
INSERT INTO table_inventory (restaurant_id, zone_id, table_number, capacity, category, legacy_code) VALUES
    ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a1', 'T1', 2, 'dining', 'X1'),
    ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a1', 'T2', 4, 'bar', 'X2');
INSERT INTO bookings (restaurant_id, booking_date, start_time, end_time, party_size, customer_name, internal_flag) VALUES
    ('00000000-0000-0000-0000-00000000000a', '2025-11-20', '18:00', '20:00', 2, 'Ann', true);
"""


@pytest.fixture
def adopted_db(empty_db: str) -> str:
    pg.run(empty_db, ORIGINAL_SCHEMA)
    return empty_db


def test_adoption_adds_missing_columns_and_keeps_rows_and_extras(adopted_db: str) -> None:
    migrate.upgrade(adopted_db, BASE)

    inventory = _columns(adopted_db, "table_inventory")
    for name in ("section", "position", "notes", "max_party_size", "seating_type", "mobility"):
        assert name in inventory, name
    assert inventory["legacy_code"] == "character varying(20)"
    bookings = _columns(adopted_db, "bookings")
    for name in ("start_at", "end_at", "table_id"):
        assert name in bookings, name
    # Co-owned columns of other types are left exactly as found; none of the greenfield-only ones is added.
    assert bookings["booking_type"] == "booking_type"
    assert bookings["details"] == "text"
    assert "customer_email" not in bookings
    assert "internal_flag" in bookings

    assert pg.run(adopted_db, "SELECT legacy_code FROM table_inventory ORDER BY table_number") == [("X1",), ("X2",)]
    assert pg.run(adopted_db, "SELECT customer_name, internal_flag FROM bookings") == [("Ann", True)]
    assert pg.run(adopted_db, "SELECT slug, timezone FROM restaurants ORDER BY slug") == [
        ("a", "Europe/Paris"), ("b", "Europe/London"),
    ]
    assert pg.run(
        adopted_db, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'public.restaurants'::regclass AND attname = 'timezone'"
    ) == [(True,)]
    # Missing enum label added, extra label tolerated.
    labels = [r[0] for r in pg.run(adopted_db, "SELECT enumlabel FROM pg_enum WHERE enumtypid = 'table_status'::regtype ORDER BY enumsortorder")]
    assert labels == catalog.ENUMS["table_status"]
    assert "waitlisted" in {r[0] for r in pg.run(adopted_db, "SELECT enumlabel FROM pg_enum WHERE enumtypid = 'booking_status'::regtype")}
    # Missing constraints added and validated; missing unique key built and attached; owner kept.
    assert pg.run(adopted_db, "SELECT count(*) FROM pg_constraint WHERE NOT convalidated") == [(0,)]
    cons = {r[0] for r in pg.run(adopted_db, "SELECT conname FROM pg_constraint WHERE conrelid = 'public.table_inventory'::regclass")}
    assert {"table_inventory_zone_id_fkey", "table_inventory_restaurant_id_table_number_key", "table_inventory_capacity_check"} <= cons
    assert pg.run(adopted_db, "SELECT tableowner FROM pg_tables WHERE tablename = 'bookings'")[0][0] != "capacity_owner"
    assert pg.run(adopted_db, "SELECT count(*) FROM pg_trigger WHERE tgname = 'bookings_set_instants'") == [(0,)]
    # Adoption does not recreate the optional capacity rules table.
    assert pg.run(adopted_db, "SELECT to_regclass('public.restaurant_capacity_rules')") == [(None,)]
    assert pg.run(adopted_db, "SELECT action FROM capacity_schema_ledger WHERE object_kind = 'mode'") == [("adopted",)]
    # The 1-argument overload is gone (saved in the ledger), only the 2-argument form remains.
    assert pg.run(adopted_db, "SELECT to_regprocedure('public.set_restaurant_context(uuid)')") == [(None,)]
    assert pg.run(adopted_db, "SELECT count(*) FROM pg_proc WHERE proname = 'set_restaurant_context'") == [(1,)]
    saved = pg.run(
        adopted_db,
        "SELECT action, previous_definition FROM capacity_schema_ledger "
        "WHERE object_kind = 'function' AND object_name = 'public.set_restaurant_context(uuid)'",
    )
    assert saved[0][0] == "replaced" and "set_config('app.restaurant_id', p_restaurant_id::text, false)" in saved[0][1]

    with ddl_audit(adopted_db) as audit:
        _rerun_base(adopted_db)
    assert audit.objects == []


def test_adoption_refuses_incompatible_column_type(empty_db: str) -> None:
    pg.run(empty_db, ORIGINAL_SCHEMA.replace("party_size integer NOT NULL", "party_size text NOT NULL"))
    with pytest.raises(Exception, match="capacity_drift_column_type") as err:
        migrate.upgrade(empty_db, BASE)
    assert "bookings.party_size is text, expected integer" in str(err.value)
    assert pg.run(empty_db, "SELECT count(*) FROM bookings") == [(1,)]
    assert _columns(empty_db, "bookings")["party_size"] == "text"


def test_downgrade_refused_on_adopted_database(adopted_db: str) -> None:
    migrate.upgrade(adopted_db, BASE)
    with pytest.raises(Exception, match="0001 cannot be downgraded on an adopted database"):
        migrate.downgrade(adopted_db, "base")
    assert pg.run(adopted_db, "SELECT version_num FROM capacity_alembic_version") == [(BASE,)]
    assert pg.run(adopted_db, "SELECT count(*) FROM bookings") == [(1,)]


# --------------------------------------------------------------------------------------------------
# RLS / roles (docs/schema.md §7 cases 31, 33, 34)
# --------------------------------------------------------------------------------------------------
R = "00000000-0000-0000-0000-0000000000f1"
OTHER = "00000000-0000-0000-0000-0000000000f2"


@pytest.fixture
def tenant_db(empty_db: str) -> str:
    migrate.upgrade(empty_db, BASE)
    pg.run(
        empty_db,
        f"""INSERT INTO restaurants (id, name, slug) VALUES ('{R}', 'R', 'r'), ('{OTHER}', 'O', 'o');
        INSERT INTO allocations (restaurant_id, resource_type, resource_id, "window") VALUES
            ('{R}', 'table', gen_random_uuid(), tstzrange('2025-11-20 18:00Z', '2025-11-20 20:00Z')),
            ('{R}', 'table', gen_random_uuid(), tstzrange('2025-11-20 20:00Z', '2025-11-20 22:00Z')),
            ('{OTHER}', 'table', gen_random_uuid(), tstzrange('2025-11-20 18:00Z', '2025-11-20 20:00Z'));""",
    )
    return empty_db


def test_case_31_tenant_context_required_and_enforced(tenant_db: str) -> None:
    with psycopg.connect(_as_user(tenant_db, "capacity_app")) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Restaurant context is required"):
            conn.execute("SELECT count(*) FROM allocations").fetchall()
        conn.rollback()

        conn.execute("SELECT set_config('app.restaurant_id', %s, true)", (R,))
        rows = conn.execute("SELECT DISTINCT restaurant_id::text FROM allocations").fetchall()
        assert rows == [(R,)]
        assert conn.execute("SELECT count(*) FROM allocations").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(
                "INSERT INTO allocations (restaurant_id, resource_type, resource_id, \"window\") "
                "VALUES (%s, 'table', gen_random_uuid(), tstzrange('2025-11-21 18:00Z', '2025-11-21 20:00Z'))",
                (OTHER,),
            )
        conn.rollback()


def test_case_33_anon_has_no_privilege_on_owned_tables(tenant_db: str) -> None:
    rows = pg.run(
        tenant_db,
        "SELECT t, p FROM unnest(%s::text[]) t, unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p "
        "WHERE has_table_privilege('anon', 'public.' || t, p)",
        (BASE_TABLES,),
    )
    assert rows == []
    # service_role: DML on owned tables, SELECT only on the co-owned/read-only ones.
    assert pg.run(tenant_db, "SELECT has_table_privilege('service_role', 'public.allocations', 'DELETE')") == [(True,)]
    assert pg.run(tenant_db, "SELECT has_table_privilege('service_role', 'public.restaurants', 'UPDATE')") == [(False,)]


def test_case_34_set_restaurant_context_does_not_leak(tenant_db: str) -> None:
    with psycopg.connect(_as_user(tenant_db, "capacity_app")) as conn:
        assert conn.execute("SELECT public.set_restaurant_context(%s)", (R,)).fetchone() == (uuid.UUID(R),)
        assert conn.execute("SELECT public.current_restaurant_id()").fetchone() == (uuid.UUID(R),)
        conn.commit()
        assert conn.execute("SELECT public.current_restaurant_id()").fetchone() == (None,)
        conn.commit()
        # The explicit session form still exists for callers that want it.
        conn.execute("SELECT public.set_restaurant_context(%s, false)", (R,))
        conn.commit()
        assert conn.execute("SELECT public.current_restaurant_id()").fetchone() == (uuid.UUID(R),)


def test_invalid_context_value_is_rejected(tenant_db: str) -> None:
    with psycopg.connect(_as_user(tenant_db, "capacity_app")) as conn:
        conn.execute("SELECT set_config('app.restaurant_id', 'not-a-uuid', true)")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="Invalid restaurant context value"):
            conn.execute("SELECT public.current_restaurant_id()")


def test_missing_role_without_createrole_names_the_statement(empty_db: str) -> None:
    """The role guard refuses (and says what to run) when the migrating user may not create roles."""
    user = f"cap_nopriv_{uuid.uuid4().hex[:8]}"
    missing = f"cap_missing_{uuid.uuid4().hex[:8]}"
    pg.run(empty_db, f"CREATE ROLE {user} LOGIN NOSUPERUSER NOCREATEROLE")
    try:
        sql = do_block(security._create_role(security.Role(missing, "NOLOGIN")))
        with (
            psycopg.connect(_as_user(empty_db, user), autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="capacity_missing_role") as err,
        ):
            conn.execute(sql)
        assert err.value.diag.message_hint == f"an administrator must run: CREATE ROLE {missing} NOLOGIN;"
        assert pg.run(empty_db, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (missing,)) == [(0,)]
    finally:
        pg.run(empty_db, f"DROP ROLE IF EXISTS {user}")


def test_staff_policies_only_where_auth_uid_exists(empty_db: str, pg_admin_url: str) -> None:
    migrate.upgrade(empty_db, BASE)
    staff = "SELECT count(*) FROM pg_policies WHERE 'authenticated' = ANY(roles)"
    assert pg.run(empty_db, staff) == [(0,)]

    supabase_like = pg.create_database(pg_admin_url, "cap_auth")
    try:
        pg.run(supabase_like, "CREATE SCHEMA auth; CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS 'SELECT NULL::uuid'")
        migrate.upgrade(supabase_like, BASE)
        names = {r[0] for r in pg.run(supabase_like, "SELECT policyname FROM pg_policies WHERE 'authenticated' = ANY(roles)")}
        expected = {p.name for pols in security.POLICIES.values() for p in pols if p.staff}
        expected -= {p.name for p in security.POLICIES["booking_confirmation_results"] if p.staff}
        assert names == expected
        # strategic_configs: members read, only owners/managers write (docs/strategic-config.md §4.3).
        sc = {r[0]: r[1] for r in pg.run(supabase_like, "SELECT policyname, cmd FROM pg_policies WHERE tablename = 'strategic_configs' AND 'authenticated' = ANY(roles)")}
        assert sc == {
            "Members can view strategic configs": "SELECT",
            "Owners and managers can insert strategic configs": "INSERT",
            "Owners and managers can update strategic configs": "UPDATE",
            "Owners and managers can delete strategic configs": "DELETE",
        }
        with ddl_audit(supabase_like) as audit:
            _rerun_base(supabase_like)
        assert audit.objects == []
    finally:
        pg.drop_database(pg_admin_url, supabase_like)


def test_non_superuser_migrator_becomes_owner_member(pg_admin_url: str) -> None:
    """A CREATEROLE (not superuser) login migrates greenfield; it is made a member of capacity_owner so the
    ownership hand-over works — or, where it may not grant that role, it is told the exact statement."""
    migrator = f"cap_migrator_{uuid.uuid4().hex[:8]}"
    pg.run(pg_admin_url, f"CREATE ROLE {migrator} LOGIN CREATEROLE NOSUPERUSER")
    url = pg.create_database(pg_admin_url, "cap_nonsuper")
    try:
        pg.run(url, f"ALTER DATABASE {make_url(url).database} OWNER TO {migrator}")
        pg.run(url, "CREATE EXTENSION IF NOT EXISTS btree_gist")
        # Roles exist already (cluster-wide, created by other tests or this server's first migration).
        pg.run(pg_admin_url, "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'capacity_owner') "
               "THEN CREATE ROLE capacity_owner NOLOGIN; END IF; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$")
        version = pg.run(url, "SELECT current_setting('server_version_num')::int")[0][0]
        if version >= 160000:
            with pytest.raises(Exception, match="capacity_missing_role_grant") as err:
                migrate.upgrade(_as_user(url, migrator), BASE)
            assert f"GRANT capacity_owner TO {migrator};" in str(err.value)
            pg.run(pg_admin_url, f"GRANT capacity_owner TO {migrator}")
        migrate.upgrade(_as_user(url, migrator), BASE)
        assert pg.run(url, "SELECT pg_has_role(%s, 'capacity_owner', 'MEMBER')", (migrator,)) == [(True,)]
        assert pg.run(url, "SELECT DISTINCT tableowner FROM pg_tables WHERE tablename = ANY(%s)", (BASE_TABLES,)) == [
            ("capacity_owner",)
        ]
        with ddl_audit(url) as audit:
            pg.run(url, "DELETE FROM capacity_alembic_version")
            migrate.upgrade(_as_user(url, migrator), BASE)
        assert audit.objects == []
    finally:
        pg.drop_database(pg_admin_url, url)
        pg.run(pg_admin_url, f"REVOKE capacity_owner FROM {migrator}")
        pg.run(pg_admin_url, f"DROP OWNED BY {migrator}")
        pg.run(pg_admin_url, f"DROP ROLE {migrator}")
