"""Reference data: one module owns countries and sectors; the dbt seeds are generated from it."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pycountry
import pytest
from conftest import settings_for_data_dir

from social_leadership import reference
from social_leadership.dbt_runner import run_dbt
from social_leadership.reference import (
    COUNTRY_ALIASES,
    GICS_SECTORS,
    countries,
    country_spellings,
    normalize_country,
    normalize_sector,
)
from social_leadership.roster import ROSTER_COLUMNS, load_roster, write_roster
from social_leadership.warehouse import connect, transaction

LOADED_AT = datetime(2025, 4, 2, 3, 0, tzinfo=UTC)

# Luxembourg and Chile were not in the countries seed of 39; Germany was.
EXECUTIVES_ABROAD = [
    ("lu_one", "Lea Beispill", "Beispill SA", "Luxembourg", "Financials"),
    ("cl_one", "Carla Ejemplo", "Ejemplo SpA", "Chile", "Materials"),
    ("de_one", "Clara Muster", "Muster Werke", "Deutschland", "Industrials"),
]

# The countries seed before it covered every country, as BI users know it: these rows must
# keep their names and regions.
SEED_BEFORE_ISSUE_10 = {
    "AE": ("United Arab Emirates", "Asia"),
    "AR": ("Argentina", "Americas"),
    "AT": ("Austria", "Europe"),
    "AU": ("Australia", "Oceania"),
    "BE": ("Belgium", "Europe"),
    "BR": ("Brazil", "Americas"),
    "CA": ("Canada", "Americas"),
    "CH": ("Switzerland", "Europe"),
    "CN": ("China", "Asia"),
    "CO": ("Colombia", "Americas"),
    "DE": ("Germany", "Europe"),
    "DK": ("Denmark", "Europe"),
    "ES": ("Spain", "Europe"),
    "FI": ("Finland", "Europe"),
    "FR": ("France", "Europe"),
    "GB": ("United Kingdom", "Europe"),
    "HK": ("Hong Kong", "Asia"),
    "ID": ("Indonesia", "Asia"),
    "IE": ("Ireland", "Europe"),
    "IN": ("India", "Asia"),
    "IT": ("Italy", "Europe"),
    "JP": ("Japan", "Asia"),
    "KE": ("Kenya", "Africa"),
    "KR": ("Korea, Republic of", "Asia"),
    "MX": ("Mexico", "Americas"),
    "MY": ("Malaysia", "Asia"),
    "NG": ("Nigeria", "Africa"),
    "NL": ("Netherlands", "Europe"),
    "NO": ("Norway", "Europe"),
    "NZ": ("New Zealand", "Oceania"),
    "PL": ("Poland", "Europe"),
    "PT": ("Portugal", "Europe"),
    "SA": ("Saudi Arabia", "Asia"),
    "SE": ("Sweden", "Europe"),
    "SG": ("Singapore", "Asia"),
    "TH": ("Thailand", "Asia"),
    "TR": ("Türkiye", "Asia"),
    "US": ("United States of America", "Americas"),
    "ZA": ("South Africa", "Africa"),
}


@pytest.mark.dbt
def test_an_executive_in_luxembourg_or_chile_builds_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10: the roster accepted any country, the countries seed held 39, and the
    relationships test on stg_roster__executives failed the whole build."""
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    roster_file = tmp_path / "roster.csv"
    with roster_file.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ROSTER_COLUMNS, restval="")
        writer.writeheader()
        for executive_id, name, company, country, sector in EXECUTIVES_ABROAD:
            writer.writerow(
                {
                    "executive_id": executive_id,
                    "full_name": name,
                    "title": "CEO",
                    "company": company,
                    "country": country,
                    "sector": sector,
                    "is_synthetic": "true",
                    "x": f"{executive_id}_x",
                }
            )
    roster = load_roster(roster_file)
    assert roster.errors == []
    with connect(settings.warehouse_path) as con:
        write_roster(con, roster, roster_file.name, LOADED_AT)
        with transaction(con):
            for number in range(3):
                snapshot = date(2025, 4, 1) - timedelta(days=2 - number)
                observed = datetime.combine(snapshot, datetime.min.time(), tzinfo=UTC)
                for executive, *_ in EXECUTIVES_ABROAD:
                    con.execute(
                        "insert into raw.platform_metrics values "
                        "('x', ?, ?, ?, 'ok', ?, 1, 1, ?, 'api', null, ?, false)",
                        [
                            snapshot,
                            f"{executive}_x",
                            f"id-{executive}",
                            100 + number,
                            observed,
                            LOADED_AT,
                        ],
                    )

    # Raises DbtError (naming the failing relationships tests) when a country is not seeded.
    result = run_dbt(["build"], settings)

    assert result.errored == 0
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as marts:
        countries = marts.execute(
            "select country_code, country_name, region from marts.dim_country "
            "where country_code in ('LU', 'CL', 'DE') order by 1"
        ).fetchall()
        reach = marts.execute(
            "select country_code, sum(total_followers) "
            "from marts.fct_reach_by_country_sector_daily "
            "where metric_date = date '2025-04-01' and platform = 'x' group by 1 order by 1"
        ).fetchall()
    assert countries == [
        ("CL", "Chile", "Americas"),
        ("DE", "Germany", "Europe"),
        ("LU", "Luxembourg", "Europe"),
    ]
    assert reach == [("CL", 102), ("DE", 102), ("LU", 102)]


def test_seed_files_are_what_the_module_generates() -> None:
    """Edit reference.py, then run ``python -m social_leadership.reference --write-seeds``."""
    assert reference.stale_seeds() == []


def test_check_finds_a_drifted_seed_and_write_seeds_repairs_it(tmp_path: Path) -> None:
    for name in reference.seed_files():
        shutil.copyfile(reference.SEEDS_DIR / name, tmp_path / name)
    countries_csv = tmp_path / "countries.csv"
    countries_csv.write_text(
        countries_csv.read_text(encoding="utf-8").replace("LU,Luxembourg,Europe\n", ""),
        encoding="utf-8",
    )

    assert reference.main(["--check", "--seeds-dir", str(tmp_path)]) == 1
    assert reference.main(["--write-seeds", "--seeds-dir", str(tmp_path)]) == 0
    assert reference.main(["--check", "--seeds-dir", str(tmp_path)]) == 0
    assert "LU,Luxembourg,Europe\n" in countries_csv.read_text(encoding="utf-8")


def test_every_country_the_intake_can_return_has_a_name_and_region() -> None:
    known = countries()
    returned = (
        {normalize_country(entry.alpha_2) for entry in pycountry.countries}
        | set(COUNTRY_ALIASES.values())
        | set(country_spellings().values())
        | set(reference._translated_country_names().values())
    )

    assert returned <= set(known)
    assert len(known) == len(pycountry.countries)
    assert all(country.name and country.region for country in known.values())


def test_regions_are_the_un_m49_continents_each_code_in_one() -> None:
    listed = Counter(
        code for members in reference._REGION_MEMBERS.values() for code in members.split()
    )

    assert [code for code, times in listed.items() if times > 1] == []
    assert {country.region for country in countries().values()} == {
        "Africa",
        "Americas",
        "Antarctica",
        "Asia",
        "Europe",
        "Oceania",
    }
    assert [(c.code, c.region) for c in countries().values() if c.code in {"TW", "AQ", "LU"}] == [
        ("AQ", "Antarctica"),
        ("LU", "Europe"),
        ("TW", "Asia"),
    ]


def test_countries_known_before_keep_their_names_and_regions() -> None:
    known = countries()

    assert {code: (known[code].name, known[code].region) for code in SEED_BEFORE_ISSUE_10} == (
        SEED_BEFORE_ISSUE_10
    )


def test_sector_normalisation() -> None:
    assert normalize_sector("  information   TECHNOLOGY ") == "Information Technology"
    assert len(GICS_SECTORS) == 11
    with pytest.raises(ValueError, match="'Tech' is not a GICS sector"):
        normalize_sector("Tech")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Deutschland", "DE"),
        ("Germany", "DE"),
        ("DE", "DE"),
        ("DEU", "DE"),
        ("de", "DE"),
        ("UK", "GB"),
        ("Großbritannien", "GB"),
        ("USA", "US"),
        ("United States", "US"),
        ("Vereinigte Staaten", "US"),
        ("Frankreich", "FR"),
        ("Schweiz", "CH"),
        ("Österreich", "AT"),
        ("  japan ", "JP"),
        # In their own languages: Polska and the others from pycountry's translations.
        ("Brasil", "BR"),
        ("España", "ES"),
        ("ESPANA", "ES"),
        ("Italia", "IT"),
        ("Polska", "PL"),
        ("Magyarország", "HU"),
        ("日本", "JP"),
        ("Ελλάδα", "GR"),
        # One locale mistranslates Malaysia as "México": most locales win.
        ("México", "MX"),
        ("Côte d\u2019Ivoire", "CI"),
        # English forms pycountry does not know (issue 9).
        ("The Netherlands", "NL"),
        ("UAE", "AE"),
        ("U.A.E.", "AE"),
        ("Ivory Coast", "CI"),
        ("Republic of Korea", "KR"),
        ("South Korea", "KR"),
        ("Czech Republic", "CZ"),
        ("Vietnam", "VN"),
        # German, French and Spanish names as survey exports write them.
        ("Allemagne", "DE"),
        ("Alemania", "DE"),
        ("États-Unis", "US"),
        ("Estados Unidos", "US"),
        ("EE. UU.", "US"),
        ("EEUU", "US"),
        ("Royaume-Uni", "GB"),
        ("Reino Unido", "GB"),
        ("Vereinigtes Königreich", "GB"),
        ("Suisse", "CH"),
        ("Suiza", "CH"),
        ("Países Bajos", "NL"),
        ("Niederlande", "NL"),
        ("Pays-Bas", "NL"),
        ("Corée du Sud", "KR"),
        ("Südkorea", "KR"),
        ("Corea del Sur", "KR"),
        ("Vereinigte Arabische Emirate", "AE"),
        ("Émirats arabes unis", "AE"),
        ("Emiratos Árabes Unidos", "AE"),
        ("Elfenbeinküste", "CI"),
        ("Costa de Marfil", "CI"),
        ("Brésil", "BR"),
        ("Espagne", "ES"),
        ("Rusia", "RU"),
        # Short and former names of survey tables, and the fourth UK nation.
        ("Northern Ireland", "GB"),
        ("Macedonia", "MK"),
        ("Czech Rep.", "CZ"),
        ("Cape Verde", "CV"),
        ("Palestine", "PS"),
        ("State of Palestine", "PS"),
        ("DRC", "CD"),
        ("DR Congo", "CD"),
        ("S. Arabia", "SA"),
        # The Trust Barometer's market codes that are no ISO alpha-3 code.
        ("GER", "DE"),
        ("NED", "NL"),
        ("SPA", "ES"),
        ("SAF", "ZA"),
        ("MAL", "MY"),
        ("SIN", "SG"),
    ],
)
def test_country_normalisation(given: str, expected: str) -> None:
    assert normalize_country(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [("276", "DE"), ("040", "AT"), ("40", "AT"), ("36", "AU"), ("8", "AL"), ("276.0", "DE")],
)
def test_an_iso_numeric_code_is_read_with_or_without_its_leading_zeros(given, expected) -> None:
    # As WVS, EVS and ISSP code countries, and as a number column keeps them (no leading
    # zeros; a float where the column has gaps).
    assert normalize_country(given) == expected


@pytest.mark.parametrize("given", ["0", "1", "999", "27.5", "1276"])
def test_a_number_that_is_no_iso_numeric_code_is_no_country(given) -> None:
    with pytest.raises(ValueError, match="unknown country"):
        normalize_country(given)


def test_unknown_country_is_rejected() -> None:
    with pytest.raises(ValueError, match="Atlantis"):
        normalize_country("Atlantis")


# Linear in the text: a bracket pattern with spaces matched before it, and one for a
# footnote mark, tried each split of a long run of spaces and ran for minutes here.
@pytest.mark.timeout(120)
@pytest.mark.parametrize("ending", ["y", "y)", "(y)", "*"])
def test_a_long_run_of_spaces_in_a_country_is_refused_without_hanging(ending: str) -> None:
    with pytest.raises(ValueError, match="unknown country"):
        normalize_country("x" + " " * 400_000 + ending)
