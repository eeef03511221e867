"""The database functions and triggers of revision 0004 (docs/schema.md §3.1–§3.4, §3.6).

Bodies live as readable plpgsql in ``sql/<revision>/<name>.sql``; this module pairs each with its header
(signature, RETURNS, volatility, SECURITY DEFINER, search_path) as a :class:`ddl.Function`. ``FUNCTIONS``
is in callee-before-caller order, the order 0004 creates them in (its downgrade walks it backwards).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from service.schema.ddl import (
    LEDGER,
    Function,
    do_block,
    dollar,
    ensure_constraint,
    ensure_table,
    ledger_insert,
    lit,
    prepare_index,
    regclass,
    validate,
)
from service.schema.released import catalog
from service.schema.released.security import table_security_sql

REVISION = "0004_capacity_functions"
# Bodies, one folder per revision that installs them.
SQL_DIR = Path(__file__).resolve().parent / "sql"
COMMIT_REVISION = "0007_commit_planned_assignment"

# Every security definer function pins its search path (the original set only `public`, docs/schema.md §3).
_DEFINER = "SECURITY DEFINER\nSET search_path = public, pg_temp"

ASSIGN_RETURNS = "TABLE (table_id uuid, start_at timestamp with time zone, end_at timestamp with time zone, merge_group_id uuid)"

# The overload production still carries next to the 7-argument function (docs/schema.md §3.1 "overload trap").
LEGACY_ASSIGN_5ARG = "public.assign_tables_atomic_v2(uuid, uuid[], text, boolean, uuid)"


def body(name: str, revision: str = REVISION) -> str:
    return (SQL_DIR / revision / f"{name}.sql").read_text(encoding="utf-8")


def _fn(name: str, args: str, identity: str, returns: str, *, definer: bool = True,
        volatility: str = "VOLATILE", grant: bool = True, revision: str = REVISION) -> Function:
    header = f"public.{name}({args})\nRETURNS {returns}\nLANGUAGE plpgsql\n{volatility}"
    header += f"\n{_DEFINER}" if definer else "\nSET search_path = public, pg_temp"
    return Function(
        signature=f"public.{name}({identity})",
        header=header,
        body=body(name, revision),
        security_definer=definer,
        # Trigger functions are not called by roles; firing a trigger checks no EXECUTE privilege.
        grant_to=("service_role",) if grant else (),
    )


REFRESH_TABLE_STATUS = _fn("refresh_table_status", "p_table_id uuid", "uuid", "void")
ON_ALLOCATIONS_REFRESH = _fn("on_allocations_refresh", "", "", "trigger", grant=False)
ON_BOOKING_STATUS_REFRESH = _fn("on_booking_status_refresh", "", "", "trigger", grant=False)
SYNC_TABLE_HOLD_WINDOWS = _fn("sync_table_hold_windows", "", "", "trigger", grant=False)
UPDATE_TABLE_HOLD_WINDOWS = _fn("update_table_hold_windows", "", "", "trigger", grant=False)
VALIDATE_TABLE_ADJACENCY = _fn("validate_table_adjacency", "", "", "trigger", grant=False)
GET_OR_CREATE_BOOKING_SLOT = _fn(
    "get_or_create_booking_slot",
    "p_restaurant_id uuid, p_slot_date date, p_slot_time time without time zone, p_default_capacity integer DEFAULT 999",
    "uuid, date, time without time zone, integer",
    "uuid",
)
# Not a definer (docs/schema.md §3.2): it runs inside the commit's definer context anyway.
VALIDATE_BOOKING_CAPACITY = _fn(
    "validate_booking_capacity_after_assignment", "p_booking_id uuid", "uuid", "void", definer=False
)
UPDATE_BOOKING_WITH_CAPACITY_CHECK = _fn(
    "update_booking_with_capacity_check",
    "p_booking_id uuid, p_restaurant_id uuid, p_customer_id uuid, p_booking_date date, "
    "p_start_time time without time zone, p_end_time time without time zone, p_party_size integer, "
    "p_booking_type text, p_customer_name text, p_customer_email text, p_customer_phone text, "
    "p_seating_preference text, p_notes text DEFAULT NULL, p_marketing_opt_in boolean DEFAULT false, "
    "p_auth_user_id uuid DEFAULT NULL, p_client_request_id text DEFAULT NULL, p_details jsonb DEFAULT '{}'::jsonb, "
    "p_loyalty_points_awarded integer DEFAULT 0, p_source text DEFAULT 'api'",
    "uuid, uuid, uuid, date, time without time zone, time without time zone, integer, text, text, text, text, "
    "text, text, boolean, uuid, text, jsonb, integer, text",
    "jsonb",
)
ASSIGN_TABLES_ATOMIC_V2 = _fn(
    "assign_tables_atomic_v2",
    "p_booking_id uuid, p_table_ids uuid[], p_idempotency_key text DEFAULT NULL, "
    "p_require_adjacency boolean DEFAULT false, p_assigned_by uuid DEFAULT NULL, "
    "p_start_at timestamp with time zone DEFAULT NULL, p_end_at timestamp with time zone DEFAULT NULL",
    "uuid, uuid[], text, boolean, uuid, timestamp with time zone, timestamp with time zone",
    ASSIGN_RETURNS,
)
ASSIGN_TABLES_FIRST_FIT = _fn(
    "assign_tables_first_fit",
    "p_booking_id uuid, p_table_candidates jsonb, p_idempotency_key text DEFAULT NULL, "
    "p_require_adjacency boolean DEFAULT true, p_assigned_by uuid DEFAULT NULL, "
    "p_start_at timestamp with time zone DEFAULT NULL, p_end_at timestamp with time zone DEFAULT NULL",
    "uuid, jsonb, text, boolean, uuid, timestamp with time zone, timestamp with time zone",
    ASSIGN_RETURNS,
)

# Revision 0007: the auto-assign commit of one planned booking in one round trip (tenant context, booking
# lock, status and held-tables checks, then assign_tables_atomic_v2). Not a definer: the caller's RLS applies
# to the checks; the commit itself runs in v2's definer context as before.
COMMIT_PLANNED_ASSIGNMENT = _fn(
    "commit_planned_assignment",
    "p_restaurant_id uuid, p_booking_id uuid, p_table_ids uuid[], p_idempotency_key text, "
    "p_require_adjacency boolean, p_assigned_by uuid, p_start_at timestamp with time zone, "
    "p_end_at timestamp with time zone",
    "uuid, uuid, uuid[], text, boolean, uuid, timestamp with time zone, timestamp with time zone",
    "TABLE (outcome text, booking_status text, table_id uuid)",
    definer=False,
    revision=COMMIT_REVISION,
)

# Revision 0007 too: a batch of planned bookings in one statement, each in its own subtransaction, every
# lock taken up front in the single commit's order. Not a definer, for the same reason.
COMMIT_PLANNED_ASSIGNMENTS = _fn(
    "commit_planned_assignments",
    "p_restaurant_id uuid, p_items jsonb, p_assigned_by uuid DEFAULT NULL",
    "uuid, jsonb, uuid",
    "TABLE (booking_id uuid, outcome text, booking_status text, table_id uuid, error_sqlstate text, "
    "error_message text)",
    definer=False,
    revision=COMMIT_REVISION,
)

FUNCTIONS: tuple[Function, ...] = (
    REFRESH_TABLE_STATUS,
    ON_ALLOCATIONS_REFRESH,
    ON_BOOKING_STATUS_REFRESH,
    SYNC_TABLE_HOLD_WINDOWS,
    UPDATE_TABLE_HOLD_WINDOWS,
    VALIDATE_TABLE_ADJACENCY,
    GET_OR_CREATE_BOOKING_SLOT,
    VALIDATE_BOOKING_CAPACITY,
    UPDATE_BOOKING_WITH_CAPACITY_CHECK,
    ASSIGN_TABLES_ATOMIC_V2,
    ASSIGN_TABLES_FIRST_FIT,
)


# --------------------------------------------------------------------------------------------------
# triggers (docs/schema.md §3.6) — created by 0004 because their functions are
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trigger:
    table: str
    name: str
    timing_events: str  # e.g. "AFTER INSERT OR UPDATE OR DELETE"
    function: Function

    @property
    def create_sql(self) -> str:
        fn_name = self.function.signature.split("(")[0]
        return (
            f"CREATE TRIGGER {self.name} {self.timing_events} ON public.{self.table} "
            f"FOR EACH ROW EXECUTE FUNCTION {fn_name}()"
        )


TRIGGERS: tuple[Trigger, ...] = (
    Trigger("allocations", "trg_allocations_refresh", "AFTER INSERT OR UPDATE OR DELETE", ON_ALLOCATIONS_REFRESH),
    Trigger("bookings", "trg_booking_status_refresh", "AFTER UPDATE OF status", ON_BOOKING_STATUS_REFRESH),
    # [REC] also on UPDATE: an edited edge must satisfy the same-zone rule too.
    Trigger("table_adjacencies", "table_adjacencies_validate", "BEFORE INSERT OR UPDATE", VALIDATE_TABLE_ADJACENCY),
    Trigger("table_hold_members", "table_hold_members_sync_insert", "AFTER INSERT", SYNC_TABLE_HOLD_WINDOWS),
    Trigger("table_hold_members", "table_hold_members_sync_delete", "AFTER DELETE", SYNC_TABLE_HOLD_WINDOWS),
    Trigger(
        "table_holds", "table_holds_sync_update",
        "AFTER UPDATE OF start_at, end_at, expires_at, restaurant_id, booking_id", UPDATE_TABLE_HOLD_WINDOWS,
    ),
)


def ensure_trigger_on_function(revision: str, trg: Trigger) -> str:
    """Create the trigger, or re-point one of that name that calls another function.

    A replaced trigger's ``pg_get_triggerdef`` is saved in the ledger (downgrade re-creates it); one that
    already calls our function is adopted untouched, so a second run executes no DDL.
    """
    key = f"{trg.table}.{trg.name}"
    drop = f"DROP TRIGGER {trg.name} ON public.{trg.table}"
    return do_block(
        f"""IF {regclass(trg.table)} IS NULL THEN
    RETURN;
END IF;
SELECT t.oid, t.tgfoid INTO v_oid, v_fn FROM pg_trigger t
 WHERE t.tgrelid = {regclass(trg.table)} AND t.tgname = {lit(trg.name)} AND NOT t.tgisinternal;
IF v_oid IS NOT NULL AND v_fn = to_regprocedure({lit(trg.function.signature)})::oid THEN
    {ledger_insert(revision, 'trigger', key, 'adopted')}
    RETURN;
END IF;
IF v_oid IS NOT NULL THEN
    {ledger_insert(revision, 'trigger', key, 'replaced', 'pg_get_triggerdef(v_oid)')}
    EXECUTE {dollar(drop, 'ddl')};
ELSE
    {ledger_insert(revision, 'trigger', key, 'created')}
END IF;
EXECUTE {dollar(trg.create_sql, 'ddl')};""",
        declare="    v_oid oid;\n    v_fn oid;",
    )


def restore_triggers(revision: str, triggers: tuple[Trigger, ...]) -> str:
    """Downgrade: drop the triggers this revision created or re-pointed; put re-pointed ones back."""
    stmts = []
    for trg in triggers:
        key = f"{trg.table}.{trg.name}"
        stmts.append(
            f"""v_action := NULL;
SELECT action, previous_definition INTO v_action, v_prev FROM {LEDGER}
 WHERE revision = {lit(revision)} AND object_kind = 'trigger' AND object_name = {lit(key)};
IF v_action IN ('created', 'replaced') AND {regclass(trg.table)} IS NOT NULL THEN
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = {regclass(trg.table)} AND tgname = {lit(trg.name)}
               AND NOT tgisinternal) THEN
        EXECUTE {dollar(f'DROP TRIGGER {trg.name} ON public.{trg.table}', 'ddl')};
    END IF;
    IF v_action = 'replaced' AND v_prev IS NOT NULL THEN
        EXECUTE v_prev;
    END IF;
END IF;"""
        )
    return do_block("\n".join(stmts), declare="    v_action text;\n    v_prev text;")


# --------------------------------------------------------------------------------------------------
# the 5-argument overload
# --------------------------------------------------------------------------------------------------
def drop_legacy_overload(revision: str) -> str:
    """Save, then drop, the 5-argument overload: with it present a 5-argument call is ambiguous (42725).

    Recorded as ``replaced`` with its definition, so ``restore_functions`` re-creates it on downgrade.
    """
    return do_block(
        f"""v_oid := to_regprocedure({lit(LEGACY_ASSIGN_5ARG)});
IF v_oid IS NULL THEN
    RETURN;
END IF;
{ledger_insert(revision, 'function', LEGACY_ASSIGN_5ARG, 'replaced', 'pg_get_functiondef(v_oid)')}
EXECUTE {dollar(f'DROP FUNCTION {LEGACY_ASSIGN_5ARG}', 'ddl')};""",
        declare="    v_oid regprocedure;",
    )


# --------------------------------------------------------------------------------------------------
# prerequisites (docs/schema.md §5.6 step 1)
# --------------------------------------------------------------------------------------------------
_PREREQ_COLUMNS = (
    ("booking_table_assignments", "merge_group_id"),
    ("booking_table_assignments", "allocation_id"),
    ("bookings", "assigned_zone_id"),
)
_PREREQ_CONSTRAINTS = (
    ("allocations", "allocations_booking_resource_key"),
    ("booking_table_assignments", "booking_table_assignments_booking_table_key"),
)


def assert_prerequisites() -> str:
    """Stop with a drift report when something 0001–0003 guarantee is missing (should never happen)."""
    checks = []
    for table, column in _PREREQ_COLUMNS:
        checks.append(
            f"""IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {regclass(table)}
               AND attname = {lit(column)} AND attnum > 0 AND NOT attisdropped) THEN
    v_missing := array_append(v_missing, {lit(f'column {table}.{column}')});
END IF;"""
        )
    checks.append(
        f"""IF {regclass('table_hold_windows')} IS NULL THEN
    v_missing := array_append(v_missing, 'table table_hold_windows');
END IF;"""
    )
    for table, name in _PREREQ_CONSTRAINTS:
        checks.append(
            f"""IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {regclass(table)} AND conname = {lit(name)}) THEN
    v_missing := array_append(v_missing, {lit(f'constraint {table}.{name}')});
END IF;"""
        )
    checks.append(
        """IF cardinality(v_missing) > 0 THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_drift_prerequisite_missing',
        DETAIL = 'missing: ' || array_to_string(v_missing, ', '),
        HINT = 'revisions 0001-0003 guarantee these objects; run `capacity-service doctor` and re-run the migration';
END IF;"""
    )
    return do_block("\n".join(checks), declare="    v_missing text[] := ARRAY[]::text[];")


# --------------------------------------------------------------------------------------------------
# operator command: capacity-service ensure-capacity-rules (docs/schema.md §2.3)
# --------------------------------------------------------------------------------------------------
ENSURE_CAPACITY_RULES_REVISION = "ensure-capacity-rules"


def ensure_capacity_rules_sql() -> str:
    """Create ``restaurant_capacity_rules`` in its docs/schema.md §2.3 shape if absent (adopted databases included).

    Upgrades never recreate it on adoption (its absence means "unbounded"); this is the explicit operator
    action. Everything is guarded, so running it on a database that has the table changes nothing.
    """
    table = replace(catalog.TABLES["restaurant_capacity_rules"], greenfield_only=False)
    chunks = [ensure_table(ENSURE_CAPACITY_RULES_REVISION, table)]
    constraints = [c for cs in catalog.CONSTRAINTS.values() for c in cs if c.table == table.name]
    chunks.extend(ensure_constraint(ENSURE_CAPACITY_RULES_REVISION, con) for con in constraints)
    chunks.append(validate(constraints))
    for indexes in catalog.INDEXES.values():
        for idx in indexes:
            if idx.table == table.name:
                unique = "UNIQUE " if idx.unique else ""
                chunks.append(prepare_index(ENSURE_CAPACITY_RULES_REVISION, idx))
                chunks.append(f"CREATE {unique}INDEX IF NOT EXISTS {idx.name} ON public.{idx.table} {idx.definition};")
    chunks.append(_capacity_rules_access())
    return "\n".join(chunks)


def _capacity_rules_access() -> str:
    """updated_at trigger, RLS/policies/grants as revision 0001 gives them, and the owner of its siblings."""
    trigger = (
        "CREATE TRIGGER restaurant_capacity_rules_updated_at BEFORE UPDATE ON public.restaurant_capacity_rules "
        "FOR EACH ROW EXECUTE FUNCTION public.set_updated_at()"
    )
    access = do_block(
        f"""IF {regclass('restaurant_capacity_rules')} IS NULL THEN
    RETURN;
END IF;
IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = {regclass('restaurant_capacity_rules')}
               AND tgname = 'restaurant_capacity_rules_updated_at')
   AND to_regprocedure('public.set_updated_at()') IS NOT NULL THEN
    EXECUTE {dollar(trigger, 'ddl')};
END IF;
-- Same owner as the rest of the capacity tables (capacity_owner in greenfield): the security definer
-- functions run as that owner and must see every rule row (RLS does not apply to a table's owner).
SELECT pg_get_userbyid(relowner) INTO v_owner FROM pg_class WHERE oid = {regclass('allocations')};
IF v_owner IS NOT NULL
   AND (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = {regclass('restaurant_capacity_rules')}) <> v_owner THEN
    EXECUTE format('ALTER TABLE public.restaurant_capacity_rules OWNER TO %I', v_owner);
END IF;""",
        declare="    v_owner name;",
    )
    return "\n".join([
        table_security_sql(ENSURE_CAPACITY_RULES_REVISION, "restaurant_capacity_rules"),
        access,
    ])
