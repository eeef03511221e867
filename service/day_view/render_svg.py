"""The timeline of one restaurant-day as SVG text: one row per table grouped by zone, the day's service
periods across, one bar per booking. Pure: takes a :class:`~service.day_view.model.Day` (and optionally a
:class:`~service.day_view.model.Plan` laid over it) and the current time it should mark; no I/O, no clock.

Drawing choices (docs/day-view.md "The timeline"):

- colours from the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies), and every
  state also carries a pattern, an outline or a word, so nothing is told by colour alone;
- a merged table set is one bar spanning its rows (one bar per run of neighbouring rows, joined by a
  dashed line when the tables are not next to each other in the row order);
- only presentation attributes, no ``style`` element or attribute: the page inserts the SVG into a document
  whose Content-Security-Policy forbids inline styles;
- every bar is ``<g class="booking-bar" data-booking-id=… data-kind=…>`` with a ``<title>``: the browser
  test counts them, a screen reader reads them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from service.day_view.model import NOT_ASSIGNED, NOT_IN_PLAN, Booking, Day, Plan, Skip, Table, Zone

# --- palette: Okabe & Ito, "Color Universal Design" -------------------------------------------------------
BLUE = "#0072B2"  # assigned bookings
DARK_BLUE = "#00466E"  # stripes of merged assigned bookings
ORANGE = "#E69F00"  # planned (dry-run) bookings
DARK_ORANGE = "#9A6A00"  # stripes of merged planned bookings
PURPLE = "#CC79A7"  # holds
VERMILLION = "#D55E00"  # the "now" line
GREY = "#7F7F7F"  # out-of-service hatching
PERIOD_FILL = "#EEF2F6"
ZONE_FILL = "#DDDDDD"
GRID = "#C8C8C8"
GRID_LIGHT = "#E6E6E6"
INK = "#1A1A1A"
FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"

# --- geometry (px). 40 tables × 12 hours → about 1310 × 1170 px -----------------------------------------
MARGIN = 12
LABEL_W = 132
PX_PER_HOUR = 96
ROW_H = 24
ZONE_H = 20
GRID_TOP = 128
LIST_LINE_H = 17
CHAR_W = 6.4  # average advance of an 11 px sans-serif character, to decide whether a label fits
DEFAULT_AXIS = (12 * 60, 22 * 60)  # a day without service periods or bookings


@dataclass(frozen=True, slots=True)
class _Row:
    table: Table
    y: float


def natural_key(text: str) -> tuple:
    """M2 before M10."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text))


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _minutes(moment: datetime, service_date: date, zone: ZoneInfo) -> int:
    """Wall-clock minutes since the service date's midnight (past midnight counts on: 25:30 = 1:30 next day)."""
    local = moment.astimezone(zone)
    return (local.date() - service_date).days * 1440 + local.hour * 60 + local.minute


def _clock(minutes: int) -> str:
    return f"{(minutes // 60) % 24:02d}:{minutes % 60:02d}"


def _period_minutes(start: time, end: time) -> tuple[int, int]:
    lo, hi = start.hour * 60 + start.minute, end.hour * 60 + end.minute
    return lo, hi if hi > lo else hi + 1440


def ordered_rows(day: Day) -> list[tuple[Zone, list[Table]]]:
    """Zones in their sort order, tables by number within each; tables of an unknown zone come last."""
    by_zone: dict[str, list[Table]] = {}
    for table in day.tables:
        by_zone.setdefault(table.zone_id, []).append(table)
    zones = sorted(day.zones, key=lambda z: (z.sort_order, z.name.lower(), z.id))
    known = {z.id for z in zones}
    out = [(z, sorted(by_zone.get(z.id, []), key=lambda t: natural_key(t.number))) for z in zones]
    stray = sorted((t for t in day.tables if t.zone_id not in known), key=lambda t: natural_key(t.number))
    if stray:
        out.append((Zone("", "Other", 1 << 15, "indoor"), stray))
    return [(z, tables) for z, tables in out if tables]


def axis_minutes(day: Day) -> tuple[int, int]:
    """Whole hours covering every service period and every booking of the day."""
    zone = ZoneInfo(day.timezone)
    spans = [_period_minutes(p.start, p.end) for p in day.periods]
    spans += [(_minutes(b.start_at, day.service_date, zone), _minutes(b.end_at, day.service_date, zone))
              for b in day.bookings]
    if not spans:
        return DEFAULT_AXIS
    lo = min(s for s, _ in spans)
    hi = max(max(e for _, e in spans), lo + 60)
    return (lo // 60) * 60, -(-hi // 60) * 60


def placement(booking: Booking, plan: Plan | None) -> tuple[tuple[str, ...], str] | None:
    """(tables, kind) a booking is drawn on, or None: current tables first, else the plan's."""
    if booking.table_ids:
        return booking.table_ids, ("merged" if len(booking.table_ids) > 1 else "assigned")
    if plan is not None and booking.id in plan.assigned and booking.needs_table:
        tables = tuple(plan.assigned[booking.id])
        return tables, ("planned-merged" if len(tables) > 1 else "planned")
    return None


def unassigned_reason(booking: Booking, plan: Plan | None) -> Skip:
    if plan is None:
        return Skip(NOT_ASSIGNED, "No tables assigned yet")
    return plan.skipped.get(booking.id) or Skip(NOT_IN_PLAN, "The plan does not mention this booking")


def _runs(indexes: Iterable[int]) -> list[tuple[int, int]]:
    """[0, 1, 2, 5] → [(0, 2), (5, 5)]."""
    out: list[tuple[int, int]] = []
    for i in sorted(set(indexes)):
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


class _Canvas:
    def __init__(self, day: Day, plan: Plan | None, now: datetime | None) -> None:
        self.day, self.plan, self.now = day, plan, now
        self.zone = ZoneInfo(day.timezone)
        self.axis = axis_minutes(day)
        self.hours = (self.axis[1] - self.axis[0]) // 60
        self.grid_x = MARGIN + LABEL_W
        self.grid_right = self.grid_x + self.hours * PX_PER_HOUR
        self.width = self.grid_right + MARGIN + 18  # room for the last hour label, centred on the edge
        self.parts: list[str] = []
        self.rows: dict[str, int] = {}  # table id → row index
        self.row_list: list[_Row] = []
        self.zone_bands: list[tuple[Zone, float]] = []
        y = float(GRID_TOP)
        for zone, tables in ordered_rows(day):
            self.zone_bands.append((zone, y))
            y += ZONE_H
            for table in tables:
                self.rows[table.id] = len(self.row_list)
                self.row_list.append(_Row(table, y))
                y += ROW_H
        self.grid_bottom = y

    def x(self, minutes: int) -> float:
        return self.grid_x + (minutes - self.axis[0]) * PX_PER_HOUR / 60

    def clip(self, lo: int, hi: int) -> tuple[int, int] | None:
        lo, hi = max(lo, self.axis[0]), min(hi, self.axis[1])
        return (lo, hi) if hi > lo else None

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def text(self, x: float, y: float, content: str, *, size: int = 11, weight: str = "normal",
             fill: str = INK, anchor: str = "start", cls: str | None = None, extra: str = "") -> None:
        klass = f' class="{cls}"' if cls else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" font-weight="{weight}" fill="{fill}" '
                 f'text-anchor="{anchor}"{klass}{extra}>{_esc(content)}</text>')


def _defs() -> str:
    def stripes(pid: str, base: str, line: str, width: int = 3) -> str:
        return (f'<pattern id="{pid}" width="8" height="8" patternUnits="userSpaceOnUse" '
                f'patternTransform="rotate(45)"><rect width="8" height="8" fill="{base}"/>'
                f'<line x1="0" y1="0" x2="0" y2="8" stroke="{line}" stroke-width="{width}"/></pattern>')

    return ("<defs>"
            + stripes("dv-merged", BLUE, DARK_BLUE)
            + stripes("dv-planned-merged", ORANGE, DARK_ORANGE)
            + stripes("dv-out", "#F4F4F4", GREY, 1)
            + f'<pattern id="dv-hold" width="6" height="6" patternUnits="userSpaceOnUse">'
              f'<rect width="6" height="6" fill="#F7E6EF"/>'
              f'<path d="M0 0L6 6M6 0L0 6" stroke="{PURPLE}" stroke-width="1"/></pattern>'
            + "</defs>")


KIND_STYLE = {
    # kind: (fill, text colour, outline, dash)
    "assigned": (BLUE, "#FFFFFF", DARK_BLUE, ""),
    "merged": ("url(#dv-merged)", "#FFFFFF", INK, ""),
    "planned": (ORANGE, INK, INK, ' stroke-dasharray="4 2"'),
    "planned-merged": ("url(#dv-planned-merged)", INK, INK, ' stroke-dasharray="4 2"'),
}


def _legend(c: _Canvas, y: float) -> None:
    x = float(MARGIN)
    items = [
        ("assigned", "booking on one table"),
        ("merged", "merged tables (one bar)"),
    ]
    if c.plan is not None:
        items += [("planned", "planned by the dry run"), ("planned-merged", "planned, merged")]
    for kind, label in items:
        fill, _, outline, dash = KIND_STYLE[kind]
        c.add(f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="22" height="14" rx="3" fill="{fill}" '
              f'stroke="{outline}"{dash}/>')
        c.text(x + 28, y, label)
        x += 34 + len(label) * CHAR_W
    c.add(f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="22" height="14" fill="url(#dv-hold)" stroke="{PURPLE}"/>')
    c.text(x + 28, y, "hold")
    x += 34 + 4 * CHAR_W + 8
    c.add(f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="22" height="14" fill="url(#dv-out)" stroke="{GREY}"/>')
    c.text(x + 28, y, "out of service / inactive")
    x += 34 + 25 * CHAR_W + 8
    c.add(f'<line x1="{x + 11:.1f}" y1="{y - 12:.1f}" x2="{x + 11:.1f}" y2="{y + 4:.1f}" stroke="{VERMILLION}" '
          f'stroke-width="2" stroke-dasharray="5 3"/>')
    c.text(x + 20, y, "now")


def _frame(c: _Canvas) -> None:
    top, bottom = GRID_TOP - 44, c.grid_bottom
    # service periods: shaded columns with their names above
    for period in c.day.periods:
        span = c.clip(*_period_minutes(period.start, period.end))
        if span is None:
            continue
        x0, x1 = c.x(span[0]), c.x(span[1])
        c.add(f'<rect class="service-period" x="{x0:.1f}" y="{top:.1f}" width="{x1 - x0:.1f}" '
              f'height="{bottom - top:.1f}" fill="{PERIOD_FILL}"/>')
        c.text(x0 + 4, top + 14, f"{period.name} {period.start:%H:%M}–{period.end:%H:%M}", weight="bold")
    # half-hour and hour lines, hour labels above and below the grid
    for m in range(c.axis[0], c.axis[1] + 1, 30):
        x = c.x(m)
        hour = m % 60 == 0
        c.add(f'<line x1="{x:.1f}" y1="{GRID_TOP - 4:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
              f'stroke="{GRID if hour else GRID_LIGHT}" stroke-width="1"/>')
        if hour:
            c.text(x, GRID_TOP - 8, _clock(m), anchor="middle", fill="#444444")
            c.text(x, bottom + 14, _clock(m), anchor="middle", fill="#444444")
    # zones and tables
    for zone, y in c.zone_bands:
        c.add(f'<rect x="{MARGIN}" y="{y:.1f}" width="{c.grid_right - MARGIN:.1f}" height="{ZONE_H}" '
              f'fill="{ZONE_FILL}"/>')
        c.text(MARGIN + 4, y + 14, zone.name, size=12, weight="bold", cls="zone")
    for row in c.row_list:
        t = row.table
        c.add(f'<line x1="{MARGIN}" y1="{row.y + ROW_H:.1f}" x2="{c.grid_right:.1f}" y2="{row.y + ROW_H:.1f}" '
              f'stroke="{GRID_LIGHT}"/>')
        c.text(MARGIN + 6, row.y + 16, t.number, size=12, weight="bold", cls="table-label",
               extra=f' data-table-id="{_esc(t.id)}"')
        c.text(MARGIN + 6 + (len(t.number) + 1) * 7.6, row.y + 16, f"{t.capacity} seats", size=10, fill="#555555")
        if t.unusable:
            word = "inactive" if not t.active else t.status.replace("_", " ")
            c.add(f'<rect class="out-of-service" data-table-id="{_esc(t.id)}" x="{c.grid_x:.1f}" '
                  f'y="{row.y + 1:.1f}" width="{c.grid_right - c.grid_x:.1f}" height="{ROW_H - 2}" '
                  f'fill="url(#dv-out)" stroke="{GREY}"><title>{_esc(t.number)}: {_esc(word)}</title></rect>')
            c.text(MARGIN + LABEL_W - 4, row.y + 16, word, size=9, fill="#333333", anchor="end")


def _holds(c: _Canvas) -> None:
    for hold in c.day.holds:
        span = c.clip(_minutes(hold.start_at, c.day.service_date, c.zone),
                      _minutes(hold.end_at, c.day.service_date, c.zone))
        if span is None:
            continue
        x0, x1 = c.x(span[0]), c.x(span[1])
        numbers = "+".join(hold.table_numbers)
        title = f"Hold {_clock(span[0])}–{_clock(span[1])} on {numbers}, expires {hold.expires_at.astimezone(c.zone):%H:%M}"
        c.add(f'<g class="hold" data-hold-id="{_esc(hold.id)}"><title>{_esc(title)}</title>')
        for table_id in hold.table_ids:
            if table_id not in c.rows:
                continue
            y = c.row_list[c.rows[table_id]].y
            c.add(f'<rect x="{x0:.1f}" y="{y + 1:.1f}" width="{x1 - x0:.1f}" height="{ROW_H - 2}" '
                  f'fill="url(#dv-hold)" stroke="{PURPLE}" stroke-width="1.5"/>')
            if x1 - x0 > 36:
                c.text(x1 - 4, y + ROW_H - 5, "hold", size=9, fill="#6B2A4C", anchor="end")
        c.add("</g>")


def _label(party: int, start: int, width: float) -> str:
    full = f"{party}p {_clock(start)}"
    if len(full) * CHAR_W + 6 <= width:
        return full
    short = f"{party}p"
    return short if len(short) * CHAR_W + 4 <= width else ""


def _bookings(c: _Canvas) -> tuple[int, int, int]:
    """Draws the bars; returns (drawn, merged, planned)."""
    drawn = merged = planned = 0
    for b in sorted(c.day.bookings, key=lambda b: (b.start_at, b.id)):
        placed = placement(b, c.plan)
        if placed is None:
            continue
        tables, kind = placed
        indexes = [c.rows[t] for t in tables if t in c.rows]
        start = _minutes(b.start_at, c.day.service_date, c.zone)
        end = _minutes(b.end_at, c.day.service_date, c.zone)
        span = c.clip(start, end)
        if not indexes or span is None:
            continue
        drawn += 1
        merged += len(tables) > 1
        planned += kind.startswith("planned")
        by_id = {r.table.id: r.table.number for r in c.row_list}
        numbers = "+".join(by_id.get(t, "?") for t in tables)
        fill, ink, outline, dash = KIND_STYLE[kind]
        x0, x1 = c.x(span[0]), max(c.x(span[1]), c.x(span[0]) + 3)
        title = (f"{b.reference or b.id}: party of {b.party_size}, {_clock(start)}–{_clock(end)}, "
                 f"{'planned on' if kind.startswith('planned') else 'on'} {numbers}, {b.status}")
        c.add(f'<g class="booking-bar" data-booking-id="{_esc(b.id)}" data-kind="{kind}" '
              f'data-tables="{_esc(numbers)}"><title>{_esc(title)}</title>')
        runs = _runs(indexes)
        for n, (first, last) in enumerate(runs):
            y0 = c.row_list[first].y + 2
            y1 = c.row_list[last].y + ROW_H - 2
            c.add(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="3" '
                  f'fill="{fill}" stroke="{outline}" stroke-width="{1.5 if len(tables) > 1 else 1}"{dash}/>')
            if n == 0:
                label = _label(b.party_size, start, x1 - x0)
                if label:
                    # white-on-stripes needs a halo to stay legible
                    halo = f' stroke="{DARK_BLUE}" stroke-width="2.5" paint-order="stroke"' if kind == "merged" else ""
                    c.text(x0 + 4, y0 + 14, label, weight="bold", fill=ink, extra=halo)
                    if len(tables) > 1 and (y1 - y0) >= 2 * ROW_H - 4 and len(numbers) * 5.8 + 6 <= x1 - x0:
                        c.text(x0 + 4, y0 + 27, numbers, size=10, fill=ink, extra=halo)
            if n > 0:  # the set continues on rows that are not next to the previous run
                prev_last = runs[n - 1][1]
                xm = x0 + 6
                c.add(f'<line x1="{xm:.1f}" y1="{c.row_list[prev_last].y + ROW_H - 2:.1f}" x2="{xm:.1f}" '
                      f'y2="{y0:.1f}" stroke="{outline}" stroke-width="2" stroke-dasharray="3 2"/>')
        c.add("</g>")
    return drawn, merged, planned


def _now_line(c: _Canvas) -> None:
    if c.now is None:
        return
    m = _minutes(c.now, c.day.service_date, c.zone)
    if not (c.axis[0] <= m <= c.axis[1]):
        return
    x = c.x(m)
    c.add(f'<g class="now-line"><line x1="{x:.1f}" y1="{GRID_TOP - 24:.1f}" x2="{x:.1f}" y2="{c.grid_bottom:.1f}" '
          f'stroke="{VERMILLION}" stroke-width="2" stroke-dasharray="5 3"/>')
    c.text(x + 3, GRID_TOP - 18, f"now {_clock(m)}", size=10, weight="bold", fill=VERMILLION)
    c.add("</g>")


def _unassigned(c: _Canvas, y: float) -> tuple[float, int]:
    waiting = sorted((b for b in c.day.bookings if placement(b, c.plan) is None and b.needs_table),
                     key=lambda b: (b.start_at, b.id))
    heading = f"Without a table ({len(waiting)})" if waiting else "Every booking that needs a table has one"
    c.text(MARGIN, y, heading, size=13, weight="bold")
    for b in waiting:
        y += LIST_LINE_H
        skip = unassigned_reason(b, c.plan)
        start = _minutes(b.start_at, c.day.service_date, c.zone)
        end = _minutes(b.end_at, c.day.service_date, c.zone)
        line = f"{_clock(start)}–{_clock(end)}   party of {b.party_size}   {b.reference or b.id}   {skip.reason_code}"
        if skip.reason:
            line += f" — {skip.reason}"
        c.text(MARGIN + 8, y, line, cls="unassigned",
               extra=f' data-booking-id="{_esc(b.id)}" data-reason-code="{_esc(skip.reason_code)}"')
    return y, len(waiting)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def render_timeline(day: Day, *, now: datetime | None = None, plan: Plan | None = None) -> str:
    """The day (with ``plan`` laid over it, if given) as a standalone SVG document. ``now`` draws the
    "now" line when it falls on the day's axis."""
    c = _Canvas(day, plan, now)
    body_start = len(c.parts)
    _frame(c)
    _holds(c)
    drawn, merged, planned = _bookings(c)
    _now_line(c)
    list_bottom, waiting = _unassigned(c, c.grid_bottom + 42)
    frame = c.parts[body_start:]
    c.parts = []
    title = f"{day.restaurant_name} · {day.service_date:%A %d %B %Y}"
    if plan is not None:
        title = f"{plan.title} · {title}"
    c.text(MARGIN, 22, title, size=16, weight="bold")
    unusable = sum(1 for t in day.tables if t.unusable)
    summary = (f"{len(day.tables)} tables · {drawn} bookings on tables ({merged} merged"
               + (f", {planned} planned" if plan is not None else "")
               + f") · {waiting} without a table · {_count(len(day.holds), 'hold')} · {unusable} out of service"
               + f" · times in {day.timezone}")
    c.text(MARGIN, 42, summary, size=12, cls="summary")
    if plan is not None:
        facts = [f"planner {plan.planner}" if plan.planner else None,
                 _bound_text(plan.bound) if plan.bound is not None else None,
                 f"run {plan.run_id}" if plan.run_id else None]
        c.text(MARGIN, 60, " · ".join(f for f in facts if f) or "dry run", size=12, cls="plan-facts")
    _legend(c, 78 if plan is not None else 62)
    header = c.parts
    height = list_bottom + MARGIN + 8
    aria = f"Timeline of {day.restaurant_name} on {day.service_date.isoformat()}"
    return "".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" class="day-timeline" width="{c.width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {c.width:.0f} {height:.0f}" font-family="{FONT}" '
        f'role="img" aria-label="{_esc(aria)}" data-bookings-drawn="{drawn}" data-unassigned="{waiting}">',
        _defs(),
        f'<rect width="{c.width:.0f}" height="{height:.0f}" fill="#FFFFFF"/>',
        *header,
        *frame,
        "</svg>\n",
    ])


def _bound_text(bound: object) -> str:
    """The planner's bound as a person reads it: "at most 20 can be seated (optimal, exact)"."""
    if isinstance(bound, dict) and isinstance(bound.get("upperBound"), int):
        verdict = "optimal" if bound.get("optimal") else "not proven optimal"
        return f"at most {bound['upperBound']} can be seated ({verdict}, {bound.get('method', '?')})"
    return f"bound {bound}"
