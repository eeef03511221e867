"""Pre-flight checks run before any revision (``capacity-service migrate``, every online upgrade, and the
head of the offline script).

One read-only ``DO`` block collects every finding and raises once, listing them all, so an operator
sees the whole picture in one run. Message = the first finding's code; DETAIL = one finding per line
(``code: description``).

Every check is guarded by the catalogs, so the block passes on an empty database (nothing to check yet)
and on a database at head (everything already in shape). ``preflight_report`` runs the same checks plus
the read-only queries behind them and returns every overlap pair and duplicate group in full, for
``capacity-service preflight``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from service.schema.ddl import do_block, lit, regclass
from service.schema.shapes import fk_shape_mismatch_sql
from service.settings import Settings

log = logging.getLogger("capacity.preflight")

VERSION_TABLE = "capacity_alembic_version"
OVERLAP = "capacity_preflight_overlap"
DUPLICATE_SCOPE = "strategic_configs_duplicate_scope"
OVERLAP_HINT = (
    "run `capacity-service preflight --format csv > overlaps.csv`, resolve by unassigning or moving bookings, "
    "then re-run"
)
PAIRS_SHOWN = 50
SORT_MEMORY = "256MB"

# Roles revision 0001 creates when missing (docs/schema.md §4.2).
REQUIRED_ROLES = ("anon", "authenticated", "service_role", "capacity_owner", "capacity_app")
_TEXT_ALIASES = ("text", "character varying", "varchar", "citext")


def _check_version_table(known: Sequence[str]) -> str:
    known_array = "ARRAY[" + ", ".join(lit(k) for k in known) + "]::text[]"
    return f"""-- unknown or multiple revisions in the version table (fixtures F1/F2)
IF to_regclass('public.{VERSION_TABLE}') IS NOT NULL THEN
    SELECT array_agg(version_num ORDER BY version_num) INTO v_versions FROM public.{VERSION_TABLE};
    IF cardinality(v_versions) > 1 OR EXISTS (SELECT 1 FROM unnest(v_versions) v WHERE v <> ALL ({known_array})) THEN
        v_findings := v_findings || format(
            'capacity_unknown_revision: unknown revision(s) in {VERSION_TABLE}: %s; known head: %s',
            array_to_string(ARRAY(SELECT v FROM unnest(v_versions) v WHERE v <> ALL ({known_array})), ', '),
            {lit(known[0] if known else '')})
            || CASE WHEN cardinality(v_versions) > 1
                    THEN format(' (multiple rows: %s)', array_to_string(v_versions, ', ')) ELSE '' END;
    END IF;
END IF;"""


def _has_columns_sql(table: str, columns: Sequence[str]) -> str:
    cols = "ARRAY[" + ", ".join(lit(c) for c in columns) + "]::name[]"
    return (
        f"({regclass(table)} IS NOT NULL AND (SELECT count(*) FROM pg_attribute WHERE attrelid = {regclass(table)}"
        f" AND attname = ANY ({cols}) AND attnum > 0 AND NOT attisdropped) = {len(columns)})"
    )


# --------------------------------------------------------------------------------------------------
# overlaps (0003 step 2) — the same SQL feeds the DO-block check and the full report
# --------------------------------------------------------------------------------------------------
ALLOCATION_COLUMNS = ("id", "restaurant_id", "booking_id", "resource_type", "resource_id", "window", "shadow")
ASSIGNMENT_COLUMNS = ("id", "booking_id", "table_id", "start_at", "end_at")

def _overlap_pairs_sql(
    table: str, partition: str, window: str, where: str, columns: str, partner_columns: str
) -> str:
    """Every overlapping pair of rows of ``table`` on the same resource (``partition``), each pair once, in
    O(n log n): one sort by resource and window start, not a self-join.

    Sorted by (start, id) within a resource, a row overlaps an earlier one exactly when it starts before the
    furthest end reached so far (or at it, when both bounds are inclusive) — the running maximum below.
    Only those flagged rows, normally none, are then joined with the earlier rows of their resource to name
    the pairs. ``window`` is the row's range expression; ``columns`` / ``partner_columns`` list the
    per-row output columns as ``<expr> AS <name>_a`` / ``<expr> AS <name>_b`` for the later / earlier row."""
    start = f"coalesce(lower({window}), '-infinity'::timestamptz)"
    return f"""WITH sorted AS (
    SELECT r.*, {window} AS w, {start} AS w_start,
           max(coalesce(upper({window}), 'infinity'::timestamptz)) OVER reach AS reach_end,
           bool_or(upper_inc({window})) OVER reach AS reach_inclusive
      FROM public.{table} r
     WHERE {where} AND NOT isempty({window})
    WINDOW reach AS (PARTITION BY {partition} ORDER BY {start}, r.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), flagged AS (
    SELECT * FROM sorted
     WHERE w_start < reach_end OR (w_start = reach_end AND lower_inc(w) AND reach_inclusive)
)
SELECT least(f.id, e.id) AS id_a, greatest(f.id, e.id) AS id_b, {columns}, {partner_columns}
  FROM flagged f
  JOIN public.{table} e
    ON {" AND ".join(f"e.{c.strip()} = f.{c.strip()}" for c in partition.split(","))}
   AND {window.replace("r.", "e.")} && f.w
   AND ({start.replace("r.", "e.")}, e.id) < (f.w_start, f.id)
 WHERE {where.replace("r.", "e.")}"""


def _pair(first: str, second: str) -> str:
    """``first`` for the pair's smaller id, ``second`` for the other (pairs are reported as id_a < id_b)."""
    return f"CASE WHEN f.id < e.id THEN {first} ELSE {second} END"


ALLOCATION_OVERLAPS_SQL = _overlap_pairs_sql(
    "allocations",
    "restaurant_id, resource_type, resource_id",
    'r."window"',
    "NOT r.shadow",
    ", ".join(
        [
            f"{_pair('f.booking_id', 'e.booking_id')} AS booking_a",
            "f.restaurant_id, f.resource_type, f.resource_id",
            f"""{_pair('f."window"', 'e."window"')} AS window_a""",
        ]
    ),
    ", ".join(
        [
            f"{_pair('e.booking_id', 'f.booking_id')} AS booking_b",
            f"""{_pair('e."window"', 'f."window"')} AS window_b""",
        ]
    ),
)

INVALID_WINDOWS_SQL = """SELECT id, booking_id, restaurant_id, resource_type, resource_id, "window"
  FROM public.allocations
 WHERE isempty("window") OR lower_inf("window") OR upper_inf("window")"""

_ASSIGNMENT_WINDOW = "tstzrange(r.start_at, r.end_at, '[)')"
ASSIGNMENT_OVERLAPS_SQL = _overlap_pairs_sql(
    "booking_table_assignments",
    "table_id",
    _ASSIGNMENT_WINDOW,
    "r.start_at < r.end_at",
    ", ".join(
        [
            f"{_pair('f.booking_id', 'e.booking_id')} AS booking_a",
            "f.table_id",
            f"{_pair('f.w', _ASSIGNMENT_WINDOW.replace('r.', 'e.'))} AS window_a",
        ]
    ),
    ", ".join(
        [
            f"{_pair('e.booking_id', 'f.booking_id')} AS booking_b",
            f"{_pair(_ASSIGNMENT_WINDOW.replace('r.', 'e.'), 'f.w')} AS window_b",
        ]
    ),
)

# The constraint whose absence makes the assignment-overlap check necessary.
ASSIGNMENT_EXCLUSION = "no_overlapping_table_assignments"

OVERLAP_DECLARE = "    v_count bigint;\n    v_sample text;\n    v_rows bigint;\n    v_started timestamptz;"


def progress_sql(check: str, rows_sql: str | None = None) -> str:
    """plpgsql: a NOTICE ``capacity pre-flight <check>: <rows> rows, <s> s`` (rows done = total: each check
    is one statement) and restart the clock in ``v_started``. The migration prints NOTICEs on stderr."""
    rows = f"SELECT count(*) INTO v_rows FROM {rows_sql};\n" if rows_sql else ""
    return f"""{rows}RAISE NOTICE 'capacity pre-flight %: % rows checked in % s', {lit(check)}, coalesce(v_rows::text, '-'),
    round(extract(epoch FROM clock_timestamp() - v_started)::numeric, 1);
v_started := clock_timestamp();"""


def _findings_from_pairs(pairs_sql: str, describe: str, what: str) -> str:
    """plpgsql: count the pairs and format the first ones in one pass (the pair query runs once)."""
    return f"""    SELECT count(*), string_agg({describe}, '; ' ORDER BY id_a, id_b) FILTER (WHERE n <= {PAIRS_SHOWN})
      INTO v_count, v_sample
      FROM (SELECT p.*, row_number() OVER (ORDER BY id_a, id_b) AS n FROM ({pairs_sql}) p) s;
    IF v_count > 0 THEN
        v_findings := v_findings || format(
            '{OVERLAP}: %s {what}; first {PAIRS_SHOWN}: %s', v_count, v_sample);
    END IF;"""


def invalid_windows_sql(*, guarded: bool = True) -> str:
    """plpgsql: append a finding for allocations with an empty or unbounded window (no exclusion constraint
    rejects those). ``guarded``: only when allocations has the columns the query reads."""
    check = f"""    SELECT count(*), string_agg(format('%s (%s)', id, "window"), '; ')
      INTO v_count, v_sample FROM ({INVALID_WINDOWS_SQL}) w;
    IF v_count > 0 THEN
        v_findings := v_findings || format('{OVERLAP}: %s allocation(s) with an empty or unbounded window: %s',
                                           v_count, v_sample);
    END IF;"""
    if not guarded:
        return check
    return f"IF {_has_columns_sql('allocations', ALLOCATION_COLUMNS)} THEN\n{check}\nEND IF;"


def overlap_findings_sql(*, assignment_condition: str | None = None) -> str:
    """plpgsql fragment appending ``capacity_preflight_overlap: …`` lines to ``v_findings`` (needs
    :data:`OVERLAP_DECLARE`): non-shadow allocation overlaps, empty/unbounded windows, and — while
    ``no_overlapping_table_assignments`` is missing (or while ``assignment_condition`` holds) — overlapping
    assignment windows. DETAIL shows the count and the first 50 pairs; nothing is modified. Each check
    reports its row count and time as a NOTICE."""
    assignment_guard = _has_columns_sql("booking_table_assignments", ASSIGNMENT_COLUMNS)
    if assignment_condition:
        assignment_guard = f"{assignment_condition} AND {assignment_guard}"
    else:
        assignment_guard += (
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = "
            f"{regclass('booking_table_assignments')} AND conname = {lit(ASSIGNMENT_EXCLUSION)})"
        )
    allocation_pair = (
        "format('%s & %s (bookings %s & %s; %s %s; %s & %s)', id_a, id_b, booking_a, booking_b, "
        "resource_type, resource_id, window_a, window_b)"
    )
    assignment_pair = (
        "format('%s & %s (bookings %s & %s; table %s; %s & %s)', id_a, id_b, booking_a, booking_b, "
        "table_id, window_a, window_b)"
    )
    return f"""-- overlapping non-shadow allocations / invalid windows / overlapping assignments (0003)
v_started := clock_timestamp();
-- the searches sort every row by resource and start: in memory, not in temporary files (this transaction only)
PERFORM set_config('work_mem', greatest(pg_size_bytes(current_setting('work_mem')), pg_size_bytes('{SORT_MEMORY}'))::text || 'B', true);
IF {_has_columns_sql('allocations', ALLOCATION_COLUMNS)} THEN
{_findings_from_pairs(ALLOCATION_OVERLAPS_SQL, allocation_pair,
                      "overlapping non-shadow allocation pair(s) (same restaurant, resource type and resource)")}
{invalid_windows_sql(guarded=False)}
    {progress_sql("allocation overlaps", "public.allocations")}
END IF;
IF {assignment_guard} THEN
{_findings_from_pairs(ASSIGNMENT_OVERLAPS_SQL, assignment_pair,
                      "overlapping booking_table_assignments pair(s) on the same table")}
    {progress_sql("assignment overlaps", "public.booking_table_assignments")}
END IF;"""


def overlap_guard_sql() -> str:
    """A self-contained DO block for revision 0003: raise ``capacity_preflight_overlap`` or do nothing."""
    return do_block(
        overlap_findings_sql()
        + "\n"
        + overlap_raise_sql(),
        declare="    v_findings text[] := ARRAY[]::text[];\n" + OVERLAP_DECLARE,
    )


def overlap_raise_sql() -> str:
    return f"""IF cardinality(v_findings) > 0 THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = '{OVERLAP}',
        DETAIL = array_to_string(v_findings, E'\\n'), HINT = {lit(OVERLAP_HINT)};
END IF;"""


def _check_overlaps(settings: Settings) -> str:
    return overlap_findings_sql()


# --------------------------------------------------------------------------------------------------
# duplicate strategic_configs scopes (0005 step 7)
# --------------------------------------------------------------------------------------------------
DUPLICATE_SCOPES_SQL = """SELECT restaurant_id, array_agg(id ORDER BY id) AS ids
  FROM public.strategic_configs GROUP BY restaurant_id HAVING count(*) > 1"""


def _check_duplicate_scopes(settings: Settings) -> str:
    return f"""-- several strategic_configs rows for one restaurant, or several global rows (0005 step 7)
IF {_has_columns_sql('strategic_configs', ('id', 'restaurant_id'))} THEN
    SELECT count(*), string_agg(format('%s: %s', coalesce(restaurant_id::text, 'global (restaurant_id NULL)'),
                                       array_to_string(ids, ', ')), '; ')
      INTO v_count, v_sample FROM ({DUPLICATE_SCOPES_SQL}) d;
    IF v_count > 0 THEN
        v_findings := v_findings || format(
            '{DUPLICATE_SCOPE}: %s restaurant scope(s) with several strategic_configs rows (ids): %s', v_count, v_sample);
    END IF;
END IF;"""


# --------------------------------------------------------------------------------------------------
# incompatible shapes, generated from the catalog (0001 step 6, 0002 step 3, 0005 step 2)
# --------------------------------------------------------------------------------------------------
def _catalog_columns() -> list[tuple[str, str, str, bool]]:
    from service.schema.released import catalog

    rows = []
    for table in catalog.TABLES.values():
        skip = catalog.ADOPTION_SKIPS_COLUMNS.get(table.name, frozenset())
        for col in table.columns:
            if col.name not in skip:
                rows.append((table.name, col.name, col.type.lower(), col.addable))
    return rows


def _catalog_foreign_keys():
    from service.schema.released import catalog
    from service.schema.shapes import fk_shape

    return [
        con
        for cons in catalog.CONSTRAINTS.values()
        for con in cons
        if fk_shape(con) is not None and con.name not in catalog.GREENFIELD_ONLY
    ]


def _check_shapes(settings: Settings) -> str:
    values = ",\n        ".join(
        f"({lit(t)}, {lit(c)}, {lit(typ)}, {'true' if addable else 'false'})"
        for t, c, typ, addable in _catalog_columns()
    )
    aliases = ", ".join(lit(a) for a in _TEXT_ALIASES)
    fk_checks = "\n".join(
        f"""IF {regclass(con.table)} IS NOT NULL AND {fk_shape_mismatch_sql(con)} THEN
    v_findings := v_findings || format('capacity_drift_fk_shape: %s.%s is %s, expected %s', {lit(con.table)}, {lit(con.name)},
        (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = {regclass(con.table)} AND conname = {lit(con.name)}),
        {lit(con.definition)});
END IF;"""
        for con in _catalog_foreign_keys()
    )
    return f"""-- existing columns of another type, missing NOT NULL columns without default, FKs of another shape
FOR v_rec IN
    SELECT t.*, CASE WHEN t.typ = 'text' THEN split_part(t.actual, '(', 1) IN ({aliases})
                     ELSE t.actual = t.typ END AS type_ok
      FROM (
    SELECT v.tbl, v.col, v.typ, v.addable,
           regexp_replace(format_type(a.atttypid, a.atttypmod), '^public\\.', '') AS actual
      FROM (VALUES
        {values}) v(tbl, col, typ, addable)
      LEFT JOIN pg_attribute a ON a.attrelid = to_regclass('public.' || v.tbl) AND a.attname = v.col
                              AND a.attnum > 0 AND NOT a.attisdropped
     WHERE to_regclass('public.' || v.tbl) IS NOT NULL) t
LOOP
    IF v_rec.actual IS NULL AND NOT v_rec.addable THEN
        v_findings := v_findings || format(
            'capacity_drift_column_missing: %s.%s (%s NOT NULL, no default) is missing and cannot be added to existing rows',
            v_rec.tbl, v_rec.col, v_rec.typ);
    ELSIF v_rec.actual IS NOT NULL AND NOT v_rec.type_ok THEN
        v_findings := v_findings || format('capacity_drift_column_type: %s.%s is %s, expected %s',
                                           v_rec.tbl, v_rec.col, v_rec.actual, v_rec.typ);
    END IF;
END LOOP;
{fk_checks}"""


# --------------------------------------------------------------------------------------------------
# size gates (docs/schema.md §5.2): the long ACCESS EXCLUSIVE locks of the chain — 0002's rewrite for its generated column
# and 0003's build of allocations_no_overlap
# --------------------------------------------------------------------------------------------------
def _allow_long_lock() -> bool:
    """The operator's ``-x allow_long_lock=true``, when running inside Alembic (baked in as a literal)."""
    try:
        from alembic import context

        value = context.get_x_argument(as_dictionary=True).get("allow_long_lock", "false")
    except Exception:  # not inside an Alembic run (e.g. the CLI report): no bypass
        return False
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _check_size_gate(settings: Settings) -> str:
    if _allow_long_lock():
        return "-- size gate bypassed with -x allow_long_lock=true"
    limit = settings.migrate_max_locked_rows
    bta = regclass("booking_table_assignments")
    return f"""-- size gate: adding booking_table_assignments.assignment_window rewrites the table (0002)
IF {bta} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {bta}
       AND attname = 'assignment_window' AND NOT attisdropped) THEN
    -- the real count, not the planner's estimate: the operator plans the maintenance window with it
    SELECT count(*) INTO v_count FROM public.booking_table_assignments;
    IF v_count > {limit} THEN
        v_findings := v_findings || format(
            'capacity_size_gate: adding booking_table_assignments.assignment_window rewrites %s rows under ACCESS EXCLUSIVE (limit {limit}); schedule a maintenance window and re-run with -x allow_long_lock=true',
            v_count);
    END IF;
    v_rows := v_count;
    {progress_sql("size gate")}
END IF;
-- size gate: building allocations_no_overlap (0003) holds ACCESS EXCLUSIVE on allocations for the index build
IF {exclusion_build_pending_sql()} THEN
    SELECT count(*) INTO v_count FROM public.allocations;
    IF v_count > {limit} THEN
        v_findings := v_findings || format(
            'capacity_size_gate: building allocations_no_overlap locks allocations (ACCESS EXCLUSIVE, reads and writes wait) while it indexes %s rows (limit {limit}); schedule a maintenance window and re-run with -x allow_long_lock=true',
            v_count);
    END IF;
END IF;"""


def exclusion_build_pending_sql() -> str:
    """SQL: true when revision 0003 will build allocations_no_overlap (allocations exists, the constraint is
    missing or of another shape) — a build under ACCESS EXCLUSIVE that takes about 50–100 µs per row."""
    from service.schema.released import catalog
    from service.schema.shapes import normalise_def, normalised_def_sql

    target = next(c for c in catalog.CONSTRAINTS["0003_overlap_confirm_cache"] if c.name == "allocations_no_overlap")
    printed = normalise_def(target.definition.replace(" INITIALLY IMMEDIATE", ""))
    return f"""({regclass('allocations')} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_constraint
        WHERE conrelid = {regclass('allocations')} AND conname = 'allocations_no_overlap' AND contype = 'x'
          AND {normalised_def_sql('pg_get_constraintdef(oid)')} = {lit(printed)}))"""


# --------------------------------------------------------------------------------------------------
# privileges
# --------------------------------------------------------------------------------------------------
def _check_privileges(settings: Settings) -> str:
    from service.schema.released import catalog

    roles = "ARRAY[" + ", ".join(lit(r) for r in REQUIRED_ROLES) + "]::text[]"
    tables = "ARRAY[" + ", ".join(lit(t) for t in catalog.TABLES) + "]::text[]"
    return f"""-- missing privileges: roles to create, btree_gist, CREATE on public, ownership of tables to ALTER
SELECT rolsuper OR rolcreaterole INTO v_flag FROM pg_roles WHERE rolname = current_user;
IF NOT v_flag THEN
    SELECT string_agg(r, ', ' ORDER BY r) INTO v_sample FROM unnest({roles}) r
     WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
    IF v_sample IS NOT NULL THEN
        v_findings := v_findings || format(
            'capacity_preflight_privilege: role(s) %s missing and %s lacks CREATEROLE; an administrator must run: %s',
            v_sample, current_user,
            (SELECT string_agg(format('CREATE ROLE %I %s;', r,
                     CASE WHEN r = 'capacity_app' THEN 'LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE' ELSE 'NOLOGIN' END), ' ' ORDER BY r)
               FROM unnest({roles}) r WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)));
    END IF;
END IF;
IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist') THEN
        v_findings := v_findings || 'capacity_preflight_privilege: extension btree_gist is not installed and not available on this server (install the PostgreSQL contrib package)'::text;
    ELSIF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
          AND NOT has_database_privilege(current_database(), 'CREATE') THEN
        v_findings := v_findings || format(
            'capacity_preflight_privilege: %s cannot create extension btree_gist; an administrator must run: CREATE EXTENSION btree_gist;',
            current_user);
    END IF;
END IF;
IF NOT has_schema_privilege('public', 'CREATE') THEN
    v_findings := v_findings || format(
        'capacity_preflight_privilege: %s lacks CREATE on schema public; an administrator must run: GRANT CREATE ON SCHEMA public TO %I;',
        current_user, current_user);
END IF;
SELECT string_agg(format('%s (owner %s)', c.relname, pg_get_userbyid(c.relowner)), ', ' ORDER BY c.relname)
  INTO v_sample
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname = ANY ({tables}) AND c.relkind IN ('r', 'p')
   AND NOT pg_has_role(current_user, c.relowner, 'MEMBER');
IF v_sample IS NOT NULL THEN
    v_findings := v_findings || format(
        'capacity_preflight_privilege: %s is neither owner nor member of the owner of table(s) a revision must alter: %s',
        current_user, v_sample);
END IF;"""


# Further checks register here: each returns a plpgsql fragment that appends text items to v_findings.
# The first takes the known revisions, the others the Settings.
VERSION_CHECK: Callable[[Sequence[str]], str] = _check_version_table
CHECKS: list[Callable[[Settings], str]] = [
    _check_overlaps,
    _check_duplicate_scopes,
    _check_shapes,
    _check_size_gate,
    _check_privileges,
]


def preflight_sql(
    known_revisions: Sequence[str], settings: Settings | None = None, *, skip: Sequence[Callable[[Settings], str]] = ()
) -> str:
    """``known_revisions``: newest first (Alembic's walk order). ``skip``: checks left out (the report
    runs the overlap and duplicate-scope queries itself, in full)."""
    settings = settings or Settings()
    parts = [VERSION_CHECK(known_revisions)]
    parts += [check(settings) for check in CHECKS if check not in skip]
    body = "v_started := clock_timestamp();\n" + "\n".join(parts) + """
IF cardinality(v_findings) > 0 THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001',
        MESSAGE = split_part(v_findings[1], ':', 1),
        DETAIL = array_to_string(v_findings, E'\\n'),
        HINT = 'nothing was changed; resolve the findings (capacity-service preflight lists them in full) and re-run';
END IF;"""
    return "-- capacity-service pre-flight (read-only)\n" + do_block(
        body,
        declare="    v_findings text[] := ARRAY[]::text[];\n    v_versions text[];\n"
        + OVERLAP_DECLARE
        + "\n    v_flag boolean;\n    v_rec record;",
    )


# --------------------------------------------------------------------------------------------------
# full read-only report for `capacity-service preflight`
# --------------------------------------------------------------------------------------------------
def _known_revisions() -> list[str]:
    from service.schema import migrate

    return list(reversed(migrate.revisions()))


def _rows(cur: psycopg.Cursor[tuple[Any, ...]], sql: str) -> list[dict[str, Any]]:
    cur.execute(sql)
    assert cur.description is not None
    names = [d.name for d in cur.description]
    return [dict(zip(names, (None if v is None else str(v) for v in row), strict=True)) for row in cur.fetchall()]


def _first(cur: psycopg.Cursor[tuple[Any, ...]]) -> Any:
    row = cur.fetchone()
    assert row is not None, "a one-row query returned no row"
    return row[0]


def _has_columns(cur: psycopg.Cursor[tuple[Any, ...]], table: str, columns: Sequence[str]) -> bool:
    cur.execute(f"SELECT {_has_columns_sql(table, columns)}")
    return bool(_first(cur))


def preflight_report(url: str, settings: Settings | None = None) -> list[dict]:
    """Every finding ``migrate`` would refuse on, one flat dict per item (``check`` = the finding code,
    ``kind`` = what the row lists); overlap pairs and duplicate groups are listed in full, not the first
    50. Read-only (a READ ONLY transaction, rolled back). An empty list means ``migrate`` would proceed.
    Progress (each check's rows and time) goes to the ``capacity.preflight`` logger."""
    settings = settings or Settings()
    report: list[dict] = []
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        conn.add_notice_handler(lambda diag: log.info("%s", diag.message_primary))
        cur.execute("SET TRANSACTION READ ONLY")
        if _has_columns(cur, "allocations", ALLOCATION_COLUMNS):
            started = time.perf_counter()
            pairs = _rows(cur, ALLOCATION_OVERLAPS_SQL + " ORDER BY id_a, id_b")
            report += [{"check": OVERLAP, "kind": "allocation_overlap", **row} for row in pairs]
            for row in _rows(cur, INVALID_WINDOWS_SQL + " ORDER BY id"):
                report.append({"check": OVERLAP, "kind": "invalid_window", "id_a": row.pop("id"), **row})
            log.info("capacity pre-flight allocation overlaps (full list): %s pair(s) in %.1f s",
                     len(pairs), time.perf_counter() - started)
        if _has_columns(cur, "booking_table_assignments", ASSIGNMENT_COLUMNS):
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = "
                f"{regclass('booking_table_assignments')} AND conname = {lit(ASSIGNMENT_EXCLUSION)})"
            )
            if not _first(cur):
                started = time.perf_counter()
                pairs = _rows(cur, ASSIGNMENT_OVERLAPS_SQL + " ORDER BY id_a, id_b")
                report += [{"check": OVERLAP, "kind": "assignment_overlap", **row} for row in pairs]
                log.info("capacity pre-flight assignment overlaps (full list): %s pair(s) in %.1f s",
                         len(pairs), time.perf_counter() - started)
        if _has_columns(cur, "strategic_configs", ("id", "restaurant_id")):
            stamp = "updated_at" if _has_columns(cur, "strategic_configs", ("updated_at",)) else "NULL::timestamptz"
            cur.execute(
                f"""SELECT d.restaurant_id, array_agg(s.id ORDER BY s.id), array_agg({stamp} ORDER BY s.id)
                      FROM ({DUPLICATE_SCOPES_SQL}) d
                      JOIN public.strategic_configs s ON s.restaurant_id IS NOT DISTINCT FROM d.restaurant_id
                     GROUP BY d.restaurant_id"""
            )
            for restaurant_id, ids, stamps in cur.fetchall():
                report.append({
                    "check": DUPLICATE_SCOPE,
                    "kind": "duplicate_scope",
                    "restaurant_id": None if restaurant_id is None else str(restaurant_id),
                    "ids": ", ".join(str(i) for i in ids),
                    "updated_at": ", ".join(str(t) for t in stamps),
                })
        # The remaining checks (version table, shapes, size gate, privileges) come from the DO block.
        try:
            cur.execute(preflight_sql(_known_revisions(), settings, skip=(_check_overlaps, _check_duplicate_scopes)))
        except psycopg.errors.RaiseException as exc:
            detail = exc.diag.message_detail or ""
            for line in detail.splitlines():
                code, _, text = line.partition(":")
                report.append({"check": code, "kind": "finding", "detail": text.strip()})
        conn.rollback()
    return report
