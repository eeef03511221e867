"""service/http/faults.py: one line per cause, the traceback once, repeats counted — with a given clock."""

from __future__ import annotations

import logging

from service.http.faults import FaultLog, cause_of


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _boom() -> ValueError:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        return exc


def test_a_cause_is_logged_once_per_interval_with_the_repeats_counted(caplog) -> None:
    clock = _Clock()
    faults = FaultLog(logging.getLogger("test.faults"), interval_s=60, clock=clock)
    caplog.set_level(logging.INFO, logger="test.faults")
    exc = _boom()
    logged = [faults.report("db", "database unavailable", exc=exc) for _ in range(100)]
    assert logged.count(True) == 1
    assert faults.report("other", "another cause")  # a different cause is not suppressed
    clock.now = 61
    assert faults.report("db", "database unavailable", exc=exc)
    lines = [(r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines == [
        ("database unavailable", True),  # the traceback, the first time only
        ("another cause", False),
        ("database unavailable (99 more since the last report)", False),
    ]


def test_the_cause_of_an_exception_names_its_type_and_where_it_was_raised() -> None:
    one, two = _boom(), _boom()
    assert cause_of(one) == cause_of(two)
    assert cause_of(one).startswith("builtins.ValueError@") and "test_fault_log.py:" in cause_of(one)
    assert cause_of(one) != cause_of(KeyError("x"))
