"""Shape checks shared by revisions 0002/0003 and the pre-flight: foreign keys compared by catalog
(target, columns, ON DELETE action) rather than by name, and normalised constraint definitions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.schema.ddl import (
    Constraint,
    ensure_constraint,
    lit,
    regclass,
)

_FK_RE = re.compile(
    r"^\s*FOREIGN KEY\s*\(([^)]*)\)\s*REFERENCES\s+(?:public\.)?(\w+)\s*\(([^)]*)\)"
    r"(?:\s+ON DELETE\s+(SET NULL|SET DEFAULT|CASCADE|RESTRICT|NO ACTION))?",
    re.I,
)
# pg_constraint.confdeltype codes
_ON_DELETE_CODES = {"SET NULL": "n", "SET DEFAULT": "d", "CASCADE": "c", "RESTRICT": "r", "NO ACTION": "a"}


@dataclass(frozen=True)
class ForeignKeyShape:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str  # confdeltype code


def fk_shape(con: Constraint) -> ForeignKeyShape | None:
    """Parse a ``FOREIGN KEY (...) REFERENCES t(...) [ON DELETE ...]`` definition; None for other kinds."""
    m = _FK_RE.match(con.definition)
    if not m:
        return None
    cols = tuple(c.strip().strip('"') for c in m.group(1).split(","))
    ref_cols = tuple(c.strip().strip('"') for c in m.group(3).split(","))
    action = _ON_DELETE_CODES[(m.group(4) or "NO ACTION").upper()]
    return ForeignKeyShape(cols, m.group(2), ref_cols, action)


def _attnames_sql(rel: str, keys: str) -> str:
    return (
        f"ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY k(num, ord) "
        f"JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.num ORDER BY k.ord)"
    )


def fk_shape_mismatch_sql(con: Constraint) -> str:
    """SQL boolean: a constraint of this name exists on the table but is not this FK (other target,
    columns or ON DELETE action, or not an FK at all). Catalog-based, so quoting/spelling cannot fool it."""
    shape = fk_shape(con)
    if shape is None:
        raise ValueError(f"{con.name} is not a foreign key")
    cols = "ARRAY[" + ", ".join(lit(c) for c in shape.columns) + "]::text[]"
    ref_cols = "ARRAY[" + ", ".join(lit(c) for c in shape.ref_columns) + "]::text[]"
    return f"""EXISTS (SELECT 1 FROM pg_constraint c
        WHERE c.conrelid = {regclass(con.table)} AND c.conname = {lit(con.name)}
          AND NOT (c.contype = 'f' AND c.confrelid = {regclass(shape.ref_table)}
                   AND c.confdeltype = {lit(shape.on_delete)}
                   AND {_attnames_sql('c.conrelid', 'c.conkey')} = {cols}
                   AND {_attnames_sql('c.confrelid', 'c.confkey')} = {ref_cols}))"""


def ensure_foreign_key(revision: str, con: Constraint) -> str:
    """:func:`ensure_constraint` for an FK (added NOT VALID; VALIDATE with :func:`validate`), except that an
    existing constraint of that name with another shape is drift: stop instead of adopting it."""
    refusal = f"""RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'capacity_drift_fk_shape',
        DETAIL = format('%s.%s is %s, expected %s', {lit(con.table)}, {lit(con.name)},
            (SELECT pg_get_constraintdef(oid) FROM pg_constraint
              WHERE conrelid = {regclass(con.table)} AND conname = {lit(con.name)}), {lit(con.definition)}),
        HINT = 'drop or rename that constraint by hand (it is not the one this service expects), then re-run';"""
    return ensure_constraint(revision, con, refuse_when=(fk_shape_mismatch_sql(con), refusal))


def normalised_def_sql(expr: str) -> str:
    """SQL: a constraint/index definition with whitespace, quotes, parentheses and ::text casts removed,
    lower-cased — what PostgreSQL prints varies in exactly those details between spellings and versions."""
    return f"lower(regexp_replace(regexp_replace({expr}, '::text', '', 'g'), '[[:space:]\"()]', '', 'g'))"


def normalise_def(text: str) -> str:
    """Python twin of :func:`normalised_def_sql`."""
    return re.sub(r'[\s"()]', "", text.replace("::text", "")).lower()
