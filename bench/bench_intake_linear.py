"""intake_linear: reading a landed survey file costs time linear in its size.

A CSV file that is a single line (the published header's names, then one cell of the
rest) is ingested by ``social_leadership.surveys.ingest_folder`` from a landing folder into
a fresh warehouse, with the default limits: hashed, checked, decoded, its header read, and
quarantined because its last cell is over the cell limit. The file is read to its end: the
defaults let a 64 MB file in, so only the content rejects it. The ratio is the time per MB
for a 64 MB line over the time per MB for a 1 MB line, medians of alternating rounds.
Reading a line in growing chunks, as codecs' stream readers did, made it quadratic (a 16 MB
line took 16.5 s, 100 MB did not finish): about 64 here.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from _common import median, report

NAME = "intake_linear"
BOUND = 1.5
ROUNDS = 5
SMALL_MB = 1
LARGE_MB = 64
HEADER = (
    "source_id,source_name,wave,scope,question_id,question_text,measure,value,sample_size,"
    "margin_of_error_pct,citation,"
)


def write_single_line(path: Path, megabytes: int) -> None:
    remaining = (megabytes << 20) - len(HEADER)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        while remaining:
            chunk = min(remaining, 1 << 20)
            handle.write("x" * chunk)
            remaining -= chunk


def ingest_once(folder: Path, megabytes: int) -> tuple[float, str]:
    """Seconds to ingest one single-line file of ``megabytes``, and the reason it was
    quarantined."""
    import duckdb

    from social_leadership.surveys import ingest_folder
    from social_leadership.surveys.limits import IntakeLimits
    from social_leadership.warehouse import ensure_schema

    folder.mkdir()
    landing = folder / "landing"
    landing.mkdir()
    path = landing / f"single_line_{megabytes}mb.csv"
    write_single_line(path, megabytes)
    with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
        ensure_schema(con)
        started = time.perf_counter()
        outcomes = ingest_folder(
            con,
            landing,
            folder / "quarantine",
            include_bundled=False,
            pseudonym_key=b"benchmark-key-not-a-secret-0123",
            limits=IntakeLimits(),
        )
        seconds = time.perf_counter() - started
    (outcome,) = outcomes
    if outcome.status != "quarantined":
        raise SystemExit(f"expected the {megabytes} MB line to be quarantined: {outcome}")
    return seconds, "; ".join(issue.reason for issue in outcome.issues)


def main() -> int:
    from social_leadership.surveys.limits import IntakeLimits

    limits = IntakeLimits()
    if limits.max_file_bytes < LARGE_MB << 20:
        print(f"the default file limit ({limits.max_file_bytes} bytes) rejects the large file")
        return 1
    print(f"default limits: {limits}")
    per_mb: dict[int, list[float]] = {SMALL_MB: [], LARGE_MB: []}
    with tempfile.TemporaryDirectory(prefix="slw-bench-") as tmp:
        ingest_once(Path(tmp) / "warm-up", SMALL_MB)
        for round_no in range(1, ROUNDS + 1):
            for megabytes in (SMALL_MB, LARGE_MB):
                seconds, reason = ingest_once(Path(tmp) / f"{round_no}-{megabytes}", megabytes)
                per_mb[megabytes].append(seconds / megabytes)
                print(
                    f"round {round_no}: {megabytes} MB line in {seconds:.3f}s "
                    f"({seconds / megabytes * 1000:.1f} ms/MB), quarantined: {reason}",
                    flush=True,
                )
    ratio = median(per_mb[LARGE_MB]) / median(per_mb[SMALL_MB])
    return report(NAME, ratio, BOUND)


if __name__ == "__main__":
    sys.exit(main())
