"""Cells written for people are neutralised against formula injection, in Python and SQL."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from social_leadership.safe_csv import neutralise_cell, neutralised_sql, write_csv

CELLS = [
    ('=HYPERLINK("https://evil.example/","open")', '\'=HYPERLINK("https://evil.example/","open")'),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("@LeaderTalks", "'@LeaderTalks"),
    ("-", "'-"),
    ("-5", "-5"),
    ("+3.5", "+3.5"),
    ("-.5e-3", "-.5e-3"),
    ("-٣", "'-٣"),
    ("JoeKaeser", "JoeKaeser"),
    ("a=b", "a=b"),
    ("", ""),
]


@pytest.mark.parametrize(("cell", "expected"), CELLS)
def test_python_and_sql_neutralise_the_same_cells(cell: str, expected: str) -> None:
    assert neutralise_cell(cell) == expected
    with duckdb.connect() as con:
        row = con.execute(f"select {neutralised_sql('$cell')}", {"cell": cell}).fetchone()
    assert row == (expected,)


def test_values_that_are_not_text_are_left_alone() -> None:
    assert neutralise_cell(-5) == -5
    assert neutralise_cell(None) is None
    with duckdb.connect() as con:
        assert con.execute(f"select {neutralised_sql('null')}").fetchone() == (None,)


def test_write_csv_neutralises_every_cell_and_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"

    write_csv(target, ["name", "=count"], [["=HYPERLINK(1)", 3], ["ok", "-4"]])

    with target.open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["name", "'=count"],
            ["'=HYPERLINK(1)", "3"],
            ["ok", "-4"],
        ]
    assert [path.name for path in tmp_path.iterdir()] == ["report.csv"]
