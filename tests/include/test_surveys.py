"""Published survey figures: validation, quarantine, idempotency, replacement."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from social_leadership.surveys import (
    BUNDLED_PUBLISHED_FILE,
    SurveyValidationError,
    ingest_folder,
    load_published_file,
    parse_published_csv,
)
from social_leadership.warehouse import ensure_schema

HEADER = (
    "source_id,source_name,wave,scope,question_id,question_text,measure,value,"
    "sample_size,margin_of_error_pct,citation\n"
)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_schema(connection)
    yield connection
    connection.close()


def test_bundled_file_has_every_reference_figure_with_its_source():
    frame = parse_published_csv(BUNDLED_PUBLISHED_FILE)
    assert len(frame) == 10
    assert frame["citation"].str.len().min() > 0
    de_stand = frame[(frame["scope"] == "DE") & (frame["question_id"] == "ceo_clear_stand")]
    assert de_stand["value"].tolist() == [76.0]
    assert de_stand["wave"].tolist() == [2019]
    assert set(frame["scope"]) == {"global", "DE"}


def test_countries_and_decimal_commas_are_normalised(tmp_path):
    path = tmp_path / "figures.csv"
    path.write_text(
        HEADER
        + 'acme,Acme,2021,Deutschland,q1,Q one,share_pct,"76,5 %",1150,"2,9",Acme 2021\n'
        + "acme,Acme,2021,UK,q1,Q one,share_pct,61,1150,2.9,Acme 2021\n"
        + "acme,Acme,2021,World,q1,Q one,share_pct,70,,,Acme 2021\n"
    )
    frame = parse_published_csv(path)
    assert frame["scope"].tolist() == ["DE", "GB", "global"]
    assert frame["value"].tolist() == [76.5, 61.0, 70.0]
    assert frame["margin_of_error_pct"].tolist()[0] == 2.9


def test_every_problem_names_file_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER
        + "acme,Acme,2021,Atlantis,q1,Q one,share_pct,50,,,x\n"
        + "acme,Acme,twenty,DE,q1,Q one,share_pct,150,,,x\n"
    )
    with pytest.raises(SurveyValidationError) as caught:
        parse_published_csv(path)
    found = {(i.file, i.row, i.column) for i in caught.value.issues}
    assert found == {("bad.csv", 2, "scope"), ("bad.csv", 3, "wave"), ("bad.csv", 3, "value")}


def test_bad_file_is_quarantined_and_the_others_still_load(tmp_path, con):
    landing = tmp_path / "landing"
    quarantine_dir = tmp_path / "quarantine"
    landing.mkdir()
    (landing / "good.csv").write_text(HEADER + "acme,Acme,2022,FR,q1,Q one,share_pct,40,,,x\n")
    (landing / "bad.csv").write_text(HEADER + "acme2,Acme,2022,Nowhere,q1,Q,share_pct,40,,,x\n")
    outcomes = {o.file: o for o in ingest_folder(con, landing, quarantine_dir)}
    assert outcomes["good.csv"].status == "loaded"
    assert outcomes["bad.csv"].status == "quarantined"
    assert not (landing / "bad.csv").exists()
    report = json.loads(Path(outcomes["bad.csv"].report_path).read_text())
    assert report["issues"][0] == {
        "file": "bad.csv",
        "row": 2,
        "column": "scope",
        "reason": "unknown country 'Nowhere'",
    }
    sources = con.execute("select distinct source_id from raw.survey_results").fetchall()
    assert ("acme2",) not in sources
    assert ("acme",) in sources


def test_same_file_twice_is_a_no_op_and_a_correction_replaces(tmp_path, con):
    path = tmp_path / "wave.csv"
    path.write_text(
        HEADER
        + "acme,Acme,2022,FR,q1,Q one,share_pct,40,,,x\n"
        + "acme,Acme,2022,FR,q2,Q two,share_pct,41,,,x\n"
    )
    assert load_published_file(con, path).status == "loaded"
    assert load_published_file(con, path).status == "unchanged"
    assert con.execute("select count(*) from raw.survey_results").fetchone()[0] == 2
    path.write_text(HEADER + "acme,Acme,2022,FR,q1,Q one,share_pct,45,,,x\n")
    assert load_published_file(con, path).status == "loaded"
    assert con.execute("select question_id, value from raw.survey_results").fetchall() == [
        ("q1", 45.0)
    ]
