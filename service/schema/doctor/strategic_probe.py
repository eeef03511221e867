"""The strategic-config schema probe (docs/strategic-config.md §3.5): which shape strategic_configs is in."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from service.schema.doctor.checked_objects import LEGACY_WEIGHTS_COLUMN, PROBE_COLUMNS, STRATEGIC_TABLE
from service.schema.doctor.findings import Finding
from service.schema.doctor.live_catalog import _ReadOnly, one_row


def strategic_config_state(columns: Iterable[str] | None) -> str:
    """``columns`` = the live column names of strategic_configs, or None when the table is missing."""
    if columns is None:
        return "table_missing"
    present = set(columns)
    complete = all(c in present for c in PROBE_COLUMNS)
    legacy = LEGACY_WEIGHTS_COLUMN in present
    if complete:
        return "legacy_json_present" if legacy else "ok"
    return "legacy_json_only" if legacy else "columns_missing"


def strategic_config_schema_state(conn: psycopg.Connection) -> str:
    """ok | table_missing | columns_missing | legacy_json_only | legacy_json_present."""
    with _ReadOnly(conn):
        row = one_row(conn.execute(
            f"""SELECT to_regclass('public.{STRATEGIC_TABLE}') IS NOT NULL,
                       ARRAY(SELECT attname::text FROM pg_attribute
                              WHERE attrelid = to_regclass('public.{STRATEGIC_TABLE}') AND attnum > 0
                                AND NOT attisdropped)"""
        ))
    return strategic_config_state(row[1] if row[0] else None)


def _strategic_finding(state: str) -> Finding | None:
    if state == "ok":
        return None
    if state == "legacy_json_present":
        return Finding(
            "strategic_config_legacy_json_present", "warning", STRATEGIC_TABLE,
            expected="numeric weight columns only", actual=state,
            hint="revision 0005 renames weights to weights_legacy; run capacity-service migrate",
        )
    return Finding(
        "strategic_config_degraded", "warning", STRATEGIC_TABLE,
        expected="ok", actual=state,
        hint="the allocator uses env defaults until revision 0005 has run (capacity-service migrate)",
    )
