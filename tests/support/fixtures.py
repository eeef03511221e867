"""SQL builders for the drift fixtures of docs/schema.md §6.2: each turns a database at head into the
adopted/drifted state a test needs. Builders return SQL text for ``tests.support.pg.run``."""

from __future__ import annotations

import json as _json

# --------------------------------------------------------------------------------------------------
# strategic_configs (fixtures B, B2, B3, B4; revision 0005)
# --------------------------------------------------------------------------------------------------
# Restaurants the strategic_configs fixtures refer to: R1..R4 of fixture B, more for the variants.
SC_RESTAURANTS = {f"R{n}": f"00000000-0000-4000-8000-0000000000{n:02d}" for n in range(1, 21)}
SC_GLOBAL_ID = "00000000-0000-4000-9000-0000000000ff"

# Fixture B rows: (row id, restaurant key or None for the global row G, weights JSON or None).
FIXTURE_B_ROWS: list[tuple[str, str | None, object]] = [
    ("00000000-0000-4000-9000-000000000001", "R1", {"scarcity_weight": 30}),
    ("00000000-0000-4000-9000-000000000002", "R2", {"scarcityWeight": "12.5", "future_conflict_penalty": 400}),
    ("00000000-0000-4000-9000-000000000003", "R3", {"scarcity_weight": "high"}),
    ("00000000-0000-4000-9000-000000000004", "R4", None),
    (SC_GLOBAL_ID, None, {"demand_multiplier_override": 1.25}),
]


def _sql_text(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def strategic_configs_forget_history_sql() -> str:
    """Make the next ``upgrade head`` see a never-migrated, adopted database (docs/schema.md §6.2, last paragraph)."""
    return "DROP TABLE IF EXISTS public.capacity_alembic_version;\nDROP TABLE IF EXISTS public.capacity_schema_ledger;"


def strategic_configs_restaurants_sql(keys: list[str]) -> str:
    values = ",\n  ".join(
        f"('{SC_RESTAURANTS[k]}', 'Restaurant {k}', 'restaurant-{k.lower()}')" for k in keys
    )
    return f"INSERT INTO public.restaurants (id, name, slug) VALUES\n  {values}\nON CONFLICT (id) DO NOTHING;"


def strategic_configs_legacy_sql(
    rows: list[tuple[str, str | None, object]] | None = None,
    *,
    weights_type: str = "jsonb",
    numeric: dict[str, dict[str, object]] | None = None,
    scope_unique: str | None = "constraint",
    generic_trigger: bool = False,
    forget_history: bool = True,
) -> str:
    """Fixture B and its variants, applied to a database at head.

    Drops ``strategic_configs`` and re-creates the legacy shape (id, restaurant_id, weights, updated_at)
    with ``weights`` of type ``weights_type`` (jsonb, json or text) and the given rows. A weights value
    that is a ``str`` is stored verbatim (for invalid-JSON text rows); anything else is JSON-encoded.
    ``numeric``: row id → {column: value}; when given, the three weight columns already exist (nullable,
    no default, fixture B2's half-migrated table). ``scope_unique``: ``"constraint"`` = the legacy
    ``strategic_configs_restaurant_id_key UNIQUE (restaurant_id)``, ``"partial_index"`` = a partial unique
    index of the same purpose, ``None`` = no uniqueness at all (needed for B4's duplicates).
    ``generic_trigger``: a BEFORE UPDATE trigger calling ``set_updated_at()``, as 0001 puts on other tables.
    """
    rows = FIXTURE_B_ROWS if rows is None else rows
    keys = sorted({k for _, k, _ in rows if k is not None}, key=lambda k: int(k[1:]))
    numeric_cols = ""
    if numeric is not None:
        numeric_cols = (
            ",\n    scarcity_weight numeric(8,2),\n    demand_multiplier_override numeric(8,3),"
            "\n    future_conflict_penalty numeric(10,2)"
        )
    unique = ""
    if scope_unique == "constraint":
        unique = ",\n    CONSTRAINT strategic_configs_restaurant_id_key UNIQUE (restaurant_id)"
    parts = [
        "DROP TABLE IF EXISTS public.strategic_configs;",
        strategic_configs_restaurants_sql(keys) if keys else "",
        f"""CREATE TABLE public.strategic_configs (
    id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    restaurant_id uuid CONSTRAINT strategic_configs_restaurant_id_fkey REFERENCES public.restaurants(id) ON DELETE CASCADE,
    weights {weights_type},
    updated_at timestamptz NOT NULL DEFAULT now(){numeric_cols}{unique}
);""",
    ]
    if scope_unique == "partial_index":
        parts.append(
            "CREATE UNIQUE INDEX strategic_configs_restaurant_unique ON public.strategic_configs (restaurant_id) "
            "WHERE restaurant_id IS NOT NULL;"
        )
    if generic_trigger:
        parts.append(
            "CREATE TRIGGER strategic_configs_updated_at BEFORE UPDATE ON public.strategic_configs "
            "FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();"
        )
    for row_id, key, weights in rows:
        restaurant = _sql_text(SC_RESTAURANTS[key]) if key is not None else "NULL"
        raw = weights if isinstance(weights, str) or weights is None else _json.dumps(weights)
        cols, vals = ["id", "restaurant_id", "weights"], [f"'{row_id}'", restaurant, _sql_text(raw)]
        for col, value in ((numeric or {}).get(row_id) or {}).items():
            cols.append(col)
            vals.append(str(value))
        parts.append(f"INSERT INTO public.strategic_configs ({', '.join(cols)}) VALUES ({', '.join(vals)});")
    if forget_history:
        parts.append(strategic_configs_forget_history_sql())
    return "\n".join(p for p in parts if p)


def strategic_configs_absent_sql() -> str:
    """Fixture B3: the table does not exist at all (before 0005 the numeric shape was never migrated)."""
    return "DROP TABLE IF EXISTS public.strategic_configs;\n" + strategic_configs_forget_history_sql()


# --------------------------------------------------------------------------------------------------
# merge groups and overlaps (fixtures A, A2, D, D2, D3, B4, F1, F2; revisions 0002/0003 and pre-flight)
# --------------------------------------------------------------------------------------------------
FORGET_HISTORY_SQL = (
    "DROP TABLE IF EXISTS public.capacity_alembic_version;\nDROP TABLE IF EXISTS public.capacity_schema_ledger;"
)

# docs/schema.md §2.2 "shapes seen in the wild"
SHAPE_A = (
    "allocations_resource_window_excl",
    'EXCLUDE USING gist (resource_type WITH =, resource_id WITH =, "window" WITH &&) DEFERRABLE INITIALLY DEFERRED',
)
SHAPE_B = (
    "allocations_no_overlap",
    'EXCLUDE USING gist (resource_type WITH =, resource_id WITH =, "window" WITH &&) WHERE (NOT shadow) '
    "DEFERRABLE INITIALLY IMMEDIATE",
)
SHAPE_D = ("allocations_no_overlap", 'EXCLUDE USING gist (resource_id WITH =, "window" WITH &&) WHERE (shadow = false)')


def fixture_a_sql(*, forget_history: bool = True) -> str:
    """Fixture A: booking_table_assignments without merge_group_id (shape of schema.sql@87a741f): no column,
    no FK, no index (the view over the column goes first)."""
    sql = """DROP VIEW IF EXISTS public.merge_group_members_v;
ALTER TABLE public.booking_table_assignments DROP COLUMN merge_group_id;"""
    return sql + ("\n" + FORGET_HISTORY_SQL if forget_history else "")


def fixture_a2_sql(*, fk_target: str = "allocations(id) ON DELETE SET NULL") -> str:
    """Fixture A2: as A, then the column and an FK of the expected name added by hand (the original
    migration run manually). ``fk_target`` lets a test give that FK another shape (drift)."""
    return (
        fixture_a_sql(forget_history=False)
        + f"""
ALTER TABLE public.booking_table_assignments ADD COLUMN merge_group_id uuid;
ALTER TABLE public.booking_table_assignments ADD CONSTRAINT booking_table_assignments_merge_group_id_fkey
    FOREIGN KEY (merge_group_id) REFERENCES public.{fk_target};
"""
        + FORGET_HISTORY_SQL
    )


def replace_overlap_constraint_sql(shape: tuple[str, str] | None, *, redundant_index: bool = False) -> str:
    """Drop the target allocations_no_overlap and (optionally) put an older shape in its place."""
    parts = ["ALTER TABLE public.allocations DROP CONSTRAINT IF EXISTS allocations_no_overlap;"]
    if shape is not None:
        parts.append(f"ALTER TABLE public.allocations ADD CONSTRAINT {shape[0]} {shape[1]};")
    if redundant_index:
        parts.append('CREATE INDEX allocations_resource_window_idx ON public.allocations USING gist (resource_id, "window");')
    return "\n".join(parts)


def allocation_sql(
    alloc_id: str, restaurant: str, booking: str | None, resource: str, start: str, end: str,
    *, shadow: bool = False, resource_type: str = "table",
) -> str:
    """One allocations row; ``start``/``end`` are timestamptz literals."""
    booking_sql = "NULL" if booking is None else f"'{booking}'"
    return (
        'INSERT INTO public.allocations (id, restaurant_id, booking_id, resource_type, resource_id, "window", shadow) '
        f"VALUES ('{alloc_id}', '{restaurant}', {booking_sql}, '{resource_type}', '{resource}', "
        f"tstzrange('{start}', '{end}', '[)'), {str(shadow).lower()});"
    )


def bypass_deferred_checks_sql(statements: str) -> str:
    """Run ``statements`` with replica-mode triggers, so a *deferred* exclusion constraint's recheck does not
    fire — how rows that an old constraint would reject get into a fixture (superuser only)."""
    return f"SET session_replication_role = replica;\n{statements}\nSET session_replication_role = origin;"


def duplicate_scope_sql(restaurant: str, ids: tuple[str, str]) -> str:
    """Fixture B4: two strategic_configs rows for one restaurant (the scope key goes first)."""
    return (
        "ALTER TABLE public.strategic_configs DROP CONSTRAINT IF EXISTS strategic_configs_restaurant_id_key;\n"
        + "\n".join(f"INSERT INTO public.strategic_configs (id, restaurant_id) VALUES ('{i}', '{restaurant}');" for i in ids)
    )


def version_rows_sql(*versions: str) -> str:
    """Fixtures F1/F2: the version table holds exactly these rows (the ledger is kept)."""
    values = ", ".join(f"('{v}')" for v in versions)
    return f"DELETE FROM public.capacity_alembic_version;\nINSERT INTO public.capacity_alembic_version (version_num) VALUES {values};"
