"""Each DAG file parses in well under a second: the scheduler parses them over and over."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO_ROOT / "dags"
# Generous for a shared, busy machine: a file that does work at import takes longer.
MAX_SECONDS_PER_FILE = 1.0


def test_each_dag_file_parses_in_under_a_second():
    from airflow.dag_processing.dagbag import DagBag

    # Once to import what every file shares (Airflow, the package), then the timed parse.
    DagBag(dag_folder=str(DAGS_DIR))
    bag = DagBag(dag_folder=str(DAGS_DIR))
    parsed = {Path(stat.file).name: stat.duration.total_seconds() for stat in bag.dagbag_stats}
    assert set(parsed) == {path.name for path in DAGS_DIR.glob("*.py")}
    slow = {name: seconds for name, seconds in parsed.items() if seconds >= MAX_SECONDS_PER_FILE}
    assert not slow, f"DAG files parsing in {MAX_SECONDS_PER_FILE}s or more: {slow}"
