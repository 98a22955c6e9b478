"""bench/compare_serving.py, on a tiny table: the measurements behind README's "Why the
serving copy is a DuckLake" still come out as README says, with real reader processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "compare_serving.py"


def test_swap_leaves_pooled_readers_stale_and_wal_lake_reaches_them_unblocked():
    completed = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--rows", "3000", "--repeats", "1", "--json"),
            *("--only", "a_swap", "e_lake_wal"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    verdicts = {
        verdict["candidate"]: verdict
        for verdict in map(json.loads, completed.stdout.strip().splitlines())
    }

    swap = verdicts["a_swap"]
    # os.replace never blocks, but a reader that keeps its connection keeps the old inode,
    # and so does a new connection in its process (DuckDB shares the open instance).
    assert swap["publish_idle_reader"] == "ok"
    assert swap["fresh"] is False
    assert swap["reconnect_fresh"] is False

    lake = verdicts["e_lake_wal"]
    assert lake["fresh"] is True
    assert lake["reconnect_fresh"] is True
    assert lake["one_snapshot"] is True
    assert lake["publish_idle_reader"] == "ok"
    assert lake["publish_reader_in_transaction"] == "ok"
    assert lake["reader_aggregate_ms"] > 0
