"""Published-figure files as people export them: localized headers, sidecar mappings, derived
ids, and reports that point at the row and column at fault (issue 9, points 4 and 5)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from survey_microdata import KEY

from social_leadership.surveys import ingest_folder
from social_leadership.surveys.common import SurveyValidationError
from social_leadership.surveys.published import (
    HEADER_NAMES,
    PUBLISHED_COLUMNS,
    QUALIFIER_COLUMNS,
    parse_published_file,
    slug,
)
from social_leadership.warehouse import ensure_schema


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_schema(connection)
    yield connection
    connection.close()


def _ingest(con, landing: Path, tmp_path: Path) -> dict:
    outcomes = ingest_folder(
        con, landing, tmp_path / "quarantine", include_bundled=False, pseudonym_key=KEY
    )
    return {outcome.file: outcome for outcome in outcomes}


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


# --- point 4: headers the way people export them -----------------------------------------


def test_german_excel_header_loads_with_derived_source_and_question_ids(tmp_path, con):
    landing = tmp_path / "landing"
    landing.mkdir()
    _write(
        landing / "umfrage.csv",
        [
            "Quelle;Jahr;Land;Frage;Anteil in %;Befragte",
            "Edelman Trust Barometer;2024;Deutschland;CEOs sollten Stellung beziehen;76,5;1150",
            "Edelman Trust Barometer;2024;Weltweit;CEOs sollten Stellung beziehen;79 %;32000",
            "Edelman Trust Barometer;2024;Vereinigte Staaten;CEOs sollten Stellung beziehen;71;",
        ],
        encoding="cp1252",
    )

    outcome = _ingest(con, landing, tmp_path)["umfrage.csv"]

    assert (outcome.status, outcome.shape, outcome.rows_loaded) == ("loaded", "published", 3)
    rows = con.execute(
        "select source_id, source_name, wave, scope, question_id, question_text, value, "
        "sample_size, citation from raw.survey_results order by value"
    ).fetchall()
    question = "CEOs sollten Stellung beziehen"
    source = "Edelman Trust Barometer"
    assert rows == [
        ("edelman_trust_barometer", source, 2024, "US", "ceos_sollten_stellung_beziehen",
         question, 71.0, None, source),
        ("edelman_trust_barometer", source, 2024, "DE", "ceos_sollten_stellung_beziehen",
         question, 76.5, 1150, source),
        ("edelman_trust_barometer", source, 2024, "global", "ceos_sollten_stellung_beziehen",
         question, 79.0, 32000, source),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "row", "expected_scope"),
    [
        # French Excel (Windows-1252 on disk).
        (
            "Source;Vague;Pays;Question;Part;Échantillon",
            "Baromètre Édelman;2023;Allemagne;Les PDG doivent s'engager;61;1000",
            "DE",
        ),
        (
            "Source;Année;Pays;Question;Part (%);Taille de l'échantillon;Marge d'erreur;Citation",
            "Baromètre Édelman;2023;États-Unis;Les PDG doivent s'engager;61;1000;3,1;Rapport",
            "US",
        ),
        # Spanish Excel.
        (
            "Fuente;Año;País;Pregunta;Porcentaje (%);Tamaño de la muestra;Margen de error;Cita",
            "Baromètre Édelman;2023;España;Les PDG doivent s'engager;61;1000;3,1;Informe",
            "ES",
        ),
        # English, with spaces, capitals and a percent sign.
        (
            "Source ID;Source Name;Year;Country;Question ID;Question;Share %;Sample Size;"
            "Margin of Error (%);Citation",
            "barometre_edelman;Baromètre Édelman;2023;The Netherlands;"
            "les_pdg_doivent_s_engager;Les PDG doivent s'engager;61;1000;3,1;Report",
            "NL",
        ),
        # German with every column.
        (
            "Quellen-ID;Quelle;Welle;Markt;Fragen-ID;Fragetext;Maß;Wert;Stichprobengröße;"
            "Fehlermarge;Quellenangabe",
            "barometre_edelman;Baromètre Édelman;2023;Südkorea;les_pdg_doivent_s_engager;"
            "Les PDG doivent s'engager;share_pct;61;1000;3,1;Bericht",
            "KR",
        ),
    ],
)
def test_localized_headers_are_recognised(tmp_path, header, row, expected_scope):
    path = _write(tmp_path / "figures.csv", [header, row], encoding="cp1252")

    frame = parse_published_file(path)

    record = frame.iloc[0]
    assert record["source_id"] == "barometre_edelman"
    assert record["source_name"] == "Baromètre Édelman"
    assert record["wave"] == 2023
    assert record["scope"] == expected_scope
    assert record["question_id"] == "les_pdg_doivent_s_engager"
    assert record["question_text"] == "Les PDG doivent s'engager"
    assert record["value"] == 61.0
    assert record["sample_size"] == 1000


def test_every_published_column_has_names_in_each_language_and_no_name_is_shared():
    assert set(HEADER_NAMES) == set(PUBLISHED_COLUMNS) | set(QUALIFIER_COLUMNS)
    for column, by_language in HEADER_NAMES.items():
        assert set(by_language) == {"en", "de", "fr", "es"}, column
        assert all(by_language.values()), column
    from social_leadership.surveys.published import header_key

    owners: dict[str, str] = {}
    for column, by_language in HEADER_NAMES.items():
        for name in (column, *(n for names in by_language.values() for n in names)):
            assert owners.setdefault(header_key(name), column) == column, name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Edelman Trust Barometer", "edelman_trust_barometer"),
        ("  Baromètre de confiance Édelman 2024 ", "barometre_de_confiance_edelman_2024"),
        ("Straße & Œuvre: «Vertrauen»", "strasse_oeuvre_vertrauen"),
    ],
)
def test_slug_is_lowercase_ascii_with_underscores(text, expected):
    assert slug(text) == expected


def test_slug_of_text_without_latin_letters_or_too_long_stays_a_distinct_id():
    assert slug("信頼") != slug("信用")
    assert slug("信頼").isascii()
    long_a = "CEOs should " * 10 + "lead"
    long_b = "CEOs should " * 10 + "follow"
    assert len(slug(long_a)) <= 64
    assert slug(long_a) != slug(long_b)


def test_sidecar_maps_other_headers_and_declares_constants(tmp_path, con):
    landing = tmp_path / "landing"
    landing.mkdir()
    _write(
        landing / "export.csv",
        [
            "Markt/Region;Item;Zustimmung gesamt;n (ungewichtet)",
            "Schweiz;CEOs should lead;64;1000",
            "Niederlande;CEOs should lead;58;980",
        ],
    )
    (landing / "export.survey.json").write_text(
        json.dumps(
            {
                "shape": "published",
                "source_name": "Acme Trust Monitor",
                "wave": 2025,
                "columns": {
                    "scope": "Markt/Region",
                    "question_text": "item",
                    "value": "Zustimmung gesamt",
                    "sample_size": "n (ungewichtet)",
                },
            }
        )
    )

    outcome = _ingest(con, landing, tmp_path)["export.csv"]

    assert (outcome.status, outcome.rows_loaded) == ("loaded", 2), outcome.issues
    assert con.execute(
        "select source_id, wave, scope, question_id, value, sample_size "
        "from raw.survey_results order by scope"
    ).fetchall() == [
        ("acme_trust_monitor", 2025, "CH", "ceos_should_lead", 64.0, 1000),
        ("acme_trust_monitor", 2025, "NL", "ceos_should_lead", 58.0, 980),
    ]


@pytest.mark.parametrize(
    ("declaration", "column", "reason"),
    [
        ({"columns": ["value"]}, "columns", "must map"),
        ({"columns": {"share": "Anteil"}}, "columns.share", "not a published column"),
        ({"columns": {"value": ""}}, "columns.value", "needs a header cell"),
        ({"columns": {"value": "Zustimmung"}}, "columns.value", "no header cell 'Zustimmung'"),
        ({"columns": {"value": "Anteil", "sample_size": "anteil"}}, "columns.sample_size",
         "also mapped to value"),
        ({"colums": {"value": "Anteil"}}, "colums", "not a published sidecar field"),
        ({"wave": "next year"}, "wave", "not a year"),
        ({"wave": 2024}, "wave", "the file has a wave column"),
        ({"sheet": 3}, "sheet", "sheet name"),
    ],
)  # fmt: skip
def test_bad_sidecar_mapping_is_reported_on_the_sidecar(tmp_path, con, declaration, column, reason):
    landing = tmp_path / "landing"
    landing.mkdir()
    _write(
        landing / "figures.csv",
        ["Quelle;Jahr;Land;Frage;Anteil", "Acme;2024;Deutschland;CEOs should lead;60"],
    )
    (landing / "figures.survey.json").write_text(json.dumps({"shape": "published", **declaration}))

    outcome = _ingest(con, landing, tmp_path)["figures.csv"]

    assert outcome.status == "quarantined"
    matching = [i for i in outcome.issues if (i.file, i.column) == ("figures.survey.json", column)]
    assert matching, outcome.issues
    assert reason in matching[0].reason


def test_header_without_source_name_or_id_says_so(tmp_path):
    path = _write(tmp_path / "figures.csv", ["Jahr;Land;Frage;Anteil", "2024;DE;Q;50"])

    with pytest.raises(SurveyValidationError) as caught:
        parse_published_file(path)

    missing = [i for i in caught.value.issues if i.column == "source_name"]
    assert len(missing) == 1
    assert "source id" in missing[0].reason
    assert "source name" in missing[0].reason
    assert missing[0].row == 1


def test_two_header_cells_for_one_column_are_reported(tmp_path):
    path = _write(
        tmp_path / "figures.csv",
        ["Quelle;Jahr;Land;Country;Frage;Anteil", "Acme;2024;DE;DE;Q;50"],
    )
    with pytest.raises(SurveyValidationError) as caught:
        parse_published_file(path)
    issues = {issue.column: issue for issue in caught.value.issues}
    assert set(issues) == {"scope", "*"}
    assert issues["scope"].row == 1
    assert "'Land' (column 3) and 'Country' (column 4)" in issues["scope"].reason
    assert "'Land' (scope), 'Country' (scope)" in issues["*"].reason


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("Global", "global"),
        ("Weltweit", "global"),
        ("Monde", "global"),
        ("Mundial", "global"),
        ("Total", "global"),
        ("Insgesamt", "global"),
        ("Brasil", "BR"),
        ("España", "ES"),
        ("The Netherlands", "NL"),
        ("UAE", "AE"),
        ("Ivory Coast", "CI"),
        ("Republic of Korea", "KR"),
    ],
)
def test_scopes_in_every_language_are_normalised(tmp_path, scope, expected):
    path = _write(
        tmp_path / "figures.csv",
        ["Fuente;Año;País;Pregunta;Porcentaje", f"Acme;2024;{scope};Q;50"],
    )
    assert parse_published_file(path)["scope"].tolist() == [expected]


# --- point 5: reports point at the culprit -----------------------------------------------


def test_localized_file_reports_each_bad_row_by_row_and_column(tmp_path, con):
    """Before: the whole file was 'row 1, column *' (the header was not understood)."""
    landing = tmp_path / "landing"
    landing.mkdir()
    _write(
        landing / "umfrage.csv",
        [
            "Quelle;Jahr;Land;Frage;Anteil in %;Befragte",
            "Acme;2024;Atlantis;CEOs sollten führen;50;1000",
            "Acme;2024;Deutschland;CEOs sollten führen;155;1000",
            "Acme;2024;Frankreich;CEOs sollten führen;60;viele",
        ],
    )

    outcome = _ingest(con, landing, tmp_path)["umfrage.csv"]

    assert outcome.status == "quarantined"
    report = json.loads(Path(outcome.report_path).read_text())
    assert [(i["row"], i["column"], i["reason"]) for i in report["issues"]] == [
        (2, "Land (scope)", "unknown country 'Atlantis'"),
        (3, "Anteil in % (value)", "share 155.0 is outside 0-100"),
        (4, "Befragte (sample_size)", "'viele' is not a whole number"),
    ]


def test_header_rejection_lists_missing_columns_and_the_header_found(tmp_path, con):
    landing = tmp_path / "landing"
    landing.mkdir()
    _write(
        landing / "figures.csv",
        ["Quelle;Jahr;Frage;Wert;Kommentar", "Acme;2024;Q;50;ok"],
    )

    outcome = _ingest(con, landing, tmp_path)["figures.csv"]

    assert outcome.status == "quarantined"
    report = json.loads(Path(outcome.report_path).read_text())
    missing = [i for i in report["issues"] if "required column missing" in i["reason"]]
    assert [(i["row"], i["column"]) for i in missing] == [(1, "scope")]
    (found,) = [i for i in report["issues"] if i["column"] == "*"]
    assert found["row"] == 1
    for cell in ("'Quelle' (source_name)", "'Jahr' (wave)", "'Frage' (question_text)",
                 "'Wert' (value)", "'Kommentar' (not recognised)"):  # fmt: skip
        assert cell in found["reason"]


def test_file_of_no_known_shape_still_lists_its_header(tmp_path, con):
    landing = tmp_path / "landing"
    landing.mkdir()
    _write(landing / "notes.csv", ["alpha,beta,gamma", "1,2,3"])

    outcome = _ingest(con, landing, tmp_path)["notes.csv"]

    assert outcome.status == "quarantined"
    columns = {issue.column for issue in outcome.issues}
    assert {"source_name", "wave", "scope", "question_id", "value", "*"} <= columns
    (found,) = [i for i in outcome.issues if i.column == "*"]
    assert "'alpha' (not recognised)" in found.reason
    assert "sidecar" in found.reason


# A row's cell holding line breaks (Excel's and Google Sheets' Alt+Enter): the header
# search took the line its quote closes on for the start of a header, glued the rows
# below together and refused the file as 'cannot be read as CSV (HeaderLineError: line 3:
# new-line character seen in unquoted field ...)', hiding what was wrong with it.
_WRITTEN = [("\r\n", ";", "cp1252"), ("\n", ",", "utf-8-sig"), ("\r\n", "\t", "utf-8")]


def _write_table(path: Path, rows: list[list[str]], newline: str, delimiter: str, encoding: str):
    """Rows as a spreadsheet writes them: a cell holding a line break or the delimiter is
    quoted, its line breaks are the file's."""
    lines = [
        delimiter.join(
            f'"{cell}"' if "\n" in cell or delimiter in cell else cell for cell in row
        ).replace("\n", newline)
        for row in rows
    ]
    path.write_bytes((newline.join(lines) + newline).encode(encoding))


_NOTE = "Zeile1\nGröße"


@pytest.mark.parametrize(("newline", "delimiter", "encoding"), _WRITTEN)
def test_a_missing_wave_column_is_said_beside_cells_holding_line_breaks(
    tmp_path, con, newline, delimiter, encoding
):
    landing = tmp_path / "landing"
    landing.mkdir()
    rows = [
        ["Quelle", "Land", "Frage", "Anteil", "Kommentar"],
        ["Acme", "DE", "Trust", "45", _NOTE],
        ["Acme", "FR", "Trust", "50", "ok"],
        ["Acme", "IT", "Trust", "55", _NOTE],
    ]
    _write_table(landing / "figures.csv", rows, newline, delimiter, encoding)

    outcome = _ingest(con, landing, tmp_path)["figures.csv"]

    issues = [(i.file, i.row, i.column) for i in outcome.issues]
    assert issues == [("figures.csv", 1, "wave"), ("figures.csv", 1, "*")]
    assert "required column missing" in outcome.issues[0].reason
    assert "header found in row 1: 'Quelle' (source_name)" in outcome.issues[1].reason
    assert "'Kommentar' (not recognised)" in outcome.issues[1].reason


_RESPONDENTS = [
    ["resp", "land", "gewicht", "q1", "q2", "kommentar"],
    ["1", "DE", "1", "7", "4", _NOTE],
    ["2", "DE", "1", "5", "2", "ok"],
    ["3", "FR", "1", "5", "2", _NOTE],
]


@pytest.mark.parametrize(("newline", "delimiter", "encoding"), _WRITTEN)
def test_a_respondent_file_without_its_sidecar_says_so_beside_cells_holding_line_breaks(
    tmp_path, con, newline, delimiter, encoding
):
    landing = tmp_path / "landing"
    landing.mkdir()
    _write_table(landing / "panel.csv", _RESPONDENTS, newline, delimiter, encoding)

    outcome = _ingest(con, landing, tmp_path)["panel.csv"]

    missing = {i.column for i in outcome.issues if "required column missing" in i.reason}
    assert missing == {"source_name", "wave", "value", "question_id"}
    (found,) = [i for i in outcome.issues if i.column == "*"]
    assert found.row == 1
    assert "'resp' (not recognised), 'land' (scope)" in found.reason
    assert "a sidecar panel.survey.json can map" in found.reason


@pytest.mark.parametrize(("newline", "delimiter", "encoding"), _WRITTEN)
def test_a_sidecar_s_unknown_column_is_named_beside_cells_holding_line_breaks(
    tmp_path, con, newline, delimiter, encoding
):
    from survey_microdata import sidecar

    landing = tmp_path / "landing"
    landing.mkdir()
    _write_table(landing / "panel.csv", _RESPONDENTS, newline, delimiter, encoding)
    declaration = sidecar()
    declaration["columns"]["weight"] = "gewichtung"
    (landing / "panel.survey.json").write_text(json.dumps(declaration))

    outcome = _ingest(con, landing, tmp_path)["panel.csv"]

    assert [(i.file, i.row, i.column, i.reason) for i in outcome.issues] == [
        ("panel.csv", 1, "gewichtung", "declared column missing")
    ]


@pytest.mark.parametrize(("newline", "delimiter", "encoding"), _WRITTEN)
def test_a_header_cell_holding_a_line_break_below_a_title_holding_one_is_the_header(
    tmp_path, con, newline, delimiter, encoding
):
    # The title's closing line was read as the start of a header going on to the header's
    # own line break, and the file refused as one that cannot be read as CSV.
    landing = tmp_path / "landing"
    landing.mkdir()
    rows = [
        ["Acme Vertrauensstudie\nStand: Mai 2024"],
        [],
        ["Quelle", "Jahr", "Land", "Frage", "Anteil\nin %", "Kommentar"],
        ["Acme", "2024", "DE", "CEOs sollten führen", "45", _NOTE],
        ["Acme", "2024", "FR", "CEOs sollten führen", "50", "ok"],
    ]
    _write_table(landing / "figures.csv", rows, newline, delimiter, encoding)

    outcome = _ingest(con, landing, tmp_path)["figures.csv"]

    assert (outcome.status, outcome.rows_loaded) == ("loaded", 2)
    assert con.execute("select scope, value from raw.survey_results order by scope").fetchall() == [
        ("DE", 45.0),
        ("FR", 50.0),
    ]


def _sheet_with_title_rows(path: Path, rows: list[list], *, blank_inside: bool) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet["A1"] = "Vertrauensstudie 2024"
    sheet.merge_cells("A1:F1")
    sheet["A2"] = "Quelle: Acme Research"
    # Row 3 stays empty; the header is row 4.
    sheet.append([])
    sheet.append(["Quelle", "Jahr", "Land", "Frage", "Anteil in %", "Befragte"])
    for index, row in enumerate(rows):
        if blank_inside and index == 1:
            sheet.append([])
        sheet.append(row)
    workbook.save(path)
    return path


def test_xlsx_rows_are_the_sheets_own_row_numbers(tmp_path, con):
    landing = tmp_path / "landing"
    landing.mkdir()
    _sheet_with_title_rows(
        landing / "umfrage.xlsx",
        [
            ["Acme", 2024, "Deutschland", "CEOs sollten führen", 60, 1000],
            ["Acme", 2024, "Atlantis", "CEOs sollten führen", 50, 1000],
            ["Acme", 2024, "Schweiz", "CEOs sollten führen", 155, 1000],
        ],
        blank_inside=True,
    )

    outcome = _ingest(con, landing, tmp_path)["umfrage.xlsx"]

    assert outcome.status == "quarantined"
    # Header in row 4, data in row 5, a blank row 6, then rows 7 and 8.
    assert [(i.row, i.column) for i in outcome.issues] == [
        (7, "Land (scope)"),
        (8, "Anteil in % (value)"),
    ]


def test_xlsx_header_rejection_names_the_header_row_found(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet["A1"] = "Titel"
    sheet.append(["Quelle", "Jahr", "Frage", "Anteil"])
    sheet.append(["Acme", 2024, "Q", 50])
    path = tmp_path / "figures.xlsx"
    workbook.save(path)

    with pytest.raises(SurveyValidationError) as caught:
        parse_published_file(path)

    assert {(i.row, i.column) for i in caught.value.issues} == {(2, "scope"), (2, "*")}


def test_xlsx_without_any_header_row_shows_what_it_found(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append([])
    workbook.active.append(["no", "header", "here"])
    path = tmp_path / "empty.xlsx"
    workbook.save(path)

    with pytest.raises(SurveyValidationError) as caught:
        parse_published_file(path)

    (issue,) = caught.value.issues
    assert "no header row" in issue.reason
    assert "row 2: 'no', 'header', 'here'" in issue.reason


def test_xlsx_with_a_stale_dimension_still_reads_every_row(tmp_path):
    """Some writers record a sheet size smaller than the sheet; no row may be dropped."""
    import re
    import zipfile

    source = _sheet_with_title_rows(
        tmp_path / "full.xlsx",
        [["Acme", 2024, country, "Q", 50, 1000] for country in ("DE", "FR", "IT", "ES")],
        blank_inside=False,
    )
    stale = tmp_path / "stale.xlsx"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(stale, "w") as copy:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:F5"', data)
            copy.writestr(item, data)

    assert parse_published_file(stale)["scope"].tolist() == ["DE", "FR", "IT", "ES"]


def test_microdata_sidecar_without_questions_is_still_read_as_microdata(tmp_path, con):
    from survey_microdata import microdata_frame, sidecar, write_microdata

    declaration = sidecar()
    del declaration["questions"], declaration["shape"]
    path = write_microdata(microdata_frame(seed=9, per_country=3), tmp_path / "p.csv", declaration)
    landing = path.parent

    outcome = _ingest(con, landing, tmp_path)["p.csv"]

    assert outcome.status == "quarantined"
    assert [(i.file, i.column) for i in outcome.issues] == [("p.survey.json", "questions")]


def test_usual_country_names_of_exports_stay_on_the_one_statement_microdata_load(
    tmp_path, con, monkeypatch
):
    """The aliases feed the fast path's table of spellings: such files need no staged pass."""
    from survey_microdata import microdata_frame, sidecar, write_microdata

    from social_leadership.surveys import load_file, microdata

    names = {"UAE": "AE", "The Netherlands": "NL", "Estados Unidos": "US", "Suiza": "CH"}
    frame = microdata_frame(seed=12, per_country=5)
    frame["land"] = [list(names)[index % len(names)] for index in range(len(frame))]

    def staged_path(*args, **kwargs):
        raise AssertionError("these spellings must not need the staged path")

    monkeypatch.setattr(microdata, "prepare", staged_path)
    path = write_microdata(frame, tmp_path / "p.csv", sidecar(), german=False)

    assert load_file(con, path, pseudonym_key=KEY).rows_loaded == len(frame)
    stored = con.execute(
        "select country_code, count(*) from raw.survey_respondent_answers group by all"
    ).fetchall()
    assert dict(stored) == {code: frame["land"].eq(name).sum() for name, code in names.items()}


# --- review: what loaded before still loads ------------------------------------------------

CONTRACT_HEADER = ",".join(PUBLISHED_COLUMNS)
CONTRACT_ROW = "acme,Acme,2022,FR,q1,Q one,share_pct,40,1000,3,x"


@pytest.mark.parametrize(
    ("extra", "cell"),
    [
        ("year", "2021"),
        ("country", "France"),
        ("region", "Europe"),
        ("publisher", "Acme Inc"),
        ("source", "https://example.org/acme"),
        ("question", "Do CEOs lead?"),
        ("share", "0.4"),
        ("n", "999"),
    ],
)
def test_a_contract_header_with_an_extra_column_of_a_usual_name_still_loads(tmp_path, extra, cell):
    """A file headed by the contract's own names loaded before localized names were known;
    an extra column whose name is a usual name of a contract column ('year' beside 'wave')
    must not make the header ambiguous: the contract's own name is the column."""
    path = _write(
        tmp_path / "figures.csv", [f"{CONTRACT_HEADER},{extra}", f"{CONTRACT_ROW},{cell}"]
    )

    frame = parse_published_file(path)

    assert frame[
        ["source_name", "wave", "scope", "question_text", "value", "sample_size"]
    ].values.tolist() == [["Acme", 2022, "FR", "Q one", 40.0, 1000]]


def test_a_wave_too_large_for_a_number_is_reported_on_its_row_beside_the_other_rows(tmp_path):
    """'1e999' reads as infinity, which no year is: before, int() overflowed out of the row
    checks and the report said only that the file could not be read."""
    path = _write(
        tmp_path / "figures.csv",
        [
            "source_id,source_name,wave,scope,question_id,value",
            "acme,Acme,1e999,FR,q1,40",
            "acme,Acme,2022,Atlantis,q2,155",
        ],
    )

    with pytest.raises(SurveyValidationError) as caught:
        parse_published_file(path)

    assert [(i.row, i.column) for i in caught.value.issues] == [
        (2, "wave"),
        (3, "scope"),
        (3, "value"),
    ]
    assert "not a year" in caught.value.issues[0].reason


def test_a_sample_size_too_large_for_the_warehouse_is_reported_on_its_row(tmp_path, con):
    """sample_size is an INTEGER column: before, 3,000,000,000 passed the row checks and the
    insert failed, reported as the whole file being unreadable (row 0, column *)."""
    landing = tmp_path / "landing"
    landing.mkdir()
    _write(
        landing / "figures.csv",
        [
            "source_id,source_name,wave,scope,question_id,value,sample_size",
            "acme,Acme,2022,FR,q1,40,1000",
            "acme,Acme,2022,DE,q1,40,3000000000",
        ],
    )

    outcome = _ingest(con, landing, tmp_path)["figures.csv"]

    assert outcome.status == "quarantined"
    assert [(i.row, i.column) for i in outcome.issues] == [(3, "sample_size")]
    assert "3000000000" in outcome.issues[0].reason
