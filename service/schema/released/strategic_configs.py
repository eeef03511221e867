"""SQL for revision 0005_strategic_config_columns (docs/schema.md §5.7, docs/strategic-config.md §4.4–§4.5).

Every builder returns guarded SQL text (``DO`` blocks reading the catalogs), so the online run and the
offline script are the same and a second run executes no DDL. Kept out of the revision file so that other
code (the doctor, a later contract revision) can import the names, shapes and ledger kinds.

Ledger rows written here (besides the generic ``table``/``column``/``constraint``/``trigger``/``function``
rows of the ddl builders), all for ``strategic_configs``:

- ``backfill_report`` / ``strategic_configs.weights`` (action ``report``): the back-fill report as JSON text.
- ``column_rename`` / ``strategic_configs.weights``: ``weights`` was renamed to ``weights_legacy``;
  previous_definition = the column's previous comment.
- ``column_not_null_dropped`` / ``strategic_configs.weights``: NOT NULL removed from the legacy column.
- ``column_default`` / ``strategic_configs.<col>``: default changed; previous_definition = old expression.
- ``column_not_null`` / ``strategic_configs.scarcity_weight``: NOT NULL set by 0005.
- ``unique_replaced`` / ``strategic_configs.<name>``: a same-purpose unique constraint or index replaced by
  the target; previous_definition = the statement that re-creates it.
- ``trigger_replaced`` / ``strategic_configs.<name>``: a generic updated_at trigger replaced by the touch
  trigger; previous_definition = ``pg_get_triggerdef``.
"""

from __future__ import annotations

import json

from service.schema.ddl import (
    LEDGER,
    Column,
    Constraint,
    Function,
    Table,
    constraint_exists_sql,
    do_block,
    dollar,
    ledger_insert,
    lit,
    regclass,
)
from service.schema.released import catalog

TABLE = "strategic_configs"
SCOPE_KEY = "strategic_configs_restaurant_id_key"
SCOPE_KEY_DEF = "UNIQUE NULLS NOT DISTINCT (restaurant_id)"
TOUCH_TRIGGER = "strategic_configs_touch"

FULL_SHAPE: Table = catalog.TABLES[TABLE]

# Step 2 shape: what an existing table gets when a column is missing. The weights arrive nullable and
# without default (catalog-only ADD COLUMN; the back-fill must see NULL to know a column is unset).
ADDED_COLUMNS = Table(
    name=TABLE,
    columns=(
        Column("scarcity_weight", "numeric(8,2)"),
        Column("demand_multiplier_override", "numeric(8,3)"),
        Column("future_conflict_penalty", "numeric(10,2)"),
        Column("version", "bigint", not_null=True, default="1"),
        Column("created_at", "timestamp with time zone", not_null=True, default="now()"),
        Column("updated_at", "timestamp with time zone", not_null=True, default=catalog.UTC_NOW),
        Column("updated_by", "uuid"),
    ),
)
WEIGHT_COLUMNS = ("scarcity_weight", "demand_multiplier_override", "future_conflict_penalty")

# docs/strategic-config.md §4.5: first present key with a valid value wins.
KEY_PRECEDENCE: dict[str, tuple[str, ...]] = {
    "scarcity_weight": ("scarcity_weight", "scarcity", "scarcityWeight"),
    "demand_multiplier_override": (
        "demand_multiplier_override",
        "demandMultiplier",
        "demandMultiplierOverride",
        "demand_multiplier",
    ),
    "future_conflict_penalty": ("future_conflict_penalty", "futureConflictPenalty"),
}
# (min, max, clamp?, scale): scarcity is clamped (the allocator clamped it at run time anyway); an
# override outside its API range is not copied.
VALUE_RULES: dict[str, tuple[int, int, bool, int]] = {
    "scarcity_weight": (0, 1000, True, 2),
    "demand_multiplier_override": (0, 10, False, 3),
    "future_conflict_penalty": (0, 100000, False, 2),
}
# Plain decimal: optional sign, digits, optional fraction (no exponent, no NaN/Infinity).
DECIMAL_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"

_CONSTRAINTS = {c.name: c for c in catalog.CONSTRAINTS[catalog.REV_STRATEGIC]}
FK = _CONSTRAINTS["strategic_configs_restaurant_id_fkey"]
UNIQUE_SCOPE = _CONSTRAINTS[SCOPE_KEY]
# The range CHECKs with their boolean expressions (also used to find violating rows before VALIDATE).
RANGE_CHECKS: tuple[tuple[Constraint, str], ...] = tuple(
    (c, c.definition.strip()[len("CHECK ("):-1])
    for c in catalog.CONSTRAINTS[catalog.REV_STRATEGIC]
    if c.definition.lstrip().upper().startswith("CHECK")
)

TOUCH_FUNCTION = Function(
    signature="public.strategic_configs_touch()",
    header="public.strategic_configs_touch() RETURNS trigger LANGUAGE plpgsql",
    body="""
BEGIN
    -- Every write gets a fresh updated_at and a new row version (ETag / If-Match), whatever the caller sent.
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
""",
    grant_to=(),  # fired by the trigger, never called directly
)
TOUCH_TRIGGER_SQL = (
    f"CREATE TRIGGER {TOUCH_TRIGGER} BEFORE UPDATE ON public.{TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION public.strategic_configs_touch()"
)

_REL = regclass(TABLE)


def _attr_exists(column: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {_REL} AND attname = {lit(column)} "
        "AND attnum > 0 AND NOT attisdropped)"
    )


def _ledger_insert_named(revision: str, kind: str, name_expr: str, previous_sql: str) -> str:
    """Ledger row (action ``replaced``) whose object name is ``strategic_configs.<value of name_expr>``."""
    return (
        f"INSERT INTO {LEDGER} (revision, object_kind, object_name, action, previous_definition) "
        f"VALUES ({lit(revision)}, {lit(kind)}, {lit(TABLE + '.')} || {name_expr}, 'replaced', {previous_sql}) "
        "ON CONFLICT (revision, object_kind, object_name) DO NOTHING;"
    )


def _ledger_has(revision: str, kind: str, name: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = {lit(kind)} "
        f"AND object_name = {lit(name)})"
    )


# --------------------------------------------------------------------------------------------------
# step 7 (checked first): duplicate scopes
# --------------------------------------------------------------------------------------------------
def _duplicate_groups_query(into: str) -> str:
    """plpgsql: ``into`` := one line per duplicated scope (ids with updated_at), or NULL. Reads columns
    through to_jsonb(row) so a table that lacks updated_at (odd drift) still gets a report, not 42703."""
    return f"""SELECT string_agg(g.line, E'\\n' ORDER BY g.line) INTO {into}
  FROM (SELECT format('restaurant_id %s: %s',
                      COALESCE(s.restaurant_id::text, 'NULL (global)'),
                      string_agg(format('%s (updated_at %s)', to_jsonb(s) ->> 'id',
                                        COALESCE(to_jsonb(s) ->> 'updated_at', 'unknown')),
                                 ', ' ORDER BY to_jsonb(s) ->> 'updated_at' DESC NULLS LAST, to_jsonb(s) ->> 'id')) AS line
          FROM public.{TABLE} s
         GROUP BY s.restaurant_id
        HAVING count(*) > 1) g;"""


def refuse_duplicate_scopes() -> str:
    """Stop the revision when rows share a scope: one row per restaurant and at most one global row.
    Nothing is deleted automatically (docs/schema.md §5.7 step 7)."""
    return do_block(
        f"""IF {_REL} IS NULL OR NOT {_attr_exists('restaurant_id')} THEN
    RETURN;
END IF;
{_duplicate_groups_query('v_groups')}
IF v_groups IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'strategic_configs_duplicate_scope',
        DETAIL = 'rows share a scope (one row per restaurant and at most one global row allowed):' || E'\\n' || v_groups,
        HINT = 'merge or delete the extra rows by hand (nothing is deleted automatically), then re-run the migration';
END IF;""",
        declare="    v_groups text;",
    )


# --------------------------------------------------------------------------------------------------
# steps 1-2: table and columns
# --------------------------------------------------------------------------------------------------
def ensure_full_table(revision: str, shape: Table = FULL_SHAPE) -> str:
    """Step 1: create the full shape when the table is missing; constraints and trigger follow in step 7."""
    cols = ",\n    ".join(c.ddl() for c in shape.columns)
    create = f"CREATE TABLE public.{TABLE} (\n    {cols},\n    PRIMARY KEY ({', '.join(shape.primary_key)})\n)"
    return do_block(
        f"""IF {_REL} IS NULL THEN
    EXECUTE {dollar(create, 'ddl')};
    {ledger_insert(revision, 'table', TABLE, 'created')}
ELSE
    {ledger_insert(revision, 'table', TABLE, 'adopted')}
END IF;"""
    )


# --------------------------------------------------------------------------------------------------
# steps 3-5: back-fill from the legacy JSON, report, rename
# --------------------------------------------------------------------------------------------------
def _rules_json() -> str:
    rules = [
        {
            "column": column,
            "keys": list(keys),
            "min": VALUE_RULES[column][0],
            "max": VALUE_RULES[column][1],
            "clamp": VALUE_RULES[column][2],
            "scale": VALUE_RULES[column][3],
        }
        for column, keys in KEY_PRECEDENCE.items()
    ]
    return json.dumps(rules, separators=(",", ":"))


def backfill_legacy_weights(revision: str) -> str:
    """Steps 3–5 in one block (so the back-fill, its report and the rename commit together).

    The legacy column may be jsonb, json or text: it is read as text and parsed to jsonb row by row
    inside an exception block, so an unparsable value is reported instead of aborting (the original
    cast straight to numeric and died on the first ``"high"``). Only NULL numeric columns are filled:
    a numeric value present already is newer than the JSON (written by the ops writer) and wins.
    """
    known_keys = sorted({k for keys in KEY_PRECEDENCE.values() for k in keys})
    known_array = "ARRAY[" + ", ".join(lit(k) for k in known_keys) + "]::text[]"
    text_like = "ARRAY['text', 'character varying', 'character', 'citext']"
    comment_fmt = (
        "Legacy weights JSON (%s), renamed from weights by capacity-service " + revision + " on %s; the numeric "
        "columns hold its values (back-fill report in capacity_schema_ledger). Dropped only by a later "
        "contract revision."
    )
    body = f"""IF {_REL} IS NULL THEN
    RETURN;
END IF;
SELECT format_type(atttypid, atttypmod), attnotnull, atthasdef INTO v_type, v_notnull, v_hasdef
  FROM pg_attribute WHERE attrelid = {_REL} AND attname = 'weights' AND attnum > 0 AND NOT attisdropped;
IF v_type IS NULL THEN
    RETURN;  -- no legacy column (greenfield, or already renamed by an earlier run)
END IF;
IF v_type NOT IN ('jsonb', 'json') AND split_part(v_type, '(', 1) <> ALL ({text_like}) THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_drift_column_type',
        DETAIL = format('{TABLE}.weights is %s, expected jsonb, json or text', v_type),
        HINT = 'convert the legacy column by hand, then re-run the migration';
END IF;
IF {_attr_exists('weights_legacy')} THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_drift_weights_legacy_exists',
        DETAIL = '{TABLE} has both weights and weights_legacy; the legacy JSON cannot be kept under its new name',
        HINT = 'compare the two columns, drop the stale one by hand, then re-run the migration';
END IF;

FOR r IN SELECT s.id, s.restaurant_id, s.weights::text AS raw,
                jsonb_build_object('scarcity_weight', s.scarcity_weight,
                                   'demand_multiplier_override', s.demand_multiplier_override,
                                   'future_conflict_penalty', s.future_conflict_penalty) AS numeric_values
           FROM public.{TABLE} s ORDER BY s.id FOR UPDATE
LOOP
    v_rows := v_rows + 1;
    CONTINUE WHEN r.raw IS NULL;
    BEGIN
        v_json := r.raw::jsonb;
    EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
        v_items := v_items || jsonb_build_object('id', r.id, 'restaurant_id', r.restaurant_id, 'kind', 'invalid_json',
                                                 'value', left(r.raw, 200));
        CONTINUE;
    END;
    IF jsonb_typeof(v_json) <> 'object' THEN
        v_items := v_items || jsonb_build_object('id', r.id, 'restaurant_id', r.restaurant_id, 'kind', 'not_an_object',
                                                 'value', v_json);
        CONTINUE;
    END IF;
    v_set := '{{}}'::jsonb;
    FOR v_rule IN SELECT value FROM jsonb_array_elements({lit(_rules_json())}::jsonb) LOOP
        v_column := v_rule ->> 'column';
        v_chosen := NULL;
        v_chosen_key := NULL;
        FOR v_key IN SELECT value FROM jsonb_array_elements_text(v_rule -> 'keys') LOOP
            CONTINUE WHEN NOT v_json ? v_key;
            v_value := v_json -> v_key;
            v_num := NULL;
            IF jsonb_typeof(v_value) = 'number' THEN
                v_num := (v_value #>> '{{}}')::numeric;
            ELSIF jsonb_typeof(v_value) = 'string' THEN
                v_str := regexp_replace(v_value #>> '{{}}', '^\\s+|\\s+$', '', 'g');
                CONTINUE WHEN v_str = '';  -- empty string = absent (as in the original repair)
                IF v_str ~ {lit(DECIMAL_PATTERN)} THEN
                    v_num := v_str::numeric;
                END IF;
            ELSIF jsonb_typeof(v_value) = 'null' THEN
                CONTINUE;  -- explicit null = absent
            END IF;
            IF v_num IS NULL THEN
                v_items := v_items || jsonb_build_object('id', r.id, 'restaurant_id', r.restaurant_id, 'kind', 'invalid',
                                                         'column', v_column, 'key', v_key, 'value', v_value);
                CONTINUE;
            END IF;
            IF v_num < (v_rule ->> 'min')::numeric OR v_num > (v_rule ->> 'max')::numeric THEN
                IF NOT (v_rule ->> 'clamp')::boolean THEN
                    v_items := v_items || jsonb_build_object('id', r.id, 'restaurant_id', r.restaurant_id, 'kind', 'out_of_range',
                                                             'column', v_column, 'key', v_key, 'value', v_value);
                    CONTINUE;
                END IF;
                v_clamped := greatest((v_rule ->> 'min')::numeric, least((v_rule ->> 'max')::numeric, v_num));
                IF v_chosen IS NULL THEN
                    v_items := v_items || jsonb_build_object('id', r.id, 'restaurant_id', r.restaurant_id, 'kind', 'clamped',
                                                             'column', v_column, 'key', v_key, 'value', v_value, 'stored', v_clamped);
                END IF;
                v_num := v_clamped;
            END IF;
            v_num := round(v_num, (v_rule ->> 'scale')::int);  -- as the column will store it
            IF v_chosen IS NULL THEN
                v_chosen := v_num;
                v_chosen_key := v_key;
            ELSIF v_num <> v_chosen THEN
                -- a lower-precedence spelling with another value: not copied, but reported so the
                -- contract revision can tell it was seen
                v_items := v_items || jsonb_build_object('id', r.id, 'restaurant_id', r.restaurant_id, 'kind', 'shadowed',
                                                         'column', v_column, 'key', v_key, 'value', v_value,
                                                         'used_key', v_chosen_key, 'used_value', v_chosen);
            END IF;
        END LOOP;
        CONTINUE WHEN v_chosen IS NULL;
        v_current := (r.numeric_values ->> v_column)::numeric;
        IF v_current IS NULL THEN
            v_set := v_set || jsonb_build_object(v_column, v_chosen);
        ELSIF v_current <> v_chosen THEN
            v_items := v_items || jsonb_build_object('id', r.id, 'restaurant_id', r.restaurant_id, 'kind', 'numeric_wins',
                                                     'column', v_column, 'key', v_chosen_key, 'value', v_chosen,
                                                     'stored', v_current);
        END IF;
    END LOOP;
    FOR v_key IN SELECT k FROM jsonb_object_keys(v_json) k WHERE k <> ALL ({known_array}) ORDER BY k LOOP
        v_items := v_items || jsonb_build_object('id', r.id, 'restaurant_id', r.restaurant_id, 'kind', 'unknown_key',
                                                 'key', v_key, 'value', v_json -> v_key);
    END LOOP;
    IF v_set <> '{{}}'::jsonb THEN
        UPDATE public.{TABLE} SET
            scarcity_weight = COALESCE(scarcity_weight, (v_set ->> 'scarcity_weight')::numeric),
            demand_multiplier_override = COALESCE(demand_multiplier_override, (v_set ->> 'demand_multiplier_override')::numeric),
            future_conflict_penalty = COALESCE(future_conflict_penalty, (v_set ->> 'future_conflict_penalty')::numeric)
         WHERE id = r.id;
        v_filled := v_filled + 1;
    END IF;
END LOOP;

SELECT COALESCE(jsonb_object_agg(kind, n), '{{}}'::jsonb) INTO v_counts
  FROM (SELECT i ->> 'kind' AS kind, count(*) AS n FROM jsonb_array_elements(v_items) i GROUP BY 1) c;
v_report := jsonb_build_object('revision', {lit(revision)}, 'table', {lit(TABLE)}, 'source_column', 'weights',
                               'source_type', v_type, 'renamed_to', 'weights_legacy', 'rows', v_rows,
                               'rows_filled', v_filled, 'counts', v_counts, 'items', v_items);
FOR v_item IN SELECT value FROM jsonb_array_elements(v_items) LIMIT 200 LOOP
    RAISE NOTICE 'strategic_configs back-fill: % row % (restaurant %): column % key % value %',
        v_item ->> 'kind', v_item ->> 'id', COALESCE(v_item ->> 'restaurant_id', 'NULL (global)'),
        COALESCE(v_item ->> 'column', '-'), COALESCE(v_item ->> 'key', '-'), COALESCE(v_item -> 'value', 'null'::jsonb);
END LOOP;
RAISE NOTICE 'strategic_configs back-fill: % rows, % filled, findings %; full report in {LEDGER} (object_kind backfill_report)',
    v_rows, v_filled, v_counts;
{ledger_insert(revision, 'backfill_report', f'{TABLE}.weights', 'report', 'v_report::text')}

-- keep the legacy data, renamed: reversible by downgrade, and the runtime schema probe (which looks
-- for a column named weights) then reports ok
{ledger_insert(revision, 'column_rename', f'{TABLE}.weights', 'altered', f"col_description({_REL}, (SELECT attnum FROM pg_attribute WHERE attrelid = {_REL} AND attname = 'weights'))")}
EXECUTE {dollar(f'ALTER TABLE public.{TABLE} RENAME COLUMN weights TO weights_legacy', 'ddl')};
EXECUTE format('COMMENT ON COLUMN public.{TABLE}.weights_legacy IS %L',
               format({lit(comment_fmt)}, v_type, to_char(current_date, 'YYYY-MM-DD')));
IF v_notnull AND NOT v_hasdef THEN
    -- the service never writes the legacy column; NOT NULL without a default would make its inserts fail
    {ledger_insert(revision, 'column_not_null_dropped', f'{TABLE}.weights', 'altered')}
    EXECUTE {dollar(f'ALTER TABLE public.{TABLE} ALTER COLUMN weights_legacy DROP NOT NULL', 'ddl')};
END IF;"""
    declare = """    v_type text;
    v_notnull boolean;
    v_hasdef boolean;
    r record;
    v_json jsonb;
    v_rule jsonb;
    v_column text;
    v_key text;
    v_value jsonb;
    v_str text;
    v_num numeric;
    v_clamped numeric;
    v_chosen numeric;
    v_chosen_key text;
    v_current numeric;
    v_set jsonb;
    v_item jsonb;
    v_items jsonb := '[]'::jsonb;
    v_counts jsonb;
    v_report jsonb;
    v_rows bigint := 0;
    v_filled bigint := 0;"""
    return do_block(body, declare=declare)


# --------------------------------------------------------------------------------------------------
# step 6: defaults and NOT NULL
# --------------------------------------------------------------------------------------------------
def _default_expr(column: str) -> str:
    return (
        f"(SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a "
        f"ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = {_REL} AND a.attname = {lit(column)})"
    )


def column_defaults(revision: str) -> str:
    """Step 6. Every change is recorded with the previous default so the downgrade can put it back."""
    key = f"{TABLE}.scarcity_weight"
    drops = []
    for column in ("demand_multiplier_override", "future_conflict_penalty"):
        drops.append(
            f"""v_prev := {_default_expr(column)};
IF v_prev IS NOT NULL THEN
    {ledger_insert(revision, 'column_default', f'{TABLE}.{column}', 'altered', 'v_prev')}
    EXECUTE {dollar(f'ALTER TABLE public.{TABLE} ALTER COLUMN {column} DROP DEFAULT', 'ddl')};
END IF;"""
        )
    drops_sql = "\n".join(drops)
    return do_block(
        f"""IF {_REL} IS NULL THEN
    RETURN;
END IF;
UPDATE public.{TABLE} SET scarcity_weight = 22 WHERE scarcity_weight IS NULL;
v_prev := {_default_expr('scarcity_weight')};
IF v_prev IS NULL OR v_prev !~ '^\\(?22(\\.0+)?\\)?(::numeric)?$' THEN
    {ledger_insert(revision, 'column_default', key, 'altered', 'v_prev')}
    EXECUTE {dollar(f'ALTER TABLE public.{TABLE} ALTER COLUMN scarcity_weight SET DEFAULT 22', 'ddl')};
END IF;
IF NOT (SELECT attnotnull FROM pg_attribute WHERE attrelid = {_REL} AND attname = 'scarcity_weight') THEN
    {ledger_insert(revision, 'column_not_null', key, 'altered')}
    EXECUTE {dollar(f'ALTER TABLE public.{TABLE} ALTER COLUMN scarcity_weight SET NOT NULL', 'ddl')};
END IF;
{drops_sql}
v_prev := {_default_expr('updated_at')};
IF v_prev IS DISTINCT FROM {lit(catalog.UTC_NOW)} THEN
    {ledger_insert(revision, 'column_default', f'{TABLE}.updated_at', 'altered', 'v_prev')}
    EXECUTE {dollar(f"ALTER TABLE public.{TABLE} ALTER COLUMN updated_at SET DEFAULT {catalog.UTC_NOW}", 'ddl')};
END IF;""",
        declare="    v_prev text;",
    )


# --------------------------------------------------------------------------------------------------
# step 7: uniqueness, trigger, FK, range checks
# --------------------------------------------------------------------------------------------------
def unique_scope(revision: str) -> str:
    """Ensure ``UNIQUE NULLS NOT DISTINCT (restaurant_id)`` under the original name, replacing a legacy
    plain UNIQUE (restaurant_id) and any unique index of the same purpose (partial ones included).
    Each replaced definition is saved as the statement that re-creates it."""
    same_purpose_constraints = f"""SELECT c.conname, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
         WHERE c.conrelid = {_REL} AND c.contype = 'u'
           AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = {_REL} AND attname = 'restaurant_id')]
           AND NOT (c.conname = {lit(SCOPE_KEY)} AND pg_get_constraintdef(c.oid) = {lit(SCOPE_KEY_DEF)})"""
    same_purpose_indexes = f"""SELECT ic.relname, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
          JOIN pg_class ic ON ic.oid = i.indexrelid
         WHERE i.indrelid = {_REL} AND i.indisunique AND NOT i.indisprimary AND i.indnkeyatts = 1
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = {_REL})
           AND (i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = {_REL} AND attname = 'restaurant_id')
                OR (i.indkey[0] = 0 AND pg_get_expr(i.indpred, i.indrelid) ILIKE '%restaurant_id IS NULL%'))"""
    add = f"ALTER TABLE public.{TABLE} ADD CONSTRAINT {SCOPE_KEY} {SCOPE_KEY_DEF}"
    return do_block(
        f"""IF {_REL} IS NULL THEN
    RETURN;
END IF;
FOR r IN {same_purpose_constraints} LOOP
    {_ledger_insert_named(revision, 'unique_replaced', 'r.conname', f"format('ALTER TABLE public.{TABLE} ADD CONSTRAINT %I %s', r.conname, r.def)")}
    EXECUTE format('ALTER TABLE public.{TABLE} DROP CONSTRAINT %I', r.conname);
END LOOP;
FOR r IN {same_purpose_indexes} LOOP
    {_ledger_insert_named(revision, 'unique_replaced', 'r.relname', 'r.def')}
    EXECUTE format('DROP INDEX public.%I', r.relname);
END LOOP;
IF {constraint_exists_sql(TABLE, SCOPE_KEY)} THEN
    {ledger_insert(revision, 'constraint', f'{TABLE}.{SCOPE_KEY}', 'adopted')}
ELSE
    EXECUTE {dollar(add, 'ddl')};
    {ledger_insert(revision, 'constraint', f'{TABLE}.{SCOPE_KEY}', 'created')}
END IF;""",
        declare="    r record;",
    )


def replace_generic_touch_triggers(revision: str) -> str:
    """The touch trigger replaces a generic BEFORE UPDATE updated_at trigger on this table (two triggers
    would both write updated_at; only ours bumps version). The dropped definition is kept for downgrade."""
    return do_block(
        f"""IF {_REL} IS NULL THEN
    RETURN;
END IF;
FOR r IN SELECT t.tgname, pg_get_triggerdef(t.oid) AS def
           FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
          WHERE t.tgrelid = {_REL} AND NOT t.tgisinternal AND t.tgname <> {lit(TOUCH_TRIGGER)}
            AND (t.tgtype & 2) <> 0 AND (t.tgtype & 16) <> 0
            AND p.proname <> 'strategic_configs_touch'
            AND (p.proname ILIKE '%updated_at%' OR p.proname ILIKE '%timestamp%' OR p.proname ILIKE '%touch%')
LOOP
    {_ledger_insert_named(revision, 'trigger_replaced', 'r.tgname', 'r.def')}
    EXECUTE format('DROP TRIGGER %I ON public.{TABLE}', r.tgname);
END LOOP;""",
        declare="    r record;",
    )


def ensure_restaurant_fk(revision: str) -> str:
    """FK to restaurants (CASCADE), added NOT VALID. An FK of that name with another target or action
    is drift; an equivalent FK under another name is adopted rather than duplicated."""
    add = f"ALTER TABLE public.{TABLE} ADD CONSTRAINT {FK.name} {FK.definition} NOT VALID"
    shape = f"""c.contype = 'f' AND c.confrelid = {regclass('restaurants')} AND c.confdeltype = 'c'
           AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = {_REL} AND attname = 'restaurant_id')]"""
    return do_block(
        f"""IF {_REL} IS NULL OR {regclass('restaurants')} IS NULL THEN
    RETURN;
END IF;
IF {constraint_exists_sql(TABLE, FK.name)} THEN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = {_REL} AND c.conname = {lit(FK.name)} AND {shape}) THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_drift_constraint',
            DETAIL = format('{TABLE}.{FK.name} is %s, expected {FK.definition}',
                            (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = {_REL} AND conname = {lit(FK.name)})),
            HINT = 'replace the constraint by hand, then re-run the migration';
    END IF;
    {ledger_insert(revision, 'constraint', f'{TABLE}.{FK.name}', 'adopted')}
ELSIF EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = {_REL} AND {shape}) THEN
    {ledger_insert(revision, 'constraint', f'{TABLE}.{FK.name}', 'adopted')}
ELSE
    EXECUTE {dollar(add, 'ddl')};
    {ledger_insert(revision, 'constraint', f'{TABLE}.{FK.name}', 'created')}
END IF;"""
    )


def validate_range_checks() -> str:
    """VALIDATE each NOT VALID range CHECK only if no row violates it; otherwise leave it NOT VALID (new
    writes are still checked) and report the rows. Run in an autocommit block."""
    stmts = []
    for con, expr in RANGE_CHECKS:
        stmts.append(
            f"""IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {_REL} AND conname = {lit(con.name)} AND NOT convalidated) THEN
    SELECT count(*), string_agg(id::text, ', ' ORDER BY id) INTO v_count, v_ids
      FROM (SELECT id FROM public.{TABLE} WHERE NOT ({expr}) ORDER BY id LIMIT 50) v;
    IF v_count = 0 THEN
        EXECUTE {dollar(f'ALTER TABLE public.{TABLE} VALIDATE CONSTRAINT {con.name}', 'ddl')};
    ELSE
        RAISE NOTICE '{TABLE}: % left NOT VALID, rows violating it (first 50): %', {lit(con.name)}, v_ids;
    END IF;
END IF;"""
        )
    return do_block(
        f"IF {_REL} IS NULL THEN\n    RETURN;\nEND IF;\n" + "\n".join(stmts),
        declare="    v_count bigint;\n    v_ids text;",
    )


# --------------------------------------------------------------------------------------------------
# downgrade
# --------------------------------------------------------------------------------------------------
def restore_replaced(revision: str, kind: str) -> str:
    """Re-run the saved statements of replaced uniques/triggers (only if that name is free again)."""
    exists = (
        "EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {rel} AND conname = v_name) "
        "OR EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = v_name)"
        if kind == "unique_replaced"
        else "EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = {rel} AND tgname = v_name AND NOT tgisinternal)"
    ).format(rel=_REL)
    return do_block(
        f"""IF {_REL} IS NULL THEN
    RETURN;
END IF;
FOR r IN SELECT object_name, previous_definition FROM {LEDGER}
          WHERE revision = {lit(revision)} AND object_kind = {lit(kind)} AND previous_definition IS NOT NULL
          ORDER BY object_name LOOP
    v_name := substr(r.object_name, length({lit(TABLE + '.')}) + 1);
    IF NOT ({exists}) THEN
        EXECUTE r.previous_definition;
    END IF;
END LOOP;""",
        declare="    r record;\n    v_name text;",
    )


def restore_column_defaults(revision: str) -> str:
    stmts = []
    for column in ("scarcity_weight", "demand_multiplier_override", "future_conflict_penalty", "updated_at"):
        name = f"{TABLE}.{column}"
        stmts.append(
            f"""IF {_attr_exists(column)} AND {_ledger_has(revision, 'column_default', name)} THEN
    SELECT previous_definition INTO v_prev FROM {LEDGER}
     WHERE revision = {lit(revision)} AND object_kind = 'column_default' AND object_name = {lit(name)};
    IF v_prev IS NULL THEN
        EXECUTE {dollar(f'ALTER TABLE public.{TABLE} ALTER COLUMN {column} DROP DEFAULT', 'ddl')};
    ELSE
        EXECUTE format('ALTER TABLE public.{TABLE} ALTER COLUMN {column} SET DEFAULT %s', v_prev);
    END IF;
END IF;"""
        )
    key = f"{TABLE}.scarcity_weight"
    stmts.append(
        f"""IF {_attr_exists('scarcity_weight')} AND {_ledger_has(revision, 'column_not_null', key)} THEN
    EXECUTE {dollar(f'ALTER TABLE public.{TABLE} ALTER COLUMN scarcity_weight DROP NOT NULL', 'ddl')};
END IF;"""
    )
    return do_block(f"IF {_REL} IS NULL THEN\n    RETURN;\nEND IF;\n" + "\n".join(stmts), declare="    v_prev text;")


def drop_created_table(revision: str, *, allow_data_loss: bool) -> str:
    """Drop the table if 0005 created it; refuse when it holds rows unless data loss is allowed."""
    return do_block(
        f"""IF {_REL} IS NULL OR NOT EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)}
        AND object_kind = 'table' AND object_name = {lit(TABLE)} AND action = 'created') THEN
    RETURN;
END IF;
IF {'false' if allow_data_loss else 'true'} AND EXISTS (SELECT 1 FROM public.{TABLE}) THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_downgrade_data_loss',
        DETAIL = format('{TABLE} was created by {revision} and holds %s rows', (SELECT count(*) FROM public.{TABLE})),
        HINT = 're-run with -x allow_data_loss=true to drop it anyway';
END IF;
EXECUTE {dollar(f'DROP TABLE public.{TABLE}', 'ddl')};"""
    )


def rename_legacy_back(revision: str) -> str:
    """Undo step 5: weights_legacy → weights, previous comment and NOT NULL back."""
    name = f"{TABLE}.weights"
    return do_block(
        f"""IF {_REL} IS NULL OR NOT {_ledger_has(revision, 'column_rename', name)} OR NOT {_attr_exists('weights_legacy')}
   OR {_attr_exists('weights')} THEN
    RETURN;
END IF;
EXECUTE {dollar(f'ALTER TABLE public.{TABLE} RENAME COLUMN weights_legacy TO weights', 'ddl')};
SELECT previous_definition INTO v_prev FROM {LEDGER}
 WHERE revision = {lit(revision)} AND object_kind = 'column_rename' AND object_name = {lit(name)};
EXECUTE format('COMMENT ON COLUMN public.{TABLE}.weights IS %L', v_prev);
IF {_ledger_has(revision, 'column_not_null_dropped', name)} THEN
    IF EXISTS (SELECT 1 FROM public.{TABLE} WHERE weights IS NULL) THEN
        RAISE NOTICE '{TABLE}.weights stays nullable: rows written after the upgrade have no legacy JSON';
    ELSE
        EXECUTE {dollar(f'ALTER TABLE public.{TABLE} ALTER COLUMN weights SET NOT NULL', 'ddl')};
    END IF;
END IF;""",
        declare="    v_prev text;",
    )
