"""The day view over HTTP: the real app as the runtime role on a fresh database with the demo restaurant."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from service.auth import mint_token
from service.demo import DEMO_OWNER_USER_ID
from tests.day_view.support import AFTER_THE_RUN, AFTERNOON_FOURS, ASSIGN_PATH, add_booking, bars


async def _run_auto_assign(demo, client) -> dict:
    response = await client.post(ASSIGN_PATH, json=demo.assign_body(captureDecisions=False), headers=demo.auth())
    assert response.status_code == 200, response.text
    return response.json()


async def test_day_json_carries_tables_periods_bookings_with_their_tables_and_active_holds(demo, demo_app):
    _, client = demo_app
    for b in AFTERNOON_FOURS:
        add_booking(demo, *b)
    demo.sql("UPDATE bookings SET status = 'cancelled' WHERE reference = 'DEMO0020'")
    run = await _run_auto_assign(demo, client)

    response = await client.get(demo.day_path, headers=demo.auth())
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"
    day = response.json()
    assert day["restaurantName"] == "Demo Bistro" and day["timezone"] == "Europe/London"
    assert [z["name"] for z in day["zones"]] == ["Main", "Terrace"]
    assert len(day["tables"]) == 11
    t4 = next(t for t in day["tables"] if t["number"] == "T4")
    assert (t4["status"], t4["capacity"], t4["zoneName"]) == ("out_of_service", 4, "Terrace")
    assert [(p["name"], p["start"], p["end"]) for p in day["servicePeriods"]] == [
        ("Lunch", "12:00", "15:00"), ("Afternoon", "15:00", "17:00"), ("Dinner", "17:30", "23:00")]
    # every booking of the date, the cancelled one included, with the tables the run committed
    assert len(day["bookings"]) == 26
    by_id = {b["id"]: b for b in day["bookings"]}
    for item in run["assigned"]:
        assert sorted(by_id[item["bookingId"]]["tableIds"]) == sorted(item["tableIds"])
    numbers = {t["id"]: t["number"] for t in day["tables"]}
    for b in day["bookings"]:
        assert b["tableNumbers"] == [numbers[t] for t in b["tableIds"]]
    merged = [b for b in day["bookings"] if len(b["tableIds"]) > 1]
    # the relaxation ladder seats one more party on T1+T2+T3 (docs/assign-tables.md §7.13)
    assert [m["tableNumbers"] for m in merged] == [["T1", "T2", "T3"], ["T1", "T2"]]
    assert [a["relaxed"] for a in run["assigned"] if len(a["tableIds"]) == 3] == [["memberLimits"]]
    assert merged[0]["mergeGroupId"] is not None
    assert {b["id"] for b in day["bookings"] if b["needsTable"]} == {s["bookingId"] for s in run["skipped"]}
    cancelled = next(b for b in day["bookings"] if b["reference"] == "DEMO0020")
    assert cancelled["status"] == "cancelled" and not cancelled["needsTable"] and cancelled["tableIds"] == []
    demo1 = next(b for b in day["bookings"] if b["reference"] == "DEMO0001")
    # 12:00 London in winter is 12:00 UTC, in summer 11:00 UTC: the window is an instant, not a wall time
    start = datetime.fromisoformat(demo1["start"].replace("Z", "+00:00"))
    assert start.tzinfo is not None and (demo1["partySize"], start.minute) == (2, 0)
    # only the hold that has not expired
    assert [(h["tableNumbers"], h["id"][-4:]) for h in day["holds"]] == [(["M5"], "f001")]


async def test_timeline_svg_draws_one_bar_per_booking_on_tables(demo, demo_app):
    app, client = demo_app
    for b in AFTERNOON_FOURS:
        add_booking(demo, *b)
    await _run_auto_assign(demo, client)
    day = (await client.get(demo.day_path, headers=demo.auth())).json()
    response = await client.get(demo.svg_path, headers=demo.auth())
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert "sandbox" in response.headers["content-security-policy"]
    drawn = bars(response.text)
    on_tables = {b["id"] for b in day["bookings"] if b["tableIds"]}
    assert set(drawn) == on_tables
    assert sorted(drawn.values()).count("merged") == 2  # one of them relaxed (docs/assign-tables.md §7.13)
    listed = set(re.findall(r'class="unassigned" data-booking-id="([0-9a-f-]+)" data-reason-code="NOT_ASSIGNED"',
                            response.text))
    # one fewer unseated since the ladder seats a party on T1+T2+T3 (docs/assign-tables.md §7.13)
    assert listed == {b["id"] for b in day["bookings"] if b["needsTable"]} and len(listed) == 1


async def test_now_line_comes_from_the_app_clock(demo, demo_app):
    app, client = demo_app
    app.state.day_view_clock = lambda: datetime.combine(demo.date, datetime.min.time(), UTC).replace(hour=14)
    svg = (await client.get(demo.svg_path, headers=demo.auth())).text
    assert 'class="now-line"' in svg
    app.state.day_view_clock = lambda: datetime(2000, 1, 1, 14, tzinfo=UTC)
    svg = (await client.get(demo.svg_path, headers=demo.auth())).text
    assert 'class="now-line"' not in svg


async def test_dry_run_posted_back_is_drawn_over_the_day_and_nothing_is_written(demo, demo_app):
    _, client = demo_app
    await _run_auto_assign(demo, client)
    late = [add_booking(demo, *b) for b in AFTER_THE_RUN]
    before = demo.sql("SELECT count(*) FROM booking_table_assignments")[0][0]
    dry = await client.post(ASSIGN_PATH, json=demo.assign_body(dryRun=True, captureDecisions=False),
                            headers=demo.auth())
    plan = dry.json()
    plan["bound"] = 21  # what the planner will report (issue 13); shown when present
    plan["runId"] = "run-42"
    response = await client.post(demo.svg_path, json=plan, headers=demo.auth())
    assert response.status_code == 200, response.text
    drawn = bars(response.text)
    planned = {a["bookingId"] for a in plan["assigned"]}
    assert planned and planned <= set(late)
    assert {b for b, kind in drawn.items() if kind.startswith("planned")} == planned
    current = {b["id"] for b in (await client.get(demo.day_path, headers=demo.auth())).json()["bookings"]
               if b["tableIds"]}
    assert set(drawn) == current | planned
    for skip in plan["skipped"]:
        assert f'data-booking-id="{skip["bookingId"]}" data-reason-code="{skip["reasonCode"]}"' in response.text
    assert "bound 21" in response.text and "run run-42" in response.text
    assert demo.sql("SELECT count(*) FROM booking_table_assignments")[0][0] == before


async def test_a_plan_naming_other_bookings_or_tables_is_refused_whole(demo, demo_app):
    _, client = demo_app
    booking = demo.sql("SELECT id::text FROM bookings WHERE reference = 'DEMO0001'")[0][0]
    stranger = str(uuid.uuid4())
    cases = [
        ({"assigned": [{"bookingId": stranger, "tableIds": [demo.table_id("M1")]}]}, "assigned.0.bookingId"),
        ({"assigned": [{"bookingId": booking, "tableIds": [stranger]}]}, "assigned.0.tableIds.0"),
        ({"assigned": [], "skipped": [{"bookingId": stranger, "reasonCode": "X"}]}, "skipped.0.bookingId"),
        ({"assigned": [], "date": "1999-01-01"}, "date"),
    ]
    for body, field in cases:
        response = await client.post(demo.svg_path, json=body, headers=demo.auth())
        assert response.status_code == 400, body
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "PLAN_DOES_NOT_MATCH_DAY"
        assert [d["field"] for d in problem["details"]] == [field]
    response = await client.post(demo.svg_path, json={"assigned": [{"bookingId": booking, "tableIds": []}]},
                                 headers=demo.auth())
    assert response.status_code == 400 and response.json()["code"] == "INVALID_BODY"


async def test_auth_and_input_errors_are_problem_json(demo, demo_app):
    _, client = demo_app
    path = demo.day_path
    assert (await client.get(path)).status_code == 401
    # anonymous callers learn nothing about the input
    assert (await client.get("/api/ops/dashboard/days/not-a-uuid/2025-13-45")).status_code == 401
    service_token = mint_token(demo.settings, sub=None, role="service_role")
    assert (await client.get(path, headers={"Authorization": f"Bearer {service_token}"})).status_code == 403
    for bad, field in ((f"/api/ops/dashboard/days/{demo.rid}/2025-13-45", "date"),
                       (f"/api/ops/dashboard/days/{demo.rid}/25-1-1", "date"),
                       (f"/api/ops/dashboard/days/not-a-uuid/{demo.date}", "restaurantId"),
                       (f"/api/ops/dashboard/days/{demo.rid.hex}/{demo.date}", "restaurantId"),
                       (f"/api/ops/dashboard/days/{{{demo.rid}}}/{demo.date}", "restaurantId")):
        for suffix in ("", "/timeline.svg"):
            response = await client.get(bad + suffix, headers=demo.auth())
            assert response.status_code == 400, (bad, suffix, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "INVALID_QUERY"
            assert field in [d["field"] for d in response.json()["details"]]
    # a member of another restaurant, and a restaurant that does not exist: the same 403
    for url in (path, f"/api/ops/dashboard/days/{uuid.uuid4()}/{demo.date}"):
        response = await client.get(url, headers=demo.auth(demo.outsider))
        assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"
        assert (await client.get(url + "/timeline.svg", headers=demo.auth(demo.outsider))).status_code == 403
    assert (await client.get(path, headers=demo.auth(DEMO_OWNER_USER_ID))).status_code == 200


async def test_ops_page_has_a_strict_csp_and_no_inline_code(demo_app):
    _, client = demo_app
    page = await client.get("/ops/days")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/ops/days/days.js" defer>']
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline event handlers
    assert not re.search(r"https?://", html)  # nothing from another origin: works offline
    script = await client.get("/ops/days/days.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "sessionStorage" in script.text and "localStorage" not in script.text
    assert (await client.get("/ops/days/days.css")).status_code == 200
    missing = await client.get("/ops/days/secrets.txt")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"

