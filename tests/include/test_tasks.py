"""Task bodies of the DAGs, called with an Airflow-like context against the real sandbox."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from social_leadership.airflow_env import connection_env
from social_leadership.sandbox.server import SandboxServer
from social_leadership.settings import load_settings
from social_leadership.tasks import extract_task, load_task, platform_rows_arrived

WRONG_TOKEN = "wrong-token-secret-123"


class _TaskInstance:
    def __init__(self, xcoms: dict[str, dict | None]):
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: list[str]) -> list[dict | None]:
        return [self.xcoms.get(task_id) for task_id in task_ids]


@pytest.fixture
def context(tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    with SandboxServer() as sandbox:
        for key, value in connection_env("x", sandbox.base_url, WRONG_TOKEN).items():
            monkeypatch.setenv(key, value)
        yield {"run_id": "manual__test", "logical_date": datetime.now(UTC)}


def test_a_refused_token_fails_the_load_visibly_and_is_audited_without_the_token(context):
    from airflow.sdk.exceptions import AirflowFailException

    extracted = extract_task("x", ["elonmusk"], context)
    assert extracted["status"] == "failed"
    assert WRONG_TOKEN not in str(extracted)

    with pytest.raises(AirflowFailException) as failed:
        load_task(extracted, context)
    assert WRONG_TOKEN not in str(failed.value)
    with duckdb.connect(str(load_settings().warehouse_path), read_only=True) as con:
        audit = con.execute("select platform, status, message from audit.platform_loads").fetchall()
    assert [(platform, status) for platform, status, _ in audit] == [("x", "failed")]
    assert WRONG_TOKEN not in audit[0][2]


def test_warehouse_is_signalled_only_when_rows_arrived():
    nothing = _TaskInstance({"load_x": {"status": "skipped_backfill", "accounts_loaded": 0}})
    assert not platform_rows_arrived({"ti": nothing})
    failed_and_loaded = _TaskInstance(
        {"load_x": None, "load_bluesky": {"status": "loaded", "accounts_loaded": 3}}
    )
    assert platform_rows_arrived({"ti": failed_and_loaded})
    history_only = _TaskInstance({"import_history": {"files": 1, "rows_loaded": 730}})
    assert platform_rows_arrived({"ti": history_only})
