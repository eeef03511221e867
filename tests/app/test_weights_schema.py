"""The strategic weights are defined once (service/domain/weights.py); the frozen migrations cannot import
that module, so this test proves the migrated head database agrees with it: column types (precision and
scale), NOT NULL, the scarcity default, and the range CHECKs at and just beyond each bound — plus the
back-fill rules of migration 0005 (docs/strategic-config.md §4.4, §4.5)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from service.domain.weights import DEFAULT_SCARCITY, SCARCITY, WEIGHT_COLUMNS, WeightColumn
from service.schema.released import strategic_configs as backfill


def _column(conn: psycopg.Connection, name: str) -> tuple[int, int, str, str | None]:
    row = conn.execute(
        "SELECT numeric_precision, numeric_scale, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = 'strategic_configs' AND column_name = %s",
        (name,),
    ).fetchone()
    assert row is not None, f"strategic_configs.{name} is missing"
    return row


def _accepts(conn: psycopg.Connection, spec: WeightColumn, value: Decimal) -> bool:
    """Insert a global row with ``value`` in the column; True when the database keeps it."""
    columns = {SCARCITY.column: Decimal(DEFAULT_SCARCITY), spec.column: value}
    names = ", ".join(columns)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(
                f"INSERT INTO strategic_configs (restaurant_id, {names}) VALUES (NULL, {', '.join(['%s'] * len(columns))})",
                list(columns.values()),
            )
        return True
    except psycopg.errors.CheckViolation:
        return False


@pytest.mark.parametrize("spec", WEIGHT_COLUMNS, ids=[s.field for s in WEIGHT_COLUMNS])
def test_head_schema_agrees_with_the_weights_module(head_db: str, spec: WeightColumn) -> None:
    with psycopg.connect(head_db) as conn:
        precision, scale, nullable, default = _column(conn, spec.column)
        assert (precision, scale) == (spec.precision, spec.scale)
        assert (nullable == "NO") == spec.required
        step = Decimal(1).scaleb(-spec.scale)
        low, high = (Decimal(b) for b in spec.bounds)
        assert _accepts(conn, spec, low) and _accepts(conn, spec, high)
        assert not _accepts(conn, spec, low - step), f"{spec.column} accepts {low - step}"
        assert not _accepts(conn, spec, high + step), f"{spec.column} accepts {high + step}"
        if spec is SCARCITY:
            assert default is not None and Decimal(default.split("::")[0].strip("'()")) == DEFAULT_SCARCITY


def test_migration_backfill_rules_agree_with_the_weights_module() -> None:
    for spec in WEIGHT_COLUMNS:
        low, high, _clamped, scale = backfill.VALUE_RULES[spec.column]
        assert ((low, high), scale) == (spec.bounds, spec.scale)
