"""Issue 13 through the endpoint: continuous periods are not an overrun, a real closing clamps by default
(docs/assign-tables.md §7.3), and the relaxation ladder seats and flags what the strict plan could not
(docs/assign-tables.md §7.13)."""

from __future__ import annotations

import uuid

from tests.api.assign_support import AssignWorld

POLICY = "restaurant_allocator_policies"


def _periods(aw: AssignWorld) -> None:
    """Lunch 12–15 → Afternoon 15–17 → the floor's Dinner 17–23: open continuously from noon."""
    aw.sql("""INSERT INTO restaurant_service_periods (id, restaurant_id, name, start_time, end_time, booking_option)
              VALUES (%s, %s, 'Lunch Service', '12:00', '15:00', 'lunch'),
                     (%s, %s, 'Afternoon', '15:00', '17:00', 'drinks')""",
           (uuid.uuid4(), aw.rid, uuid.uuid4(), aw.rid))


async def test_continuous_periods_seat_everyone_and_closing_clamps(aw: AssignWorld, app_client) -> None:
    _, client = app_client
    _periods(aw)
    lunch = aw.booking(2, "14:30", "15:30")  # 60 + 5 min → 15:35, into the afternoon
    tea = aw.booking(4, "16:30", "17:45")  # 75 + 5 min → 17:50, into dinner
    late = aw.booking(2, "22:30", "22:45")  # 60 + 5 min → 23:35, past the 23:00 close
    resp = await aw.assign(client)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["skipped"] == []
    assert {a["bookingId"] for a in body["assigned"]} == {str(b) for b in (lunch, tea, late, aw.floor.b1, aw.floor.b2)}
    assert body["bound"] == {"upperBound": 5, "optimal": True, "method": "exact"}  # docs/assign-tables.md §7.14
    decisions = {d["bookingId"]: d for d in body["decisions"]}
    assert decisions[str(lunch)]["overrun"] is None
    assert decisions[str(lunch)]["plannerConfig"]["window"]["continuedInto"] == ["Afternoon"]
    assert decisions[str(tea)]["plannerConfig"]["window"]["continuedInto"] == ["Dinner"]
    assert decisions[str(late)]["overrun"] == {"period": "Dinner", "minutes": 35, "resolution": "clamp"}
    stored = aw.sql("SELECT end_at FROM booking_table_assignments WHERE booking_id = %s", (late,))
    assert stored and all(r[0].isoformat() == "2031-06-13T22:00:00+00:00" for r in stored)  # 23:00 BST


async def test_skip_policy_names_the_stored_period_once(aw: AssignWorld, app_client) -> None:
    _, client = app_client
    late = aw.booking(2, "22:30", "22:45")
    aw.sql(f"INSERT INTO {POLICY} (restaurant_id, overrun_policy) VALUES (%s, 'skip')", (aw.rid,))
    aw.sql("UPDATE restaurant_service_periods SET name = 'Dinner Service' WHERE restaurant_id = %s", (aw.rid,))
    body = (await aw.assign(client, dryRun=True)).json()
    skip = next(s for s in body["skipped"] if s["bookingId"] == str(late))
    assert skip == {"bookingId": str(late), "reasonCode": "SERVICE_OVERRUN",
                    "reason": "Reservation would run past closing at 23:00 (end of Dinner Service)."}
    decision = next(d for d in body["decisions"] if d["bookingId"] == str(late))
    assert decision["overrun"] == {"period": "Dinner Service", "minutes": 35, "resolution": "skip"}


def _ten_top(aw: AssignWorld) -> uuid.UUID:
    tid = uuid.uuid4()
    aw.sql("""INSERT INTO table_inventory (id, restaurant_id, zone_id, table_number, capacity, category, mobility)
              VALUES (%s, %s, %s, 'T10', 10, 'dining', 'movable')""", (tid, aw.rid, aw.floor.zone))
    return tid


async def test_party_of_seven_with_only_a_ten_top_left_is_seated_relaxed(aw: AssignWorld, app_client) -> None:
    _, client = app_client
    ten = _ten_top(aw)
    fours = [aw.booking(4, "18:30", "20:30") for _ in range(2)]  # with B2: T2, T3 and T4 all taken
    seven = aw.booking(7, "19:00", "20:30")
    resp = await aw.assign(client)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    by_id = {a["bookingId"]: a for a in body["assigned"]}
    assert by_id[str(seven)] == {"bookingId": str(seven), "tableIds": [str(ten)], "relaxed": ["overage"]}
    assert all(by_id[str(b)]["relaxed"] == [] for b in (*fours, aw.floor.b1, aw.floor.b2))
    decision = next(d for d in body["decisions"] if d["bookingId"] == str(seven))
    assert decision["relaxed"] == ["overage"] and decision["plannerStage"] == "relaxed"
    assert aw.assignments()[str(seven)] == {str(ten)}


async def test_the_ladder_is_per_restaurant_policy(aw: AssignWorld, app_client) -> None:
    _, client = app_client
    _ten_top(aw)
    for _ in range(2):
        aw.booking(4, "18:30", "20:30")
    seven = aw.booking(7, "19:00", "20:30")
    aw.sql(f"INSERT INTO {POLICY} (restaurant_id, relax_overage) VALUES (%s, false)", (aw.rid,))
    body = (await aw.assign(client, dryRun=True)).json()
    assert str(seven) in {s["bookingId"] for s in body["skipped"]}
    aw.sql(f"UPDATE {POLICY} SET relax_overage = true, relaxed_max_overage = 2 WHERE restaurant_id = %s", (aw.rid,))
    body = (await aw.assign(client, dryRun=True)).json()
    assert str(seven) in {s["bookingId"] for s in body["skipped"]}  # 3 spare seats > 2
    aw.sql(f"UPDATE {POLICY} SET relaxed_max_overage = 3 WHERE restaurant_id = %s", (aw.rid,))
    body = (await aw.assign(client, dryRun=True)).json()
    assert any(a["bookingId"] == str(seven) and a["relaxed"] == ["overage"] for a in body["assigned"])
