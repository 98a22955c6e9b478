"""docker-compose.yml cannot run here (no Docker engine): check it statically."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


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
    assert "pools set duckdb_warehouse 1" in services["airflow-init"]["command"]


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


def test_dockerfile_installs_the_pinned_requirements():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "--requirement requirements.txt" in dockerfile
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
