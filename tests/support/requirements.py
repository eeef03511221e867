"""A test whose tool or environment is missing: skipped on a developer's machine, a failure under CI.

`.ci/run` installs every tool the suite needs (pgbouncer, a compose client, chromium) and sets CI, so a
missing tool there means the install step broke — that must turn the run red, never hide as a skip."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} — under CI this is a failure (.ci/run provides it)")
    pytest.skip(reason)
