"""The command line as a user meets it: --version, help for everything, one-line settings errors, token
roles, operator commands on the embedded database, one serve per data directory."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import httpx
import pytest

from service import cli
from tests.support.live import REPO, embedded_data_dir, live_server


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**base, **(env or {})})


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version():
    done = _cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == "capacity-service 0.1.0"


def test_every_command_and_option_has_help_and_no_rst_markup():
    parser = cli.build_parser()
    texts = [parser.format_help()]
    for name, sub in _subparsers(parser).items():
        texts.append(sub.format_help())
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    for text in texts:
        assert "``" not in text and "`" not in text


def test_settings_errors_are_one_line_naming_the_variable():
    done = _cli("doctor", env={"CAPACITY_PORT": "70000", "FEATURE_SELECTOR_SCARCITY_WEIGHT": "5000",
                               "CAPACITY_JWT_SECRET": "x" * 40, "CAPACITY_JWT_LEEWAY_S": "-1"})
    assert done.returncode == cli.EXIT_CONFIG
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert len(lines) == 3
    assert lines[0] == "invalid setting CAPACITY_PORT=70000: expected an integer 1–65535"
    assert "invalid setting FEATURE_SELECTOR_SCARCITY_WEIGHT=5000: expected a number 0–1000" in lines
    assert "invalid setting CAPACITY_JWT_LEEWAY_S=-1: expected an integer 0–300" in lines


def test_a_secret_setting_error_does_not_echo_the_value():
    done = _cli("doctor", env={"CAPACITY_DB_BEHIND_POOLER": "true", "DATABASE_URL": "postgresql://u:topsecret@h/d"})
    assert done.returncode == cli.EXIT_CONFIG
    assert "CAPACITY_STRATEGIC_CONFIG_LISTEN_URL" in done.stderr and "topsecret" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_mint_token_refuses_an_unknown_role_and_lists_the_valid_ones(tmp_path):
    done = _cli("mint-token", "--role", "servce_role", env={"CAPACITY_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2 and done.stdout == ""
    assert "invalid choice: 'servce_role' (choose from 'authenticated', 'service_role')" in done.stderr
    user = _cli("mint-token", env={"CAPACITY_DATA_DIR": str(tmp_path)})
    assert user.returncode == 1 and "--sub" in user.stderr
    service = _cli("mint-token", "--role", "service_role", env={"CAPACITY_DATA_DIR": str(tmp_path)})
    assert service.returncode == 0 and service.stdout.count(".") == 2


def test_operator_commands_without_a_database_url_say_how_to_get_one(tmp_path):
    done = _cli("doctor", env={"CAPACITY_DATA_DIR": str(tmp_path / "fresh")})
    assert done.returncode == cli.EXIT_UNREACHABLE
    assert "capacity-service serve" in done.stderr and "DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_one_serve_per_data_directory_and_operator_commands_reach_its_database(tmp_path):
    with embedded_data_dir() as data:
        _one_serve_per_data_directory(tmp_path, data)


def _one_serve_per_data_directory(tmp_path, data):
    env = {"CAPACITY_DATA_DIR": str(data)}
    with live_server(env, tmp_path, name="first") as first:
        assert httpx.get(first.url + "/readyz", timeout=10).status_code == 200
        second = _cli("serve", "--port", "1", env=env)  # refused before it binds anything
        assert second.returncode == 1
        assert f"data directory {data} is in use by another capacity-service process" in second.stderr
        assert f"pid {first.process.pid}" in second.stderr
        # the first server is untouched: its database still answers
        assert httpx.get(first.url + "/readyz", timeout=10).status_code == 200
        # operator commands attach to the running server's embedded database, and leave it running
        doctor = _cli("doctor", "--format", "json", env=env)
        assert doctor.returncode == 0, doctor.stderr
        assert isinstance(json.loads(doctor.stdout), (list, dict))
        migrate = _cli("migrate", env=env)
        assert migrate.returncode == 0 and "database is at head" in migrate.stdout
        assert httpx.get(first.url + "/readyz", timeout=10).status_code == 200
    # with no serve running, the command starts the embedded server for itself and stops it again
    doctor = _cli("doctor", env=env)
    assert doctor.returncode == 0, doctor.stderr
    assert not (data / "pgdata" / "postmaster.pid").exists()
