"""Revision 0005_strategic_config_columns against real PostgreSQL: docs/schema.md §5.7, §6.2 fixtures B, B2,
B3, B4, docs/schema.md §7 cases 16 and 38; docs/strategic-config.md §4.5 and §7.3 case 20 (legacy JSON back-fill)."""

from __future__ import annotations

import io
import json
import subprocess
from decimal import Decimal

import psycopg
import pytest
from alembic import command

from service.schema import migrate
from service.schema.released import catalog
from tests.support import pg
from tests.support.fixtures import (
    FIXTURE_B_ROWS,
    SC_RESTAURANTS,
    strategic_configs_absent_sql,
    strategic_configs_legacy_sql,
    strategic_configs_restaurants_sql,
)

REV = "0005_strategic_config_columns"
PREV = "0004_capacity_functions"
ROW = {key: row_id for row_id, key, _ in FIXTURE_B_ROWS}  # "R1".. "R4", None (G) → row id
WEIGHTS = ("scarcity_weight", "demand_multiplier_override", "future_conflict_penalty")
# The three weights as the reader sees them: the restaurant's row if it has one, else the global row.
READER_SQL = """SELECT scarcity_weight, demand_multiplier_override, future_conflict_penalty
  FROM public.strategic_configs
 WHERE restaurant_id = %(restaurant)s OR restaurant_id IS NULL
 ORDER BY (restaurant_id IS NULL), updated_at DESC
 LIMIT 1"""


def _values(url: str) -> dict[str, tuple]:
    rows = pg.run(url, f"SELECT id::text, {', '.join(WEIGHTS)}, version FROM public.strategic_configs")
    return {r[0]: tuple(r[1:]) for r in rows}


def _columns(url: str) -> dict[str, tuple[str, bool, str | None]]:
    rows = pg.run(
        url,
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = 'public.strategic_configs'::regclass AND a.attnum > 0 AND NOT a.attisdropped""",
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _constraints(url: str) -> dict[str, tuple[str, bool]]:
    rows = pg.run(
        url,
        "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
        "WHERE conrelid = 'public.strategic_configs'::regclass",
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def _triggers(url: str) -> list[str]:
    rows = pg.run(
        url,
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.strategic_configs'::regclass AND NOT tgisinternal "
        "ORDER BY 1",
    )
    return [r[0] for r in rows]


def _version(url: str) -> list[str]:
    if pg.run(url, "SELECT to_regclass('public.capacity_alembic_version') IS NULL")[0][0]:
        return []
    return [r[0] for r in pg.run(url, "SELECT version_num FROM public.capacity_alembic_version")]


def _report(url: str) -> dict:
    rows = pg.run(
        url,
        "SELECT action, previous_definition FROM public.capacity_schema_ledger "
        "WHERE revision = %s AND object_kind = 'backfill_report'",
        (REV,),
    )
    assert len(rows) == 1, rows
    assert rows[0][0] == "report"
    return json.loads(rows[0][1])


def _items(report: dict, kind: str) -> list[dict]:
    return [i for i in report["items"] if i["kind"] == kind]


def _ddl_objects_during_upgrade(url: str) -> int:
    """Run ``upgrade head`` once more and count the DDL objects it touched (case 2's criterion: a
    skipped CREATE INDEX CONCURRENTLY IF NOT EXISTS fires the event but reports no object)."""
    pg.run(
        url,
        """CREATE TABLE public.h4_ddl_log (n int);
CREATE FUNCTION public.h4_log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.h4_ddl_log SELECT count(*) FROM pg_event_trigger_ddl_commands();
END $$;
CREATE EVENT TRIGGER h4_log_ddl ON ddl_command_end EXECUTE FUNCTION public.h4_log_ddl();""",
    )
    try:
        migrate.upgrade(url, "head")
        return pg.run(url, "SELECT coalesce(sum(n), 0) FROM public.h4_ddl_log")[0][0]
    finally:
        pg.run(url, "DROP EVENT TRIGGER h4_log_ddl; DROP FUNCTION public.h4_log_ddl(); DROP TABLE public.h4_ddl_log;")


def _error(exc: pytest.ExceptionInfo) -> psycopg.Error:
    err = exc.value
    while not isinstance(err, psycopg.Error) and err.__cause__ is not None:
        err = err.__cause__
    assert isinstance(err, psycopg.Error), exc.value
    return err


@pytest.fixture
def fixture_b(head_db: str) -> str:
    """docs/schema.md §6.2 fixture B, adopted with a plain ``upgrade head``."""
    pg.run(head_db, strategic_configs_legacy_sql())
    migrate.upgrade(head_db, "head")
    return head_db


# --------------------------------------------------------------------------------------------------
# fixture B
# --------------------------------------------------------------------------------------------------
def test_fixture_b_backfills_numeric_columns_from_legacy_json(fixture_b: str) -> None:
    url = fixture_b
    assert _version(url) == [migrate.HEAD]
    values = _values(url)
    assert values[ROW["R1"]] == (Decimal("30.00"), None, None, 1)
    assert values[ROW["R2"]] == (Decimal("12.50"), None, Decimal("400.00"), 1)
    assert values[ROW["R3"]] == (Decimal("22.00"), None, None, 1)  # "high" is not a number: skipped
    assert values[ROW["R4"]] == (Decimal("22.00"), None, None, 1)
    assert values[ROW[None]] == (Decimal("22.00"), Decimal("1.250"), None, 1)

    # the legacy JSON is kept, unchanged, under its new name, with a dated comment
    legacy = dict(pg.run(url, "SELECT id::text, weights_legacy FROM public.strategic_configs"))
    assert legacy == {row_id: weights for row_id, _, weights in FIXTURE_B_ROWS}
    cols = _columns(url)
    assert "weights" not in cols
    comment = pg.run(
        url,
        "SELECT col_description('public.strategic_configs'::regclass, attnum) FROM pg_attribute "
        "WHERE attrelid = 'public.strategic_configs'::regclass AND attname = 'weights_legacy'",
    )[0][0]
    today = pg.run(url, "SELECT to_char(current_date, 'YYYY-MM-DD')")[0][0]
    assert REV in comment and today in comment


def test_fixture_b_reader_query_returns_restaurant_row_else_global(fixture_b: str) -> None:
    expected = {
        "R1": (Decimal("30.00"), None, None),
        "R2": (Decimal("12.50"), None, Decimal("400.00")),
        "R3": (Decimal("22.00"), None, None),
        "R4": (Decimal("22.00"), None, None),
    }
    for key, values in expected.items():
        assert pg.run(fixture_b, READER_SQL, {"restaurant": SC_RESTAURANTS[key]}) == [values]
    # a restaurant without a row of its own reads the global row G
    pg.run(fixture_b, strategic_configs_restaurants_sql(["R9"]))
    assert pg.run(fixture_b, READER_SQL, {"restaurant": SC_RESTAURANTS["R9"]}) == [
        (Decimal("22.00"), Decimal("1.250"), None)
    ]


def test_fixture_b_report_is_one_ledger_row(fixture_b: str) -> None:
    report = _report(fixture_b)
    assert report["rows"] == 5
    assert report["source_type"] == "jsonb"
    assert report["counts"] == {"invalid": 1}
    [invalid] = _items(report, "invalid")
    assert invalid["id"] == ROW["R3"]
    assert invalid["restaurant_id"] == SC_RESTAURANTS["R3"]
    assert (invalid["column"], invalid["key"], invalid["value"]) == ("scarcity_weight", "scarcity_weight", "high")


def test_fixture_b_target_shape(fixture_b: str) -> None:
    url = fixture_b
    cols = _columns(url)
    assert cols["scarcity_weight"] == ("numeric(8,2)", True, "22")
    assert cols["demand_multiplier_override"] == ("numeric(8,3)", False, None)
    assert cols["future_conflict_penalty"] == ("numeric(10,2)", False, None)
    assert cols["version"] == ("bigint", True, "1")
    assert cols["updated_at"] == ("timestamp with time zone", True, catalog.UTC_NOW)
    cons = _constraints(url)
    # the legacy plain UNIQUE (restaurant_id) was replaced under the same name, old definition saved
    assert cons["strategic_configs_restaurant_id_key"] == ("UNIQUE NULLS NOT DISTINCT (restaurant_id)", True)
    saved = pg.run(
        url,
        "SELECT previous_definition FROM public.capacity_schema_ledger WHERE revision = %s "
        "AND object_kind = 'unique_replaced' AND object_name = 'strategic_configs.strategic_configs_restaurant_id_key'",
        (REV,),
    )
    assert saved == [
        ("ALTER TABLE public.strategic_configs ADD CONSTRAINT strategic_configs_restaurant_id_key UNIQUE (restaurant_id)",)
    ]
    assert cons["strategic_configs_restaurant_id_fkey"][1] is True
    for name in ("strategic_configs_scarcity_weight_range", "strategic_configs_demand_multiplier_range",
                 "strategic_configs_future_conflict_penalty_range"):
        assert cons[name][1] is True, name  # no row violates: validated
    assert "strategic_configs_touch" in _triggers(url)


def test_fixture_b_second_upgrade_is_a_no_op(fixture_b: str) -> None:
    before = (_values(fixture_b), _columns(fixture_b), _constraints(fixture_b), _report(fixture_b))
    assert _ddl_objects_during_upgrade(fixture_b) == 0
    assert (_values(fixture_b), _columns(fixture_b), _constraints(fixture_b), _report(fixture_b)) == before
    assert _version(fixture_b) == [migrate.HEAD]


# --------------------------------------------------------------------------------------------------
# key spellings, value rules, json and text columns (docs/strategic-config.md §4.5)
# --------------------------------------------------------------------------------------------------
def _case20_rows() -> list[tuple[str, str, object, tuple]]:
    """(row id, restaurant, weights, expected (scarcity, multiplier, penalty))."""
    d = Decimal
    cases = [
        ({"scarcity_weight": 30, "demand_multiplier_override": 1.2}, (d("30.00"), d("1.200"), None)),
        ({"scarcity": 40, "demandMultiplier": 1.5, "futureConflictPenalty": 50}, (d("40.00"), d("1.500"), d("50.00"))),
        ({}, (d("22.00"), None, None)),
        ({"scarcity_weight": "35"}, (d("35.00"), None, None)),
        ({"scarcity_weight": ""}, (d("22.00"), None, None)),
        ({"scarcity_weight": "high"}, (d("22.00"), None, None)),
        ({"scarcity": 5000}, (d("1000.00"), None, None)),
        ({"demandMultiplier": 12}, (d("22.00"), None, None)),
        # camelCase spellings of the API, padded decimal strings, a non-numeric type, an unknown key
        ({"scarcityWeight": " 7.25 ", "demandMultiplierOverride": "0.5", "futureConflictPenalty": "-3"},
         (d("7.25"), d("0.500"), None)),
        ({"demand_multiplier": True, "future_conflict_penalty": 100000, "colour": "blue"},
         (d("22.00"), None, d("100000.00"))),
        ({"scarcity": -4}, (d("0.00"), None, None)),
        # two spellings of one weight: the first valid one wins, the other is reported (contract check)
        ({"scarcity_weight": 30, "scarcity": 40, "futureConflictPenalty": None}, (d("30.00"), None, None)),
    ]
    return [
        (f"00000000-0000-4000-a000-0000000000{n + 1:02d}", f"R{n + 1}", weights, expected)
        for n, (weights, expected) in enumerate(cases)
    ]


@pytest.mark.parametrize("weights_type", ["json", "text"])
def test_legacy_json_and_text_columns_with_camel_case_keys(head_db: str, weights_type: str) -> None:
    cases = _case20_rows()
    rows = [(row_id, key, weights) for row_id, key, weights, _ in cases]
    bad_json_id = "00000000-0000-4000-a000-000000000099"
    if weights_type == "text":
        rows.append((bad_json_id, "R20", "{scarcity: 9"))  # not JSON at all: reported, row gets the default
    pg.run(head_db, strategic_configs_legacy_sql(rows, weights_type=weights_type, scope_unique="partial_index"))

    migrate.upgrade(head_db, "head")

    values = _values(head_db)
    for row_id, _, _, expected in cases:
        assert values[row_id][:3] == expected, row_id
    report = _report(head_db)
    assert report["source_type"] == weights_type
    by_row = {(i["id"], i["kind"]) for i in report["items"]}
    assert (cases[5][0], "invalid") in by_row  # "high"
    assert (cases[6][0], "clamped") in by_row  # 5000 → 1000
    assert (cases[7][0], "out_of_range") in by_row  # multiplier 12 not copied
    assert (cases[8][0], "out_of_range") in by_row  # penalty -3 not copied
    assert (cases[9][0], "invalid") in by_row  # true is not a number
    assert (cases[9][0], "unknown_key") in by_row  # "colour"
    assert (cases[10][0], "clamped") in by_row  # -4 → 0
    [shadowed] = [i for i in report["items"] if i["id"] == cases[11][0]]  # explicit null = absent: quiet
    assert (shadowed["kind"], shadowed["key"], shadowed["used_key"]) == ("shadowed", "scarcity", "scarcity_weight")
    for quiet in (0, 1, 2, 3, 4):  # valid values, empty object, empty string: nothing to report
        assert not [i for i in report["items"] if i["id"] == cases[quiet][0]], cases[quiet][1]
    if weights_type == "text":
        assert values[bad_json_id][:3] == (Decimal("22.00"), None, None)
        assert (bad_json_id, "invalid_json") in by_row
    # the legacy text is kept byte for byte (json and text columns both store the input text)
    legacy = dict(pg.run(head_db, "SELECT id::text, weights_legacy::text FROM public.strategic_configs"))
    for row_id, _, weights in rows:
        assert legacy[row_id] == (weights if isinstance(weights, str) else json.dumps(weights)), row_id
    # the partial unique index of the same purpose gave way to the target constraint, and was saved
    assert pg.run(head_db, "SELECT to_regclass('public.strategic_configs_restaurant_unique')") == [(None,)]
    assert _constraints(head_db)["strategic_configs_restaurant_id_key"][0] == "UNIQUE NULLS NOT DISTINCT (restaurant_id)"
    saved = pg.run(
        head_db,
        "SELECT previous_definition FROM public.capacity_schema_ledger WHERE revision = %s "
        "AND object_kind = 'unique_replaced'",
        (REV,),
    )
    assert len(saved) == 1 and saved[0][0].startswith("CREATE UNIQUE INDEX strategic_configs_restaurant_unique")


# --------------------------------------------------------------------------------------------------
# B2: numeric columns already there
# --------------------------------------------------------------------------------------------------
def test_fixture_b2_numeric_value_wins_over_json(head_db: str) -> None:
    r1, r2 = ROW["R1"], ROW["R2"]
    numeric = {r1: {"scarcity_weight": 40}, r2: {"future_conflict_penalty": 400}}
    pg.run(head_db, strategic_configs_legacy_sql(numeric=numeric))

    migrate.upgrade(head_db, "head")

    values = _values(head_db)
    assert values[r1][0] == Decimal("40.00")  # JSON says 30: the numeric value is newer and wins
    assert values[r2][:3] == (Decimal("12.50"), None, Decimal("400.00"))  # equal values: nothing to report
    report = _report(head_db)
    [conflict] = _items(report, "numeric_wins")
    assert (conflict["id"], conflict["column"], conflict["key"]) == (r1, "scarcity_weight", "scarcity_weight")
    assert Decimal(str(conflict["value"])) == 30 and Decimal(str(conflict["stored"])) == 40
    # the columns that existed are adopted, not created: a downgrade leaves them alone
    created = pg.run(
        head_db,
        "SELECT object_name FROM public.capacity_schema_ledger WHERE revision = %s AND object_kind = 'column' "
        "AND action = 'created' ORDER BY 1",
        (REV,),
    )
    assert created == [("strategic_configs.version",)]


def test_out_of_range_numeric_value_leaves_its_check_not_valid(head_db: str) -> None:
    numeric = {ROW["R1"]: {"scarcity_weight": 5000}}
    pg.run(head_db, strategic_configs_legacy_sql(numeric=numeric))
    migrate.upgrade(head_db, "head")
    cons = _constraints(head_db)
    assert cons["strategic_configs_scarcity_weight_range"][1] is False  # a row violates it: reported, not validated
    assert cons["strategic_configs_demand_multiplier_range"][1] is True
    assert cons["strategic_configs_future_conflict_penalty_range"][1] is True
    with pytest.raises(psycopg.errors.CheckViolation):
        pg.run(head_db, "UPDATE public.strategic_configs SET scarcity_weight = 2000 WHERE id = %s", (ROW["R2"],))


def test_existing_weight_column_of_another_type_is_drift(head_db: str) -> None:
    pg.run(head_db, strategic_configs_legacy_sql())
    pg.run(head_db, "ALTER TABLE public.strategic_configs ADD COLUMN scarcity_weight double precision")
    with pytest.raises(Exception) as exc:  # noqa: B017 - the psycopg error may come wrapped
        migrate.upgrade(head_db, "head", skip_preflight="true")
    err = _error(exc)
    assert err.diag.message_primary == "capacity_drift_column_type"
    assert "scarcity_weight" in err.diag.message_detail
    assert "weights" in _columns(head_db)  # nothing cast, nothing renamed


# --------------------------------------------------------------------------------------------------
# B3: table absent
# --------------------------------------------------------------------------------------------------
def _assert_full_shape(url: str) -> None:
    cols = _columns(url)
    expected = {c.name: (c.type, c.not_null) for c in catalog.TABLES["strategic_configs"].columns}
    assert {name: shape[:2] for name, shape in cols.items()} == expected
    cons = _constraints(url)
    for name in ("strategic_configs_pkey", "strategic_configs_restaurant_id_key", "strategic_configs_restaurant_id_fkey",
                 "strategic_configs_scarcity_weight_range", "strategic_configs_demand_multiplier_range",
                 "strategic_configs_future_conflict_penalty_range"):
        assert cons[name][1] is True, name
    assert _triggers(url) == ["strategic_configs_touch"]


def test_fixture_b3_absent_table_is_created_in_full_shape(head_db: str) -> None:
    pg.run(head_db, strategic_configs_absent_sql())
    migrate.upgrade(head_db, "head")
    _assert_full_shape(head_db)
    assert pg.run(head_db, "SELECT count(*) FROM public.strategic_configs") == [(0,)]
    assert _ddl_objects_during_upgrade(head_db) == 0


def test_revision_0005_alone_creates_a_missing_table_and_its_downgrade_drops_it(head_db: str) -> None:
    migrate.downgrade(head_db, PREV)
    pg.run(head_db, "DROP TABLE public.strategic_configs")
    migrate.upgrade(head_db, REV)
    _assert_full_shape(head_db)
    assert pg.run(
        head_db,
        "SELECT action FROM public.capacity_schema_ledger WHERE revision = %s AND object_kind = 'table'",
        (REV,),
    ) == [("created",)]
    migrate.downgrade(head_db, PREV)
    assert pg.run(head_db, "SELECT to_regclass('public.strategic_configs')") == [(None,)]


# --------------------------------------------------------------------------------------------------
# B4: duplicate scopes
# --------------------------------------------------------------------------------------------------
B4_ROWS = [
    ("00000000-0000-4000-b000-000000000001", "R1", {"scarcity_weight": 30}),
    ("00000000-0000-4000-b000-000000000002", "R1", {"scarcity_weight": 35}),
    ("00000000-0000-4000-b000-000000000003", "R2", {"scarcity_weight": 10}),
]


def test_fixture_b4_plain_upgrade_stops_in_0005_with_duplicate_scope(head_db: str) -> None:
    pg.run(head_db, strategic_configs_legacy_sql(B4_ROWS, scope_unique=None))
    before = pg.run(head_db, "SELECT id::text, restaurant_id::text, weights::text FROM public.strategic_configs ORDER BY 1")

    # the pre-flight would refuse first (that is `migrate`'s path); skip it to reach 0005's own guard
    with pytest.raises(Exception) as exc:  # noqa: B017
        migrate.upgrade(head_db, "head", skip_preflight="true")
    err = _error(exc)
    assert err.diag.message_primary == "strategic_configs_duplicate_scope"
    assert B4_ROWS[0][0] in err.diag.message_detail and B4_ROWS[1][0] in err.diag.message_detail
    assert B4_ROWS[2][0] not in err.diag.message_detail
    assert _version(head_db) == [PREV]  # 0001-0004 applied, 0005 not
    after = pg.run(head_db, "SELECT id::text, restaurant_id::text, weights::text FROM public.strategic_configs ORDER BY 1")
    assert after == before
    assert "scarcity_weight" not in _columns(head_db)  # 0005 rolled back as a whole


def test_fixture_b4_two_global_rows_are_a_duplicate_scope(head_db: str) -> None:
    rows = [("00000000-0000-4000-b000-000000000011", None, {}), ("00000000-0000-4000-b000-000000000012", None, {})]
    pg.run(head_db, strategic_configs_legacy_sql(rows, scope_unique="constraint"))
    with pytest.raises(Exception) as exc:  # noqa: B017
        migrate.upgrade(head_db, "head", skip_preflight="true")
    err = _error(exc)
    assert err.diag.message_primary == "strategic_configs_duplicate_scope"
    assert rows[0][0] in err.diag.message_detail and rows[1][0] in err.diag.message_detail


def test_fixture_b4_preflight_refuses_before_any_revision(head_db: str) -> None:
    pg.run(head_db, strategic_configs_legacy_sql(B4_ROWS, scope_unique=None))
    with pytest.raises(Exception) as exc:  # noqa: B017
        migrate.upgrade(head_db, "head")
    err = _error(exc)
    assert "strategic_configs_duplicate_scope" in (err.diag.message_primary or "") + (err.diag.message_detail or "")
    assert pg.run(head_db, "SELECT to_regclass('public.capacity_alembic_version')") == [(None,)]
    assert pg.run(head_db, "SELECT to_regclass('public.capacity_schema_ledger')") == [(None,)]


# --------------------------------------------------------------------------------------------------
# case 16 and the touch trigger (greenfield head)
# --------------------------------------------------------------------------------------------------
def test_case16_one_global_row_and_upsert_on_null_scope(head_db: str) -> None:
    pg.run(head_db, "INSERT INTO public.strategic_configs (restaurant_id, scarcity_weight) VALUES (NULL, 10)")
    with pytest.raises(psycopg.errors.UniqueViolation) as exc:
        pg.run(head_db, "INSERT INTO public.strategic_configs (restaurant_id, scarcity_weight) VALUES (NULL, 11)")
    assert exc.value.diag.constraint_name == "strategic_configs_restaurant_id_key"
    pg.run(
        head_db,
        "INSERT INTO public.strategic_configs (restaurant_id, scarcity_weight) VALUES (NULL, 12) "
        "ON CONFLICT (restaurant_id) DO UPDATE SET scarcity_weight = EXCLUDED.scarcity_weight",
    )
    assert pg.run(head_db, "SELECT scarcity_weight, version FROM public.strategic_configs") == [(Decimal("12.00"), 2)]
    # one row per restaurant, too
    pg.run(head_db, strategic_configs_restaurants_sql(["R1"]))
    pg.run(head_db, "INSERT INTO public.strategic_configs (restaurant_id) VALUES (%s)", (SC_RESTAURANTS["R1"],))
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.run(head_db, "INSERT INTO public.strategic_configs (restaurant_id) VALUES (%s)", (SC_RESTAURANTS["R1"],))


def test_touch_trigger_bumps_version_and_updated_at(head_db: str) -> None:
    pg.run(head_db, strategic_configs_restaurants_sql(["R1"]))
    pg.run(
        head_db,
        "INSERT INTO public.strategic_configs (id, restaurant_id, updated_at) VALUES (%s, %s, '2000-01-01T00:00:00Z')",
        (ROW["R1"], SC_RESTAURANTS["R1"]),
    )
    assert pg.run(head_db, "SELECT version, scarcity_weight FROM public.strategic_configs") == [(1, Decimal("22.00"))]
    # a caller sending its own version or updated_at does not get to set them
    pg.run(
        head_db,
        "UPDATE public.strategic_configs SET scarcity_weight = 31, version = 99, updated_at = '2000-01-02T00:00:00Z'",
    )
    rows = pg.run(head_db, "SELECT version, updated_at > '2000-01-02T00:00:00Z'::timestamptz FROM public.strategic_configs")
    assert rows == [(2, True)]
    pg.run(head_db, "UPDATE public.strategic_configs SET demand_multiplier_override = 1.5")
    assert pg.run(head_db, "SELECT version FROM public.strategic_configs") == [(3,)]


def test_touch_trigger_replaces_a_generic_updated_at_trigger(head_db: str) -> None:
    pg.run(head_db, strategic_configs_legacy_sql(generic_trigger=True))
    migrate.upgrade(head_db, "head")
    assert _triggers(head_db) == ["strategic_configs_touch"]
    migrate.downgrade(head_db, PREV, allow_data_loss="true")
    assert _triggers(head_db) == ["strategic_configs_updated_at"]


# --------------------------------------------------------------------------------------------------
# case 38 and round trips
# --------------------------------------------------------------------------------------------------
def test_case38_downgrade_refused_then_allowed_restores_weights(fixture_b: str) -> None:
    url = fixture_b
    before = (_values(url), _columns(url), _constraints(url))
    with pytest.raises(Exception) as exc:  # noqa: B017
        migrate.downgrade(url, PREV)
    err = _error(exc)
    assert err.diag.message_primary == "capacity_downgrade_data_loss"
    assert _version(url) == [REV]
    assert (_values(url), _columns(url), _constraints(url)) == before  # refused as a whole

    migrate.downgrade(url, PREV, allow_data_loss="true")

    assert _version(url) == [PREV]
    weights = dict(pg.run(url, "SELECT id::text, weights FROM public.strategic_configs"))
    assert weights == {row_id: w for row_id, _, w in FIXTURE_B_ROWS}
    cols = _columns(url)
    for gone in (*WEIGHTS, "version", "weights_legacy"):
        assert gone not in cols, gone
    # created_at / updated_by were added by 0001 on adoption, not by 0005: they stay
    assert {"id", "restaurant_id", "weights", "updated_at", "created_at", "updated_by"} <= set(cols)
    assert cols["updated_at"][2] == "now()"  # the legacy default is back
    cons = _constraints(url)
    assert cons["strategic_configs_restaurant_id_key"][0] == "UNIQUE (restaurant_id)"  # legacy definition back
    assert not [c for c in cons if c.endswith("_range")]
    assert "strategic_configs_touch" not in _triggers(url)
    assert pg.run(url, "SELECT count(*) FROM public.capacity_schema_ledger WHERE revision = %s", (REV,)) == [(0,)]

    # and forward again: the same result as the first adoption
    migrate.upgrade(url, "head")
    assert {k: v[:3] for k, v in _values(url).items()} == {k: v[:3] for k, v in before[0].items()}


def test_greenfield_round_trip_of_0005(head_db: str) -> None:
    before = (_columns(head_db), _constraints(head_db), _triggers(head_db))
    migrate.downgrade(head_db, PREV)
    cols = _columns(head_db)
    assert not set(WEIGHTS) & set(cols) and "version" not in cols
    assert pg.run(head_db, "SELECT to_regprocedure('public.strategic_configs_touch()')") == [(None,)]
    migrate.upgrade(head_db, "head")
    assert (_columns(head_db), _constraints(head_db), _triggers(head_db)) == before


def test_greenfield_downgrade_with_rows_needs_allow_data_loss(head_db: str) -> None:
    pg.run(head_db, "INSERT INTO public.strategic_configs (restaurant_id) VALUES (NULL)")
    with pytest.raises(Exception) as exc:  # noqa: B017
        migrate.downgrade(head_db, PREV)
    assert _error(exc).diag.message_primary == "capacity_downgrade_data_loss"
    assert _version(head_db) == [REV]


# --------------------------------------------------------------------------------------------------
# offline script
# --------------------------------------------------------------------------------------------------
def _offline_downgrade_0005(**x_args: str) -> str:
    cfg = migrate.alembic_config(None, **x_args)
    buf = io.StringIO()
    cfg.output_buffer = buf
    command.downgrade(cfg, f"{REV}:{PREV}", sql=True)
    return buf.getvalue()


def test_offline_downgrade_bakes_allow_data_loss_in_as_a_literal() -> None:
    refusing, allowing = _offline_downgrade_0005(), _offline_downgrade_0005(allow_data_loss="true")
    # drop_created_columns: "IF true THEN <count rows, refuse>" unless data loss is allowed
    assert "capacity_downgrade_data_loss" in refusing and "capacity_downgrade_data_loss" in allowing
    assert refusing.count("IF true THEN") > allowing.count("IF true THEN")
    assert "RENAME COLUMN weights_legacy TO weights" in refusing


def test_offline_script_adopts_fixture_b(head_db: str, tmp_path) -> None:
    script = tmp_path / "upgrade.sql"
    script.write_text(migrate.offline_sql("head"))
    pg.run(head_db, strategic_configs_legacy_sql())

    def apply() -> str:
        done = subprocess.run([pg.psql_executable(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", head_db, "-f", str(script)],
                              check=True, capture_output=True, text=True)
        return done.stderr

    notices = apply()
    assert f"strategic_configs back-fill: invalid row {ROW['R3']}" in notices
    values = _values(head_db)
    assert values[ROW["R2"]] == (Decimal("12.50"), None, Decimal("400.00"), 1)
    assert values[ROW["R3"]] == (Decimal("22.00"), None, None, 1)
    assert values[ROW[None]] == (Decimal("22.00"), Decimal("1.250"), None, 1)
    assert _report(head_db)["counts"] == {"invalid": 1}
    before = (_values(head_db), _columns(head_db), _constraints(head_db))
    apply()  # a second application changes nothing
    assert (_values(head_db), _columns(head_db), _constraints(head_db)) == before
    assert _version(head_db) == [migrate.HEAD]
