"""The timeline renderer alone (pure: plain data in, SVG text out)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time

from service.day_view.model import (
    Booking,
    Day,
    Hold,
    Plan,
    ServicePeriod,
    Skip,
    Table,
    Zone,
)
from service.day_view.render_svg import axis_minutes, ordered_rows, render_timeline

SVG = "{http://www.w3.org/2000/svg}"
DAY = date(2026, 7, 14)  # British Summer Time: local = UTC + 1


def utc(hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 7, 14, hh, mm, tzinfo=UTC)


def make_day(bookings=(), holds=(), tables=None, periods=None) -> Day:
    zones = (Zone("z-main", "Main <& Co>", 0, "indoor"), Zone("z-terrace", "Terrace", 1, "outdoor"))
    tables = tables or (
        Table("t-m10", "M10", 4, "z-main", "available", True),
        Table("t-m2", "M2", 2, "z-main", "available", True),
        Table("t-m1", "M1", 2, "z-main", "available", True),
        Table("t-t1", "T1", 2, "z-terrace", "out_of_service", True),
        Table("t-t2", "T2", 2, "z-terrace", "available", False),
    )
    periods = periods if periods is not None else (ServicePeriod("Dinner", time(17, 0), time(22, 0), None, "dinner"),)
    return Day("r", "Bistro", DAY, "Europe/London", zones, tables, periods, tuple(bookings), tuple(holds))


def booking(bid: str, start: datetime, end: datetime, tables=(), party: int = 2, status: str = "confirmed") -> Booking:
    return Booking(bid, f"REF-{bid}", party, status, start, end, tuple(tables), ())


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def bar_groups(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-booking-id"): g for g in root.iter(f"{SVG}g") if g.get("class") == "booking-bar"}


def test_rows_are_grouped_by_zone_in_sort_order_and_numbered_naturally():
    rows = ordered_rows(make_day())
    assert [(z.name, [t.number for t in ts]) for z, ts in rows] == [
        ("Main <& Co>", ["M1", "M2", "M10"]), ("Terrace", ["T1", "T2"])]


def test_one_bar_per_booking_and_a_merged_set_is_one_bar_spanning_its_rows():
    day = make_day(bookings=[
        booking("single", utc(17), utc(18, 30), ["t-m1"]),
        booking("merged", utc(18), utc(20), ["t-m1", "t-m2"], party=4),  # rows M1, M2: next to each other
        booking("apart", utc(19), utc(21), ["t-m1", "t-m10"], party=5),  # rows M1, M10: M2 between them
        booking("waiting", utc(19), utc(20)),
        booking("cancelled", utc(19), utc(20), status="cancelled"),
    ])
    root = parse(render_timeline(day))
    bars = bar_groups(root)
    assert set(bars) == {"single", "merged", "apart"}
    assert bars["single"].get("data-kind") == "assigned"
    assert bars["merged"].get("data-kind") == "merged"
    merged_rects = bars["merged"].findall(f"{SVG}rect")
    assert len(merged_rects) == 1  # one bar over both rows
    assert float(merged_rects[0].get("height")) == 2 * 24 - 4  # both rows, less the 2 px padding above and below
    # not adjacent in the row order: one rect per run of rows, joined by a line
    assert len(bars["apart"].findall(f"{SVG}rect")) == 2
    assert len(bars["apart"].findall(f"{SVG}line")) == 1
    # labels: party size and local start time (UTC 17:00 = 18:00 BST)
    texts = ["".join(t.itertext()) for t in bars["single"].iter(f"{SVG}text")]
    assert texts == ["2p 18:00"]
    assert root.get("data-bookings-drawn") == "3"


def test_unassigned_bookings_are_listed_with_reason_codes_from_the_plan():
    day = make_day(bookings=[
        booking("planned", utc(17), utc(18), party=2),
        booking("skipped", utc(18), utc(19), party=9),
        booking("forgotten", utc(18), utc(19), party=2),
        booking("seated", utc(18), utc(19), ["t-m1"]),
    ])
    plain = parse(render_timeline(day))
    listed = {t.get("data-booking-id"): t.get("data-reason-code")
              for t in plain.iter(f"{SVG}text") if t.get("class") == "unassigned"}
    assert listed == {"planned": "NOT_ASSIGNED", "skipped": "NOT_ASSIGNED", "forgotten": "NOT_ASSIGNED"}

    plan = Plan(assigned={"planned": ("t-m2",), "seated": ("t-m10",)},
                skipped={"skipped": Skip("NO_SUITABLE_TABLES", "too big")}, planner="lns", bound=17, run_id="run-1")
    svg = render_timeline(day, plan=plan)
    root = parse(svg)
    listed = {t.get("data-booking-id"): t.get("data-reason-code")
              for t in root.iter(f"{SVG}text") if t.get("class") == "unassigned"}
    assert listed == {"skipped": "NO_SUITABLE_TABLES", "forgotten": "NOT_IN_PLAN"}
    bars = bar_groups(root)
    assert bars["planned"].get("data-kind") == "planned"
    assert bars["seated"].get("data-kind") == "assigned"  # current tables win over the plan's
    assert "bound 17" in svg and "run run-1" in svg and "planner lns" in svg
    proven = render_timeline(day, plan=Plan(assigned={}, planner="exact",
                                            bound={"upperBound": 17, "optimal": True, "method": "exact"}))
    assert "at most 17 can be seated (optimal, exact)" in proven


def test_now_line_only_on_the_day_axis():
    day = make_day(bookings=[booking("b", utc(17), utc(18), ["t-m1"])])
    assert 'class="now-line"' in render_timeline(day, now=utc(18, 30))  # 19:30 local
    assert "now 19:30" in render_timeline(day, now=utc(18, 30))
    assert 'class="now-line"' not in render_timeline(day, now=datetime(2026, 7, 15, 18, tzinfo=UTC))
    assert 'class="now-line"' not in render_timeline(day, now=utc(8))
    assert 'class="now-line"' not in render_timeline(day)


def test_holds_and_unusable_tables_are_shaded_and_text_is_escaped():
    hold = Hold("h1", None, ("t-m2",), ("M2",), utc(17), utc(18), utc(23))
    root = parse(render_timeline(make_day(holds=[hold])))
    shaded = [r.get("data-table-id") for r in root.iter(f"{SVG}rect") if r.get("class") == "out-of-service"]
    assert shaded == ["t-t1", "t-t2"]  # out of service, and inactive
    holds = [g for g in root.iter(f"{SVG}g") if g.get("class") == "hold"]
    assert len(holds) == 1 and len(holds[0].findall(f"{SVG}rect")) == 1
    assert "Main <& Co>" in ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_no_inline_style_so_the_page_csp_needs_no_unsafe_inline():
    svg = render_timeline(make_day(bookings=[booking("b", utc(17), utc(18), ["t-m1", "t-m2"])]))
    assert "style=" not in svg and "<style" not in svg and "<script" not in svg


def test_axis_covers_periods_and_bookings_outside_them_in_whole_hours():
    day = make_day(bookings=[booking("late", utc(21, 30), utc(23, 10), ["t-m1"])])  # 22:30–00:10 local
    assert axis_minutes(day) == (17 * 60, 25 * 60)
    assert axis_minutes(make_day(periods=())) == (12 * 60, 22 * 60)


def test_forty_tables_twelve_hours_stay_readable():
    tables = tuple(Table(f"t{i}", f"A{i}", 4, "z-main", "available", True) for i in range(40))
    periods = (ServicePeriod("All day", time(11, 0), time(23, 0), None, "dinner"),)
    bookings = [booking(f"b{i}", utc(10 + i % 10), utc(11 + i % 10, 30), [f"t{i}"], party=4) for i in range(40)]
    root = parse(render_timeline(make_day(bookings=bookings, tables=tables, periods=periods)))
    width, height = float(root.get("width")), float(root.get("height"))
    assert width >= 12 * 90 and height >= 40 * 24  # ≥ 90 px an hour, ≥ 24 px a row
    for g in bar_groups(root).values():  # a 90-minute bar has room for its label
        assert "".join(g.find(f"{SVG}text").itertext()).startswith("4p ")

