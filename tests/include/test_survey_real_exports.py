"""Survey files as real exports write them, found by a review with inputs our examples did not
hold: counts with thousands separators, shares written as proportions, Excel formats that only
show a percent sign, labels of global averages and inverted country names, title lines above
a CSV header, Excel's ``sep=;`` line, missing-answer marks and the empty rows a spreadsheet
ends with. Each either loads the figures the file means or is refused naming the row and
column, never loaded as other numbers."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import pytest
from openpyxl import Workbook
from survey_microdata import KEY, sidecar

from social_leadership.intake import UNCLOSED_QUOTE
from social_leadership.surveys import ingest_folder
from social_leadership.surveys.microdata.staged import UNICODE_SPACES
from social_leadership.warehouse import ensure_schema

HEADER = "Quelle;Jahr;Land;Frage;Anteil in %;Befragte"
SAMPLE, MARGIN = "Befragte (sample_size)", "Fehlermarge (margin_of_error_pct)"


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_schema(connection)
    yield connection
    connection.close()


@pytest.fixture
def landing(tmp_path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


def _ingest(con, landing: Path) -> dict:
    outcomes = ingest_folder(
        con, landing, landing.parent / "quarantine", include_bundled=False, pseudonym_key=KEY
    )
    return {outcome.file: outcome for outcome in outcomes}


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def _reasons(outcome) -> list[tuple[int, str, str]]:
    """(row, column, reason) of each issue in a quarantined file's report."""
    assert outcome.status == "quarantined", outcome
    issues = json.loads(Path(outcome.report_path).read_text(encoding="utf-8"))["issues"]
    return [(issue["row"], issue["column"], issue["reason"]) for issue in issues]


def _results(con) -> list[tuple]:
    return con.execute(
        "select scope, wave, measure, value, sample_size, margin_of_error_pct "
        "from raw.survey_results order by scope, wave, question_id"
    ).fetchall()


@pytest.mark.parametrize(
    ("lines", "encoding"),
    [
        (
            [
                "Source,Year,Country,Question,Share,Respondents",
                'Edelman,2019,Germany,Q,76,"1,150"',
                'Edelman,2019,France,Q,70,"2,000"',
            ],
            "utf-8",
        ),
        (
            [HEADER, "Edelman;2019;Deutschland;Q;76,0;1.150", "Edelman;2019;Frankreich;Q;70;2.000"],
            "cp1252",
        ),
        ([HEADER, "Edelman;2019;DE;Q;76;1\u202f150", "Edelman;2019;FR;Q;70;2\u00a0000"], "utf-8"),
        ([HEADER, 'Edelman;2019;DE;Q;76;"1.150,0"', "Edelman;2019;FR;Q;70;2000"], "utf-8"),
    ],
    ids=["english_comma", "german_dot", "spaces", "grouped_with_decimal"],
)
def test_a_sample_size_with_thousands_separators_is_the_whole_number(con, landing, lines, encoding):
    _write(landing / "n.csv", lines, encoding)

    assert _ingest(con, landing)["n.csv"].status == "loaded"
    assert [(row[0], row[4]) for row in _results(con)] == [("DE", 1150), ("FR", 2000)]


def test_shares_written_as_proportions_are_refused_unless_the_sidecar_says_so(con, landing):
    lines = [
        f"{HEADER};Fehlermarge",
        "Edelman;2019;DE;Q;0,76;1150;0,029",
        "Edelman;2019;FR;Q;0,64;1000;",
    ]
    _write(landing / "ratios.csv", lines)

    [(row, column, reason)] = _reasons(_ingest(con, landing)["ratios.csv"])
    assert (row, column) == (2, "Anteil in % (value)")
    assert "between 0 and 1" in reason
    assert '"share_scale": "proportion"' in reason
    assert _results(con) == []

    _write(landing / "ratios.csv", lines)
    (landing / "ratios.survey.json").write_text(json.dumps({"share_scale": "proportion"}))
    assert _ingest(con, landing)["ratios.csv"].status == "loaded"
    assert _results(con) == [
        ("DE", 2019, "share_pct", 76.0, 1150, pytest.approx(2.9)),
        ("FR", 2019, "share_pct", 64.0, 1000, None),
    ]


def test_a_proportion_among_percentages_without_percent_signs_is_refused_by_row(con, landing):
    # A German Excel export without percent signs: 0,76 beside 81 and 70 loaded as 0.76 %,
    # and Germany's headline read 1 % where the survey gave 76 %.
    lines = [
        f"{HEADER};Fehlermarge",
        "Acme;2025;DE;Q;0,76;1.150;2,9",
        "Acme;2025;US;Q;81;1.150;2,3",
        "Acme;2025;FR;Q;1;1.150;0,6",
        # Half a percent answering "don't know", beside 12 and 3: a share, no proportion.
        "Acme;2025;DE;DK;0,5;1.150;0,4",
        "Acme;2025;US;DK;12;1.150;1,9",
        "Acme;2025;FR;DK;3;1.150;1",
    ]
    _write(landing / "pulse.csv", lines)

    [(row, column, reason)] = _reasons(_ingest(con, landing)["pulse.csv"])
    assert (row, column) == (2, "Anteil in % (value)")
    assert reason == (
        "a share of 0.76 beside 81 (row 3) for the same question: a proportion? Write it in "
        'percent (76); if it is 0.76 %, write it with its percent sign ("0.76 %") or declare '
        '"share_scale": "percent" in pulse.survey.json'
    )
    assert _results(con) == []

    lines[1] = "Acme;2025;DE;Q;76;1.150;2,9"
    _write(landing / "pulse.csv", lines)
    assert _ingest(con, landing)["pulse.csv"].status == "loaded"
    assert sorted(row[3] for row in _results(con)) == [0.5, 1.0, 3.0, 12.0, 76.0, 81.0]


def test_a_proportion_in_a_factsheet_of_one_row_a_question_is_refused_by_row(con, landing):
    # No other share of its question: the file's other shares stand in (0,76 beside 81 and
    # 70 of other questions loaded as 0.76 %).
    _write(
        landing / "factsheet.csv",
        [
            f"{HEADER};Fehlermarge",
            "Acme;2025;DE;Q1;81;1.150;2,3",
            "Acme;2025;DE;Q2;0,76;1.150;2,5",
            "Acme;2025;DE;Q3;70;1.150;2,6",
        ],
    )

    [(row, column, reason)] = _reasons(_ingest(con, landing)["factsheet.csv"])
    assert (row, column) == (3, "Anteil in % (value)")
    assert reason.startswith("a share of 0.76 beside 81 (row 2), 70 (row 4): a proportion?")
    assert _results(con) == []


def test_a_margin_far_under_its_sampling_margin_is_refused_by_row(con, landing):
    # 0,027 for 70 % of 1,150 respondents: a margin written as a proportion, loaded as an
    # interval of 69.97 to 70.03 points.
    lines = [
        f"{HEADER};Fehlermarge",
        "Acme;2025;DE;Q;76;1.150;2,9",
        "Acme;2025;FR;Q;70;1.150;0,027",
        # A small share's own sampling margin is small: 0,2 points for 1 % of 10,000.
        "Acme;2025;IT;Q;1;10.000;0,2",
        # The whole survey's margin beside a country's sample, and a subgroup's beside its
        # own small sample: small, but no proportion (60 and 290 points are no margins).
        "Acme;2025;ES;Q;70;1.150;0,6",
        "Acme;2025;PT;Q;50;100;2,9",
    ]
    _write(landing / "margins.csv", lines)

    [(row, column, reason)] = _reasons(_ingest(con, landing)["margins.csv"])
    assert (row, column) == (3, MARGIN)
    assert reason == (
        "margin 0.027 points is under a third of the sampling margin of 70 % from 1,150 "
        "respondents (2.6 points): a margin written as a proportion? Write it in points "
        "(2.7), as the shares are"
    )
    assert _results(con) == []

    lines[2] = "Acme;2025;FR;Q;70;1.150;2,7"
    _write(landing / "margins.csv", lines)
    assert _ingest(con, landing)["margins.csv"].status == "loaded"
    assert sorted((row[0], row[5]) for row in _results(con)) == [
        ("DE", 2.9),
        ("ES", 0.6),
        ("FR", 2.7),
        ("IT", 0.2),
        ("PT", 2.9),
    ]


def test_proportions_are_loaded_as_the_percent_their_decimals_give(con, landing):
    # 0.29 times 100 was 28.999999999999996 and 0.145 was 14.499999999999998, which rounds
    # to 14 where the survey's 14.5 % rounds to 15.
    _write(
        landing / "ratios.csv",
        [
            f"{HEADER};Fehlermarge",
            "Acme;2025;DE;Q;0,29;1150;0,029",
            "Acme;2025;FR;Q;0,145;1150;0,021",
            "Acme;2025;IT;Q;0,07;1150;0,015",
        ],
    )
    (landing / "ratios.survey.json").write_text(json.dumps({"share_scale": "proportion"}))

    assert _ingest(con, landing)["ratios.csv"].status == "loaded"
    assert [(row[0], row[3], row[5]) for row in _results(con)] == [
        ("DE", 29.0, 2.9),
        ("FR", 14.5, 2.1),
        ("IT", 7.0, 1.5),
    ]


def test_margins_in_points_beside_shares_as_proportions_are_refused_by_row(con, landing):
    # Loaded times 100 with the shares: 0,6 became a margin of 60 points, an interval of
    # 4 to 100 at n = 32,000, and the quality gate passed it.
    lines = [
        f"{HEADER};Fehlermarge",
        "Edelman;2019;DE;Q;0,64;32000;0,6",
        "Edelman;2019;FR;Q;0,71;1150;0,029",
    ]
    _write(landing / "mixed.csv", lines)
    (landing / "mixed.survey.json").write_text(json.dumps({"share_scale": "proportion"}))

    [(row, column, reason)] = _reasons(_ingest(con, landing)["mixed.csv"])

    assert (row, column) == (2, "Fehlermarge (margin_of_error_pct)")
    assert reason.startswith("margin 0.6 read as a proportion is 60 points, over 5 times ")
    assert "largest sampling margin of 32,000 respondents (0.5 points, at a share of 50 %)" in (
        reason
    )
    assert _results(con) == []


def test_margins_as_proportions_load_beside_small_shares_and_without_a_sample_size(con, landing):
    # A survey's one margin (at 50 %) beside shares of 1 % is no mistake (the review's
    # case); without a sample size, only a margin no survey has is refused.
    lines = [
        f"{HEADER};Fehlermarge",
        "Pew;2024;US;Q1;0,50;1000;0,031",
        "Pew;2024;US;Q2;0,01;1000;0,031",
        "Pew;2024;US;Q3;0,97;1000;0,044",
        "Pew;2024;DE;Q1;0,64;;0,2",
    ]
    _write(landing / "pew.csv", lines)
    (landing / "pew.survey.json").write_text(json.dumps({"share_scale": "proportion"}))
    _write(landing / "nosize.csv", [f"{HEADER};Fehlermarge", "Edelman;2019;DE;Q;0,64;;0,6"])
    (landing / "nosize.survey.json").write_text(json.dumps({"share_scale": "proportion"}))

    outcomes = _ingest(con, landing)

    assert outcomes["pew.csv"].status == "loaded"
    [(row, column, reason)] = _reasons(outcomes["nosize.csv"])
    assert (row, column) == (2, "Fehlermarge (margin_of_error_pct)")
    assert "60 points, more than any survey of 16 respondents or more has" in reason


def test_a_file_of_small_whole_shares_or_declared_percent_loads_as_written(con, landing):
    _write(landing / "whole.csv", [HEADER, "Edelman;2019;DE;Q;1;1150", "Edelman;2019;FR;Q;0;1150"])
    _write(landing / "declared.csv", [HEADER, "Edelman;2020;DE;Q;0,5;1150"])
    (landing / "declared.survey.json").write_text(json.dumps({"share_scale": "percent"}))

    outcomes = _ingest(con, landing)

    assert {name: o.status for name, o in outcomes.items()} == {
        "whole.csv": "loaded",
        "declared.csv": "loaded",
    }
    assert sorted((row[0], row[1], row[3]) for row in _results(con)) == [
        ("DE", 2019, 1.0),
        ("DE", 2020, 0.5),
        ("FR", 2019, 0.0),
    ]


def test_shares_under_one_percent_written_with_their_sign_are_percent(con, landing):
    # Written with a percent sign, or in cells formatted as percent, a share is no
    # proportion however small: such files were refused as writing proportions.
    _write(
        landing / "small.csv",
        [HEADER, "Edelman;2019;DE;Q;0,5 %;1150", "Edelman;2019;FR;Q;0,8%;1000"],
    )
    book = Workbook()
    sheet = book.active
    sheet.append(["Quelle", "Jahr", "Land", "Frage", "Anteil"])
    sheet.append(["Edelman", 2020, "DE", "Q", 0.005])
    sheet["E2"].number_format = "0.0%"
    book.save(landing / "small.xlsx")

    outcomes = _ingest(con, landing)

    assert {name: o.status for name, o in outcomes.items()} == {
        "small.csv": "loaded",
        "small.xlsx": "loaded",
    }
    assert [(row[0], row[1], row[3]) for row in _results(con)] == [
        ("DE", 2019, 0.5),
        ("DE", 2020, 0.5),
        ("FR", 2019, 0.8),
    ]


def test_an_unknown_share_scale_is_reported_in_the_sidecar(con, landing):
    _write(landing / "s.csv", [HEADER, "Edelman;2019;DE;Q;76;1150"])
    (landing / "s.survey.json").write_text(json.dumps({"share_scale": "ratio"}))

    assert _reasons(_ingest(con, landing)["s.csv"]) == [
        (0, "share_scale", "'ratio' is not one of percent, proportion")
    ]


def test_an_excel_format_that_only_shows_a_percent_sign_keeps_the_number(con, landing):
    book = Workbook()
    sheet = book.active
    sheet.append(["Quelle", "Jahr", "Land", "Frage", "Anteil", "Fehlermarge"])
    sheet.append(["Edelman", 2019, "DE", "Q", 76, 2.9])
    sheet.append(["Edelman", 2019, "FR", "Q", 0.7, 3.1])
    sheet["E2"].number_format = '0" %"'
    sheet["F2"].number_format = '0.0" %"'
    sheet["E3"].number_format = "0%"  # a real percent cell: 0.7 shows as 70 %
    sheet["F3"].number_format = "0.0\\%"
    book.save(landing / "formats.xlsx")

    assert _ingest(con, landing)["formats.xlsx"].status == "loaded"
    assert [(row[0], row[3], row[5]) for row in _results(con)] == [
        ("DE", 76.0, 2.9),
        ("FR", 70.0, 3.1),
    ]


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("Edelman;2019;DE;Q;76;-1150;2,9", SAMPLE, "-1150 is out of range for a sample size"),
        ("Edelman;2019;DE;Q;76;0;2,9", SAMPLE, "0 is out of range for a sample size"),
        ("Edelman;2019;DE;Q;76;1150;-2,9", MARGIN, "margin -2.9 is outside 0-100"),
        ("Edelman;2019,5;DE;Q;76;1150;2,9", "Jahr (wave)", "'2019,5' is not a year"),
    ],
    ids=["negative_sample", "zero_sample", "negative_margin", "fractional_wave"],
)
def test_impossible_counts_margins_and_waves_are_refused_by_row_and_column(
    con, landing, row, column, reason
):
    _write(landing / "bad.csv", [f"{HEADER};Fehlermarge", "Edelman;2019;FR;Q;70;1000;3", row])

    [(at, named, text)] = _reasons(_ingest(con, landing)["bad.csv"])
    assert (at, named) == (3, column)
    assert text.startswith(reason)


def test_margins_written_with_their_sign_load(con, landing):
    _write(
        landing / "pm.csv",
        [
            f"{HEADER};Fehlermarge",
            "Edelman;2019;DE;Q;76;1150;±2,9",
            "Edelman;2019;FR;Q;70;1000;+/- 3.1",
            "Edelman;2019;GB;Q;71;1000;+-2.5",
        ],
    )

    assert _ingest(con, landing)["pm.csv"].status == "loaded"
    assert [(row[0], row[5]) for row in _results(con)] == [("DE", 2.9), ("FR", 3.1), ("GB", 2.5)]


def test_headers_with_a_count_mark_and_usual_names_are_recognised(con, landing):
    _write(
        landing / "names.csv",
        [
            "QUELLE;Jahr der Erhebung;Land/Region;FRAGE;ANTEIL (%);BEFRAGTE (n)",
            "Edelman;2019;Deutschland;Q;76;1150",
        ],
    )
    _write(
        landing / "english.csv",
        [
            "Source,Year of survey,Country/Region,Question,Share,Total N",
            "Edelman,2020,Germany,Q,77,1200",
        ],
    )
    _write(
        landing / "basis.csv", ["Quelle;Jahr;Land;Frage;Anteil;Basis", "Edelman;2021;DE;Q;78;1100"]
    )

    outcomes = _ingest(con, landing)

    assert {o.status for o in outcomes.values()} == {"loaded"}
    assert [(row[1], row[4]) for row in _results(con)] == [(2019, 1150), (2020, 1200), (2021, 1100)]


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("Global 26", "global"),
        ("Global (28)", "global"),
        ("Global average", "global"),
        ("Durchschnitt", "global"),
        ("Globaler Durchschnitt", "global"),
        ("Weltweiter Durchschnitt", "global"),
        ("Durchschnitt weltweit", "global"),
        ("Global-Durchschnitt", "global"),
        ("28-country global average", "global"),
        ("26-mkt avg.", "global"),
        ("Global 28 countries", "global"),
        ("Gesamt (28 Länder)", "global"),
        ("Durchschnitt aller Länder", "global"),
        ("Moyenne mondiale", "global"),
        ("Moyenne des 28 pays", "global"),
        ("Promedio global", "global"),
        ("Global 26*", "global"),
        ("Global\u00b9", "global"),
        ("Deutschland*", "DE"),
        ("Germany\u00b9", "DE"),
        ("VAE", "AE"),
        ("Korea, Rep.", "KR"),
        ("Korea (South)", "KR"),
        ("Korea, South", "KR"),
        ("China (Mainland)", "CN"),
        ("Ireland, Republic of", "IE"),
        ("Deutschland (DE)", "DE"),
        ("Weltdurchschnitt", "global"),
        ("S. Korea", "KR"),
        ("S. Africa", "ZA"),
        ("Korea, Süd", "KR"),
        ("Rep. Korea", "KR"),
        ("KSA", "SA"),
        ("\u00d8 Global", "global"),
        ("\u2300 global", "global"),
        ("Globaler Schnitt", "global"),
        ("Gesamt (n=32.000)", "global"),
        ("Total (N = 32,000)", "global"),
        ("Global 26 (n=32.000)", "global"),
        # UN and World Bank bracketed names, read the other way round or as a formal name.
        ("Korea (North)", "KP"),
        ("Korea (Democratic People's Republic of)", "KP"),
        ("Sudan (South)", "SS"),
        ("Samoa (American)", "AS"),
        ("Congo (Democratic Republic of the)", "CD"),
        ("Virgin Islands (U.S.)", "VI"),
        ("China (Hong Kong SAR)", "HK"),
        ("Hong Kong SAR", "HK"),
        ("Iran (Islamic Republic of)", "IR"),
    ],
)
def test_labels_of_global_averages_and_inverted_country_names_are_understood(
    con, landing, text, scope
):
    _write(landing / "scope.csv", [HEADER, f"Edelman;2019;{text};Q;76;1150"])

    assert _ingest(con, landing)["scope.csv"].status == "loaded"
    assert [row[0] for row in _results(con)] == [scope]


@pytest.mark.parametrize(
    "text",
    [
        *("EU 27 average", "Global ex China", "Durchschnitt DE", "Global informed public"),
        *("Global (excl. China)", "Global 18-34", "Total 18\u201329", "Welt 2/3"),
        *("\u00d8 DE", "Global (n=1.000) 18-34"),
    ],
)
def test_an_average_of_something_else_than_every_country_is_no_global_figure(con, landing, text):
    _write(landing / "scope.csv", [HEADER, f"Edelman;2019;{text};Q;76;1150"])

    [(row, column, reason)] = _reasons(_ingest(con, landing)["scope.csv"])
    assert (row, column, reason) == (2, "Land (scope)", f"unknown country {text!r}")


@pytest.mark.parametrize(
    "text",
    [
        "Germany (Informed Public)",
        "U.S. (18-34)",
        "Deutschland (Ost)",
        "Germany (Mass Population)",
        "Deutschland (Männer)",
    ],
)
def test_a_part_of_a_country_s_population_is_no_country_s_figure(con, landing, text):
    """A sub-group's figure (Edelman's informed public, an age band, a region) loaded as the
    country's would be a wrong figure on a green run: refused, as ``Global informed public``
    is."""
    _write(
        landing / "scope.csv",
        [HEADER, f"Edelman;2019;{text};Q;63;500", "Edelman;2019;FR;Q;70;1000"],
    )

    assert _reasons(_ingest(con, landing)["scope.csv"]) == [
        (2, "Land (scope)", f"unknown country {text!r}")
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Scotland", "'Scotland' is a part of GB: its figure is none of the whole country's"),
        ("England", "'England' is a part of GB: its figure is none of the whole country's"),
        ("Northern Ireland", "'Northern Ireland' is a part of GB"),
        ("NA", "'NA' is a missing-value mark, not a country (for Namibia, write NAM or Namibia)"),
    ],
)
def test_a_nation_of_the_uk_or_a_missing_mark_is_no_countrys_figure(con, landing, text, reason):
    _write(
        landing / "scope.csv",
        [HEADER, "Edelman;2019;United Kingdom;Q;60;1000", f"Edelman;2019;{text};Q;81;500"],
    )

    [(row, column, said)] = _reasons(_ingest(con, landing)["scope.csv"])
    assert (row, column) == (3, "Land (scope)")
    assert said.startswith(reason)


def test_an_unknown_bracketed_or_inverted_name_is_still_refused(con, landing):
    _write(landing / "scope.csv", [HEADER, "Edelman;2019;Atlantis (Lost);Q;76;1150"])

    [(row, column, reason)] = _reasons(_ingest(con, landing)["scope.csv"])
    assert (row, column, reason) == (2, "Land (scope)", "unknown country 'Atlantis (Lost)'")


def test_measure_names_are_read_without_case_and_a_date_cell_is_its_year(con, landing):
    book = Workbook()
    sheet = book.active
    sheet.append(["Source", "Wave", "Scope", "Question", "Measure", "Value"])
    sheet.append(["Edelman", 2019, "DE", "Trust index", "Index", 44])
    sheet.append(["Edelman", None, "DE", "Share", "Share_pct", 76])
    sheet["B3"].value = date(2019, 1, 1)
    sheet["B3"].number_format = "yyyy"
    book.save(landing / "measures.xlsx")

    assert _ingest(con, landing)["measures.xlsx"].status == "loaded"
    assert sorted((row[1], row[2], row[3]) for row in _results(con)) == [
        (2019, "index", 44.0),
        (2019, "share_pct", 76.0),
    ]


@pytest.mark.parametrize(
    ("cell", "measure"),
    [("Prozent", "share_pct"), ("%", "share_pct"), ("Anteil", "share_pct"), ("Index", "index")],
)
def test_a_measure_written_in_words_people_use_is_read(con, landing, cell, measure):
    _write(
        landing / "measure.csv", ["Quelle;Jahr;Land;Frage;Messgröße;Wert", f"E;2019;DE;Q;{cell};76"]
    )

    assert _ingest(con, landing)["measure.csv"].status == "loaded"
    assert [row[2] for row in _results(con)] == [measure]


def test_a_measure_that_names_none_is_refused_naming_the_measures(con, landing):
    _write(
        landing / "measure.csv", ["Quelle;Jahr;Land;Frage;Messgröße;Wert", "E;2019;DE;Q;Mittel;76"]
    )

    assert _reasons(_ingest(con, landing)["measure.csv"]) == [
        (2, "Messgröße (measure)", "'Mittel' is not one of share_pct, index")
    ]


def test_a_csv_header_below_title_lines_and_after_a_sep_line_is_found(con, landing):
    _write(
        landing / "titled.csv",
        [
            "Edelman Trust Barometer 2019, Erwartungen an CEOs",
            "Stand: Januar 2019",
            "",
            HEADER,
            "Edelman;2019;DE;Q;76;1150",
        ],
        encoding="cp1252",
    )
    _write(landing / "sep.csv", ["sep=;", HEADER, "Edelman;2020;FR;Q;70,5;1000"])

    outcomes = _ingest(con, landing)

    assert (outcomes["titled.csv"].status, outcomes["sep.csv"].status) == ("loaded", "loaded")
    assert [(row[0], row[1], row[3]) for row in _results(con)] == [
        ("DE", 2019, 76.0),
        ("FR", 2020, 70.5),
    ]


def test_a_title_line_is_named_when_no_header_follows(con, landing):
    _write(landing / "title.csv", ["Edelman Trust Barometer 2019", "nothing; here"])

    issues = _reasons(_ingest(con, landing)["title.csv"])
    assert issues[-1][0] == 1
    assert "Edelman Trust Barometer 2019" in issues[-1][2]


def test_a_windows_1252_file_with_a_byte_it_leaves_undefined_still_loads(con, landing):
    text = f"{HEADER}\r\nEdelman \x81;2019;Österreich;Q;76;1150\r\n"
    (landing / "latin.csv").write_bytes(text.encode("latin-1"))

    assert _ingest(con, landing)["latin.csv"].status == "loaded"
    assert [row[0] for row in _results(con)] == ["AT"]


def _microdata(landing: Path, rows: list[str]) -> None:
    _write(landing / "panel.csv", ["resp;land;gewicht;q1;q2", *rows])
    (landing / "panel.survey.json").write_text(json.dumps(sidecar()))


def test_respondent_rows_of_empty_cells_at_the_end_are_no_respondents(con, landing):
    _microdata(landing, ["1;DE;1;7;4", "2;DE;1;5;2", ";;;;", ";;;;"])

    outcome = _ingest(con, landing)["panel.csv"]

    assert (outcome.status, outcome.rows_loaded) == ("loaded", 2)


@pytest.mark.parametrize(
    "mark",
    [
        *("NA", "n/a", "-", ".", "#N/A", "k.A.", "keine Angabe", "Weiß nicht", "WEISS NICHT"),
        *("don't know", "Don\u2019t know", "No answer", "ne sait pas", "NS/NC"),
        "#NULL!",  # SPSS's system-missing in an export opened in Excel
    ],
)
def test_missing_answer_marks_read_as_missing_answers(con, landing, mark):
    _microdata(landing, ["1;DE;1;7;4", f"2;DE;1;{mark};2", f"3;DE;1,5;8;{mark}"])

    outcome = _ingest(con, landing)["panel.csv"]

    assert (outcome.status, outcome.rows_loaded) == ("loaded", 3)
    answers = con.execute("select answers from raw.survey_respondent_answers").fetchall()
    assert sorted(answers, key=str) == [([7, 4],), ([8, None],), ([None, 2],)]


def test_cells_padded_with_no_break_spaces_or_tabs_read_as_their_content(con, landing):
    # Spreadsheets pad cells with no-break spaces (U+00A0, U+202F) and tabs: around a
    # number, a country, a missing-value mark, and as the whole of an empty cell.
    _microdata(
        landing,
        [
            "1;\u00a0DE\u00a0;1;7\u00a0;4",
            "2;DE\t;\u202f1,5;\tkeine Angabe\u00a0;2",
            "3;FR;1;\u00a0;\t5",
            "\u00a0;\u00a0;\t;\u202f;\u00a0",
        ],
    )

    outcome = _ingest(con, landing)["panel.csv"]

    assert (outcome.status, outcome.rows_loaded) == ("loaded", 3)
    rows = con.execute(
        "select country_code, weight, answers from raw.survey_respondent_answers"
    ).fetchall()
    assert sorted(rows, key=str) == [
        ("DE", 1.0, [7, 4]),
        ("DE", 1.5, [None, 2]),
        ("FR", 1.0, [None, 5]),
    ]


def test_respondent_microdata_after_a_sep_line_loads(con, landing):
    _write(
        landing / "panel.csv", ["sep=;", "resp;land;gewicht;q1;q2", "1;DE;1;7;4", "2;FR;1,5;5;2"]
    )
    (landing / "panel.survey.json").write_text(json.dumps(sidecar()))

    outcome = _ingest(con, landing)["panel.csv"]

    assert (outcome.status, outcome.rows_loaded) == ("loaded", 2)


def test_a_wave_split_into_files_by_country_or_question_keeps_every_file(con, landing):
    _write(landing / "de.csv", [HEADER, "Edelman;2019;DE;Stand;76;1150"])
    _ingest(con, landing)
    _write(landing / "fr.csv", [HEADER, "Edelman;2019;FR;Stand;70;1000"])
    _write(landing / "trust.csv", [HEADER, "Edelman;2019;DE;Trust;44;1150"])
    _ingest(con, landing)

    rows = con.execute("select scope, question_id, value, file_name from raw.survey_results")
    assert sorted(rows.fetchall()) == [
        ("DE", "stand", 76.0, "de.csv"),
        ("DE", "trust", 44.0, "trust.csv"),
        ("FR", "stand", 70.0, "fr.csv"),
    ]

    # A file of another name stating a figure again replaces that figure alone; a new
    # version of a file replaces all it held before, figures it no longer has included.
    _write(landing / "de_revised.csv", [HEADER, "Edelman;2019;DE;Stand;77;1150"])
    _write(landing / "trust.csv", [HEADER, "Edelman;2019;FR;Trust;40;1000"])
    _ingest(con, landing)

    rows = con.execute("select scope, question_id, value, file_name from raw.survey_results")
    assert sorted(rows.fetchall()) == [
        ("DE", "stand", 77.0, "de_revised.csv"),
        ("FR", "stand", 70.0, "fr.csv"),
        ("FR", "trust", 40.0, "trust.csv"),
    ]


def test_a_row_with_more_filled_fields_than_the_header_refuses_the_file_and_names_it(con, landing):
    # An unquoted decimal comma in a comma-separated file: read by position it would load
    # 76 with a sample of 5, the 1150 dropped.
    _write(
        landing / "shifted.csv",
        [
            "Source,Year,Country,Question,Share,Respondents",
            "Edelman,2019,FR,Q,70,1000",
            "Edelman,2019,DE,Q,76,5,1150,,,",
        ],
    )
    # The empty cells a spreadsheet writes after the last column are no fields, nor does a
    # row that stops short (its empty sample size is allowed) count as one.
    _write(
        landing / "trailing.csv", [HEADER, "Edelman;2019;DE;Q;76;1150;;;", "Edelman;2019;FR;Q;70"]
    )

    outcomes = _ingest(con, landing)

    assert _reasons(outcomes["shifted.csv"]) == [(3, "*", "has 7 fields; the header has 6")]
    assert outcomes["trailing.csv"].status == "loaded"
    assert [(row[0], row[3], row[4]) for row in _results(con)] == [
        ("DE", 76.0, 1150),
        ("FR", 70.0, None),
    ]


def test_notes_below_the_table_are_left_out_but_a_row_that_may_be_a_cut_figure_is_not(con, landing):
    _write(
        landing / "notes.csv",
        [
            HEADER,
            "Edelman;2019;DE;Q;76;1150",
            ";;;;;",
            "Quelle: Edelman Trust Barometer 2019;;;;;",
            "* Basis: alle Befragten",
        ],
    )
    book = Workbook()
    sheet = book.active
    sheet.append(["Quelle", "Jahr", "Land", "Frage", "Anteil"])
    sheet.append(["Edelman", 2019, "FR", "Q", 70])
    sheet.append([])
    sheet.append(["Source: Edelman Trust Barometer 2019"])
    book.save(landing / "notes.xlsx")
    _write(
        landing / "inside.csv",
        [HEADER, "Edelman;2019;DE;Q;76;1150", "Edelman;;;;;", "Edelman;2019;FR;Q;70;1000"],
    )
    # A one-cell row right under the figures, with no empty row between and not opening as
    # a note does, may be a figure cut short: reported, not dropped.
    _write(landing / "cut.csv", [HEADER, "Edelman;2019;DE;Q;76;1150", "Misstrauen"])
    # Right under the figures, a row that opens as a note does is one.
    _write(
        landing / "under.csv",
        [HEADER, "Edelman;2019;IT;Q;66;1000", "Quelle: Edelman;;;;;", "n = 1.000 Befragte"],
    )
    # A note to the right of the table is no row with too many fields.
    _write(
        landing / "right.csv",
        [HEADER, "Edelman;2019;GB;Q;71;1000", "", ";;;;;;;* Basis: alle Befragten"],
    )

    outcomes = _ingest(con, landing)

    assert outcomes["notes.csv"].status == "loaded"
    assert outcomes["notes.xlsx"].status == "loaded"
    assert outcomes["right.csv"].status == "loaded"
    assert outcomes["under.csv"].status == "loaded"
    assert [(row[0], row[3]) for row in _results(con)] == [
        ("DE", 76.0),
        ("FR", 70.0),
        ("GB", 71.0),
        ("IT", 66.0),
    ]
    assert (3, "Jahr (wave)", "value is empty") in _reasons(outcomes["cut.csv"])
    assert (3, "Jahr (wave)", "value is empty") in _reasons(outcomes["inside.csv"])


@pytest.mark.parametrize(
    ("cell", "wave"),
    [
        ("01.01.2019", 2019),
        ("1.1.2020", 2020),
        ("12/31/2021", 2021),
        ("31.12.2022 00:00", 2022),
        ("11/30/2023 12:00:00 AM", 2023),
    ],
)
def test_a_wave_written_as_a_local_date_is_its_year(con, landing, cell, wave):
    _write(landing / "dated.csv", [HEADER, f"Edelman;{cell};DE;Q;76;1150"])

    assert _ingest(con, landing)["dated.csv"].status == "loaded"
    assert [row[1] for row in _results(con)] == [wave]


@pytest.mark.parametrize("cell", ["31.13.2019", "2018/19", "Q4 2019", "2019 Edelman", "Welle"])
def test_a_wave_that_is_no_date_or_no_one_year_is_refused(con, landing, cell):
    _write(landing / "dated.csv", [HEADER, f"Edelman;{cell};DE;Q;76;1150"])

    assert _reasons(_ingest(con, landing)["dated.csv"]) == [
        (2, "Jahr (wave)", f"{cell!r} is not a year")
    ]


@pytest.mark.parametrize(
    ("cell", "wave"),
    [("Januar 2019", 2019), ("Nov. 2018", 2018), ("Wave 2020", 2020), ("März 2021", 2021)],
)
def test_a_wave_written_as_one_year_beside_a_month_or_wave_word_is_that_year(
    con, landing, cell, wave
):
    _write(landing / "month.csv", [HEADER, f"Edelman;{cell};DE;Q;76;1150"])

    assert _ingest(con, landing)["month.csv"].status == "loaded"
    assert [row[1] for row in _results(con)] == [wave]


def test_a_published_row_is_named_by_the_line_it_starts_on(con, landing):
    """Question cells with line breaks (Alt+Enter in Excel) make a row go on over lines."""
    _write(
        landing / "multi.csv",
        [
            HEADER,
            'Edelman;2019;DE;"CEOs sollen',
            'Stellung beziehen";76;1150',
            'Edelman;2019;Atlantis;"Zweite',
            'Frage";70;1000',
        ],
    )
    # A one-cell row right under a figure that goes on over lines has no empty row above it.
    _write(
        landing / "cut.csv",
        [HEADER, 'Edelman;2019;DE;"CEOs sollen', 'Stellung beziehen";76;1150', "Misstrauen"],
    )

    outcomes = _ingest(con, landing)

    assert _reasons(outcomes["multi.csv"]) == [(4, "Land (scope)", "unknown country 'Atlantis'")]
    assert (4, "Jahr (wave)", "value is empty") in _reasons(outcomes["cut.csv"])


def test_a_lone_cell_under_the_figures_is_reported_with_how_a_note_is_left_out(con, landing):
    _write(
        landing / "notes.csv", [HEADER, "Edelman;2019;DE;Q;76;1150", "Rundungsdifferenzen möglich"]
    )

    reasons = _reasons(_ingest(con, landing)["notes.csv"])

    (hint,) = [reason for row, column, reason in reasons if column == "*"]
    assert hint.startswith("holds only 'Rundungsdifferenzen möglich': a figure cut short, or a")
    assert "when an empty row is above it or it opens as a note does" in hint
    assert (3, "Jahr (wave)", "value is empty") in reasons


def test_a_cell_merged_over_the_rows_of_its_figures_is_each_row_s_value(con, landing):
    book = Workbook()
    sheet = book.active
    sheet.append(["Ergebnisse 2019 (Auszug)"])
    sheet.merge_cells("A1:E1")
    sheet.append(["Quelle", "Jahr", "Land", "Frage", "Anteil"])
    sheet.append(["Edelman", 2019, "DE", "Klare Haltung", 76])
    sheet.append([None, None, "FR", "Klare Haltung", 70])
    sheet.append([None, 2020, "DE", "Klare Haltung", 77])
    sheet.append(["Acme", 2020, "DE", "Klare Haltung", 60])
    sheet.append([])
    sheet.append(["Quelle: Edelman Trust Barometer; Acme Research"])
    sheet.append(["Basis: alle Befragten"])
    sheet.merge_cells("A3:A5")
    sheet.merge_cells("B3:B4")
    sheet.merge_cells("A8:E8")  # a note below the table, merged across it
    sheet.merge_cells("A9:E10")  # and one over two rows
    book.save(landing / "merged.xlsx")
    # The cells a merge covers need not be in the sheet (E3 here), and a merge may reach
    # far below the last row the table holds.
    book = Workbook()
    sheet = book.active
    sheet.append(["Jahr", "Land", "Frage", "Anteil", "Quelle"])
    sheet.append([2019, "DE", "Chefsache", 71, "Edelman"])
    sheet.append([2019, "FR", "Chefsache", 65])
    sheet.merge_cells("E2:E3")
    sheet.merge_cells("A3:A2000")
    book.save(landing / "covered.xlsx")

    outcomes = _ingest(con, landing)

    assert {name: outcome.status for name, outcome in outcomes.items()} == {
        "merged.xlsx": "loaded",
        "covered.xlsx": "loaded",
    }
    rows = con.execute(
        "select file_name, source_name, wave, scope, value from raw.survey_results order by all"
    ).fetchall()
    assert rows == [
        ("covered.xlsx", "Edelman", 2019, "DE", 71.0),
        ("covered.xlsx", "Edelman", 2019, "FR", 65.0),
        ("merged.xlsx", "Acme", 2020, "DE", 60.0),
        ("merged.xlsx", "Edelman", 2019, "DE", 76.0),
        ("merged.xlsx", "Edelman", 2019, "FR", 70.0),
        ("merged.xlsx", "Edelman", 2020, "DE", 77.0),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "Quelle;Jahr der Befragung;Land/Markt;Frage;Anteil;Befragte",
        "Quelle;Jahr/Welle;Land;Frage;Anteil;Befragte",
        "Source;Year/Wave;Country;Question;Share;Respondents",
        # A code column beside the name is kept as an extra column, not a second country.
        "Source;Year;Country;Country code;Question;Share",
        # The figure of a chart's export, as statistics portals head it.
        "Quelle;Jahr;Land;Frage;Anteil der Befragten in Prozent;Befragte",
        "Source;Year;Country;Question;% of respondents;Respondents",
        "Source;Year;Country;Question;Share of respondents;Base",
        "Source;Année;Pays;Question;Part des répondants;Échantillon",
    ],
)
def test_more_usual_names_of_the_wave_and_the_country_are_understood(con, landing, header):
    row = "Edelman;2019;DE;DEU;Q;76" if "code" in header else "Edelman;2019;DE;Q;76;1150"
    _write(landing / "names.csv", [header, row])

    assert _ingest(con, landing)["names.csv"].status == "loaded"
    assert [(row[0], row[1]) for row in _results(con)] == [("DE", 2019)]


def test_the_white_space_trimmed_around_a_respondent_cell_is_all_of_unicodes():
    assert set(UNICODE_SPACES) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


def test_missing_marks_in_the_sample_size_and_margin_columns_read_as_unknown(con, landing):
    _write(
        landing / "marks.csv",
        [
            "Quelle;Jahr;Land;Frage;Anteil in %;Befragte;Fehlermarge",
            "Edelman;2019;DE;Q;76;n.a.;±2,9",
            "Edelman;2019;FR;Q;70;-;k.A.",
            "Edelman;2019;IT;Q;68;k.A.;n/a",
            "Edelman;2019;ES;Q;66;#NV;NaN",
        ],
        encoding="cp1252",
    )

    assert _ingest(con, landing)["marks.csv"].status == "loaded"
    assert _results(con) == [
        ("DE", 2019, "share_pct", 76.0, None, 2.9),
        ("ES", 2019, "share_pct", 66.0, None, None),
        ("FR", 2019, "share_pct", 70.0, None, None),
        ("IT", 2019, "share_pct", 68.0, None, None),
    ]


def test_rows_whose_figure_is_marked_missing_are_skipped_and_the_others_load(con, landing, caplog):
    _write(
        landing / "not_asked.csv",
        [
            HEADER,
            "Edelman;2019;DE;Q;76;1150",
            "Edelman;2019;FR;Q;n.a.;1000",
            "Edelman;2019;IT;Q;-;1000",
            # The dashes autocorrect makes of "-", official statistics' "x", "nicht befragt".
            "Edelman;2019;ES;Q;\u2013;1000",
            "Edelman;2019;AT;Q;\u2014;1000",
            "Edelman;2019;CH;Q;x;1000",
            "Edelman;2019;PL;Q;n. b.;1000",
        ],
    )

    with caplog.at_level("WARNING"):
        outcome = _ingest(con, landing)["not_asked.csv"]

    assert outcome.status == "loaded"
    assert _results(con) == [("DE", 2019, "share_pct", 76.0, 1150, None)]
    assert "not_asked.csv: row 3, row 4, row 5, row 6, row 7, row 8 have no figure" in caplog.text


def test_a_file_whose_every_figure_is_marked_missing_is_refused_saying_so(con, landing):
    _write(landing / "none.csv", [HEADER, "Edelman;2019;DE;Q;n.a.;1150", "Edelman;2019;FR;Q;-;"])

    reasons = _reasons(_ingest(con, landing)["none.csv"])

    assert reasons == [(2, "*", "no row has a figure: Anteil in % (value) marks each missing")]
    assert _results(con) == []


@pytest.mark.parametrize("figure", ["inf", "-Infinity", "1e999"])
def test_a_figure_that_is_not_finite_is_refused_naming_its_row_and_column(con, landing, figure):
    _write(
        landing / "index.csv",
        [
            "Quelle;Jahr;Land;Frage;Maß;Wert;Befragte",
            "Edelman;2019;DE;Trust Index;index;44;1150",
            f"Edelman;2019;FR;Trust Index;index;{figure};1000",
        ],
    )

    reasons = _reasons(_ingest(con, landing)["index.csv"])

    assert reasons == [(3, "Wert (value)", f"{figure!r} is not a number")]
    assert _results(con) == []


@pytest.mark.parametrize("name", ["wave.xls", "wave.xlsm", "wave.ods", "wave.dta", "wave.sav"])
def test_survey_data_in_a_format_not_read_is_quarantined_saying_which_are(con, landing, name):
    (landing / name).write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 not read")
    _write(landing / "figures.csv", [HEADER, "Edelman;2019;DE;Q;76;1150"])

    outcomes = _ingest(con, landing)

    [(row, column, reason)] = _reasons(outcomes[name])
    assert (row, column) == (0, "*")
    assert reason.startswith(f"{name!r} is in a format the survey intake does not read")
    assert ".csv, .csv.gz" in reason
    assert ".xlsx" in reason
    assert not (landing / name).exists()
    assert outcomes["figures.csv"].status == "loaded"


@pytest.mark.parametrize(
    "name", ["README.md", "README.txt", "notes.json", "Thumbs.db", "wave.csv.part", "~$wave.xlsx"]
)
def test_files_that_are_no_survey_data_are_left_alone(con, landing, name):
    (landing / name).write_bytes(b"kept")

    assert _ingest(con, landing) == {}
    assert (landing / name).read_bytes() == b"kept"


@pytest.mark.parametrize(
    "text",
    [
        "kept",
        "\n\nSteps:\tcopy the export\n\tthen wait",
        "Land\tAnteil\nDE\t76\n",
        "\t\tPROJECT NOTES\nThis folder holds the exports.\n",
        # Notes laid out with tabs below a title (the review's case): two cells a line.
        "Survey drop folder\n\nHow to use:\n\tName\tWhat it is\n\tacme.csv\tthe Acme export\n",
    ],
)
def test_a_text_file_whose_lines_hold_no_table_is_left_alone(con, landing, text):
    """A ``.txt`` without a sidecar is data only when one of its first lines holding
    anything has two tabs or more."""
    (landing / "notes.txt").write_text(text, encoding="utf-8")

    assert _ingest(con, landing) == {}
    assert (landing / "notes.txt").read_text(encoding="utf-8") == text


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_tab_separated_text_below_a_title_line_loads(con, landing, encoding):
    # Left in the landing folder unread, with nothing said, while the same bytes as .tsv
    # loaded: only the first line was looked at, and it was the sheet's title.
    lines = [
        "Umfrage CEO-Erwartungen 2019",
        "",
        "Quelle\tJahr\tLand\tFrage\tAnteil",
        "Edelman\t2019\tÖsterreich\tFührung\t76",
    ]
    _write(landing / "export.txt", lines, encoding)

    assert _ingest(con, landing)["export.txt"].status == "loaded"
    rows = con.execute("select scope, question_text, value from raw.survey_results")
    assert rows.fetchall() == [("AT", "Führung", 76.0)]


def test_a_text_file_with_its_sidecar_is_read_whatever_its_lines(con, landing):
    # Its sidecar says it is a survey file: read, and quarantined with a report if it is
    # no table the intake can use, never left alone unsaid.
    _write(landing / "chart.txt", ["Land\tAnteil", "DE\t76"])
    (landing / "chart.survey.json").write_text(json.dumps({"shape": "published"}))

    outcome = _ingest(con, landing)["chart.txt"]

    assert outcome.status == "quarantined"
    assert Path(outcome.report_path).is_file()


# Excel's "Unicode Text" (UTF-16 with BOM, tabs) and "Text (Tab delimited)" (Windows-1252)
# are saved as .txt; other tools write tab-separated text as .tsv or .tab.
@pytest.mark.parametrize(
    ("name", "encoding"),
    [("etb.txt", "utf-16"), ("etb.txt", "cp1252"), ("etb.tsv", "utf-8"), ("etb.tab", "utf-8")],
)
def test_tab_separated_text_of_figures_loads(con, landing, name, encoding):
    _write(
        landing / name,
        ["Quelle\tJahr\tLand\tFrage\tAnteil", "Edelman\t2019\tÖsterreich\tFührung\t76"],
        encoding,
    )

    assert _ingest(con, landing)[name].status == "loaded"
    rows = con.execute("select scope, question_text, value from raw.survey_results")
    assert rows.fetchall() == [("AT", "Führung", 76.0)]


def test_excel_unicode_text_of_respondents_loads_and_a_bad_row_is_named(con, landing):
    lines = ["resp\tland\tgewicht\tq1\tq2", "1\tÖsterreich\t1\t7\t4", "2\tSchweiz\t1,5\t5\t2"]
    _write(landing / "panel.txt", lines, "utf-16")
    (landing / "panel.survey.json").write_text(json.dumps(sidecar()))
    _write(landing / "bad.txt", [*lines, "3\tSchweiz\tviel\t5\t2"], "utf-16")
    (landing / "bad.survey.json").write_text(json.dumps(sidecar("other_panel")))

    outcomes = _ingest(con, landing)

    assert outcomes["panel.txt"].status == "loaded"
    rows = con.execute(
        "select country_code, weight, answers from raw.survey_respondent_answers order by all"
    )
    assert rows.fetchall() == [("AT", 1.0, [7, 4]), ("CH", 1.5, [5, 2])]
    assert [(row, column) for row, column, _ in _reasons(outcomes["bad.txt"])] == [(4, "gewicht")]


def test_notes_below_the_table_with_their_label_in_a_cell_of_its_own_are_left_out(con, landing):
    _write(
        landing / "labelled.csv",
        [
            HEADER,
            "Edelman;2019;DE;Q;76;1.150",
            "Edelman;2019;FR;Q;70;1.000",
            ";;;;;",
            "Quelle:;Edelman Trust Barometer 2019;;;;",
            "Basis:;n = 1.150 je Land;;;;",
            "*;Werte gerundet;;;;",
        ],
    )
    # Right under the figures, a row of two cells whose first is no note's label is no note.
    _write(landing / "cut.csv", [HEADER, "Edelman;2019;DE;Q;76;1150", "Edelman;Misstrauen"])
    # In a sheet, the note's text merged over the cells right of its label.
    book = Workbook()
    sheet = book.active
    sheet.append(["Quelle", "Jahr", "Land", "Frage", "Anteil"])
    sheet.append(["Edelman", 2019, "GB", "Q", 71])
    sheet.append([])
    sheet.append(["Quelle:", "Edelman Trust Barometer 2019"])
    sheet.merge_cells("B4:E5")
    book.save(landing / "merged.xlsx")
    # A figure flagged in a column of its own (a low base) is a figure, not a note.
    _write(
        landing / "flagged.csv",
        [
            "Hinweis;Quelle;Jahr;Land;Frage;Anteil in %;Befragte",
            ";Edelman;2019;IT;Q;66;1150",
            "*;Edelman;2019;ES;Q;64;200",
        ],
    )

    outcomes = _ingest(con, landing)

    assert outcomes["labelled.csv"].status == "loaded"
    assert outcomes["flagged.csv"].status == "loaded"
    assert outcomes["merged.xlsx"].status == "loaded"
    assert [(row[0], row[3], row[4]) for row in _results(con)] == [
        ("DE", 76.0, 1150),
        ("ES", 64.0, 200),
        ("FR", 70.0, 1000),
        ("GB", 71.0, None),
        ("IT", 66.0, 1150),
    ]
    assert (3, "Land (scope)", "value is empty") in _reasons(outcomes["cut.csv"])


def test_a_title_row_naming_two_columns_gives_way_to_the_header_below_it(con, landing):
    title = ["Quelle:", "Edelman Trust Barometer", "Jahr:", "2019"]
    _write(
        landing / "titled.csv",
        [";".join(title), "", HEADER, "Edelman;2019;DE;Q;76;1150"],
    )
    book = Workbook()
    sheet = book.active
    sheet.append(title)
    sheet.append([])
    sheet.append(["Quelle", "Jahr", "Land", "Frage", "Anteil"])
    sheet.append(["Edelman", 2019, "FR", "Q", 70])
    book.save(landing / "titled.xlsx")
    # With no row holding every column, the first row naming two is still the header, and
    # the report says what it lacks.
    _write(landing / "lacking.csv", ["Quelle;Jahr;Land", "Edelman;2019;DE"])

    outcomes = _ingest(con, landing)

    assert outcomes["titled.csv"].status == "loaded"
    assert outcomes["titled.xlsx"].status == "loaded"
    assert [(row[0], row[1], row[3]) for row in _results(con)] == [
        ("DE", 2019, 76.0),
        ("FR", 2019, 70.0),
    ]
    assert any(column == "question_id" for _, column, _ in _reasons(outcomes["lacking.csv"]))


def _workbook(path: Path, **sheets: list[list[object]]) -> None:
    """A workbook of these sheets, in this order, each given its rows."""
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)


def test_a_respondent_workbook_of_one_sheet_per_country_is_refused_naming_its_sheets(con, landing):
    # Only the first sheet was read, and the file counted as loaded.
    header = ["resp", "land", "gewicht", "q1", "q2"]
    sheets = {land: [header, [1, land, 1, 7, 4], [2, land, 1, 5, 2]] for land in ("DE", "FR")}
    _workbook(landing / "panel.xlsx", Titel=[["Acme panel 2024"]], **sheets)
    (landing / "panel.survey.json").write_text(json.dumps(sidecar()))
    _workbook(landing / "named.xlsx", **sheets)
    (landing / "named.survey.json").write_text(json.dumps({**sidecar("acme_named"), "sheet": "FR"}))

    outcomes = _ingest(con, landing)

    [(row, column, reason)] = _reasons(outcomes["panel.xlsx"])
    assert (row, column) == (0, "sheet")
    assert reason.startswith("sheets 'DE', 'FR' each hold the declared columns")
    assert outcomes["named.xlsx"].status == "loaded"
    countries = "select distinct country_code from raw.survey_respondent_answers"
    assert con.execute(countries).fetchall() == [("FR",)]


def test_a_workbook_opening_on_a_cover_sheet_is_read_from_the_sheet_holding_the_table(con, landing):
    header = ["Quelle", "Jahr", "Land", "Frage", "Anteil in %"]
    _workbook(
        landing / "cover.xlsx",
        Info=[["Edelman Trust Barometer 2019: Datenexport"]],
        Daten=[header, ["Edelman", 2019, "DE", "Q", 76]],
    )
    # A cover sheet whose title row names two columns gives way to the sheet whose header
    # names every required one.
    _workbook(
        landing / "titled_cover.xlsx",
        Info=[["Quelle:", "Edelman Trust Barometer", "Jahr:", "2019"]],
        Daten=[header, ["Edelman", 2019, "FR", "Q", 70]],
    )
    # No sheet holds a header: the report names the sheet read, the others, and the fix.
    _workbook(landing / "none.xlsx", Info=[["Datenexport"]], Notizen=[["keine Tabelle"]])

    outcomes = _ingest(con, landing)

    assert outcomes["cover.xlsx"].status == "loaded"
    assert outcomes["titled_cover.xlsx"].status == "loaded"
    assert [(row[0], row[3]) for row in _results(con)] == [("DE", 76.0), ("FR", 70.0)]
    [(row, column, reason)] = _reasons(outcomes["none.xlsx"])
    assert (row, column) == (0, "*")
    assert " in the first 50 rows of sheet 'Info'; the first filled row is row 1" in reason
    assert reason.endswith(
        "nor in the workbook's other sheets ('Notizen'): name the table's sheet in the "
        'sidecar\'s "sheet"'
    )


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_respondent_file_with_title_lines_above_its_header_loads(con, landing, encoding):
    # A decimal comma and a missing mark send the file to the staged path.
    _write(
        landing / "panel.csv",
        [
            "Acme Panel Export 2024 (Rohdaten)",
            "",
            "resp;land;gewicht;q1;q2",
            "1;DE;1;7;4",
            "2;DE;1,5;5;2",
            "3;FR;1;8;#NV",
        ],
        encoding=encoding,
    )
    (landing / "panel.survey.json").write_text(json.dumps(sidecar()))
    # A file lacking a declared column is reported at its header's line, below the title.
    _write(landing / "short.csv", ["Acme Panel Export 2024", "resp;land;q1;q2", "1;DE;7;4"])
    (landing / "short.survey.json").write_text(json.dumps(sidecar()))
    # A bad answer is reported at its own line, the title and blank lines counted.
    _write(
        landing / "bad.csv",
        [
            "Acme Panel Export 2024",
            "Stand: 2024",
            "",
            "resp;land;gewicht;q1;q2",
            "1;DE;1;7;4",
            "2;DE;1;12;2",
        ],
        encoding=encoding,
    )
    (landing / "bad.survey.json").write_text(json.dumps(sidecar("acme_bad")))

    outcomes = _ingest(con, landing)

    assert (outcomes["panel.csv"].status, outcomes["panel.csv"].rows_loaded) == ("loaded", 3)
    assert con.execute(
        "select country_code, weight, answers from raw.survey_respondent_answers order by all"
    ).fetchall() == [("DE", 1.0, [7, 4]), ("DE", 1.5, [5, 2]), ("FR", 1.0, [8, None])]
    assert _reasons(outcomes["short.csv"]) == [(2, "gewicht", "declared column missing")]
    assert [(row, column) for row, column, _ in _reasons(outcomes["bad.csv"])] == [(6, "q1")]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_respondent_row_is_reported_at_its_line_below_blank_lines_and_quoted_line_breaks(
    con, landing, encoding
):
    _write(
        landing / "gaps.csv",
        [
            "resp;land;gewicht;q1;q2;kommentar",
            "1;DE;1;7;4;kurz",
            "",
            '2;DE;1;5;2;"über zwei',
            'Zeilen"',
            "",
            "3;FR;1;12;2;x",
            "4;FR;1;5;2;y",
            "5;FR;;5;2;z",
        ],
        encoding=encoding,
    )
    (landing / "gaps.survey.json").write_text(json.dumps(sidecar()))
    # A row with too few fields, below blank lines, is reported at its own line too.
    _write(landing / "fields.csv", ["resp;land;gewicht;q1;q2", "1;DE;1;7;4", "", "", "2;DE;1;5"])
    (landing / "fields.survey.json").write_text(json.dumps(sidecar("acme_fields")))

    outcomes = _ingest(con, landing)

    assert [(row, column) for row, column, _ in _reasons(outcomes["gaps.csv"])] == [
        (7, "q1"),
        (9, "gewicht"),
    ]
    assert _reasons(outcomes["fields.csv"]) == [(5, "*", "has 4 fields; the header has 5")]


def test_a_respondent_file_of_plain_numbers_with_title_lines_loads_in_one_pass(
    con, landing, monkeypatch
):
    from social_leadership.surveys import microdata

    one_pass = []
    insert_fast = microdata.insert_fast

    def recorded(*args, **kwargs):
        rows = insert_fast(*args, **kwargs)
        one_pass.append(rows)
        return rows

    monkeypatch.setattr(microdata, "insert_fast", recorded)
    _write(
        landing / "panel.csv",
        ["Acme Panel Export 2024", "", "resp;land;gewicht;q1;q2", "1;DE;1;7;4", "2;FR;2;5;2"],
    )
    (landing / "panel.survey.json").write_text(json.dumps(sidecar()))

    outcome = _ingest(con, landing)["panel.csv"]

    assert (outcome.status, outcome.rows_loaded) == ("loaded", 2)
    assert one_pass
    assert con.execute(
        "select country_code, weight, answers from raw.survey_respondent_answers order by all"
    ).fetchall() == [("DE", 1.0, [7, 4]), ("FR", 2.0, [5, 2])]


@pytest.mark.parametrize(
    "lines",
    [
        ["resp;land;gewicht;q1;q2;kommentar", "1;DE;1;7;4;kurz", "2;FR;2;5;2;x", "", ""],
        ["resp;land;gewicht;q1;q2;kommentar", '1;DE;1;7;4;"zwei\nZeilen"', "2;FR;2;5;2;x"],
    ],
    ids=["blank_lines_at_the_end", "a_line_break_in_a_comment"],
)
def test_a_respondent_file_with_blank_lines_or_a_line_break_in_a_cell_loads_in_one_pass(
    con, landing, monkeypatch, lines
):
    # Fewer records than lines sent such a file down the staged path (13 times slower for
    # a million rows): it is read row by row for a quote left open, and loads as it did.
    from social_leadership.surveys import microdata

    one_pass = []
    insert_fast = microdata.insert_fast

    def recorded(*args, **kwargs):
        rows = insert_fast(*args, **kwargs)
        one_pass.append(rows)
        return rows

    monkeypatch.setattr(microdata, "insert_fast", recorded)
    _write(landing / "panel.csv", lines)
    (landing / "panel.survey.json").write_text(json.dumps(sidecar()))

    outcome = _ingest(con, landing)["panel.csv"]

    assert (outcome.status, outcome.rows_loaded, len(one_pass)) == ("loaded", 2, 1)


ONE_QUESTION = {
    "source_name": "Edelman Trust Barometer",
    "wave": 2019,
    "question_text": "CEOs should take a stand",
}


def test_a_chart_export_s_unheaded_row_labels_are_its_scope(con, landing):
    """A chart's export (as statistics portals give one) heads its figures and leaves the
    corner above the country names empty: that column is the scope."""
    _workbook(
        landing / "portal.xlsx",
        Übersicht=[[], [None, "Erwartungen an CEOs"], [], [None, "Quelle: Edelman"]],
        Daten=[
            [],
            [None, "Erwartungen an CEOs 2019"],
            [],
            [None, None, "Anteil der Befragten"],
            [None, "Deutschland", "76 %"],
            [None, "Frankreich", "70 %"],
            [],
            [None, "Quelle: Edelman Trust Barometer 2019"],
        ],
    )
    (landing / "portal.survey.json").write_text(json.dumps(ONE_QUESTION))
    _write(landing / "chart.csv", [";Anteil in %", "USA;81", "Global 26;74"])
    (landing / "chart.survey.json").write_text(json.dumps(ONE_QUESTION))
    # Labels that name no country are reported under the column's place.
    _write(landing / "ages.csv", [";Anteil in %", "18-34;81"])
    (landing / "ages.survey.json").write_text(json.dumps(ONE_QUESTION))

    outcomes = _ingest(con, landing)

    assert outcomes["portal.xlsx"].status == "loaded"
    assert outcomes["chart.csv"].status == "loaded"
    assert [(row[0], row[3]) for row in _results(con)] == [
        ("DE", 76.0),
        ("FR", 70.0),
        ("US", 81.0),
        ("global", 74.0),
    ]
    assert _reasons(outcomes["ages.csv"]) == [(2, "column 1 (scope)", "unknown country '18-34'")]


@pytest.mark.parametrize(
    ("lines", "sidecar"),
    [
        # A named scope column is the scope: the empty corner is a column of its own.
        ([";Land;Anteil in %", "x;DE;76"], ONE_QUESTION),
        # The sidecar's scope is the scope of every row.
        ([";Anteil in %", "Deutschland;76"], {**ONE_QUESTION, "scope": "FR"}),
    ],
)
def test_an_unheaded_column_is_no_scope_when_the_header_or_sidecar_gives_one(
    con, landing, lines, sidecar
):
    _write(landing / "chart.csv", lines)
    (landing / "chart.survey.json").write_text(json.dumps(sidecar))

    assert _ingest(con, landing)["chart.csv"].status == "loaded"
    assert [row[0] for row in _results(con)] == [sidecar.get("scope", "DE")]


def test_a_one_question_export_takes_its_question_from_the_sidecar(con, landing):
    _write(
        landing / "chart.csv",
        [
            "Land;Anteil in %;Befragte",
            "Deutschland;76;1.150",
            "Frankreich;70;1.000",
            "Global 26;74;",
        ],
    )
    (landing / "chart.survey.json").write_text(
        json.dumps(
            {
                "source_name": "Edelman Trust Barometer",
                "wave": 2019,
                "question_text": "CEOs should take the lead on change",
            }
        )
    )
    _write(landing / "both.csv", ["Quelle;Jahr;Land;Frage;Anteil in %", "Edelman;2019;DE;Q;76"])
    (landing / "both.survey.json").write_text(json.dumps({"question_text": "Another question"}))

    outcomes = _ingest(con, landing)

    assert outcomes["chart.csv"].status == "loaded"
    assert con.execute(
        "select scope, question_id, question_text, value from raw.survey_results order by scope"
    ).fetchall() == [
        ("DE", "ceos_should_take_the_lead_on_change", "CEOs should take the lead on change", 76.0),
        ("FR", "ceos_should_take_the_lead_on_change", "CEOs should take the lead on change", 70.0),
        (
            "global",
            "ceos_should_take_the_lead_on_change",
            "CEOs should take the lead on change",
            74.0,
        ),
    ]
    [(_, column, reason)] = _reasons(outcomes["both.csv"])
    assert column == "question_text"
    assert reason.startswith("the file has a question_text column ('Frage')")


def test_usual_header_names_bases_points_and_flagged_figures_are_read(con, landing):
    _write(
        landing / "spelled.csv",
        [
            "Source;Wave/Year;Market/Country;Question;Percent agree;Sample size;MoE",
            "Edelman;2019;DE;Q;76*;n=1.150;+/- 2,9 Pp.",
            "Edelman;2019;FR;Q;70¹;(1.000);3,1 Prozentpunkte",
            "Edelman;2019;IT;Q;68;N = 1 000;3.1 pp",
            # Ipsos writes "pts", a German table "%-Punkte": they were refused.
            "Edelman;2019;GB;Q;64;1000;2.5 pts",
            "Edelman;2019;AT;Q;61;1000;3,4 %-Punkte",
        ],
    )
    _write(
        landing / "german.csv",
        [
            "Quelle;Welle/Jahr;Markt/Land;Frage;Total agree (%);Befragte",
            "Edelman;2020;ES;Q;66;(n=950)",
        ],
    )
    # A unit written out in parentheses, as German exports head a share: it was no column.
    _write(
        landing / "prozent.csv",
        ["Quelle;Jahr;Land;Frage;Anteil (Prozent);Befragte", "Edelman;2021;PT;Q;59;1000"],
    )

    outcomes = _ingest(con, landing)

    assert {name: outcome.status for name, outcome in outcomes.items()} == {
        "spelled.csv": "loaded",
        "german.csv": "loaded",
        "prozent.csv": "loaded",
    }
    assert _results(con) == [
        ("AT", 2019, "share_pct", 61.0, 1000, 3.4),
        ("DE", 2019, "share_pct", 76.0, 1150, 2.9),
        ("ES", 2020, "share_pct", 66.0, 950, None),
        ("FR", 2019, "share_pct", 70.0, 1000, 3.1),
        ("GB", 2019, "share_pct", 64.0, 1000, 2.5),
        ("IT", 2019, "share_pct", 68.0, 1000, 3.1),
        ("PT", 2021, "share_pct", 59.0, 1000, None),
    ]


def test_a_table_of_answer_boxes_is_not_read_as_shares_agreeing(con, landing):
    # "Agree" is one box of the scale here, not the share agreeing (30 + 46): refused.
    _write(
        landing / "boxes.csv",
        ["Quelle;Jahr;Land;Frage;Strongly agree;Agree;Disagree", "Edelman;2019;DE;Q;30;46;24"],
    )

    reasons = _reasons(_ingest(con, landing)["boxes.csv"])

    assert any(column == "value" for _, column, _ in reasons)
    assert _results(con) == []


# Reading is linear: a pattern that tried each split of the spaces ran for hours here.
@pytest.mark.timeout(120)
def test_a_long_run_of_spaces_in_a_figure_cell_is_refused_without_hanging(con, landing):
    spaces = " " * 100_000
    _write(
        landing / "spaces.csv",
        [
            HEADER + ";Fehlermarge",
            f"Edelman;2019;DE;Q;7{spaces}x;({spaces}((;n={spaces}x(",
            f"Edelman;2019;FR;Q;70;1000;+{spaces}x",
            f"Quelle{spaces}x;Edelman",
        ],
    )

    reasons = _reasons(_ingest(con, landing)["spaces.csv"])

    found = {(row, column) for row, column, _ in reasons}
    assert {
        (2, "Anteil in % (value)"),
        (2, "Befragte (sample_size)"),
        (2, "Fehlermarge (margin_of_error_pct)"),
        (3, "Fehlermarge (margin_of_error_pct)"),
        (4, "Jahr (wave)"),  # a row of two cells whose first is no note's label: a figure
    } <= found


# --- exports as tools and portals write them (found by a probe of 43 real-style files) ---


def test_a_header_s_units_row_and_the_header_repeated_further_down_are_no_figures(con, landing):
    _write(
        landing / "units.csv",
        [
            "Quelle;Jahr;Land;Frage;Zustimmung;Befragte",
            ";;;;in %;n",
            "Edelman;2019;DE;Q;76;1150",
            # The header again, as a table pasted from pages each headed anew.
            "Quelle;Jahr;Land;Frage;Zustimmung;Befragte",
            "Edelman;2019;FR;Q;70;1000",
        ],
    )

    assert _ingest(con, landing)["units.csv"].status == "loaded"
    assert [(row[0], row[3]) for row in _results(con)] == [("DE", 76.0), ("FR", 70.0)]


def test_a_note_whose_first_cell_says_what_it_is_may_fill_more_cells(con, landing):
    book = Workbook()
    sheet = book.active
    sheet.append(["Quelle", "Jahr", "Land", "Frage", "Anteil"])
    sheet.append(["Edelman", 2019, "DE", "Q", 76])
    sheet.append(["Basis: alle Befragten", None, None, None, "n = 2.300"])
    sheet.append(["Quelle: Edelman Trust Barometer", None, "Stand: Januar 2019"])
    book.save(landing / "notes.xlsx")

    assert _ingest(con, landing)["notes.xlsx"].status == "loaded"
    assert [(row[0], row[3]) for row in _results(con)] == [("DE", 76.0)]


def test_a_country_s_time_series_takes_its_waves_from_its_unheaded_row_labels(con, landing):
    _workbook(
        landing / "series.xlsx",
        Daten=[
            [None, "Vertrauen in CEOs, Deutschland"],
            [],
            [None, None, "Anteil der Befragten"],
            [None, 2018, "64 %"],
            [None, 2019, "76 %"],
        ],
    )
    # The sidecar gives the scope and no wave: the row labels are the waves.
    sidecar = {"source_name": "Edelman", "question_text": "Trust in CEOs", "scope": "DE"}
    (landing / "series.survey.json").write_text(json.dumps(sidecar))

    assert _ingest(con, landing)["series.xlsx"].status == "loaded"
    assert [(row[0], row[1], row[3]) for row in _results(con)] == [
        ("DE", 2018, 64.0),
        ("DE", 2019, 76.0),
    ]


@pytest.mark.parametrize(
    ("cell", "wave"),
    [
        ("2019-01", 2019),
        ("Jan-19", 2019),
        ("Nov 98", 1998),
        # Excel's cut-off read 30-89 as 1930-1989, no survey year: 2030 was refused.
        ("Jan-30", 2030),
        ("Dec-89", 2089),
        ("Jan-90", 1990),
        # As French, Spanish and Austrian Excel write mmm-yy and mmm yyyy.
        ("janv.-19", 2019),
        ("févr.-19", 2019),
        ("déc. 2018", 2018),
        ("juil. 2019", 2019),
        ("ene-19", 2019),
        ("ago-19", 2019),
        ("dic-19", 2019),
        ("Jän. 2019", 2019),
    ],
)
def test_a_wave_written_as_a_month_of_a_year_is_that_year(con, landing, cell, wave):
    _write(landing / "month.csv", [HEADER, f"Edelman;{cell};DE;Q;76;1150"])

    assert _ingest(con, landing)["month.csv"].status == "loaded"
    assert [row[1] for row in _results(con)] == [wave]


def test_swiss_thousands_are_read(con, landing):
    _write(landing / "ch.csv", [HEADER, "Edelman;2019;CH;Q;76;1\u2019150"])

    assert _ingest(con, landing)["ch.csv"].status == "loaded"
    assert [row[4] for row in _results(con)] == [1150]


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_a_sidecar_saved_by_windows_editors_is_read(con, landing, encoding):
    _write(landing / "chart.csv", ["Land;Anteil in %", "Deutschland;76"])
    sidecar = {**ONE_QUESTION, "question_text": "Führungskräfte sollen Stellung beziehen"}
    (landing / "chart.survey.json").write_bytes(
        json.dumps(sidecar, ensure_ascii=False).encode(encoding)
    )

    assert _ingest(con, landing)["chart.csv"].status == "loaded"
    assert con.execute("select question_text from raw.survey_results").fetchone() == (
        "Führungskräfte sollen Stellung beziehen",
    )


def test_a_share_without_its_percent_format_among_percentages_is_refused_by_row(con, landing):
    """0.71 among 76 % and 65 %: a cell left without the percent format of the others would
    load as 0.71 %."""
    book = Workbook()
    sheet = book.active
    sheet.append(["Quelle", "Jahr", "Land", "Frage", "Anteil"])
    for row, (country, share) in enumerate([("DE", 0.76), ("FR", 0.65), ("AT", 0.71)], start=2):
        sheet.append(["Edelman", 2019, country, "Q", share])
        if country != "AT":
            sheet.cell(row=row, column=5).number_format = "0%"
    book.save(landing / "mixed.xlsx")

    [(row, column, reason)] = _reasons(_ingest(con, landing)["mixed.xlsx"])

    assert (row, column) == (4, "Anteil (value)")
    assert reason.startswith("a share up to 1 without a percent sign, beside shares written in")


def test_a_repeated_figure_is_named_by_its_own_row_after_a_row_without_figure(con, landing):
    _write(
        landing / "dup.csv",
        [
            HEADER,
            "Edelman;2019;DE;Q;n.a.;1150",
            "Edelman;2019;FR;Q;70;1000",
            "Edelman;2019;FR;Q;71;1000",
        ],
    )

    [(row, _column, reason)] = _reasons(_ingest(con, landing)["dup.csv"])

    assert (row, reason) == (4, "same source, wave, scope, question and measure as an earlier row")


def test_a_figure_of_one_answer_or_one_audience_is_a_question_of_its_own(con, landing):
    """An Edelman-style export by audience and by answer: the informed public's figure and
    the share distrusting are no figures of the whole population agreeing."""
    _write(
        landing / "audiences.csv",
        [
            "Source;Year;Country;Question;Audience;Response;Share",
            "Edelman;2019;DE;Trust in business;General Population;Trust;47",
            "Edelman;2019;DE;Trust in business;Informed Public;Trust;63",
            "Edelman;2019;DE;Trust in business;General Population;Distrust;33",
        ],
    )
    # A sidecar may name the column.
    _write(landing / "mapped.csv", [HEADER + ";Befragte Gruppe", "Edelman;2019;FR;Q;70;1000;18-34"])
    (landing / "mapped.survey.json").write_text(
        json.dumps({"columns": {"audience": "Befragte Gruppe"}})
    )

    outcomes = _ingest(con, landing)

    assert {o.status for o in outcomes.values()} == {"loaded"}
    assert con.execute(
        "select scope, question_id, question_text, value from raw.survey_results order by all"
    ).fetchall() == [
        ("DE", "trust_in_business_distrust", "Trust in business \u2014 Distrust", 33.0),
        ("DE", "trust_in_business_trust", "Trust in business \u2014 Trust", 47.0),
        (
            "DE",
            "trust_in_business_trust_informed_public",
            "Trust in business \u2014 Trust (Informed Public)",
            63.0,
        ),
        ("FR", "q_18_34", "Q (18-34)", 70.0),
    ]


QUALTRICS = [
    "StartDate,ResponseId,Q_Country,Q1,Q2,weight",
    "Start Date,Response ID,In which country do you live?,CEOs should lead,CEOs inform,weight",
    '"{""ImportId"":""startDate""}","{""ImportId"":""_recordId""}","{""ImportId"":""QID1""}",'
    '"{""ImportId"":""QID2""}","{""ImportId"":""QID3""}","{""ImportId"":""weight""}"',
    "2024-11-01 10:00:00,R_1abc,Germany,7,9,1.1",
    "2024-11-01 10:01:00,R_2abc,Germany,3,,0.9",
    "2024-11-01 10:02:00,R_3abc,France,six,6,1.0",
]


def _tool_sidecar(id_column: str, country: str, questions: list[str]) -> dict:
    return {
        "shape": "microdata",
        "source_id": "acme_ceo",
        "source_name": "Acme CEO survey",
        "wave": 2024,
        "columns": {"respondent_id": id_column, "country": country, "weight": "weight"},
        "questions": [
            {"question_id": f"q{n}", "column": column, "scale": [1, 9], "agree": [6, 9]}
            for n, column in enumerate(questions)
        ],
    }


def test_a_survey_tool_s_further_header_rows_are_no_respondents(con, landing, caplog):
    """Qualtrics writes the question texts and a row of import ids under its header,
    SurveyMonkey a row of answer options; the rows after them are respondents."""
    _write(landing / "qualtrics.csv", QUALTRICS[:-1])
    (landing / "qualtrics.survey.json").write_text(
        json.dumps(_tool_sidecar("ResponseId", "Q_Country", ["Q1", "Q2"]))
    )
    # A bad answer after them is reported at its own line.
    _write(landing / "bad.csv", QUALTRICS)
    (landing / "bad.survey.json").write_text(
        json.dumps({**_tool_sidecar("ResponseId", "Q_Country", ["Q1", "Q2"]), "source_id": "b"})
    )
    _write(
        landing / "monkey.csv",
        [
            "Respondent ID,Collector ID,Country,CEOs should lead (1-9),weight",
            ",,Response,Response,",
            "114212345678,4321,Germany,7,1.0",
            "114212345679,4321,France,4,1.2",
        ],
    )
    (landing / "monkey.survey.json").write_text(
        json.dumps(
            {
                **_tool_sidecar("Respondent ID", "Country", ["CEOs should lead (1-9)"]),
                "source_id": "monkey",
            }
        )
    )

    with caplog.at_level("INFO"):
        outcomes = _ingest(con, landing)

    assert (outcomes["qualtrics.csv"].status, outcomes["qualtrics.csv"].rows_loaded) == (
        "loaded",
        2,
    )
    assert (outcomes["monkey.csv"].status, outcomes["monkey.csv"].rows_loaded) == ("loaded", 2)
    assert _reasons(outcomes["bad.csv"]) == [(6, "Q1", "is not a number")]  # one respondent's
    assert "qualtrics.csv: row 2, row 3 under the header read as more header" in caplog.text


def test_a_file_whose_every_row_answers_in_words_keeps_its_rows_and_is_reported(con, landing):
    """Labelled answers (``stimme zu``) are not read as numbers: every row is reported,
    none taken for a further header row."""
    _write(
        landing / "labels.csv",
        ["id,land,q1,weight", "1,DE,stimme zu,1", "2,FR,stimme nicht zu,1", "3,DE,weiß ich,1"],
    )
    (landing / "labels.survey.json").write_text(json.dumps(_tool_sidecar("id", "land", ["q1"])))

    reasons = _reasons(_ingest(con, landing)["labels.csv"])

    assert [(row, column) for row, column, _ in reasons] == [(2, "q1"), (3, "q1"), (4, "q1")]


def test_a_workbook_with_a_table_per_sheet_loads_every_sheet(con, landing):
    header = ["Quelle", "Jahr", "Land", "Frage", "Anteil in %"]
    _workbook(
        landing / "waves.xlsx",
        Info=[["Edelman Trust Barometer: Datenexport"]],
        **{"2019": [header, ["Edelman", 2019, "DE", "Q", 76]]},
        **{"2020": [header, ["Edelman", 2020, "DE", "Q", 77]]},
    )
    # A problem is reported under its sheet's name; the same figure in two sheets is one.
    _workbook(
        landing / "bad.xlsx",
        A=[header, ["Edelman", 2019, "FR", "Q", 70]],
        B=[header, ["Edelman", 2019, "Atlantis", "Q", 71]],
    )
    _workbook(
        landing / "twice.xlsx",
        Daten=[header, ["Edelman", 2019, "IT", "Q", 66]],
        Kopie=[header, ["Edelman", 2019, "IT", "Q", 66]],
    )

    outcomes = _ingest(con, landing)

    assert (outcomes["waves.xlsx"].status, outcomes["waves.xlsx"].rows_loaded) == ("loaded", 2)
    assert [(row[0], row[1], row[3]) for row in _results(con)] == [
        ("DE", 2019, 76.0),
        ("DE", 2020, 77.0),
    ]
    assert _reasons(outcomes["bad.xlsx"]) == [
        (2, "Land (scope)", "sheet 'B': unknown country 'Atlantis'")
    ]
    [(row, column, reason)] = _reasons(outcomes["twice.xlsx"])
    assert (row, column) == (0, "*")
    assert reason.startswith("sheets 'Daten' and 'Kopie' both hold source_id 'edelman'")
    assert reason.endswith('or name the sheet to read in the sidecar\'s "sheet"')


def test_a_wide_table_of_years_or_countries_as_columns_is_read_as_its_figures(con, landing):
    _write(
        landing / "years.csv",
        [
            "Land;Frage;2018;2019;2020",
            "Deutschland;Vertrauensindex;41;44;",
            "Global;Vertrauensindex;52;52;54",
        ],
    )
    (landing / "years.survey.json").write_text(
        json.dumps({"source_name": "Edelman", "measure": "index"})
    )
    book = Workbook()
    sheet = book.active
    sheet.append(["Statement", "Global", "DE", "U.S.", "Frankreich"])
    sheet.append(["CEOs should lead", 76, 71, 72, None])
    book.save(landing / "countries.xlsx")
    (landing / "countries.survey.json").write_text(
        json.dumps({"source_name": "Edelman", "wave": 2019})
    )
    # Two countries beside a country column are no wide table: the columns are extra.
    _write(landing / "plain.csv", ["Quelle;Jahr;Land;Frage;Anteil;DE;FR", "E;2019;IT;Q;66;x;y"])

    outcomes = _ingest(con, landing)

    assert {o.status for o in outcomes.values()} == {"loaded"}
    assert con.execute(
        "select file_name, scope, wave, value from raw.survey_results order by all"
    ).fetchall() == [
        ("countries.xlsx", "DE", 2019, 71.0),
        ("countries.xlsx", "US", 2019, 72.0),
        ("countries.xlsx", "global", 2019, 76.0),
        ("plain.csv", "IT", 2019, 66.0),
        ("years.csv", "DE", 2018, 41.0),
        ("years.csv", "DE", 2019, 44.0),
        ("years.csv", "global", 2018, 52.0),
        ("years.csv", "global", 2019, 52.0),
        ("years.csv", "global", 2020, 54.0),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "Source;Wave;Question;Yes;No;DK",
        "Source;Wave;Question;Mean;SD;SE",
        "Quelle;Jahr;Frage;Total;AT;IN",
        "Quelle;Jahr;Frage;Total;IN;NO",
        "Source;Wave;Question;Mean;SD;SE;CV",
        "Source;Wave;Question;Total;Female;Male;DK",
    ],
)
def test_answer_and_statistics_columns_are_no_wide_table_of_countries(con, landing, header):
    """``No`` is Norway's code and ``DK`` Denmark's, ``SD`` Sudan's and ``SE`` Sweden's; as
    column heads they are answers and statistics (CV, Cape Verde's, a coefficient of
    variation; Male the Maldives' capital), and the file has no scope: a run of them reads
    no countries unless it names two otherwise."""
    _write(landing / "answers.csv", [header, "Acme;2020;Should CEOs speak up?;61;30;9"])

    reasons = _reasons(_ingest(con, landing)["answers.csv"])

    assert any(column == "scope" and "required column missing" in r for _, column, r in reasons)
    assert _results(con) == []


@pytest.mark.parametrize(
    ("header", "countries"),
    [
        # The Trust Barometer's markets by code: India, Indonesia and Sweden's codes are
        # also answer and statistics heads; beside other countries, in capitals, they are
        # countries.
        ("Frage;AR;DE;IN;ID;IE;SE;US", ["AR", "DE", "ID", "IE", "IN", "SE", "US"]),
        ("Frage;DE;DK;SE;NO;FI;IS", ["DE", "DK", "FI", "IS", "NO", "SE"]),
        # An aggregate's column among them is not read, and the countries after it are; a
        # code after it is read only beside a country named otherwise.
        ("Frage;Deutschland;Frankreich;Total;Italien;Spanien", ["DE", "ES", "FR", "IT"]),
        ("Frage;Deutschland;Frankreich;Total;NA", ["DE", "FR"]),
        # The aggregate in German, French and Spanish: not read as the global figure.
        ("Frage;Deutschland;Frankreich;Gesamt;Italien", ["DE", "FR", "IT"]),
        ("Frage;Deutschland;Frankreich;Insgesamt", ["DE", "FR"]),
        ("Frage;Deutschland;Frankreich;\u00d8", ["DE", "FR"]),
        ("Question;France;Espagne;Moyenne", ["ES", "FR"]),
        ("Pregunta;España;Francia;Promedio", ["ES", "FR"]),
        # Codes after the aggregate are read when two stand together, or beside a country
        # named otherwise; a run of codes reads when it names one country otherwise.
        ("Frage;DE;FR;Total;SE;NO;DK", ["DE", "DK", "FR", "NO", "SE"]),
        ("Frage;SE;NO;DK;FI", ["DK", "FI", "NO", "SE"]),
        ("Question;US;IN;ID", ["ID", "IN", "US"]),
        # Answer heads after the countries are no countries apart from them.
        ("Question;Germany;France;Italy;Female;Male", ["DE", "FR", "IT"]),
        # The Trust Barometer's own market codes, beside its global column (they were
        # unknown: the file was refused for heads "apart" that were countries).
        (
            "Frage;GLOBAL 27;ARG;GER;MAL;NED;SAF;SIN;SPA;UK;USA",
            ["AR", "DE", "ES", "GB", "MY", "NL", "SG", "US", "ZA", "global"],
        ),
    ],
)
def test_every_country_column_of_a_wide_table_is_read(con, landing, header, countries):
    figures = ";".join(str(40 + i) for i in range(header.count(";")))
    _write(landing / "wide.csv", [header, f"Vertrauen in Unternehmen;{figures}"])
    (landing / "wide.survey.json").write_text(json.dumps({"source_name": "Edelman", "wave": 2024}))

    assert _ingest(con, landing)["wide.csv"].status == "loaded"
    assert [row[0] for row in _results(con)] == countries


@pytest.mark.parametrize(
    ("header", "read", "apart"),
    [
        # Only one run of country columns is read: the one apart was left unread in silence.
        ("Frage;DE;FR;Notiz;Italien", "DE, FR", "'Italien' also heads a column"),
        ("Frage;DE;FR;Quelle;IT", "DE, FR", "'IT' also heads a column"),
        # A lone code between countries read may be a country or an answer's head.
        ("Frage;DE;FR;Total;NA;Mean;ES;AT", "DE, FR, ES, AT", "'NA' also heads a column"),
    ],
)
def test_a_country_column_apart_from_a_wide_table_s_countries_is_refused(
    con, landing, header, read, apart
):
    figures = ";".join(str(40 + i) for i in range(header.count(";")))
    _write(landing / "wide.csv", [header, f"Vertrauen;{figures}"])
    (landing / "wide.survey.json").write_text(json.dumps({"source_name": "Edelman", "wave": 2024}))

    assert _reasons(_ingest(con, landing)["wide.csv"]) == [
        (
            0,
            "*",
            f"read as a wide table, countries as columns ({read}), but {apart} apart from "
            "them, which would be left unread: put every country column side by side",
        )
    ]
    assert _results(con) == []


def test_a_wide_table_s_units_row_repeated_header_and_notes_are_no_figures(con, landing):
    _write(
        landing / "wide.csv",
        [
            "Frage;DE;FR",
            ";in %;in %",
            "CEOs sollen handeln;76;70",
            "Frage;DE;FR",
            "CEOs sollen informieren;80;78",
            "",
            "Quelle: Edelman Trust Barometer 2019",
        ],
    )
    (landing / "wide.survey.json").write_text(json.dumps({"source_name": "Edelman", "wave": 2019}))
    # A figure cut short under a wide table is reported, not dropped.
    _write(landing / "cut.csv", ["Frage;DE;FR", "CEOs sollen handeln;76;70", "CEOs sollen"])
    (landing / "cut.survey.json").write_text(json.dumps({"source_name": "Edelman", "wave": 2019}))

    outcomes = _ingest(con, landing)

    assert (outcomes["wide.csv"].status, outcomes["wide.csv"].rows_loaded) == ("loaded", 4)
    assert outcomes["cut.csv"].status == "quarantined"
    assert 3 in {row for row, _, _ in _reasons(outcomes["cut.csv"])}


@pytest.mark.parametrize("cell", ["Edition 19", "Jahr 19", "2011/12"])
def test_a_wave_with_a_short_year_beside_no_month_or_a_season_is_refused(con, landing, cell):
    _write(landing / "wave.csv", [HEADER, f"Edelman;{cell};DE;Q;76;1150"])

    assert _reasons(_ingest(con, landing)["wave.csv"]) == [
        (2, "Jahr (wave)", f"{cell!r} is not a year")
    ]


def test_a_hidden_sheet_is_no_table_of_the_workbook(con, landing):
    header = ["Quelle", "Jahr", "Land", "Frage", "Anteil in %"]
    book = Workbook()
    book.remove(book.active)
    for title, country, state in (("Daten", "DE", "visible"), ("Kopie", "DE", "hidden")):
        sheet = book.create_sheet(title)
        sheet.append(header)
        sheet.append(["Edelman", 2019, country, "Q", 76])
        sheet.sheet_state = state
    book.save(landing / "hidden.xlsx")

    assert _ingest(con, landing)["hidden.xlsx"].status == "loaded"
    assert [(row[0], row[3]) for row in _results(con)] == [("DE", 76.0)]


def test_a_respondent_with_a_country_and_a_bad_first_answer_is_reported_not_dropped(con, landing):
    _write(landing / "typo.csv", ["resp,land,weight,q1", "1,DE,1,5a", "2,DE,1,4"])
    (landing / "typo.survey.json").write_text(json.dumps(_tool_sidecar("resp", "land", ["q1"])))

    # Not quoted: a cell with a digit may be a respondent id (never shown).
    assert _reasons(_ingest(con, landing)["typo.csv"]) == [(2, "q1", "is not a number")]


@pytest.mark.timeout(120)
def test_nested_brackets_in_a_country_cell_cost_no_more_than_one_level():
    from social_leadership.reference import normalize_country

    for text in ("Germany" + " (x)" * 25_000, "x" + " (x" * 3_000 + ")" * 3_000):
        with pytest.raises(ValueError, match="unknown country"):
            normalize_country(text)


# Mac Excel's "CSV (Macintosh)" and "Comma Separated Values": Mac Roman, lines ended by CR.
# Read as Windows-1252, its ä, ö, ü and ß are Š, š, Ÿ and § and its Ö an ellipsis. Excel's
# "CSV (MS-DOS)": DOS Latin-1 (code page 850); read as Windows-1252, its ä and ü are a low
# quotation mark and a byte Windows-1252 leaves undefined, as Mac Roman Ñ and Å.
MAC_AND_DOS = pytest.mark.parametrize(
    ("encoding", "line_end"), [("mac_roman", "\r"), ("cp850", "\r\n")], ids=["mac", "ms-dos"]
)


@MAC_AND_DOS
def test_a_mac_or_dos_excel_csv_of_figures_loads_with_its_umlauts(con, landing, encoding, line_end):
    lines = [
        "Quelle;Jahr;Land;Frage;Anteil",
        "Edelman;2019;Österreich;Glaubwürdigkeit der Führungskräfte;44",
        "Edelman;2019;Frankreich;Glaubwürdigkeit der Führungskräfte;41",
    ]
    (landing / "excel.csv").write_bytes((line_end.join(lines) + line_end).encode(encoding))

    assert _ingest(con, landing)["excel.csv"].status == "loaded"
    rows = con.execute("select scope, question_text, value from raw.survey_results order by 1")
    assert rows.fetchall() == [
        ("AT", "Glaubwürdigkeit der Führungskräfte", 44.0),
        ("FR", "Glaubwürdigkeit der Führungskräfte", 41.0),
    ]


@MAC_AND_DOS
def test_a_mac_or_dos_excel_csv_of_respondents_loads(con, landing, encoding, line_end):
    lines = ["resp;land;gewicht;q1;q2", "1;Österreich;1;7;4", "2;Türkei;1,5;5;2"]
    (landing / "panel.csv").write_bytes((line_end.join(lines) + line_end).encode(encoding))
    (landing / "panel.survey.json").write_text(json.dumps(sidecar()))

    assert _ingest(con, landing)["panel.csv"].status == "loaded"
    rows = con.execute(
        "select country_code, weight, answers from raw.survey_respondent_answers order by all"
    )
    assert rows.fetchall() == [("AT", 1.0, [7, 4]), ("TR", 1.5, [5, 2])]


def test_files_landed_together_load_oldest_first_so_a_later_correction_wins(con, landing):
    # By name, the correction (capital K sorts first) loaded first and the original it
    # corrects overwrote it.
    line = "Edelman;2019;Deutschland;CEOs sollen Stellung beziehen;{};1150"
    original = _write(landing / "edelman_2019.csv", [HEADER, line.format(67)])
    correction = _write(landing / "Korrektur_edelman_2019.csv", [HEADER, line.format(76)])
    written = correction.stat().st_mtime
    os.utime(original, (written - 3600, written - 3600))

    outcomes = _ingest(con, landing)

    assert list(outcomes) == ["edelman_2019.csv", "Korrektur_edelman_2019.csv"]
    rows = con.execute("select scope, value, file_name from raw.survey_results").fetchall()
    assert rows == [("DE", 76.0, "Korrektur_edelman_2019.csv")]


def test_respondents_coded_by_iso_numeric_country_codes_load(con, landing):
    # WVS and ISSP code countries by ISO 3166-1 numeric: a number column drops the leading
    # zero (40, Austria) and writes 276.0 where it has gaps.
    _write(
        landing / "wvs.csv",
        ["resp;land;gewicht;q1;q2", "1;276;1;7;4", "2;40;1;5;2", "3;276.0;1;6;3", "4;36;1;8;5"],
    )
    (landing / "wvs.survey.json").write_text(json.dumps(sidecar()))

    assert _ingest(con, landing)["wvs.csv"].status == "loaded"
    rows = con.execute(
        "select country_code, count(*) from raw.survey_respondent_answers group by all order by 1"
    )
    assert rows.fetchall() == [("AT", 1), ("AU", 1), ("DE", 2)]


@pytest.mark.parametrize(
    ("codes", "refused", "said"),
    [
        (["4", "4", "4"], [2, 3, 4], "among no other numbers"),
        (["4", "8", "40.0"], [2, 3, 4], "among no other numbers"),
        # A missing-value mark or a blank beside them does not make them ISO codes.
        (["4", "40", "NA"], [2, 3, 4], "among no other numbers"),
        # Beside a name: the file writes countries as names, its number is an answer code.
        (["4", "Germany", "Germany"], [2], "beside country names"),
        # Beside ISO codes of three digits and a cell naming no country (the review's WVS
        # case): ISO codes, the bad cell alone refused.
        (["276", "40", "36", "-5"], [5], None),
    ],
)
def test_respondents_countries_as_numbers_under_100_alone_are_refused(
    con, landing, codes, refused, said
):
    # Qualtrics' answer code 4 (its fourth country) loaded a whole file as Afghanistan's,
    # ISO 004: numbers under 100 alone cannot tell answer codes from ISO codes.
    rows = [f"{i};{code};1;7;4" for i, code in enumerate(codes, start=1)]
    _write(landing / "qualtrics.csv", ["resp;land;gewicht;q1;q2", *rows])
    (landing / "qualtrics.survey.json").write_text(json.dumps(sidecar()))

    reasons = _reasons(_ingest(con, landing)["qualtrics.csv"])

    assert sorted({row for row, _, _ in reasons}) == refused
    numbers = [r for _, _, r in reasons if "a number under 100" in r]
    if said is None:
        assert numbers == []
        return
    assert numbers
    assert all(said in r for r in numbers)
    assert "write ISO codes with three digits (004, 040)" in numbers[0]
    assert con.execute("select count(*) from raw.survey_respondent_answers").fetchone() == (0,)


def test_numbers_heading_columns_are_no_countries_of_a_wide_table(con, landing):
    # ISO numbers Antarctica 10, Andorra 20 and Austria 40: as a header they are percentiles.
    _write(landing / "deciles.csv", ["Quelle;Jahr;Frage;10;20;40", "Edelman;2019;Q;1;2;3"])

    outcome = _ingest(con, landing)["deciles.csv"]

    assert outcome.status == "quarantined"
    assert con.execute("select count(*) from raw.survey_results").fetchone() == (0,)


@pytest.mark.parametrize("wave", [2024, "2024", "Wave 2024", "Jan-24"])
def test_a_respondent_sidecar_s_wave_may_be_written_as_text(con, landing, wave):
    # As the published sidecar takes it; "2024" was refused as no plausible survey year,
    # "Wave 2024" too.
    _write(landing / "panel.csv", ["resp;land;gewicht;q1;q2", "1;DE;1;7;4"])
    (landing / "panel.survey.json").write_text(json.dumps({**sidecar(), "wave": wave}))

    assert _ingest(con, landing)["panel.csv"].status == "loaded"
    waves = con.execute("select distinct wave from raw.survey_respondent_answers").fetchall()
    assert waves == [(2024,)]


@pytest.mark.parametrize("wave", ["soon", "1850", True])
def test_a_respondent_sidecar_s_wave_that_names_no_year_is_refused(con, landing, wave):
    _write(landing / "panel.csv", ["resp;land;gewicht;q1;q2", "1;DE;1;7;4"])
    (landing / "panel.survey.json").write_text(json.dumps({**sidecar(), "wave": wave}))

    issues = _reasons(_ingest(con, landing)["panel.csv"])

    assert [column for _, column, _ in issues] == ["wave"]


@pytest.mark.parametrize("flag", ["false", "no", 0])
def test_a_respondent_sidecar_s_synthetic_flag_must_be_true_or_false(con, landing, flag):
    # The string "false" was true to Python: a real survey was marked invented.
    _write(landing / "panel.csv", ["resp;land;gewicht;q1;q2", "1;DE;1;7;4"])
    (landing / "panel.survey.json").write_text(json.dumps({**sidecar(), "is_synthetic": flag}))

    issues = _reasons(_ingest(con, landing)["panel.csv"])

    assert [(column, reason) for _, column, reason in issues] == [
        ("is_synthetic", f"{flag!r} is not true or false (a JSON boolean)")
    ]


@pytest.mark.parametrize(("flag", "kept"), [(False, False), (True, True), (None, False)])
def test_a_respondent_sidecar_s_synthetic_flag_is_kept(con, landing, flag, kept):
    # null, as tools write None, is the flag left out: false.
    _write(landing / "panel.csv", ["resp;land;gewicht;q1;q2", "1;DE;1;7;4"])
    (landing / "panel.survey.json").write_text(json.dumps({**sidecar(), "is_synthetic": flag}))

    assert _ingest(con, landing)["panel.csv"].status == "loaded"
    flags = con.execute("select distinct is_synthetic from raw.survey_questions").fetchall()
    assert flags == [(kept,)]


# A pivot table pasted as values (its tabular form without "Repeat all item labels") writes
# each label once, blank in the rows under it, and adds total rows.
PIVOT = [
    "Quelle;Jahr;Land;Frage;Anteil",
    "Edelman;2019;Deutschland;CEOs sollen führen;76",
    ";;;CEOs sollen mitgestalten;71",
    ";;Frankreich;CEOs sollen führen;65",
    ";;;CEOs sollen mitgestalten;60",
]
PIVOT_FIGURES = [
    ("DE", "ceos_sollen_fuhren", 76.0),
    ("DE", "ceos_sollen_mitgestalten", 71.0),
    ("FR", "ceos_sollen_fuhren", 65.0),
    ("FR", "ceos_sollen_mitgestalten", 60.0),
]


def _figures(con) -> list[tuple]:
    return con.execute(
        "select scope, question_id, value from raw.survey_results order by all"
    ).fetchall()


def test_a_pivot_table_s_labels_written_once_are_read_for_the_rows_under_them(con, landing, caplog):
    _write(landing / "pivot.csv", PIVOT)

    assert _ingest(con, landing)["pivot.csv"].status == "loaded"
    assert _figures(con) == PIVOT_FIGURES
    assert "pivot.csv: row 3, row 4, row 5 empty label cells at the start" in caplog.text


def test_a_pivot_table_s_total_rows_are_left_out(con, landing, caplog):
    book = Workbook()
    sheet = book.active
    for line in PIVOT[:3]:
        sheet.append(line.split(";"))
    sheet.append([None, None, "Deutschland Ergebnis", None, 73.5])
    for line in PIVOT[3:]:
        sheet.append(line.split(";"))
    sheet.append(["Gesamtergebnis", None, None, None, 68])
    book.save(landing / "pivot.xlsx")

    assert _ingest(con, landing)["pivot.xlsx"].status == "loaded"
    assert _figures(con) == PIVOT_FIGURES
    assert "pivot.xlsx: row 4, row 7 a pivot table's total: left out" in caplog.text


@pytest.mark.parametrize(
    ("rows", "empty_at"),
    [
        # An empty label after a filled one is no pivot table's layout.
        (["Edelman;2019;DE;Q1;76", "Edelman;;FR;Q1;65"], [(3, "Jahr (wave)")]),
        # Nothing above to take the label from.
        ([";2019;DE;Q1;76", "Edelman;2019;FR;Q1;65"], [(2, "Quelle (source_name)")]),
        # Nor from a row above that lacks a label itself.
        (
            ["Edelman;;DE;Q1;76", ";;FR;Q1;65"],
            [(2, "Jahr (wave)"), (3, "Quelle (source_name)"), (3, "Jahr (wave)")],
        ),
    ],
)
def test_an_empty_label_not_under_a_written_one_is_still_reported(con, landing, rows, empty_at):
    _write(landing / "gaps.csv", ["Quelle;Jahr;Land;Frage;Anteil", *rows])

    reasons = _reasons(_ingest(con, landing)["gaps.csv"])

    assert [(row, column) for row, column, reason in reasons] == empty_at
    assert {reason for _, _, reason in reasons} == {"value is empty"}


def test_an_empty_audience_is_the_whole_population_and_never_taken_from_above(con, landing):
    _write(
        landing / "audience.csv",
        [
            "Audience;Quelle;Jahr;Land;Frage;Anteil",
            "Informed Public;Edelman;2019;DE;Trust;60",
            ";Edelman;2019;DE;Trust;47",
        ],
    )

    assert _ingest(con, landing)["audience.csv"].status == "loaded"
    assert _figures(con) == [("DE", "trust", 47.0), ("DE", "trust_informed_public", 60.0)]


def test_a_question_named_as_a_total_is_a_figure(con, landing):
    _write(
        landing / "total.csv",
        ["Quelle;Jahr;Land;Frage;Anteil", "Edelman;2019;DE;Vertrauen Total;70"],
    )

    assert _ingest(con, landing)["total.csv"].status == "loaded"
    assert _figures(con) == [("DE", "vertrauen_total", 70.0)]


def test_a_pivot_table_s_audience_and_measure_written_once_are_read_below_too(con, landing):
    _write(
        landing / "pivot.csv",
        [
            "source_id;source_name;wave;scope;audience;measure;question_id;value",
            "edelman;Edelman;2024;DE;Informed Public;index;q1;70",
            ";;;;;;q2;60",
            ";;;FR;General Population;share_pct;q1;50",
        ],
    )

    assert _ingest(con, landing)["pivot.csv"].status == "loaded"
    rows = con.execute(
        "select scope, question_id, measure, value from raw.survey_results order by all"
    )
    assert rows.fetchall() == [
        ("DE", "q1_informed_public", "index", 70.0),
        ("DE", "q2_informed_public", "index", 60.0),
        ("FR", "q1", "share_pct", 50.0),
    ]


@pytest.mark.parametrize(
    ("header", "rows", "loaded"),
    [
        # An optional question text is the question id where empty, never the row above's.
        (
            "question_text;source_id;source_name;wave;scope;question_id;value",
            ["Trust in CEOs;edelman;Edelman;2024;DE;q1;70", ";edelman;Edelman;2024;DE;q2;60"],
            [("q1", "Trust in CEOs"), ("q2", "q2")],
        ),
        # A question named like a total, its optional text empty, is a figure.
        (
            "source_id;source_name;wave;scope;question_id;question_text;value",
            ["edelman;Edelman;2024;DE;Total;;66", "edelman;Edelman;2024;DE;trust sum;;61"],
            [("Total", "Total"), ("trust sum", "trust sum")],
        ),
    ],
)
def test_an_optional_label_left_empty_is_no_pivot_layout(con, landing, header, rows, loaded):
    _write(landing / "figures.csv", [header, *rows])

    assert _ingest(con, landing)["figures.csv"].status == "loaded"
    texts = con.execute("select question_id, question_text from raw.survey_results order by 1")
    assert texts.fetchall() == loaded


def test_a_quote_never_closed_refuses_a_table_naming_its_row(con, landing):
    # Read by the csv module, every line below the quote was one cell of line 2: Germany
    # loaded with a question of three lines, France and Italy were lost.
    _write(
        landing / "open.csv",
        [
            HEADER,
            'Edelman;2019;DE;"Q;76;1150',
            "Edelman;2019;FR;Q;70;2000",
            "Edelman;2019;IT;Q;6;90",
        ],
    )

    assert _reasons(_ingest(con, landing)["open.csv"]) == [(2, "*", UNCLOSED_QUOTE)]
    assert _results(con) == []


@pytest.mark.parametrize(
    "below",
    [
        ["3;FR;1;3;2;x", "4;FR;1;5;2;y"],
        # A stray quote below closes the first, with text after it; the quotes' count is
        # then even, which the first check of the file trusted.
        ['3;FR;1;3;2;27" Monitor', "4;FR;1;5;2;y"],
        ['3;FR;1;3;2;"x', '4;FR;1;5;2;"y'],
        # More than the csv module's cell limit below the quote: its error was swallowed,
        # also when the cells below are empty ones written "" (a quote inside the cell).
        [f"{n};FR;1;3;2;{'x' * 200}" for n in range(3, 1003)],
        [f'{n};FR;1;3;2;"";{"x" * 200}' for n in range(3, 1003)],
    ],
    ids=[
        "to_the_end",
        "closed_by_a_later_quote",
        "three_quotes",
        "over_the_cell_limit",
        "over_the_cell_limit_with_empty_quoted_cells",
    ],
)
def test_a_quote_never_closed_refuses_a_respondent_file_naming_its_row(con, landing, below):
    # pyarrow read every line below the quote into the comment cell, a column not read:
    # the rows below were lost and the file counted as loaded.
    lines = ["resp;land;gewicht;q1;q2;kommentar", "1;DE;1;7;4;kurz", '2;DE;1;5;2;"über']
    lines += below
    _write(landing / "open.csv", lines)
    (landing / "open.survey.json").write_text(json.dumps(sidecar()))

    outcome = _ingest(con, landing)["open.csv"]

    assert (3, "*", UNCLOSED_QUOTE) in _reasons(outcome)


def test_a_header_cell_with_a_line_break_is_read_and_rows_keep_their_lines(con, landing):
    # Excel's Alt+Enter in a header cell: the header search read lines, and pyarrow skipped
    # the header's first line only.
    _write(
        landing / "wrapped.csv",
        [
            'resp;land;gewicht;q1;q2;"Kommentar\n(frei)"',
            "1;DE;1;7;4;a",
            "2;DE;1;5;2;b",
            "3;FR;;5;2;c",
        ],
    )
    (landing / "wrapped.survey.json").write_text(json.dumps(sidecar()))

    outcome = _ingest(con, landing)["wrapped.csv"]

    assert [(row, column) for row, column, _ in _reasons(outcome)] == [(5, "gewicht")]


def _respondent_book(path: Path, answer: object) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["Acme CEO survey, wave 2024"])
    sheet.append(["resp", "land", "weight", "q1"])
    sheet.append(["r1", "DE", 1, 7])
    sheet.append(["r2", "DE", 1, answer])
    sheet.append(["r3", "FR", 1, "=D3-1"])
    book.save(path)


def test_formulas_a_program_wrote_without_values_are_refused_not_read_as_empty(con, landing):
    # openpyxl and other writers save a formula without computing it: read as an empty
    # cell, its answer left the base of its question without a word.
    _respondent_book(landing / "computed.xlsx", "=D3+1")
    (landing / "computed.survey.json").write_text(json.dumps(_tool_sidecar("resp", "land", ["q1"])))
    book = Workbook()
    book.active.append(["Quelle", "Jahr", "Land", "Frage", "Anteil"])
    book.active.append(["Edelman", 2020, "DE", "Q", "=70+6"])
    book.save(landing / "published.xlsx")

    outcomes = _ingest(con, landing)

    assert _reasons(outcomes["computed.xlsx"]) == [
        (
            0,
            "*",
            "2 cell(s) hold a formula without a saved value (D4, D5): the program that wrote "
            "the file did not compute them, and they would read as empty; open and save the "
            "file in Excel or LibreOffice, or write the values",
        )
    ]
    assert "formula without a saved value (E2)" in _reasons(outcomes["published.xlsx"])[0][2]


def test_formulas_saved_with_their_values_are_read_as_the_values(con, landing):
    path = landing / "saved.xlsx"
    _respondent_book(path, 8)
    book_sheet = __import__("openpyxl").load_workbook(path)
    # Right of the table: no cell of it, whatever it holds.
    book_sheet.active["Z3"] = "=D3*2"
    book_sheet.save(path)
    # As Excel saves it: each formula with the value it computed, and a formula whose
    # value is an empty text (=IF(...;"";...)) as text, empty.
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = parts[sheet].replace(b"<f>D3-1</f><v />", b"<f>D3-1</f><v>7</v>")
    parts[sheet] = parts[sheet].replace(
        b'<c r="D4" t="n"><v>8</v></c>', b'<c r="D4" t="str"><f>IF(1,"","")</f><v/></c>'
    )
    assert b"<v>7</v>" in parts[sheet]
    assert b'IF(1,"","")' in parts[sheet]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    (landing / "saved.survey.json").write_text(json.dumps(_tool_sidecar("resp", "land", ["q1"])))

    assert _ingest(con, landing)["saved.xlsx"].status == "loaded"
    # r2's empty answer is no answer: left out of the question's base, as an empty cell is.
    assert sorted(
        (row[0][0] is None, row[0][0])
        for row in con.execute("select answers from raw.survey_respondent_answers").fetchall()
    ) == [(False, 7), (False, 7), (True, None)]
