"""Every installed function on both column shapes (issue 9 item 2).

``greenfield``: this service's own types (``bookings.seating_preference`` text, the statuses, categories,
seating types, mobility and area type the enums 0001 creates). ``original``: a database the original
platform created (tests/fixtures/original/platform_schema.sql: the booking domain's enums, including
``seating_preference_type``), adopted to head. Each test walks the function paths that read or write those
columns — update_booking_with_capacity_check (seating preference written, statuses compared),
validate_booking_capacity_after_assignment (statuses counted), refresh_table_status and its triggers
(table status written from booking statuses, maintenance and holds), assign_tables_atomic_v2 /
commit_planned_assignment(s) / assign_tables_first_fit (mobility and booking status read) — and checks
the outcome, so a write of text into an enum column (42804) or a comparison that only holds on one shape
fails here.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy.engine import make_url

from service.schema import migrate
from service.schema.released.capacity_functions import ensure_capacity_rules_sql
from tests.migrations.test_adopt_original import load_original
from tests.support import pg
from tests.support.floor import SERVICE_DATE, TIMEZONE, add_booking

SHAPES = ("greenfield", "original")


@dataclass(frozen=True)
class Shape:
    name: str
    url: str
    restaurant: uuid.UUID
    zone: uuid.UUID
    t1: uuid.UUID  # capacity 2
    t2: uuid.UUID  # capacity 4, adjacent to t3
    t3: uuid.UUID
    b1: uuid.UUID  # party 2, 18:00–20:00
    b2: uuid.UUID  # party 4, 18:30–20:30


def _seed(url: str, original: bool) -> dict[str, uuid.UUID]:
    ids = {k: uuid.uuid4() for k in ("restaurant", "zone", "t1", "t2", "t3", "b1", "b2")}
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO restaurants (id, name, slug, timezone) VALUES (%(restaurant)s, 'R', %(slug)s, %(tz)s)",
                     {**ids, "slug": f"r-{ids['restaurant'].hex[:8]}", "tz": TIMEZONE})
        if original:
            # the original's own rules for rows of its domain: allowed table sizes, a customer per booking
            conn.execute("INSERT INTO allowed_capacities (restaurant_id, capacity) VALUES (%(restaurant)s, 2), "
                         "(%(restaurant)s, 4)", ids)
            row = conn.execute("INSERT INTO customers (restaurant_id, full_name, email, phone) VALUES "
                               "(%(restaurant)s, 'Guest', 'guest@example.test', '+440000000') RETURNING id", ids).fetchone()
            assert row is not None
            conn.execute(f"ALTER TABLE bookings ALTER COLUMN customer_id SET DEFAULT '{row[0]}'")
        conn.execute("INSERT INTO zones (id, restaurant_id, name) VALUES (%(zone)s, %(restaurant)s, 'Z')", ids)
        conn.execute(
            """INSERT INTO table_inventory (id, restaurant_id, zone_id, table_number, capacity, category, mobility)
               VALUES (%(t1)s, %(restaurant)s, %(zone)s, 'T1', 2, 'dining', 'movable'),
                      (%(t2)s, %(restaurant)s, %(zone)s, 'T2', 4, 'dining', 'movable'),
                      (%(t3)s, %(restaurant)s, %(zone)s, 'T3', 4, 'dining', 'movable')""",
            ids,
        )
        conn.execute("INSERT INTO table_adjacencies (table_a, table_b) VALUES (%(t2)s, %(t3)s)", ids)
    add_booking(url, ids["restaurant"], 2, "18:00", "20:00", booking_id=ids["b1"])
    add_booking(url, ids["restaurant"], 4, "18:30", "20:30", booking_id=ids["b2"])
    return ids


@pytest.fixture(scope="module")
def shape_templates(pg_admin_url: str) -> Iterator[dict[str, tuple[str, dict[str, uuid.UUID]]]]:
    """One seeded database per shape at head, kept as a template and cloned per test."""
    built: dict[str, tuple[str, dict[str, uuid.UUID]]] = {}
    try:
        for name in SHAPES:
            url = pg.create_database(pg_admin_url, f"cap_shape_{name}")
            if name == "original":
                load_original(url)
            migrate.upgrade(url, "head")
            pg.run(url, ensure_capacity_rules_sql())  # absent on the original; the capacity checks read it
            ids = _seed(url, original=name == "original")
            pg.run(pg_admin_url, f"ALTER DATABASE {make_url(url).database} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
            built[name] = (url, ids)
        yield built
    finally:
        for url, _ids in built.values():
            name = make_url(url).database
            pg.run(pg_admin_url, f"ALTER DATABASE {name} WITH IS_TEMPLATE false ALLOW_CONNECTIONS true")
            pg.drop_database(pg_admin_url, url)


@pytest.fixture(params=SHAPES)
def shape(request: pytest.FixtureRequest, pg_admin_url: str, shape_templates: dict) -> Iterator[Shape]:
    template_url, ids = shape_templates[request.param]
    url = pg.create_database(pg_admin_url, f"cap_{request.param}", template=make_url(template_url).database)
    yield Shape(request.param, url, **ids)
    pg.drop_database(pg_admin_url, url)


def test_the_shapes_differ_where_the_original_uses_enums(shape: Shape) -> None:
    types = dict(pg.run(shape.url, """SELECT table_name || '.' || column_name, udt_name FROM information_schema.columns
        WHERE table_schema = 'public' AND (table_name, column_name) IN (('bookings', 'seating_preference'),
              ('bookings', 'status'), ('table_inventory', 'status'), ('table_inventory', 'category'),
              ('table_inventory', 'seating_type'), ('table_inventory', 'mobility'), ('zones', 'area_type'))"""))
    expected = {
        "bookings.status": "booking_status", "table_inventory.status": "table_status",
        "table_inventory.category": "table_category", "table_inventory.seating_type": "table_seating_type",
        "table_inventory.mobility": "table_mobility", "zones.area_type": "area_type",
        "bookings.seating_preference": "seating_preference_type" if shape.name == "original" else "text",
    }
    assert types == expected
    if shape.name == "original":
        history = dict(pg.run(shape.url, """SELECT column_name, udt_name FROM information_schema.columns
            WHERE table_name = 'booking_state_history' AND column_name IN ('from_status', 'to_status')"""))
        assert history == {"from_status": "booking_status", "to_status": "booking_status"}


# one party per service day on SERVICE_DATE
RULE = "INSERT INTO restaurant_capacity_rules (restaurant_id, effective_date, max_parties) VALUES (%s, %s, 1)"


def _update_booking(shape: Shape, booking: uuid.UUID, party: int, seating: str | None, booking_type: str = "dinner") -> dict:
    rows = pg.run(
        shape.url,
        """SELECT update_booking_with_capacity_check(%s, %s, (SELECT customer_id FROM bookings WHERE id = %s), %s,
                  '18:00', '20:00', %s, %s, 'Guest', 'guest@example.test', '+440000000', %s, 'window seat please')""",
        (booking, shape.restaurant, booking, SERVICE_DATE, party, booking_type, seating),
    )
    return rows[0][0]


def test_update_booking_writes_seating_preference_and_counts_by_status(shape: Shape) -> None:
    out = _update_booking(shape, shape.b1, 2, "window")
    assert out["success"] is True, out
    assert pg.run(shape.url, "SELECT seating_preference::text, booking_type FROM bookings WHERE id = %s", (shape.b1,)) == [
        ("window", "dinner")
    ]
    assert out["booking"]["seating_preference"] == "window"
    assert out["capacity"]["bookedParties"] == 1  # b2 (confirmed) counts
    pg.run(shape.url, "UPDATE bookings SET status = 'cancelled' WHERE id = %s", (shape.b2,))
    assert _update_booking(shape, shape.b1, 2, "quiet")["capacity"]["bookedParties"] == 0  # cancelled does not


def test_update_booking_with_a_label_the_column_does_not_have(shape: Shape) -> None:
    out = _update_booking(shape, shape.b1, 2, "terrace")
    if shape.name == "original":
        assert (out["success"], out["error"]) == (False, "INVALID_PARAMS"), out
        assert pg.run(shape.url, "SELECT seating_preference::text FROM bookings WHERE id = %s", (shape.b1,)) == [("any",)]
    else:  # text: any preference is stored as given
        assert out["success"] is True, out


def test_update_booking_respects_a_capacity_rule_counting_statuses(shape: Shape) -> None:
    pg.run(shape.url, RULE, (shape.restaurant, SERVICE_DATE))
    out = _update_booking(shape, shape.b1, 2, "bar")
    assert (out["success"], out["error"]) == (False, "CAPACITY_EXCEEDED"), out  # b2 confirmed already fills it
    pg.run(shape.url, "UPDATE bookings SET status = 'no_show' WHERE id = %s", (shape.b2,))
    assert _update_booking(shape, shape.b1, 2, "bar")["success"] is True


def _local(hhmm: str) -> dt.datetime:
    return dt.datetime.combine(SERVICE_DATE, dt.time.fromisoformat(hhmm), ZoneInfo(TIMEZONE))


def test_validate_booking_capacity_counts_active_statuses(shape: Shape) -> None:
    pg.run(shape.url, RULE, (shape.restaurant, SERVICE_DATE))
    with pg.raises_sqlstate(pg.CAPACITY_EXCEEDED_STATE, match="capacity_exceeded_post_assignment"):
        pg.run(shape.url, "SELECT validate_booking_capacity_after_assignment(%s)", (shape.b1,))
    pg.run(shape.url, "UPDATE bookings SET status = 'pending_allocation' WHERE id = %s", (shape.b2,))  # not counted
    pg.run(shape.url, "SELECT validate_booking_capacity_after_assignment(%s)", (shape.b1,))


def _table_status(shape: Shape, table: uuid.UUID) -> str:
    return pg.run(shape.url, "SELECT status::text FROM table_inventory WHERE id = %s", (table,))[0][0]


def test_refresh_table_status_on_every_path(shape: Shape) -> None:
    """Allocation and booking-status triggers drive refresh_table_status: reserved, occupied (a checked-in
    booking), back to reserved only by hand, out of service (maintenance), available once released."""
    now_window = "tstzrange(now() - interval '1 hour', now() + interval '1 hour')"
    pg.run(shape.url, f"""INSERT INTO allocations (restaurant_id, booking_id, resource_type, resource_id, "window")
                          VALUES (%s, %s, 'table', %s, {now_window})""", (shape.restaurant, shape.b1, shape.t1))
    # the booking-status trigger finds the tables through the assignment rows
    pg.run(shape.url, "INSERT INTO booking_table_assignments (booking_id, table_id, start_at, end_at) "
                      "VALUES (%s, %s, now() - interval '1 hour', now() + interval '1 hour')", (shape.b1, shape.t1))
    assert _table_status(shape, shape.t1) == "reserved"
    pg.run(shape.url, "UPDATE bookings SET status = 'checked_in' WHERE id = %s", (shape.b1,))
    assert _table_status(shape, shape.t1) == "occupied"
    pg.run(shape.url, "SELECT refresh_table_status(%s)", (shape.t1,))
    assert _table_status(shape, shape.t1) == "occupied"
    pg.run(shape.url, f"""INSERT INTO allocations (restaurant_id, resource_type, resource_id, "window", is_maintenance)
                          VALUES (%s, 'table', %s, {now_window}, true)""", (shape.restaurant, shape.t2))
    assert _table_status(shape, shape.t2) == "out_of_service"
    pg.run(shape.url, "DELETE FROM allocations WHERE resource_id = %s", (shape.t1,))
    assert _table_status(shape, shape.t1) == "available"
    if shape.name == "original":  # the booking domain's history trigger recorded the enum transition
        assert pg.run(shape.url, "SELECT from_status::text, to_status::text FROM booking_state_history "
                                 "WHERE booking_id = %s AND from_status IS NOT NULL", (shape.b1,)) == [("confirmed", "checked_in")]


def test_commit_paths_read_mobility_and_booking_status(shape: Shape) -> None:
    """assign_tables_atomic_v2 with a merged pair (mobility checked), commit_planned_assignment(s) (status
    read), assign_tables_first_fit, and a fixed table refused for a merge — on both shapes."""
    merged = pg.run(shape.url, "SELECT table_id, merge_group_id FROM assign_tables_atomic_v2(%s, %s, 'k-merge', true)",
                    (shape.b2, [shape.t2, shape.t3]))
    assert {r[0] for r in merged} == {shape.t2, shape.t3} and merged[0][1] is not None
    planned = pg.run(shape.url, "SELECT outcome, booking_status, table_id FROM commit_planned_assignment(%s, %s, %s, "
                                "'k-planned', false, NULL, NULL, NULL)", (shape.restaurant, shape.b1, [shape.t1]))
    assert planned == [("assigned", "confirmed", shape.t1)]
    late = add_booking(shape.url, shape.restaurant, 2, "21:00", "22:00")
    items = [{"booking_id": str(late), "table_ids": [str(shape.t1)], "idempotency_key": "k-batch",
              "require_adjacency": False, "start_at": _local("21:00").isoformat(), "end_at": _local("22:00").isoformat()}]
    batch = pg.run(shape.url, "SELECT booking_id, outcome, booking_status FROM commit_planned_assignments(%s, %s::jsonb)",
                   (shape.restaurant, json.dumps(items)))
    assert batch == [(late, "assigned", "confirmed")]
    first_fit = add_booking(shape.url, shape.restaurant, 2, "22:00", "23:00")
    fit = pg.run(shape.url, "SELECT table_id FROM assign_tables_first_fit(%s, %s::jsonb, 'k-fit', false)",
                 (first_fit, json.dumps([[str(shape.t1)]])))
    assert fit == [(shape.t1,)]
    pg.run(shape.url, "UPDATE table_inventory SET mobility = 'fixed' WHERE id = %s", (shape.t3,))
    fixed = add_booking(shape.url, shape.restaurant, 4, "12:00", "13:00")
    with pytest.raises(psycopg.errors.CheckViolation, match="movable"):
        pg.run(shape.url, "SELECT * FROM assign_tables_atomic_v2(%s, %s, 'k-fixed', true)", (fixed, [shape.t2, shape.t3]))


async def test_auto_assign_endpoint_reads_and_commits_a_day_on_both_shapes(shape: Shape) -> None:
    """The service's own SQL (load of the day, batched commits) through the real app as the runtime role."""
    from service.auth import mint_token
    from tests.api.assign_support import PATH
    from tests.api.conftest import make_settings, running_app

    owner = uuid.uuid4()
    if shape.name == "original":  # memberships point at the platform's auth users
        pg.run(shape.url, "INSERT INTO auth.users (id) VALUES (%s)", (owner,))
    pg.run(shape.url, "INSERT INTO restaurant_memberships (user_id, restaurant_id, role) VALUES (%s, %s, 'owner')",
           (owner, shape.restaurant))
    pg.run(shape.url, "UPDATE bookings SET seating_preference = 'window' WHERE id = %s", (shape.b1,))
    settings = make_settings(shape.url)
    async with running_app(settings) as (_, client):
        response = await client.post(
            PATH, json={"restaurantId": str(shape.restaurant), "date": SERVICE_DATE.isoformat()},
            headers={"Authorization": f"Bearer {mint_token(settings, sub=str(owner))}"},
        )
    assert response.status_code == 200, response.text[:500]
    assert {a["bookingId"] for a in response.json()["assigned"]} == {str(shape.b1), str(shape.b2)}
    assert response.json()["skipped"] == []
    stored = pg.run(shape.url, "SELECT DISTINCT booking_id FROM booking_table_assignments WHERE booking_id = ANY(%s)",
                    ([shape.b1, shape.b2],))
    assert {r[0] for r in stored} == {shape.b1, shape.b2}
