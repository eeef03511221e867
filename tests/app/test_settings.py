"""Settings: every FEATURE_* flag parsed and validated in one place; an invalid setting refuses to start
with one line naming the variable and what it accepts, no traceback (docs/operations.md §2)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service import cli
from service.domain.allocator.model import AllocatorConfig
from service.settings import Settings, SettingsError, load_settings

FEATURES = [name for name in os.environ if name.startswith(("FEATURE_", "CAPACITY_"))]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FEATURES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)


def test_unset_flags_give_the_allocator_defaults() -> None:
    assert Settings().allocator_config() == AllocatorConfig()


def test_flags_reach_the_allocator_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_ALLOCATOR_ADJACENCY_MODE", "pairwise")
    monkeypatch.setenv("FEATURE_ALLOCATOR_K_MAX", "5")
    monkeypatch.setenv("FEATURE_ALLOCATOR_ADJACENCY_MIN_PARTY_SIZE", "20")
    monkeypatch.setenv("FEATURE_ALLOCATOR_MERGES_ENABLED", "off")
    monkeypatch.setenv("FEATURE_SELECTOR_LOOKAHEAD_PENALTY_WEIGHT", "700")
    monkeypatch.setenv("FEATURE_HOLDS_ENABLED", "0")
    monkeypatch.setenv("FEATURE_SELECTOR_LOOKAHEAD", "")  # empty = unset
    config = load_settings().allocator_config()
    assert config.adjacency_mode == "pairwise"
    assert config.k_max == 5 and config.effective_k_max == 5
    assert config.adjacency_min_party_size == 20
    # the combination planner follows the merges flag unless set itself
    assert config.merges_enabled is False and config.combination_planner is False
    assert config.lookahead_penalty_weight == 700
    assert config.holds_enabled is False
    assert config.lookahead_enabled is True


INVALID = [
    ("FEATURE_ALLOCATOR_K_MAX", "99", "invalid setting FEATURE_ALLOCATOR_K_MAX=99: expected an integer 1–5"),
    ("FEATURE_ALLOCATOR_K_MAX", "0", "invalid setting FEATURE_ALLOCATOR_K_MAX=0: expected an integer 1–5"),
    (
        "FEATURE_ALLOCATOR_MERGES_ENABLED",
        "maybe",
        "invalid setting FEATURE_ALLOCATOR_MERGES_ENABLED=maybe: expected true or false (also 1/0, yes/no, on/off)",
    ),
    (
        "FEATURE_ALLOCATOR_ADJACENCY_MODE",
        "bogus",
        "invalid setting FEATURE_ALLOCATOR_ADJACENCY_MODE=bogus: expected one of connected, pairwise, neighbors",
    ),
    (
        "FEATURE_ALLOCATOR_ADJACENCY_MIN_PARTY_SIZE",
        "99",
        "invalid setting FEATURE_ALLOCATOR_ADJACENCY_MIN_PARTY_SIZE=99: expected an integer 1–20",
    ),
    (
        "FEATURE_SELECTOR_LOOKAHEAD_PENALTY_WEIGHT",
        "0",
        "invalid setting FEATURE_SELECTOR_LOOKAHEAD_PENALTY_WEIGHT=0: expected an integer 1–100000",
    ),
    (
        "FEATURE_SELECTOR_SCARCITY_WEIGHT",
        "1000.5",
        "invalid setting FEATURE_SELECTOR_SCARCITY_WEIGHT=1000.5: expected a number 0–1000",
    ),
    ("CAPACITY_PORT", "abc", "invalid setting CAPACITY_PORT=abc: expected an integer 1–65535"),
    (
        "CAPACITY_ASSIGN_RUN_DEADLINE_S",
        "0",
        "invalid setting CAPACITY_ASSIGN_RUN_DEADLINE_S=0: expected a number 1–300",
    ),
    (
        "CAPACITY_ASSIGN_RUN_DEADLINE_S",
        "soon",
        "invalid setting CAPACITY_ASSIGN_RUN_DEADLINE_S=soon: expected a number 1–300",
    ),
    (
        "CAPACITY_LOG_LEVEL",
        "loud",
        "invalid setting CAPACITY_LOG_LEVEL=loud: expected one of debug, info, warning, error",
    ),
    # the URL is not echoed: it may carry a password
    ("DATABASE_URL", "mysql://app:s3cret@db/app", "invalid setting DATABASE_URL: expected a postgresql:// URL"),
]


@pytest.mark.parametrize(("name", "value", "line"), INVALID, ids=[f"{n}={v}" for n, v, _ in INVALID])
def test_invalid_setting_refuses_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str, line: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value) == line
    # the CLI prints exactly that line and exits 2 before doing anything
    assert cli.main(["doctor"]) == cli.EXIT_CONFIG
    assert capsys.readouterr().err == line + "\n"


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPACITY_LOG_LEVEL", "WARNING")
    assert load_settings().log_level == "warning"


def test_serve_with_an_invalid_flag_exits_without_a_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEATURE_", "CAPACITY_"))}
    env.update(FEATURE_ALLOCATOR_K_MAX="99", DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 78  # EX_CONFIG
    assert done.stderr == "invalid setting FEATURE_ALLOCATOR_K_MAX=99: expected an integer 1–5\n"
    assert "Traceback" not in done.stdout


def test_an_empty_flag_is_unset_but_an_empty_database_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    flags = [
        (field, info.validation_alias.choices[0])  # type: ignore[union-attr]
        for field, info in Settings.model_fields.items()
        if "FEATURE_" in str(info.validation_alias)
    ]
    assert len(flags) == 17
    for _field, name in flags:
        monkeypatch.setenv(name, "")
    assert load_settings().allocator_config() == AllocatorConfig()
    # an empty URL must not quietly mean "start an embedded database"
    monkeypatch.setenv("DATABASE_URL", "")
    with pytest.raises(SettingsError, match="^invalid setting DATABASE_URL: expected a postgresql:// URL$"):
        load_settings()
