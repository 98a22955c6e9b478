"""Progress lines of local DAG runs: each event line of the runner's output is shown, in a
readable form, the moment it arrives; the whole output stays in the log file.

The end-to-end view (every DAG and task of ``make run``) is in
tests/e2e/test_pipeline_e2e.py; here a small real child process stands in for Airflow.
"""

from __future__ import annotations

import sys
import textwrap
import time

from social_leadership import progress
from social_leadership.local_airflow import _run

CHILD = textwrap.dedent(
    """
    import json, sys, time
    def event(**fields):
        print("SLW_PROGRESS " + json.dumps(fields), flush=True)
    print("airflow noise", flush=True)
    event(event="dag_start", dag="d")
    event(event="task_start", dag="d", task="t")
    time.sleep(1.5)
    event(event="step", dag="d", task="t", text="doing the long part")
    time.sleep(1.5)
    event(event="task_end", dag="d", task="t", state="success", seconds=3.0)
    event(event="task_not_run", dag="d", task="u", state="skipped")
    event(event="dag_end", dag="d", state="success", seconds=75.25)
    """
)


def test_event_lines_are_shown_as_they_arrive_and_the_log_keeps_everything(tmp_path):
    shown: list[tuple[float, str]] = []
    log_path = tmp_path / "logs" / "run.log"
    output = _run(
        [sys.executable, "-c", CHILD],
        {},
        log_path,
        lambda line: shown.append((time.monotonic(), line)),
    )
    ended = time.monotonic()
    texts = [line[9:] for _, line in shown]
    assert texts == [
        "DAG d: started",
        "  d.t: started",
        "    t: doing the long part",
        "  d.t: success in 3.0s",
        "  d.u: skipped (not run)",
        "DAG d: success in 1m15.2s",
    ]
    # Live: the task's start line came while the child still had seconds to run.
    assert ended - shown[1][0] >= 2.5
    assert ended - shown[2][0] >= 1.0
    # The log file holds the whole output, noise and event lines alike.
    assert log_path.read_text() == output
    assert "airflow noise" in output
    assert output.count(progress.PREFIX) == 6


def test_steps_outside_a_local_run_only_log(caplog, capsys):
    # A scheduler's worker: no runner installed, the step is a log line and nothing else.
    with caplog.at_level("INFO", logger="social_leadership.progress"):
        progress.step("validating")
    assert caplog.messages == ["validating"]
    assert progress.PREFIX not in capsys.readouterr().out
