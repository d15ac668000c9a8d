"""Static checks of the docker-compose stack: no Docker engine needed.

What these prove is listed in doc/docker.md; what they cannot prove (images pull,
containers start) is listed there too.

compose-spec.json is the Compose Specification's JSON schema, vendored because tests must
not use the network: `schemas/compose.schema.json` from the npm package dclint 3.1.0
(https://github.com/zavoloklom/docker-compose-linter, MIT), itself an unmodified download
of `schema/compose-spec.json` from https://github.com/compose-spec/compose-spec
(Apache-2.0). To update: `npm pack dclint@<version>`, copy that file, update SCHEMA_SHA256.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import boto3
import click
import jsonschema
import pytest
import yaml
from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES
from botocore.credentials import EnvProvider
from dotenv import dotenv_values
from sqlalchemy.engine import make_url

from data_platform.settings import ZONES, Settings

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_TEMPLATE = REPO / ".env.template"
SCHEMA = HERE / "compose-spec.json"
SCHEMA_SHA256 = "46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496"
DOCKERFILES = (REPO / "docker" / "Dockerfile.main", REPO / "docker" / "Dockerfile.glue__local")
GLUESPARKSUBMIT = REPO / "docker" / "gluesparksubmit"
CREATE_BUCKETS = REPO / "docker" / "create-buckets.sh"

# The containers that run data_platform code: all they are given must be read by it.
APP_SERVICES = ("main__local", "glue__local", "consume__local", "web__local")
# Those doc/docker.md runs commands in (web__local is a server it opens).
README_SERVICES = ("main__local", "glue__local", "consume__local")
# Where compose mounts the repository; gluesparksubmit puts it on PYTHONPATH.
REPO_MOUNT = "/data_platform"


# --- helpers -------------------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


def _variables(text: str) -> list[tuple[str, str | None]]:
    """(name, operator) of every ${...} or $NAME in a compose string."""
    found = []
    for match in _VARIABLE.finditer(text):
        if match["named"]:
            found.append((match["named"], None))
        elif match["braced"] is not None:
            braced = _BRACED.fullmatch(match["braced"])
            assert braced, f"unsupported interpolation ${{{match['braced']}}}"
            found.append((braced["name"], braced["op"]))
    return found


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution (${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e},
    ${VAR:+r}, ${VAR+r}, $VAR, $$) applied to every string value of a loaded file."""
    if isinstance(value, dict):
        return {key: _interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.fullmatch(match["braced"])
        assert braced, f"unsupported interpolation ${{{match['braced']}}}"
        name, op, arg = braced["name"], braced["op"], braced["arg"]
        current = env.get(name)
        unset_or_empty = not current if op and op.startswith(":") else current is None
        if op in (":-", "-"):
            return arg if unset_or_empty else current
        if op in (":?", "?"):
            if unset_or_empty:
                raise LookupError(f"{name} is required: {arg}")
            return current
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return current or ""

    return _VARIABLE.sub(substitute, value)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str, bool]]:
    """(source in the repository, target in the container, read-only) of bind mounts."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        if source.startswith((".", "/")):
            mounts.append(((REPO / source).resolve(), target, "ro" in mode))
    return mounts


def _host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository file a container path comes from, or None if not from a mount."""
    for source, target, _ in _bind_mounts(service):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target) :].lstrip("/")
    return None


def _app_variable_names() -> set[str]:
    """Every environment variable the settings module or boto3 reads."""
    prefix = Settings.model_config.get("env_prefix") or ""
    names = {f"{prefix}{field}".upper() for field in Settings.model_fields}
    names |= {EnvProvider.ACCESS_KEY, EnvProvider.SECRET_KEY, *EnvProvider.TOKENS}
    for _config_name, env_names, *_ in BOTOCORE_DEFAUT_SESSION_VARIABLES.values():
        if isinstance(env_names, str):
            names.add(env_names)
        elif env_names:
            names.update(env_names)
    return names


def _dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def _copy_sources(arguments: str) -> tuple[list[str], str]:
    tokens = [token for token in shlex.split(arguments) if not token.startswith("--")]
    return tokens[:-1], tokens[-1]


def _requirements() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _requirement_name(line: str) -> str:
    return re.split(r"[\[=<>~!; ]", line, maxsplit=1)[0]


def _dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore matching: * and ? stay within one path segment, ** spans
    any number; a pattern that matches a directory excludes everything in it."""
    out, i = "", 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "(?:/.*)?")


def _dockerignored(path: str) -> bool:
    ignored = False
    for pattern in _dockerignore_patterns():
        negated = pattern.startswith("!")
        if _pattern_regex(pattern.lstrip("!")).fullmatch(path):
            ignored = not negated
    return ignored


def _readme_commands() -> list[list[str]]:
    """The shell commands of doc/docker.md (once the README's Docker section), split as the
    shell would."""
    text = (REPO / "doc" / "docker.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert blocks, "doc/docker.md has no ```sh block"
    commands = []
    for line in "".join(blocks).replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        if tokens:
            commands.append(tokens)
    return commands


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def template_env() -> dict[str, str]:
    """The variables a user gets with `cp .env.template .env`."""
    return {key: value or "" for key, value in dotenv_values(ENV_TEMPLATE).items()}


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any], template_env: dict[str, str]) -> dict[str, Any]:
    """The compose file as docker-compose sees it after `cp .env.template .env`."""
    return _interpolate(raw_compose, template_env)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def readme_runs() -> list[tuple[str, str, list[str]]]:
    """(service, program, arguments) of doc/docker.md's `docker-compose run --rm` lines."""
    runs = []
    for command in _readme_commands():
        if command[:3] == ["docker-compose", "run", "--rm"]:
            service, program, *args = command[3:]
            runs.append((service, program, args))
    return runs


# --- the compose file is valid -------------------------------------------------------------


def test_vendored_schema_is_the_recorded_upstream_copy() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


@pytest.mark.parametrize("stage", ["as written", "after interpolation"])
def test_compose_file_validates_against_the_compose_spec(
    stage: str, raw_compose: dict[str, Any], compose: dict[str, Any]
) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    document = raw_compose if stage == "as written" else compose
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]
    assert errors == []


def test_the_schema_rejects_an_invalid_service(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    broken = json.loads(json.dumps(compose))
    # A misspelt key and an unknown dependency condition: both are rejected.
    broken["services"]["db__local"]["healthcheck"]["retires"] = 30
    broken["services"]["main__local"]["depends_on"]["db__local"]["condition"] = "started_maybe"
    assert len(list(validator.iter_errors(broken))) == 2


def test_every_interpolated_variable_is_in_env_template(
    raw_compose: dict[str, Any], template_env: dict[str, str]
) -> None:
    template_text = ENV_TEMPLATE.read_text()
    variables = _variables(COMPOSE_FILE.read_text())
    assert variables, "expected the compose file to take its secrets from .env"
    for name, op in variables:
        if op in (":-", "-"):
            # Optional: documented (commented out is fine) so users can find it.
            assert re.search(rf"^#? ?{name}=", template_text, re.M), f"{name} not documented"
        else:
            assert template_env.get(name), f"{name} must be set in .env.template"


def test_the_docker_block_of_env_template_is_ignored_by_the_settings_module() -> None:
    text = ENV_TEMPLATE.read_text()
    block = text[
        text.index("# --- docker-compose only") : text.index("# --- end of docker-compose")
    ]
    names = {line.split("=", 1)[0].lstrip("# ") for line in block.splitlines() if "=" in line}
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"} <= names
    assert not names & _app_variable_names()


def test_env_template_as_dot_env_keeps_embedded_postgres_and_local_store() -> None:
    settings = Settings(_env_file=ENV_TEMPLATE)
    assert settings.database_url is None
    assert not settings.uses_s3


# --- what the app containers are given -----------------------------------------------------


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_containers_get_only_variables_the_app_reads(
    service: str, services: dict[str, dict[str, Any]]
) -> None:
    unknown = set(_environment(services[service])) - _app_variable_names()
    assert unknown == set()


@pytest.mark.parametrize("service", [*APP_SERVICES, "s3__local_init"])
def test_every_zone_has_its_bucket(service: str, services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services[service])
    buckets = {zone: env.get(f"S3_BUCKET_{zone.upper()}") for zone in ZONES}
    assert all(buckets.values()), buckets
    assert len(set(buckets.values())) == len(ZONES), "zones must not share a bucket"


def test_main_local_settings_resolve_to_db_local_and_minio(
    monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]]
) -> None:
    from data_platform.db.engine import database_url
    from data_platform.storage.zones import get_zone

    for name, value in _environment(services["main__local"]).items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    url = make_url(database_url(settings))
    db = services["db__local"]["environment"]
    assert (url.host, url.port, url.database) == ("db__local", 5432, db["POSTGRES_DB"])
    assert (url.username, url.password) == ("postgres", db["POSTGRES_PASSWORD"])
    assert "sslmode" not in url.query
    zones = [get_zone(zone, settings) for zone in ZONES]
    assert [zone.bucket for zone in zones] == [settings.bucket(zone) for zone in ZONES]


@pytest.mark.parametrize("service", [*APP_SERVICES, "s3__local_init"])
def test_s3_endpoint_is_minio_under_a_name_boto3_accepts(
    service: str, services: dict[str, dict[str, Any]]
) -> None:
    env = _environment(services[service])
    endpoint = env["S3_ENDPOINT_URL"]
    minio = services["s3__local"]
    names = {"s3__local", *minio.get("networks", {}).get("default", {}).get("aliases", [])}
    host, _, port = endpoint.split("://", 1)[1].partition(":")
    assert host in names
    assert port == "9000"
    # botocore raises ValueError("Invalid endpoint") for names it does not accept.
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        minio["environment"]["MINIO_ROOT_USER"],
        minio["environment"]["MINIO_ROOT_PASSWORD"],
    )


def test_the_service_name_itself_would_be_refused_by_boto3() -> None:
    """Why the compose file needs the s3-local alias."""
    with pytest.raises(ValueError, match="Invalid endpoint"):
        boto3.client("s3", endpoint_url="http://s3__local:9000", region_name="us-east-1")


def test_minio_accepts_the_template_credentials(services: dict[str, dict[str, Any]]) -> None:
    env = services["s3__local"]["environment"]
    # MinIO refuses to start with a shorter user or password.
    assert len(env["MINIO_ROOT_USER"]) >= 3
    assert len(env["MINIO_ROOT_PASSWORD"]) >= 8


# --- services, dependencies, mounts --------------------------------------------------------


def test_postgres_service(services: dict[str, dict[str, Any]]) -> None:
    db = services["db__local"]
    image, _, tag = db["image"].partition(":")
    assert image == "postgres"
    assert tag.split(".")[0].split("-")[0] == "16"
    assert db["container_name"] == "db__local"
    assert db["environment"]["POSTGRES_DB"] == "data_platform"
    assert db["environment"]["POSTGRES_PASSWORD"]
    assert any(port.endswith(":5432") for port in db["ports"])
    # pg_isready over TCP, as the app connects (see the comment in docker-compose.yml).
    check = " ".join(db["healthcheck"]["test"])
    assert "pg_isready" in check
    assert "-h 127.0.0.1" in check or "-h localhost" in check


def test_volumes_are_named_and_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    data_dirs = {"db__local": "/var/lib/postgresql/data", "s3__local": "/data"}
    for service, data_dir in data_dirs.items():
        (volume,) = [v for v in services[service]["volumes"] if v.endswith(f":{data_dir}")]
        assert volume.split(":")[0] in compose["volumes"]


def test_minio_console_is_published(services: dict[str, dict[str, Any]]) -> None:
    minio = services["s3__local"]
    console = minio["command"][minio["command"].index("--console-address") + 1]
    assert any(port.endswith(f":{console.lstrip(':')}") for port in minio["ports"])


def test_dependencies_wait_for_health_and_buckets(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "s3__local_init": {"s3__local": "service_healthy"},
        "main__local": {
            "db__local": "service_healthy",
            "s3__local_init": "service_completed_successfully",
        },
        "glue__local": {"s3__local_init": "service_completed_successfully"},
        "web__local": {
            "db__local": "service_healthy",
            "s3__local_init": "service_completed_successfully",
        },
    }
    for service, needs in expected.items():
        depends = services[service]["depends_on"]
        assert {name: dep["condition"] for name, dep in depends.items()} == needs
    for service in services.values():
        for name, dep in (service.get("depends_on") or {}).items():
            if dep["condition"] == "service_healthy":
                assert "healthcheck" in services[name], f"{name} needs a healthcheck"


def test_repository_mounts(services: dict[str, dict[str, Any]]) -> None:
    main = services["main__local"]
    assert _bind_mounts(main) == [(REPO, REPO_MOUNT, False)]
    assert main["working_dir"] == REPO_MOUNT
    assert _bind_mounts(services["glue__local"]) == [(REPO, REPO_MOUNT, True)]
    assert _bind_mounts(services["web__local"]) == [(REPO, REPO_MOUNT, True)]
    assert services["web__local"]["working_dir"] == REPO_MOUNT


# --- named paths and commands exist --------------------------------------------------------


def test_build_contexts_dockerfiles_and_copied_files_exist(
    services: dict[str, dict[str, Any]],
) -> None:
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(built) == set(APP_SERVICES)
    assert {REPO / b["context"] / b["dockerfile"] for b in built.values()} == set(DOCKERFILES)
    for build in built.values():
        context = (REPO / build["context"]).resolve()
        for keyword, arguments in _dockerfile(context / build["dockerfile"]):
            if keyword in ("COPY", "ADD"):
                sources, _ = _copy_sources(arguments)
                for source in sources:
                    assert (context / source).exists(), f"{source} (in {build['dockerfile']})"
                    assert not _dockerignored(source), f"{source} is in .dockerignore"


def test_mounted_files_and_the_scripts_run_from_them_exist(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for source, _, _ in _bind_mounts(service):
            assert source.exists(), f"{name} mounts missing {source}"
        words = [*(service.get("entrypoint") or []), *(service.get("command") or [])]
        for word in words:
            host = _host_path(service, word) if word.startswith("/") else None
            if host is not None:
                assert host.is_file(), f"{name} runs {word}, missing as {host}"
    init = services["s3__local_init"]
    assert _host_path(init, init["entrypoint"][-1]) == CREATE_BUCKETS


def test_dockerignore_keeps_large_private_and_cache_files_out() -> None:
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        ".data/postgres/PG_VERSION",
        ".env",
        "data_platform/__pycache__/settings.cpython-311.pyc",
        ".pytest_cache/README.md",
        ".ruff_cache/CACHEDIR.TAG",
        ".mypy_cache/CACHEDIR.TAG",
    ):
        assert _dockerignored(path), path
    assert not _dockerignored(".env.template")


# --- doc/docker.md's commands -------------------------------------------------------------


def test_readme_workflow_starts_from_the_template_and_up() -> None:
    commands = _readme_commands()
    assert commands[:2] == [["cp", ".env.template", ".env"], ["docker-compose", "up", "-d"]]


def test_readme_runs_programs_installed_in_their_service(
    readme_runs: list[tuple[str, str, list[str]]],
) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pinned = [_requirement_name(line) for line in _requirements()]
    glue_copies = [_copy_sources(a)[1] for kw, a in _dockerfile(DOCKERFILES[1]) if kw == "COPY"]
    installed = {
        # The base image's python, and the console scripts of this package and of
        # requirements.txt (read from this virtualenv, which installs the same pins).
        "main__local": {"python", *pyproject["project"]["scripts"]}
        | {
            entry_point.name
            for name in pinned
            for entry_point in importlib.metadata.distribution(name).entry_points
            if entry_point.group == "console_scripts"
        },
        "glue__local": {Path(dest).name for dest in glue_copies if "/bin/" in dest},
    }
    installed["consume__local"] = installed["main__local"]  # the same image
    installed["web__local"] = installed["main__local"]
    assert {service for service, _, _ in readme_runs} == set(README_SERVICES)
    for service, program, _ in readme_runs:
        assert program in installed[service], f"{program} is not installed in {service}"


def test_readme_paths_exist(
    readme_runs: list[tuple[str, str, list[str]]], services: dict[str, dict[str, Any]]
) -> None:
    named = [(s, word) for s, _, args in readme_runs for word in args if word.startswith("/")]
    assert named
    for service, word in named:
        host = _host_path(services[service], word)
        assert host is not None, f"{word} is not under a mount of {service}"
        assert host.exists(), f"{word} ({service}) does not exist in the repository"
    for service, program, _ in readme_runs:
        if program == "alembic":
            working_dir = services[service]["working_dir"]
            assert (_host_path(services[service], working_dir) / "alembic.ini").is_file()


def test_readme_cli_commands_parse(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    readme_runs: list[tuple[str, str, list[str]]],
    services: dict[str, dict[str, Any]],
) -> None:
    from data_platform.cli.main import CONTEXT_SETTINGS, cli

    # The container's working directory is the repository: relative paths resolve there.
    monkeypatch.chdir(REPO)
    checked = 0
    for service, program, args in readme_runs:
        if program == "data-platform":
            # Unknown commands or options, bad choices and missing paths raise here.
            command: click.Command = cli
            while isinstance(command, click.Group):
                name, *args = args
                sub = command.get_command(click.Context(command), name)
                assert sub is not None, f"data-platform has no command {name!r}"
                command = sub
            # With the root's context settings: click caches a command's help option on
            # first use, and one made without `-h` would break later `-h` tests.
            parent = click.Context(cli, **CONTEXT_SETTINGS)
            params = command.make_context(command.name, list(args), parent=parent).params
            # --zone is free text in the CLI (checked only when used): check it here.
            assert params.get("zone", ZONES[0]) in ZONES, params["zone"]
            checked += 1
        elif program == "python":
            assert args[0] == "-m"
            module, options = args[1], [word for word in args[2:] if word.startswith("--")]
            # A module's commands (`python -m harness kafka produce-sample ...`): their help.
            commands = list(itertools.takewhile(lambda word: not word.startswith("-"), args[2:]))
            # The harness is not installed: it runs from the working directory, which
            # must be the repository (mounted), as on the host.
            working_dir = services[service]["working_dir"]
            assert _host_path(services[service], working_dir) == REPO, service
            result = subprocess.run(
                [sys.executable, "-m", module, *commands, "--help"],
                cwd=tmp_path,  # away from a developer's .env
                env={**os.environ, "PYTHONPATH": str(REPO)},  # the container's working dir
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            assert [o for o in options if o not in result.stdout] == [], module
            checked += 1
    assert checked >= 3


def test_readme_glue_job_arguments_are_what_the_job_accepts(
    readme_runs: list[tuple[str, str, list[str]]], services: dict[str, dict[str, Any]]
) -> None:
    from data_platform.jobs.job_input import JobEnv, JobInput

    ((_, args),) = [(p, a) for s, p, a in readme_runs if p == "gluesparksubmit"]
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert options["--JOB_NAME"] == Path(args[0]).stem
    env = _environment(services["glue__local"])
    job_env = JobEnv.from_json(options["--ENV"])
    assert job_env.s3_endpoint_url == env["S3_ENDPOINT_URL"]
    for zone, location in job_env.zones.items():
        assert location.bucket == env[f"S3_BUCKET_{zone.upper()}"]
    # The keys are those doc/docker.md's `storage upload sample_data/cubic/ods_qlik --zone
    # incoming --prefix cubic/ods_qlik` puts in the zone.
    for load in JobInput.from_json(options["--INPUT"]).loads:
        assert (REPO / "sample_data" / load.source_key).is_file(), load.source_key


def test_readme_psql_opens_the_compose_database(services: dict[str, dict[str, Any]]) -> None:
    ((container, *args),) = [
        [word for word in command[2:] if word != "-it"]
        for command in _readme_commands()
        if command[:2] == ["docker", "exec"]
    ]
    (db,) = [s for s in services.values() if s.get("container_name") == container]
    assert args[0] == "psql"
    assert args[args.index("-d") + 1] == db["environment"]["POSTGRES_DB"]


# --- Dockerfiles ---------------------------------------------------------------------------


def test_dockerfiles_pass_hadolint(tmp_path: Path) -> None:
    # An explicit empty config, so no user or global hadolint config can hide a finding.
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [hadolint, "-c", config, "--no-color", "-f", "json", *DOCKERFILES],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(result.stdout) == [], result.stdout
    assert result.returncode == 0


def test_hadolint_ignores_carry_a_reason() -> None:
    for dockerfile in DOCKERFILES:
        for line in dockerfile.read_text().splitlines():
            pragma = re.search(r"hadolint ignore=\S+(.*)", line)
            if pragma:
                assert pragma.group(1).strip(" -#"), f"{dockerfile.name}: {line} needs a reason"


_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!_-]+$")
# pip options that cannot bring in anything unpinned.
_SAFE_PIP_FLAGS = {"--no-cache-dir", "--no-deps", "--no-build-isolation"}


def _pip_installs(run: str) -> list[list[str]]:
    installs = []
    for part in re.split(r"&&|\|\||;|\|", run):
        words = shlex.split(part)
        for i, word in enumerate(words):
            is_pip = re.fullmatch(r"pip[0-9.]*", Path(word).name) or (
                word == "-m" and i + 1 < len(words) and words[i + 1] == "pip"
            )
            if is_pip:
                rest = words[i + 1 :] if word != "-m" else words[i + 2 :]
                if rest[:1] == ["install"]:
                    installs.append(rest[1:])
                break
    return installs


def test_requirements_txt_is_fully_pinned() -> None:
    requirements = _requirements()
    assert requirements
    assert [line for line in requirements if not _PINNED.match(line)] == []


def test_dockerfile_main_installs_requirements_txt_and_nothing_unpinned() -> None:
    instructions = _dockerfile(DOCKERFILES[0])
    assert instructions[0] == ("FROM", "python:3.11-slim")
    installs = [args for kw, run in instructions if kw == "RUN" for args in _pip_installs(run)]
    requirement_files = []
    for args in installs:
        words = iter(args)
        for word in words:
            if word in ("-r", "--requirement"):
                requirement_files.append(next(words))
                # Sources (pyspark) build without fetching an unpinned setuptools.
                assert "--no-build-isolation" in args
            elif word in ("-e", "--editable"):
                assert next(words) == "."
                assert "--no-deps" in args, "the package's own dependencies are unpinned"
                assert "--no-build-isolation" in args
            elif word.startswith("-"):
                assert word in _SAFE_PIP_FLAGS, f"pip option {word} is not known to be safe"
            else:
                assert _PINNED.match(word), f"pip installs {word!r} without an exact pin"
    assert requirement_files == ["requirements.txt"]
    copied = [_copy_sources(args)[0] for kw, args in instructions if kw == "COPY"]
    assert ["requirements.txt"] in copied


def test_dockerfile_main_runs_as_non_root(services: dict[str, dict[str, Any]]) -> None:
    instructions = _dockerfile(DOCKERFILES[0])
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    # USER may name build arguments: resolve them as a build by compose would.
    build_args = dict(
        args.split("=", 1) for keyword, args in instructions if keyword == "ARG" and "=" in args
    )
    build_args |= services["main__local"]["build"].get("args", {})
    user = re.sub(r"\$\{?(\w+)\}?", lambda m: str(build_args[m.group(1)]), users[-1])
    assert user.split(":")[0] not in ("", "root", "0")


def test_dockerfile_glue_installs_gluesparksubmit_on_the_path() -> None:
    instructions = _dockerfile(DOCKERFILES[1])
    assert instructions[0] == ("FROM", "public.ecr.aws/glue/aws-glue-libs:5")
    copies = [args for keyword, args in instructions if keyword == "COPY"]
    assert any(
        _copy_sources(args) == (["docker/gluesparksubmit"], "/usr/local/bin/gluesparksubmit")
        and "--chmod=755" in args
        for args in copies
    )


# --- the scripts, run with stand-ins for spark-submit and mc -------------------------------


def _stub(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _run(command: list[str], env: dict[str, str], bin_dir: Path) -> subprocess.CompletedProcess:
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        command, env={**env, "PATH": path}, capture_output=True, text=True, check=False
    )


@pytest.fixture
def spark_submit(tmp_path: Path) -> tuple[Path, Path]:
    """A spark-submit that records its arguments (NUL-separated) and PYTHONPATH."""
    bin_dir, record = tmp_path / "bin", tmp_path / "spark-submit.args"
    _stub(
        bin_dir,
        "spark-submit",
        f"printf '%s\\0' \"$PYTHONPATH\" \"$@\" > '{record}'",
    )
    return bin_dir, record


def test_gluesparksubmit_passes_the_job_arguments_through_with_s3a_on_minio(
    spark_submit: tuple[Path, Path], services: dict[str, dict[str, Any]]
) -> None:
    bin_dir, record = spark_submit
    env = _environment(services["glue__local"])
    job = [
        f"{REPO_MOUNT}/aws/s3/glue_jobs/cubic_ingestion/ingest_incoming.py",
        "--JOB_NAME",
        "ingest_incoming",
        "--ENV",
        json.dumps({"bucket": "springboard", "note": "spaces, 'quotes' and $dollars"}),
        "--INPUT",
        json.dumps([{"s3_key": "cubic/ods_qlik/EDW.SAMPLE/LOAD00000001.csv.gz"}]),
    ]
    result = _run([str(GLUESPARKSUBMIT), *job], env, bin_dir)
    assert result.returncode == 0, result.stderr
    pythonpath, *argv = record.read_text().split("\0")[:-1]
    assert pythonpath.split(os.pathsep)[0] == REPO_MOUNT
    split = argv.index(job[0])
    assert argv[split:] == job
    options = argv[:split]
    assert options[0::2] == ["--conf"] * (len(options) // 2)
    conf = dict(item.split("=", 1) for item in options[1::2])
    assert conf["spark.hadoop.fs.s3a.endpoint"] == env["S3_ENDPOINT_URL"]
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.access.key"] == env["AWS_ACCESS_KEY_ID"]
    assert conf["spark.hadoop.fs.s3a.secret.key"] == env["AWS_SECRET_ACCESS_KEY"]
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == env["AWS_DEFAULT_REGION"]
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"


def test_gluesparksubmit_refuses_to_run_without_minio_settings(
    spark_submit: tuple[Path, Path], services: dict[str, dict[str, Any]]
) -> None:
    bin_dir, record = spark_submit
    env = _environment(services["glue__local"])
    del env["S3_ENDPOINT_URL"]
    result = _run([str(GLUESPARKSUBMIT), "job.py"], env, bin_dir)
    assert result.returncode != 0
    assert "S3_ENDPOINT_URL" in result.stderr
    assert not record.exists()


def test_gluesparksubmit_without_a_script_prints_usage(spark_submit: tuple[Path, Path]) -> None:
    bin_dir, record = spark_submit
    result = _run([str(GLUESPARKSUBMIT)], {}, bin_dir)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: gluesparksubmit SCRIPT.py")
    assert not record.exists()


@pytest.fixture
def mc(tmp_path: Path) -> tuple[Path, Path]:
    """An mc that appends each call's arguments (tab-separated) as one line."""
    bin_dir, record = tmp_path / "bin", tmp_path / "mc.calls"
    _stub(bin_dir, "mc", f"printf '%s\\t' \"$@\" >> '{record}'; echo >> '{record}'")
    return bin_dir, record


def _calls(record: Path) -> list[list[str]]:
    if not record.exists():
        return []
    return [line.rstrip("\t").split("\t") for line in record.read_text().splitlines()]


def test_create_buckets_makes_one_bucket_per_zone(
    mc: tuple[Path, Path], services: dict[str, dict[str, Any]]
) -> None:
    bin_dir, record = mc
    init = services["s3__local_init"]
    env = _environment(init)
    shell, script = init["entrypoint"]
    result = _run([Path(shell).name, str(_host_path(init, script))], env, bin_dir)
    assert result.returncode == 0, result.stderr
    alias, *makes = _calls(record)
    assert alias == [
        "alias",
        "set",
        "s3local",
        env["S3_ENDPOINT_URL"],
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
    ]
    expected = [f"s3local/{env[f'S3_BUCKET_{zone.upper()}']}" for zone in ZONES]
    assert makes == [["mb", "--ignore-existing", bucket] for bucket in expected]


def test_create_buckets_fails_when_a_zone_has_no_bucket(
    mc: tuple[Path, Path], services: dict[str, dict[str, Any]]
) -> None:
    bin_dir, record = mc
    env = _environment(services["s3__local_init"])
    del env["S3_BUCKET_ERROR"]
    result = _run(["sh", str(CREATE_BUCKETS)], env, bin_dir)
    assert result.returncode != 0
    assert "S3_BUCKET_ERROR" in result.stderr
    assert [call for call in _calls(record) if call[0] == "mb"] == []


def test_web_service_is_the_main_image_serving_the_page_on_its_published_port(
    raw_compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    from data_platform.cli.main import CONTEXT_SETTINGS, cli

    web, main = services["web__local"], services["main__local"]
    assert web["build"] == main["build"]
    # The same settings as the app: the same anchor, not a copy that could drift.
    assert (
        raw_compose["services"]["web__local"]["environment"]
        is (raw_compose["services"]["main__local"]["environment"])
    )
    assert web["environment"] == main["environment"]
    program, *args = web["command"]
    assert program == "data-platform" and args[0] == "web"
    parent = click.Context(cli, **CONTEXT_SETTINGS)
    command = cli.get_command(parent, "web")
    assert command is not None
    params = command.make_context("web", list(args[1:]), parent=parent).params
    # Reachable from the host through the container's port, loopback only.
    assert params["host"] == "0.0.0.0"
    assert params["allow_actions"] is False  # read-only unless an operator opts in
    assert web["ports"] == [f"127.0.0.1:{params['port']}:{params['port']}"]
    check = " ".join(web["healthcheck"]["test"])
    assert f"http://127.0.0.1:{params['port']}/healthz" in check
    # The page refuses a Host it is not told of: its health check's and a scraper's are.
    allowed = web["environment"]["WEB_ALLOWED_HOSTS"].split(",")
    assert {"127.0.0.1", "localhost", "web__local"} <= set(allowed)
    assert web["healthcheck"]["test"][:2] == ["CMD", "python"]


def test_kafka_broker_is_kraft_and_the_consumer_waits_for_it(
    services: dict[str, dict[str, Any]],
) -> None:
    broker = services["kafka__local"]
    image, _, tag = broker["image"].partition(":")
    assert image == "apache/kafka" and tag and tag != "latest"
    env = broker["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper
    assert not any("ZOOKEEPER" in name for name in env)
    assert "kafka-local" in broker["networks"]["default"]["aliases"]
    consumer = services["consume__local"]
    assert consumer["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-local:9092"
    assert consumer["depends_on"]["kafka__local"]["condition"] == "service_healthy"
    assert consumer["command"][:3] == ["data-platform", "kafka", "consume"]
