"""The allocator policy's defaults and the relaxed-overage range are defined once
(service/domain/allocator/model.py); the frozen revisions cannot import that module, so this test proves
the migrated head database agrees with it: column defaults, NOT NULL, and the CHECK at and just beyond
each bound (docs/assign-tables.md §7.3.1, §7.13)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from service.domain.allocator.model import (
    DEFAULT_OVERRUN_POLICY,
    DEFAULT_RELAX_ADJACENCY,
    DEFAULT_RELAX_MEMBER_LIMITS,
    DEFAULT_RELAX_OVERAGE,
    DEFAULT_RELAXED_MAX_OVERAGE,
    RELAXED_MAX_OVERAGE_RANGE,
    RestaurantPolicy,
)

POLICY = "restaurant_allocator_policies"


def _restaurant(conn: psycopg.Connection) -> uuid.UUID:
    rid = uuid.uuid4()
    conn.execute("INSERT INTO restaurants (id, name, slug) VALUES (%s, 'Policy', %s)", (rid, f"policy-{rid}"))
    return rid


def test_head_defaults_agree_with_the_domain(head_db: str) -> None:
    with psycopg.connect(head_db) as conn, conn.transaction(force_rollback=True):
        rid = _restaurant(conn)
        conn.execute(f"INSERT INTO {POLICY} (restaurant_id) VALUES (%s)", (rid,))
        row = conn.execute(
            f"SELECT overrun_policy, relax_overage, relaxed_max_overage, relax_member_limits, relax_adjacency"
            f" FROM {POLICY} WHERE restaurant_id = %s", (rid,)).fetchone()
    assert row == (DEFAULT_OVERRUN_POLICY, DEFAULT_RELAX_OVERAGE, DEFAULT_RELAXED_MAX_OVERAGE,
                   DEFAULT_RELAX_MEMBER_LIMITS, DEFAULT_RELAX_ADJACENCY)
    # and a restaurant without a row gets the same from the domain
    default = RestaurantPolicy()
    assert (default.overrun, default.relax_overage, default.relaxed_max_overage, default.relax_member_limits,
            default.relax_adjacency) == row


def _accepts(conn: psycopg.Connection, value: int | None) -> bool:
    try:
        with conn.transaction(force_rollback=True):
            rid = _restaurant(conn)
            conn.execute(f"INSERT INTO {POLICY} (restaurant_id, relaxed_max_overage) VALUES (%s, %s)", (rid, value))
        return True
    except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation):
        return False


def test_relaxed_max_overage_check_agrees_with_the_domain_range(head_db: str) -> None:
    low, high = RELAXED_MAX_OVERAGE_RANGE
    with psycopg.connect(head_db) as conn:
        assert _accepts(conn, low) and _accepts(conn, high)
        assert not _accepts(conn, low - 1) and not _accepts(conn, high + 1)
        assert not _accepts(conn, None)


@pytest.mark.parametrize("column", ["relax_overage", "relax_member_limits", "relax_adjacency"])
def test_relaxation_flags_are_not_null(head_db: str, column: str) -> None:
    with (psycopg.connect(head_db) as conn, pytest.raises(psycopg.errors.NotNullViolation),
          conn.transaction(force_rollback=True)):
        rid = _restaurant(conn)
        conn.execute(f"INSERT INTO {POLICY} (restaurant_id, {column}) VALUES (%s, NULL)", (rid,))
