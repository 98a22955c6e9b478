"""Published survey figures: validation, quarantine, idempotency, replacement."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from survey_microdata import KEY, microdata_frame, pseudonym, sidecar, write_microdata

from social_leadership.surveys import ingest_folder, load_file
from social_leadership.surveys.common import SurveyValidationError
from social_leadership.surveys.ingest import BUNDLED_PUBLISHED_FILE
from social_leadership.surveys.published import parse_published_file
from social_leadership.warehouse import ensure_schema, transaction

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
    frame = parse_published_file(BUNDLED_PUBLISHED_FILE)
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
    frame = parse_published_file(path)
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
        parse_published_file(path)
    found = {(i.file, i.row, i.column) for i in caught.value.issues}
    assert found == {("bad.csv", 2, "scope"), ("bad.csv", 3, "wave"), ("bad.csv", 3, "value")}


def test_bad_file_is_quarantined_and_the_others_still_load(tmp_path, con):
    landing = tmp_path / "landing"
    quarantine_dir = tmp_path / "quarantine"
    landing.mkdir()
    (landing / "good.csv").write_text(HEADER + "acme,Acme,2022,FR,q1,Q one,share_pct,40,,,x\n")
    (landing / "bad.csv").write_text(HEADER + "acme2,Acme,2022,Nowhere,q1,Q,share_pct,40,,,x\n")
    outcomes = {o.file: o for o in ingest_folder(con, landing, quarantine_dir, pseudonym_key=KEY)}
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
    assert load_file(con, path).status == "loaded"
    assert load_file(con, path).status == "unchanged"
    assert con.execute("select count(*) from raw.survey_results").fetchone()[0] == 2
    path.write_text(HEADER + "acme,Acme,2022,FR,q1,Q one,share_pct,45,,,x\n")
    assert load_file(con, path).status == "loaded"
    assert con.execute("select question_id, value from raw.survey_results").fetchall() == [
        ("q1", 45.0)
    ]


def test_an_earlier_version_sent_back_under_its_name_undoes_the_correction(tmp_path, con):
    path = tmp_path / "monitor.csv"
    first = HEADER + "acme,Acme,2022,DE,q1,Q one,share_pct,76,,,x\n"
    first += "acme,Acme,2022,AT,q1,Q one,share_pct,70,,,x\n"
    path.write_text(first)
    assert load_file(con, path).status == "loaded"
    path.write_text(HEADER + "acme,Acme,2022,DE,q1,Q one,share_pct,77,,,x\n")
    assert load_file(con, path).status == "loaded"

    path.write_text(first)  # the correction was wrong: the first version, byte for byte

    assert load_file(con, path).status == "loaded"
    assert load_file(con, path).status == "unchanged"
    assert con.execute("select scope, value from raw.survey_results order by all").fetchall() == [
        ("AT", 70.0),
        ("DE", 76.0),
    ]
    # A copy under a new name is still no new file: it loads nothing.
    (tmp_path / "copy.csv").write_text(first)
    assert load_file(con, tmp_path / "copy.csv").status == "unchanged"


def test_a_respondent_file_sent_back_replaces_the_version_since_and_is_never_doubled(tmp_path, con):
    frame = microdata_frame(seed=31, per_country=6)
    path = write_microdata(frame, tmp_path / "panel.csv", sidecar())
    load_file(con, path, pseudonym_key=KEY)
    write_microdata(frame.head(5), path, sidecar())
    load_file(con, path, pseudonym_key=KEY)
    write_microdata(frame, path, sidecar())  # the first version sent back

    assert load_file(con, path, pseudonym_key=KEY).status == "loaded"
    assert sum(n for n, _ in _respondents_by_country(con).values()) == len(frame)

    # Sent back twice (a second poll, a retry after a crash): its respondents stored once.
    with transaction(con):
        con.execute("delete from raw.survey_files where file_name = 'panel.csv'")
        con.execute(
            "insert into raw.survey_files select file_sha256, 'panel.csv', "
            "now() - interval 1 hour from raw.survey_respondent_answers limit 1"
        )
        con.execute("insert into raw.survey_files values ('another version', 'panel.csv', now())")
    assert load_file(con, path, pseudonym_key=KEY).status == "loaded"
    assert con.execute(
        "select count(*), count(distinct respondent_key) from raw.survey_respondent_answers"
    ).fetchone() == (len(frame), len(frame))

    # Another file's bytes saved under this name: a copy, loaded already, so a no-op (its
    # rows belong to the other name, whose next version replaces them).
    other = write_microdata(frame.head(4), tmp_path / "other.csv", sidecar())
    assert load_file(con, other, pseudonym_key=KEY).status == "loaded"
    path.write_bytes(other.read_bytes())
    (tmp_path / "panel.survey.json").write_bytes((tmp_path / "other.survey.json").read_bytes())
    assert load_file(con, path, pseudonym_key=KEY).status == "unchanged"


def test_a_file_sent_again_in_the_other_shape_replaces_all_of_its_earlier_version(
    tmp_path, con, caplog
):
    path = tmp_path / "conv_2024.csv"
    path.write_text(HEADER + "conv,Conv,2024,DE,q1,Q one,share_pct,50,,,x\n")
    load_file(con, path)
    # The same name, now respondent data of another source.
    write_microdata(microdata_frame(seed=5, per_country=4), path, sidecar())
    with caplog.at_level("WARNING", logger="social_leadership.surveys.ingest"):
        assert load_file(con, path, pseudonym_key=KEY).status == "loaded"
    assert con.execute("select count(*) from raw.survey_results").fetchone() == (0,)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "whose 1 figure(s) of conv wave 2024 it does not hold" in warning

    # And back to published figures, the sidecar gone: the respondents go with it.
    (tmp_path / "conv_2024.survey.json").unlink()
    path.write_text(HEADER + "conv,Conv,2024,DE,q1,Q one,share_pct,55,,,x\n")
    assert load_file(con, path).status == "loaded"
    assert con.execute("select count(*) from raw.survey_respondent_answers").fetchone() == (0,)
    assert con.execute("select count(*) from raw.survey_questions").fetchone() == (0,)
    assert con.execute("select source_id, value from raw.survey_results").fetchall() == [
        ("conv", 55.0)
    ]


def test_a_file_of_another_wave_under_the_same_name_says_what_it_removes(tmp_path, con, caplog):
    # A tool that always exports to export.csv: the second wave replaces the first.
    path = tmp_path / "export.csv"
    path.write_text(
        HEADER
        + "acme,Acme,2022,FR,q1,Q one,share_pct,40,,,x\n"
        + "acme,Acme,2022,FR,q2,Q two,share_pct,41,,,x\n"
    )
    load_file(con, path)
    path.write_text(HEADER + "acme,Acme,2023,FR,q1,Q one,share_pct,45,,,x\n")

    with caplog.at_level("WARNING", logger="social_leadership.surveys.ingest"):
        assert load_file(con, path).status == "loaded"

    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith("export.csv replaces its earlier version, whose 2 figure(s) of ")
    assert "acme wave 2022 it does not hold: they are removed" in warning
    assert con.execute("select wave, value from raw.survey_results").fetchall() == [(2023, 45.0)]


def test_a_respondent_file_of_another_wave_under_the_same_name_says_what_it_removes(
    tmp_path, con, caplog
):
    frame = microdata_frame(seed=9, per_country=5)
    write_microdata(frame, tmp_path / "export.csv", sidecar(wave=2023))
    load_file(con, tmp_path / "export.csv", pseudonym_key=KEY)
    write_microdata(frame, tmp_path / "export.csv", sidecar(wave=2024))

    with caplog.at_level("WARNING", logger="social_leadership.surveys.ingest"):
        assert load_file(con, tmp_path / "export.csv", pseudonym_key=KEY).status == "loaded"

    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"whose {len(frame)} respondent(s) of acme_panel wave 2023 it does not" in warning
    # A correction of the same wave says nothing: it removes nothing of another wave.
    caplog.clear()
    write_microdata(frame.head(9), tmp_path / "export.csv", sidecar(wave=2024))
    with caplog.at_level("WARNING", logger="social_leadership.surveys.ingest"):
        assert load_file(con, tmp_path / "export.csv", pseudonym_key=KEY).status == "loaded"
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


# --- formats ---------------------------------------------------------------------------

GERMAN_ROWS = [
    [
        "acme",
        "Acme Umfrage",
        "2021",
        "Deutschland",
        "q1",
        "Führung äußert sich",
        "share_pct",
        "76,5 %",
        "1150",
        "2,9",
        "Acme 2021 \u2013 Bericht",
    ],
    [
        "acme",
        "Acme Umfrage",
        "2021",
        "Österreich",
        "q1",
        "Führung äußert sich",
        "share_pct",
        "61 %",
        "",
        "",
        "Acme 2021 \u2013 Bericht",
    ],
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_german_excel_csv_in_any_encoding(tmp_path, encoding):
    path = tmp_path / "umfrage.csv"
    lines = [";".join(HEADER.strip().split(","))] + [";".join(row) for row in GERMAN_ROWS]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    frame = parse_published_file(path)
    assert frame["scope"].tolist() == ["DE", "AT"]
    assert frame["value"].tolist() == [76.5, 61.0]
    assert frame["question_text"].iloc[0] == "Führung äußert sich"
    assert frame["citation"].iloc[0] == "Acme 2021 \u2013 Bericht"


def test_xlsx_header_is_found_below_merged_title_rows(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet["A1"] = "Acme Trust Survey 2022: published figures"
    sheet.merge_cells("A1:F1")
    sheet["A2"] = "Source: Acme Research"
    sheet.append([])
    sheet.append(HEADER.strip().split(","))
    sheet.append(["acme", "Acme", 2022, "Germany", "q1", "Q one", "share_pct", 0.765, 1150, 2.9])
    sheet.cell(row=5, column=8).number_format = "0.0%"
    sheet.append(["acme", "Acme", 2022, "Global", "q1", "Q one", "share_pct", 70, None, None])
    path = tmp_path / "figures.xlsx"
    workbook.save(path)

    frame = parse_published_file(path)

    assert frame["scope"].tolist() == ["DE", "global"]
    assert frame["value"].tolist() == [76.5, 70.0]
    assert frame["sample_size"].tolist()[0] == 1150


def test_xlsx_without_header_names_the_problem(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["no", "header", "here"])
    path = tmp_path / "empty.xlsx"
    workbook.save(path)
    with pytest.raises(SurveyValidationError, match="no header row"):
        parse_published_file(path)


def test_parquet_published_figures_load(tmp_path, con):
    frame = pd.DataFrame(
        {
            "source_id": ["acme"],
            "source_name": ["Acme"],
            "wave": [2023],
            "scope": ["FRA"],
            "question_id": ["q1"],
            "value": [55.5],
            "sample_size": [1000],
        }
    )
    path = tmp_path / "figures.parquet"
    frame.to_parquet(path)
    outcome = load_file(con, path)
    assert (outcome.status, outcome.shape, outcome.rows_loaded) == ("loaded", "published", 1)
    assert con.execute("select scope, value, sample_size from raw.survey_results").fetchall() == [
        ("FR", 55.5, 1000)
    ]


# --- respondent microdata ----------------------------------------------------------------


def _answers(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(
        "select respondent_key, country_code, wave, weight, answers[1] as q1, answers[2] as q2 "
        "from raw.survey_respondent_answers"
    ).df()


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_microdata_loads_pseudonymised_without_free_text(tmp_path, con, suffix):
    frame = microdata_frame(seed=1, per_country=40)
    path = write_microdata(frame, tmp_path / f"panel{suffix}", sidecar())

    outcome = load_file(con, path, pseudonym_key=KEY)

    assert (outcome.status, outcome.shape) == ("loaded", "microdata")
    answers = _answers(con)
    assert outcome.rows_loaded == len(answers) == len(frame)
    assert set(answers["country_code"]) == {"DE", "GB", "FR", "CH"}
    assert set(answers["wave"]) == {2024}
    # "don't know" (99) and empty cells are stored as null answers.
    assert answers["q1"].isna().sum() == (frame["q1"] == 99).sum()
    assert answers["q2"].isna().sum() == frame["q2"].isna().sum()
    assert answers["respondent_key"].iloc[1] == pseudonym("r0-1")
    # Neither respondent ids nor free text reach the warehouse: no raw column holds them.
    stored = {
        str(v)
        for table in ("survey_respondent_answers", "survey_questions")
        for row in con.execute(f"select * from raw.{table}").fetchall()
        for v in row
    }
    assert not stored & set(frame["resp"])
    assert not any("Freitext" in value for value in stored)
    questions = con.execute(
        "select question_id, question_position, scale_min, scale_max, agree_min, agree_max, "
        "is_synthetic from raw.survey_questions order by 2"
    ).fetchall()
    assert questions == [
        ("ceo_lead_change", 1, 1, 9, 6, 9, True),
        ("trust_business", 2, 1, 5, 4, 5, True),
    ]


@pytest.mark.parametrize(("suffix", "german"), [(".csv", True), (".csv", False), (".xlsx", True)])
def test_a_wave_column_of_labels_is_read_as_a_sidecar_s_wave_is(tmp_path, con, suffix, german):
    # A labelled export writes the wave's label ("Wave 2024"); the sidecar's `wave` took
    # such text while the column refused it as no number.
    frame = microdata_frame(seed=3, per_country=20)
    labels = ["Wave 2024", "2023", "Jan-22", "Welle 2021"]
    frame["welle"] = [labels[i % len(labels)] for i in range(len(frame))]
    frame.loc[5, "welle"] = "next year"
    declaration = sidecar(wave=None)
    declaration["columns"]["wave"] = "welle"
    path = write_microdata(frame, tmp_path / f"labels{suffix}", declaration, german=german)

    with pytest.raises(SurveyValidationError) as refused:
        load_file(con, path, pseudonym_key=KEY)
    assert [(i.row, i.column) for i in refused.value.issues] == [
        (7 if suffix == ".csv" else 9, "welle")
    ]

    frame = frame.drop(index=5)
    write_microdata(frame, path, declaration, german=german)
    outcome = load_file(con, path, pseudonym_key=KEY)
    assert (outcome.status, outcome.rows_loaded) == ("loaded", len(frame))
    waves = con.execute(
        "select wave, count(*) from raw.survey_respondent_answers group by 1 order by 1"
    ).fetchall()
    expected = frame["welle"].map(
        {"Wave 2024": 2024, "2023": 2023, "Jan-22": 2022, "Welle 2021": 2021}
    )
    assert waves == sorted(expected.value_counts().items())


def _stored_answers(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select source_id, wave, country_code, respondent_key, weight, answers "
        "from raw.survey_respondent_answers order by respondent_key"
    ).fetchall()


def test_utf8_csv_loads_in_one_statement_as_the_staged_path_would(tmp_path, con, monkeypatch):
    from social_leadership.surveys import microdata

    frame = microdata_frame(seed=11, per_country=30)
    frame.loc[4, "resp"] = "  " + frame.loc[4, "resp"] + " "
    frame.loc[6, "q1"] = None
    staged = duckdb.connect(str(tmp_path / "staged.duckdb"))
    ensure_schema(staged)
    load_file(
        staged, write_microdata(frame, tmp_path / "panel.parquet", sidecar()), pseudonym_key=KEY
    )

    def staged_path(*args, **kwargs):
        raise AssertionError("a clean UTF-8 file must not need the staged path")

    monkeypatch.setattr(microdata, "prepare", staged_path)
    path = write_microdata(frame, tmp_path / "p.csv", sidecar(), german=False)
    outcome = load_file(con, path, pseudonym_key=KEY)

    assert (outcome.status, outcome.rows_loaded) == ("loaded", len(frame))
    assert _stored_answers(con) == _stored_answers(staged)
    assert pseudonym(frame.loc[4, "resp"].strip()) in {row[3] for row in _stored_answers(con)}
    assert con.execute(
        "select count(*) from raw.survey_questions where file_name = 'p.csv'"
    ).fetchone() == (2,)
    assert load_file(con, path, pseudonym_key=KEY).status == "unchanged"
    staged.close()


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("land", "Atlantis", "unknown country"),
        ("land", "Global", "global scope"),
        ("gewicht", "-1", "is not a weight (0 or more)"),
        # A missing-value mark read as no weight: it was reported "value is empty".
        ("gewicht", "n/a", "'n/a' marks a missing value"),
        ("q2", "7", "scale 1-5"),
        ("q1", "sehr", "not a number"),
        ("resp", "r0-1", "repeats"),
        ("resp", "", "empty"),
        # R's missing value, though ISO's code of Namibia: never loaded as Namibia's.
        ("land", "NA", "'NA' is a missing-value mark, not a country (for Namibia, write NAM"),
        ("land", "na", "'na' is a missing-value mark"),
    ],
)
def test_bad_utf8_csv_is_reported_by_row_and_loads_nothing(tmp_path, con, column, value, reason):
    load_file(
        con,
        write_microdata(
            microdata_frame(seed=12, per_country=5), tmp_path / "old.parquet", sidecar()
        ),
        pseudonym_key=KEY,
    )
    before = _stored_answers(con)
    frame = microdata_frame(seed=13, per_country=10).astype({column: object})
    frame.loc[8, column] = value
    path = write_microdata(frame, tmp_path / "p.csv", sidecar(), german=False)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)

    (issue,) = caught.value.issues
    assert (issue.file, issue.row, issue.column) == ("p.csv", 10, column)
    assert reason in issue.reason
    assert _stored_answers(con) == before
    assert con.execute(
        "select count(*) from raw.survey_questions where file_name = 'p.csv'"
    ).fetchone() == (0,)


@pytest.mark.parametrize(
    "value",
    ["Jane lives at 5 Privet Drive", "Max Mustermann phone 0170-1234567", "max@example.org"],
)
def test_a_country_cell_one_respondent_writes_is_never_quoted(tmp_path, con, value):
    """A column declared as the country by mistake holds personal text: the row is named,
    its cell never shown (README: a text one respondent gives is never quoted)."""
    frame = microdata_frame(seed=13, per_country=10).astype({"land": object})
    frame.loc[8, "land"] = value
    path = write_microdata(frame, tmp_path / "p.csv", sidecar(), german=False)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)

    (issue,) = caught.value.issues
    assert (issue.row, issue.column) == (10, "land")
    assert issue.reason.startswith("unknown country (the cell is not shown")
    for word in value.replace("@", " ").split():
        assert word not in str(caught.value)


def test_one_respondent_s_text_exported_twice_is_still_never_quoted(tmp_path, con):
    """A respondent's row given twice (refused as a repeat) is one respondent's text, not
    a label many give: counted by respondent, not by row."""
    frame = microdata_frame(seed=13, per_country=10).astype({"land": object, "q1": object})
    frame.loc[3, "land"] = "Jane Doe"
    frame.loc[4, "q1"] = "Jane Roe"
    frame = pd.concat([frame, frame.loc[[3, 4]]], ignore_index=True)
    path = write_microdata(frame, tmp_path / "p.csv", sidecar(), german=False)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)

    said = str(caught.value)
    assert "repeats an earlier respondent" in said
    assert "Jane" not in said


def test_a_codebook_s_country_code_many_respondents_give_is_quoted(tmp_path, con):
    # A label export's codes (1 to 4): hidden since they hold digits, with the hint lost.
    frame = microdata_frame(seed=13, per_country=10).astype({"land": object})
    frame.loc[[2, 5], "land"] = "1"
    path = write_microdata(frame, tmp_path / "p.csv", sidecar(), german=False)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)

    assert {issue.reason for issue in caught.value.issues} == {
        "unknown country '1' (no ISO 3166-1 numeric code)"
    }


def test_a_respondent_sheet_without_a_header_never_shows_its_first_row(tmp_path, con):
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["r-1", "Jane Doe", "Deutschland", 1.0, 2, 3])
    path = tmp_path / "panel.xlsx"
    workbook.save(path)
    path.with_name("panel.survey.json").write_text(json.dumps(sidecar()))

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)

    said = str(caught.value)
    assert "no header row" in said
    assert "the first filled row is row 1 (not shown: a respondent's?)" in said
    assert "Jane" not in said
    assert "r-1" not in said


def test_a_mistyped_country_many_respondents_write_is_quoted(tmp_path, con):
    frame = microdata_frame(seed=13, per_country=10).astype({"land": object})
    frame.loc[[8, 9], "land"] = "Atlantis"
    path = write_microdata(frame, tmp_path / "p.csv", sidecar(), german=False)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)

    assert [(issue.row, issue.reason) for issue in caught.value.issues] == [
        (10, "unknown country 'Atlantis'"),
        (11, "unknown country 'Atlantis'"),
    ]


def test_microdata_weights_with_decimal_commas_are_exact(tmp_path, con):
    frame = microdata_frame(seed=2, per_country=25)
    path = write_microdata(frame, tmp_path / "panel.csv", sidecar())
    assert b"," in path.read_bytes().split(b"\n")[1]
    load_file(con, path, pseudonym_key=KEY)
    stored = con.execute(
        "select list(weight order by rowid) from raw.survey_respondent_answers"
    ).fetchone()[0]
    assert stored == frame["gewicht"].tolist()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_a_respondent_weighted_0_is_loaded_on_either_path(tmp_path, con, suffix):
    """Weight 0 is how exports mark a respondent left out (SPSS's WEIGHT BY skips one):
    stored as sent, and left out of the shares by dbt (test_surveys_dbt.py)."""
    frame = microdata_frame(seed=5, per_country=10)
    frame.loc[[2, 30], "gewicht"] = 0.0
    path = write_microdata(frame, tmp_path / f"panel{suffix}", sidecar())

    outcome = load_file(con, path, pseudonym_key=KEY)

    assert (outcome.status, outcome.rows_loaded) == ("loaded", len(frame))
    assert con.execute(
        "select count(*) from raw.survey_respondent_answers where weight = 0"
    ).fetchone() == (2,)


def test_bad_microdata_is_quarantined_with_its_sidecar_and_row_report(tmp_path, con):
    landing = tmp_path / "landing"
    landing.mkdir()
    frame = microdata_frame(seed=3, per_country=10)
    frame.loc[3, "land"] = "Atlantis"
    frame.loc[5, "gewicht"] = -0.5
    frame.loc[7, "q2"] = 12.0
    frame.loc[9, "resp"] = frame.loc[8, "resp"]
    write_microdata(frame, landing / "panel.csv", sidecar())
    good = write_microdata(
        microdata_frame(seed=4, per_country=10, prefix="g"),
        landing / "other.csv",
        sidecar(source_id="other_panel"),
    )

    outcomes = {
        o.file: o
        for o in ingest_folder(
            con, landing, tmp_path / "quarantine", include_bundled=False, pseudonym_key=KEY
        )
    }

    assert outcomes["other.csv"].status == "loaded"
    assert good.exists()
    bad = outcomes["panel.csv"]
    assert bad.status == "quarantined"
    report_path = Path(bad.report_path)
    assert sorted(p.name for p in report_path.parent.iterdir()) == [
        "panel.csv",
        "panel.survey.json",
        "report.json",
    ]
    assert not (landing / "panel.survey.json").exists()
    issues = {(i["row"], i["column"]) for i in json.loads(report_path.read_text())["issues"]}
    # CSV rows count from the header (line 1): frame index i is line i + 2.
    assert issues == {(5, "land"), (7, "gewicht"), (9, "q2"), (11, "resp")}
    assert "r0-8" not in report_path.read_text()
    sources = {
        row[0] for row in con.execute("select source_id from raw.survey_questions").fetchall()
    }
    assert sources == {"other_panel"}


def test_microdata_without_sidecar_is_rejected_with_a_reason(tmp_path, con):
    landing = tmp_path / "landing"
    landing.mkdir()
    microdata_frame(seed=5, per_country=5).rename(columns={"resp": "respondent_id"}).to_csv(
        landing / "panel.csv", index=False
    )
    (outcome,) = ingest_folder(
        con, landing, tmp_path / "quarantine", include_bundled=False, pseudonym_key=KEY
    )
    assert outcome.status == "quarantined"
    assert "needs a sidecar panel.survey.json" in outcome.issues[0].reason


def test_bad_sidecar_names_the_field(tmp_path, con):
    declaration = sidecar()
    declaration["questions"][0]["agree"] = [6, 12]
    path = write_microdata(microdata_frame(seed=6, per_country=5), tmp_path / "p.csv", declaration)
    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)
    assert [(i.file, i.column) for i in caught.value.issues] == [
        ("p.survey.json", "questions[0].agree")
    ]


def test_microdata_again_is_a_no_op_and_a_correction_replaces(tmp_path, con):
    path = write_microdata(microdata_frame(seed=7, per_country=20), tmp_path / "p.csv", sidecar())
    assert load_file(con, path, pseudonym_key=KEY).status == "loaded"
    before = con.execute("select count(*) from raw.survey_respondent_answers").fetchone()[0]
    assert load_file(con, path, pseudonym_key=KEY).status == "unchanged"
    smaller = microdata_frame(seed=8, per_country=5)
    write_microdata(smaller, tmp_path / "p.csv", sidecar())
    assert load_file(con, path, pseudonym_key=KEY).status == "loaded"
    after = con.execute("select count(*) from raw.survey_respondent_answers").fetchone()[0]
    assert 0 < after < before
    assert con.execute(
        "select count(distinct file_sha256) from raw.survey_questions"
    ).fetchone() == (1,)


def test_a_column_read_by_its_default_name_is_said_so_when_missing(tmp_path, con):
    declaration = sidecar()
    declaration["columns"] = {"respondent_id": "resp", "country": "land"}  # no weight named
    path = write_microdata(microdata_frame(seed=3, per_country=4), tmp_path / "p.csv", declaration)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)

    assert [(i.column, i.reason) for i in caught.value.issues] == [
        (
            "weight",
            "no such column: weight is the default name of the weight column, as the "
            'sidecar\'s "columns" names none (name it there, or "weight": null for an '
            "unweighted survey)",
        )
    ]
    # A column the sidecar names is a declared one.
    declaration["columns"]["weight"] = "gewicht_neu"
    path = write_microdata(microdata_frame(seed=3, per_country=4), tmp_path / "p.csv", declaration)
    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)
    assert [(i.column, i.reason) for i in caught.value.issues] == [
        ("gewicht_neu", "declared column missing")
    ]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("q1", "Strongly agree", "'Strongly agree' is not a number"),
        ("gewicht", "Refused", "'Refused' is not a number"),
        ("q1", "weiß nicht genau", "'weiß nicht genau' is not a number"),
        # Long, or with a digit or an @: maybe an id, an address or free text, never quoted.
        ("q1", "x" * 25, "is not a number"),
        ("q1", "r0-1", "is not a number"),
        ("q1", "\uff11\uff12", "is not a number"),
        ("q1", "anna@example.org", "is not a number"),
    ],
)
def test_a_label_given_by_more_than_one_respondent_is_quoted(tmp_path, con, column, value, reason):
    frame = microdata_frame(seed=13, per_country=10).astype({column: object})
    frame.loc[[3, 8], column] = value
    path = write_microdata(frame, tmp_path / "p.csv", sidecar(), german=False)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)

    assert [(i.row, i.reason) for i in caught.value.issues] == [(5, reason), (10, reason)]


def test_a_text_one_respondent_gives_is_never_quoted(tmp_path, con):
    # A name in a column declared as an answer by mistake: that respondent's alone.
    frame = microdata_frame(seed=13, per_country=10).astype({"q1": object})
    frame.loc[3, "q1"] = "Anna Meyer"
    frame.loc[8, "q1"] = "Refused"
    path = write_microdata(frame, tmp_path / "p.csv", sidecar(), german=False)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)

    assert [(i.row, i.reason) for i in caught.value.issues] == [
        (5, "is not a number"),
        (10, "is not a number"),
    ]


def test_a_weight_declared_on_the_id_column_never_shows_an_id(tmp_path, con):
    declaration = sidecar()
    declaration["columns"]["weight"] = "resp"  # a mistake: the ids are no weights
    frame = microdata_frame(seed=4, per_country=3)
    path = write_microdata(frame, tmp_path / "p.csv", declaration, german=False)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, path, pseudonym_key=KEY)

    reasons = {issue.reason for issue in caught.value.issues if issue.column == "resp"}
    assert reasons == {"is not a number"}
    assert not any(rid in str(caught.value.issues) for rid in frame["resp"])


def _respondents_by_country(con) -> dict[str, tuple[int, int]]:
    """country -> (respondents, files they came from)."""
    rows = con.execute(
        "select country_code, count(*), count(distinct file_sha256) "
        "from raw.survey_respondent_answers group by 1 order by 1"
    ).fetchall()
    return {country: (count, files) for country, count, files in rows}


def test_a_wave_split_into_files_by_country_keeps_every_country(tmp_path, con):
    frame = microdata_frame(seed=21, per_country=10)
    de, gb = frame[frame["land"] == "Deutschland"], frame[frame["land"] == "UK"]
    rest = frame[~frame["land"].isin(["Deutschland", "UK"])]
    for name, part in (("acme_de.csv", de), ("acme_gb.csv", gb), ("acme_rest.csv", rest)):
        path = write_microdata(part, tmp_path / name, sidecar())
        assert load_file(con, path, pseudonym_key=KEY).status == "loaded"

    assert _respondents_by_country(con) == {
        "CH": (len(frame[frame["land"] == "Schweiz"]), 1),
        "DE": (len(de), 1),
        "FR": (len(frame[frame["land"] == "FRA"]), 1),
        "GB": (len(gb), 1),
    }
    # One set of questions for the wave, however many files it came in.
    assert con.execute(
        "select count(*), count(distinct question_id) from raw.survey_questions"
    ).fetchone() == (2, 2)
    # Another file of the same wave holding Germany again replaces Germany's respondents.
    newer_de = microdata_frame(seed=22, per_country=3)
    newer_de = newer_de[newer_de["land"] == "Deutschland"]
    write_microdata(newer_de, tmp_path / "acme_de_v2.csv", sidecar())
    load_file(con, tmp_path / "acme_de_v2.csv", pseudonym_key=KEY)
    assert _respondents_by_country(con)["DE"] == (len(newer_de), 1)
    assert _respondents_by_country(con)["GB"] == (len(gb), 1)


def test_a_stray_row_of_another_country_says_what_of_other_files_it_replaced(tmp_path, con):
    # One UK row in Germany's file deleted all of acme_gb.csv's respondents: the run was
    # green, and the log said only "loaded".
    frame = microdata_frame(seed=31, per_country=10)
    de, gb = frame[frame["land"] == "Deutschland"], frame[frame["land"] == "UK"]
    for name, part in (("acme_de.csv", de), ("acme_gb.csv", gb)):
        write_microdata(part, tmp_path / name, sidecar())
        assert load_file(con, tmp_path / name, pseudonym_key=KEY).replaced == []
    stray = pd.concat([de, gb.head(1)], ignore_index=True)
    write_microdata(stray, tmp_path / "acme_de_v2.csv", sidecar())

    outcome = load_file(con, tmp_path / "acme_de_v2.csv", pseudonym_key=KEY)

    assert outcome.status == "loaded"
    assert outcome.replaced == [
        f"{len(de)} respondent(s) of acme_panel wave 2024 DE from acme_de.csv "
        f"(this file brings {len(de)})",
        f"{len(gb)} respondent(s) of acme_panel wave 2024 GB from acme_gb.csv (this file brings 1)",
    ]
    assert _respondents_by_country(con)["GB"] == (1, 1)


def test_published_figures_say_which_respondents_of_their_wave_they_replaced(tmp_path, con):
    frame = microdata_frame(seed=32, per_country=5)
    write_microdata(frame, tmp_path / "panel.csv", sidecar())
    load_file(con, tmp_path / "panel.csv", pseudonym_key=KEY)
    figures = tmp_path / "headline.csv"
    figures.write_text(
        "source_id,source_name,wave,scope,question_id,question_text,measure,value\n"
        "acme_panel,Acme panel,2024,Global,other_q,Other,share_pct,61\n",
        encoding="utf-8",
    )

    outcome = load_file(con, figures, pseudonym_key=KEY)

    assert outcome.replaced == [
        f"{len(frame)} respondent(s) of acme_panel wave 2024 from panel.csv"
    ]
    assert con.execute("select count(*) from raw.survey_respondent_answers").fetchone() == (0,)


def test_a_corrected_file_replaces_all_of_its_earlier_version(tmp_path, con):
    frame = microdata_frame(seed=23, per_country=10)
    write_microdata(frame, tmp_path / "panel.csv", sidecar())
    load_file(con, tmp_path / "panel.csv", pseudonym_key=KEY)
    # The correction leaves Switzerland out: its earlier respondents go too.
    corrected = frame[frame["land"] != "Schweiz"].head(12)
    write_microdata(corrected, tmp_path / "panel.csv", sidecar())

    assert load_file(con, tmp_path / "panel.csv", pseudonym_key=KEY).status == "loaded"

    assert sum(count for count, _ in _respondents_by_country(con).values()) == len(corrected)
    assert "CH" not in _respondents_by_country(con)


def test_files_of_one_wave_that_declare_other_questions_are_refused(tmp_path, con):
    frame = microdata_frame(seed=24, per_country=10)
    de, fr = frame[frame["land"] == "Deutschland"], frame[frame["land"] == "FRA"]
    write_microdata(de, tmp_path / "acme_de.csv", sidecar())
    load_file(con, tmp_path / "acme_de.csv", pseudonym_key=KEY)
    before = con.execute("select * from raw.survey_respondent_answers order by all").fetchall()
    other = sidecar()
    other["questions"] = list(reversed(other["questions"]))
    write_microdata(fr, tmp_path / "acme_fr.csv", other)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, tmp_path / "acme_fr.csv", pseudonym_key=KEY)

    (issue,) = caught.value.issues
    assert (issue.file, issue.row, issue.column) == ("acme_fr.csv", 0, "questions")
    assert "than 'acme_de.csv', whose respondents (DE) stay" in issue.reason
    assert con.execute("select * from raw.survey_respondent_answers order by all").fetchall() == (
        before
    )
    # The same file holding Germany too replaces acme_de.csv's respondents: no conflict left.
    write_microdata(pd.concat([de, fr]), tmp_path / "acme_all.csv", other)
    assert load_file(con, tmp_path / "acme_all.csv", pseudonym_key=KEY).status == "loaded"
    assert set(_respondents_by_country(con)) == {"DE", "FR"}
    assert con.execute(
        "select list(question_id order by question_position) from raw.survey_questions"
    ).fetchone() == (["trust_business", "ceo_lead_change"],)


@pytest.mark.parametrize("first_synthetic", [True, False])
def test_a_synthetic_and_a_real_file_of_one_wave_are_refused_together(
    tmp_path, con, first_synthetic
):
    # One wave's question rows label every country's shares: a synthetic country file
    # beside a real one would have labelled both alike (whichever loaded last).
    frame = microdata_frame(seed=25, per_country=10)
    de, fr = frame[frame["land"] == "Deutschland"], frame[frame["land"] == "FRA"]
    write_microdata(de, tmp_path / "acme_de.csv", {**sidecar(), "is_synthetic": first_synthetic})
    load_file(con, tmp_path / "acme_de.csv", pseudonym_key=KEY)
    other = {**sidecar(), "is_synthetic": not first_synthetic}
    write_microdata(fr, tmp_path / "acme_fr.csv", other)

    with pytest.raises(SurveyValidationError) as caught:
        load_file(con, tmp_path / "acme_fr.csv", pseudonym_key=KEY)

    (issue,) = caught.value.issues
    assert (issue.file, issue.column) == ("acme_fr.csv", "questions")
    assert f"is_synthetic: {str(not first_synthetic).lower()} here" in issue.reason
    assert set(_respondents_by_country(con)) == {"DE"}
    assert con.execute("select distinct is_synthetic from raw.survey_questions").fetchall() == [
        (first_synthetic,)
    ]


def test_a_failing_replacement_keeps_the_earlier_rows(tmp_path, con, monkeypatch):
    from social_leadership.surveys import microdata

    path = write_microdata(microdata_frame(seed=9, per_country=20), tmp_path / "p.csv", sidecar())
    load_file(con, path, pseudonym_key=KEY)
    before = con.execute("select count(*) from raw.survey_respondent_answers").fetchone()[0]
    write_microdata(microdata_frame(seed=10, per_country=20), tmp_path / "p.csv", sidecar())

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    # Both load paths write the questions last, after the respondents.
    monkeypatch.setattr(microdata, "insert_questions", crash)
    with pytest.raises(RuntimeError):
        load_file(con, path, pseudonym_key=KEY)
    assert con.execute("select count(*) from raw.survey_respondent_answers").fetchone()[0] == before


# --- pseudonym key -----------------------------------------------------------------------


def test_key_file_is_created_once_private_and_reused(tmp_path, monkeypatch):
    from social_leadership.settings import load_settings
    from social_leadership.surveys.pseudonym import load_pseudonym_key

    monkeypatch.delenv("SLW_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SLW_PSEUDONYM_KEY_FILE", raising=False)
    settings = load_settings()
    key = load_pseudonym_key(settings)
    assert len(key) == 32
    assert settings.pseudonym_key_file.stat().st_mode & 0o777 == 0o600
    assert load_pseudonym_key(settings) == key
    monkeypatch.setenv("SLW_PSEUDONYM_KEY", "x" * 20)
    assert load_pseudonym_key(settings) == b"x" * 20


def test_short_or_exposed_keys_are_refused_without_showing_them(tmp_path, monkeypatch):
    from social_leadership.settings import load_settings
    from social_leadership.surveys.pseudonym import PseudonymKeyError, load_pseudonym_key

    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SLW_PSEUDONYM_KEY", "short-secret")
    with pytest.raises(PseudonymKeyError) as caught:
        load_pseudonym_key(load_settings())
    assert "short-secret" not in str(caught.value)
    monkeypatch.delenv("SLW_PSEUDONYM_KEY")
    key_file = tmp_path / "secrets" / "pseudonym.key"
    key_file.parent.mkdir()
    key_file.write_text("00" * 32)
    key_file.chmod(0o644)
    with pytest.raises(PseudonymKeyError, match="readable by others"):
        load_pseudonym_key(load_settings())


# --- bundled data ------------------------------------------------------------------------


def test_only_the_real_published_figures_are_bundled(tmp_path, con):
    # The demo's synthetic microdata comes only with SLW_DEMO on (tests/include/demo/).
    outcomes = ingest_folder(con, tmp_path / "none", tmp_path / "q", pseudonym_key=KEY)

    assert [(o.file, o.status) for o in outcomes] == [(BUNDLED_PUBLISHED_FILE.name, "loaded")]
    assert BUNDLED_PUBLISHED_FILE.exists()
    assert con.execute("select count(*) from raw.survey_questions").fetchone() == (0,)
    assert con.execute(
        "select count(*), bool_and(is_published_aggregate) from raw.survey_results"
    ).fetchone() == (10, True)


def test_a_landed_file_named_as_the_bundled_one_is_refused_and_the_bundled_figures_stay(
    tmp_path, con
):
    # Loaded, it replaced the bundled rows as its own earlier version, and the bundled file
    # (already in the ledger) never came back.
    landing = tmp_path / "landing"
    landing.mkdir()
    copy = landing / BUNDLED_PUBLISHED_FILE.name
    copy.write_text(HEADER + "acme,Acme,2022,FR,q1,Q one,share_pct,40,,,x\n")

    first = ingest_folder(con, landing, tmp_path / "q", pseudonym_key=KEY)
    ingest_folder(con, landing, tmp_path / "q", pseudonym_key=KEY)

    [refused] = [o for o in first if o.status == "quarantined"]
    assert refused.file == copy.name
    report = json.loads(Path(refused.report_path).read_text(encoding="utf-8"))
    assert [issue["reason"] for issue in report["issues"]] == [
        "the name of a survey file the pipeline ships (and loads on every run): give the file "
        "another name"
    ]
    assert con.execute(
        "select source_id, count(*) from raw.survey_results group by all"
    ).fetchall() == [("edelman_tb", 10)]


def test_a_replaced_file_still_in_the_landing_folder_does_not_come_back(tmp_path, con):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a_first.csv").write_text(HEADER + "acme,Acme,2022,FR,q1,Q one,share_pct,40,,,x\n")
    ingest_folder(con, landing, tmp_path / "q", include_bundled=False, pseudonym_key=KEY)
    # A correction for the same source and wave arrives; the first file stays in place.
    (landing / "b_correction.csv").write_text(
        HEADER + "acme,Acme,2022,FR,q1,Q one,share_pct,45,,,x\n"
    )

    for _ in range(3):  # three polls of the folder
        outcomes = ingest_folder(
            con, landing, tmp_path / "q", include_bundled=False, pseudonym_key=KEY
        )

    assert {o.file: o.status for o in outcomes} == {
        "a_first.csv": "unchanged",
        "b_correction.csv": "unchanged",
    }
    assert con.execute("select value, file_name from raw.survey_results").fetchall() == [
        (45.0, "b_correction.csv")
    ]


def test_a_folder_of_survey_files_in_the_landing_folder_is_said_not_read(tmp_path, con, caplog):
    landing = tmp_path / "landing"
    (landing / "export" / "de").mkdir(parents=True)
    (landing / "export" / "de" / "wave.csv").write_text(
        HEADER + "acme,Acme,2022,DE,q1,Q one,share_pct,40,,,x\n"
    )
    (landing / "export" / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    (landing / "notes").mkdir()
    (landing / "notes" / "minutes.pdf").write_bytes(b"%PDF-1.7")
    (landing / ".cache").mkdir()
    (landing / ".cache" / "wave.csv").write_text(HEADER)

    with caplog.at_level("WARNING", logger="social_leadership.surveys.ingest"):
        outcomes = ingest_folder(
            con, landing, tmp_path / "q", include_bundled=False, pseudonym_key=KEY
        )

    assert outcomes == []
    assert [r.getMessage() for r in caplog.records] == [
        f"survey folder export/ holds 2 survey file(s), which are not read: only the files at "
        f"the top of {landing} are; move them there"
    ]
    assert (landing / "export" / "de" / "wave.csv").exists()


def test_a_version_loaded_by_a_worker_whose_clock_is_behind_is_still_the_one_in_force(
    tmp_path, con
):
    path = tmp_path / "monitor.csv"
    first = HEADER + "acme,Acme,2022,DE,q1,Q one,share_pct,76,,,x\n"
    path.write_text(first)
    load_file(con, path, loaded_at=datetime(2026, 3, 2, 12, tzinfo=UTC))
    path.write_text(HEADER + "acme,Acme,2022,DE,q1,Q one,share_pct,77,,,x\n")
    load_file(con, path, loaded_at=datetime(2026, 3, 2, 12, 5, tzinfo=UTC))

    # The first version sent back, loaded by a worker whose clock is an hour behind.
    path.write_text(first)
    assert load_file(con, path, loaded_at=datetime(2026, 3, 2, 11, 10, tzinfo=UTC)).status == (
        "loaded"
    )

    assert load_file(con, path).status == "unchanged"  # the next poll: in force already
    assert con.execute("select value from raw.survey_results").fetchall() == [(76.0,)]


def test_a_file_refused_for_its_questions_logs_no_replacement(tmp_path, con, caplog):
    # It logged "replaces what acme_de.csv had loaded", then was refused and rolled back:
    # the log named a deletion that never happened.
    frame = microdata_frame(seed=33, per_country=5)
    de, gb = frame[frame["land"] == "Deutschland"], frame[frame["land"] == "UK"]
    write_microdata(de, tmp_path / "acme_de.csv", sidecar())
    write_microdata(gb, tmp_path / "acme_gb.csv", sidecar())
    for name in ("acme_de.csv", "acme_gb.csv"):
        load_file(con, tmp_path / name, pseudonym_key=KEY)
    other = sidecar()
    other["questions"] = other["questions"][:1]
    write_microdata(de, tmp_path / "acme_de_v2.csv", other)

    with caplog.at_level("WARNING"), pytest.raises(SurveyValidationError):
        load_file(con, tmp_path / "acme_de_v2.csv", pseudonym_key=KEY)

    assert "replaces what" not in caplog.text
    assert _respondents_by_country(con)["DE"] == (len(de), 1)


def test_microdata_under_the_shipped_figures_source_is_refused_and_replaces_none(tmp_path, con):
    """Its respondents replaced the shipped figures of their wave for good: the shipped
    file stays in the ledger as loaded (and a copy of it is a copy), so they never came
    back, a file removed or not."""
    load_file(con, BUNDLED_PUBLISHED_FILE)
    shipped = con.execute("select * from raw.survey_results order by all").fetchall()
    frame = microdata_frame(seed=5, per_country=5)
    write_microdata(frame, tmp_path / "own.csv", sidecar(source_id="edelman_tb", wave=2019))

    with pytest.raises(SurveyValidationError) as refused:
        load_file(con, tmp_path / "own.csv", pseudonym_key=KEY)

    (issue,) = refused.value.issues
    assert (issue.file, issue.column) == ("own.csv", "source_id")
    assert f"the published figures the pipeline ships ({BUNDLED_PUBLISHED_FILE.name})" in (
        issue.reason
    )
    assert con.execute("select * from raw.survey_results order by all").fetchall() == shipped
    respondents = con.execute("select count(*) from raw.survey_respondent_answers").fetchone()
    assert respondents == (0,)

    # Under a source of its own, the same file loads beside the shipped figures.
    write_microdata(frame, tmp_path / "own.csv", sidecar(source_id="own_panel", wave=2019))
    assert load_file(con, tmp_path / "own.csv", pseudonym_key=KEY).status == "loaded"
    assert con.execute("select * from raw.survey_results order by all").fetchall() == shipped


def test_a_workbook_s_number_cells_are_never_read_as_grouped(tmp_path, con):
    """1.125 stored as a number beside a text cell "0,85": a workbook's numbers are written
    out with a point, never grouped (they were read as 1125)."""
    from openpyxl import Workbook

    workbook = Workbook()
    rows = [("resp", "land", "gewicht", "q1", "q2")]
    # 0.5 a number, "0,85" text: the file shows both marks, its numbers are read all the same.
    weights = [1.125, 1.375, 2, "0,85", 0.5]
    rows += [(f"r{i}", "DE", w, 7, 4) for i, w in enumerate(weights)]
    for row in rows:
        workbook.active.append(list(row))
    path = tmp_path / "weights.xlsx"
    workbook.save(path)
    (tmp_path / "weights.survey.json").write_text(json.dumps(sidecar()), encoding="utf-8")

    assert load_file(con, path, pseudonym_key=KEY).status == "loaded"

    loaded = con.execute("select weight from raw.survey_respondent_answers order by weight")
    assert [w for (w,) in loaded.fetchall()] == pytest.approx([0.5, 0.85, 1.125, 1.375, 2])


def _weighted_file(path: Path, weights: list[str], *, delimiter: str) -> Path:
    """Respondents whose weights are written as given (text cells as a tool exports them,
    in a workbook too), every one agreeing with q1 but the first."""
    header = ("resp", "land", "gewicht", "q1", "q2")
    table = [
        (f"r{index}", "DE", weight, "2" if index == 0 else "7", "4")
        for index, weight in enumerate(weights)
    ]
    if path.suffix == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook()
        for row in (header, *table):
            workbook.active.append(list(row))
        workbook.save(path)
    else:
        rows = [delimiter.join(header)]
        for row in table:
            rows.append(delimiter.join(f'"{cell}"' if delimiter in cell else cell for cell in row))
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    stem = path.name.removesuffix(path.suffix)
    path.with_name(stem + ".survey.json").write_text(json.dumps(sidecar()), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("delimiter", "weights", "read"),
    [
        # An English export: the thousands separator is a comma (it was read as 1.2).
        (",", ["850", "1,200", "975", "2,300"], [850, 1200, 975, 2300]),
        # German Excel: the comma is the decimal mark (its other weights show it), the
        # point groups thousands.
        (";", ["0,85", "1.200,5", "1,2", "2.300"], [0.85, 1200.5, 1.2, 2300]),
        (";", ["850", "1,2", "975"], [850, 1.2, 975]),
        # A point before three digits is a decimal point unless the file shows the comma
        # to be its decimal mark: SPSS writes weights with three decimals (F8.3).
        (";", ["1.125", "2", "3", "1.375"], [1.125, 2, 3, 1.375]),
        ("\t", ["1.000", "1.000", "1.000"], [1, 1, 1]),
        # The other weights show the decimal mark, whatever the delimiter or format.
        ("\t", ["0.85", "1,200", "1.5", "1,234,567"], [0.85, 1200, 1.5, 1234567]),
        ("\t", ["0,85", "1.200", "1,5", "1,200"], [0.85, 1200, 1.5, 1.2]),
        ("xlsx", ["0.85", "1,200", "2,300.5"], [0.85, 1200, 2300.5]),
    ],
    ids=[
        "comma-file",
        "semicolon-decimals",
        "semicolon-comma",
        "semicolon-three-decimals",
        "tab-three-decimals",
        "tab-point",
        "tab-comma",
        "xlsx-text-cells",
    ],
)
def test_weights_with_thousands_separators_are_read_as_the_file_shows_its_decimal_mark(
    tmp_path, con, delimiter, weights, read
):
    suffix = {"\t": ".tsv", "xlsx": ".xlsx"}.get(delimiter, ".csv")
    path = _weighted_file(tmp_path / f"weights{suffix}", weights, delimiter=delimiter)

    assert load_file(con, path, pseudonym_key=KEY).status == "loaded"

    loaded = con.execute(
        "select weight from raw.survey_respondent_answers order by weight"
    ).fetchall()
    assert [weight for (weight,) in loaded] == pytest.approx(sorted(read))


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("weights.tsv", ["850", "1,200", "975"]),
        ("weights.xlsx", ["850", "1,200", "975"]),
        # Both marks shown (two exports merged?): whatever the delimiter, none is told.
        ("weights.csv", ["0.85", "1,200", "0,5"]),
    ],
)
def test_a_weight_that_reads_as_two_numbers_is_refused_naming_it(tmp_path, con, name, weights):
    """A file whose weights show no decimal mark, nor its delimiter: 1,200 is 1.2 or 1200."""
    path = _weighted_file(tmp_path / name, weights, delimiter="," if name.endswith("csv") else "\t")

    with pytest.raises(SurveyValidationError) as refused:
        load_file(con, path, pseudonym_key=KEY)

    (issue,) = refused.value.issues
    assert (issue.row, issue.column) == (3, "gewicht")
    assert issue.reason.startswith("'1,200' reads as two numbers (a thousands separator or")
    assert "(its other weights show neither, or both)" in issue.reason
    assert con.execute("select count(*) from raw.survey_respondent_answers").fetchone() == (0,)
