"""The declarative target shape of the capacity schema (docs/schema.md §2), shared by every revision.

How items are tagged with the revision that creates them:

- ``TABLES``: every table of docs/schema.md §2 in its *final* shape (all columns, including those later revisions add).
- ``REVISION_COLUMNS[revision][table]``: the columns that revision creates/adds. A table listed under a
  revision whose list is its full column set is created by that revision; the other revisions only add
  columns to it.
- ``CONSTRAINTS[revision]`` / ``INDEXES[revision]``: the constraints and indexes each revision ensures.
- ``GREENFIELD_ONLY``: constraint/index names created in greenfield but never added to an adopted table
  (the read-only planner inputs of docs/schema.md §2.4 are "never altered on adoption").
- ``ADOPTION_SKIPS_COLUMNS[table]``: columns created in greenfield but neither checked nor added on an
  adopted table (their original types vary; the capacity domain does not depend on them).

Objects docs/schema.md §2 says greenfield does not create (the allowed_capacities FK, the booking_occasions FK, the
table_id/slot_id unique key on booking_table_assignments, the duplicate zone index, auth.users FKs,
booking_confirmation_results_hold_idx, the original audit trigger) are deliberately absent here.
"""

from __future__ import annotations

from service.schema.ddl import Column, Constraint, Index, Table

REV_BASE = "0001_base"
REV_MERGE = "0002_merge_groups"
REV_OVERLAP = "0003_overlap_confirm_cache"
REV_FUNCTIONS = "0004_capacity_functions"
REV_STRATEGIC = "0005_strategic_config_columns"
REV_ALLOCATOR = "0006_allocator_policy"

TSTZ = "timestamp with time zone"
TIME = "time without time zone"
UTC_NOW = "timezone('utc'::text, now())"

# docs/schema.md §2.1 — labels in order.
ENUMS: dict[str, list[str]] = {
    "booking_status": [
        "confirmed", "pending", "cancelled", "completed", "no_show", "pending_allocation", "checked_in",
    ],
    "table_status": ["available", "reserved", "occupied", "out_of_service"],
    "table_category": ["bar", "dining", "lounge", "patio", "private"],
    "table_seating_type": ["standard", "sofa", "booth", "high_top"],
    "table_mobility": ["movable", "fixed"],
    "area_type": ["indoor", "outdoor", "covered"],
    "capacity_override_type": ["holiday", "event", "manual", "emergency"],
}


def _id() -> Column:
    return Column("id", "uuid", not_null=True, default="gen_random_uuid()")


def _stamps(default: str = "now()") -> list[Column]:
    return [
        Column("created_at", TSTZ, not_null=True, default=default),
        Column("updated_at", TSTZ, not_null=True, default=default),
    ]


def _window_expr() -> str:
    return "tstzrange(start_at, end_at, '[)'::text)"


_TABLE_LIST: list[Table] = [
    Table("restaurants", [
        _id(),
        Column("name", "text", not_null=True),
        Column("slug", "text", not_null=True),
        Column("timezone", "text", not_null=True, default="'Europe/London'::text"),
        Column("is_active", "boolean", not_null=True, default="true"),
        *_stamps(),
    ], primary_key=("id",)),
    Table("restaurant_memberships", [
        Column("user_id", "uuid", not_null=True),
        Column("restaurant_id", "uuid", not_null=True),
        Column("role", "text", not_null=True),
        Column("created_at", TSTZ, not_null=True, default="now()"),
    ], primary_key=("user_id", "restaurant_id")),
    Table("zones", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("name", "text", not_null=True),
        Column("sort_order", "smallint", not_null=True, default="0"),
        Column("area_type", "area_type", not_null=True, default="'indoor'::area_type"),
        *_stamps(),
    ], primary_key=("id",)),
    Table("table_inventory", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("zone_id", "uuid", not_null=True),
        Column("table_number", "text", not_null=True),
        Column("capacity", "integer", not_null=True),
        Column("min_party_size", "integer", not_null=True, default="1"),
        Column("max_party_size", "integer"),
        Column("section", "text"),
        Column("category", "table_category", not_null=True),
        Column("seating_type", "table_seating_type", not_null=True, default="'standard'::table_seating_type"),
        Column("mobility", "table_mobility", not_null=True, default="'movable'::table_mobility"),
        Column("status", "table_status", not_null=True, default="'available'::table_status"),
        Column("active", "boolean", not_null=True, default="true"),
        Column("position", "jsonb"),
        Column("notes", "text"),
        *_stamps(),
    ], primary_key=("id",)),
    Table("table_adjacencies", [
        Column("table_a", "uuid", not_null=True),
        Column("table_b", "uuid", not_null=True),
        Column("created_at", TSTZ, not_null=True, default="now()"),
    ], primary_key=("table_a", "table_b")),
    Table("restaurant_service_periods", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("name", "text", not_null=True),
        Column("day_of_week", "smallint"),
        Column("start_time", TIME, not_null=True),
        Column("end_time", TIME, not_null=True),
        Column("booking_option", "text", not_null=True, default="'drinks'::text"),
        *_stamps(),
    ], primary_key=("id",)),
    Table("restaurant_operating_hours", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("day_of_week", "smallint"),
        Column("effective_date", "date"),
        Column("opens_at", TIME),
        Column("closes_at", TIME),
        Column("is_closed", "boolean", not_null=True, default="false"),
        Column("notes", "text"),
        *_stamps(),
    ], primary_key=("id",)),
    Table("bookings", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("booking_date", "date", not_null=True),
        Column("start_time", TIME, not_null=True),
        Column("end_time", TIME, not_null=True),
        Column("start_at", TSTZ),
        Column("end_at", TSTZ),
        Column("party_size", "integer", not_null=True),
        Column("status", "booking_status", not_null=True, default="'confirmed'::booking_status"),
        Column("assigned_zone_id", "uuid"),
        Column("table_id", "uuid"),
        Column("customer_id", "uuid"),
        Column("customer_name", "text", not_null=True),
        Column("customer_email", "text", not_null=True),
        Column("customer_phone", "text", not_null=True),
        Column("reference", "text", not_null=True),
        Column("booking_type", "text"),
        Column("seating_preference", "text"),
        Column("details", "jsonb"),
        Column("notes", "text"),
        Column("marketing_opt_in", "boolean", default="false"),
        Column("auth_user_id", "uuid"),
        Column("client_request_id", "text"),
        Column("loyalty_points_awarded", "integer"),
        Column("source", "text"),
        *_stamps(),
    ], primary_key=("id",)),
    Table("booking_slots", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("slot_date", "date", not_null=True),
        Column("slot_time", TIME, not_null=True),
        Column("service_period_id", "uuid"),
        Column("available_capacity", "integer", not_null=True, default="0"),
        Column("reserved_count", "integer", not_null=True, default="0"),
        Column("version", "integer", not_null=True, default="1"),
        *_stamps(),
    ], primary_key=("id",)),
    Table("allocations", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("booking_id", "uuid"),
        Column("resource_type", "text", not_null=True),
        Column("resource_id", "uuid", not_null=True),
        Column("window", "tstzrange", not_null=True),
        Column("shadow", "boolean", not_null=True, default="false"),
        Column("is_maintenance", "boolean", not_null=True, default="false"),
        Column("created_by", "uuid"),
        *_stamps(),
    ], primary_key=("id",)),
    Table("booking_table_assignments", [
        _id(),
        Column("booking_id", "uuid", not_null=True),
        Column("table_id", "uuid", not_null=True),
        Column("slot_id", "uuid"),
        Column("merge_group_id", "uuid"),
        Column("allocation_id", "uuid"),
        Column("start_at", TSTZ),
        Column("end_at", TSTZ),
        Column("assignment_window", "tstzrange", generated=_window_expr()),
        Column("assigned_at", TSTZ, not_null=True, default="now()"),
        Column("assigned_by", "uuid"),
        Column("idempotency_key", "text"),
        Column("notes", "text"),
        *_stamps(),
    ], primary_key=("id",)),
    Table("table_holds", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("booking_id", "uuid"),
        Column("zone_id", "uuid", not_null=True),
        Column("start_at", TSTZ, not_null=True),
        Column("end_at", TSTZ, not_null=True),
        Column("expires_at", TSTZ, not_null=True),
        Column("created_by", "uuid"),
        Column("metadata", "jsonb"),
        *_stamps(UTC_NOW),
    ], primary_key=("id",)),
    Table("table_hold_members", [
        _id(),
        Column("hold_id", "uuid", not_null=True),
        Column("table_id", "uuid", not_null=True),
        Column("created_at", TSTZ, not_null=True, default=UTC_NOW),
    ], primary_key=("id",)),
    Table("table_hold_windows", [
        Column("hold_id", "uuid", not_null=True),
        Column("table_id", "uuid", not_null=True),
        Column("restaurant_id", "uuid", not_null=True),
        Column("booking_id", "uuid"),
        Column("start_at", TSTZ, not_null=True),
        Column("end_at", TSTZ, not_null=True),
        Column("expires_at", TSTZ, not_null=True),
        Column("hold_window", "tstzrange", generated=_window_expr()),
    ], primary_key=("hold_id", "table_id")),
    Table("booking_assignment_idempotency", [
        Column("booking_id", "uuid", not_null=True),
        Column("idempotency_key", "text", not_null=True),
        Column("table_ids", "uuid[]", not_null=True),
        Column("assignment_window", "tstzrange", not_null=True),
        Column("merge_group_allocation_id", "uuid"),
        Column("table_set_hash", "text"),
        Column("payload_checksum", "text"),
        Column("created_at", TSTZ, not_null=True, default=UTC_NOW),
    ], primary_key=("booking_id", "idempotency_key")),
    Table("feature_flag_overrides", [
        _id(),
        Column("flag", "text", not_null=True),
        Column("environment", "text", not_null=True),
        Column("value", "boolean", not_null=True),
        Column("notes", "jsonb"),
        Column("updated_at", TSTZ, not_null=True, default="now()"),
        Column("updated_by", "uuid"),
    ], primary_key=("id",)),
    Table("demand_profiles", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("day_of_week", "smallint", not_null=True),
        Column("service_window", "text", not_null=True),
        Column("multiplier", "numeric(3,2)", not_null=True),
        *_stamps(),
        Column("start_minute", "integer"),
        Column("end_minute", "integer"),
        Column("priority", "integer", default="1"),
    ], primary_key=("id",)),
    Table("table_scarcity_metrics", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("table_type", "text", not_null=True),
        Column("scarcity_score", "numeric(5,4)", not_null=True),
        Column("computed_at", TSTZ, not_null=True, default="now()"),
    ], primary_key=("id",)),
    Table("strategic_configs", [
        _id(),
        Column("restaurant_id", "uuid"),
        Column("scarcity_weight", "numeric(8,2)", not_null=True, default="22"),
        Column("demand_multiplier_override", "numeric(8,3)"),
        Column("future_conflict_penalty", "numeric(10,2)"),
        Column("version", "bigint", not_null=True, default="1"),
        Column("updated_by", "uuid"),
        Column("created_at", TSTZ, not_null=True, default="now()"),
        Column("updated_at", TSTZ, not_null=True, default=UTC_NOW),
    ], primary_key=("id",)),
    Table("restaurant_capacity_rules", [
        _id(),
        Column("restaurant_id", "uuid", not_null=True),
        Column("service_period_id", "uuid"),
        Column("day_of_week", "smallint"),
        Column("effective_date", "date"),
        Column("max_covers", "integer"),
        Column("max_parties", "integer"),
        Column("label", "text"),
        Column("override_type", "capacity_override_type"),
        Column("notes", "text"),
        *_stamps(),
    ], primary_key=("id",), greenfield_only=True),
    Table("booking_confirmation_results", [
        Column("booking_id", "uuid", not_null=True),
        Column("idempotency_key", "text", not_null=True),
        Column("hold_id", "uuid", not_null=True),
        Column("restaurant_id", "uuid", not_null=True),
        Column("table_ids", "uuid[]", not_null=True),
        Column("assignment_window", "tstzrange", not_null=True),
        Column("actor_id", "uuid"),
        Column("metadata", "jsonb", not_null=True, default="'{}'::jsonb"),
        Column("created_at", TSTZ, not_null=True, default=UTC_NOW),
    ], primary_key=("booking_id", "idempotency_key")),
    Table("restaurant_allocator_policies", [
        Column("restaurant_id", "uuid", not_null=True),
        # NULL: the FEATURE_ALLOCATOR_ADJACENCY_MODE env value applies
        Column("adjacency_mode", "text"),
        Column("overrun_policy", "text", not_null=True, default="'skip'::text"),
        Column("respect_booking_end", "boolean", not_null=True, default="true"),
        Column("buffer_pre_minutes", "integer", not_null=True, default="0"),
        Column("buffer_post_minutes", "integer", not_null=True, default="5"),
        # NULL: the original's lunch/dinner bands; else {"<service key>": {"bands": [[max_party, minutes], …],
        # "larger": minutes}, …}
        Column("turn_bands", "jsonb"),
        Column("version", "bigint", not_null=True, default="1"),
        Column("updated_by", "uuid"),
        Column("created_at", TSTZ, not_null=True, default="now()"),
        Column("updated_at", TSTZ, not_null=True, default="now()"),
    ], primary_key=("restaurant_id",)),
]

TABLES: dict[str, Table] = {t.name: t for t in _TABLE_LIST}

# docs/schema.md §5.3 item 6: FK order of the tables revision 0001 creates (downgrade drops them in reverse).
BASE_TABLE_ORDER: list[str] = [
    "restaurants", "restaurant_memberships", "zones", "table_inventory", "table_adjacencies",
    "restaurant_service_periods", "restaurant_operating_hours", "bookings", "booking_slots", "allocations",
    "booking_table_assignments", "table_holds", "table_hold_members", "table_hold_windows",
    "booking_assignment_idempotency", "feature_flag_overrides", "demand_profiles", "table_scarcity_metrics",
    "strategic_configs", "restaurant_capacity_rules",
]

# Co-owned / read-only tables (docs/schema.md §4.2 item 5): service_role gets SELECT only.
READ_ONLY_TABLES: frozenset[str] = frozenset({
    "restaurants", "restaurant_memberships", "feature_flag_overrides", "demand_profiles", "table_scarcity_metrics",
})

# docs/schema.md §2.4: created minimal in greenfield, never altered on adoption.
ADOPTED_AS_FOUND: frozenset[str] = frozenset({"feature_flag_overrides", "demand_profiles", "table_scarcity_metrics"})

_LATER_COLUMNS: dict[str, dict[str, list[str]]] = {
    REV_MERGE: {
        "booking_table_assignments": ["merge_group_id", "allocation_id", "assignment_window"],
        "bookings": ["assigned_zone_id"],
    },
    REV_OVERLAP: {"booking_confirmation_results": [c.name for c in TABLES["booking_confirmation_results"].columns]},
    REV_STRATEGIC: {
        "strategic_configs": ["scarcity_weight", "demand_multiplier_override", "future_conflict_penalty", "version"],
    },
    REV_ALLOCATOR: {
        "restaurant_allocator_policies": [c.name for c in TABLES["restaurant_allocator_policies"].columns],
    },
}


def _base_columns() -> dict[str, list[str]]:
    later: dict[str, set[str]] = {}
    for per_table in _LATER_COLUMNS.values():
        for table, cols in per_table.items():
            later.setdefault(table, set()).update(cols)
    return {
        name: [c.name for c in TABLES[name].columns if c.name not in later.get(name, set())]
        for name in BASE_TABLE_ORDER
    }


REVISION_COLUMNS: dict[str, dict[str, list[str]]] = {REV_BASE: _base_columns(), **_LATER_COLUMNS}

# Columns created in greenfield only (see module docstring).
ADOPTION_SKIPS_COLUMNS: dict[str, frozenset[str]] = {
    "bookings": frozenset({
        "customer_id", "customer_name", "customer_email", "customer_phone", "reference", "booking_type",
        "seating_preference", "details", "notes", "marketing_opt_in", "auth_user_id", "client_request_id",
        "loyalty_points_awarded", "source",
    }),
    **{t: frozenset(c.name for c in TABLES[t].columns) for t in ADOPTED_AS_FOUND},
}


def adoption_columns(revision: str, table: str) -> list[str]:
    """The columns ``revision`` checks/adds on an adopted ``table``."""
    skip = ADOPTION_SKIPS_COLUMNS.get(table, frozenset())
    return [c for c in REVISION_COLUMNS[revision][table] if c not in skip]


def _fk(table: str, column: str, target: str, action: str, name: str | None = None) -> Constraint:
    on_delete = f" ON DELETE {action}" if action else ""
    return Constraint(
        table, name or f"{table}_{column}_fkey",
        f"FOREIGN KEY ({column}) REFERENCES public.{target}(id){on_delete}",
    )


def _check(table: str, name: str, expr: str) -> Constraint:
    return Constraint(table, name, f"CHECK ({expr})")


def _unique(table: str, name: str, cols: str) -> Constraint:
    return Constraint(table, name, f"UNIQUE ({cols})")


CONSTRAINTS: dict[str, list[Constraint]] = {
    REV_BASE: [
        # restaurants
        _unique("restaurants", "restaurants_slug_key", "slug"),
        _check("restaurants", "restaurants_slug_check", "slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'::text"),
        _check("restaurants", "restaurants_timezone_not_blank", "btrim(timezone) <> ''::text"),
        # restaurant_memberships
        _fk("restaurant_memberships", "restaurant_id", "restaurants", "CASCADE"),
        _check("restaurant_memberships", "restaurant_memberships_role_check",
               "role = ANY (ARRAY['owner'::text, 'manager'::text, 'host'::text, 'server'::text])"),
        # zones
        _fk("zones", "restaurant_id", "restaurants", "CASCADE"),
        _check("zones", "zones_name_not_blank", "char_length(btrim(name)) > 0"),
        # table_inventory
        _fk("table_inventory", "restaurant_id", "restaurants", "CASCADE"),
        _fk("table_inventory", "zone_id", "zones", "RESTRICT"),
        _unique("table_inventory", "table_inventory_restaurant_id_table_number_key", "restaurant_id, table_number"),
        _check("table_inventory", "table_inventory_capacity_check", "capacity > 0"),
        _check("table_inventory", "table_inventory_min_party_size_check", "min_party_size > 0"),
        _check("table_inventory", "table_inventory_max_party_size_check",
               "max_party_size IS NULL OR max_party_size >= min_party_size"),
        # table_adjacencies
        _fk("table_adjacencies", "table_a", "table_inventory", "CASCADE"),
        _fk("table_adjacencies", "table_b", "table_inventory", "CASCADE"),
        _check("table_adjacencies", "table_adjacencies_not_equal", "table_a <> table_b"),
        # service periods / operating hours
        _fk("restaurant_service_periods", "restaurant_id", "restaurants", "CASCADE"),
        _check("restaurant_service_periods", "restaurant_service_periods_time_order", "start_time < end_time"),
        _fk("restaurant_operating_hours", "restaurant_id", "restaurants", "CASCADE"),
        _check("restaurant_operating_hours", "restaurant_operating_hours_scope",
               "day_of_week IS NOT NULL OR effective_date IS NOT NULL"),
        _check("restaurant_operating_hours", "restaurant_operating_hours_time_order",
               "is_closed OR (opens_at IS NOT NULL AND closes_at IS NOT NULL AND opens_at < closes_at)"),
        # bookings
        _fk("bookings", "restaurant_id", "restaurants", "CASCADE"),
        _fk("bookings", "table_id", "table_inventory", "SET NULL"),
        _check("bookings", "bookings_party_size_check", "party_size > 0"),
        _check("bookings", "chk_time_order", "start_at < end_at"),
        # booking_slots
        _fk("booking_slots", "restaurant_id", "restaurants", "CASCADE"),
        _fk("booking_slots", "service_period_id", "restaurant_service_periods", "SET NULL"),
        _unique("booking_slots", "booking_slots_restaurant_slot_key", "restaurant_id, slot_date, slot_time"),
        _check("booking_slots", "booking_slots_available_capacity_check", "available_capacity >= 0"),
        _check("booking_slots", "booking_slots_reserved_count_check",
               "reserved_count >= 0 AND reserved_count <= available_capacity"),
        # allocations (the exclusion constraint and the window CHECK belong to 0003)
        _fk("allocations", "restaurant_id", "restaurants", "CASCADE"),
        _fk("allocations", "booking_id", "bookings", "CASCADE"),
        _check("allocations", "allocations_resource_type_check",
               "resource_type = ANY (ARRAY['table'::text, 'hold'::text, 'merge_group'::text])"),
        _unique("allocations", "allocations_booking_resource_key", "booking_id, resource_type, resource_id"),
        # booking_table_assignments
        _fk("booking_table_assignments", "booking_id", "bookings", "CASCADE"),
        _fk("booking_table_assignments", "table_id", "table_inventory", "RESTRICT"),
        _fk("booking_table_assignments", "slot_id", "booking_slots", "SET NULL"),
        _unique("booking_table_assignments", "booking_table_assignments_booking_table_key", "booking_id, table_id"),
        _check("booking_table_assignments", "bta_window_order",
               "start_at IS NULL OR end_at IS NULL OR start_at < end_at"),
        # holds
        _fk("table_holds", "restaurant_id", "restaurants", "CASCADE"),
        _fk("table_holds", "booking_id", "bookings", "SET NULL"),
        _fk("table_holds", "zone_id", "zones", "CASCADE"),
        _check("table_holds", "table_holds_window_check", "start_at < end_at"),
        _fk("table_hold_members", "hold_id", "table_holds", "CASCADE"),
        _fk("table_hold_members", "table_id", "table_inventory", "RESTRICT"),
        _unique("table_hold_members", "table_hold_members_hold_id_table_id_key", "hold_id, table_id"),
        _fk("table_hold_windows", "hold_id", "table_holds", "CASCADE"),
        _fk("table_hold_windows", "table_id", "table_inventory", "CASCADE"),
        Constraint("table_hold_windows", "table_hold_windows_no_overlap",
                   "EXCLUDE USING gist (table_id WITH =, hold_window WITH &&)"),
        # booking_assignment_idempotency
        _fk("booking_assignment_idempotency", "booking_id", "bookings", "CASCADE"),
        _fk("booking_assignment_idempotency", "merge_group_allocation_id", "allocations", "SET NULL",
            name="booking_assignment_idempotency_merge_group_fkey"),
        # read-only planner inputs (greenfield only)
        _fk("demand_profiles", "restaurant_id", "restaurants", "CASCADE"),
        _check("demand_profiles", "demand_profiles_day_of_week_check", "day_of_week >= 0 AND day_of_week <= 6"),
        _check("demand_profiles", "demand_profiles_multiplier_check", "multiplier >= 0.1 AND multiplier <= 10"),
        _check("demand_profiles", "demand_profiles_start_minute_check",
               "start_minute IS NULL OR (start_minute >= 0 AND start_minute <= 1439)"),
        _check("demand_profiles", "demand_profiles_end_minute_check",
               "end_minute IS NULL OR (end_minute <= 1440 AND (start_minute IS NULL OR end_minute > start_minute))"),
        _check("demand_profiles", "demand_profiles_priority_check", "priority IS NULL OR priority >= 1"),
        _fk("table_scarcity_metrics", "restaurant_id", "restaurants", "CASCADE"),
        _unique("table_scarcity_metrics", "table_scarcity_metrics_restaurant_id_table_type_key",
                "restaurant_id, table_type"),
        _check("table_scarcity_metrics", "table_scarcity_metrics_score_check",
               "scarcity_score >= 0 AND scarcity_score <= 1"),
        # restaurant_capacity_rules (greenfield-only table; constraints apply wherever it exists)
        _fk("restaurant_capacity_rules", "restaurant_id", "restaurants", "CASCADE"),
        _fk("restaurant_capacity_rules", "service_period_id", "restaurant_service_periods", "CASCADE"),
        _check("restaurant_capacity_rules", "restaurant_capacity_rules_non_negative",
               "(max_covers IS NULL OR max_covers >= 0) AND (max_parties IS NULL OR max_parties >= 0)"),
        _check("restaurant_capacity_rules", "restaurant_capacity_rules_scope",
               "service_period_id IS NOT NULL OR day_of_week IS NOT NULL OR effective_date IS NOT NULL"),
        _check("restaurant_capacity_rules", "restaurant_capacity_rules_day_of_week_check",
               "day_of_week IS NULL OR (day_of_week >= 0 AND day_of_week <= 6)"),
    ],
    REV_MERGE: [
        _fk("booking_table_assignments", "merge_group_id", "allocations", "SET NULL"),
        _fk("booking_table_assignments", "allocation_id", "allocations", "SET NULL"),
        _fk("bookings", "assigned_zone_id", "zones", "SET NULL"),
    ],
    REV_OVERLAP: [
        Constraint("allocations", "allocations_no_overlap",
                   'EXCLUDE USING gist (restaurant_id WITH =, resource_type WITH =, resource_id WITH =, "window" WITH &&) '
                   "WHERE ((NOT shadow)) DEFERRABLE INITIALLY IMMEDIATE"),
        _check("allocations", "allocations_window_valid",
               'NOT isempty("window") AND NOT lower_inf("window") AND NOT upper_inf("window")'),
        Constraint("booking_table_assignments", "no_overlapping_table_assignments",
                   "EXCLUDE USING gist (table_id WITH =, tstzrange(start_at, end_at, '[)'::text) WITH &&) "
                   "WHERE ((start_at IS NOT NULL) AND (end_at IS NOT NULL))"),
        _fk("booking_confirmation_results", "booking_id", "bookings", "CASCADE"),
        _fk("booking_confirmation_results", "restaurant_id", "restaurants", "CASCADE"),
        _unique("booking_confirmation_results", "booking_confirmation_results_hold_id_key", "hold_id"),
        _check("booking_confirmation_results", "booking_confirmation_results_table_ids_not_empty",
               "cardinality(table_ids) > 0"),
    ],
    REV_STRATEGIC: [
        _fk("strategic_configs", "restaurant_id", "restaurants", "CASCADE"),
        Constraint("strategic_configs", "strategic_configs_restaurant_id_key", "UNIQUE NULLS NOT DISTINCT (restaurant_id)"),
        _check("strategic_configs", "strategic_configs_scarcity_weight_range",
               "scarcity_weight >= 0 AND scarcity_weight <= 1000"),
        _check("strategic_configs", "strategic_configs_demand_multiplier_range",
               "demand_multiplier_override IS NULL OR (demand_multiplier_override >= 0 AND demand_multiplier_override <= 10)"),
        _check("strategic_configs", "strategic_configs_future_conflict_penalty_range",
               "future_conflict_penalty IS NULL OR (future_conflict_penalty >= 0 AND future_conflict_penalty <= 100000)"),
    ],
    REV_ALLOCATOR: [
        _fk("restaurant_allocator_policies", "restaurant_id", "restaurants", "CASCADE"),
        _check("restaurant_allocator_policies", "restaurant_allocator_policies_adjacency_mode_check",
               "adjacency_mode IS NULL OR adjacency_mode = ANY (ARRAY['connected'::text, 'pairwise'::text, "
               "'neighbors'::text])"),
        _check("restaurant_allocator_policies", "restaurant_allocator_policies_overrun_policy_check",
               "overrun_policy = ANY (ARRAY['skip'::text, 'clamp'::text, 'allow'::text])"),
        _check("restaurant_allocator_policies", "restaurant_allocator_policies_buffer_pre_range",
               "buffer_pre_minutes >= 0 AND buffer_pre_minutes <= 240"),
        _check("restaurant_allocator_policies", "restaurant_allocator_policies_buffer_post_range",
               "buffer_post_minutes >= 0 AND buffer_post_minutes <= 240"),
        _check("restaurant_allocator_policies", "restaurant_allocator_policies_turn_bands_shape",
               "turn_bands IS NULL OR jsonb_typeof(turn_bands) = 'object'::text"),
    ],
}

INDEXES: dict[str, list[Index]] = {
    REV_BASE: [
        Index("idx_memberships_user", "restaurant_memberships", "(user_id)"),
        Index("idx_memberships_restaurant", "restaurant_memberships", "(restaurant_id)"),
        Index("zones_restaurant_name_idx", "zones", "(restaurant_id, lower(name))", unique=True),
        Index("idx_table_inventory_lookup", "table_inventory", "(restaurant_id, status, capacity)"),
        Index("table_inventory_zone_idx", "table_inventory", "(zone_id)"),
        Index("idx_table_inventory_section", "table_inventory", "(restaurant_id, section)"),
        Index("table_adjacencies_table_b_idx", "table_adjacencies", "(table_b)"),
        Index("idx_restaurant_service_periods_scope", "restaurant_service_periods",
              "(restaurant_id, COALESCE((day_of_week)::integer, '-1'::integer))"),
        Index("idx_restaurant_operating_hours_scope", "restaurant_operating_hours",
              "(restaurant_id, COALESCE((day_of_week)::integer, '-1'::integer), effective_date)"),
        Index("bookings_restaurant_date_status_idx", "bookings", "(restaurant_id, booking_date, status)"),
        Index("idx_bookings_datetime", "bookings", "(restaurant_id, start_at, end_at)"),
        Index("allocations_booking_idx", "allocations", "(booking_id)"),
        Index("idx_booking_table_assignments_booking", "booking_table_assignments", "(booking_id)"),
        Index("idx_booking_table_assignments_table", "booking_table_assignments", "(table_id, assigned_at)"),
        Index("idx_booking_table_assignments_slot", "booking_table_assignments", "(slot_id)"),
        Index("table_holds_booking_idx", "table_holds", "(booking_id)"),
        Index("table_holds_expires_at_idx", "table_holds", "(expires_at)"),
        Index("table_holds_zone_start_idx", "table_holds", "(zone_id, start_at)"),
        Index("table_holds_restaurant_window_idx", "table_holds", "(restaurant_id, start_at, end_at, expires_at)"),
        Index("table_hold_members_table_idx", "table_hold_members", "(table_id)"),
        Index("table_hold_windows_table_idx", "table_hold_windows", "(table_id)"),
        Index("table_hold_windows_restaurant_idx", "table_hold_windows", "(restaurant_id)"),
        Index("booking_assignment_idempotency_booking_hash_key", "booking_assignment_idempotency",
              "(booking_id, table_set_hash) WHERE (table_set_hash IS NOT NULL)", unique=True),
        Index("booking_assignment_idempotency_created_idx", "booking_assignment_idempotency", "(created_at DESC)"),
        Index("demand_profiles_restaurant_idx", "demand_profiles", "(restaurant_id, day_of_week)"),
        Index("idx_restaurant_capacity_rules_scope", "restaurant_capacity_rules",
              "(restaurant_id, COALESCE((day_of_week)::integer, '-1'::integer), effective_date)"),
    ],
    REV_MERGE: [
        Index("booking_table_assignments_merge_group_idx", "booking_table_assignments", "(merge_group_id)"),
        Index("booking_table_assignments_allocation_idx", "booking_table_assignments", "(allocation_id)"),
        Index("bookings_assigned_zone_id_idx", "bookings", "(assigned_zone_id)"),
    ],
    REV_OVERLAP: [
        Index("booking_confirmation_results_created_idx", "booking_confirmation_results", "(created_at DESC)"),
    ],
    REV_STRATEGIC: [],
    REV_ALLOCATOR: [],
}

# Constraints and indexes on the docs/schema.md §2.4 tables: greenfield creates them, adoption never adds them.
GREENFIELD_ONLY: frozenset[str] = frozenset(
    [c.name for cons in CONSTRAINTS.values() for c in cons if c.table in ADOPTED_AS_FOUND]
    + [i.name for idxs in INDEXES.values() for i in idxs if i.table in ADOPTED_AS_FOUND]
)
