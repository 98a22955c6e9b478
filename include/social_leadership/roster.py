"""The executive roster: who is tracked, where they work, and their platform accounts.

Roster file format (CSV, UTF-8, an Excel byte-order mark is accepted), one executive per row::

    executive_id,full_name,title,company,country,sector,is_synthetic,x,bluesky,mastodon,youtube,facebook,instagram,linkedin,threads,valid_from

- ``executive_id``: stable key, ``^[a-z0-9][a-z0-9_-]{1,63}$``. Unique in the file unless
  the rows declare a history (see ``valid_from``).
- ``valid_from`` (optional column): ISO date (``YYYY-MM-DD``) from which the row's title,
  company, country and sector hold. Several rows may share an ``executive_id`` when each
  has a distinct ``valid_from``; together they are the executive's declared history (the
  source of the SCD2 ``dim_executive``). A row without ``valid_from`` must be the
  executive's only row. Accounts belong to the executive, not to a version: the accounts
  of all its rows are united (a handle may repeat across the executive's own rows).
- ``full_name``, ``company``: required. ``title``: free text, may be empty.
- ``country``: any common form of the country, in English, German, French or Spanish among
  others ("DE", "DEU", "Germany", "Deutschland", "UK", "USA", "Vereinigte Staaten",
  "Estados Unidos", "UAE", ...); stored as ISO 3166-1 alpha-2.
- ``sector``: one of the 11 GICS sectors (:data:`GICS_SECTORS`), case-insensitive.
- ``is_synthetic``: ``true``/``false`` (also ``1``/``0``, ``yes``/``no``; empty means false).
  Demo rows are synthetic and every output that shows them says so.
- One column per platform (:data:`ACCOUNT_COLUMNS`), holding that executive's account
  handle on it, or empty for none. Platform columns missing from the header mean "no
  accounts on that platform"; the other columns are required. Handle rules:

  ============  ==============================================================
  x             ``^[A-Za-z0-9_]{1,15}$`` (a leading ``@`` is dropped)
  bluesky       a domain handle (``name.bsky.social``) or a ``did:plc:``/``did:web:``
                identifier; stored lowercase
  mastodon      ``user@instance.domain`` (a leading ``@`` is dropped)
  youtube       a channel id ``UC...`` (24 characters) or an ``@handle``
  facebook      page or profile name, ``[A-Za-z0-9.]{1,50}``
  instagram     ``[A-Za-z0-9._]{1,30}``
  linkedin      member or organization vanity name, ``[A-Za-z0-9_-]{2,100}``
  threads       as instagram
  ============  ==============================================================

  An account (platform and handle, compared case-insensitively) belongs to one
  executive: a repeat on a row of another executive is an error on that row.
  LinkedIn: a member vanity name is never fetched (LinkedIn has no API for a member's
  follower count; import it, see :mod:`social_leadership.history`); an organization is
  written ``urn:li:organization:<numeric id>`` and is fetched through the API.

Rows with errors are skipped and reported (file, line number, field, message); the valid
rows still load, so one typo does not stop the daily run.
"""

from __future__ import annotations

import csv
import functools
import gettext
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import pycountry

from social_leadership.domain import GICS_SECTORS, PLATFORMS
from social_leadership.warehouse import ensure_schema, transaction

ACCOUNT_COLUMNS: tuple[str, ...] = PLATFORMS

REQUIRED_COLUMNS: tuple[str, ...] = (
    "executive_id",
    "full_name",
    "title",
    "company",
    "country",
    "sector",
    "is_synthetic",
)

OPTIONAL_COLUMNS: tuple[str, ...] = ("valid_from",)

# Optional columns last, so a file written without them still lines up with this header.
ROSTER_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + ACCOUNT_COLUMNS + OPTIONAL_COLUMNS

EXECUTIVE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")

_DOMAIN_HANDLE = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HANDLE_PATTERNS: dict[str, re.Pattern[str]] = {
    "x": re.compile(r"^[A-Za-z0-9_]{1,15}$"),
    "bluesky": re.compile(
        rf"^(?:{_DOMAIN_HANDLE}|did:plc:[a-z2-7]{{24}}|did:web:{_DOMAIN_HANDLE})$"
    ),
    "mastodon": re.compile(r"^[A-Za-z0-9_]{1,30}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"),
    "youtube": re.compile(r"^(?:UC[A-Za-z0-9_-]{22}|@[A-Za-z0-9._-]{3,30})$"),
    "facebook": re.compile(r"^[A-Za-z0-9.]{1,50}$"),
    "instagram": re.compile(r"^[A-Za-z0-9._]{1,30}$"),
    "linkedin": re.compile(r"^(?:[A-Za-z0-9_-]{2,100}|urn:li:organization:[0-9]{1,20})$"),
    "threads": re.compile(r"^[A-Za-z0-9._]{1,30}$"),
}

# Forms pycountry does not know: colloquial codes and English forms, and the German, French
# and Spanish names that rosters and survey exports from European teams use. pycountry's
# translations know many of the latter too; listing the usual ones keeps them independent of
# those catalogues and puts them on the one-statement microdata load's table of spellings
# (microdata._country_spellings). Keys are compared after _alias_key().
COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "u.k.": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "great britain": "GB",
    "britain": "GB",
    "grossbritannien": "GB",
    "vereinigtes konigreich": "GB",
    "royaume-uni": "GB",
    "grande-bretagne": "GB",
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
    "emirates": "AE",
    "ivory coast": "CI",
    "republic of korea": "KR",
    "south korea": "KR",
    "republic of ireland": "IE",
    "mainland china": "CN",
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

_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})


class RosterFileError(ValueError):
    """The roster file cannot be read at all (missing, or required header columns absent)."""


@dataclass(frozen=True)
class Executive:
    executive_id: str
    full_name: str
    title: str
    company_name: str
    country_code: str
    sector: str
    is_synthetic: bool
    # Start of this version; None when the roster declares no history for the executive.
    valid_from: date | None = None


@dataclass(frozen=True)
class Account:
    executive_id: str
    platform: str
    account_handle: str


@dataclass(frozen=True)
class RosterError:
    file: str
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.field}: {self.message}"


@dataclass
class Roster:
    executives: list[Executive] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    errors: list[RosterError] = field(default_factory=list)

    def accounts_for(self, platform: str) -> list[Account]:
        """The accounts on one platform, in roster order."""
        return [account for account in self.accounts if account.platform == platform]

    def current_executives(self) -> list[Executive]:
        """One version per executive: the one with the latest ``valid_from``."""
        latest: dict[str, Executive] = {}
        for executive in self.executives:
            held = latest.get(executive.executive_id)
            if held is None or (executive.valid_from or date.min) > (held.valid_from or date.min):
                latest[executive.executive_id] = executive
        return list(latest.values())


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


def normalize_country(value: str) -> str:
    """ISO 3166-1 alpha-2 code for a country given in any common form or language.

    Tried in turn: our aliases, pycountry's codes and English names, then the names in the
    languages pycountry ships. Raises ``ValueError`` when the value is not recognised.
    """
    text = value.strip()
    if not text:
        raise ValueError("country is empty")
    alias = COUNTRY_ALIASES.get(_alias_key(text))
    if alias:
        return alias
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        pass
    translated = _translated_country_names().get(_alias_key(text))
    if translated:
        return translated
    raise ValueError(f"unknown country {text!r}")


def normalize_sector(value: str) -> str:
    """The canonical GICS sector name; raises ``ValueError`` for anything else."""
    wanted = " ".join(value.split()).casefold()
    for sector in GICS_SECTORS:
        if sector.casefold() == wanted:
            return sector
    raise ValueError(f"{value.strip()!r} is not a GICS sector (one of: {', '.join(GICS_SECTORS)})")


def normalize_handle(platform: str, value: str) -> str:
    """The stored form of a handle on ``platform``; raises ``ValueError`` if invalid."""
    handle = value.strip()
    if platform in {"x", "mastodon"}:
        handle = handle.removeprefix("@")
    if platform == "bluesky":
        handle = handle.removeprefix("@").lower()
    pattern = _HANDLE_PATTERNS.get(platform)
    if pattern is None:
        raise ValueError(f"unknown platform {platform!r}")
    if not pattern.match(handle):
        raise ValueError(f"{value.strip()!r} is not a valid {platform} handle")
    return handle


def _parse_bool(value: str) -> bool:
    text = value.strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value.strip()!r} is not true/false")


def _parse_valid_from(value: str) -> date | None:
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD)") from None


def is_linkedin_organization(handle: str) -> bool:
    """Whether a roster LinkedIn handle names an organization (fetched) or a member."""
    return handle.startswith("urn:li:organization:")


def load_roster(path: Path) -> Roster:
    """Read and validate a roster file (format in the module docstring).

    Invalid rows are reported in ``Roster.errors`` and skipped. A missing file or missing
    required header columns raise :class:`RosterFileError`.
    """
    file_name = str(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise RosterFileError(f"{file_name}: cannot read roster file ({exc.strerror})") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise RosterFileError(
                f"{file_name}: roster header lacks required column(s): {', '.join(missing)}"
            )
        reader.fieldnames = header
        return _read_rows(file_name, reader, [c for c in ACCOUNT_COLUMNS if c in header])


def _read_rows(file_name: str, reader: csv.DictReader[str], account_columns: list[str]) -> Roster:
    roster = Roster()
    # executive_id -> row number and valid_from of each accepted version
    seen_ids: dict[str, list[tuple[int, date | None]]] = {}
    seen_accounts: dict[tuple[str, str], tuple[str, int]] = {}
    previous_line = reader.line_num
    for record in reader:
        # A quoted field may span lines: report the line where the row starts.
        row_number = previous_line + 1
        previous_line = reader.line_num
        row_errors: list[RosterError] = []

        def error(
            field_name: str,
            message: str,
            row: int = row_number,
            sink: list[RosterError] = row_errors,
        ) -> None:
            sink.append(RosterError(file_name, row, field_name, message))

        values = {key: (value or "").strip() for key, value in record.items() if key}
        if None in record:
            error("row", "more values than header columns")

        executive_id = values.get("executive_id", "")
        valid_from: date | None = None
        try:
            valid_from = _parse_valid_from(values.get("valid_from", ""))
        except ValueError as exc:
            error("valid_from", str(exc))
        if not EXECUTIVE_ID_PATTERN.match(executive_id):
            error(
                "executive_id",
                f"{executive_id!r} must match {EXECUTIVE_ID_PATTERN.pattern}",
            )
        elif executive_id in seen_ids and not row_errors:
            versions = seen_ids[executive_id]
            clash = next((row for row, since in versions if since == valid_from), None)
            undated = next((row for row, since in versions if since is None), None)
            if valid_from is None or undated is not None:
                other = undated if undated is not None else versions[0][0]
                error(
                    "executive_id",
                    f"duplicate of row {other} (rows of one executive need distinct valid_from"
                    " dates)",
                )
            elif clash is not None:
                error("valid_from", f"{valid_from} repeats the version of row {clash}")
        for required in ("full_name", "company"):
            if not values.get(required):
                error(required, "is empty")
        country_code = sector = ""
        is_synthetic = False
        try:
            country_code = normalize_country(values.get("country", ""))
        except ValueError as exc:
            error("country", str(exc))
        try:
            sector = normalize_sector(values.get("sector", ""))
        except ValueError as exc:
            error("sector", str(exc))
        try:
            is_synthetic = _parse_bool(values.get("is_synthetic", ""))
        except ValueError as exc:
            error("is_synthetic", str(exc))

        row_accounts: list[Account] = []
        for platform in account_columns:
            raw_handle = values.get(platform, "")
            if not raw_handle:
                continue
            try:
                account_handle = normalize_handle(platform, raw_handle)
            except ValueError as exc:
                error(platform, str(exc))
                continue
            owner = seen_accounts.get((platform, account_handle.casefold()))
            if owner is not None and owner[0] == executive_id:
                continue
            if owner is not None:
                error(
                    platform,
                    f"account {account_handle!r} already belongs to {owner[0]} (row {owner[1]})",
                )
                continue
            row_accounts.append(Account(executive_id, platform, account_handle))

        if row_errors:
            roster.errors.extend(row_errors)
            continue
        seen_ids.setdefault(executive_id, []).append((row_number, valid_from))
        for account in row_accounts:
            seen_accounts[(account.platform, account.account_handle.casefold())] = (
                executive_id,
                row_number,
            )
        roster.executives.append(
            Executive(
                executive_id=executive_id,
                full_name=values["full_name"],
                title=values.get("title", ""),
                company_name=values["company"],
                country_code=country_code,
                sector=sector,
                is_synthetic=is_synthetic,
                valid_from=valid_from,
            )
        )
        roster.accounts.extend(row_accounts)
    return roster


def write_roster(
    con: duckdb.DuckDBPyConnection, roster: Roster, roster_file: str, loaded_at: datetime
) -> None:
    """Replace ``raw.roster_executives`` and ``raw.roster_accounts`` in one transaction.

    The roster is a full snapshot, so a replace (not an append) keeps the raw tables equal
    to the file; history of changes is dbt's SCD2 snapshot's job.
    """
    if loaded_at.tzinfo is None:
        raise ValueError("loaded_at must be timezone-aware (UTC)")
    ensure_schema(con)
    with transaction(con):
        con.execute("delete from raw.roster_accounts")
        con.execute("delete from raw.roster_executives")
        _insert_many(
            con,
            "insert into raw.roster_executives (executive_id, full_name, title, company_name,"
            " country_code, sector, is_synthetic, valid_from, roster_file, loaded_at)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    e.executive_id,
                    e.full_name,
                    e.title,
                    e.company_name,
                    e.country_code,
                    e.sector,
                    e.is_synthetic,
                    e.valid_from,
                    roster_file,
                    loaded_at,
                )
                for e in roster.executives
            ),
        )
        _insert_many(
            con,
            "insert into raw.roster_accounts values (?, ?, ?, ?)",
            ((a.executive_id, a.platform, a.account_handle, loaded_at) for a in roster.accounts),
        )


def _insert_many(
    con: duckdb.DuckDBPyConnection, sql: str, rows: Iterable[tuple[object, ...]]
) -> None:
    batch = list(rows)
    if batch:
        con.executemany(sql, batch)
