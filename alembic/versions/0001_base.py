"""Base schema: ledger, roles, enums, tenant helpers, capacity tables, RLS and grants (docs/schema.md §5.3).

Every step is a guarded DO block (or CREATE INDEX CONCURRENTLY IF NOT EXISTS), so the offline script is
the same as an online run and a second run executes no DDL. On greenfield everything is built inside the
revision transaction; on an adopted database the NOT VALID constraints are validated and the missing
indexes/unique keys are built concurrently in autocommit blocks.

Revision ID: 0001_base
Revises: None
"""

from service.schema.ddl import (
    LEDGER,
    MODE_ADOPTED,
    MODE_EXPR,
    MODE_GREENFIELD,
    Constraint,
    Index,
    attach_unique_constraint,
    create_index_concurrently,
    create_index_greenfield,
    create_ledger,
    do_block,
    dollar,
    drop_created_tables,
    ensure_constraint,
    ensure_function,
    ensure_grants,
    ensure_table,
    ensure_trigger,
    forget_revision,
    ledger_insert,
    lit,
    prepare_index,
    prepare_unique_index,
    record_mode,
    regclass,
    restore_functions,
    unique_constraint_index,
    validate,
)
from service.schema.released import catalog, security
from service.schema.runner import autocommit, run_sql

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None

REV = revision
UPDATED_AT_TABLES = [
    "restaurants", "zones", "table_inventory", "allocations", "booking_table_assignments", "table_holds",
    "restaurant_capacity_rules",
]
# Tables that may be absent after 0001 (adoption never recreates them): their indexes are built in the
# transaction whenever the table exists, because CREATE INDEX CONCURRENTLY cannot be guarded.
OPTIONAL_TABLES = {name for name, t in catalog.TABLES.items() if t.greenfield_only}


def _is_unique(con: Constraint) -> bool:
    return con.definition.lstrip().upper().startswith("UNIQUE (")


def _btree_gist() -> str:
    return do_block(
        f"""IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
    BEGIN
        EXECUTE 'CREATE EXTENSION IF NOT EXISTS btree_gist';
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_missing_extension',
            DETAIL = format('btree_gist cannot be created by %s: %s', current_user, SQLERRM),
            HINT = 'an administrator must run: CREATE EXTENSION IF NOT EXISTS btree_gist;';
    END;
    {ledger_insert(REV, 'extension', 'btree_gist', 'created')}
ELSE
    {ledger_insert(REV, 'extension', 'btree_gist', 'adopted')}
END IF;"""
    )


def _ensure_enum(name: str, labels: list[str]) -> str:
    create = f"CREATE TYPE public.{name} AS ENUM ({', '.join(lit(x) for x in labels)})"
    return do_block(
        f"""IF to_regtype({lit('public.' + name)}) IS NULL THEN
    EXECUTE {dollar(create, 'ddl')};
    {ledger_insert(REV, 'type', name, 'created')}
ELSE
    {ledger_insert(REV, 'type', name, 'adopted')}
END IF;"""
    )


def _enum_labels(name: str, labels: list[str]) -> str:
    """Add missing labels in target order (extra labels are tolerated, none is removed or renamed)."""
    stmts = []
    for i, label in enumerate(labels):
        where = f" AFTER {lit(labels[i - 1])}" if i else ""
        stmt = f"ALTER TYPE public.{name} ADD VALUE IF NOT EXISTS {lit(label)}{where}"
        stmts.append(
            f"""IF NOT EXISTS (SELECT 1 FROM pg_enum WHERE enumtypid = {lit('public.' + name)}::regtype
               AND enumlabel = {lit(label)}) THEN
    EXECUTE {dollar(stmt, 'ddl')};
    {ledger_insert(REV, 'enum_label', f'{name}.{label}', 'created')}
END IF;"""
        )
    return do_block(f"IF to_regtype({lit('public.' + name)}) IS NULL THEN\n    RETURN;\nEND IF;\n" + "\n".join(stmts))


def _index_if_table_exists(idx: Index) -> str:
    unique = "UNIQUE " if idx.unique else ""
    create = f"CREATE {unique}INDEX {idx.name} ON public.{idx.table} {idx.definition}"
    return do_block(
        f"""IF {regclass(idx.table)} IS NOT NULL AND {regclass(idx.name)} IS NULL THEN
    EXECUTE {dollar(create, 'ddl')};
    {ledger_insert(REV, 'index', idx.name, 'created')}
END IF;"""
    )


def _restaurant_timezone() -> str:
    """20251118170000: back-fill blank time zones, then re-assert default and NOT NULL."""
    attr = f"""(SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = {regclass('restaurants')}
              AND a.attname = 'timezone' AND NOT a.attisdropped)"""
    return do_block(
        f"""IF {regclass('restaurants')} IS NULL OR {attr} IS NULL THEN
    RETURN;
END IF;
IF EXISTS (SELECT 1 FROM public.restaurants WHERE timezone IS NULL OR btrim(timezone) = '') THEN
    UPDATE public.restaurants SET timezone = 'Europe/London' WHERE timezone IS NULL OR btrim(timezone) = '';
    {ledger_insert(REV, 'backfill', 'restaurants.timezone', 'altered')}
END IF;
IF (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
     WHERE d.adrelid = {regclass('restaurants')} AND d.adnum = {attr}) IS DISTINCT FROM '''Europe/London''::text' THEN
    EXECUTE 'ALTER TABLE public.restaurants ALTER COLUMN timezone SET DEFAULT ''Europe/London''';
    {ledger_insert(REV, 'column_default', 'restaurants.timezone', 'altered')}
END IF;
IF NOT (SELECT attnotnull FROM pg_attribute WHERE attrelid = {regclass('restaurants')} AND attname = 'timezone') THEN
    EXECUTE 'ALTER TABLE public.restaurants ALTER COLUMN timezone SET NOT NULL';
    {ledger_insert(REV, 'column_not_null', 'restaurants.timezone', 'altered')}
END IF;"""
    )


def _triggers() -> list[str]:
    parts = [
        ensure_trigger(
            REV, t, f"{t}_updated_at",
            f"CREATE TRIGGER {t}_updated_at BEFORE UPDATE ON public.{t} "
            "FOR EACH ROW EXECUTE FUNCTION public.set_updated_at()",
            updated_at=True,
        )
        for t in UPDATED_AT_TABLES
    ]
    parts.append(
        ensure_trigger(
            REV, "bookings", "bookings_set_instants",
            "CREATE TRIGGER bookings_set_instants BEFORE INSERT OR UPDATE OF booking_date, start_time, end_time, "
            "restaurant_id ON public.bookings FOR EACH ROW EXECUTE FUNCTION public.set_booking_instants()",
            greenfield_only=True,
        )
    )
    return parts


def upgrade() -> None:
    constraints = catalog.CONSTRAINTS[REV]
    indexes = catalog.INDEXES[REV]

    # docs/schema.md §5.3 items 1–4: ledger + mode, extension, roles, enum types.
    run_sql(
        create_ledger(),
        record_mode(REV),
        _btree_gist(),
        security.roles_sql(),
        security.owner_schema_privileges_sql(),
        *(_ensure_enum(name, labels) for name, labels in catalog.ENUMS.items()),
    )
    with autocommit():
        run_sql(*(_enum_labels(name, labels) for name, labels in catalog.ENUMS.items()))

    # Items 5–10 inside the revision transaction.
    run_sql(
        security.drop_legacy_set_restaurant_context(REV),
        *(
            ensure_function(REV, fn, keep_existing_when_adopted=fn in security.BOOKING_DOMAIN_FUNCTIONS)
            for fn in security.BASE_FUNCTIONS
        ),
        *(
            ensure_table(
                REV, catalog.TABLES[name],
                columns=catalog.REVISION_COLUMNS[REV][name],
                adopt_columns=catalog.adoption_columns(REV, name),
            )
            for name in catalog.BASE_TABLE_ORDER
        ),
        *(
            ensure_constraint(REV, con, greenfield_only=_is_unique(con) or con.name in catalog.GREENFIELD_ONLY)
            for con in constraints
        ),
        *(
            _index_if_table_exists(idx) if idx.table in OPTIONAL_TABLES else create_index_greenfield(REV, idx)
            for idx in indexes
        ),
        *_triggers(),
        _restaurant_timezone(),
        *(security.table_security_sql(REV, name) for name in catalog.BASE_TABLE_ORDER),
        security.schema_usage_sql(),
        security.default_privileges_sql(),
        # readiness runs as the runtime role and must read the migration bookkeeping
        *(ensure_grants(t, security.SERVICE_ROLE, ("SELECT",)) for t in ("capacity_alembic_version", "capacity_schema_ledger")),
    )

    # Adopted databases: validate NOT VALID constraints and build what is missing without long locks.
    # On greenfield every statement below finds its object in place and does nothing.
    with autocommit():
        run_sql(validate(constraints))
        for con in constraints:
            if not _is_unique(con) or con.name in catalog.GREENFIELD_ONLY:
                continue
            run_sql(prepare_unique_index(con))
            run_sql(create_index_concurrently(unique_constraint_index(con)))
            run_sql(attach_unique_constraint(REV, con))
        for idx in indexes:
            if idx.name in catalog.GREENFIELD_ONLY or idx.table in OPTIONAL_TABLES:
                continue
            run_sql(prepare_index(REV, idx))
            run_sql(create_index_concurrently(idx))


def downgrade() -> None:
    signatures = [fn.signature for fn in reversed(security.BASE_FUNCTIONS)]
    run_sql(
        do_block(
            f"""IF to_regclass({lit(LEDGER)}) IS NOT NULL AND {MODE_EXPR} IS DISTINCT FROM {lit(MODE_GREENFIELD)} THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = '0001 cannot be downgraded on an adopted database',
        DETAIL = format('deployment mode is %s', coalesce({MODE_EXPR}, {lit(MODE_ADOPTED)})),
        HINT = 'restore from the backup taken before adoption instead';
END IF;"""
        ),
        drop_created_tables(REV, list(reversed(catalog.BASE_TABLE_ORDER))),
        restore_functions(REV, [*signatures, security.LEGACY_SET_RESTAURANT_CONTEXT]),
        do_block(
            "\n".join(
                f"""IF EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(REV)} AND object_kind = 'type'
              AND object_name = {lit(name)} AND action = 'created') AND to_regtype({lit('public.' + name)}) IS NOT NULL THEN
    EXECUTE {dollar(f'DROP TYPE public.{name}', 'ddl')};
END IF;"""
                for name in reversed(list(catalog.ENUMS))
            )
        ),
        do_block(
            f"""IF EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(REV)} AND object_kind = 'extension'
              AND object_name = 'btree_gist' AND action = 'created')
   AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
    EXECUTE 'DROP EXTENSION btree_gist';
END IF;"""
        ),
        forget_revision(REV),
        # The ledger is this service's own bookkeeping; an empty one goes with the base revision.
        do_block(
            f"""IF to_regclass({lit(LEDGER)}) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {LEDGER}) THEN
    EXECUTE {dollar(f'DROP TABLE {LEDGER}', 'ddl')};
END IF;"""
        ),
    )
