"""Names of the objects and settings the doctor checks (tables the service owns or shares, roles, switches)."""

from __future__ import annotations

import re

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

UPDATED_AT_FUNCTION = re.compile(r"updated_at|timestamp|touch", re.I)
BEFORE_UPDATE = re.compile(r"\bbefore\b[^()]*\bupdate\b")

# Objects an adopted database may carry that greenfield does not create (docs/schema.md §2, §6.3 "tolerated extras").
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
