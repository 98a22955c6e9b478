"""One intake toolkit (issue 10, point 4): the roster, history imports and survey files
report problems with one row-issue type, keep rejected files with one quarantine writer,
quote SQL with one helper, and resolve the pseudonym key in one place.

The real parts throughout: real files on disk, a real DuckDB file, the real loaders.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import logging
import os
import re
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest
from survey_microdata import KEY, microdata_frame, sidecar, write_microdata

from social_leadership.follower_imports import import_folder, import_history
from social_leadership.intake import (
    UTF8_WITH_CP1252,
    ClosedQuoteReader,
    HeaderLineError,
    RowIssue,
    detect_encoding,
    find_header,
    holds_byte,
)
from social_leadership.roster import Account, Executive, Roster, load_roster, roster_columns
from social_leadership.sql import quote_identifier, quote_literal
from social_leadership.surveys import ingest_folder, load_file
from social_leadership.surveys.common import SurveyValidationError
from social_leadership.warehouse import ensure_schema

INCLUDE = Path(__file__).resolve().parents[2] / "include" / "social_leadership"
TODAY = date(2026, 3, 2)
ROSTER = Roster(
    executives=[Executive("joe", "J", "Chair", "Siemens Energy", "DE", "Industrials", False)],
    accounts=[Account("joe", "x", "JoeKaeser")],
)
HISTORY_HEADER = "account_handle,platform,date,followers\n"
# A name near the 255 bytes a file system allows: with a time stamp before it, it is too
# long for a folder or file name unless cut short.
LONG_NAME = "h" * 240 + ".csv"


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_schema(connection)
    yield connection
    connection.close()


# --- encodings -----------------------------------------------------------------------------

# Mac Roman and Windows-1252 both decode any byte: the reading with words wins, a tie is
# Windows'. Texts of Windows-1252 whose signs are Mac Roman's letters stay Windows-1252.
ENCODED_TEXTS = [
    ("Land;Frage\rDeutschland;Glaubwürdigkeit der Führungskräfte\r", "mac_roman"),
    ("Stadt\rKöln\r", "mac_roman"),
    ("Straße\rGroße Straße\r", "mac_roman"),
    ("Land\rÖsterreich\r", "mac_roman"),
    ("pays\rmédias, ça va\r", "mac_roman"),
    ("Frage\rdon\u2019t \u201cwait\u201d\r", "mac_roman"),
    ("Land;Frage\r\nDeutschland;Glaubwürdigkeit der Führungskräfte\r\n", "cp1252"),
    ("Frage\r\n\u201cCEOs lead\u201d \u2013 don\u2019t wait\u2026\r\n", "cp1252"),
    ("País\rEspaña, años\r", "mac_roman"),
    ("Firma\r\nŠkoda Auto\r\n", "cp1252"),
    ("Name\r\nMarc Lœwenthal, Anne Cœurdacier\r\n", "cp1252"),
    ("Preis\r\n¥1000, 5‰\r\n", "cp1252"),
    ("Marke\r\nWindows\u2122Server\r\n", "cp1252"),
    ("Frage\r\n\u2022Vertrauen;\u2022Führung\r\n", "cp1252"),
    ("Preis\r\n5 €\r\n", "cp1252"),
    ("question\r\nConfiance dans les médias, cœur, España, Bjørn\r\n", "cp1252"),
    # Slovak and Czech names: š or ž ending a word or before a vowel; German's ö (Mac Roman
    # 0x9A, Windows' š) comes before a consonant.
    ("Name;Firma\r\nAndrej Babiš;Agrofert\r\n", "cp1252"),
    ("Name\r\nJaroslav Hašek, Miloš\r\n", "cp1252"),
    ("Name\rGerhard Schröder\r", "mac_roman"),
    # Signs Windows-1252 text holds where DOS Latin-1 reads capitals: a middle dot between
    # words, the times sign, a half, superscripts after a figure or letter, ordinals.
    (
        "name;title\r\nJürgen Müller;CEO · Co-Founder\r\nAnna Schmidt;CFO · Board Member\r\n"
        "Tom Weber;Founder · Investor\r\nLisa Braun;CTO · Speaker\r\n",
        "cp1252",
    ),
    ("Frage\r\nWie oft pro Woche (3\u00d7 oder mehr)?\r\n", "cp1252"),
    ("Dauer\r\n2 ½ Stunden, 10 m², Fußnote¹, 1º piso\r\n", "cp1252"),
    # Letters alone: Norwegian å ("to"), Italian È, Irish Ó.
    (
        "spørsmål;andel\r\nHvor viktig er det å ha tillit til ledelsen;54\r\n"
        "Er det lett å snakke med lederen din;61\r\nAnbefaler du andre å jobbe her;47\r\n"
        "Ledelsen er flink til å kommunisere;39\r\nDet er trygt å si ifra;58\r\n",
        "cp1252",
    ),
    ("spørsmål;andel\rEr det lett å snakke med lederen din;61\r", "mac_roman"),
    ("Domanda\r\nÈ compito dei CEO prendere posizione?\r\n", "cp1252"),
    ("Name\r\nFeargal Ó Briain\r\n", "cp1252"),
    # A middle dot outside words, as a bullet or between abbreviations.
    ("Vorstand;Team\r\n· Strategie;CEO·CFO\r\n", "cp1252"),
    # Mac Roman's ≥, ™ are Windows-1252's ³, ª; its · Windows-1252's á in a word.
    ("Frage;Wert\rAlter ≥ 50;Männer\r", "mac_roman"),
    ("Größe;Marke\rx≥3;Windows™ Server\r", "mac_roman"),
    ("Nombre\r\nIgnacio Sánchez Galán, Telefónica · Madrid\r\n", "cp1252"),
]


@pytest.mark.parametrize(("text", "encoding"), ENCODED_TEXTS)
def test_mac_roman_is_told_from_windows_1252_by_its_words(tmp_path, text, encoding):
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode(encoding))

    assert detect_encoding(path) == encoding


# Excel's "CSV (MS-DOS)" writes DOS Latin-1 (code page 850), which decodes any byte as the
# two above do: its ä and é are Windows-1252's low quotation marks, its ü a byte Windows-1252
# leaves undefined (read as Latin-1's), its Ö the trademark sign; in Mac Roman, its ä, é, ö
# and ü are Ñ, Ç, î and Å.
DOS_TEXTS = [
    "Name;Stadt\r\nJoe Käser;München\r\n",
    "name,city,title\r\nJürgen Müller,Köln,Geschäftsführer\r\n",
    "Name\r\nRenée Dupré, Café\r\n",
    "Land\r\nÖsterreich\r\n",
    "Stadt\r\nKöln\r\n",
    "NAME,STADT\r\nJÜRGEN MÜLLER,KÖLN\r\n",
    "nombre\r\nJosé Ibáñez, Málaga\r\n",
    "namn\r\nÅsa Öberg, Søren Ærø, København\r\n",
    "pays\r\nmédias, ça va\r\n",
    # A capital alone is an initial or a sign (Ø: an average), a small letter alone no word.
    "Name\r\nÖ. Türeci, Ø 52\r\n",
]


@pytest.mark.parametrize("text", DOS_TEXTS)
def test_dos_latin_1_is_told_from_windows_1252_and_mac_roman_by_its_words(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("cp850"))

    assert detect_encoding(path) == "cp850"
    # The same words in the other encodings are not taken for DOS Latin-1.
    for other in ("cp1252", "mac_roman"):
        path.write_bytes(text.encode(other))
        assert detect_encoding(path) == other


@pytest.mark.parametrize("encoding", ["mac_roman", "cp850", "cp1252"])
def test_the_encoding_is_told_by_words_far_down_a_large_file(tmp_path, encoding):
    # Sorted by country, a file may spell its first umlaut megabytes down: the first
    # megabyte alone read as ASCII, and the file as Windows-1252 (Österreich as …sterreich).
    path = tmp_path / "panel.csv"
    ascii_rows = "".join(f"{n};Deutschland;Frankfurt am Main\r\n" for n in range(80_000))
    path.write_bytes(
        ("id;land;stadt\r\n" + ascii_rows).encode()
        + "80000;Österreich;Wien\r\n80001;Schweiz;Zürich\r\n".encode(encoding)
    )
    assert path.stat().st_size > 2 << 20

    assert detect_encoding(path) == encoding


MEGABYTE = 1 << 20


@pytest.mark.parametrize(
    ("content", "is_utf8"),
    [
        (b"a" * (MEGABYTE - 1) + "ä".encode() + b"b" * MEGABYTE, True),
        (b"a" * (MEGABYTE - 1) + b"\xc3" + b"b" * MEGABYTE + b"\xa4", False),
    ],
    ids=["a-letter-across-megabytes", "a-letter-cut-off"],
)
def test_a_letter_across_a_megabyte_boundary_is_decoded_whole(tmp_path, content, is_utf8):
    # Megabytes of ASCII are checked as ASCII, not decoded: a UTF-8 letter whose first
    # byte ends one megabyte is still read with the next, and a first byte followed by a
    # megabyte of ASCII is still no UTF-8, though a byte after it could end its letter.
    path = tmp_path / "export.csv"
    path.write_bytes(content)

    assert (detect_encoding(path) == "utf-8") is is_utf8


@pytest.mark.parametrize(
    ("content", "compressed", "expected"),
    [
        (b"resp,land\n1,DE\n" * 1000 + b'2,"FR"\n', False, True),
        (b"resp,land\n1,DE\n" * 1000, False, False),
        (b"resp,land\n1,DE\n" * 1000 + b"3E+06\n", False, True),
        ("resp\tland\n1\t\u201eDE\u201c\n".encode("utf-16"), False, False),
        ('resp\tland\n1\t"DE"\n'.encode("utf-16"), False, True),
        (b"resp,land\n" + b"1,DE\n" * 5_000_000 + b'2,"FR"\n', True, True),
        (b"resp,land\n1,DE\n" * 1000, True, False),
        (b"", False, False),
    ],
    ids=[
        "quote-at-the-end",
        "no-quote",
        "plus",
        "utf16-typographic-quotes",
        "utf16-quote",
        "gzip-quote-past-a-block",
        "gzip-no-quote",
        "empty",
    ],
)
def test_a_byte_is_found_anywhere_in_a_file_and_its_compressed_form(
    tmp_path, content, compressed, expected
):
    # The survey loader counts no lines of a file without a double quote (no record of it
    # goes on over lines), and the history import reads counts as text when one is quoted.
    path = tmp_path / ("export.csv.gz" if compressed else "export.csv")
    path.write_bytes(gzip.compress(content) if compressed else content)

    assert holds_byte(path, b'"', b"+") is expected


def test_a_file_that_cannot_be_read_counts_as_holding_the_byte(tmp_path):
    # Its callers then take the slower, exact path, which says what is wrong with the file.
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00not gzip at all")

    assert holds_byte(broken, b'"')
    assert holds_byte(tmp_path / "missing.csv", b'"')
    with pytest.raises(ValueError, match="single bytes"):
        holds_byte(broken, b'""')


MIXED = "Name;Firma\r\nJoe Käser;Süßwaren AG\r\n".encode() + "Hans Müller;Groß “AG”\r\n".encode(
    "cp1252"
)


def test_a_utf8_file_with_a_row_pasted_from_a_windows_file_reads_both_rows_right(tmp_path):
    # Read as Windows-1252 (the file is no UTF-8), the first row was Joe KÃ¤ser.
    path = tmp_path / "mixed.csv"
    path.write_bytes(MIXED)

    assert detect_encoding(path) == UTF8_WITH_CP1252
    assert path.read_bytes().decode(UTF8_WITH_CP1252) == (
        "Name;Firma\r\nJoe Käser;Süßwaren AG\r\nHans Müller;Groß “AG”\r\n"
    )
    # Read in pieces, as files are: a UTF-8 letter or a Windows byte at a piece's end.
    decoder = codecs.getincrementaldecoder(UTF8_WITH_CP1252)()
    pieces = [decoder.decode(MIXED[i : i + 1]) for i in range(len(MIXED))]
    assert "".join(pieces) + decoder.decode(b"", final=True) == MIXED.decode(UTF8_WITH_CP1252)


def test_a_windows_file_with_a_byte_pair_utf8_would_read_stays_windows(tmp_path):
    # ß before a typographic quote is a UTF-8 sequence by chance (0xDF 0x93), no UTF-8 text.
    path = tmp_path / "windows.csv"
    path.write_bytes("Name\r\nStraße „groß“ und Käse\r\n".encode("cp1252"))

    assert detect_encoding(path) == "cp1252"


def test_roster_history_and_surveys_read_a_utf8_file_with_a_windows_row(con, tmp_path):
    roster_file = tmp_path / "roster.csv"
    header = ",".join(roster_columns()).encode()
    rows = [
        "jk,Joe Käser,CEO,Siemens,DE,Industrials,false,JoeKaeser".encode(),
        "hm,Hans Müller,CEO,Süßwaren AG,DE,Industrials,false,".encode("cp1252"),
    ]
    roster_file.write_bytes(b"\n".join([header, *rows]) + b"\n")
    roster = load_roster(roster_file)
    assert [(e.full_name, e.company_name) for e in roster.executives] == [
        ("Joe Käser", "Siemens"),
        ("Hans Müller", "Süßwaren AG"),
    ]
    survey_file = tmp_path / "figures.csv"
    survey_file.write_bytes(
        b"source_id,source_name,wave,scope,question_id,question_text,value\n"
        + "acme,Acme,2024,DE,q1,Führung,40\n".encode()
        + "acme,Acme,2024,AT,q1,Führung,41\n".encode("cp1252")
    )
    assert load_file(con, survey_file).status == "loaded"
    assert con.execute("select distinct question_text from raw.survey_results").fetchall() == [
        ("Führung",)
    ]
    history_file = tmp_path / "history.csv"
    history_file.write_bytes(
        b"executive_id,platform,date,followers\n"
        + b"joe,x,2026-01-01,5\n"
        + "Käse,x,2026-01-02,5\n".encode("cp1252")
        + "Käse,x,2026-01-03,5\n".encode()
    )
    outcome = import_history(con, history_file, ROSTER, tmp_path / "q", today=TODAY)
    assert outcome.rows_loaded == 1
    # Both spellings of the unknown executive read alike, as written.
    assert {e.reason.split("'")[1] for e in outcome.errors} == {"Käse"}
    # A respondent file, read column by column (pyarrow) rather than as text.
    frame = microdata_frame(seed=3, per_country=4)
    panel = write_microdata(frame, tmp_path / "panel.csv", sidecar())
    # Written as German Excel writes it; here UTF-8 with one Windows-1252 letter left.
    utf8 = panel.read_bytes().decode("cp1252").encode()
    panel.write_bytes(utf8.replace("ä".encode(), "ä".encode("cp1252"), 1))
    assert detect_encoding(panel) == UTF8_WITH_CP1252
    assert load_file(con, panel, pseudonym_key=KEY).rows_loaded == len(frame)


# --- one row-issue type --------------------------------------------------------------------


def test_roster_history_and_surveys_report_problems_as_one_row_issue(con, tmp_path):
    roster_file = tmp_path / "roster.csv"
    header = ",".join(roster_columns())
    row = dict.fromkeys(roster_columns(), "")
    row.update(
        executive_id="ada", full_name="Ada", company="Acme", country="Atlantis", sector="Energy"
    )
    roster_file.write_text(header + "\n" + ",".join(row.values()) + "\n", encoding="utf-8")
    history_file = tmp_path / "history.csv"
    history_file.write_text(HISTORY_HEADER + "JoeKaeser,x,2026-01-01,-5\n", encoding="utf-8")
    survey_file = tmp_path / "figures.csv"
    survey_file.write_text(
        "source_id,source_name,wave,scope,question_id,value\nacme,Acme,2024,FR,q1,140\n",
        encoding="utf-8",
    )

    roster_issue = load_roster(roster_file).errors[0]
    history_issue = import_history(
        con, history_file, ROSTER, tmp_path / "quarantine", today=TODAY
    ).errors[0]
    with pytest.raises(SurveyValidationError) as raised:
        load_file(con, survey_file, pseudonym_key=KEY)
    survey_issue = raised.value.issues[0]

    for issue in (roster_issue, history_issue, survey_issue):
        assert type(issue) is RowIssue
    assert (roster_issue.row, roster_issue.column) == (2, "country")
    assert str(history_issue) == (f"{history_file}:2: followers: '-5' is not a whole number >= 0")
    assert str(survey_issue) == "figures.csv:2: value: share 140.0 is outside 0-100"


# --- one quarantine writer -----------------------------------------------------------------


def test_history_rejects_under_a_long_name_are_kept_in_a_folder_a_file_system_allows(con, tmp_path):
    path = tmp_path / LONG_NAME
    path.write_text(
        HISTORY_HEADER + "JoeKaeser,x,2026-01-01,100\nJoeKaeser,x,2026-01-02,-5\n",
        encoding="utf-8",
    )

    outcome = import_history(con, path, ROSTER, tmp_path / "quarantine", today=TODAY)

    assert (outcome.rows_loaded, outcome.rows_rejected) == (1, 1)
    folder = Path(outcome.quarantine_path)
    assert folder.parent == tmp_path / "quarantine" / "history"
    assert len(os.fsencode(folder.name)) <= 255
    # Cut short like a survey file's folder: the kept part, then a hash of the whole name.
    assert re.fullmatch(r"\d{8}T\d{12}Z-h+\.\.\.-[0-9a-f]{16}", folder.name)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["file"] == str(path)
    assert (folder / "rejected_rows.csv").exists()


def test_a_history_file_under_a_long_name_is_moved_to_imported_under_a_short_one(con, tmp_path):
    inbox = tmp_path / "history"
    inbox.mkdir()
    (inbox / LONG_NAME).write_text(HISTORY_HEADER + "JoeKaeser,x,2026-01-01,100\n")

    [outcome] = import_folder(con, inbox, ROSTER, tmp_path / "quarantine")

    assert outcome.rows_loaded == 1
    [moved] = list((inbox / "imported").iterdir())
    assert len(os.fsencode(moved.name)) <= 255
    assert not (inbox / LONG_NAME).exists()


def test_an_unreadable_history_file_gets_its_own_quarantine_folder_and_report(con, tmp_path):
    inbox = tmp_path / "history"
    inbox.mkdir()
    quarantine = tmp_path / "quarantine"
    first = b"platform,date,followers\nx,2026-01-01,5\n"  # neither handle nor executive
    second = b"PAR1 not parquet at all"

    (inbox / "counts.csv").write_bytes(first)
    import_folder(con, inbox, ROSTER, quarantine)
    (inbox / "counts.parquet").write_bytes(second)
    (inbox / "counts.csv").write_bytes(first + b"x,2026-01-02,6\n")
    outcomes = import_folder(con, inbox, ROSTER, quarantine)

    folders = sorted((quarantine / "history").iterdir())
    assert len(folders) == 3  # each rejected file kept, none overwriting another
    kept = {}
    for folder in folders:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        [data_file] = [p for p in folder.iterdir() if p.name != "report.json"]
        kept[data_file.read_bytes()] = report
    assert set(kept) == {first, second, first + b"x,2026-01-02,6\n"}
    report = kept[first]
    assert report["file"].endswith("counts.csv")
    assert report["errors"] == [
        {
            "row": 0,
            "field": "*",
            "message": "header lacks required column(s): executive_id or account_handle",
        }
    ]
    assert "not a readable Parquet file" in kept[second]["errors"][0]["message"]
    assert all(outcome.quarantine_path for outcome in outcomes)


# --- one quoting helper --------------------------------------------------------------------

# The ways SQL quoting was written out by hand: doubling a quote character.
_HAND_QUOTING = re.compile(r"""replace\(\s*(["'])(\\?'|")\1\s*,\s*(["'])(''|"")\3\s*\)""")


def test_sql_is_quoted_by_one_helper_only():
    hand_written = [
        f"{path.relative_to(INCLUDE)}:{number}"
        for path in sorted(INCLUDE.rglob("*.py"))
        if path.name != "sql.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _HAND_QUOTING.search(line)
    ]
    assert hand_written == []


def test_quoted_names_and_texts_survive_duckdb(tmp_path):
    name = 'Anteil "gesamt"; drop table x'
    text = "it's a \"path\" -- with 'quotes'"
    with duckdb.connect() as connection:
        connection.execute(f"create table t ({quote_identifier(name)} varchar)")
        connection.execute(f"insert into t values ({quote_literal(text)})")
        assert connection.execute(f"select {quote_identifier(name)} from t").fetchall() == [(text,)]


def test_a_history_file_with_quotes_in_its_name_imports(con, tmp_path):
    path = tmp_path / 'joe\'s "counts".csv'
    path.write_text(HISTORY_HEADER + "JoeKaeser,x,2026-01-01,100\n", encoding="utf-8")

    assert import_history(con, path, ROSTER, tmp_path / "q", today=TODAY).rows_loaded == 1


# --- files still being written ----------------------------------------------------------

FIGURES = "source_id,source_name,wave,scope,question_id,value\n"


def _aged(path: Path, seconds: float) -> Path:
    os.utime(path, (time.time() - seconds, time.time() - seconds))
    return path


def test_a_survey_file_or_sidecar_still_being_written_waits_for_the_next_run(con, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="social_leadership.progress")
    # Read while its writer still had it open, "62" loaded as 6 until the next run.
    landing = tmp_path / "landing"
    landing.mkdir()
    writing = landing / "writing.csv"
    writing.write_text(FIGURES + "acme,Acme,2024,FR,q1,6", encoding="utf-8")
    settled = landing / "settled.csv"
    settled.write_text(FIGURES + "acme,Acme,2023,FR,q1,40\n", encoding="utf-8")
    _aged(settled, 120)
    sidecar_late = landing / "late_sidecar.csv"
    sidecar_late.write_text(
        "source_id,wave,scope,question_id,value\nacme,2022,FR,q1,30\n", encoding="utf-8"
    )
    _aged(sidecar_late, 120)
    (landing / "late_sidecar.survey.json").write_text('{"source_name": "Acme"}', encoding="utf-8")

    outcomes = ingest_folder(
        con, landing, tmp_path / "quarantine", include_bundled=False, settle_seconds=30
    )

    assert {o.file: o.status for o in outcomes} == {"settled.csv": "loaded"}
    waiting = "changed just now, less than SLW_INTAKE_SETTLE_SECONDS=30 s ago"
    assert f"{writing} {waiting}" in caplog.text
    assert f"{sidecar_late} changed just now" in caplog.text
    assert sorted(p.name for p in landing.iterdir()) == [
        "late_sidecar.csv",
        "late_sidecar.survey.json",
        "settled.csv",
        "writing.csv",
    ]
    writing.write_text(FIGURES + "acme,Acme,2024,FR,q1,62\n", encoding="utf-8")
    _aged(writing, 31)
    _aged(landing / "late_sidecar.survey.json", 31)
    later = ingest_folder(
        con, landing, tmp_path / "quarantine", include_bundled=False, settle_seconds=30
    )
    assert {o.file: o.status for o in later} == {
        "settled.csv": "unchanged",
        "late_sidecar.csv": "loaded",
        "writing.csv": "loaded",
    }
    assert con.execute("select value from raw.survey_results where wave = 2024").fetchall() == [
        (62.0,)
    ]


def test_an_empty_survey_or_history_file_is_said_to_be_empty(con, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "empty.csv").write_bytes(b"")
    inbox = tmp_path / "history"
    inbox.mkdir()
    (inbox / "empty.csv").write_bytes(b"")

    [survey] = ingest_folder(con, landing, tmp_path / "quarantine", include_bundled=False)
    [history] = import_folder(con, inbox, ROSTER, tmp_path / "quarantine")

    assert survey.status == "quarantined"
    assert [issue.reason for issue in survey.issues] == [
        "the file is empty (0 bytes): there is nothing to load"
    ]
    assert history.refused
    assert history.errors[0].reason == "is empty (0 bytes): there is nothing to import"


def test_a_link_to_a_file_being_written_is_as_recent_as_that_file(tmp_path):
    from social_leadership.intake import modified_within

    target = tmp_path / "writing.csv"
    target.write_text("a,b\n", encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    old = time.time() - 3600
    os.utime(link, (old, old), follow_symlinks=False)

    assert modified_within([link], 30, time.time()) is not None
    _aged(target, 60)
    assert modified_within([link], 30, time.time()) is None
    assert modified_within([tmp_path / "gone.csv"], 30, time.time()) is None


def test_the_shipped_survey_files_load_whatever_the_intake_limits(con, tmp_path):
    # SLW_SURVEY_MAX_FILE_BYTES=200 failed every survey_ingest run on the shipped file.
    from social_leadership.surveys.limits import IntakeLimits

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "big.csv").write_text(FIGURES + "acme,Acme,2024,FR,q1,62\n", encoding="utf-8")
    limits = IntakeLimits(max_file_bytes=40, max_cell_chars=3)

    outcomes = ingest_folder(con, landing, tmp_path / "quarantine", limits=limits)

    statuses = {o.file: o.status for o in outcomes}
    assert statuses.pop("big.csv") == "quarantined"
    assert statuses
    assert set(statuses.values()) == {"loaded"}


# --- one place resolving the pseudonym key -------------------------------------------------


def test_only_the_pseudonym_module_reads_the_pseudonym_key():
    readers = [
        str(path.relative_to(INCLUDE))
        for path in sorted(INCLUDE.rglob("*.py"))
        if path.name != "pseudonym.py" and "load_pseudonym_key(" in path.read_text(encoding="utf-8")
    ]
    assert readers == []


def test_the_settings_key_is_read_once_and_only_for_respondent_files(con, tmp_path, monkeypatch):
    from social_leadership.surveys import pseudonym

    reads = []
    real = pseudonym.load_pseudonym_key

    def counted(settings):
        reads.append(settings.pseudonym_key_file)
        return real(settings)

    monkeypatch.setattr(pseudonym, "load_pseudonym_key", counted)
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SLW_PSEUDONYM_KEY", raising=False)
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "figures.csv").write_text(
        "source_id,source_name,wave,scope,question_id,value\nacme,Acme,2024,FR,q1,40\n"
    )

    ingest_folder(con, landing, tmp_path / "quarantine", include_bundled=False)
    assert reads == []

    for name, seed in (("a.csv", 1), ("b.parquet", 2)):
        write_microdata(
            microdata_frame(seed, per_country=5, prefix=name[0]),
            landing / name,
            sidecar(source_id=f"panel_{name[0]}"),
            german=False,
        )
    outcomes = ingest_folder(con, landing, tmp_path / "quarantine", include_bundled=False)

    assert {o.file: o.status for o in outcomes} == {
        "figures.csv": "unchanged",
        "a.csv": "loaded",
        "b.parquet": "loaded",
    }
    assert reads == [tmp_path / "data" / "secrets" / "pseudonym.key"]


def _names_a_and_b(cells: list[str]) -> bool:
    return {"a", "b"} <= set(cells)


def test_the_header_is_found_below_excel_s_separator_line_title_and_blank_lines() -> None:
    lines = ["sep=;\r\n", "Report;;\r\n", "\r\n", "a;b;c\r\n", "1;2;3\r\n"]

    found = find_header(iter(lines), _names_a_and_b)

    assert (found.number, found.delimiter, found.declared, found.found) == (4, ";", True, True)
    assert (found.cells, found.title, len(found.above)) == (["a", "b", "c"], "Report;;", 3)


def test_a_line_that_fits_wins_over_an_earlier_one_only_accepted() -> None:
    lines = ["a,b\n", "a,b,c\n", "1,2,3\n"]

    found = find_header(lines, _names_a_and_b, fits=lambda cells: "c" in cells)
    assert found.number == 2
    # None fits: the first accepted.
    found = find_header(lines, _names_a_and_b, fits=lambda cells: "d" in cells)
    assert (found.number, found.found) == (1, True)


def test_with_no_header_within_the_limit_the_first_line_that_is_not_blank_is_given() -> None:
    lines = ["\n", "Title\n", *[f"x{i},y\n" for i in range(30)], "a,b\n"]

    found = find_header(lines, _names_a_and_b, limit=20)

    assert (found.number, found.cells, found.found) == (2, ["Title"], False)
    assert find_header(lines, _names_a_and_b, limit=40).number == 33
    assert (find_header(["\n", "\n"], _names_a_and_b).number, find_header([], bool).line) == (
        1,
        "",
    )


def test_a_header_begins_where_a_record_does_never_inside_a_quoted_cell() -> None:
    # A row's note over three lines: its middle line names a and b, as a header would.
    lines = ["Title\n", 'x;"note\n', "a;b\n", 'end"\n', "a;b;c\n", "1;2;3\n"]

    found = find_header(lines, _names_a_and_b)

    assert (found.number, found.cells, found.span) == (5, ["a", "b", "c"], 1)
    assert found.above == tuple(lines[:4])
    # A quote never closed is its line's alone: the lines below are read again.
    assert find_header(['"Report\n', "a;b\n", "1;2\n"], _names_a_and_b).number == 2


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_a_header_cell_holding_a_line_break_below_a_title_holding_one_is_the_header(
    newline: str,
) -> None:
    # The title's closing line was read as the start of a header going on to the header's
    # own line break: 'line 2: new-line character seen in unquoted field'.
    text = '"Report\nMay"\n\na;b;"c\nd"\n1;2;"x\ny"\n'.replace("\n", newline)

    found = find_header(text.splitlines(keepends=True), _names_a_and_b)

    assert (found.number, found.end, found.found) == (4, 5, True)
    assert found.cells == ["a", "b", f"c{newline}d"]
    assert found.line == f'a;b;"c{newline}d"{newline}'


def test_a_line_the_csv_module_cannot_split_is_named() -> None:
    previous = csv.field_size_limit(10)
    try:
        with pytest.raises(HeaderLineError, match="line 2: field larger than field limit") as e:
            find_header(["Title\n", "a," + "b" * 20 + "\n"], _names_a_and_b)
    finally:
        csv.field_size_limit(previous)
    assert (e.value.number, e.value.delimiter) == (2, ",")


@pytest.mark.parametrize(
    ("text", "read"),
    [
        # A line break in a quoted cell is no quote left open, beside a lenient cell too
        # (the strict rules refuse "Jane" Doe: that record was rejected, and a row invented).
        ('a;b\n"Jane" Doe;"CEO and\nChair"\n2;3\n', [(["Jane Doe", "CEO and\nChair"], 3, False)]),
        ('a;b\n1;"x\ny";2\n3;4\n', [(["1", "x\ny", "2"], 3, False)]),
        # A lenient cell before a quote left open: the open cell is judged all the same.
        (
            'a;b;c\n"Jane" Doe;"CEO\n2;x;y\n',
            [(["Jane Doe", "CEO\n"], 2, True), (["2", "x", "y"], 3, False)],
        ),
        # Open to the end: its row read from its own line, the lines below as rows.
        ('a;b\n1;"x\n2;y\n', [(["1", "x\n"], 2, True), (["2", "y"], 3, False)]),
        # Closed lines below, text after the closing quote: the same.
        ('a;b\n1;"x\n2;3\n4;"q" r\n', [(["1", "x\n"], 2, True), (["2", "3"], 3, False)]),
    ],
    ids=[
        "lenient_and_line_break",
        "line_break",
        "lenient_then_open",
        "open_to_the_end",
        "closed_lines_below",
    ],
)
def test_a_quote_left_open_is_told_from_a_line_break_in_a_cell(text, read) -> None:
    reader = ClosedQuoteReader(io.StringIO(text, newline=""), delimiter=";")

    rows = [(cells, reader.line_num, reader.unclosed) for cells in reader]

    assert rows[1 : 1 + len(read)] == read
