"""docker-compose.yml cannot run here (no Docker engine): check it statically.

The Compose specification's JSON schema is vendored in tests/schemas/compose-spec.json,
from github.com/compose-spec/compose-spec, file schema/compose-spec.json at commit
170098ba07d9f53c383a41bfd4c5166b0a4529a6 (2026-06-23; Apache-2.0). Replace it from a newer
commit (and update this line) when compose files use newer keys.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_SCHEMA = REPO_ROOT / "tests" / "schemas" / "compose-spec.json"
# Services that run once and exit; every other one runs for good.
ONE_SHOT_SERVICES = {"airflow-init", "lake-catalog-init"}
SECRETS = ("POSTGRES_PASSWORD", "DUCKLAKE_DB_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY")
RUNTIME_REQUIREMENTS = REPO_ROOT / "include" / "social_leadership" / "runtime_requirements.py"


def _compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def _airflow_services(compose: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose["services"].items()
        if "AIRFLOW__CORE__EXECUTOR" in (service.get("environment") or {})
    }


def _command(service: dict) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def _mounts(service: dict) -> dict[str, str]:
    """Each mount's target folder and its source (``source:target[:mode]``)."""
    return {volume.split(":")[1]: volume.split(":")[0] for volume in service.get("volumes", [])}


def _env_example() -> dict[str, str]:
    """The assignments .env.example makes (commented-out ones left out)."""
    assignments = {}
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            assignments[match.group(1)] = match.group(2).strip().strip("'")
    return assignments


def test_compose_has_the_production_services():
    services = _compose()["services"]
    assert {
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        # Runs the deadline alerts' callbacks.
        "airflow-triggerer",
    } <= set(services)
    for name in (
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    ):
        assert services[name]["depends_on"]["airflow-init"] == {
            "condition": "service_completed_successfully"
        }


def test_compose_metadata_db_is_postgres_and_pool_is_created():
    services = _compose()["services"]
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "pools set duckdb_warehouse 1" in _command(services["airflow-init"])


def test_compose_has_no_literal_secrets_and_no_telemetry():
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    env = _compose()["services"]["airflow-scheduler"]["environment"]
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env[key]), key
    assert "${POSTGRES_PASSWORD:?" in text
    assert env["AIRFLOW__USAGE_DATA_COLLECTION__ENABLED"] == "False"
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    assert env["GX_ANALYTICS_ENABLED"] == "false"
    assert env["DO_NOT_TRACK"] == "1"


def test_dockerfile_installs_the_pinned_runtime_requirements_only():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    # requirements.txt is filtered first, and only the filtered list is installed.
    steps = " ".join(dockerfile.replace("\\\n", " ").split())
    assert (
        "COPY requirements.txt include/social_leadership/runtime_requirements.py /tmp/build/"
        in (steps)
    )
    assert (
        "RUN python /tmp/build/runtime_requirements.py /tmp/build/requirements.txt"
        " > /tmp/build/requirements-runtime.txt"
    ) in steps
    installs = re.findall(r"pip install (--requirement \S+)", steps)
    assert installs == ["--requirement /tmp/build/requirements-runtime.txt"]
    assert "COPY . ." not in dockerfile
    compose = _compose()
    assert compose["x-airflow-common"]["build"]["dockerfile"] == "Dockerfile"


def test_the_deployed_setup_leaves_the_demo_switch_off():
    # SLW_DEMO loads synthetic survey microdata and history: only `slw run` turns it on.
    compose = _compose()
    environments = [compose["x-airflow-common"]["environment"]] + [
        service.get("environment") or {} for service in compose["services"].values()
    ]
    for env in environments:
        names = env if isinstance(env, list) else list(env)
        assert not [name for name in names if str(name).split("=")[0] == "SLW_DEMO"]
    assert "SLW_DEMO" not in (REPO_ROOT / "Dockerfile").read_text()


def _make_dry_run(*args: str) -> str:
    import subprocess

    # -n prints the commands without running them; the stamp skips the install step.
    return subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_airflow_ui_binds_loopback_unless_exposed_on_purpose():
    default = _make_dry_run("airflow-ui")
    assert "AIRFLOW__API__HOST=127.0.0.1 " in default
    assert "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False" in default
    exposed = _make_dry_run("airflow-ui", "AIRFLOW_UI_HOST=0.0.0.0", "AIRFLOW_UI_PORT=9090")
    assert "AIRFLOW__API__HOST=0.0.0.0 AIRFLOW__API__PORT=9090" in exposed
    assert "http://127.0.0.1:9090/execution/" in exposed


def test_compose_publishes_the_ui_on_loopback_and_unpauses_new_dags():
    apiserver = _compose()["services"]["airflow-apiserver"]
    assert apiserver["ports"] == ["${AIRFLOW_UI_BIND:-127.0.0.1}:8080:8080"]
    env = apiserver["environment"]
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"


def test_local_airflow_creates_dags_unpaused(tmp_path):
    from social_leadership.local_airflow import airflow_environment

    env = airflow_environment(tmp_path)
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"


def test_compose_file_is_valid_against_the_compose_specification():
    import jsonschema

    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    compose = _compose()
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(compose)
    ]
    assert errors == []
    # The schema is strict enough to catch a misspelt key.
    broken = copy.deepcopy(compose)
    broken["services"]["airflow-scheduler"]["healthcheck"]["intervall"] = "30s"
    assert not validator.is_valid(broken)


def test_compose_runs_airflow_on_celery_with_two_workers():
    compose = _compose()
    services = compose["services"]
    assert {
        "postgres",
        "redis",
        "lake-catalog-init",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "sandbox",
    } <= set(services)
    airflow = _airflow_services(compose)
    for name, service in airflow.items():
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/"), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://airflow-apiserver:8080/execution/"
        )
    commands = {name: _command(service) for name, service in services.items()}
    assert commands["airflow-scheduler"] == "airflow scheduler"
    assert commands["airflow-dag-processor"] == "airflow dag-processor"
    assert commands["airflow-triggerer"] == "airflow triggerer"
    assert commands["airflow-apiserver"] == "airflow api-server"
    workers = [name for name, command in commands.items() if command == "airflow celery worker"]
    replicas = sum(services[name].get("deploy", {}).get("replicas", 1) for name in workers)
    assert replicas >= 2
    # Workers need the Execution API up before they take tasks.
    for name in workers:
        assert services[name]["depends_on"]["airflow-apiserver"] == {"condition": "service_healthy"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}


def _runtime_pins() -> dict[str, str]:
    """What the image installs: the Dockerfile's filter run on requirements.txt, with the
    standard library only (-I -S: nothing installed yet, as in the image build)."""
    import sys

    printed = subprocess.run(
        [sys.executable, "-I", "-S", str(RUNTIME_REQUIREMENTS), "requirements.txt"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line for line in printed.splitlines() if line and not line.startswith("#")]
    return dict(line.split("==") for line in lines)


def _requirements_txt() -> dict[str, str]:
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line and not line.startswith(" "))


def test_the_image_gets_requirements_txt_pins_without_the_test_and_lint_tools():
    pinned = _requirements_txt()
    runtime = _runtime_pins()
    # The same versions as the tests ran with.
    assert {name: pinned.get(name) for name in runtime} == runtime
    # The Celery executor's packages, the pipeline's own, and every runtime requirement.
    assert {
        "apache-airflow",
        "apache-airflow-providers-celery",
        "celery",
        "redis",
        "psycopg2-binary",
        "dbt-duckdb",
        "duckdb-extension-ducklake",
        "great-expectations",
        "httpx",
        "openpyxl",
    } <= set(runtime)
    # Neither the tools nor what only they need (pytest's iniconfig, SQLFluff's tblib).
    assert not {
        "pytest",
        "pytest-timeout",
        "ruff",
        "sqlfluff",
        "aiosmtpd",
        "pypdf",
        "statsmodels",
        "iniconfig",
        "tblib",
        "diff-cover",
    } & set(runtime)
    # What the tools share with the pipeline stays (Airflow needs pluggy too).
    assert "pluggy" in runtime


def test_postgres_holds_the_metadata_and_the_ducklake_catalog():
    compose = _compose()
    services = compose["services"]
    init_sql = _command(services["lake-catalog-init"])
    assert "create database slw_lake owner slw" in init_sql
    assert "create role slw login password %L" in init_sql
    # Created only when missing, so a second `up` (or an older volume) is fine.
    assert "where not exists (select from pg_database where datname = 'slw_lake')" in init_sql
    assert services["lake-catalog-init"]["environment"]["PGHOST"] == "postgres"
    assert services["airflow-init"]["depends_on"]["lake-catalog-init"] == {
        "condition": "service_completed_successfully"
    }
    for name, service in _airflow_services(compose).items():
        env = service["environment"]
        assert "@postgres/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env["SLW_WAREHOUSE_BACKEND"] == "ducklake", name
        catalog = env["SLW_DUCKLAKE_CATALOG"]
        assert catalog.startswith("postgres:"), name
        parameters = set(catalog.removeprefix("postgres:").split())
        assert parameters == {"dbname=slw_lake", "host=postgres", "user=slw"}, name
        assert "password" not in catalog.lower(), name
        assert env["PGPASSWORD"].startswith("${DUCKLAKE_DB_PASSWORD:?"), name
        # Every worker sees the same data folder: a named volume mounted at the data path.
        data_path = re.fullmatch(
            r"\$\{SLW_DUCKLAKE_DATA_PATH:-(.+)\}", env["SLW_DUCKLAKE_DATA_PATH"]
        )
        assert data_path, name
        assert _mounts(service).get(data_path.group(1)) in compose["volumes"], name


def test_every_platform_connection_comes_from_the_environment():
    from social_leadership.platforms.registry import platform_names

    platforms = platform_names()
    assert len(platforms) == 8
    connections = [f"AIRFLOW_CONN_SLW_{platform.upper()}" for platform in platforms]
    for name, service in _airflow_services(_compose()).items():
        env = service["environment"]
        for variable in [*connections, "AIRFLOW_CONN_SLW_SMTP", "AIRFLOW_CONN_SLW_WEBHOOK"]:
            # From .env only: no value of its own (an empty one means not configured).
            assert env.get(variable) == f"${{{variable}:-}}", (name, variable)
        assert not [
            key
            for key in env
            if key.startswith("AIRFLOW_CONN_")
            and key not in [*connections, "AIRFLOW_CONN_SLW_SMTP", "AIRFLOW_CONN_SLW_WEBHOOK"]
        ]
    example = _env_example()
    for variable in connections:
        fields = json.loads(example[variable])
        # The demo: every platform at the sandbox service, none at a real endpoint.
        assert fields["conn_type"] == "http"
        assert fields["host"].startswith("http://sandbox:8765"), variable
    assert example["COMPOSE_PROFILES"] == "demo"
    assert compose_profiles("sandbox") == ["demo"]


def compose_profiles(service: str) -> list[str]:
    return _compose()["services"][service].get("profiles", [])


def test_env_example_lists_every_variable_and_how_to_generate_the_secrets():
    compose_text = (REPO_ROOT / "docker-compose.yml").read_text()
    read = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)[:}]", compose_text))
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", compose_text))
    assert required == set(SECRETS)
    example_text = (REPO_ROOT / ".env.example").read_text()
    example = _env_example()
    for variable in read - required:
        assert variable in example, variable
    lines = example_text.splitlines()
    all_at_once = next(line for line in lines if line.startswith("#   for name in"))
    assert all_at_once.endswith(">> .env")
    for secret in SECRETS:
        # Listed, commented out (no value in the example), with a command generating it.
        assert secret not in example, secret
        position = lines.index(f"# {secret}=")
        command = lines[position - 1]
        assert "openssl rand" in command or "python3 -c" in command, secret
        # ... and the one command writing them all names it.
        assert secret in all_at_once


# Set by docker-compose.yml for the deployment: the containers' data folder, DuckLake on the
# PostgreSQL catalog, dbt started cold in each task process.
FIXED_SETTINGS = {"DATA_DIR", "WAREHOUSE_BACKEND", "DUCKLAKE_CATALOG", "DBT_WARM_START"}
# The demo switch is `slw run`'s alone (test_the_deployed_setup_leaves_the_demo_switch_off).
NOT_DEPLOYED = {"DEMO"}


def test_every_setting_reaches_the_containers_from_env_or_is_fixed_by_compose():
    # Compose passes a container only what its environment lists: a setting written in
    # .env but not listed (the roster's path, DuckDB's memory limit) was dropped, unsaid.
    from social_leadership.settings import ENV_PREFIX, SETTING_DOCS

    environment = _compose()["x-airflow-common"]["environment"]
    example = _env_example()
    for name in SETTING_DOCS.keys() - NOT_DEPLOYED:
        variable = ENV_PREFIX + name
        assert variable in environment, variable
        if name in FIXED_SETTINGS:
            assert "${" not in str(environment[variable]), variable
        else:
            assert environment[variable] == f"${{{variable}:-}}" or str(
                environment[variable]
            ).startswith(f"${{{variable}:-"), variable
            assert variable in example, variable
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    real_data = readme[readme.index("**For real data**") :][:1500]
    assert "SLW_ROSTER_PATH=/opt/slw/data/" in real_data


def test_every_airflow_container_shares_the_api_secret_key():
    # Airflow's configuration reference: the API server and the workers must share
    # [api] secret_key, or the UI is refused the logs of running tasks (each container
    # would generate its own).
    compose = _compose()
    for name, service in _airflow_services(compose).items():
        assert (
            service["environment"]
            .get("AIRFLOW__API__SECRET_KEY", "")
            .startswith("${AIRFLOW_JWT_SECRET:?")
        ), name


def test_long_running_services_have_health_checks_and_restart_policies():
    services = _compose()["services"]
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            assert service["restart"] == "no", name
            continue
        assert service.get("restart") in ("always", "unless-stopped"), name
        healthcheck = service.get("healthcheck") or {}
        assert healthcheck.get("test"), name
        assert not healthcheck.get("disable"), name
        assert healthcheck["test"][0] in ("CMD", "CMD-SHELL"), name
        for key in ("interval", "timeout", "retries"):
            assert key in healthcheck, (name, key)
    # A dependency waited on as healthy has a health check (else compose waits forever).
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
            if condition["condition"] == "service_completed_successfully":
                assert dependency in ONE_SHOT_SERVICES, (name, dependency)


def test_airflow_logs_go_to_a_volume():
    compose = _compose()
    for name, service in _airflow_services(compose).items():
        folder = service["environment"]["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]
        assert _mounts(service).get(folder) == "airflow-logs", name
    assert "airflow-logs" in compose["volumes"]


def test_the_image_runs_as_a_user_that_is_not_root():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users, "no USER instruction: the image runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    uid = re.search(r"useradd .*--uid (\d+)", dockerfile)
    assert uid
    assert int(uid.group(1)) != 0
    for service in _compose()["services"].values():
        assert str(service.get("user", "slw")).split(":")[0] not in ("root", "0")


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (its rules: a pattern
    matches from the context's root, ``**`` any number of folders, a folder takes its
    contents along, the last matching pattern wins and ``!`` re-includes)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        tail = pattern.removeprefix("**/")
        for prefix in prefixes:
            candidates = [prefix]
            if tail != pattern:
                prefix_parts = prefix.split("/")
                candidates = ["/".join(prefix_parts[start:]) for start in range(len(prefix_parts))]
            if any(fnmatch.fnmatchcase(candidate, tail) for candidate in candidates):
                ignored = not negated
                break
    return ignored


def test_dockerignore_keeps_secrets_data_and_tooling_out_of_the_image():
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for kept_out in (
        ".env",
        ".git/HEAD",
        ".venv/bin/python",
        ".venv-duckdb-1.1/bin/python",
        "airflow_home/simple_auth_manager_passwords.json.generated",
        "data/secrets/pseudonym.key",
        "data/warehouse/warehouse.duckdb",
        "test-artefacts/run.log",
        "include/social_leadership/__pycache__/settings.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/CACHEDIR.TAG",
        "dbt_project/target/manifest.json",
        "include/social_leadership_warehouse.egg-info/PKG-INFO",
    ):
        assert _dockerignored(kept_out, patterns), kept_out
    assert not _dockerignored(".env.example", patterns)
    # Everything the image copies is in the context (the bundled roster is in include/data).
    tracked = subprocess.run(
        [
            "git",
            "ls-files",
            "dags",
            "include",
            "dbt_project",
            "pyproject.toml",
            "README.md",
            "requirements.txt",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "include/data/roster/executives.csv" in tracked
    assert [path for path in tracked if _dockerignored(path, patterns)] == []


def test_no_literal_secrets_in_compose_dockerfile_or_env_example():
    compose = _compose()
    secretish = re.compile(r"(PASSWORD|SECRET|FERNET_KEY|TOKEN|_KEY)$")
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if secretish.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:[?-][^}]*\}", value), (name, key)
            for credentials in re.findall(r"://[^/@\s]*:([^@\s]*)@", value):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", credentials), (name, key)
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert not re.search(r"(PASSWORD|SECRET|FERNET|TOKEN)", dockerfile)
    # .env.example's only credentials are the sandbox's well-known demo ones.
    for variable, value in _env_example().items():
        if variable.startswith("AIRFLOW_CONN_") and value:
            password = json.loads(value).get("password")
            assert password in (None, "sandbox-token", "sandbox-key"), variable
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        assert not re.search(r"\b[0-9a-f]{32,}\b", line), line
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored


def test_the_image_and_every_service_switch_telemetry_off():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for setting in (
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False",
        "SCARF_ANALYTICS=false",
        "DO_NOT_TRACK=1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS=false",
        "GX_ANALYTICS_ENABLED=false",
    ):
        assert setting in dockerfile, setting
    for name, service in _airflow_services(_compose()).items():
        env = service["environment"]
        assert env["AIRFLOW__USAGE_DATA_COLLECTION__ENABLED"] == "False", name
        assert env["SCARF_ANALYTICS"] == "false", name
        assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false", name


def _dotenv(text: str) -> dict[str, str]:
    """The variables a .env file sets, read as docker compose reads them (comments and
    blank lines skipped, one pair of quotes removed, the last assignment wins)."""
    values = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            value = match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[match.group(1)] = value
    return values


def _bi_compose_example() -> dict:
    """README's compose lines for a BI tool's container (Deployment, "BI tools")."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("**BI tools** read either of two things:")[1]
    return yaml.safe_load(section.split("```yaml\n")[1].split("```")[0])


def _mount_of(service: dict, folder: str) -> tuple[str, str, bool]:
    """The mount that ``folder`` is under in ``service`` (the deepest target holding it):
    its source volume, the folder of the volume mounted and whether it is read-only."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            mounts.append((target, source, "", mode == ["ro"]))
        else:
            subpath = (volume.get("volume") or {}).get("subpath", "")
            mounts.append(
                (volume["target"], volume["source"], subpath, bool(volume.get("read_only")))
            )
    holding = [m for m in mounts if folder == m[0] or folder.startswith(m[0].rstrip("/") + "/")]
    target, source, subpath, read_only = max(holding, key=lambda m: len(m[0]))
    inside = folder.removeprefix(target).strip("/")
    return source, "/".join(part for part in (subpath, inside) if part), read_only


def _mounted(service: dict, folder: str) -> bool:
    try:
        _mount_of(service, folder)
    except ValueError:  # no mount holds it
        return False
    return True


def test_readme_s_bi_containers_mount_the_serving_catalog_s_folder_writable_when_they_read_it():
    """SQLite in WAL mode writes beside the serving catalog for every reader (docs/bi.md):
    the example's DuckLake reader gets that folder writable, as the pipeline's uid, and
    nothing else of the volume; the single-file reader stays read-only."""
    import jsonschema

    example = _bi_compose_example()
    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    assert [error.message for error in validator.iter_errors(example)] == []
    data_dir = _compose()["x-airflow-common"]["environment"]["SLW_DATA_DIR"]
    catalog_folder = f"{data_dir}/serving/lake"
    uid = re.search(r"useradd .*--uid (\d+)", (REPO_ROOT / "Dockerfile").read_text()).group(1)
    services = example["services"]
    assert _mount_of(services["metabase"], f"{data_dir}/serving") == (
        "slw_pipeline-data",
        "serving",
        True,
    )
    lake_reader = services["superset"]
    assert _mount_of(lake_reader, catalog_folder) == ("slw_pipeline-data", "serving/lake", False)
    assert str(lake_reader["user"]).split(":")[0] == uid
    assert _mount_of(lake_reader, f"{data_dir}/serving")[2]
    # Nothing else of the volume: the pseudonym key, the survey files as delivered.
    for service in services.values():
        for folder in (f"{data_dir}/secrets", f"{data_dir}/landing", data_dir):
            assert not _mounted(service, folder), folder
    assert "pipeline-data" in _compose()["volumes"]
    guide = (REPO_ROOT / "docs" / "bi.md").read_text()
    assert "read-only is enough" not in guide
    assert "The DuckLake catalog's folder must be writable" in guide


def test_readme_start_is_copy_one_edit_and_up(tmp_path):
    """README's three steps give every variable compose requires a usable value."""
    import base64
    import shutil

    from cryptography.fernet import Fernet

    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Deployment (docker compose)")[1].split("\n## ")[0]
    start = section.split("### Start")[1].split("```bash\n")[1].split("```")[0].splitlines()
    assert start[0] == "cp .env.example .env"
    assert start[-1].startswith("docker compose ps")
    assert any(line.startswith("docker compose up") for line in start)
    one_edit = [line for line in start if line.startswith("for name in")]
    assert len(one_edit) == 1
    # The same command as .env.example's own.
    assert f"#   {one_edit[0]}" in (REPO_ROOT / ".env.example").read_text().splitlines()
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed: README's secrets command needs it")
    shutil.copy(REPO_ROOT / ".env.example", tmp_path / ".env")
    subprocess.run(["bash", "-c", one_edit[0]], cwd=tmp_path, check=True)
    values = _dotenv((tmp_path / ".env").read_text())
    compose_text = (REPO_ROOT / "docker-compose.yml").read_text()
    for required in set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", compose_text)):
        assert values.get(required), required
    for secret in ("POSTGRES_PASSWORD", "DUCKLAKE_DB_PASSWORD", "AIRFLOW_JWT_SECRET"):
        # Long, and safe inside a connection URL without escaping.
        assert re.fullmatch(r"[0-9a-f]{64}", values[secret]), secret
    assert len({values[secret] for secret in SECRETS}) == len(SECRETS)
    Fernet(values["AIRFLOW_FERNET_KEY"])
    assert len(base64.urlsafe_b64decode(values["AIRFLOW_FERNET_KEY"])) == 32
    # The demo's connections are JSON, as Airflow reads AIRFLOW_CONN_* values.
    for variable, value in values.items():
        if variable.startswith("AIRFLOW_CONN_") and value:
            assert json.loads(value)["conn_type"], variable


def test_the_guides_the_commands_point_at_are_in_the_image():
    # slw bi and slw summary name docs/bi.md; the image had no docs/ folder.
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    copied = {
        source.rstrip("/")
        for line in re.findall(r"^COPY\s+(?!--)(.+)$", dockerfile, flags=re.MULTILINE)
        for source in line.split()[:-1]
    }
    named = set()
    for path in (REPO_ROOT / "include" / "social_leadership").rglob("*.py"):
        named |= set(re.findall(r"\bdocs/[\w.-]+\.md\b", path.read_text(encoding="utf-8")))
    assert named, "the commands name no guide"
    for guide in sorted(named):
        assert (REPO_ROOT / guide).is_file(), guide
        assert guide.split("/")[0] in copied, f"{guide} is not copied into the image"
