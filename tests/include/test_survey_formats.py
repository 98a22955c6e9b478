"""Survey formats in one registry keyed by suffix, and each respondent rule written once for
both load paths (issue 10, point 4).

A format added to the registry is listed, checked, read, loaded and quarantined by the
intake with nothing else edited; every rule makes the one-pass load decline and the staged
path report that rule's column.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from survey_microdata import KEY, microdata_frame, sidecar, write_microdata

from social_leadership.surveys import ingest_folder, load_file, microdata
from social_leadership.surveys.common import SurveyValidationError
from social_leadership.surveys.formats import FORMATS, format_of
from social_leadership.surveys.microdata.rules import row_rules
from social_leadership.warehouse import ensure_schema

SURVEYS = Path(__file__).resolve().parents[2] / "include" / "social_leadership" / "surveys"
PUBLISHED = (
    "source_id\tsource_name\twave\tscope\tquestion_id\tvalue\n"
    "acme\tAcme\t2024\tFR\tq1\t40\n"
    "acme\tAcme\t2024\tDE\tq1\t35\n"
)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_schema(connection)
    yield connection
    connection.close()


@pytest.fixture
def dat_format(monkeypatch):
    """A ninth survey format, registered as a new one would be: its registry entry only."""
    entry = replace(FORMATS[".csv"], suffix=".dat", kind="data text", one_pass=False)
    monkeypatch.setitem(FORMATS, ".dat", entry)
    return entry


def test_a_format_added_to_the_registry_is_listed_loaded_and_quarantined(dat_format, con, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "figures.dat").write_text(PUBLISHED, encoding="utf-8")
    frame = microdata_frame(seed=3, per_country=10)
    panel = landing / "panel.csv"
    write_microdata(frame, panel, sidecar(), german=False)
    frame.to_csv(landing / "panel.dat", sep="\t", index=False)
    panel.unlink()  # its sidecar, panel.survey.json, stays for panel.dat
    (landing / "broken.dat").write_text(PUBLISHED.replace("\t40\n", "\tmany\n"))
    (landing / "broken.survey.json").write_text(json.dumps({"shape": "published"}))

    outcomes = {
        o.file: o
        for o in ingest_folder(
            con, landing, tmp_path / "quarantine", include_bundled=False, pseudonym_key=KEY
        )
    }

    assert (outcomes["figures.dat"].status, outcomes["figures.dat"].rows_loaded) == ("loaded", 2)
    assert (outcomes["panel.dat"].shape, outcomes["panel.dat"].rows_loaded) == (
        "microdata",
        len(frame),
    )
    broken = outcomes["broken.dat"]
    assert broken.status == "quarantined"
    assert [(i.row, i.column) for i in broken.issues] == [(2, "value")]
    kept = Path(broken.report_path).parent
    assert {p.name for p in kept.iterdir()} == {"report.json", "broken.dat", "broken.survey.json"}


def test_a_registered_format_names_itself_in_a_report(dat_format, tmp_path):
    from social_leadership.surveys.boundary import unreadable_reason

    reason = unreadable_reason(tmp_path / "x.dat", ValueError("bad bytes"))

    assert reason == "cannot be read as data text (ValueError: bad bytes)"
    assert format_of(tmp_path / "wave.CSV.GZ").kind == "gzip-compressed CSV"


def test_no_survey_module_chooses_by_suffix_but_the_registry():
    """Reading by format goes through the registry: no if-chain on suffixes elsewhere."""
    suffix_tests = [
        f"{path.relative_to(SURVEYS)}:{number}"
        for path in sorted(SURVEYS.rglob("*.py"))
        if "formats" not in path.relative_to(SURVEYS).parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(f'endswith("{s}' in line.lower() for s in (".csv", ".xlsx", ".parquet", ".gz"))
    ]
    assert suffix_tests == []


# --- each rule written once, both paths ----------------------------------------------------


def _one_fault(frame, rule_column: str):
    """The frame with exactly one row breaking the rule on ``rule_column``."""
    broken = frame.copy()
    faults = {
        "resp": ("resp", "   "),
        "land": ("land", "Atlantis"),
        "gewicht": ("gewicht", -1.0),
        "q1": ("q1", 12.0),
        "q2": ("q2", 2.5),
    }
    column, value = faults[rule_column]
    broken[column] = broken[column].astype(object)
    broken.loc[3, column] = value
    return broken


RULE_COLUMNS = [rule.column for rule in row_rules(microdata.parse_declaration("s", sidecar()))]


@pytest.mark.parametrize("column", sorted(set(RULE_COLUMNS)))
def test_every_rule_stops_the_one_pass_load_and_is_reported_by_the_staged_path(
    column, con, tmp_path
):
    frame = _one_fault(microdata_frame(seed=5, per_country=8), column)
    path = write_microdata(frame, tmp_path / "panel.csv", sidecar(), german=False)
    decl = microdata.parse_declaration("panel.survey.json", sidecar())

    with pytest.raises((duckdb.Error, microdata.FastPathDeclined)):
        microdata.insert_fast(con, path, decl, KEY, sha="x", loaded_at=datetime.now(UTC))
    with pytest.raises(SurveyValidationError) as raised:
        load_file(con, path, pseudonym_key=KEY)

    assert [(issue.row, issue.column) for issue in raised.value.issues] == [(5, column)]
    assert con.execute("select count(*) from raw.survey_respondent_answers").fetchone() == (0,)


def test_the_rules_cover_every_declared_column_but_free_text():
    decl = microdata.parse_declaration("s", sidecar())

    assert set(RULE_COLUMNS) == set(decl.file_columns())
