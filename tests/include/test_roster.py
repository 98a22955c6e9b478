from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from social_leadership.demo.roster import generate_rows, write_csv
from social_leadership.intake import RowIssue
from social_leadership.reference import GICS_SECTORS
from social_leadership.roster import (
    ROSTER_COLUMNS,
    Roster,
    RosterFileError,
    load_roster,
    quarantine_rejected_rows,
    write_roster,
)
from social_leadership.settings import BUNDLED_DATA_DIR
from social_leadership.warehouse import ensure_schema

BUNDLED_ROSTER = BUNDLED_DATA_DIR / "roster" / "executives.csv"
HEADER = ",".join(ROSTER_COLUMNS)


def write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_valid_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ada,Ada Example,CEO,Example AG,Deutschland,industrials,true,@Ada_X,Ada.BSKY.social,,,,,,",
        "ben,Ben Sample,,Sample Inc,USA,Information Technology,false,,,ben@mastodon.example,,,,,",
    )

    roster = load_roster(path)

    assert roster.errors == []
    ada, ben = roster.executives
    assert (ada.country_code, ada.sector, ada.is_synthetic) == ("DE", "Industrials", True)
    assert (ben.country_code, ben.title, ben.is_synthetic) == ("US", "", False)
    assert [(a.executive_id, a.platform, a.account_handle) for a in roster.accounts] == [
        ("ada", "x", "Ada_X"),
        ("ada", "bluesky", "ada.bsky.social"),
        ("ben", "mastodon", "ben@mastodon.example"),
    ]


def test_each_error_names_file_row_and_field_and_valid_rows_still_load(tmp_path: Path) -> None:
    good = "ok1,Good One,CEO,Good Co,DE,Energy,true,good_one,,,,,,,"
    path = write(
        tmp_path,
        good,  # line 2
        "Bad Id,Name,CEO,Co,DE,Energy,true,,,,,,,,",  # line 3
        "ok1,Dup Id,CEO,Co,DE,Energy,true,,,,,,,,",  # line 4
        "c1,Name,CEO,Co,Atlantis,Energy,true,,,,,,,,",  # line 5
        "c2,Name,CEO,Co,DE,Tech,true,,,,,,,,",  # line 6
        "c3,Name,CEO,Co,DE,Energy,true,this-is-not-valid!,,,,,,,",  # line 7
        "c4,Name,CEO,Co,DE,Energy,true,GOOD_ONE,,,,,,,",  # line 8: X handles ignore case
        "c5,,CEO,Co,DE,Energy,true,,,,,,,,",  # line 9
        "c6,Name,CEO,Co,DE,Energy,maybe,,,,,,,,",  # line 10
        "c7,Name,CEO,Co,DE,Energy,true,,not a handle,,,,,,",  # line 11
        "ok2,Good Two,CEO,Good Co 2,FR,utilities,false,,good.bsky.social,,,,,,",  # line 12
    )

    roster = load_roster(path)

    assert [e.executive_id for e in roster.executives] == ["ok1", "ok2"]
    found = {(error.row, error.column) for error in roster.errors}
    assert found == {
        (3, "executive_id"),
        (4, "executive_id"),
        (5, "country"),
        (6, "sector"),
        (7, "x"),
        (8, "x"),
        (9, "full_name"),
        (10, "is_synthetic"),
        (11, "bluesky"),
    }
    assert all(error.file == str(path) for error in roster.errors)
    duplicate_account = next(error for error in roster.errors if error.row == 8)
    assert "ok1" in duplicate_account.reason
    assert str(duplicate_account).startswith(f"{path}:8: x: ")


def test_a_quote_never_closed_rejects_its_row_and_the_rows_below_it_still_load(
    tmp_path: Path,
) -> None:
    # Read as the csv module reads it, every line below the quote was one cell of line 3:
    # two executives vanished, reported nowhere.
    path = write(
        tmp_path,
        "a1,Ann One,CEO,Acme,DE,Energy,false,ann_one,,,,,,,",  # line 2
        'b2,Bob Two,"CEO,Beta,DE,Energy,false,bob_two,,,,,,,',  # line 3
        "c3,Cee Three,CEO,Gamma,DE,Energy,false,cee_three,,,,,,,",  # line 4
        'd4,Dee Four,"Chair, CEO",Delta,DE,Energy,false,dee_four,,,,,,,',  # line 5
    )

    roster = load_roster(path)

    assert [e.executive_id for e in roster.executives] == ["a1", "c3", "d4"]
    assert roster.executives[2].title == "Chair, CEO"
    assert {error.row for error in roster.errors} == {3}
    assert (
        RowIssue(
            str(path),
            3,
            "row",
            "a quote opened in this row is never closed (close it; a quote inside a quoted cell "
            'is written twice: "")',
        )
        in roster.errors
    )
    assert roster.rows_read == 4


def test_a_roster_cut_short_inside_a_quoted_cell_rejects_that_row(tmp_path: Path) -> None:
    # A file caught while being written, its last line ending inside a quote: the cut
    # handle (JoeKae) was stored as the account, reported only as not found.
    path = tmp_path / "roster.csv"
    path.write_text(
        f'{HEADER}\nada,Ada,CEO,Acme,DE,Energy,false,ada_x,,,,,,,,\n"jk","Joe K","CEO","Siemens'
        '","DE","Industrials","false","JoeKae',
        encoding="utf-8",
    )

    roster = load_roster(path)

    assert [a.account_handle for a in roster.accounts] == ["ada_x"]
    assert [(e.row, e.column, e.reason) for e in roster.errors] == [
        (
            3,
            "row",
            "a quote opened in this row is never closed (close it; a quote inside a quoted cell "
            'is written twice: "")',
        )
    ]


def test_a_quote_never_closed_above_more_than_the_cell_limit_rejects_its_row_alone(
    tmp_path: Path,
) -> None:
    # The csv module's cell limit ended the read: the whole roster was refused, with the
    # line of the limit and its reason, not the quote's.
    rows = [f"e{n},Name {n},CEO,Co {n},DE,Energy,false,,,,,,,," for n in range(5000)]
    path = write(tmp_path, 'b2,Bob Two,"CEO,Beta,DE,Energy,false,bob_two,,,,,,,', *rows)

    roster = load_roster(path)

    assert len(roster.executives) == 5000
    assert {(error.row, error.column) for error in roster.errors} >= {(2, "row")}
    assert {error.row for error in roster.errors} == {2}


def test_a_header_cell_with_a_line_break_keeps_the_rows_on_their_lines(tmp_path: Path) -> None:
    header = HEADER.replace("full_name", '"Full\nname"')
    path = write(
        tmp_path,
        "a1,Ann One,CEO,Acme,DE,Energy,false,ann_one,,,,,,,",  # line 3
        "b2,Bob Two,CEO,Beta,DE,Atlantis,false,bob_two,,,,,,,",  # line 4
        header=header,
    )

    roster = load_roster(path)

    assert [(e.executive_id, e.full_name) for e in roster.executives] == [("a1", "Ann One")]
    assert [(error.row, error.column) for error in roster.errors] == [(4, "sector")]


def test_error_str_format() -> None:
    assert str(RowIssue("r.csv", 7, "country", "unknown")) == "r.csv:7: country: unknown"


def test_missing_file_raises_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(RosterFileError, match=r"nope\.csv"):
        load_roster(missing)


def test_missing_header_column_raises(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a1,Name,CEO,Co,DE,true",
        header="executive_id,full_name,title,company,country,is_synthetic",
    )
    with pytest.raises(RosterFileError, match="sector") as raised:
        load_roster(path)
    assert str(path) in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_write_roster_replaces_in_place(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    first = load_roster(
        write(
            tmp_path,
            "a1,Ada,CEO,Co,DE,Energy,true,ada_x,ada.bsky.social,,,,,,",
            "b1,Ben,CEO,Co,US,Energy,true,ben_x,,,,,,,",
        )
    )
    loaded_at = datetime(2026, 1, 1, tzinfo=UTC)

    write_roster(con, first, "first.csv", loaded_at)
    write_roster(con, first, "first.csv", loaded_at)

    assert con.execute("select count(*) from raw.roster_executives").fetchone() == (2,)
    assert con.execute("select count(*) from raw.roster_accounts").fetchone() == (3,)

    second = Roster(executives=first.executives[:1], accounts=first.accounts[:1])
    write_roster(con, second, "second.csv", loaded_at)
    assert con.execute(
        "select executive_id, roster_file, country_code from raw.roster_executives"
    ).fetchall() == [("a1", "second.csv", "DE")]
    assert con.execute("select platform, account_handle from raw.roster_accounts").fetchall() == [
        ("x", "ada_x")
    ]


def test_write_roster_failure_keeps_previous_state(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    roster = load_roster(write(tmp_path, "a1,Ada,CEO,Co,DE,Energy,true,ada_x,,,,,,,"))
    write_roster(con, roster, "r.csv", datetime(2026, 1, 1, tzinfo=UTC))
    # Two owners of one account violate raw.roster_accounts' primary key mid-transaction.
    broken = Roster(executives=roster.executives, accounts=roster.accounts * 2)

    with pytest.raises(duckdb.ConstraintException):
        write_roster(con, broken, "r.csv", datetime(2026, 1, 2, tzinfo=UTC))

    assert con.execute("select count(*) from raw.roster_accounts").fetchone() == (1,)
    assert con.execute("select count(*) from raw.roster_executives").fetchone() == (1,)


def test_bundled_roster_is_valid_and_shaped_for_the_question() -> None:
    roster = load_roster(BUNDLED_ROSTER)

    assert roster.errors == []
    real = {e.executive_id: e for e in roster.executives if not e.is_synthetic}
    assert len(real) == 5
    assert {a.account_handle for a in roster.accounts if a.executive_id in real} >= {
        "elonmusk",
        "satyanadella",
        "manomama",
        "JoeKaeser",
        "profile:zuck",
    }
    synthetic = [e for e in roster.executives if e.is_synthetic]
    assert len(synthetic) >= 220
    assert len({e.country_code for e in synthetic}) >= 12
    assert {e.sector for e in synthetic} == set(GICS_SECTORS)

    with_accounts = {a.executive_id for a in roster.accounts}
    coverage = {
        country: sum(e.executive_id in with_accounts for e in members) / len(members)
        for country in ("US", "DE")
        for members in [[e for e in synthetic if e.country_code == country]]
    }
    assert coverage["DE"] < coverage["US"] - 0.15
    without = sum(e.executive_id not in with_accounts for e in synthetic) / len(synthetic)
    assert 0.05 <= without <= 0.2
    platforms = Counter(a.platform for a in roster.accounts)
    assert platforms["bluesky"] > 100
    assert platforms["x"] > 100


def test_bundled_roster_mixes_country_spellings() -> None:
    text = BUNDLED_ROSTER.read_text(encoding="utf-8")
    for spelling in (",Deutschland,", ",UK,", ",USA,"):
        assert spelling in text


def test_generator_is_deterministic_and_matches_the_bundled_file(tmp_path: Path) -> None:
    assert generate_rows(7) == generate_rows(7)
    out = tmp_path / "executives.csv"
    write_csv(generate_rows(), out)
    assert out.read_bytes() == BUNDLED_ROSTER.read_bytes()


def test_declared_history_keeps_every_version_and_unites_accounts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "jk,Joe K,CEO,Siemens,DE,Industrials,false,,,,,,,,,2013-08-01",
        "jk,Joe K,Chairman,Siemens Energy,Germany,Industrials,false,JoeK,,,,,,,,2021-02-03",
        "jk,Joe K,Chair,Siemens Energy,DE,Industrials,false,JoeK,jk.bsky.social,,,,,,,2024-01-01",
        "ada,Ada,CEO,Example AG,DE,Energy,true,ada_x,,,,,,,,",
    )

    roster = load_roster(path)

    assert roster.errors == []
    versions = [(e.company_name, e.valid_from) for e in roster.executives if e.executive_id == "jk"]
    assert versions == [
        ("Siemens", date(2013, 8, 1)),
        ("Siemens Energy", date(2021, 2, 3)),
        ("Siemens Energy", date(2024, 1, 1)),
    ]
    assert sorted(a.account_handle for a in roster.accounts if a.executive_id == "jk") == [
        "JoeK",
        "jk.bsky.social",
    ]
    assert [e.valid_from for e in roster.executives if e.executive_id == "ada"] == [None]


@pytest.mark.parametrize(
    ("rows", "field", "fragment"),
    [
        (
            ("jk,J,CEO,A,DE,Energy,false,,,,,,,,,", "jk,J,CEO,B,DE,Energy,false,,,,,,,,,"),
            "executive_id",
            "distinct valid_from",
        ),
        (
            (
                "jk,J,CEO,A,DE,Energy,false,,,,,,,,,2020-01-01",
                "jk,J,CEO,B,DE,Energy,false,,,,,,,,,2020-01-01",
            ),
            "valid_from",
            "repeats",
        ),
        (
            (
                "jk,J,CEO,A,DE,Energy,false,,,,,,,,,2020-01-01",
                "jk,J,CEO,B,DE,Energy,false,,,,,,,,,02/01/2021",
            ),
            "valid_from",
            "YYYY-MM-DD",
        ),
        (
            (
                "jk,J,CEO,A,DE,Energy,false,,,,,,,,,",
                "jk,J,CEO,B,DE,Energy,false,,,,,,,,,2021-02-01",
            ),
            "executive_id",
            "distinct valid_from",
        ),
    ],
)
def test_bad_history_rows_are_reported_on_the_second_row(
    tmp_path: Path, rows: tuple[str, str], field: str, fragment: str
) -> None:
    roster = load_roster(write(tmp_path, *rows))

    assert len(roster.executives) == 1
    assert [(e.row, e.column) for e in roster.errors] == [(3, field)]
    assert fragment in roster.errors[0].reason


def test_account_of_another_executive_is_still_an_error(tmp_path: Path) -> None:
    roster = load_roster(
        write(
            tmp_path,
            "a1,A,CEO,Co,DE,Energy,true,same_x,,,,,,,,",
            "b1,B,CEO,Co,DE,Energy,true,SAME_X,,,,,,,,",
        )
    )

    assert [(e.row, e.column) for e in roster.errors] == [(3, "x")]


def test_a_second_account_of_an_executive_on_one_platform_rejects_its_row(tmp_path: Path) -> None:
    # Loaded, two X handles for one executive failed every dbt build (the warehouse follows
    # one account per platform and executive), the roster file never named.
    roster = load_roster(
        write(
            tmp_path,
            "jk,J,CEO,A,DE,Energy,false,joe_old,,,,,,,,2020-01-01",
            "jk,J,Chair,B,DE,Energy,false,joe_new,jk.bsky.social,,,,,,,2024-01-01",
            "ada,Ada,CEO,Example AG,DE,Energy,true,ada_x,,,,,,,,",
        )
    )

    assert [(e.row, e.column) for e in roster.errors] == [(3, "x")]
    assert "jk already has the x account 'joe_old' (row 2)" in roster.errors[0].reason
    assert sorted((a.executive_id, a.account_handle) for a in roster.accounts) == [
        ("ada", "ada_x"),
        ("jk", "joe_old"),
    ]


def test_profile_links_load_as_handles_and_are_one_account_with_the_handle(
    tmp_path: Path,
) -> None:
    # A roster put together in a browser: links copied from the profile pages.
    roster = load_roster(
        write(
            tmp_path,
            "a1,A,CEO,Co,DE,Energy,true,https://x.com/Same_X,https://bsky.app/profile/a.example"
            ",https://mastodon.social/@a,https://www.youtube.com/@a_channel,,"
            "https://www.instagram.com/a.insta/,https://www.linkedin.com/in/a-one/,,",
            "b1,B,CEO,Co,DE,Energy,true,@same_x,,,,,,,,",
        )
    )

    assert [(a.platform, a.account_handle) for a in roster.accounts] == [
        ("x", "Same_X"),
        ("bluesky", "a.example"),
        ("mastodon", "a@mastodon.social"),
        ("youtube", "@a_channel"),
        ("instagram", "a.insta"),
        ("linkedin", "a-one"),
    ]
    # The link and the handle name one account: the second executive's row is an error.
    assert [(e.row, e.column) for e in roster.errors] == [(3, "x")]


def test_write_roster_stores_valid_from(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    roster = load_roster(
        write(
            tmp_path,
            "jk,J,CEO,Siemens,DE,Industrials,false,,,,,,,,,2013-08-01",
            "jk,J,Chair,Siemens Energy,DE,Industrials,false,JoeK,,,,,,,,2021-02-03",
        )
    )
    write_roster(con, roster, "r.csv", datetime(2026, 1, 1, tzinfo=UTC))

    assert con.execute(
        "select company_name, valid_from from raw.roster_executives order by valid_from"
    ).fetchall() == [("Siemens", date(2013, 8, 1)), ("Siemens Energy", date(2021, 2, 3))]


def test_bundled_roster_declares_joe_kaesers_move_and_synthetic_moves() -> None:
    roster = load_roster(BUNDLED_ROSTER)

    kaeser = sorted(
        (e.valid_from, e.company_name, e.country_code, e.sector)
        for e in roster.executives
        if e.executive_id == "joe-kaeser"
    )
    assert kaeser == [
        (date(2013, 8, 1), "Siemens", "DE", "Industrials"),
        (date(2021, 2, 3), "Siemens Energy", "DE", "Industrials"),
    ]
    versions = Counter(e.executive_id for e in roster.executives if e.is_synthetic)
    movers = [executive_id for executive_id, count in versions.items() if count > 1]
    assert len(movers) >= 2
    latest = {
        executive_id: max(
            e.valid_from or date.min for e in roster.executives if e.executive_id == executive_id
        )
        for executive_id in movers
    }
    assert all(valid_from >= date(2024, 11, 1) for valid_from in latest.values())


# --- Excel exports -------------------------------------------------------------------------
#
# Files as Excel writes them: CRLF line ends, the header as typed by a person, German
# Excel's "CSV (Trennzeichen-getrennt)" (Windows-1252, ';'), empty rows where cells were
# once filled, and German spellings of booleans and dates.

JOE = "joe-kaeser,Joe Käser,Chair,Siemens Energy,DE,Industrials,false,JoeKaeser,,,,,,,"


def excel_file(tmp_path: Path, *lines: str, encoding: str = "utf-8", name: str = "r.csv") -> Path:
    path = tmp_path / name
    path.write_bytes("".join(f"{line}\r\n" for line in lines).encode(encoding))
    return path


def test_header_cells_match_trimmed_and_in_any_case(tmp_path: Path) -> None:
    header = (
        " Executive_ID ,Full_Name,Title,Company,Country,Sector,IS_SYNTHETIC,"
        "X,Bluesky,Mastodon,YouTube,Facebook,Instagram,LinkedIn,Threads,Valid_From"
    )
    path = excel_file(
        tmp_path, header, "ada,Ada,CEO,Acme,DE,Energy,false,Ada_X,,,,,,ada-li,,2021-02-03"
    )

    roster = load_roster(path)

    assert roster.errors == []
    assert [(e.executive_id, e.valid_from) for e in roster.executives] == [
        ("ada", date(2021, 2, 3))
    ]
    assert [(a.platform, a.account_handle) for a in roster.accounts] == [
        ("x", "Ada_X"),
        ("linkedin", "ada-li"),
    ]


def test_the_warehouse_s_and_hr_exports_names_of_the_columns_are_read(tmp_path: Path) -> None:
    # Refused as lacking company, country, title and sector, and retried as a file caught
    # mid-write, an export of raw.roster_executives or of an HR system failed the run.
    header = "Executive ID,Full name,Job Title,company_name,country_code,GICS Sector,is_synthetic,X"
    path = excel_file(tmp_path, header, "ada,Ada,CEO,Acme,DE,Energy,false,ada_x")

    roster = load_roster(path)

    assert [(e.title, e.company_name, e.country_code, e.sector) for e in roster.executives] == [
        ("CEO", "Acme", "DE", "Energy")
    ]
    assert roster.warnings == []


def test_a_column_by_its_own_name_is_read_before_another_name_of_it(tmp_path: Path) -> None:
    # A country code beside the country's name is no second country column to refuse.
    header = "executive_id,full_name,title,company,Country code,country,sector,is_synthetic,x"
    path = excel_file(tmp_path, header, "ada,Ada,CEO,Acme,XX,Germany,Energy,false,ada_x")

    roster = load_roster(path)

    assert [e.country_code for e in roster.executives] == ["DE"]
    assert [(w.column, w.reason) for w in roster.warnings] == [
        ("Country code", "names column 'country' again ('country'): ignored")
    ]


def test_a_platform_column_in_another_case_keeps_its_accounts(tmp_path: Path) -> None:
    header = "executive_id,full_name,title,company,country,sector,is_synthetic,X,LinkedIn"
    path = excel_file(tmp_path, header, "ada,Ada,CEO,Acme,DE,Energy,false,@Ada_X,ada-li")

    roster = load_roster(path)

    assert [(a.platform, a.account_handle) for a in roster.accounts] == [
        ("x", "Ada_X"),
        ("linkedin", "ada-li"),
    ]
    assert roster.warnings == []


def test_headers_as_people_write_them_name_their_columns(tmp_path: Path) -> None:
    header = (
        "Executive ID;Full name;Title;Company;Country;Sector;Is synthetic;X (Twitter);"
        "LinkedIn URL;YouTube Channel;Bluesky handle;Valid-from"
    )
    row = (
        "ada;Ada;CEO;Acme;DE;Energy;nein;https://x.com/Ada_X;"
        "https://www.linkedin.com/in/ada-li/;https://www.youtube.com/@ada_tv;ada.bsky.social;"
        "01.02.2021"
    )
    roster = load_roster(excel_file(tmp_path, header, row, encoding="cp1252"))

    assert roster.errors == roster.warnings == []
    assert [(a.platform, a.account_handle) for a in roster.accounts] == [
        ("x", "Ada_X"),
        ("bluesky", "ada.bsky.social"),
        ("youtube", "@ada_tv"),
        ("linkedin", "ada-li"),
    ]
    assert roster.executives[0].valid_from == date(2021, 2, 1)


@pytest.mark.parametrize(
    ("cell", "platform", "handle"),
    [
        ("Blue sky handle", "bluesky", "ada.bsky.social"),
        ("You Tube channel", "youtube", "@ada_tv"),
        ("Linked In URL", "linkedin", "ada-li"),
    ],
)
def test_a_platform_s_name_written_as_two_words_names_its_column(
    tmp_path: Path, cell: str, platform: str, handle: str
) -> None:
    # "Blue sky handle" was no roster column, ignored: every Bluesky account left the
    # roster, and the platform's history the marts, on green runs ("Bluesky handle" and
    # "Blue Sky" were read).
    header = f"executive_id,full_name,title,company,country,sector,is_synthetic,{cell}"
    path = tmp_path / "roster.csv"
    path.write_text(f"{header}\nada,Ada,CEO,Acme,DE,Energy,false,{handle}\n", encoding="utf-8")

    roster = load_roster(path)

    assert roster.warnings == []
    assert roster.account_columns == (platform,)
    assert [(a.platform, a.account_handle) for a in roster.accounts] == [(platform, handle)]


def test_a_facebook_profile_column_is_not_read_as_pages(tmp_path: Path) -> None:
    # The Facebook column holds Pages; people's profiles are written profile:<name>.
    header = "executive_id,full_name,title,company,country,sector,is_synthetic,Facebook profile"
    roster = load_roster(excel_file(tmp_path, header, "ada,Ada,CEO,Acme,DE,Energy,false,ada.k"))

    assert roster.accounts == []
    assert [(w.column, w.reason) for w in roster.warnings] == [
        ("Facebook profile", "not a roster column: ignored")
    ]


def test_a_title_line_and_blank_lines_above_the_header_are_skipped_and_said(
    tmp_path: Path,
) -> None:
    path = excel_file(
        tmp_path,
        "Executive roster Q4;;;;;;;",
        ";;;;;;;",
        "executive_id;full_name;title;company;country;sector;is_synthetic;x",
        "ada;Ada;CEO;Acme;DE;Energy;false;ada_x",
        "bad;Bad;CEO;Acme;Atlantis;Energy;false;bad_x",
    )

    roster = load_roster(path)

    assert [e.executive_id for e in roster.executives] == ["ada"]
    # Rows are named by their line in the file, the lines above the header counted.
    assert [(e.row, e.column) for e in roster.errors] == [(5, "country")]
    assert roster.warnings == []
    assert (roster.header_row, roster.above_header) == (3, "Executive roster Q4;;;;;;;")
    # Empty rows above the header are no title.
    path.write_bytes(path.read_bytes().split(b"\r\n", 1)[1])
    assert (load_roster(path).header_row, load_roster(path).above_header) == (2, "")


def test_excel_s_separator_line_gives_the_delimiter_and_is_no_title(tmp_path: Path) -> None:
    path = excel_file(
        tmp_path,
        "sep=;",
        "executive_id;full_name;title;company;country;sector;is_synthetic;x",
        "ada;Ada, Lady Lovelace;CEO;Acme, Inc.;DE;Energy;false;ada_x",
    )

    roster = load_roster(path)

    assert [(e.full_name, e.company_name) for e in roster.executives] == [
        ("Ada, Lady Lovelace", "Acme, Inc.")
    ]
    assert (roster.header_row, roster.above_header) == (2, "")


def test_a_header_cell_over_the_csv_module_s_limit_names_its_line(tmp_path: Path) -> None:
    path = excel_file(tmp_path, "Executive roster Q4", "executive_id;" + "x" * 200_000)

    with pytest.raises(RosterFileError, match=r"r\.csv: line 2: field larger than field limit"):
        load_roster(path)
    # And a row's, counted from the top of the file, the lines above the header too.
    header = "executive_id,full_name,title,company,country,sector,is_synthetic,x"
    path = excel_file(tmp_path, "Executive roster Q4", "", header, "ada," + "A" * 200_000)
    with pytest.raises(RosterFileError, match=r"r\.csv: line 4: field larger than field limit"):
        load_roster(path)


def test_a_file_without_a_header_says_what_its_first_line_holds(tmp_path: Path) -> None:
    path = excel_file(tmp_path, "Executive roster Q4", "ada,Ada,CEO,Acme,DE,Energy,false,ada_x")

    with pytest.raises(RosterFileError) as raised:
        load_roster(path)

    message = str(raised.value)
    assert "lacks required column(s): executive_id, full_name" in message
    assert "line 1, read as the header, holds: 'Executive roster Q4'" in message


def test_an_empty_file_is_refused_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"")

    with pytest.raises(RosterFileError, match=r"r\.csv: the roster file is empty"):
        load_roster(path)


def test_a_workbook_saved_under_a_csv_name_is_refused_saying_so(tmp_path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append(list(ROSTER_COLUMNS))
    path = tmp_path / "roster.csv"
    workbook.save(path)

    with pytest.raises(RosterFileError, match=r"is a spreadsheet workbook \(XLSX") as raised:
        load_roster(path)
    assert "save the roster from the spreadsheet as CSV UTF-8" in str(raised.value)


def test_cells_pasted_from_the_web_are_stored_as_meant(tmp_path: Path) -> None:
    # No-break and zero-width spaces, a byte-order mark, a soft hyphen, direction marks,
    # a decomposed umlaut, a line break from Excel's Alt+Enter, doubled spaces.
    rows = [
        "a1,Ann\u00a0One,CEO,Deutsche\u00a0Bank,DE,Financials,false,\u200bann_x",
        "a2,\u200fBen Two\u200f,CEO,Deutsche  Bank,DE,Financials,false,",
        "a3,Cem\u00adThree,CEO,\ufeffDeutsche Bank,DE,Financials,false,",
        "a4,Dora Four,CEO,Mu\u0308ller AG,DE,Financials,false,",
        'a5,Eve Five,"Chief\nExecutive",Müller\u200b AG,DE,Financials,false,',
    ]
    header = "executive_id,full_name,title,company,country,sector,is_synthetic,x"
    path = tmp_path / "r.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")

    roster = load_roster(path)

    assert roster.errors == []
    assert [(e.full_name, e.title, e.company_name) for e in roster.executives] == [
        ("Ann One", "CEO", "Deutsche Bank"),
        ("Ben Two", "CEO", "Deutsche Bank"),
        ("CemThree", "CEO", "Deutsche Bank"),
        ("Dora Four", "CEO", "Müller AG"),
        ("Eve Five", "Chief Executive", "Müller AG"),
    ]
    assert [a.account_handle for a in roster.accounts] == ["ann_x"]


def test_a_second_column_of_a_platform_holding_handles_where_the_first_is_empty_is_refused(
    tmp_path: Path,
) -> None:
    # An empty X column added beside the export's filled X (Twitter) took the platform's
    # place: every X account left the marts, every run green.
    header = "executive_id,full_name,title,company,country,sector,is_synthetic,X (Twitter),X"
    path = excel_file(
        tmp_path,
        header,
        "ada,Ada,CEO,Acme,DE,Energy,false,ada_x,",
        "ben,Ben,CEO,Beta,US,Energy,false,ben_x,",
    )

    with pytest.raises(RosterFileError) as refused:
        load_roster(path)

    assert str(refused.value) == (
        f"{path}: roster header names platform 'x' twice, 'X' and 'X (Twitter)', and "
        "'X (Twitter)' holds handles where 'X' is empty: the loader reads 'X' alone and "
        "would leave them out. Keep one column of x; the roster stored before is kept"
    )
    assert not refused.value.may_pass_later
    # Left empty, or holding a placeholder that is no handle, it is ignored as before.
    path = excel_file(tmp_path, header, "ada,Ada,CEO,Acme,DE,Energy,false,,ada_x")
    assert [a.account_handle for a in load_roster(path).accounts] == ["ada_x"]
    for placeholder in ("n/a", "-", "TBD"):
        path = excel_file(tmp_path, header, f"ada,Ada,CEO,Acme,DE,Energy,false,{placeholder},")
        assert load_roster(path).accounts == []
    # An account written as no handle is one all the same: refused, not lost unsaid.
    path = excel_file(tmp_path, header, "ada,Ada,CEO,Acme,DE,Energy,false,@Ada Lovelace,")
    with pytest.raises(RosterFileError, match="'X \\(Twitter\\)' holds handles where"):
        load_roster(path)


def test_an_unknown_header_cell_is_reported_as_a_warning_naming_file_and_column(
    tmp_path: Path,
) -> None:
    header = "executive_id,full_name,title,company,country,sector,is_synthetic,x,Twitter,Notes,"
    path = excel_file(tmp_path, header, "ada,Ada,CEO,Acme,DE,Energy,false,ada_x,ada_tw,hi,")

    roster = load_roster(path)

    # The row still loads; the unknown columns are named, the empty header cell is not.
    assert [e.executive_id for e in roster.executives] == ["ada"]
    assert roster.errors == []
    assert [(w.file, w.row, w.column) for w in roster.warnings] == [
        (str(path), 1, "Twitter"),
        (str(path), 1, "Notes"),
    ]
    # Another name of a column the file has by its own: that one is read.
    assert roster.warnings[0].reason == "names column 'x' again ('x'): ignored"
    assert [a.account_handle for a in roster.accounts] == ["ada_x"]
    assert roster.warnings[1].reason == "not a roster column: ignored"


@pytest.mark.parametrize(
    ("cell", "meant"),
    [("Thread", "threads"), ("Blusky", "bluesky"), ("LinkedLn", "linkedin"), ("Youtub", "youtube")],
)
def test_a_header_cell_that_looks_like_a_column_misspelt_refuses_the_file(
    tmp_path: Path, cell: str, meant: str
) -> None:
    # Ignored as no roster column, a misspelt Threads column left every Threads account
    # out: the platform and its history gone from the marts, every signal green.
    header = f"executive_id,full_name,title,company,country,sector,is_synthetic,x,{cell}"
    path = excel_file(tmp_path, header, "ada,Ada,CEO,Acme,DE,Energy,false,ada_x,ada_there")

    with pytest.raises(RosterFileError) as refused:
        load_roster(path)

    assert str(refused.value).startswith(
        f"{path}: roster header cell {cell!r} (line 1) names no roster column: is it "
        f"{meant!r} misspelt?"
    )
    assert "the roster stored before is kept" in str(refused.value)
    assert refused.value.may_pass_later is False


def test_a_required_column_misspelt_is_hinted_and_left_to_retries(tmp_path: Path) -> None:
    # Its header may be one cut short mid-write (full_na): retried, but the hint is said.
    header = "executive_id,full_name,title,company,country,sector,Synthetic,x"
    path = excel_file(tmp_path, header, "ada,Ada,CEO,Acme,DE,Energy,false,ada_x")

    with pytest.raises(RosterFileError) as refused:
        load_roster(path)

    assert "lacks required column(s): is_synthetic" in str(refused.value)
    assert str(refused.value).endswith("; is 'Synthetic' 'is_synthetic' misspelt?)")
    assert refused.value.may_pass_later is True


@pytest.mark.parametrize(
    ("extra", "values"),
    [
        # The handle's column placed after the cell judged.
        ("Bluesky DID,Bluesky handle", "did:plc:ada,ada.bsky.social"),
        ("Instagram id", "1784"),  # a platform's name and more: a column of its own
        ("Youtuber,Facebook fans,Notes", "yes,12,hi"),
    ],
)
def test_a_header_cell_that_is_another_column_about_a_platform_is_only_ignored(
    tmp_path: Path, extra: str, values: str
) -> None:
    header = f"executive_id,full_name,title,company,country,sector,is_synthetic,x,{extra}"
    path = excel_file(tmp_path, header, f"ada,Ada,CEO,Acme,DE,Energy,false,ada_x,{values}")

    roster = load_roster(path)

    assert [e.executive_id for e in roster.executives] == ["ada"]
    assert {w.reason for w in roster.warnings} == {"not a roster column: ignored"}


def test_a_column_given_twice_in_any_case_makes_the_file_unreadable(tmp_path: Path) -> None:
    header = "executive_id,full_name,title,company,country,sector,is_synthetic,x,X"
    path = excel_file(tmp_path, header, "ada,Ada,CEO,Acme,DE,Energy,false,ada_x,other_x")

    with pytest.raises(RosterFileError, match="'x' and 'X'") as raised:
        load_roster(path)
    assert str(path) in str(raised.value)


def test_a_windows_1252_file_loads_with_its_umlauts(tmp_path: Path) -> None:
    path = excel_file(tmp_path, HEADER, JOE, encoding="cp1252")

    roster = load_roster(path)

    assert roster.errors == []
    assert [e.full_name for e in roster.executives] == ["Joe Käser"]


def test_a_mac_excel_file_loads_with_its_umlauts(tmp_path: Path) -> None:
    """Mac Excel's "CSV (Macintosh)": Mac Roman, lines ended by CR (read as Windows-1252,
    its ä is Š: "Joe KŠser")."""
    path = tmp_path / "r.csv"
    path.write_bytes(f"{HEADER}\r{JOE}\r".encode("mac_roman"))

    roster = load_roster(path)

    assert roster.errors == []
    assert [e.full_name for e in roster.executives] == ["Joe Käser"]


def test_an_excel_ms_dos_file_loads_with_its_umlauts(tmp_path: Path) -> None:
    """Excel's "CSV (MS-DOS)": DOS Latin-1, code page 850 (read as Windows-1252, its ä is a
    low quotation mark: "Joe K„ser"; as Mac Roman, an Ñ: "Joe KÑser")."""
    path = excel_file(tmp_path, HEADER, JOE, encoding="cp850")

    roster = load_roster(path)

    assert roster.errors == []
    assert [e.full_name for e in roster.executives] == ["Joe Käser"]


@pytest.mark.parametrize(
    ("delimiter", "encoding"),
    [(";", "cp1252"), (";", "utf-8-sig"), ("\t", "utf-16"), ("\t", "utf-8")],
    ids=["german-excel", "semicolon-utf8-bom", "unicode-text", "tab"],
)
def test_semicolon_and_tab_delimited_files_load(
    tmp_path: Path, delimiter: str, encoding: str
) -> None:
    path = excel_file(
        tmp_path,
        HEADER.replace(",", delimiter),
        JOE.replace(",", delimiter),
        # A comma inside a cell is text when ';' or tab separates the cells.
        delimiter.join(["ada", "Ada, Dr.", "CEO", "Acme", "DE", "Energy", "true"]) + delimiter * 8,
        encoding=encoding,
    )

    roster = load_roster(path)

    assert roster.errors == []
    assert [(e.full_name, e.company_name) for e in roster.executives] == [
        ("Joe Käser", "Siemens Energy"),
        ("Ada, Dr.", "Acme"),
    ]
    assert [a.account_handle for a in roster.accounts] == ["JoeKaeser"]


def test_empty_rows_are_skipped_silently_and_lines_keep_their_numbers(tmp_path: Path) -> None:
    empty = "," * (len(ROSTER_COLUMNS) - 1)
    path = excel_file(
        tmp_path,
        HEADER,
        JOE,  # line 2
        empty,  # line 3
        " , ,",  # line 4: blanks only
        "",  # line 5
        "c1,Name,CEO,Co,Atlantis,Energy,true,,,,,,,,",  # line 6
        empty,
        empty,
    )

    roster = load_roster(path)

    assert [e.executive_id for e in roster.executives] == ["joe-kaeser"]
    assert [(e.row, e.column) for e in roster.errors] == [(6, "country")]


def test_a_german_excel_export_with_empty_rows_loads(tmp_path: Path) -> None:
    empty = ";" * (len(ROSTER_COLUMNS) - 1)
    row = "joe-kaeser;Joe Käser;Chair;Siemens Energy;Deutschland;Industrials;FALSCH;JoeKaeser"
    path = excel_file(
        tmp_path,
        HEADER.replace(",", ";"),
        row + ";" * 7 + ";03.02.2021",
        empty,
        empty,
        encoding="cp1252",
    )

    roster = load_roster(path)

    assert roster.errors == []
    assert [(e.full_name, e.is_synthetic, e.valid_from) for e in roster.executives] == [
        ("Joe Käser", False, date(2021, 2, 3))
    ]


@pytest.mark.parametrize(
    ("written", "synthetic"),
    [("WAHR", True), ("FALSCH", False), ("ja", True), ("Nein", False), ("TRUE", True)],
)
def test_is_synthetic_in_german(tmp_path: Path, written: str, synthetic: bool) -> None:
    roster = load_roster(write(tmp_path, f"a1,Ada,CEO,Co,DE,Energy,{written},,,,,,,,"))

    assert roster.errors == []
    assert [e.is_synthetic for e in roster.executives] == [synthetic]


@pytest.mark.parametrize(
    "written",
    [
        "03.02.2021",
        "3.2.2021",
        "2021-02-03 00:00:00",
        "2021-02-03 00:00",
        "2021-02-03",
        # The year first: no doubt which is the month (Japanese and Chinese locales).
        "2021/02/03",
        "2021/2/3 00:00",
        "2021/2/3 0:00",  # Japanese Excel's date and time
    ],
)
def test_valid_from_as_excel_writes_it(tmp_path: Path, written: str) -> None:
    roster = load_roster(write(tmp_path, f"a1,Ada,CEO,Co,DE,Energy,false,,,,,,,,,{written}"))

    assert roster.errors == []
    assert [e.valid_from for e in roster.executives] == [date(2021, 2, 3)]


@pytest.mark.parametrize(
    "written",
    [
        "02/03/2021",
        "2/3/21",
        "44230",
        "44230.0",
        "03.02.21",
        "31.02.2021",
        "2021-02-03 10:30:00",
        "2021/02/31",
    ],
)
def test_ambiguous_dates_and_excel_serials_are_rejected_saying_how_to_write_them(
    tmp_path: Path, written: str
) -> None:
    roster = load_roster(write(tmp_path, f"a1,Ada,CEO,Co,DE,Energy,false,,,,,,,,,{written}"))

    assert roster.executives == []
    [error] = roster.errors
    assert (error.row, error.column) == (2, "valid_from")
    assert repr(written) in error.reason
    assert "YYYY-MM-DD" in error.reason
    # The '/' is named as the doubt only where the date has one, the year not first.
    assert ("'/' is ambiguous" in error.reason) == ("/" in written and written[4] != "/")


def test_rejected_rows_are_quarantined_with_their_reasons(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ok1,Good One,CEO,Good Co,DE,Energy,true,good_one,,,,,,,",  # line 2
        'gone,=HYPERLINK("http://x"),CEO,Co,Atlantis,Energy,maybe,,,,,,,,',  # line 3
        "jk,J,CEO,A,DE,Energy,false,,,,,,,,,2020-01-01",  # line 4
        "jk,J,CEO,B,DE,Energy,false,,,,,,,,,2020-01-01",  # line 5: a version of jk
        "Bad Id,Name,CEO,Co,DE,Energy,true,,,,,,,,",  # line 6
    )
    roster = load_roster(path)

    folder = quarantine_rejected_rows(roster, tmp_path / "quarantine")

    assert folder is not None
    assert folder.parent == tmp_path / "quarantine" / "roster"
    assert folder.name.endswith("-roster.csv")
    with (folder / "rejected_rows.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "error_field", "error", *ROSTER_COLUMNS]
    assert [row[:2] for row in rows[1:]] == [
        ["3", "country, is_synthetic"],
        ["5", "valid_from"],
        ["6", "executive_id"],
    ]
    # As the file had it, but a spreadsheet shows the formula as text.
    assert rows[1][3:6] == ["gone", '\'=HYPERLINK("http://x")', "CEO"]
    assert "'Atlantis'" in rows[1][2]
    assert "'maybe'" in rows[1][2]
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["file"] == str(path)
    assert (report["rows_read"], report["rows_loaded"], report["rows_rejected"]) == (5, 2, 3)
    # jk still has a version; "gone" and the bad id are not in the warehouse at all.
    assert report["executives_skipped"] == ["Bad Id", "gone"]
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (3, "country"),
        (3, "is_synthetic"),
        (5, "valid_from"),
        (6, "executive_id"),
    ]


def test_nothing_is_quarantined_without_rejected_rows(tmp_path: Path) -> None:
    roster = load_roster(write(tmp_path, "ok1,Good One,CEO,Good Co,DE,Energy,true,,,,,,,,"))

    assert quarantine_rejected_rows(roster, tmp_path / "quarantine") is None
    assert not (tmp_path / "quarantine").exists()


def test_a_byte_windows_1252_leaves_undefined_reads_as_latin_1(tmp_path: Path) -> None:
    # 0x81 is not UTF-8 and has no character in Windows-1252; the ü (0xFC) before it is a
    # letter in Latin-1 only (DOS Latin-1's ³, Mac Roman's cedilla): the file is Latin-1.
    path = tmp_path / "r.csv"
    path.write_bytes(
        f"{HEADER}\r\n".encode() + b"a1,M\xfcller\x81,CEO,Co,DE,Energy,true,,,,,,,,\r\n"
    )

    assert [e.full_name for e in load_roster(path).executives] == ["M\u00fcller\x81"]


def test_a_file_no_encoding_reads_is_refused_naming_the_file(tmp_path: Path) -> None:
    # A NUL byte: no text file, so no Latin-1 fallback; 0x81 then fails Windows-1252.
    path = tmp_path / "r.csv"
    path.write_bytes(f"{HEADER}\r\n".encode() + b"a1,Ad\x81a\x00,CEO,Co,DE,Energy,true,,,,,,,,\r\n")

    with pytest.raises(RosterFileError, match="cannot be read as cp1252 text") as raised:
        load_roster(path)
    assert str(path) in str(raised.value)
