"""SQL builders for the drift fixtures of schema.md §6.2: each turns a database at head into the
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
    """Make the next ``upgrade head`` see a never-migrated, adopted database (§6.2, last paragraph)."""
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
