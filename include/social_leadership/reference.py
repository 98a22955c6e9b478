"""Reference data: the countries and GICS sectors every intake and the warehouse share.

This module is the one place that knows them. The roster and survey files are normalised
here (:func:`normalize_country`, :func:`normalize_sector`), and the dbt seeds
``countries.csv`` and ``gics_sectors.csv`` are written from it::

    python -m social_leadership.reference --write-seeds   # rewrite dbt_project/seeds/
    python -m social_leadership.reference --check         # exit 1 when they differ

(tests/include/test_reference.py fails when the seeds and this module disagree.)

Countries: every ISO 3166-1 country pycountry knows, so any country the intake accepts
is in ``dim_country``. Names are pycountry's English short names (the United States keeps
the name the seed gave it before it covered every country). Regions are the five
continental regions of the UN M49 standard (https://unstats.un.org/unsd/methodology/m49/):
Africa, Americas, Asia, Europe, Oceania. M49 puts two ISO codes in no region: Taiwan, which
UN statistics count within China, is in Asia, and Antarctica is its own region.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gettext
import io
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pycountry

from social_leadership.settings import DBT_PROJECT_DIR

# The 11 sectors of the Global Industry Classification Standard (2023 structure), by name,
# with their two-digit codes. The names are how the roster and the marts spell them.
GICS_SECTOR_CODES: dict[str, str] = {
    "Energy": "10",
    "Materials": "15",
    "Industrials": "20",
    "Consumer Discretionary": "25",
    "Consumer Staples": "30",
    "Health Care": "35",
    "Financials": "40",
    "Information Technology": "45",
    "Communication Services": "50",
    "Utilities": "55",
    "Real Estate": "60",
}
GICS_SECTORS: tuple[str, ...] = tuple(GICS_SECTOR_CODES)

# UN M49 continental region of each ISO 3166-1 alpha-2 code (TW and AQ: module docstring).
_REGION_MEMBERS: dict[str, str] = {
    "Africa": """
        AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW IO KE KM LR LS
        LY MA MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TF TG TN TZ UG
        YT ZA ZM ZW""",
    "Americas": """
        AG AI AR AW BB BL BM BO BQ BR BS BV BZ CA CL CO CR CU CW DM DO EC FK GD GF GL GP GS
        GT GY HN HT JM KN KY LC MF MQ MS MX NI PA PE PM PR PY SR SV SX TC TT US UY VC VE VG
        VI""",
    "Antarctica": "AQ",
    "Asia": """
        AE AF AM AZ BD BH BN BT CN CY GE HK ID IL IN IQ IR JO JP KG KH KP KR KW KZ LA LB LK
        MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TL TM TR TW UZ VN YE""",
    "Europe": """
        AD AL AT AX BA BE BG BY CH CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE
        LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA""",
    "Oceania": """
        AS AU CC CK CX FJ FM GU HM KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV UM VU WF
        WS""",
}

# Names that differ from pycountry's: BI users filter on the name the seed already gave.
_COUNTRY_NAMES: dict[str, str] = {"US": "United States of America"}

# Forms pycountry does not know: colloquial codes and English forms, and the German, French
# and Spanish names that rosters and survey exports from European teams use. pycountry's
# translations know many of the latter too; listing the usual ones keeps them independent of
# those catalogues and puts them among the spellings the one-statement microdata load
# matches exactly (:func:`country_spellings`). Keys are compared after _alias_key().
COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "u.k.": "GB",
    "england": "GB",
    "scotland": "GB",
    "northern ireland": "GB",
    "wales": "GB",
    "great britain": "GB",
    "britain": "GB",
    "grossbritannien": "GB",
    "vereinigtes konigreich": "GB",
    "royaume-uni": "GB",
    "grande-bretagne": "GB",
    # Short and former names survey tables use (Edelman's, Ipsos's market labels).
    "macedonia": "MK",
    "czech rep.": "CZ",
    "cape verde": "CV",
    "palestine": "PS",
    "state of palestine": "PS",
    "palestinian territories": "PS",
    "drc": "CD",
    "s. arabia": "SA",
    "usa": "US",
    "u.s.": "US",
    "u.s.a.": "US",
    "america": "US",
    "vereinigte staaten": "US",
    "vereinigte staaten von amerika": "US",
    "etats-unis": "US",
    "deutschland": "DE",
    "brd": "DE",
    "allemagne": "DE",
    "frankreich": "FR",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "osterreich": "AT",
    "oesterreich": "AT",
    "autriche": "AT",
    "niederlande": "NL",
    "holland": "NL",
    "pays-bas": "NL",
    "belgien": "BE",
    "belgique": "BE",
    "spanien": "ES",
    "espagne": "ES",
    "italien": "IT",
    "italie": "IT",
    "schweden": "SE",
    "suede": "SE",
    "danemark": "DK",
    "norwegen": "NO",
    "norvege": "NO",
    "finnland": "FI",
    "polen": "PL",
    "pologne": "PL",
    "japon": "JP",
    "chine": "CN",
    "indien": "IN",
    "inde": "IN",
    "brasilien": "BR",
    "bresil": "BR",
    "kanada": "CA",
    "australien": "AU",
    "australie": "AU",
    "russia": "RU",
    "russland": "RU",
    "turkey": "TR",
    "turkei": "TR",
    "turquie": "TR",
    "korea": "KR",
    "sudkorea": "KR",
    "coree du sud": "KR",
    "mexiko": "MX",
    "mexique": "MX",
    "sudafrika": "ZA",
    "afrique du sud": "ZA",
    # English
    "the netherlands": "NL",
    "the uk": "GB",
    "the united kingdom": "GB",
    "the united states": "US",
    "the usa": "US",
    "uae": "AE",
    "u.a.e.": "AE",
    "vae": "AE",
    "v.a.e.": "AE",
    "emirates": "AE",
    "ivory coast": "CI",
    "republic of korea": "KR",
    "south korea": "KR",
    "republic of ireland": "IE",
    "mainland china": "CN",
    "chinese mainland": "CN",
    # The World Bank's and the UN's inverted forms, as exports of their tables write them.
    "korea, rep.": "KR",
    "korea, south": "KR",
    "korea republic": "KR",
    "korea, sud": "KR",
    "rep. korea": "KR",
    "korea rep.": "KR",
    # Chart labels shortened to fit, as the Trust Barometer's own charts write them.
    "s. korea": "KR",
    "s korea": "KR",
    "s. africa": "ZA",
    "s africa": "ZA",
    "ksa": "SA",
    # The Trust Barometer's market codes where they are no ISO alpha-3 code (its tables
    # and data exports head a column per market: GER, NED, ...). None is another
    # country's ISO code.
    "ger": "DE",
    "ned": "NL",
    "spa": "ES",
    "saf": "ZA",
    "mal": "MY",
    "sin": "SG",
    "iran, islamic rep.": "IR",
    "egypt, arab rep.": "EG",
    "hong kong sar, china": "HK",
    "macao sar, china": "MO",
    "hong kong sar": "HK",
    "macao sar": "MO",
    "macau sar": "MO",
    # UN and World Bank names, also as their bracketed forms read the other way round
    # ("Congo (Democratic Republic of the)", "China (Hong Kong SAR)").
    "hong kong sar china": "HK",
    "macao sar china": "MO",
    "democratic republic of the congo": "CD",
    "dr congo": "CD",
    "u.s. virgin islands": "VI",
    "us virgin islands": "VI",
    "british virgin islands": "VG",
    "the former yugoslav republic of macedonia": "MK",
    "venezuela, rb": "VE",
    "yemen, rep.": "YE",
    "congo, dem. rep.": "CD",
    "congo, rep.": "CG",
    "gambia, the": "GM",
    "bahamas, the": "BS",
    "lao pdr": "LA",
    "slovak republic": "SK",
    "kyrgyz republic": "KG",
    "micronesia, fed. sts.": "FM",
    # German
    "vereinigte arabische emirate": "AE",
    "elfenbeinkuste": "CI",
    "republik korea": "KR",
    "irland": "IE",
    "saudi-arabien": "SA",
    "singapur": "SG",
    "argentinien": "AR",
    "kolumbien": "CO",
    "tschechien": "CZ",
    "griechenland": "GR",
    # French
    "etats unis": "US",
    "royaume uni": "GB",
    "pays bas": "NL",
    "emirats arabes unis": "AE",
    "cote d'ivoire": "CI",
    "republique de coree": "KR",
    "irlande": "IE",
    "arabie saoudite": "SA",
    "singapour": "SG",
    "finlande": "FI",
    "argentine": "AR",
    "colombie": "CO",
    "russie": "RU",
    "grece": "GR",
    # Spanish
    "alemania": "DE",
    "estados unidos": "US",
    "estados unidos de america": "US",
    "ee. uu.": "US",
    "ee.uu.": "US",
    "ee uu": "US",
    "eeuu": "US",
    "reino unido": "GB",
    "gran bretana": "GB",
    "inglaterra": "GB",
    "francia": "FR",
    "suiza": "CH",
    "paises bajos": "NL",
    "holanda": "NL",
    "espana": "ES",
    "italia": "IT",
    "brasil": "BR",
    "corea del sur": "KR",
    "emiratos arabes unidos": "AE",
    "costa de marfil": "CI",
    "rusia": "RU",
    "turquia": "TR",
    "suecia": "SE",
    "noruega": "NO",
    "dinamarca": "DK",
    "finlandia": "FI",
    "polonia": "PL",
    "belgica": "BE",
    "irlanda": "IE",
    "sudafrica": "ZA",
    "arabia saudita": "SA",
}


@dataclass(frozen=True)
class Country:
    """One row of ``dim_country``."""

    code: str  # ISO 3166-1 alpha-2
    name: str
    region: str


@functools.cache
def countries() -> dict[str, Country]:
    """Every country :func:`normalize_country` can return, by alpha-2 code, in code order.

    Raises ``LookupError`` when pycountry knows a code that has no region here (a new ISO
    code after a pycountry upgrade: add it to the region table).
    """
    region_of = {
        code: region for region, members in _REGION_MEMBERS.items() for code in members.split()
    }
    result = {}
    for entry in sorted(pycountry.countries, key=lambda entry: entry.alpha_2):
        code = str(entry.alpha_2)
        if code not in region_of:
            raise LookupError(f"country {code} ({entry.name}) has no UN M49 region here")
        result[code] = Country(code, _COUNTRY_NAMES.get(code, str(entry.name)), region_of[code])
    return result


# Aliases that name a part of a country (a respondent there lives in it; a figure of it is
# none of the country's).
PARTS_OF_COUNTRIES = frozenset({"england", "scotland", "wales", "northern ireland"})


def is_part_of_country(value: str) -> bool:
    """Whether ``value`` names a part of a country that :func:`normalize_country` reads
    as the whole (``Scotland``: GB)."""
    return _alias_key(value) in PARTS_OF_COUNTRIES


def _alias_key(value: str) -> str:
    # Strip accents so "Österreich", "Osterreich" and "Oesterreich"-less spellings meet.
    text = value.strip().casefold().replace("ß", "ss").replace("\u2019", "'")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.split())


@functools.cache
def _translated_country_names() -> dict[str, str]:
    """Country names in every language pycountry ships (the Debian iso-codes translations:
    "Brasil", "España", "Italia", "Polska", "日本", ...), by alias key.

    A few translations are wrong or shared (one locale spells Malaysia "México"): a name
    goes to the country most locales give it, and a name split evenly goes to none. Latin
    names of three letters or fewer are left out: they are codes or ordinary words ("Man"
    is the Isle of Man in one locale), and codes are pycountry's to resolve.
    """
    votes: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for locale in sorted(os.listdir(pycountry.LOCALES_DIR)):
        try:
            catalog = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, [locale])
        except OSError:
            continue
        for country in pycountry.countries:
            for attribute in ("name", "common_name", "official_name"):
                english = getattr(country, attribute, None)
                if not english:
                    continue
                key = _alias_key(catalog.gettext(english))
                if len(key) > 3 or not key.isascii():
                    votes[key][country.alpha_2] += 1
    names = {}
    for key, counts in votes.items():
        ranked = counts.most_common(2)
        if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
            names[key] = ranked[0][0]
    return names


# The marks a table puts after a name or a figure to point at its footnote
# (``Deutschland*``, ``Germany¹``, ``76*``): the characters themselves, for a regular
# expression's character class and for str.rstrip() alike.
FOOTNOTE_MARKS = "*\u2020\u2021\u00b9\u00b2\u00b3" + "".join(map(chr, range(0x2070, 0x207A)))
_NUMERIC_CODE = re.compile(r"0*([0-9]{1,3})(?:\.0+)?")
# "Korea (South)": the name and what the brackets hold. No spaces matched before the bracket
# (they are stripped after): two quantifiers over one run of spaces would try each split of
# it, and a long run in a garbled cell took minutes.
_BRACKETED = re.compile(r"(.+?)\((.+)\)")
# What brackets after a country's name may hold and still mean the whole country: the words
# of its formal name (``Iran (Islamic Republic of)``, ``Korea (Republic of)``) or
# ``Mainland``. Anything else (``Germany (Informed Public)``, ``U.S. (18-34)``, ``Deutschland
# (Ost)``) is a part of it, or another place (``Korea (Democratic People's Republic of)``),
# never the country itself.
_FORMAL_NAME_WORDS = frozenset(
    {"the", "of", "republic", "rep", "islamic", "federal", "kingdom", "state", "states"}
    | {"plurinational", "bolivarian", "united", "federative", "mainland", "commonwealth"}
)


def normalize_country(value: str) -> str:
    """ISO 3166-1 alpha-2 code for a country given in any common form or language.

    Tried in turn: our aliases, an ISO 3166-1 numeric code (``276``, also without its
    leading zeros, ``40``, or as a float, ``276.0``), pycountry's codes and English names,
    then the names in the languages pycountry ships. Raises ``ValueError`` when the value is
    not recognised.
    """
    text = value.strip()
    if not text:
        raise ValueError("country is empty")
    alias = COUNTRY_ALIASES.get(_alias_key(text))
    if alias:
        return alias
    numeric = _NUMERIC_CODE.fullmatch(text)
    if numeric:
        # ISO 3166-1 numeric, as a number column keeps it: its leading zeros gone (40 for
        # Austria's 040), or written as a float (276.0) by a tool whose column has gaps.
        country = pycountry.countries.get(numeric=numeric[1].zfill(3))
        if country is None:
            raise ValueError(f"unknown country {text!r} (no ISO 3166-1 numeric code)")
        return str(country.alpha_2)
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        pass
    translated = _translated_country_names().get(_alias_key(text))
    if translated:
        return translated
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed:
        return _bracketed_country(text, bracketed[1].rstrip(), bracketed[2].strip())
    # "Ireland, Republic of": the two parts the other way round.
    inverted = re.fullmatch(r"([^,]+),\s*([^,]+)", text)
    candidates: tuple[str, ...] = (f"{inverted[2]} {inverted[1]}",) if inverted else ()
    # "Deutschland*", "Germany¹": a table's footnote mark after the name.
    unmarked = text.rstrip(FOOTNOTE_MARKS).rstrip()
    candidates += (unmarked,) if unmarked and unmarked != text else ()
    for candidate in candidates:
        try:
            return normalize_country(candidate)
        except ValueError:
            continue
    raise ValueError(f"unknown country {text!r}")


def _bracketed_country(text: str, outer: str, inner: str) -> str:
    """A name with brackets: ``Korea (South)``, ``Samoa (American)`` (the two parts the other
    way round), ``China (Mainland)``, ``Iran (Islamic Republic of)``, ``Deutschland (DE)``
    (the name, the brackets adding words of its formal name or naming it again), else
    none: ``Germany (Informed Public)`` is a part of Germany's population, ``Korea
    (Democratic People's Republic of)`` another country than Korea."""
    unknown = ValueError(f"unknown country {text!r}")
    # One level of brackets: names hold no more (and a garbled cell of nested brackets
    # would cost a lookup per level).
    if "(" in inner or ")" in inner:
        raise unknown
    for candidate in (f"{inner} {outer}", f"{outer} {inner}"):
        try:
            return normalize_country(candidate)
        except ValueError:
            continue
    try:
        code = normalize_country(outer)
    except ValueError:
        raise unknown from None
    words = re.split(r"[\s.,'\u2019]+", inner.casefold())
    if all(word in _FORMAL_NAME_WORDS for word in words if word):
        return code
    try:
        if normalize_country(inner) == code:
            return code
    except ValueError:
        pass
    raise unknown


@functools.cache
def country_spellings() -> dict[str, str]:
    """Country spellings as files usually write them, each with the code
    :func:`normalize_country` gives it: pycountry's codes and English names and our
    aliases, each as given, upper case, lower case, title case and capitalised. Built
    without the translation catalogues, so it is cheap; texts with surrounding spaces are
    left out (files that have them take the normalising path)."""
    names = set(COUNTRY_ALIASES)
    for country in pycountry.countries:
        for attribute in ("alpha_2", "alpha_3", "name", "common_name", "official_name"):
            value = getattr(country, attribute, None)
            if value:
                names.add(value)
    spellings: dict[str, str] = {}
    for name in names:
        for text in {name, name.upper(), name.lower(), name.title(), name.capitalize()}:
            if text != text.strip():
                continue
            try:
                spellings[text] = normalize_country(text)
            except ValueError:
                continue
    return spellings


def normalize_sector(value: str) -> str:
    """The canonical GICS sector name; raises ``ValueError`` for anything else."""
    wanted = " ".join(value.split()).casefold()
    for sector in GICS_SECTORS:
        if sector.casefold() == wanted:
            return sector
    raise ValueError(f"{value.strip()!r} is not a GICS sector (one of: {', '.join(GICS_SECTORS)})")


SEEDS_DIR = DBT_PROJECT_DIR / "seeds"


def seed_files() -> dict[str, str]:
    """The text of each dbt seed this module owns, by file name."""
    return {
        "countries.csv": _csv_text(
            ("country_code", "country_name", "region"),
            ((c.code, c.name, c.region) for c in countries().values()),
        ),
        "gics_sectors.csv": _csv_text(
            ("sector_code", "sector_name"),
            ((code, name) for name, code in GICS_SECTOR_CODES.items()),
        ),
    }


def _csv_text(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def stale_seeds(seeds_dir: Path = SEEDS_DIR) -> list[str]:
    """Names of the seed files in ``seeds_dir`` that differ from what this module writes."""
    stale = []
    for name, text in seed_files().items():
        path = seeds_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write_seeds(seeds_dir: Path = SEEDS_DIR) -> list[Path]:
    """Write the seed files into ``seeds_dir``; returns their paths."""
    written = []
    for name, text in seed_files().items():
        path = seeds_dir / name
        path.write_text(text, encoding="utf-8", newline="")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write or check the reference-data dbt seeds.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write-seeds", action="store_true", help="rewrite the seed files")
    action.add_argument("--check", action="store_true", help="exit 1 if a seed file differs")
    parser.add_argument("--seeds-dir", type=Path, default=SEEDS_DIR)
    args = parser.parse_args(argv)
    if args.write_seeds:
        for path in write_seeds(args.seeds_dir):
            print(f"wrote {path}")
        return 0
    stale = stale_seeds(args.seeds_dir)
    for name in stale:
        print(
            f"{args.seeds_dir / name} differs from social_leadership.reference: run --write-seeds"
        )
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
