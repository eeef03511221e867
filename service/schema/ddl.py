"""Builders for guarded, idempotent DDL.

Every builder returns plain SQL text — almost always one ``DO`` block that reads the catalogs and then
acts or does nothing. Revisions pass that text to ``run_sql`` (``service.schema.runner``), so an online
upgrade and the offline script (``alembic upgrade head --sql``) execute exactly the same guards, and a
second run changes nothing (no DDL statement executes when the object is already in its target shape).

Every object a revision creates, adopts or replaces is recorded in ``capacity_schema_ledger``; downgrades
read that ledger so they remove only what this service created and restore what it replaced.

Conventions: all objects live in schema ``public``; names passed in are trusted identifiers from this
code base (never user input), literals go through :func:`lit`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

LEDGER = "public.capacity_schema_ledger"
MODE_GREENFIELD = "greenfield"
MODE_ADOPTED = "adopted"

# Text-like types that an adopted database may use where the target says `text`.
_TEXT_ALIASES = ("text", "character varying", "varchar", "citext")


# --------------------------------------------------------------------------------------------------
# quoting
# --------------------------------------------------------------------------------------------------
def lit(value: str | None) -> str:
    """SQL string literal."""
    if value is None:
        return "NULL"
    return "'" + value.replace("'", "''") + "'"


def dollar(text: str, tag: str) -> str:
    """Dollar-quote ``text`` with ``$tag$``; refuses text that contains the tag."""
    marker = f"${tag}$"
    if marker in text:
        raise ValueError(f"text contains its own quote tag {marker}")
    return f"{marker}{text}{marker}"


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def do_block(body: str, declare: str = "") -> str:
    """An anonymous plpgsql block. ``body`` is the statement list between BEGIN and END."""
    decl = f"DECLARE\n{declare.rstrip()}\n" if declare.strip() else ""
    return dollar_block(f"{decl}BEGIN\n{body.rstrip()}\nEND\n")


def dollar_block(inner: str) -> str:
    return "DO " + dollar("\n" + inner, "do") + ";"


def ledger_insert(revision: str, kind: str, name: str, action: str, previous_sql: str = "NULL") -> str:
    """plpgsql statement recording one ledger row; the first record of an object wins."""
    return (
        f"INSERT INTO {LEDGER} (revision, object_kind, object_name, action, previous_definition) "
        f"VALUES ({lit(revision)}, {lit(kind)}, {lit(name)}, {lit(action)}, {previous_sql}) "
        "ON CONFLICT (revision, object_kind, object_name) DO NOTHING;"
    )


MODE_EXPR = f"(SELECT action FROM {LEDGER} WHERE object_kind = 'mode' AND object_name = 'deployment' LIMIT 1)"


def regclass(table: str) -> str:
    return f"to_regclass({lit('public.' + table)})"


# --------------------------------------------------------------------------------------------------
# declarative table shapes
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as format_type() prints it, e.g. "uuid", "numeric(8,2)", "timestamp with time zone"
    not_null: bool = False
    default: str | None = None  # SQL expression
    generated: str | None = None  # expression for GENERATED ALWAYS AS (...) STORED

    def ddl(self) -> str:
        name = f'"{self.name}"' if self.name in ("window", "position") else self.name
        parts = [name, self.type]
        if self.generated:
            parts.append(f"GENERATED ALWAYS AS ({self.generated}) STORED")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.not_null:
            parts.append("NOT NULL")
        return " ".join(parts)

    @property
    def addable(self) -> bool:
        """Can be added to an existing table without a value for existing rows."""
        return not self.not_null or self.default is not None or self.generated is not None


@dataclass(frozen=True)
class Table:
    name: str
    columns: Sequence[Column]
    primary_key: Sequence[str] = ()
    greenfield_only: bool = False  # e.g. restaurant_capacity_rules: never recreated on adoption

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@dataclass(frozen=True)
class Constraint:
    table: str
    name: str
    definition: str  # e.g. "CHECK (capacity > 0)", "FOREIGN KEY (x) REFERENCES public.t(id) ON DELETE CASCADE"

    @property
    def validatable(self) -> bool:
        head = self.definition.lstrip().upper()
        return head.startswith("CHECK") or head.startswith("FOREIGN KEY")


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    definition: str  # everything after "ON public.<table>", e.g. "(restaurant_id, status)" or "USING gist (...)"
    unique: bool = False


@dataclass
class Revision:
    """Collects the ids of what a revision touches, for its downgrade and for the doctor."""

    id: str
    tables: list[Table] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# ledger, mode, session settings
# --------------------------------------------------------------------------------------------------
def create_ledger() -> str:
    return f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
    revision text NOT NULL,
    object_kind text NOT NULL,
    object_name text NOT NULL,
    action text NOT NULL CHECK (action IN ('created', 'altered', 'replaced', 'adopted', 'greenfield', 'adopted_db', 'report')),
    previous_definition text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (revision, object_kind, object_name)
);"""


def record_mode(revision: str) -> str:
    """Greenfield if `restaurants` does not exist yet, else adopted; recorded once."""
    return do_block(
        f"""IF NOT EXISTS (SELECT 1 FROM {LEDGER} WHERE object_kind = 'mode' AND object_name = 'deployment') THEN
    INSERT INTO {LEDGER} (revision, object_kind, object_name, action)
    VALUES ({lit(revision)}, 'mode', 'deployment',
            CASE WHEN {regclass('restaurants')} IS NULL THEN {lit(MODE_GREENFIELD)} ELSE {lit(MODE_ADOPTED)} END);
END IF;"""
    )


def forget_revision(revision: str) -> str:
    """Downgrade epilogue: the revision's ledger rows go with it."""
    return f"DELETE FROM {LEDGER} WHERE revision = {lit(revision)};"


# --------------------------------------------------------------------------------------------------
# tables and columns
# --------------------------------------------------------------------------------------------------
def _type_matches_sql(expected: str, actual_expr: str) -> str:
    """SQL boolean: the formatted actual type is compatible with the expected one."""
    exp = expected.lower()
    if exp == "text":
        alts = ", ".join(lit(a) for a in _TEXT_ALIASES)
        return f"(split_part(regexp_replace({actual_expr}, '^public\\.', ''), '(', 1) IN ({alts}))"
    return f"(regexp_replace({actual_expr}, '^public\\.', '') = {lit(exp)})"


def ensure_table(
    revision: str,
    table: Table,
    *,
    columns: Sequence[str] | None = None,
    adopt_columns: Sequence[str] | None = None,
) -> str:
    """Create the table if missing (with ``columns`` or all its columns), else adopt it and add missing columns.

    ``adopt_columns`` (default: the same as ``columns``) limits which columns are checked and added on an
    existing table — e.g. co-owned columns whose original types vary are created in greenfield only.
    An existing column of an incompatible type, or a missing NOT NULL column without default, stops the
    revision with a drift error: nothing is ever cast or rewritten automatically.
    """
    cols = [c for c in table.columns if columns is None or c.name in columns]
    col_ddl = ",\n    ".join(c.ddl() for c in cols)
    pk = f",\n    PRIMARY KEY ({', '.join(table.primary_key)})" if table.primary_key else ""
    create = f"CREATE TABLE public.{table.name} (\n    {col_ddl}{pk}\n)"
    guard_adopt = ""
    if table.greenfield_only:
        guard_adopt = f" AND {MODE_EXPR} = {lit(MODE_GREENFIELD)}"
    body = f"""IF {regclass(table.name)} IS NULL{guard_adopt} THEN
    EXECUTE {dollar(create, 'ddl')};
    {ledger_insert(revision, 'table', table.name, 'created')}
ELSIF {regclass(table.name)} IS NOT NULL THEN
    {ledger_insert(revision, 'table', table.name, 'adopted')}
END IF;"""
    checked = [c.name for c in cols] if adopt_columns is None else [c.name for c in cols if c.name in adopt_columns]
    return do_block(body) + "\n" + ensure_columns(revision, table, checked, unless_created=True)


def ensure_columns(revision: str, table: Table, names: Iterable[str], *, unless_created: bool = False) -> str:
    """Add each listed column when missing; refuse incompatible existing ones.

    ``unless_created``: skip the check when the ledger says ``revision`` created the table (its columns are
    then exactly the target ones; this keeps the ledger free of "adopted" rows for our own columns)."""
    stmts = []
    for name in names:
        col = table.column(name)
        qname = f'"{col.name}"' if col.name in ("window", "position") else col.name
        if col.addable:
            add = (
                f"EXECUTE {dollar(f'ALTER TABLE public.{table.name} ADD COLUMN {col.ddl()}', 'ddl')};\n"
                f"        {ledger_insert(revision, 'column', f'{table.name}.{col.name}', 'created')}"
            )
        else:
            add = (
                "RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_drift_column_missing', "
                f"DETAIL = {lit(f'{table.name}.{col.name} ({col.type} NOT NULL, no default) is missing and cannot be added to existing rows')}, "
                "HINT = 'add the column with a value for every row, then re-run the migration';"
            )
        stmts.append(
            f"""    SELECT format_type(atttypid, atttypmod) INTO v_type FROM pg_attribute
     WHERE attrelid = {regclass(table.name)} AND attname = {lit(col.name)} AND attnum > 0 AND NOT attisdropped;
    IF v_type IS NULL THEN
        {add}
    ELSIF NOT {_type_matches_sql(col.type, 'v_type')} THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_drift_column_type',
            DETAIL = format('%s.%s is %s, expected %s', {lit(table.name)}, {lit(col.name)}, v_type, {lit(col.type)}),
            HINT = 'convert the column by hand (no automatic type change), then re-run the migration';
    ELSE
        {ledger_insert(revision, 'column', f'{table.name}.{col.name}', 'adopted')}
    END IF;"""
        )
        del qname
    if not stmts:
        return ""
    created = ""
    if unless_created:
        created = (
            f"\n   AND NOT EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = 'table'"
            f" AND object_name = {lit(table.name)} AND action = 'created')"
        )
    body = f"IF {regclass(table.name)} IS NOT NULL{created} THEN\n" + "\n".join(stmts) + "\nEND IF;"
    return do_block(body, declare="    v_type text;")


def drop_created_columns(revision: str, table: str, columns: Sequence[str], *, allow_data_loss: bool) -> str:
    """Downgrade: drop columns the ledger says this revision created; refuse if they hold data."""
    stmts = []
    for name in columns:
        key = f"{table}.{name}"
        qname = f'"{name}"' if name in ("window", "position") else name
        stmts.append(
            f"""IF EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = 'column'
              AND object_name = {lit(key)} AND action = 'created')
   AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {regclass(table)} AND attname = {lit(name)} AND NOT attisdropped) THEN
    IF {'false' if allow_data_loss else 'true'} THEN
        EXECUTE format('SELECT count(*) FROM public.{table} WHERE {qname} IS NOT NULL') INTO v_count;
        IF v_count > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_downgrade_data_loss',
                DETAIL = format('%s rows hold a value in {key}', v_count),
                HINT = 're-run with -x allow_data_loss=true to drop it anyway';
        END IF;
    END IF;
    EXECUTE {dollar(f'ALTER TABLE public.{table} DROP COLUMN {qname}', 'ddl')};
END IF;"""
        )
    return do_block("\n".join(stmts), declare="    v_count bigint;")


def drop_created_tables(revision: str, tables: Sequence[str]) -> str:
    """Downgrade: drop (no CASCADE) the tables this revision created, in the order given."""
    stmts = [
        f"""IF EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = 'table'
              AND object_name = {lit(t)} AND action = 'created') AND {regclass(t)} IS NOT NULL THEN
    EXECUTE {dollar(f'DROP TABLE public.{t}', 'ddl')};
END IF;"""
        for t in tables
    ]
    return do_block("\n".join(stmts))


# --------------------------------------------------------------------------------------------------
# constraints and indexes
# --------------------------------------------------------------------------------------------------
def constraint_exists_sql(table: str, name: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {regclass(table)} AND conname = {lit(name)})"
    )


def ensure_constraint(
    revision: str, con: Constraint, *, greenfield_only: bool = False, refuse_when: tuple[str, str] | None = None
) -> str:
    """Add a missing constraint; CHECK and FK constraints are added NOT VALID (see :func:`validate`).

    ``greenfield_only``: never added to an adopted database (e.g. a UNIQUE constraint that adoption builds
    concurrently through :func:`unique_constraint_index` + :func:`attach_unique_constraint` instead).
    ``refuse_when``: (SQL condition, plpgsql statement) — an existing object that must not be adopted
    (e.g. a constraint of this name with another shape) runs the statement, typically a RAISE."""
    suffix = " NOT VALID" if con.validatable else ""
    add = f"ALTER TABLE public.{con.table} ADD CONSTRAINT {con.name} {con.definition}{suffix}"
    only_gf = f" OR {MODE_EXPR} IS DISTINCT FROM {lit(MODE_GREENFIELD)}" if greenfield_only else ""
    refuse = f"\nELSIF {refuse_when[0]} THEN\n    {refuse_when[1]}" if refuse_when else ""
    return do_block(
        f"""IF {regclass(con.table)} IS NULL{only_gf} THEN
    RETURN;{refuse}
ELSIF NOT {constraint_exists_sql(con.table, con.name)} THEN
    EXECUTE {dollar(add, 'ddl')};
    {ledger_insert(revision, 'constraint', f'{con.table}.{con.name}', 'created')}
ELSE
    {ledger_insert(revision, 'constraint', f'{con.table}.{con.name}', 'adopted')}
END IF;"""
    )


def validate(constraints: Iterable[Constraint]) -> str:
    """VALIDATE every listed NOT VALID constraint. Run it in an autocommit block: SHARE UPDATE EXCLUSIVE only."""
    stmts = []
    for con in constraints:
        if not con.validatable:
            continue
        stmts.append(
            f"""IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {regclass(con.table)} AND conname = {lit(con.name)}
           AND NOT convalidated) THEN
    EXECUTE {dollar(f'ALTER TABLE public.{con.table} VALIDATE CONSTRAINT {con.name}', 'ddl')};
END IF;"""
        )
    return do_block("\n".join(stmts)) if stmts else ""


def drop_created_constraints(revision: str, constraints: Sequence[Constraint]) -> str:
    stmts = [
        f"""IF EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = 'constraint'
              AND object_name = {lit(f'{c.table}.{c.name}')} AND action = 'created')
   AND {regclass(c.table)} IS NOT NULL AND {constraint_exists_sql(c.table, c.name)} THEN
    EXECUTE {dollar(f'ALTER TABLE public.{c.table} DROP CONSTRAINT {c.name}', 'ddl')};
END IF;"""
        for c in constraints
    ]
    return do_block("\n".join(stmts)) if stmts else ""


def prepare_index(revision: str, idx: Index) -> str:
    """Before a concurrent build: drop an invalid leftover of that name, record created/adopted."""
    return do_block(
        f"""IF {regclass(idx.table)} IS NULL THEN
    RETURN;
END IF;
IF EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = {regclass(idx.name)} AND NOT i.indisvalid) THEN
    -- an interrupted CREATE INDEX CONCURRENTLY left this behind
    EXECUTE {dollar(f'DROP INDEX public.{idx.name}', 'ddl')};
END IF;
IF {regclass(idx.name)} IS NULL THEN
    {ledger_insert(revision, 'index', idx.name, 'created')}
ELSE
    {ledger_insert(revision, 'index', idx.name, 'adopted')}
END IF;"""
    )


def create_index_concurrently(idx: Index) -> str:
    """Must run in an autocommit block. A no-op (no DDL object) when the index exists."""
    unique = "UNIQUE " if idx.unique else ""
    return f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {idx.name} ON public.{idx.table} {idx.definition};"


def create_index_greenfield(revision: str, idx: Index) -> str:
    """Greenfield only: build the index directly in the revision transaction (the tables are empty).

    On an adopted database this does nothing; the concurrent pair (:func:`prepare_index` +
    :func:`create_index_concurrently`) builds it there."""
    unique = "UNIQUE " if idx.unique else ""
    create = f"CREATE {unique}INDEX {idx.name} ON public.{idx.table} {idx.definition}"
    return do_block(
        f"""IF {regclass(idx.table)} IS NOT NULL AND {regclass(idx.name)} IS NULL
   AND {MODE_EXPR} = {lit(MODE_GREENFIELD)} THEN
    EXECUTE {dollar(create, 'ddl')};
    {ledger_insert(revision, 'index', idx.name, 'created')}
END IF;"""
    )


def unique_constraint_index(con: Constraint) -> Index:
    """The unique index behind a ``UNIQUE (cols)`` constraint, under the constraint's name."""
    head = con.definition.strip()
    if not head.upper().startswith("UNIQUE"):
        raise ValueError(f"{con.name} is not a UNIQUE constraint")
    return Index(con.name, con.table, head[len("UNIQUE"):].strip(), unique=True)


def prepare_unique_index(con: Constraint) -> str:
    """Before building a unique constraint's index concurrently: drop an invalid leftover of that name.
    Does nothing when the constraint already exists."""
    return do_block(
        f"""IF {regclass(con.table)} IS NULL OR {constraint_exists_sql(con.table, con.name)} THEN
    RETURN;
END IF;
IF EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = {regclass(con.name)} AND NOT i.indisvalid) THEN
    EXECUTE {dollar(f'DROP INDEX public.{con.name}', 'ddl')};
END IF;"""
    )


def attach_unique_constraint(revision: str, con: Constraint) -> str:
    """Turn the concurrently built unique index into the named constraint (brief lock, no scan)."""
    attach = f"ALTER TABLE public.{con.table} ADD CONSTRAINT {con.name} UNIQUE USING INDEX {con.name}"
    return do_block(
        f"""IF {regclass(con.table)} IS NOT NULL AND NOT {constraint_exists_sql(con.table, con.name)}
   AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = {regclass(con.name)} AND i.indisvalid AND i.indisunique) THEN
    EXECUTE {dollar(attach, 'ddl')};
    {ledger_insert(revision, 'constraint', f'{con.table}.{con.name}', 'created')}
END IF;"""
    )


def drop_created_indexes(revision: str, indexes: Sequence[Index]) -> str:
    stmts = [
        f"""IF EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = 'index'
              AND object_name = {lit(i.name)} AND action = 'created') AND {regclass(i.name)} IS NOT NULL THEN
    EXECUTE {dollar(f'DROP INDEX public.{i.name}', 'ddl')};
END IF;"""
        for i in indexes
    ]
    return do_block("\n".join(stmts)) if stmts else ""


# --------------------------------------------------------------------------------------------------
# functions
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Function:
    """A function this service owns. ``signature`` is the identity form used by to_regprocedure,
    e.g. ``public.current_restaurant_id()``; ``header`` is everything between CREATE OR REPLACE FUNCTION
    and AS (name with named arguments, RETURNS, LANGUAGE, volatility, SECURITY DEFINER, SET …)."""

    signature: str
    header: str
    body: str
    security_definer: bool = False
    grant_to: Sequence[str] = ("service_role",)

    @property
    def create_sql(self) -> str:
        return f"CREATE OR REPLACE FUNCTION {self.header}\nAS {dollar(self.body, 'fn')}"

    def marker(self, revision: str) -> str:
        """``capacity-service:<revision>:<md5 of the definition>``; revisions after the released ones append
        ``:<md5 of the body>``, so a re-run of an earlier revision can tell a later revision's definition
        from a foreign body under a stale comment (CREATE OR REPLACE keeps the comment)."""
        from service.schema.released import RELEASED_REVISIONS

        marker = f"capacity-service:{revision}:{md5(self.create_sql)}"
        return marker if revision in RELEASED_REVISIONS else f"{marker}:{md5(self.body)}"


def _later_markers_sql(revision: str) -> str:
    """SQL array of LIKE patterns matching the markers of the revisions after ``revision`` in the chain."""
    from service.schema.migrate import revisions

    chain = list(revisions())
    later = chain[chain.index(revision) + 1 :] if revision in chain else []
    return "ARRAY[" + ", ".join(lit(f"capacity-service:{r}:%") for r in later) + "]::text[]"


def ensure_function(revision: str, fn: Function, *, keep_existing_when_adopted: bool = False) -> str:
    """(Re)create the function unless the live one carries this exact marker and body.

    The previous definition is saved in the ledger the first time it is replaced, so a downgrade can
    restore it byte for byte. ``keep_existing_when_adopted``: a function another domain owns on an adopted
    database (e.g. the booking domain's ``set_booking_instants``) is left exactly as found.
    """
    marker = fn.marker(revision)
    later = _later_markers_sql(revision)
    keep = ""
    if keep_existing_when_adopted:
        keep = f"""IF v_oid IS NOT NULL AND {MODE_EXPR} = {lit(MODE_ADOPTED)}
   AND obj_description(v_oid, 'pg_proc') IS DISTINCT FROM {lit(marker)} THEN
    {ledger_insert(revision, 'function', fn.signature, 'adopted')}
    RETURN;  -- not ours on this database
END IF;
"""
    grants = []
    if fn.security_definer:
        grants.append(f"EXECUTE 'REVOKE ALL ON FUNCTION {fn.signature} FROM PUBLIC';")
    for role in fn.grant_to:
        grants.append(f"EXECUTE 'GRANT EXECUTE ON FUNCTION {fn.signature} TO {role}';")
    grants_sql = "\n    ".join(grants)
    return do_block(
        f"""v_oid := to_regprocedure({lit(fn.signature)});
IF v_oid IS NOT NULL
   AND obj_description(v_oid, 'pg_proc') IS NOT DISTINCT FROM {lit(marker)}
   AND (SELECT md5(prosrc) FROM pg_proc WHERE oid = v_oid) = {lit(md5(fn.body))} THEN
    RETURN;  -- already this revision's definition
END IF;
IF v_oid IS NOT NULL AND obj_description(v_oid, 'pg_proc') LIKE ANY ({later})
   AND split_part(obj_description(v_oid, 'pg_proc'), ':', 4) = (SELECT md5(prosrc) FROM pg_proc WHERE oid = v_oid) THEN
    RETURN;  -- a later revision of this service re-created it: a re-run of the chain keeps that one
END IF;
{keep}IF v_oid IS NOT NULL THEN
    {ledger_insert(revision, 'function', fn.signature, 'replaced', 'pg_get_functiondef(v_oid)')}
ELSE
    {ledger_insert(revision, 'function', fn.signature, 'created')}
END IF;
EXECUTE {dollar(fn.create_sql, 'ddl')};
EXECUTE {dollar(f'COMMENT ON FUNCTION {fn.signature} IS {lit(marker)}', 'ddl')};
IF {MODE_EXPR} = {lit(MODE_GREENFIELD)} THEN
    EXECUTE {dollar(f'ALTER FUNCTION {fn.signature} OWNER TO capacity_owner', 'ddl')};
END IF;
    {grants_sql}""",
        declare="    v_oid regprocedure;",
    )


def restore_functions(revision: str, signatures: Sequence[str]) -> str:
    """Downgrade: put back replaced definitions from the ledger; drop functions this revision created."""
    stmts = []
    for sig in signatures:
        stmts.append(
            f"""SELECT action, previous_definition INTO v_action, v_prev FROM {LEDGER}
 WHERE revision = {lit(revision)} AND object_kind = 'function' AND object_name = {lit(sig)};
IF v_action = 'replaced' AND v_prev IS NOT NULL THEN
    EXECUTE v_prev;
ELSIF v_action = 'created' AND to_regprocedure({lit(sig)}) IS NOT NULL THEN
    EXECUTE {dollar(f'DROP FUNCTION {sig}', 'ddl')};
END IF;"""
        )
    return do_block("\n".join(stmts), declare="    v_action text;\n    v_prev text;")


# --------------------------------------------------------------------------------------------------
# triggers
# --------------------------------------------------------------------------------------------------
def ensure_trigger(
    revision: str, table: str, name: str, create_sql: str, *, updated_at: bool = False, greenfield_only: bool = False
) -> str:
    """Create a missing trigger. ``updated_at=True``: an adopted table that already has *any* BEFORE UPDATE
    trigger calling an updated_at-style function keeps it and gets no second one. ``greenfield_only``: never
    added on an adopted database (e.g. bookings_set_instants: the booking domain owns that trigger there)."""
    only_gf = f" OR {MODE_EXPR} IS DISTINCT FROM {lit(MODE_GREENFIELD)}" if greenfield_only else ""
    extra = ""
    if updated_at:
        extra = f"""
ELSIF EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
              WHERE t.tgrelid = {regclass(table)} AND NOT t.tgisinternal
                AND (t.tgtype & 2) <> 0 AND (t.tgtype & 16) <> 0
                AND (p.proname ILIKE '%updated_at%' OR p.proname ILIKE '%timestamp%' OR p.proname ILIKE '%touch%')) THEN
    {ledger_insert(revision, 'trigger', f'{table}.{name}', 'adopted')}"""
    return do_block(
        f"""IF {regclass(table)} IS NULL{only_gf} THEN
    RETURN;
ELSIF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = {regclass(table)} AND tgname = {lit(name)} AND NOT tgisinternal) THEN
    {ledger_insert(revision, 'trigger', f'{table}.{name}', 'adopted')}{extra}
ELSE
    EXECUTE {dollar(create_sql, 'ddl')};
    {ledger_insert(revision, 'trigger', f'{table}.{name}', 'created')}
END IF;"""
    )


def drop_created_triggers(revision: str, triggers: Sequence[tuple[str, str]]) -> str:
    stmts = [
        f"""IF EXISTS (SELECT 1 FROM {LEDGER} WHERE revision = {lit(revision)} AND object_kind = 'trigger'
              AND object_name = {lit(f'{t}.{n}')} AND action = 'created') AND {regclass(t)} IS NOT NULL THEN
    EXECUTE {dollar(f'DROP TRIGGER IF EXISTS {n} ON public.{t}', 'ddl')};
END IF;"""
        for t, n in triggers
    ]
    return do_block("\n".join(stmts)) if stmts else ""


# --------------------------------------------------------------------------------------------------
# RLS, policies, grants, ownership
# --------------------------------------------------------------------------------------------------
def ensure_rls(table: str) -> str:
    return do_block(
        f"""IF {regclass(table)} IS NOT NULL
   AND NOT (SELECT relrowsecurity FROM pg_class WHERE oid = {regclass(table)}) THEN
    EXECUTE {dollar(f'ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY', 'ddl')};
END IF;"""
    )


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ensure_policy(revision: str, table: str, name: str, spec: str, *, only_if: str | None = None) -> str:
    """(Re)create a policy unless it carries this revision's marker comment.

    ``spec`` is what follows ``CREATE POLICY <name> ON <table>``, e.g.
    ``FOR ALL TO service_role USING (...) WITH CHECK (...)``. ``only_if``: an SQL condition decided at run
    time (e.g. ``to_regprocedure('auth.uid()') IS NOT NULL``); when false nothing happens.
    """
    create = f"CREATE POLICY {quote_ident(name)} ON public.{table} {spec}"
    marker = f"capacity-service:{revision}:{md5(create)}"
    cond = f" OR NOT ({only_if})" if only_if else ""
    return do_block(
        f"""IF {regclass(table)} IS NULL{cond} THEN
    RETURN;
END IF;
IF EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = {regclass(table)} AND polname = {lit(name)}
           AND obj_description(oid, 'pg_policy') IS NOT DISTINCT FROM {lit(marker)}) THEN
    RETURN;
END IF;
IF EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = {regclass(table)} AND polname = {lit(name)}) THEN
    {ledger_insert(revision, 'policy', f'{table}.{name}', 'replaced')}
    EXECUTE {dollar(f'DROP POLICY {quote_ident(name)} ON public.{table}', 'ddl')};
ELSE
    {ledger_insert(revision, 'policy', f'{table}.{name}', 'created')}
END IF;
EXECUTE {dollar(create, 'ddl')};
EXECUTE {dollar(f'COMMENT ON POLICY {quote_ident(name)} ON public.{table} IS {lit(marker)}', 'ddl')};"""
    )


def drop_policy(table: str, name: str) -> str:
    """Drop a policy by name if present (used for the original's permissive `USING (true)` policies)."""
    return do_block(
        f"""IF {regclass(table)} IS NOT NULL
   AND EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = {regclass(table)} AND polname = {lit(name)}) THEN
    EXECUTE {dollar(f'DROP POLICY {quote_ident(name)} ON public.{table}', 'ddl')};
END IF;"""
    )


def drop_open_policies(revision: str, table: str, role: str, keep: Sequence[str] = ()) -> str:
    """Drop every permissive policy on ``table`` that lets ``role`` (or PUBLIC) see all rows (``USING (true)``).

    Permissive policies are OR-combined, so one such leftover voids every tenant policy on the table
    (docs/schema.md §4.2 item 6). Matched by shape, not by name: adopted databases name them in many ways.
    Each dropped definition is saved in the ledger. ``keep``: this service's own policies of that shape.
    """
    keep_sql = ", ".join(lit(k) for k in keep) or "NULL"
    return do_block(
        f"""IF {regclass(table)} IS NULL THEN
    RETURN;
END IF;
FOR r IN
    SELECT p.policyname, p.cmd, p.roles, p.qual, p.with_check
      FROM pg_policies p
     WHERE p.schemaname = 'public' AND p.tablename = {lit(table)} AND p.permissive = 'PERMISSIVE'
       AND coalesce(p.qual, 'true') = 'true' AND coalesce(p.with_check, 'true') = 'true'
       AND ({lit(role)} = ANY (p.roles) OR 'public' = ANY (p.roles))
       AND p.policyname NOT IN ({keep_sql})
LOOP
    INSERT INTO {LEDGER} (revision, object_kind, object_name, action, previous_definition)
    VALUES ({lit(revision)}, 'policy', {lit(table + '.')} || r.policyname, 'replaced',
            format('CREATE POLICY %I ON public.{table} FOR %s TO %s%s%s', r.policyname, r.cmd,
                   array_to_string(r.roles, ', '),
                   CASE WHEN r.qual IS NOT NULL THEN ' USING (' || r.qual || ')' ELSE '' END,
                   CASE WHEN r.with_check IS NOT NULL THEN ' WITH CHECK (' || r.with_check || ')' ELSE '' END))
    ON CONFLICT (revision, object_kind, object_name) DO NOTHING;
    EXECUTE format('DROP POLICY %I ON public.{table}', r.policyname);
END LOOP;""",
        declare="    r record;",
    )


def ensure_grants(table: str, role: str, privileges: Sequence[str]) -> str:
    """GRANT only the privileges the role lacks (a GRANT that changes nothing is still a DDL event)."""
    stmts = [
        f"""IF NOT has_table_privilege({lit(role)}, {lit('public.' + table)}, {lit(p)}) THEN
    EXECUTE {dollar(f'GRANT {p} ON public.{table} TO {role}', 'ddl')};
END IF;"""
        for p in privileges
    ]
    return do_block(
        f"IF {regclass(table)} IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {lit(role)}) THEN\n"
        "    RETURN;\nEND IF;\n" + "\n".join(stmts)
    )


def revoke_all(table: str, role: str) -> str:
    """Remove every privilege granted directly to ``role`` on the table (e.g. the original's anon SELECT)."""
    return do_block(
        f"""IF {regclass(table)} IS NOT NULL AND EXISTS (
    SELECT 1 FROM pg_class c, aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee
    WHERE c.oid = {regclass(table)} AND r.rolname = {lit(role)}) THEN
    EXECUTE {dollar(f'REVOKE ALL ON public.{table} FROM {role}', 'ddl')};
END IF;"""
    )


def ensure_owner_greenfield(table: str, owner: str = "capacity_owner") -> str:
    """Greenfield only: hand the table to the owner role. Adopted tables keep their owner (doctor warns)."""
    return do_block(
        f"""IF {regclass(table)} IS NOT NULL AND {MODE_EXPR} = {lit(MODE_GREENFIELD)}
   AND (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = {regclass(table)}) <> {lit(owner)} THEN
    EXECUTE {dollar(f'ALTER TABLE public.{table} OWNER TO {owner}', 'ddl')};
END IF;"""
    )


def refuse(message: str, detail: str, hint: str | None = None) -> str:
    """plpgsql RAISE with a stable message key."""
    parts = ["ERRCODE = 'P0001'", f"MESSAGE = {lit(message)}", f"DETAIL = {detail}"]
    if hint:
        parts.append(f"HINT = {lit(hint)}")
    return "RAISE EXCEPTION USING " + ", ".join(parts) + ";"
