"""Survey intake at the boundary: any landed file ends loaded or quarantined with a report.

Every case lands a real file (corrupt, oversized, bombed, oddly named, a symlink) beside a
good one in a real landing folder and runs ``ingest_folder`` against a real DuckDB file:
the bad file moves to quarantine with a ``report.json`` saying what was wrong, the good one
loads, and nothing raises. Faults of the warehouse itself (a held lock, a full disk) still
raise, so Airflow retries them.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from survey_microdata import KEY, microdata_frame, sidecar, write_microdata

from social_leadership.settings import load_settings
from social_leadership.surveys import ingest, ingest_folder
from social_leadership.warehouse import ensure_schema

HEADER = (
    "source_id,source_name,wave,scope,question_id,question_text,measure,value,"
    "sample_size,margin_of_error_pct,citation\n"
)
GOOD_ROW = "acme,Acme,2022,FR,q1,Q one,share_pct,40,,,x\n"
GOOD_NAME = "zz_good.csv"
CSV_FIELD_LIMIT = 131_072  # the csv module's own default field limit
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_schema(connection)
    yield connection
    connection.close()


@pytest.fixture
def landing(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / GOOD_NAME).write_text(HEADER + GOOD_ROW)
    return folder


def _ingest(con, landing: Path, quarantine: Path) -> dict:
    outcomes = ingest_folder(con, landing, quarantine, include_bundled=False, pseudonym_key=KEY)
    return {outcome.file: outcome for outcome in outcomes}


def _report(outcome) -> dict:
    assert outcome.status == "quarantined", outcome
    return json.loads(Path(outcome.report_path).read_text())


def _reasons(report: dict) -> str:
    return " | ".join(issue["reason"] for issue in report["issues"])


def _assert_good_file_loaded(con, outcomes: dict) -> None:
    assert outcomes[GOOD_NAME].status == "loaded"
    assert con.execute("select source_id, scope, value from raw.survey_results").fetchall() == [
        ("acme", "FR", 40.0)
    ]


# --- 1. every unreadable file is quarantined, not raised ---------------------------------


def _xlsx_bytes(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame({"source_id": ["acme"] * 500, "value": [float(i) for i in range(500)]}).to_parquet(
        buffer
    )
    return buffer.getvalue()


def _microdata_parquet_with_corrupt_pages() -> bytes:
    """A respondent export whose footer is sound but whose data pages are garbled."""
    buffer = io.BytesIO()
    microdata_frame(seed=1, per_country=2000).to_parquet(buffer, compression="snappy")
    data = bytearray(buffer.getvalue())
    for position in range(200, len(data) // 2, 3):
        data[position] ^= 0xA5
    return bytes(data)


def _xlsx_with_entity_bomb() -> bytes:
    """A workbook whose sheet expands one entity a billion-fold ("billion laughs")."""
    template = zipfile.ZipFile(io.BytesIO(_xlsx_bytes([["source_id"]])))
    entities = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    )
    sheet = (
        f'<?xml version="1.0"?><!DOCTYPE worksheet [{entities}]><worksheet xmlns="http://'
        'schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">'
        '<c r="A1" t="inlineStr"><is><t>&a9;</t></is></c></row></sheetData></worksheet>'
    )
    members = {info.filename: template.read(info.filename) for info in template.infolist()}
    members["xl/worksheets/sheet1.xml"] = sheet.encode()
    return _zip_bytes(members)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


LONG_CELL = "x" * (CSV_FIELD_LIMIT + 10)
MICRODATA_SIDECAR = json.dumps(sidecar())

# name -> (file name, file bytes, sidecar text or None, words the report must contain)
UNREADABLE = {
    "binary_csv": (
        "garbage.csv",
        bytes([0x81, 0x8D, 0x00, 0xFF, 0xFE, 0x9D]) * 700 + b"\n" + os.urandom(4000),
        None,
        "cannot be read",
    ),
    "binary_microdata_csv": (
        "panel.csv",
        bytes([0x81, 0x00]) * 3000,
        MICRODATA_SIDECAR,
        "cannot be read",
    ),
    "random_xlsx": ("figures.xlsx", b"PK\x03\x04" + os.urandom(3000), None, "XLSX"),
    # A workbook saved under a text name: said so, where decoding it as text failed.
    "xlsx_named_csv": (
        "figures.csv",
        _xlsx_bytes([HEADER.strip().split(",")] * 5),
        None,
        "is a spreadsheet workbook (XLSX or ODS, a ZIP archive), not CSV: save it as CSV",
    ),
    "xls_named_tsv": (
        "figures.tsv",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500),
        None,
        "is an Excel 97-2003 workbook (XLS), not tab-separated text",
    ),
    "truncated_xlsx": (
        "figures.xlsx",
        _xlsx_bytes([HEADER.strip().split(",")] * 50)[:-700],
        None,
        "XLSX",
    ),
    "zip_that_is_no_workbook": (
        "figures.xlsx",
        _zip_bytes({"readme.txt": b"not a workbook"}),
        None,
        "cannot be read",
    ),
    "xml_entity_bomb_xlsx": ("laughs.xlsx", _xlsx_with_entity_bomb(), None, "XLSX"),
    "random_parquet": ("figures.parquet", b"PAR1" + os.urandom(3000) + b"PAR1", None, "Parquet"),
    "truncated_parquet": ("figures.parquet", _parquet_bytes()[:-40], None, "Parquet"),
    "truncated_microdata_parquet": (
        "panel.parquet",
        _parquet_bytes()[:-40],
        MICRODATA_SIDECAR,
        "Parquet",
    ),
    "corrupt_pages_microdata_parquet": (
        "panel.parquet",
        _microdata_parquet_with_corrupt_pages(),
        MICRODATA_SIDECAR,
        "Parquet",
    ),
    "truncated_csv_gz": (
        "figures.csv.gz",
        gzip.compress((HEADER + GOOD_ROW * 2000).encode())[:300],
        None,
        "gzip",
    ),
    "not_gzip_csv_gz": ("figures.csv.gz", b"this is not gzip\n" * 10, None, "gzip"),
    "cell_over_csv_field_limit": (
        "long_cell.csv",
        (HEADER + f"acme,Acme,2022,FR,q1,{LONG_CELL},share_pct,40,,,x\n").encode(),
        None,
        "SLW_SURVEY_MAX_CELL_CHARS",
    ),
    "header_cell_over_csv_field_limit": (
        "long_header.csv",
        f"source_id,{LONG_CELL}\nacme,x\n".encode(),
        None,
        "SLW_SURVEY_MAX_CELL_CHARS",
    ),
    "microdata_header_cell_over_csv_field_limit": (
        "panel.csv",
        f"resp,land,gewicht,q1,q2,{LONG_CELL}\nr1,DE,1,2,3,x\n".encode(),
        MICRODATA_SIDECAR,
        "SLW_SURVEY_MAX_CELL_CHARS",
    ),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_an_unreadable_file_is_quarantined_with_a_report_and_the_others_load(
    case, con, landing, tmp_path
):
    name, content, declaration, expected = UNREADABLE[case]
    (landing / name).write_bytes(content)
    if declaration is not None:
        stem = name.split(".")[0]
        (landing / f"{stem}.survey.json").write_text(declaration)

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    report = _report(outcomes[name])
    assert report["file"] == name
    assert expected in _reasons(report)
    assert not (landing / name).exists()
    quarantined = Path(outcomes[name].report_path).parent
    assert (quarantined / name).read_bytes() == content
    if declaration is not None:
        assert report["sidecar"] == f"{name.split('.')[0]}.survey.json"
        assert not any(landing.glob("*.survey.json"))
    _assert_good_file_loaded(con, outcomes)


def test_a_cell_over_the_limit_is_reported_by_row_and_column(con, landing, tmp_path):
    path = landing / "long_cell.csv"
    path.write_text(
        HEADER
        + GOOD_ROW.replace("acme", "acme2")
        + GOOD_ROW.replace("Q one", LONG_CELL)
        + f'acme,"Acme, Inc.",2022,DE,q1,"Q ""one""",share_pct,40,,,"{LONG_CELL}"\n'
        + f'acme,Acme,2022,FR,q1,"Q\n{LONG_CELL}",share_pct,40,,,x\n'
        + GOOD_ROW.replace("FR", "GB")
    )

    report = _report(_ingest(con, landing, tmp_path / "quarantine")["long_cell.csv"])

    reason = (
        f"cell is longer than the limit of {CSV_FIELD_LIMIT} characters (SLW_SURVEY_MAX_CELL_CHARS)"
    )
    assert report["issues"] == [
        {"file": "long_cell.csv", "row": 3, "column": "question_text", "reason": reason},
        {"file": "long_cell.csv", "row": 4, "column": "citation", "reason": reason},
        # The cell began on the line before: its column is not guessed.
        {"file": "long_cell.csv", "row": 6, "column": "*", "reason": reason},
    ]


LONG_NAMES = {
    "ascii_250": "n" * 246 + ".csv",
    "ascii_255": "w" * 251 + ".csv",
    "unicode_250_bytes": "\u00fc" * 123 + ".csv",
}


@pytest.mark.parametrize("case", list(LONG_NAMES))
def test_a_very_long_file_name_loads_or_is_quarantined_under_a_short_folder(
    case, con, landing, tmp_path
):
    good_name = LONG_NAMES[case]
    bad_name = good_name[:-5] + "b.csv"
    (landing / good_name).write_text(HEADER + GOOD_ROW.replace("acme", "acme_long"))
    (landing / bad_name).write_text(HEADER + GOOD_ROW.replace("FR", "Atlantis"))

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    assert outcomes[good_name].status == "loaded"
    report = _report(outcomes[bad_name])
    assert report["file"] == bad_name
    assert "unknown country 'Atlantis'" in _reasons(report)
    folder = Path(outcomes[bad_name].report_path).parent
    assert len(os.fsencode(folder.name)) <= 255
    assert (folder / bad_name).exists()
    assert outcomes[GOOD_NAME].status == "loaded"


def test_a_fifo_in_the_landing_folder_is_reported_and_never_read(con, landing, tmp_path):
    os.mkfifo(landing / "pipe.csv")

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    assert "not a regular file" in _reasons(_report(outcomes["pipe.csv"]))
    assert not (landing / "pipe.csv").exists()
    _assert_good_file_loaded(con, outcomes)


def test_a_bad_bundled_file_still_raises_and_stays(tmp_path, monkeypatch, con):
    bundled = tmp_path / "bundled" / "figures.xlsx"
    bundled.parent.mkdir()
    bundled.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    monkeypatch.setattr(ingest, "BUNDLED_FILES", (bundled,))
    landing = tmp_path / "landing"
    landing.mkdir()

    with pytest.raises(Exception, match="zip"):
        ingest_folder(con, landing, tmp_path / "quarantine", pseudonym_key=KEY)

    assert bundled.exists()
    assert not (tmp_path / "quarantine").exists()


# --- warehouse faults still raise (Airflow retries them) ---------------------------------


def _task_env(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    for name in list(os.environ):
        if name.startswith("SLW_") and name not in ("SLW_DATA_DIR", "SLW_INTAKE_SETTLE_SECONDS"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLW_PSEUDONYM_KEY", KEY.decode())
    settings = load_settings()
    settings.ensure_dirs()
    return settings.survey_dir


def test_the_ingest_task_finishes_whatever_the_files_hold(tmp_path, monkeypatch):
    from social_leadership.tasks import ingest_surveys_task

    survey_dir = _task_env(tmp_path, monkeypatch)
    for case in ("random_xlsx", "truncated_parquet", "truncated_csv_gz", "binary_csv"):
        name, content, _, _ = UNREADABLE[case]
        (survey_dir / f"{case}-{name}").write_bytes(content)
    (survey_dir / "cell.csv").write_bytes(UNREADABLE["cell_over_csv_field_limit"][1])
    (survey_dir / "figures.csv").write_text(HEADER + GOOD_ROW)

    summary = ingest_surveys_task()

    assert summary["files_quarantined"] == 5
    # The bundled published figures and figures.csv: SLW_DEMO is off, no demo microdata.
    assert summary["files_loaded"] == 2
    reports = list((tmp_path / "data" / "quarantine" / "surveys").glob("*/report.json"))
    assert len(reports) == 5


def test_a_correction_that_drops_a_wave_is_an_alert_item(tmp_path, monkeypatch):
    # Said in the task log alone: a wave was gone from the marts with nobody told.
    from social_leadership import alerts
    from social_leadership.tasks import ingest_surveys_task

    calls: list = []
    monkeypatch.setattr(alerts, "report_attention", calls.append)
    survey_dir = _task_env(tmp_path, monkeypatch)
    (survey_dir / "export.csv").write_text(
        HEADER + GOOD_ROW + "acme,Acme,2021,FR,q1,Q one,share_pct,38,,,x\n"
    )
    ingest_surveys_task()
    assert [fact for facts in calls for fact in facts] == []
    (survey_dir / "export.csv").write_text(HEADER + GOOD_ROW)

    ingest_surveys_task()

    (fact,) = calls[-1]
    assert fact.task_id == "ingest_surveys"
    assert fact.what == (
        "survey file export.csv replaced its earlier version, which held what it does not: "
        "removed 1 figure(s) of acme wave 2021 (a file of another wave keeps its own under "
        "a name of its own)"
    )


def test_figures_of_another_file_replaced_are_an_alert_item(tmp_path, monkeypatch):
    from social_leadership import alerts
    from social_leadership.tasks import ingest_surveys_task

    calls: list = []
    monkeypatch.setattr(alerts, "report_attention", calls.append)
    survey_dir = _task_env(tmp_path, monkeypatch)
    (survey_dir / "acme_fr.csv").write_text(HEADER + GOOD_ROW)
    ingest_surveys_task()
    (survey_dir / "acme_de.csv").write_text(
        HEADER + "acme,Acme,2022,DE,q1,Q one,share_pct,41,,,x\n" + GOOD_ROW.replace("40", "39")
    )

    ingest_surveys_task()

    (fact,) = calls[-1]
    assert fact.what.startswith(
        "survey file acme_de.csv replaced what other files had loaded: "
        "1 figure(s) of acme wave 2022 FR from acme_fr.csv (if not meant, "
    )
    assert "an unchanged file is taken as loaded" in fact.what


def test_a_folder_of_survey_files_in_the_landing_folder_is_alerted_once_and_on_change(
    tmp_path, monkeypatch
):
    # An export unzipped into the landing folder: its files are not read, which the task
    # log alone said; the run was green and nobody learned they never loaded.
    from social_leadership import alerts
    from social_leadership.tasks import ingest_surveys_task

    calls: list = []
    monkeypatch.setattr(alerts, "report_attention", calls.append)
    survey_dir = _task_env(tmp_path, monkeypatch)
    export = survey_dir / "Qualtrics_Export_2025"
    export.mkdir()
    (export / "wave.csv").write_text(HEADER + GOOD_ROW)

    ingest_surveys_task()
    ingest_surveys_task()  # the next run: said already
    (export / "wave2.csv").write_text(HEADER + GOOD_ROW)
    ingest_surveys_task()

    said = [[fact.what for fact in facts] for facts in calls]
    first = (
        f"survey folder Qualtrics_Export_2025/ holds 1 survey file(s), which are not read: "
        f"only the files at the top of {survey_dir} are; move them there (said again when "
        "its files change)"
    )
    assert said == [[first], [], [first.replace("holds 1", "holds 2")]]
    assert calls[0][0].where == str(export)


def test_a_held_warehouse_lock_raises_and_leaves_the_files(tmp_path, monkeypatch):
    from social_leadership.tasks import ingest_surveys_task

    survey_dir = _task_env(tmp_path, monkeypatch)
    monkeypatch.setattr("social_leadership.warehouse.LOCK_WAIT_SECONDS", 0.2)
    (survey_dir / "figures.csv").write_text(HEADER + GOOD_ROW)
    (survey_dir / "broken.xlsx").write_bytes(UNREADABLE["random_xlsx"][1])
    warehouse = load_settings().warehouse_path
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
            "print('held', flush=True); time.sleep(60)",
            str(warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.IOException, match="lock"):
            ingest_surveys_task()
    finally:
        holder.kill()
        holder.wait()
    assert (survey_dir / "figures.csv").exists()
    assert (survey_dir / "broken.xlsx").exists()
    assert not (tmp_path / "data" / "quarantine" / "surveys").exists()


FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    import duckdb
    from social_leadership.surveys import ingest_folder
    from social_leadership.warehouse import ensure_schema

    warehouse, landing, quarantine = map(Path, sys.argv[1:4])
    con = duckdb.connect(str(warehouse))
    ensure_schema(con)
    # The warehouse's disk is full: no file this process writes may grow past 64 KB (the
    # quarantine's small reports still fit). DuckDB's write-ahead log does not.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
    try:
        ingest_folder(con, landing, quarantine, include_bundled=False, pseudonym_key=b"k" * 20)
    except Exception as exc:
        print(json.dumps({"raised": type(exc).__name__, "message": str(exc)}))
    else:
        print(json.dumps({"raised": None}))
    """
)


def test_a_full_warehouse_disk_raises_and_quarantines_nothing(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    rows = "".join(
        f"acme,Acme,2022,FR,q{i},{'question text ' * 20},share_pct,40,,,x\n" for i in range(2000)
    )
    (landing / "figures.csv").write_text(HEADER + rows)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "include")}
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            FULL_DISK_SCRIPT,
            str(tmp_path / "warehouse.duckdb"),
            str(landing),
            str(tmp_path / "quarantine"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["raised"] is not None, completed.stdout
    assert "File too large" in result["message"]
    assert (landing / "figures.csv").exists()
    # No file's folder, and no note of a file being read (the intake stopped by an error).
    assert not [path for path in (tmp_path / "quarantine").rglob("*") if path.is_file()]


# --- 2. bounded cost ---------------------------------------------------------------------


def _seconds_to_ingest(tmp_path: Path, megabytes: int, rounds: int = 3) -> float:
    best = float("inf")
    for round_no in range(rounds):
        folder = tmp_path / f"linear-{megabytes}-{round_no}"
        landing = folder / "landing"
        landing.mkdir(parents=True)
        (landing / "one_line.csv").write_text(
            HEADER + "acme,Acme,2022,FR,q1," + "x" * (megabytes << 20) + ",share_pct,40,,,x\n"
        )
        connection = duckdb.connect(str(folder / "warehouse.duckdb"))
        ensure_schema(connection)
        started = time.perf_counter()
        outcomes = ingest_folder(
            connection, landing, folder / "quarantine", include_bundled=False, pseudonym_key=KEY
        )
        best = min(best, time.perf_counter() - started)
        connection.close()
        assert [o.status for o in outcomes] == ["quarantined"]
    return best


def test_reading_a_long_line_costs_time_linear_in_its_length(tmp_path):
    per_mb_small = _seconds_to_ingest(tmp_path, 1)
    per_mb_large = _seconds_to_ingest(tmp_path, 8) / 8
    # Quadratic reading made the 8 MB line cost 8 times as much per MB as the 1 MB one.
    assert per_mb_large < 3 * per_mb_small, (per_mb_small, per_mb_large)


def test_a_file_over_the_size_limit_is_quarantined_naming_the_setting(
    con, landing, tmp_path, monkeypatch
):
    monkeypatch.setenv("SLW_SURVEY_MAX_FILE_BYTES", "2000")
    (landing / "big.csv").write_text(HEADER + GOOD_ROW * 100)

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    reasons = _reasons(_report(outcomes["big.csv"]))
    assert "over the limit of 2000 bytes (SLW_SURVEY_MAX_FILE_BYTES)" in reasons
    _assert_good_file_loaded(con, outcomes)


def test_a_gzip_expanding_past_the_size_limit_is_quarantined(con, landing, tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_SURVEY_MAX_FILE_BYTES", str(1 << 20))
    content = HEADER + "acme,Acme,2022,FR,q1,Q one,share_pct,40,,,x" + " " * (8 << 20) + "\n"
    compressed = gzip.compress(content.encode())
    assert len(compressed) < 1 << 20
    (landing / "bomb.csv.gz").write_bytes(compressed)

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    reasons = _reasons(_report(outcomes["bomb.csv.gz"]))
    assert f"over the limit of {1 << 20} bytes (SLW_SURVEY_MAX_FILE_BYTES)" in reasons
    _assert_good_file_loaded(con, outcomes)


def test_the_cell_limit_is_a_setting(con, landing, tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_SURVEY_MAX_CELL_CHARS", "100")
    (landing / "wordy.csv").write_text(HEADER + GOOD_ROW.replace("Q one", "y" * 101))

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    report = _report(outcomes["wordy.csv"])
    assert [(i["row"], i["column"]) for i in report["issues"]] == [(2, "question_text")]
    assert "the limit of 100 characters (SLW_SURVEY_MAX_CELL_CHARS)" in _reasons(report)
    _assert_good_file_loaded(con, outcomes)


def test_an_xlsx_cell_over_the_limit_is_reported_by_sheet_row(con, landing, tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_SURVEY_MAX_CELL_CHARS", "100")
    rows = [["Title"], HEADER.strip().split(","), GOOD_ROW.strip().split(",")]
    rows[2][5] = "z" * 101
    (landing / "wordy.xlsx").write_bytes(_xlsx_bytes(rows))

    report = _report(_ingest(con, landing, tmp_path / "quarantine")["wordy.xlsx"])

    assert [(i["row"], i["column"]) for i in report["issues"]] == [(3, "question_text")]


def _write_xlsx_with_shared_strings(path: Path, strings_bytes: int) -> None:
    """A valid workbook whose shared strings part expands to ``strings_bytes``."""
    cell = "A" * 1000
    count = strings_bytes // (len(cell) + 11)
    template = zipfile.ZipFile(io.BytesIO(_xlsx_bytes([["source_id", "value"], ["x", 1]])))
    # openpyxl writes its strings inline; Excel keeps them in a shared strings part, which
    # the manifest names and every reader loads whole.
    manifest = template.read("[Content_Types].xml").replace(
        b"</Types>",
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml" /></Types>',
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in template.infolist():
            data = template.read(info.filename)
            archive.writestr(info, manifest if info.filename == "[Content_Types].xml" else data)
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as strings:
            strings.write(
                b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.'
                b'openxmlformats.org/spreadsheetml/2006/main">'
            )
            chunk = f"<si><t>{cell}</t></si>".encode() * 1000
            for _ in range(count // 1000):
                strings.write(chunk)
            strings.write(b"</sst>")


@pytest.fixture(scope="module")
def xlsx_bomb(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.xlsx"
    _write_xlsx_with_shared_strings(path, 200 << 20)
    return path


def _peak_python_memory(run):
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_xlsx_bomb_is_rejected_before_it_expands(con, landing, tmp_path, xlsx_bomb):
    assert xlsx_bomb.stat().st_size < 1 << 20
    (landing / "bomb.xlsx").write_bytes(xlsx_bomb.read_bytes())

    outcomes, peak = _peak_python_memory(lambda: _ingest(con, landing, tmp_path / "quarantine"))

    assert peak < 32 << 20, f"peak {peak / 1e6:.0f} MB"
    reasons = _reasons(_report(outcomes["bomb.xlsx"]))
    assert f"over the limit of {64 << 20} bytes (SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES)" in (
        reasons
    )
    _assert_good_file_loaded(con, outcomes)


def _lie_about_size(path: Path, member: str, declared: int) -> None:
    """Rewrite ``member``'s uncompressed size in the local header and central directory."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    assert info.file_size < 0xFFFFFFFF
    assert info.compress_size < 0xFFFFFFFF
    local = info.header_offset
    assert data[local : local + 4] == b"PK\x03\x04"
    data[local + 22 : local + 26] = declared.to_bytes(4, "little")
    start = 0
    while (central := data.find(b"PK\x01\x02", start)) != -1:
        name_length = int.from_bytes(data[central + 28 : central + 30], "little")
        if data[central + 46 : central + 46 + name_length] == name:
            data[central + 24 : central + 28] = declared.to_bytes(4, "little")
            break
        start = central + 4
    else:
        raise AssertionError(f"{member} not in the central directory")
    path.write_bytes(bytes(data))


def test_an_xlsx_whose_parts_lie_about_their_size_is_rejected_without_expanding(
    con, landing, tmp_path
):
    path = landing / "liar.xlsx"
    _write_xlsx_with_shared_strings(path, 100 << 20)
    _lie_about_size(path, "xl/sharedStrings.xml", 4000)

    outcomes, peak = _peak_python_memory(lambda: _ingest(con, landing, tmp_path / "quarantine"))

    assert "XLSX" in _reasons(_report(outcomes["liar.xlsx"]))
    assert peak < 32 << 20, f"peak {peak / 1e6:.0f} MB"
    _assert_good_file_loaded(con, outcomes)


def test_an_xlsx_within_the_limit_still_loads(con, landing, tmp_path, monkeypatch):
    rows = [["Acme figures"], HEADER.strip().split(","), GOOD_ROW.strip().split(",")]
    rows[2][0] = "acme_xlsx"
    path = landing / "figures.xlsx"
    path.write_bytes(_xlsx_bytes(rows))
    with zipfile.ZipFile(path) as archive:
        expanded = sum(info.file_size for info in archive.infolist())
    monkeypatch.setenv("SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES", str(expanded))

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    assert outcomes["figures.xlsx"].status == "loaded"
    monkeypatch.setenv("SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES", str(expanded - 1))
    path.write_bytes(_xlsx_bytes([*rows, GOOD_ROW.replace("q1", "q2").strip().split(",")]))
    assert "SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES" in _reasons(
        _report(_ingest(con, landing, tmp_path / "quarantine")["figures.xlsx"])
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SLW_SURVEY_MAX_FILE_BYTES", "1GB", "must be a whole number of at least 1"),
        ("SLW_SURVEY_MAX_CELL_CHARS", "0", "must be a whole number of at least 1"),
        ("SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES", "-5", "must be a whole number of at least 1"),
        ("SLW_SURVEY_MAX_PUBLISHED_BYTES", "64MB", "must be a whole number of at least 1"),
    ],
)
def test_a_bad_limit_setting_says_which_and_why(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(
        ValueError, match=re.escape(f"{variable}='{value}': not allowed, {message}")
    ):
        load_settings()


def test_the_limits_have_documented_defaults(monkeypatch):
    for variable in (
        "SLW_SURVEY_MAX_FILE_BYTES",
        "SLW_SURVEY_MAX_CELL_CHARS",
        "SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES",
        "SLW_SURVEY_MAX_PUBLISHED_BYTES",
    ):
        monkeypatch.delenv(variable, raising=False)
    settings = load_settings()
    assert settings.survey_max_file_bytes == 1 << 30
    assert settings.survey_max_cell_chars == CSV_FIELD_LIMIT
    assert settings.survey_max_xlsx_uncompressed_bytes == 64 << 20
    assert settings.survey_max_published_bytes == 64 << 20
    readme = (REPO_ROOT / "README.md").read_text()
    for variable in (
        "SLW_SURVEY_MAX_FILE_BYTES",
        "SLW_SURVEY_MAX_CELL_CHARS",
        "SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES",
        "SLW_SURVEY_MAX_PUBLISHED_BYTES",
    ):
        assert f"`{variable}`" in readme


# --- 3. the landing folder is the boundary -----------------------------------------------


@pytest.mark.parametrize("first", ["link.csv", "hop.csv"])
def test_a_symlink_pointing_outside_the_landing_folder_is_not_followed(
    con, landing, tmp_path, first
):
    outside = tmp_path / "elsewhere" / "figures.csv"
    outside.parent.mkdir()
    target_text = HEADER + GOOD_ROW.replace("acme", "outsider")
    outside.write_text(target_text)
    (landing / "link.csv").symlink_to(outside)
    (landing / "hop.csv").symlink_to(landing / "link.csv")  # inside, but ends outside
    # The one landed first is quarantined first: with link.csv first, hop.csv then read as
    # dangling (flaky: in the same clock tick, hop.csv came first by name).
    os.utime(landing / first, (1_700_000_000, 1_700_000_000), follow_symlinks=False)

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    for name in ("link.csv", "hop.csv"):
        report = _report(outcomes[name])
        assert "symlink pointing outside the survey landing folder" in _reasons(report)
        assert not (landing / name).is_symlink()
        assert (Path(outcomes[name].report_path).parent / name).is_symlink()
    assert outside.read_text() == target_text
    _assert_good_file_loaded(con, outcomes)


def test_a_link_changed_after_the_folder_was_listed_is_checked_where_it_ends_now(landing, tmp_path):
    # Checked only where it ended when listed, a link re-pointed outside while other files
    # loaded was followed there.
    from social_leadership.surveys.boundary import check_landed, link_targets
    from social_leadership.surveys.common import SurveyValidationError

    (landing / "inside.csv").write_text(HEADER + GOOD_ROW)
    secret = tmp_path / "elsewhere" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text(HEADER + GOOD_ROW)
    link = landing / "link.csv"
    link.symlink_to(landing / "inside.csv")
    targets = link_targets([link])

    link.unlink()
    link.symlink_to(secret)

    with pytest.raises(SurveyValidationError, match="pointing outside the survey landing folder"):
        check_landed(link, landing, targets.get(link))


def test_a_symlinked_sidecar_pointing_outside_is_not_followed(con, landing, tmp_path):
    outside = tmp_path / "elsewhere" / "declaration.json"
    outside.parent.mkdir()
    outside.write_text(json.dumps(sidecar()))
    write_microdata(microdata_frame(seed=3, per_country=5), landing / "panel.csv", sidecar())
    (landing / "panel.survey.json").unlink()
    (landing / "panel.survey.json").symlink_to(outside)

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    report = _report(outcomes["panel.csv"])
    assert [(i["file"], i["reason"]) for i in report["issues"]] == [
        (
            "panel.survey.json",
            "the sidecar is a symlink pointing outside the survey landing folder; not followed",
        )
    ]
    assert report["sidecar"] == "panel.survey.json"
    assert outside.read_text() == json.dumps(sidecar())
    assert con.execute("select count(*) from raw.survey_respondent_answers").fetchone() == (0,)


def test_a_symlink_inside_the_landing_folder_is_followed(con, landing, tmp_path):
    (landing / "waves").mkdir()
    (landing / "waves" / "2022.csv").write_text(HEADER + GOOD_ROW.replace("acme", "acme22"))
    (landing / "latest.csv").symlink_to(Path("waves") / "2022.csv")

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    assert outcomes["latest.csv"].status == "loaded"
    assert outcomes[GOOD_NAME].status == "loaded"


def test_a_dangling_symlink_gets_a_report(con, landing, tmp_path):
    (landing / "gone.csv").symlink_to(tmp_path / "deleted.csv")

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    assert "dangling symlink" in _reasons(_report(outcomes["gone.csv"]))
    assert not (landing / "gone.csv").is_symlink()
    _assert_good_file_loaded(con, outcomes)


def test_a_symlink_loop_is_reported_as_a_loop_not_as_dangling(con, landing, tmp_path):
    (landing / "a.csv").symlink_to("b.csv")
    (landing / "b.csv").symlink_to("a.csv")

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    for name in ("a.csv", "b.csv"):
        reasons = _reasons(_report(outcomes[name]))
        assert "symlink loop: its links lead back to themselves" in reasons
        assert "dangling" not in reasons
    _assert_good_file_loaded(con, outcomes)


ODD_NAMES = {
    "spaces": "wave 2024 (final) copy.csv",
    "unicode": "umfrage_\u00e4\u00f6\u00fc_\u65e5\u672c_\U0001f4ca.csv",
    "shell": "$(touch pwned); rm -rf ~ `id` 'q' \"d\" & | > <.csv",
    "newline": "two\nlines.csv",
    "leading_dash": "-rf.csv",
    "latin1_bytes": os.fsdecode("caf\u00e9 r\u00e9sum\u00e9.csv".encode("latin-1")),
}


@pytest.mark.parametrize("case", list(ODD_NAMES))
def test_odd_names_keep_working(case, con, landing, tmp_path):
    good_name = ODD_NAMES[case]
    bad_name = "bad " + good_name
    (landing / good_name).write_text(HEADER + GOOD_ROW.replace("acme", "acme_odd"))
    (landing / bad_name).write_text(HEADER + GOOD_ROW.replace("FR", "Atlantis"))

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    assert outcomes[good_name].status == "loaded"
    report = _report(outcomes[bad_name])
    assert report["file"] == bad_name
    assert (Path(outcomes[bad_name].report_path).parent / bad_name).exists()
    assert not (tmp_path / "pwned").exists()
    assert not Path("pwned").exists()
    # Stored as text: bytes of another encoding in a name read as \xNN.
    stored = os.fsencode(good_name).decode("utf-8", "backslashreplace")
    assert con.execute("select file_name from raw.survey_files order by 1").fetchall() == sorted(
        [(stored,), (GOOD_NAME,)]
    )


def test_names_that_differ_in_a_byte_of_another_encoding_stay_two_files(con, landing, tmp_path):
    # März and Mörz in Latin-1: as U+FFFD both were Umfrage_M\ufffdrz.csv, and the second
    # replaced the first's figures as its earlier version.
    first = os.fsdecode(b"Umfrage_M\xe4rz.csv")
    second = os.fsdecode(b"Umfrage_M\xf6rz.csv")
    (landing / first).write_text(HEADER + GOOD_ROW)
    os.utime(landing / first, (1_700_000_000, 1_700_000_000))
    (landing / second).write_text(HEADER + GOOD_ROW.replace("FR", "IT"))

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    assert {outcomes[first].status, outcomes[second].status} == {"loaded"}
    assert con.execute("select file_name from raw.survey_files order by 1").fetchall() == [
        ("Umfrage_M\\xe4rz.csv",),
        ("Umfrage_M\\xf6rz.csv",),
    ]
    assert con.execute("select scope from raw.survey_results order by 1").fetchall() == [
        ("FR",),
        ("IT",),
    ]


# --- the real DAG: bad files never fail the run -------------------------------------------


@pytest.mark.e2e
def test_survey_ingest_dag_succeeds_and_quarantines_whatever_lands(tmp_path):
    from social_leadership.local_airflow import airflow_environment, run_dags

    data_dir = tmp_path / "data"
    survey_dir = data_dir / "landing" / "surveys"
    survey_dir.mkdir(parents=True)
    for case in ("random_xlsx", "truncated_parquet", "truncated_csv_gz", "binary_csv"):
        name, content, _, _ = UNREADABLE[case]
        (survey_dir / name).write_bytes(content)
    (survey_dir / "link.csv").symlink_to(tmp_path / "missing.csv")
    latin1_name = os.fsdecode("r\u00e9sum\u00e9.csv".encode("latin-1"))
    (survey_dir / latin1_name).write_text(HEADER + GOOD_ROW.replace("FR", "Atlantis"))
    (survey_dir / "figures.csv").write_text(HEADER + GOOD_ROW)
    env = airflow_environment(
        tmp_path / "airflow_home",
        {"SLW_DATA_DIR": str(data_dir), "SLW_PSEUDONYM_KEY": KEY.decode()},
    )

    run_dags(["survey_ingest"], env, tmp_path / "logs")

    # On the first try: a retry would hide a file that fails the task (and wait for it).
    with sqlite3.connect(tmp_path / "airflow_home" / "airflow.db") as meta:
        tries = meta.execute(
            "select task_id, try_number, state from task_instance "
            "where dag_id = 'survey_ingest' and task_id = 'ingest_surveys'"
        ).fetchall()
    assert tries == [("ingest_surveys", 1, "success")]

    reports = list((data_dir / "quarantine" / "surveys").glob("*/report.json"))
    assert len(reports) == 6
    assert sorted(p.name for p in survey_dir.iterdir()) == ["figures.csv"]
    warehouse = data_dir / "warehouse" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute(
            "select count(*) from raw.survey_results where source_id = 'acme'"
        ).fetchone() == (1,)


PARQUET_BOMB_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    import duckdb
    import pyarrow as pa
    from social_leadership.surveys import ingest_folder
    from social_leadership.warehouse import ensure_schema

    warehouse, landing, quarantine = map(Path, sys.argv[1:4])
    con = duckdb.connect(str(warehouse))
    ensure_schema(con)
    outcomes = ingest_folder(
        con, landing, quarantine, include_bundled=False, pseudonym_key=b"k" * 20
    )
    print(json.dumps({
        "outcomes": {o.file: [o.status, [i.reason for i in o.issues][:3]] for o in outcomes},
        "arrow_peak": pa.default_memory_pool().max_memory(),
        "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))
    """
)


def _parquet_of_repeats(path: Path, rows: int, text: str) -> None:
    """Published columns whose every row repeats one value: dictionary and run-length
    encoding store each column in a few bytes, however many rows and however long the text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def repeated(value: str) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([value]))

    pq.write_table(
        pa.table(
            {
                "source_id": repeated("acme"),
                "source_name": repeated(text),
                "wave": pa.array([2022] * rows),
                "scope": repeated("FR"),
                "question_id": repeated("q1"),
                "question_text": repeated(text),
                "value": pa.array([40.0] * rows),
            }
        ),
        path,
        compression="zstd",
    )


def test_a_parquet_file_that_decodes_past_the_size_limit_is_quarantined_unread(tmp_path):
    """Before: a 2 KB Parquet file whose dictionary repeats a 100,000-character text 2,000
    times was decoded whole (hundreds of MB; at 20,000 rows a MemoryError, taken for a fault
    of the machine, failed the task on every retry), and one of a few KB holding millions of
    rows was turned into Python cells one by one. Both count as a CSV file of their content
    would, against SLW_SURVEY_MAX_FILE_BYTES, before anything is decoded."""
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / GOOD_NAME).write_text(HEADER + GOOD_ROW)
    _parquet_of_repeats(landing / "long_texts.parquet", 2_000, "x" * 100_000)
    _parquet_of_repeats(landing / "many_rows.parquet", 2_000_000, "Acme")
    for bomb in ("long_texts.parquet", "many_rows.parquet"):
        assert (landing / bomb).stat().st_size < 64 << 10
    limit = 8 << 20
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT / "include"),
        "SLW_SURVEY_MAX_FILE_BYTES": str(limit),
    }

    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            PARQUET_BOMB_SCRIPT,
            str(tmp_path / "warehouse.duckdb"),
            str(landing),
            str(tmp_path / "quarantine"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )

    result = json.loads(completed.stdout.strip().splitlines()[-1])
    outcomes = result["outcomes"]
    assert outcomes[GOOD_NAME][0] == "loaded"
    for bomb in ("long_texts.parquet", "many_rows.parquet"):
        status, reasons = outcomes[bomb]
        assert status == "quarantined"
        assert f"over the limit of {limit} bytes (SLW_SURVEY_MAX_FILE_BYTES)" in reasons[0]
    assert result["arrow_peak"] < 32 << 20, result["arrow_peak"]


def test_a_parquet_file_with_text_stored_as_bytes_loads_the_text(con, landing, tmp_path):
    """Writers that store text as plain BYTE_ARRAY (no UTF-8 annotation) hand pyarrow bytes:
    before, their repr was stored ("b'acme'" as the source id). Other columns of any kind
    (nested, binary) that the contract does not name still do not stop the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "source_id": pa.array([b"acme_bytes"], pa.binary()),
                "source_name": pa.array(["Acmé Bytes".encode()], pa.binary()),
                "wave": [2023],
                "scope": pa.array([b"DE"], pa.binary()),
                "question_id": pa.array([b"q1"], pa.binary()),
                "value": pa.array([b"41"], pa.binary()),
                "tags": pa.array([["a", "b"]]),
                "blob": pa.array([b"\x00\xff"], pa.binary()),
            }
        ),
        landing / "bytes.parquet",
    )

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    assert outcomes["bytes.parquet"].status == "loaded", outcomes["bytes.parquet"].issues
    assert con.execute(
        "select source_id, source_name, scope, value from raw.survey_results "
        "where file_name = 'bytes.parquet'"
    ).fetchall() == [("acme_bytes", "Acmé Bytes", "DE", 41.0)]


def _xlsx_with_sheet(rows_xml: str) -> bytes:
    """A workbook whose first sheet is ``rows_xml`` (``<row>`` elements) as written."""
    template = zipfile.ZipFile(io.BytesIO(_xlsx_bytes([["source_id"]])))
    members = {info.filename: template.read(info.filename) for info in template.infolist()}
    members["xl/worksheets/sheet1.xml"] = (
        '<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main"><sheetData>{rows_xml}</sheetData></worksheet>'
    ).encode()
    return _zip_bytes(members)


def _sheet_row(number: int, cells: dict[str, object]) -> str:
    def cell(column: str, value: object) -> str:
        where = f"{column}{number}"
        if isinstance(value, str):
            return f'<c r="{where}" t="inlineStr"><is><t>{value}</t></is></c>'
        return f'<c r="{where}"><v>{value}</v></c>'

    return f'<row r="{number}">' + "".join(cell(c, v) for c, v in cells.items()) + "</row>"


SHEET_HEADER = dict(
    zip(
        "ABCDEF", ["source_id", "source_name", "wave", "scope", "question_id", "value"], strict=True
    )
)


def _sheet_figure(number: int) -> dict[str, object]:
    return dict(zip("ABCDEF", ["acme_xlsx", "Acme", 2022, "DE", f"q{number}", 40], strict=True))


def test_an_xlsx_row_numbered_past_the_last_sheet_row_is_quarantined_at_once(
    con, landing, tmp_path
):
    """A row element may carry any number; openpyxl hands out an empty row for every number
    skipped. Before: a 3 KB file whose second row is numbered 5,000,000 took many seconds
    (numbered in the billions: hours, with the warehouse pool held)."""
    rows = _sheet_row(1, SHEET_HEADER) + _sheet_row(2, _sheet_figure(2))
    rows += _sheet_row(5_000_000, {"A": "acme_xlsx"})
    (landing / "far.xlsx").write_bytes(_xlsx_with_sheet(rows))

    started = time.perf_counter()
    outcomes = _ingest(con, landing, tmp_path / "quarantine")
    elapsed = time.perf_counter() - started

    assert "past row 1048576" in _reasons(_report(outcomes["far.xlsx"]))
    assert elapsed < 6, elapsed
    _assert_good_file_loaded(con, outcomes)


def test_an_xlsx_row_with_a_cell_far_right_of_the_header_costs_only_the_header_width(
    con, landing, tmp_path
):
    """openpyxl fills a row up to its last cell: one cell in column XFD makes 16,384. Before:
    1,500 such rows (a 30 KB file) held 200 MB of empty cells; cells right of the header
    are no column of the table, and are not read."""
    rows = _sheet_row(1, SHEET_HEADER) + "".join(
        _sheet_row(n, {**_sheet_figure(n), "XFD": 1}) for n in range(2, 1502)
    )
    (landing / "wide.xlsx").write_bytes(_xlsx_with_sheet(rows))

    outcomes, peak = _peak_python_memory(lambda: _ingest(con, landing, tmp_path / "quarantine"))

    assert outcomes["wide.xlsx"].status == "loaded", outcomes["wide.xlsx"].issues
    assert outcomes["wide.xlsx"].rows_loaded == 1500
    assert peak < 48 << 20, f"peak {peak / 1e6:.0f} MB"


def test_an_xlsx_table_of_more_cells_than_the_xlsx_limit_has_bytes_is_quarantined(
    con, landing, tmp_path, monkeypatch
):
    """A header cell in column XFD makes every row of the table 16,384 cells wide, however
    few the sheet holds: the table may hold as many cells as the XLSX limit allows bytes."""
    monkeypatch.setenv("SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES", str(1 << 20))
    rows = _sheet_row(1, {**SHEET_HEADER, "XFD": "note"}) + "".join(
        _sheet_row(n, {"XFD": 1}) for n in range(2, 1502)
    )
    (landing / "wide_header.xlsx").write_bytes(_xlsx_with_sheet(rows))

    outcomes, peak = _peak_python_memory(lambda: _ingest(con, landing, tmp_path / "quarantine"))

    reasons = _reasons(_report(outcomes["wide_header.xlsx"]))
    assert "cells" in reasons
    assert "SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES" in reasons
    assert peak < 48 << 20, f"peak {peak / 1e6:.0f} MB"
    _assert_good_file_loaded(con, outcomes)


def test_a_sidecar_nested_too_deeply_for_json_is_reported_on_the_sidecar(con, landing, tmp_path):
    """Before: Python's JSON reader ran out of recursion, and the report blamed the data
    file ("cannot be read as CSV (RecursionError ...)")."""
    (landing / "figures.csv").write_text(HEADER + GOOD_ROW.replace("acme", "acme_deep"))
    (landing / "figures.survey.json").write_text("[" * 200_000)

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    report = _report(outcomes["figures.csv"])
    assert [(i["file"], i["reason"][:9]) for i in report["issues"]] == [
        ("figures.survey.json", "not JSON:")
    ]
    _assert_good_file_loaded(con, outcomes)


# --- 4. a file too large for the intake never stops it ------------------------------------


def _published_rows(count: int) -> str:
    # Questions of their own: the good file's figure (q1) stays its own.
    return "".join(f"acme,Acme,2022,FR,p{n},Question {n},share_pct,40,,,x\n" for n in range(count))


def _count_lines_read(monkeypatch) -> list[int]:
    """The lines the survey CSV reader takes from its files, counted as they are read."""
    from social_leadership.surveys.formats import delimited

    counted = [0]
    opened = delimited.open_text

    class Counting:
        def __init__(self, text):
            self._text = text

        def __iter__(self):
            return self

        def __next__(self):
            line = next(self._text)
            counted[0] += 1
            return line

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._text.close()

        def __getattr__(self, name):
            return getattr(self._text, name)

    monkeypatch.setattr(delimited, "open_text", lambda *args: Counting(opened(*args)))
    return counted


def test_a_file_without_the_published_columns_is_refused_from_its_header(
    con, landing, tmp_path, monkeypatch
):
    # A survey tool's respondent export without its sidecar (no respondent_id column to
    # tell it): 300 MB of it took 4.4 GB and minutes to be told a column is missing.
    rows = "".join(f"R_{n:08d},DE,1.0,4,5,3,2\n" for n in range(100_000))
    (landing / "export.csv").write_text("ResponseId,Country,Weight,Q1,Q2,Q3,Q4\n" + rows)
    lines = _count_lines_read(monkeypatch)

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    reasons = _reasons(_report(outcomes["export.csv"]))
    assert "required column missing" in reasons
    assert "declare respondent microdata and its questions" in reasons
    # The header's search window and the good file's two lines, not the export's rows.
    assert lines[0] < 1000, lines
    _assert_good_file_loaded(con, outcomes)


def test_a_parquet_file_without_the_published_columns_is_refused_from_its_schema(
    con, landing, tmp_path, monkeypatch
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    export = pa.table({"ResponseId": [f"R_{n}" for n in range(1000)], "Q1": [4] * 1000})
    pq.write_table(export, landing / "export.parquet")

    def read_whole(*args, **kwargs):
        raise AssertionError("the export's rows were read")

    monkeypatch.setattr(pq, "read_table", read_whole)

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    assert "required column missing" in _reasons(_report(outcomes["export.parquet"]))
    _assert_good_file_loaded(con, outcomes)


@pytest.mark.parametrize(("name", "said"), [("large.csv", "is"), ("large.csv.gz", "expands to")])
def test_a_published_file_past_its_size_limit_is_refused_before_its_rows_are_read(
    con, landing, tmp_path, monkeypatch, name, said
):
    monkeypatch.setenv("SLW_SURVEY_MAX_PUBLISHED_BYTES", "100000")
    content = (HEADER + _published_rows(5000)).encode()
    path = landing / name
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    lines = _count_lines_read(monkeypatch)

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    reasons = _reasons(_report(outcomes[name]))
    assert (
        f"{said} {len(content)} bytes, over the 100000 bytes a table of published figures "
        "may hold (SLW_SURVEY_MAX_PUBLISHED_BYTES)"
    ) in reasons
    stem = name.removesuffix(".gz").removesuffix(".csv")
    assert f"Respondent data needs its sidecar {stem}.survey.json" in reasons
    assert lines[0] < 1000, lines
    _assert_good_file_loaded(con, outcomes)


def test_a_published_file_within_the_size_limit_still_loads(con, landing, tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_SURVEY_MAX_PUBLISHED_BYTES", "100000")
    (landing / "figures.csv").write_text(HEADER + _published_rows(1000))

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    assert outcomes["figures.csv"].status == "loaded"
    assert outcomes["figures.csv"].rows_loaded == 1000


_DIES_READING = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    import duckdb
    from survey_microdata import KEY

    from social_leadership.surveys import ingest_folder, published
    from social_leadership.warehouse import ensure_schema

    landing, quarantine, warehouse = map(Path, sys.argv[1:])
    parse = published.parse_published_table

    def dies_on_large(name, *args, **kwargs):
        if name == "large.csv":
            # As the kernel kills a process out of memory: no handler, no finally.
            os.kill(os.getpid(), signal.SIGKILL)
        return parse(name, *args, **kwargs)

    published.parse_published_table = dies_on_large
    con = duckdb.connect(str(warehouse))
    ensure_schema(con)
    ingest_folder(con, landing, quarantine, include_bundled=False, pseudonym_key=KEY)
    """
)


def _die_reading_large_csv(landing: Path, quarantine: Path, tmp_path: Path) -> None:
    """Run the intake in a process killed (SIGKILL) as it reads ``large.csv``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "include"), str(Path(__file__).parent)]),
    }
    script = tmp_path / "dies_reading.py"
    script.write_text(_DIES_READING)
    died = subprocess.run(
        [sys.executable, str(script), str(landing), str(quarantine), str(tmp_path / "died.duckdb")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert died.returncode == -9, died.stderr


def test_a_file_the_intake_died_reading_is_quarantined_by_the_next_run(con, landing, tmp_path):
    quarantine = tmp_path / "quarantine"
    large = landing / "large.csv"
    large.write_text(HEADER + _published_rows(20))
    # Landed before the good file: read first, so the good file waits behind it.
    os.utime(large, ns=(1, 1))
    _die_reading_large_csv(landing, quarantine, tmp_path)
    assert large.exists()

    outcomes = _ingest(con, landing, quarantine)

    report = _report(outcomes["large.csv"])
    assert [(i["row"], i["column"]) for i in report["issues"]] == [(0, "*")]
    reasons = _reasons(report)
    assert "the survey intake's process died while reading this file" in reasons
    assert "move the file back to the landing folder to read it again" in reasons
    assert not large.exists()
    _assert_good_file_loaded(con, outcomes)
    assert not (quarantine / "surveys" / ".reading.json").exists()


def test_a_new_version_of_a_file_the_intake_died_reading_is_read(con, landing, tmp_path):
    quarantine = tmp_path / "quarantine"
    large = landing / "large.csv"
    large.write_text(HEADER + _published_rows(20))
    os.utime(large, ns=(1, 1))
    _die_reading_large_csv(landing, quarantine, tmp_path)
    large.write_text(HEADER + _published_rows(10))
    os.utime(large, ns=(2, 2))

    outcomes = _ingest(con, landing, quarantine)

    assert outcomes["large.csv"].status == "loaded"
    assert outcomes["large.csv"].rows_loaded == 10
    _assert_good_file_loaded_beside(con, outcomes, 10)


def _assert_good_file_loaded_beside(con, outcomes: dict, others: int) -> None:
    assert outcomes[GOOD_NAME].status == "loaded"
    assert con.execute(
        "select count(*) from raw.survey_results where file_name = $name", {"name": GOOD_NAME}
    ).fetchone() == (1,)
    assert con.execute("select count(*) from raw.survey_results").fetchone() == (others + 1,)


def test_a_file_that_runs_the_intake_out_of_memory_is_quarantined_and_the_others_load(
    con, landing, tmp_path, monkeypatch
):
    from social_leadership.surveys import published

    parse = published.parse_published_table

    def out_of_memory_on_large(name, *args, **kwargs):
        if name == "large.csv":
            raise MemoryError
        return parse(name, *args, **kwargs)

    monkeypatch.setattr(published, "parse_published_table", out_of_memory_on_large)
    large = landing / "large.csv"
    large.write_text(HEADER + _published_rows(20))
    os.utime(large, ns=(1, 1))

    outcomes = _ingest(con, landing, tmp_path / "quarantine")

    reasons = _reasons(_report(outcomes["large.csv"]))
    size = len(HEADER + _published_rows(20))
    assert f"the survey intake ran out of memory reading the file ({size} bytes)" in reasons
    _assert_good_file_loaded(con, outcomes)


def test_a_file_loaded_before_is_not_noted_as_read_at_each_run(con, landing, tmp_path, monkeypatch):
    # Loaded files stay in the landing folder and are hashed again at every run: noted then,
    # a restart during the hash quarantined a file whose rows were in the warehouse.
    quarantine = tmp_path / "quarantine"
    (landing / "figures.csv").write_text(HEADER + _published_rows(3))
    assert _ingest(con, landing, quarantine)["figures.csv"].status == "loaded"
    noted: list[str] = []
    reading = ingest.reading

    def recorded(path: Path, record_dir: Path):
        noted.append(path.name)
        return reading(path, record_dir)

    monkeypatch.setattr(ingest, "reading", recorded)

    assert _ingest(con, landing, quarantine)["figures.csv"].status == "unchanged"
    assert noted == []
    (landing / "more.csv").write_text(HEADER + _published_rows(2).replace(",p", ",r"))
    assert _ingest(con, landing, quarantine)["more.csv"].status == "loaded"
    assert noted == ["more.csv"]
