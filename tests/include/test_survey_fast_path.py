"""The one-pass CSV load never gives another result than the staged path would.

Each case edits one clean UTF-8 export (a cell, or the file's structure) and loads it twice
into fresh warehouses: as usual, and with the one-pass path switched off. Both must store
the same rows, or reject the file with the same file, row, column and reason.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from survey_microdata import KEY, microdata_frame, sidecar, write_microdata

from social_leadership.surveys import load_file, microdata
from social_leadership.surveys.common import SurveyValidationError
from social_leadership.surveys.formats import read_sidecar
from social_leadership.surveys.microdata.fast import FAST_BLOCK_BYTES
from social_leadership.warehouse import ensure_schema

EDITED_LINE = 7  # the sixth respondent (line 1 is the header)
COLUMNS = ["resp", "land", "gewicht", "q1", "q2", "kommentar"]

CELLS = [
    ("q1", "7.5"),
    ("q1", " 7"),
    ("q1", "7 "),
    ("q1", "+7"),
    ("q1", "7."),
    ("q1", "1e0"),
    ("q1", "NaN"),
    ("q1", "inf"),
    ("q1", "NA"),
    ("q1", "null"),
    ("q1", "0x7"),
    ("q1", "1_0"),
    ("q1", "\uff17"),
    ("q1", '""'),
    ("q1", '"7"'),
    ("gewicht", ".5"),
    ("gewicht", "1e-3"),
    ("gewicht", "Infinity"),
    ("gewicht", "-0"),
    ("gewicht", ""),
    ("gewicht", "0,5"),
    ("resp", '"  r9-9 "'),
    ("resp", "\tr9-9"),
    ("resp", '"r,9"'),
    ("resp", '""'),
    ("resp", "NA"),
    ("resp", "\u00a0r9-9\u3000"),
    ("resp", "\u00a0"),
    ("resp", ' "r9-9"'),
    ("resp", '"r9-9"x'),
    ("resp", "r0-1"),
    ("resp", "r0-1\u00a0"),
    ("land", "deutschland"),
    ("land", " UK"),
    ("land", "DEUTSCHLAND"),
    ("land", "Welt"),
    ("land", ""),
    ("land", "NULL"),
    ("kommentar", '"two\nlines, one cell"'),
    ("kommentar", '"say ""hi"""'),
    ("kommentar", '"a"b'),
    ("kommentar", 'a"b'),
]


def _clean_lines(tmp_path: Path) -> list[str]:
    frame = microdata_frame(seed=21, per_country=6)[COLUMNS]
    path = write_microdata(frame, tmp_path / "clean.csv", sidecar(), german=False)
    return path.read_text(encoding="utf-8").splitlines()


def _write(tmp_path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / "panel.csv"
    path.write_bytes(text.encode(encoding))
    (tmp_path / "panel.survey.json").write_text(
        (tmp_path / "clean.survey.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return path


def _outcome(path: Path, database: Path) -> tuple[str, list]:
    con = duckdb.connect(str(database))
    ensure_schema(con)
    try:
        load_file(con, path, pseudonym_key=KEY)
        return "loaded", con.execute(
            "select wave, country_code, respondent_key, weight, answers "
            "from raw.survey_respondent_answers order by respondent_key"
        ).fetchall()
    except SurveyValidationError as exc:
        return "rejected", [(i.file, i.row, i.column, i.reason) for i in exc.issues]
    finally:
        con.close()


def _both_ways(tmp_path: Path, path: Path, monkeypatch) -> tuple[tuple, tuple, bool]:
    calls = []
    real = microdata.insert_fast

    def spy(*args, **kwargs):
        calls.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(microdata, "insert_fast", spy)
    usual = _outcome(path, tmp_path / "usual.duckdb")
    fast_path_succeeded = bool(calls) and usual[0] == "loaded" and not _staged_was_needed(path)

    def declined(*args, **kwargs):
        raise microdata.FastPathDeclined("switched off for the comparison")

    monkeypatch.setattr(microdata, "insert_fast", declined)
    staged = _outcome(path, tmp_path / "staged.duckdb")
    return usual, staged, fast_path_succeeded


def _staged_was_needed(path: Path) -> bool:
    """Whether the one-pass path declines this file (run alone, in a scratch warehouse)."""
    con = duckdb.connect()
    ensure_schema(con)
    decl = microdata.parse_declaration(
        "panel.survey.json", read_sidecar(path.with_name("panel.survey.json"))
    )
    try:
        microdata.insert_fast(con, path, decl, KEY, sha="x", loaded_at=datetime.now(UTC))
    except Exception:
        return True
    finally:
        con.close()
    return False


@pytest.mark.parametrize(("column", "cell"), CELLS)
def test_a_cell_loads_or_fails_as_the_staged_path_says(tmp_path, monkeypatch, column, cell):
    lines = _clean_lines(tmp_path)
    cells = lines[EDITED_LINE - 1].split(",")
    cells[COLUMNS.index(column)] = cell
    lines[EDITED_LINE - 1] = ",".join(cells)
    path = _write(tmp_path, "\n".join(lines) + "\n")

    usual, staged, _ = _both_ways(tmp_path, path, monkeypatch)

    assert usual == staged


@pytest.mark.parametrize(
    "structure",
    [
        "blank line",
        "trailing blank lines",
        "leading blank line",
        "crlf",
        "one crlf",
        "bom",
        "short row",
        "long row",
        "no newline",
        "header repeats a column",
    ],
)
def test_file_structure_loads_or_fails_as_the_staged_path_says(tmp_path, monkeypatch, structure):
    lines = _clean_lines(tmp_path)
    newline, tail, encoding = "\n", "\n", "utf-8"
    if structure == "blank line":
        lines.insert(EDITED_LINE - 1, "")
    elif structure == "trailing blank lines":
        tail = "\n\n\n"
    elif structure == "leading blank line":
        lines.insert(0, "")
    elif structure == "crlf":
        newline, tail = "\r\n", "\r\n"
    elif structure == "one crlf":
        lines[EDITED_LINE - 1] += "\r"
    elif structure == "header repeats a column":
        lines = [line + ",5" for line in lines]
        lines[0] = lines[0].removesuffix(",5") + ",Q1"
    elif structure == "bom":
        encoding = "utf-8-sig"
    elif structure == "short row":
        lines[EDITED_LINE - 1] = lines[EDITED_LINE - 1].rsplit(",", 1)[0]
    elif structure == "long row":
        lines[EDITED_LINE - 1] += ",extra"
    elif structure == "no newline":
        tail = ""
    path = _write(tmp_path, newline.join(lines) + tail, encoding=encoding)

    usual, staged, _ = _both_ways(tmp_path, path, monkeypatch)

    assert usual == staged


def test_clean_files_take_the_one_pass_path_in_one_or_many_waves(tmp_path, monkeypatch):
    frame = microdata_frame(seed=22, per_country=8)
    frame["wave"] = 2024
    earlier = frame.copy()
    earlier["wave"] = 2023
    frame = pd.concat([earlier, frame], ignore_index=True)  # every respondent in both waves
    path = write_microdata(frame, tmp_path / "panel.csv", sidecar(wave=None), german=False)

    usual, staged, fast = _both_ways(tmp_path, path, monkeypatch)

    assert fast, "a clean file must load in one pass"
    assert usual == staged
    assert usual[0] == "loaded"
    assert {row[0] for row in usual[1]} == {2023, 2024}
    assert len(usual[1]) == len(frame)


@pytest.mark.parametrize(
    "cell", ["2024.0", "", "NaN", "inf", "-inf", "1e300", "-9.3e18", "2024.5", "1989"]
)
def test_a_wave_cell_loads_or_fails_as_the_staged_path_says(tmp_path, monkeypatch, cell):
    # The one-pass load mixes each block's waves into its keys as DuckDB takes the block,
    # before the rules check the rows: a cell that is no survey year must still fail as the
    # staged path says, without a numpy warning on the way.
    frame = microdata_frame(seed=21, per_country=6)[COLUMNS]
    frame.insert(1, "wave", 2024)
    path = write_microdata(frame, tmp_path / "panel.csv", sidecar(wave=None), german=False)
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[EDITED_LINE - 1].split(",")
    cells[1] = cell
    lines[EDITED_LINE - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        usual, staged, fast = _both_ways(tmp_path, path, monkeypatch)

    assert usual == staged
    assert [str(w.message) for w in seen if issubclass(w.category, RuntimeWarning)] == []
    if cell == "2024.0":
        assert fast, "a whole-number wave written with a decimal point loads in one pass"
        assert {row[0] for row in usual[1]} == {2024}
    else:
        assert usual[0] == "rejected"
        assert [issue[1:3] for issue in usual[1]] == [(EDITED_LINE, "wave")]


def test_a_repeat_within_a_wave_is_found_in_one_or_many_waves(tmp_path, monkeypatch):
    frame = microdata_frame(seed=23, per_country=8)
    frame["wave"] = [2023 + i % 2 for i in range(len(frame))]
    frame.loc[9, ["resp", "wave"]] = [frame.loc[3, "resp"], frame.loc[3, "wave"]]
    path = write_microdata(frame, tmp_path / "panel.csv", sidecar(wave=None), german=False)

    usual, staged, _ = _both_ways(tmp_path, path, monkeypatch)

    assert usual == staged
    assert usual[0] == "rejected"
    assert [issue[1:3] for issue in usual[1]] == [(11, "resp")]


def test_rows_with_a_wrong_number_of_fields_are_reported_by_line(tmp_path, monkeypatch):
    lines = _clean_lines(tmp_path)
    lines[EDITED_LINE - 1] = lines[EDITED_LINE - 1].rsplit(",", 1)[0]
    lines[EDITED_LINE + 1] += ",extra"
    path = _write(tmp_path, "\n".join(lines) + "\n")

    usual, staged, _ = _both_ways(tmp_path, path, monkeypatch)

    assert (
        usual
        == staged
        == (
            "rejected",
            [
                ("panel.csv", EDITED_LINE, "*", "has 5 fields; the header has 6"),
                ("panel.csv", EDITED_LINE + 2, "*", "has 7 fields; the header has 6"),
            ],
        )
    )


def test_a_repeated_header_column_is_named(tmp_path, monkeypatch):
    lines = [line + ",5" for line in _clean_lines(tmp_path)]
    lines[0] = lines[0].removesuffix(",5") + ",Q1"
    path = _write(tmp_path, "\n".join(lines) + "\n")

    usual, _, _ = _both_ways(tmp_path, path, monkeypatch)

    assert usual == ("rejected", [("panel.csv", 1, "q1", "declared column appears 2 times")])


def test_a_row_larger_than_a_parse_block_still_loads(tmp_path, monkeypatch):
    lines = _clean_lines(tmp_path)
    cells = lines[EDITED_LINE - 1].split(",")
    cells[COLUMNS.index("kommentar")] = "x" * (FAST_BLOCK_BYTES + 10)
    lines[EDITED_LINE - 1] = ",".join(cells)
    path = _write(tmp_path, "\n".join(lines) + "\n")

    usual, staged, _ = _both_ways(tmp_path, path, monkeypatch)

    assert usual == staged
    assert usual[0] == "loaded"
    assert len(usual[1]) == len(lines) - 1
