"""``capacity-service plot``: the timeline from the database alone (no server), with and without the dry run."""

from __future__ import annotations

import re

import pytest

from service import cli
from tests.api.conftest import JWT_SECRET, runtime_url
from tests.day_view.support import AFTERNOON_FOURS, add_booking, bars


@pytest.fixture
def plot_env(demo, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime_url(demo.db_url))  # the runtime role, as the service runs
    monkeypatch.setenv("CAPACITY_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("CAPACITY_STRATEGIC_CONFIG_LISTEN", "false")
    return demo


def test_plot_writes_the_current_day_and_the_dry_run(plot_env, tmp_path, capsys):
    demo = plot_env
    for b in AFTERNOON_FOURS:
        add_booking(demo, *b)
    before = demo.sql("SELECT count(*) FROM booking_table_assignments")[0][0]
    now_svg, plan_svg = tmp_path / "day.svg", tmp_path / "plan.svg"
    base = ["plot", "--restaurant-id", str(demo.rid), "--date", demo.date.isoformat()]

    assert cli.main([*base, "-o", str(now_svg)]) == 0
    current = now_svg.read_text()
    assert current.startswith("<svg") and bars(current) == {}  # nothing assigned yet
    assert current.count('class="unassigned"') == 26

    assert cli.main([*base, "--dry-run", "-o", str(plan_svg)]) == 0
    text = plan_svg.read_text()
    planned = bars(text)
    skipped = re.findall(r'class="unassigned" data-booking-id="[^"]+" data-reason-code="([A-Z_]+)"', text)
    assert len(planned) + len(skipped) == 26  # each booking either planned or listed with the plan's reason
    assert set(planned.values()) == {"planned", "planned-merged"}  # T1+T2 for the group's sixth party
    assert "NO_SUITABLE_TABLES" in skipped and "NOT_IN_PLAN" not in skipped
    assert demo.sql("SELECT count(*) FROM booking_table_assignments")[0][0] == before  # a dry run writes nothing
    assert f"wrote {plan_svg}" in capsys.readouterr().out


def test_plot_refuses_a_bad_date(plot_env, tmp_path, capsys):
    out = tmp_path / "x.svg"
    code = cli.main(["plot", "--restaurant-id", str(plot_env.rid), "--date", "2025-02-30", "-o", str(out)])
    assert code == cli.EXIT_FINDINGS and not out.exists()
    assert "plot:" in capsys.readouterr().err
