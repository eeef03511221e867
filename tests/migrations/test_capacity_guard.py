"""Capacity guard, kill switch and the update function — docs/schema.md §7 cases 26–30, fixtures C and C2."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from service.schema import migrate
from service.schema.released.capacity_functions import ensure_capacity_rules_sql
from tests.support import pg
from tests.support.floor import Floor, add_booking, commit, count, seed_floor

ABSENT_LOG = "restaurant_capacity_rules table absent"


def _update(url: str, f: Floor, booking: uuid.UUID, party: int, *, notices: list[str] | None = None,
            session_sql: tuple[str, ...] = ()) -> dict:
    """update_booking_with_capacity_check with the booking's own date and times (12 positional args)."""
    with psycopg.connect(url) as conn:
        if notices is not None:
            conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        for stmt in session_sql:
            conn.execute(stmt)
        row = conn.execute(
            """SELECT update_booking_with_capacity_check(b.id, b.restaurant_id, NULL, b.booking_date, b.start_time,
                      b.end_time, %s, 'standard', 'Guest Two', 'two@example.test', '+440000001', NULL)
                 FROM bookings b WHERE b.id = %s""",
            (party, booking),
        ).fetchone()
    return row[0]


def _drop_rules_table(url: str) -> None:
    pg.run(url, "DROP TABLE restaurant_capacity_rules")


def _rule(url: str, f: Floor, max_covers: int) -> uuid.UUID:
    rule = uuid.uuid4()
    pg.run(
        url,
        "INSERT INTO restaurant_capacity_rules (id, restaurant_id, service_period_id, max_covers) VALUES (%s, %s, %s, %s)",
        (rule, f.restaurant, f.dinner, max_covers),
    )
    return rule


def _b2_rows(url: str, f: Floor) -> int:
    return count(
        url,
        "SELECT (SELECT count(*) FROM allocations WHERE booking_id = %(b)s)"
        " + (SELECT count(*) FROM booking_table_assignments WHERE booking_id = %(b)s)",
        {"b": f.b2},
    )


# -------------------------------------------------------------------------------------------------
# 26 / fixture C: rules table absent
# -------------------------------------------------------------------------------------------------
def test_26_rules_table_absent(head_db: str) -> None:
    f = seed_floor(head_db)
    _drop_rules_table(head_db)

    notices: list[str] = []
    rows = commit(head_db, f.b1, [f.t1], settings={"client_min_messages": "log"}, notices=notices)
    assert len(rows) == 1
    assert len([n for n in notices if ABSENT_LOG in n]) == 1

    result = _update(head_db, f, f.b2, 4)
    assert result["success"] is True, result
    assert result["capacity"]["maxCovers"] == 999999


def test_fixture_c_adopted_database_without_rules_table(head_db: str) -> None:
    """Fixture C: adoption never recreates the table; the guarded functions work without it."""
    _drop_rules_table(head_db)
    pg.run(head_db, "DROP TABLE capacity_alembic_version; DROP TABLE capacity_schema_ledger")
    migrate.upgrade(head_db, "head")
    assert pg.run(head_db, "SELECT to_regclass('public.restaurant_capacity_rules')") == [(None,)]

    f = seed_floor(head_db)
    for booking, table in ((f.b1, f.t1), (f.b2, f.t2)):
        notices: list[str] = []
        commit(head_db, booking, [table], settings={"client_min_messages": "log"}, notices=notices)
        assert len([n for n in notices if ABSENT_LOG in n]) == 1  # one LOG line per call
    result = _update(head_db, f, f.b1, 2)
    assert result["success"] is True and result["capacity"]["maxCovers"] == 999999


# -------------------------------------------------------------------------------------------------
# 27 / 28 / fixture C2: a rule that the commit would exceed, and the kill switch
# -------------------------------------------------------------------------------------------------
@pytest.fixture
def over_limit(head_db: str) -> Floor:
    """Rule max_covers 10 for Dinner; B1 (2) + another booking (6) = 8 covers before B2 (4) commits."""
    f = seed_floor(head_db)
    _rule(head_db, f, 10)
    add_booking(head_db, f.restaurant, 6, "19:00", "21:00")
    # Not counted: not seated yet [ORIG].
    add_booking(head_db, f.restaurant, 8, "19:00", "21:00", status="pending_allocation")
    return f


def test_27_capacity_exceeded_post_assignment(head_db: str, over_limit: Floor) -> None:
    f = over_limit
    with pg.raises_sqlstate(pg.CAPACITY_EXCEEDED_STATE) as exc:
        commit(head_db, f.b2, [f.t2])
    assert exc.value.diag.message_primary == "capacity_exceeded_post_assignment"
    assert "covers 12/10" in (exc.value.diag.message_detail or "")
    assert _b2_rows(head_db, f) == 0
    assert pg.run(head_db, "SELECT assigned_zone_id FROM bookings WHERE id = %s", (f.b2,)) == [(None,)]


@pytest.mark.parametrize("value", ["off", "OFF", "false", " No ", "0"])
def test_28_kill_switch_off(head_db: str, over_limit: Floor, value: str) -> None:
    f = over_limit
    rows = commit(head_db, f.b2, [f.t2], settings={"app.capacity.post_assignment.enabled": value})
    assert [r[0] for r in rows] == [f.t2]
    assert _b2_rows(head_db, f) == 2


@pytest.mark.parametrize("value", ["on", "true", "", None])
def test_28_kill_switch_on_or_unset(head_db: str, over_limit: Floor, value: str | None) -> None:
    f = over_limit
    settings = {} if value is None else {"app.capacity.post_assignment.enabled": value}
    with pg.raises_sqlstate(pg.CAPACITY_EXCEEDED_STATE, match="capacity_exceeded_post_assignment"):
        commit(head_db, f.b2, [f.t2], settings=settings)
    assert _b2_rows(head_db, f) == 0


def test_update_function_capacity_exceeded(head_db: str, over_limit: Floor) -> None:
    """The update path applies the same rule (and does not read the kill switch, docs/schema.md §3.3)."""
    f = over_limit
    result = _update(head_db, f, f.b2, 4, session_sql=("SET app.capacity.post_assignment.enabled = 'off'",))
    # others (not cancelled/no_show, this booking excluded): 2 + 6 + 8 (pending_allocation counts here) = 16
    assert result["success"] is False and result["error"] == "CAPACITY_EXCEEDED", result
    assert result["details"]["maxCovers"] == 10


# -------------------------------------------------------------------------------------------------
# 29: NOWAIT on the rule row
# -------------------------------------------------------------------------------------------------
def test_29_rule_locked_is_booking_conflict(head_db: str) -> None:
    f = seed_floor(head_db)
    rule = _rule(head_db, f, 100)
    with psycopg.connect(head_db) as holder:
        holder.execute("SELECT 1 FROM restaurant_capacity_rules WHERE id = %s FOR UPDATE", (rule,))
        # lock_timeout 0 = wait forever: only NOWAIT can turn the held lock into BOOKING_CONFLICT; a
        # blocking read would hit statement_timeout instead (57014, not caught by the function).
        result = _update(
            head_db, f, f.b1, 2, session_sql=("SET lock_timeout = 0", "SET statement_timeout = '60s'")
        )
        holder.rollback()
    assert result["success"] is False
    assert result["error"] == "BOOKING_CONFLICT"
    assert result["retryable"] is True


def test_update_function_updates_booking(head_db: str) -> None:
    f = seed_floor(head_db)
    pg.run(head_db, "UPDATE restaurants SET timezone = 'america/new_york' WHERE id = %s", (f.restaurant,))
    result = _update(head_db, f, f.b1, 3)
    assert result["success"] is True, result
    party, details, start_at, expected = pg.run(
        head_db,
        "SELECT party_size, details, start_at, (booking_date + start_time) AT TIME ZONE 'America/New_York'"
        " FROM bookings WHERE id = %s",
        (f.b1,),
    )[0]
    assert party == 3
    assert start_at == expected  # zone names match case-insensitively
    assert details["capacity_check"]["maxCovers"] == 999999  # table present, no rule
    assert result["booking"]["party_size"] == 3

    missing = pg.run(
        head_db,
        "SELECT update_booking_with_capacity_check(%s, %s, NULL, '2031-06-13', '18:00', '20:00', 2, NULL,"
        " 'G', 'g@example.test', '+44', NULL)",
        (uuid.uuid4(), f.restaurant),
    )[0][0]
    assert missing["success"] is False and missing["error"] == "INVALID_PARAMS"


# -------------------------------------------------------------------------------------------------
# 30: service_policy is not read
# -------------------------------------------------------------------------------------------------
def test_30_service_policy_absent(head_db: str) -> None:
    f = seed_floor(head_db)
    assert pg.run(head_db, "SELECT to_regclass('public.service_policy')") == [(None,)]
    assert len(commit(head_db, f.b1, [f.t1])) == 1
    assert _update(head_db, f, f.b2, 4)["success"] is True
    bodies = pg.run(
        head_db,
        "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND prosrc ILIKE '%%service_policy%%'",
    )
    assert bodies == []


# -------------------------------------------------------------------------------------------------
# operator command: ensure-capacity-rules
# -------------------------------------------------------------------------------------------------
def test_ensure_capacity_rules_recreates_the_table_once(head_db: str) -> None:
    pg.run(head_db, "DROP TABLE capacity_alembic_version; DROP TABLE capacity_schema_ledger")
    _drop_rules_table(head_db)
    migrate.upgrade(head_db, "head")  # adopted: the table stays absent
    assert pg.run(head_db, "SELECT to_regclass('public.restaurant_capacity_rules')") == [(None,)]

    pg.run(head_db, ensure_capacity_rules_sql())
    cols = pg.run(
        head_db,
        "SELECT attname FROM pg_attribute WHERE attrelid = 'public.restaurant_capacity_rules'::regclass"
        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    assert [c[0] for c in cols] == [
        "id", "restaurant_id", "service_period_id", "day_of_week", "effective_date", "max_covers", "max_parties",
        "label", "override_type", "notes", "created_at", "updated_at",
    ]
    cons = pg.run(
        head_db,
        "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'public.restaurant_capacity_rules'::regclass"
        " AND contype IN ('c', 'f') ORDER BY 1",
    )
    assert cons and all(valid for _, valid in cons)
    assert "restaurant_capacity_rules_scope" in {c[0] for c in cons}

    # Now the rule applies again.
    f = seed_floor(head_db)
    _rule(head_db, f, 1)
    with pg.raises_sqlstate(pg.CAPACITY_EXCEEDED_STATE, match="capacity_exceeded_post_assignment"):
        commit(head_db, f.b1, [f.t1])

    # Second run: no DDL object at all.
    pg.run(
        head_db,
        """CREATE FUNCTION public.h3_ddl_seen() RETURNS event_trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO h3_ddl_log SELECT command_tag FROM pg_event_trigger_ddl_commands(); END $$""",
    )
    pg.run(head_db, "CREATE TABLE h3_ddl_log (tag text)")
    pg.run(head_db, "CREATE EVENT TRIGGER h3_ddl_seen ON ddl_command_end EXECUTE FUNCTION public.h3_ddl_seen()")
    pg.run(head_db, ensure_capacity_rules_sql())
    pg.run(head_db, "DROP EVENT TRIGGER h3_ddl_seen")
    assert pg.run(head_db, "SELECT tag FROM h3_ddl_log") == []


# --------------------------------------------------------------------------------------------------
# capacity_rule_for (revision 0009): the one lookup behind the update, the post-assignment check and slots
# --------------------------------------------------------------------------------------------------
def _limit_each_caller_applies(url: str, f: Floor, slot_time: str, *, before_0009: bool) -> dict[str, int | None]:
    """The max_covers each caller of capacity_rule_for ends up with (None: no rule applies)."""
    if before_0009:  # each caller still had its own copy of the lookup
        looked_up = [(None,)]
    else:
        looked_up = pg.run(url, "SELECT max_covers FROM capacity_rule_for(%s, %s, %s)", (f.restaurant, f.date, f.dinner))
    update = _update(url, f, f.b1, 2)
    update_max = (update.get("capacity") or update.get("details"))["maxCovers"]
    try:
        pg.run(url, "SELECT validate_booking_capacity_after_assignment(%s)", (f.b1,))
        validate_max = None
    except psycopg.Error as exc:
        assert exc.sqlstate == ("P0001" if before_0009 else pg.CAPACITY_EXCEEDED_STATE), exc
        detail = exc.diag.message_detail or ""
        validate_max = int(detail.split(",")[0].split("/")[1])  # "covers 26/5, parties …"
    slot_id = pg.run(url, "SELECT get_or_create_booking_slot(%s, %s, %s)", (f.restaurant, f.date, slot_time))[0][0]
    slot = pg.run(url, "SELECT available_capacity FROM booking_slots WHERE id = %s", (slot_id,))[0][0]
    return {
        "lookup": looked_up[0][0] if looked_up else None,
        "update": None if update_max == 999999 else update_max,
        "validate": validate_max,
        "slot": None if slot == 999 else slot,
    }


@pytest.mark.parametrize("revision", ["0008_column_types", "head"])
def test_capacity_rule_for_is_the_rule_every_caller_applies(head_db: str, revision: str) -> None:
    """The most specific rule wins — latest effective date, then a weekday rule, then a period rule — and the
    update function, the post-assignment check and slot creation all apply that same rule, as each one's own
    copy of the lookup did before revision 0009."""
    before_0009 = revision != "head"
    if before_0009:
        migrate.downgrade(head_db, revision)
    f = seed_floor(head_db)
    add_booking(head_db, f.restaurant, 20, "19:00", "21:00")  # 26 covers: every rule below is exceeded
    dow = pg.run(head_db, "SELECT extract(dow FROM %s::date)::int", (f.date,))[0][0]
    rules = {  # name: (service period, day of week, effective date offset in days, max_covers)
        "dated": (None, None, -1, 5),
        "weekday_dinner": (f.dinner, dow, None, 4),
        "weekday": (None, dow, None, 3),
        "dinner": (f.dinner, None, None, 2),
        "future": (None, None, 1, 7),  # not in effect yet
        "other_weekday": (None, (dow + 1) % 7, None, 8),  # another day
    }
    ids = {}
    for name, (period, day, offset, covers) in rules.items():
        ids[name] = pg.run(
            head_db,
            "INSERT INTO restaurant_capacity_rules (restaurant_id, service_period_id, day_of_week, effective_date,"
            " max_covers) VALUES (%s, %s, %s, %s::date + %s::int, %s) RETURNING id",
            (f.restaurant, period, day, f.date, offset, covers),
        )[0][0]

    seen = []
    for step, retire in enumerate(["dated", "weekday_dinner", "weekday", "dinner", None]):
        seen.append(_limit_each_caller_applies(head_db, f, f"19:0{step}", before_0009=before_0009))
        if retire:
            pg.run(head_db, "DELETE FROM restaurant_capacity_rules WHERE id = %s", (ids[retire],))
    expected = [5, 4, 3, 2, None]
    assert [{k: v for k, v in limits.items() if k != "lookup"} for limits in seen] == [
        dict.fromkeys(("update", "validate", "slot"), want) for want in expected]
    if not before_0009:
        assert [limits["lookup"] for limits in seen] == expected


def test_capacity_rule_for_locks_as_each_caller_did(head_db: str) -> None:
    """The post-assignment check holds the rule until commit (FOR UPDATE); the update function meeting that
    lock answers BOOKING_CONFLICT at once (NOWAIT); slot creation takes no lock and goes through."""
    f = seed_floor(head_db)
    _rule(head_db, f, 100)
    with psycopg.connect(head_db) as holder:
        holder.execute("SELECT validate_booking_capacity_after_assignment(%s)", (f.b1,))
        result = _update(head_db, f, f.b2, 2, session_sql=("SET lock_timeout = 0",))
        slot = pg.run(head_db, "SELECT get_or_create_booking_slot(%s, %s, '19:15')", (f.restaurant, f.date))
        holder.rollback()
    assert result["error"] == "BOOKING_CONFLICT" and result["sqlstate"] == "55P03"
    assert slot[0][0] is not None
    assert _update(head_db, f, f.b2, 2)["success"] is True  # lock released with the holder's transaction


def test_capacity_rule_for_rejects_an_unknown_lock(head_db: str) -> None:
    f = seed_floor(head_db)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="none, wait or nowait"):
        pg.run(head_db, "SELECT * FROM capacity_rule_for(%s, %s, NULL, 'share')", (f.restaurant, f.date))


def test_revision_0009_downgrade_restores_the_previous_bodies(head_db: str) -> None:
    """Downgrading 0009 puts back each function it replaced byte for byte (with its marker) and drops the
    lookup it created; upgrading again reinstates the head bodies."""
    names = ["assign_tables_atomic_v2", "assign_tables_first_fit", "get_or_create_booking_slot",
             "update_booking_with_capacity_check", "validate_booking_capacity_after_assignment", "capacity_rule_for"]

    def bodies() -> dict[str, tuple[str, str]]:
        rows = pg.run(head_db, "SELECT proname, md5(prosrc), obj_description(oid, 'pg_proc') FROM pg_proc"
                      " WHERE pronamespace = 'public'::regnamespace AND proname = ANY (%s)", (names,))
        return {name: (md5, marker) for name, md5, marker in rows}

    at_head = bodies()
    assert set(at_head) == set(names)
    migrate.downgrade(head_db, "0008_column_types")
    before = bodies()
    assert "capacity_rule_for" not in before
    assert all(before[n] != at_head[n] for n in before)  # every one of them was replaced by 0009
    assert count(head_db, "SELECT count(*) FROM capacity_schema_ledger WHERE revision = '0009_error_sqlstates'") == 0

    migrate.upgrade(head_db, "head")
    assert bodies() == at_head
    migrate.downgrade(head_db, "0008_column_types")
    assert bodies() == before
