"""Generate the bundled demo roster: five real executives plus synthetic ones.

Usage::

    python -m social_leadership.demo.roster --out include/data/roster/executives.csv

The output is deterministic for a given ``--seed``. Synthetic rows carry
``is_synthetic=true``, invented names and "Synthetic Co NNN" companies. Their account
coverage is set per country (``include/data/demo/country_profiles.csv``) so the founding
question (does Germany lag the US?) has a visible answer in the demo; it is a property of
the generator, not a finding.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path

from social_leadership.reference import GICS_SECTORS, normalize_country
from social_leadership.roster import ACCOUNT_COLUMNS, ROSTER_COLUMNS
from social_leadership.settings import BUNDLED_DATA_DIR

DEFAULT_SEED = 20190611

# Public figures from the founding brief, with their public handles.
REAL_EXECUTIVES: tuple[dict[str, str], ...] = (
    {
        "executive_id": "elon-musk",
        "full_name": "Elon Musk",
        "title": "Chief Executive Officer",
        "company": "Tesla",
        "country": "US",
        "sector": "Consumer Discretionary",
        "x": "elonmusk",
    },
    {
        "executive_id": "satya-nadella",
        "full_name": "Satya Nadella",
        "title": "Chairman and Chief Executive Officer",
        "company": "Microsoft",
        "country": "US",
        "sector": "Information Technology",
        "x": "satyanadella",
        "linkedin": "satyanadella",
    },
    {
        "executive_id": "mark-zuckerberg",
        "full_name": "Mark Zuckerberg",
        "title": "Founder, Chairman and Chief Executive Officer",
        "company": "Meta Platforms",
        "country": "US",
        "sector": "Communication Services",
        # A personal profile, not a Page: import-only (platforms/graph.py).
        "facebook": "profile:zuck",
    },
    {
        "executive_id": "sina-trinkwalder",
        "full_name": "Sina Trinkwalder",
        "title": "Founder and Chief Executive Officer",
        "company": "Manomama",
        "country": "DE",
        "sector": "Consumer Discretionary",
        "x": "manomama",
    },
    {
        "executive_id": "joe-kaeser",
        "full_name": "Joe Kaeser",
        "title": "Chairman of the Supervisory Board",
        "company": "Siemens Energy",
        "country": "DE",
        "sector": "Industrials",
        "x": "JoeKaeser",
        "valid_from": "2021-02-03",
    },
)

# Earlier versions of real executives (public record; dates approximate). Each row is
# written before the current one and carries only what differs plus its valid_from.
REAL_HISTORY: dict[str, tuple[dict[str, str], ...]] = {
    "joe-kaeser": (
        {
            "title": "President and Chief Executive Officer",
            "company": "Siemens",
            "country": "DE",
            "sector": "Industrials",
            "valid_from": "2013-08-01",
        },
    ),
}

# Synthetic executives who changed company or country within the last two years, so the
# demo shows reach attributed to the version valid on each day (SCD2). Keyed by the
# country profile whose first executive with accounts moves: (earlier country, earlier
# valid_from, date of the move).
SYNTHETIC_MOVES: tuple[tuple[str, str, str, str], ...] = (
    ("DE", "US", "2019-04-01", "2025-03-01"),
    ("US", "US", "2018-01-15", "2025-09-15"),
    ("GB", "FR", "2020-06-01", "2026-02-02"),
)


@dataclass(frozen=True)
class CountryProfile:
    code: str
    executives: int
    spellings: tuple[str, ...]  # how the country column is written, to exercise normalisation
    share_without_accounts: float
    share_on_x: float
    share_on_bluesky: float
    first_names: tuple[str, ...]


def _country_profiles(path: Path) -> tuple[CountryProfile, ...]:
    """The profiles of a CSV file, one country a row (``|`` separates a list's items)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return tuple(
            CountryProfile(
                code=row["code"],
                executives=int(row["executives"]),
                spellings=tuple(row["spellings"].split("|")),
                share_without_accounts=float(row["share_without_accounts"]),
                share_on_x=float(row["share_on_x"]),
                share_on_bluesky=float(row["share_on_bluesky"]),
                first_names=tuple(row["first_names"].split("|")),
            )
            for row in csv.DictReader(handle)
        )


# Invented, per country: how many synthetic executives, the shares without accounts, on X
# and on Bluesky (set so that the founding question has a visible answer), how the country
# is written, and first names.
COUNTRY_PROFILES = _country_profiles(BUNDLED_DATA_DIR / "demo" / "country_profiles.csv")

# Invented surnames built from syllables, so no row reads like a real person.
_SURNAME_STARTS = (
    "Bel",
    "Cor",
    "Dra",
    "Fen",
    "Gal",
    "Hol",
    "Kem",
    "Lor",
    "Mar",
    "Nor",
    "Pel",
    "Quin",
    "Ros",
    "Tal",
    "Ver",
    "Wen",
)
_SURNAME_ENDS = (
    "ando",
    "berg",
    "cott",
    "dahl",
    "ford",
    "gren",
    "holm",
    "ley",
    "mont",
    "nik",
    "ova",
    "rath",
    "sen",
    "ton",
    "ville",
    "wick",
)
_TITLES = (
    "Chief Executive Officer",
    "Chief Executive Officer",
    "Chief Executive Officer",
    "Chief Financial Officer",
    "Chair of the Board",
    "Chief Operating Officer",
    "Chief Technology Officer",
)


def generate_rows(seed: int = DEFAULT_SEED) -> list[dict[str, str]]:
    """All roster rows (real first, then synthetic), as CSV column -> value."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not security
    rows: list[dict[str, str]] = []
    for real in REAL_EXECUTIVES:
        current = {**dict.fromkeys(ROSTER_COLUMNS, ""), **real, "is_synthetic": "false"}
        for earlier in REAL_HISTORY.get(real["executive_id"], ()):
            rows.append(_earlier_version(current, earlier))
        rows.append(current)

    total = sum(profile.executives for profile in COUNTRY_PROFILES)
    sectors = [GICS_SECTORS[i % len(GICS_SECTORS)] for i in range(total)]
    rng.shuffle(sectors)
    number = 0
    for profile in COUNTRY_PROFILES:
        for _ in range(profile.executives):
            number += 1
            rows.append(_synthetic_row(rng, number, profile, sectors[number - 1]))
    return _with_synthetic_moves(rows)


def _earlier_version(current: dict[str, str], changes: dict[str, str]) -> dict[str, str]:
    earlier = {**current, **changes}
    # Accounts belong to the executive; the current row carries them.
    for platform in ACCOUNT_COLUMNS:
        earlier[platform] = ""
    return earlier


def _with_synthetic_moves(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Insert an earlier version before the first synthetic executive with accounts of
    each profile named in :data:`SYNTHETIC_MOVES`; the other rows stay as generated."""
    moved: dict[int, dict[str, str]] = {}
    for country, earlier_country, earlier_from, moved_on in SYNTHETIC_MOVES:
        for index, row in enumerate(rows):
            if (
                index not in moved
                and row["is_synthetic"] == "true"
                and row["executive_id"] != ""
                and _country_code_of(row["country"]) == country
                and (row["x"] or row["bluesky"])
            ):
                number = row["executive_id"].removeprefix("syn-")
                row["valid_from"] = moved_on
                moved[index] = _earlier_version(
                    row,
                    {
                        "company": f"Synthetic Former Co {number}",
                        "country": earlier_country,
                        "title": "Chief Operating Officer",
                        "valid_from": earlier_from,
                    },
                )
                break
    result: list[dict[str, str]] = []
    for index, row in enumerate(rows):
        if index in moved:
            result.append(moved[index])
        result.append(row)
    return result


def _country_code_of(value: str) -> str:
    return normalize_country(value)


def _synthetic_row(
    rng: random.Random, number: int, profile: CountryProfile, sector: str
) -> dict[str, str]:
    first = rng.choice(profile.first_names)
    surname = rng.choice(_SURNAME_STARTS) + rng.choice(_SURNAME_ENDS)
    row = dict.fromkeys(ROSTER_COLUMNS, "")
    row.update(
        executive_id=f"syn-{number:03d}",
        full_name=f"{first} {surname}",
        title=rng.choice(_TITLES),
        company=f"Synthetic Co {number:03d}",
        country=rng.choice(profile.spellings),
        sector=sector,
        is_synthetic="true",
    )
    if rng.random() < profile.share_without_accounts:
        return row
    slug = f"{first}{surname}".lower()
    on_x = rng.random() < profile.share_on_x
    on_bluesky = rng.random() < profile.share_on_bluesky
    if not (on_x or on_bluesky):
        # Someone with accounts has at least one of the two platforms the demo measures.
        on_bluesky = True
    if on_x:
        row["x"] = f"{first[:4]}{surname[:7]}{number:03d}"
    if on_bluesky:
        row["bluesky"] = f"{slug}{number:03d}.bsky.social"
    extra = rng.random()
    if extra < 0.04:
        row["mastodon"] = f"{slug}{number:03d}@mastodon.example"
    elif extra < 0.08:
        row["youtube"] = f"@{slug}{number:03d}"
    elif extra < 0.14:
        row["linkedin"] = f"{first.lower()}-{surname.lower()}-{number:03d}"
    elif extra < 0.18:
        row["threads"] = f"{slug}{number:03d}"
    return row


def csv_text(rows: list[dict[str, str]]) -> str:
    """The roster CSV of ``rows``, as the bundled demo roster is written."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(ROSTER_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def write_csv(rows: list[dict[str, str]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(csv_text(rows), encoding="utf-8", newline="")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    rows = generate_rows(args.seed)
    write_csv(rows, args.out)
    executives = len({row["executive_id"] for row in rows})
    print(f"wrote {len(rows)} rows ({executives} executives, their versions) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
