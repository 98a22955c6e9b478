"""Published aggregate figures (one row per source x wave x scope x question) into
``raw.survey_results``.

Headers are recognised as people export them: every contract column
(:data:`PUBLISHED_COLUMNS`) under its own name or a usual English, German, French or Spanish
one (:data:`HEADER_NAMES`), compared without case, accents, spaces, punctuation or a unit
mark (``Anteil in %``, ``Part (%)``, ``Source ID``, ``source-id`` all match); beside its own
name, a usual name is an extra column (``wave`` and ``Year``: ``Year`` is not read). A sidecar
``<stem>.survey.json`` may map any other header cell to a contract column, and give a value
for every row to the per-file columns (:data:`CONSTANT_COLUMNS`)::

    {"shape": "published", "source_name": "Acme Trust Monitor", "wave": 2025,
     "columns": {"scope": "Markt/Region", "value": "Zustimmung gesamt"}}

Derived columns: a file without a source id takes one from its source name, and a file
without a question id takes one from its question text, both by :func:`slug`
(``Edelman Trust Barometer`` -> ``edelman_trust_barometer``); the name and the text are
kept. So ``Quelle;Jahr;Land;Frage;Anteil in %;Befragte`` reads as source name, wave, scope,
question text, value and sample size. A source name (or id) is required: without either
the header is rejected, as it is without a wave, a scope, a question or a value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import re
import statistics
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from social_leadership.intake import RowIssue
from social_leadership.reference import FOOTNOTE_MARKS, is_part_of_country
from social_leadership.surveys.common import (
    MISSING_MARKS,
    HeaderSearch,
    SurveyValidationError,
    TextTable,
    cap_issues,
    file_problem,
    is_global_scope,
    lone_cell,
    names_a_place,
    shown_cells,
    survey_country,
)
from social_leadership.surveys.formats import format_of, read_sidecar, sidecar_path
from social_leadership.surveys.limits import limits_in_force

log = logging.getLogger(__name__)

PUBLISHED_COLUMNS = (
    "source_id",
    "source_name",
    "wave",
    "scope",
    "question_id",
    "question_text",
    "measure",
    "value",
    "sample_size",
    "margin_of_error_pct",
    "citation",
)
# Columns read to qualify a figure's question, not stored: whose answer it counts (a table
# by answer box: ``Response`` = ``Distrust``) and which part of the population (an
# ``Audience`` of ``Informed Public``). A figure with either is its own question (``Trust in
# business — Distrust (Informed Public)``), never the plain question's for the whole
# population of its scope.
QUALIFIER_COLUMNS = ("response", "audience")
# An audience that is the whole population: no qualifier.
WHOLE_POPULATION = frozenset(
    {"total", "all", "all respondents", "total respondents", "general population", "gen pop"}
    | {"genpop", "general public", "total population", "gesamt", "insgesamt", "alle"}
    | {"alle befragten", "gesamtbevölkerung", "bevölkerung", "allgemeine bevölkerung"}
    | {"ensemble", "population générale", "ensemble de la population", "total población"}
    | {"población general", "todos", "población total"}
)
# What one figure is: a file holds at most one row of each.
FIGURE_KEY = ("source_id", "wave", "scope", "question_id", "measure")
# Every loaded row has these; source_id and question_id may be derived (see the docstring).
REQUIRED_COLUMNS = ("source_id", "source_name", "wave", "scope", "question_id", "value")
MEASURES = ("share_pct", "index")
# Every column a header (or a sidecar's "columns") may name.
READ_COLUMNS = (*PUBLISHED_COLUMNS, *QUALIFIER_COLUMNS)
# Columns a published sidecar may give one value for, for every row of its file: all but
# the figures (the question too: a chart's export of one question is a table of countries).
CONSTANT_COLUMNS = tuple(
    column
    for column in PUBLISHED_COLUMNS
    if column not in ("value", "sample_size", "margin_of_error_pct")
)
SIDECAR_FIELDS = ("shape", "sheet", "columns", "share_scale", *CONSTANT_COLUMNS)
# How a file writes its shares (sidecar "share_scale"): as percentages (76) or as
# proportions (0.76, margins too), which load multiplied by 100.
SHARE_SCALES = ("percent", "proportion")
# Derived column -> the column it is derived from.
DERIVED_FROM = {"source_id": "source_name", "question_id": "question_text"}

# The usual header names of each contract column besides its own, by language. Compared by
# header_key(), so case, accents, spacing, punctuation and "in %" do not matter; a name
# belongs to one column only (checked when the module loads).
HEADER_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "source_id": {
        "en": ("source id", "survey id", "study id", "source code"),
        "de": ("Quellen-ID", "Quelle ID", "Studien-ID", "Umfrage-ID", "Quellcode"),
        "fr": ("id source", "identifiant source", "identifiant de la source", "code source"),
        "es": ("id fuente", "id de la fuente", "código fuente", "id estudio", "id encuesta"),
    },
    "source_name": {
        "en": ("source", "source name", "survey", "study", "publisher"),
        "de": ("Quelle", "Quellenname", "Studie", "Umfrage", "Herausgeber"),
        "fr": ("nom de la source", "nom source", "étude", "enquête", "éditeur"),
        "es": ("fuente", "nombre de la fuente", "nombre fuente", "estudio", "encuesta"),
    },
    "wave": {
        "en": (
            "year",
            "survey year",
            "fieldwork year",
            "edition",
            "year of survey",
            "survey wave",
            "year/wave",
            "wave/year",
        ),
        "de": (
            "Welle",
            "Jahr",
            "Erhebungsjahr",
            "Befragungsjahr",
            "Ausgabe",
            "Jahr der Erhebung",
            "Jahr der Befragung",
            "Erhebungswelle",
            "Befragungswelle",
            "Jahr/Welle",
            "Welle/Jahr",
        ),
        "fr": ("vague", "année", "année d'enquête", "édition"),
        "es": ("ola", "oleada", "año", "año de la encuesta", "edición"),
    },
    "scope": {
        "en": (
            "country",
            "market",
            "region",
            "geography",
            "country/market",
            "territory",
            "country/region",
            "country or region",
            "market/country",
        ),
        "de": (
            "Land",
            "Markt",
            "Staat",
            "Gebiet",
            "Land/Region",
            "Land/Markt",
            "Markt/Land",
            "Länder",
        ),
        "fr": ("pays", "marché", "zone", "territoire"),
        "es": ("país", "mercado", "región", "ámbito", "territorio"),
    },
    "question_id": {
        "en": ("question id", "question code", "item id", "statement id"),
        "de": ("Frage-ID", "Fragen-ID", "Fragennummer", "Fragecode"),
        "fr": ("id question", "identifiant question", "code question", "numéro de question"),
        "es": ("id pregunta", "id de la pregunta", "código pregunta", "código de pregunta"),
    },
    "question_text": {
        "en": ("question", "question text", "statement", "item text", "wording"),
        "de": ("Frage", "Fragetext", "Fragestellung", "Aussage", "Wortlaut"),
        "fr": ("libellé", "libellé de la question", "texte de la question", "énoncé"),
        "es": ("pregunta", "texto de la pregunta", "enunciado", "afirmación"),
    },
    "measure": {
        "en": ("measure type",),
        "de": ("Maß", "Messgröße"),
        "fr": ("mesure", "type de mesure"),
        "es": ("medida", "tipo de medida"),
    },
    "value": {
        # Not a bare "Agree" (also "% agree", "Agree (%)"): in a table of answer boxes it
        # is one box (beside "Strongly agree"), not the share agreeing.
        "en": (
            "share",
            "share pct",
            "percent",
            "percentage",
            "share agreeing",
            "percent agree",
            "total agree",
            # A chart's export of one question (the statistics portals'): the share of
            # the respondents who gave the answer shown.
            "share of respondents",
            "percentage of respondents",
            "percent of respondents",
            "% of respondents",
        ),
        "de": (
            "Wert",
            "Anteil",
            "Prozent",
            "Zustimmung",
            "Anteil Zustimmung",
            "Anteil der Befragten",
            "Anteil Befragte",
        ),
        "fr": (
            "valeur",
            "part",
            "pourcentage",
            "proportion",
            "taux",
            "part des répondants",
            "pourcentage de répondants",
            "% des répondants",
        ),
        "es": ("valor", "porcentaje", "proporción", "cuota", "porcentaje de encuestados"),
    },
    "sample_size": {
        "en": (
            "sample size",
            "sample",
            "n",
            "base",
            "respondents",
            "unweighted base",
            "total n",
            "unweighted n",
            "base size",
        ),
        "de": (
            "Stichprobe",
            "Stichprobengröße",
            "Befragte",
            "Anzahl Befragte",
            "Fallzahl",
            "Basis",
            "N (ungewichtet)",
        ),
        "fr": ("échantillon", "taille de l'échantillon", "taille d'échantillon", "répondants"),
        "es": ("muestra", "tamaño de la muestra", "tamaño muestral", "encuestados"),
    },
    "margin_of_error_pct": {
        "en": ("margin of error", "margin", "moe", "error margin", "sampling error"),
        "de": ("Fehlermarge", "Fehlertoleranz", "Fehlerspanne", "Stichprobenfehler"),
        "fr": ("marge d'erreur", "marge", "erreur d'échantillonnage"),
        "es": ("margen de error", "margen", "error muestral"),
    },
    "response": {
        "en": (
            "answer",
            "answer option",
            "response option",
            "answer category",
            "response category",
        ),
        "de": ("Antwort", "Antwortoption", "Antwortkategorie", "Antwortmöglichkeit"),
        "fr": ("réponse", "modalité de réponse", "modalité"),
        "es": ("respuesta", "opción de respuesta", "categoría de respuesta"),
    },
    "audience": {
        # Not "population" alone: a country table's population is a number of people.
        "en": (
            "segment",
            "subgroup",
            "sub-group",
            "target group",
            "demographic",
            "respondent group",
        ),
        "de": ("Zielgruppe", "Teilgruppe", "Bevölkerungsgruppe", "Befragtengruppe"),
        "fr": ("cible", "sous-groupe", "groupe cible", "public cible"),
        "es": ("segmento", "subgrupo", "grupo objetivo", "público objetivo"),
    },
    "citation": {
        "en": ("reference", "cite as"),
        "de": ("Zitat", "Zitierweise", "Quellenangabe", "Fundstelle", "Nachweis"),
        "fr": ("citation", "référence", "référence bibliographique"),
        "es": ("cita", "referencia", "cita bibliográfica"),
    },
}

# Letters NFKD does not split into a base letter and an accent.
_LETTERS = str.maketrans(
    {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th"}
)
# "in %", "(%)", "(Prozent)", "en porcentaje" and a bare "%" say the unit, not the column; so
# does the "(n)" of a count ("Befragte (n)", "Sample (n)").
_UNIT = re.compile(
    r"\(\s*(?:(?:in|en)\s+)?(?:%|percent|prozent|pourcentage|porcentaje)\s*\)"
    r"|\(\s*n\s*\)"
    r"|\b(?:in|en)\s*(?:%|percent\b|prozent\b|pourcentage\b|porcentaje\b)"
    r"|%"
)
_SLUG_LIMIT = 64
# The largest value of the warehouse's INTEGER columns (sample_size).
_MAX_INTEGER = 2**31 - 1


def _fold(text: str) -> str:
    """Casefolded, without accents: ``Échantillon`` -> ``echantillon``, ``Größe`` -> ``grosse``."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold().translate(_LETTERS))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def header_key(cell: str) -> str:
    """What a header cell is compared by: letters and digits only, folded, unit removed."""
    key = "".join(ch for ch in _UNIT.sub(" ", _fold(cell)) if ch.isalnum())
    if not key and "%" in cell:
        return "percent"
    return key


def _header_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for column, by_language in HEADER_NAMES.items():
        for name in (column, *(n for names in by_language.values() for n in names)):
            owner = index.setdefault(header_key(name), column)
            if owner != column:
                raise ValueError(f"header name {name!r} given for both {owner} and {column}")
    return index


_HEADER_INDEX = _header_index()


def slug(text: str) -> str:
    """An id from a name: lowercase ASCII, words joined by underscores, at most 64 characters
    (``Edelman Trust Barometer`` -> ``edelman_trust_barometer``). Text without Latin letters
    or digits, and text cut to fit, get a hash of the whole text so ids stay distinct."""
    base = re.sub(r"[^a-z0-9]+", "_", _fold(text)).strip("_")
    digest = hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()
    if not base:
        return f"id_{digest[:12]}"
    if len(base) > _SLUG_LIMIT:
        return f"{base[: _SLUG_LIMIT - 9].rstrip('_')}_{digest[:8]}"
    return base


# --- sidecar -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedDeclaration:
    """A published file's sidecar: header cells for contract columns, per-file values."""

    sidecar: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    sheet: str | None = None
    # None: not declared (a file whose every share lies between 0 and 1 is then refused).
    share_scale: str | None = None


# Spaces people and spreadsheets put in numbers (``76 %``, ``1 150``): a no-break, a narrow
# no-break and a thin space read as a plain one; a typographic minus as ``-``.
# The typographic apostrophe (U+2019) Swiss formats group thousands with reads as ``'``.
_NUMBER_SPACES = str.maketrans(
    {"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2212": "-", "\u2019": "'"}
)
# Digits grouped by thousands with one separator throughout: 1.150, 1,150, 1 150, 1'150.
_GROUPED = re.compile(r"[+-]?\d{1,3}(?P<sep>[.,' ])\d{3}(?:(?P=sep)\d{3})*")
# Grouped digits and a decimal part after the other mark: 1.234,5 and 1,234.5.
_GROUPED_DECIMAL = re.compile(
    r"(?P<whole>[+-]?\d{1,3}(?:(?P<sep>[.,' ])\d{3})+)(?P<mark>[.,])(?P<fraction>\d+)"
)
# A margin of error written with its sign: ±2,9, +/- 2.9, +-2.9.
_PLUS_MINUS = re.compile(r"^(?:±|\+\s*(?:/\s*)?-)\s*")


def _number_text(text: str) -> str:
    # A footnote mark after a figure (``76*``, a flag such as "low base") is no part of
    # it; taken off by str.rstrip(), as a pattern would cost time per space of a long run.
    cleaned = text.translate(_NUMBER_SPACES).strip().rstrip(FOOTNOTE_MARKS).rstrip()
    return cleaned[:-1].rstrip() if cleaned.endswith("%") else cleaned


# A margin's unit, percentage points, longest first: ``2,9 Pp.``, ``2,9 Prozentpunkte``.
_POINTS = (
    "points de pourcentage",
    "puntos porcentuales",
    "percentage points",
    "prozentpunkte",
    "%-punkte",
    "points",
    "p.p.",
    "pkt.",
    "pts.",
    "pp.",
    "pkt",
    "pts",
    "pp",
)


def _without_points(text: str) -> str:
    """A margin without its unit, percentage points (``2,9 Pp.`` -> ``2,9``)."""
    stripped = text.rstrip()
    unit = next((unit for unit in _POINTS if stripped[-len(unit) :].casefold() == unit), "")
    return stripped[: -len(unit)].rstrip() if unit else text


def _base_count(text: str) -> str:
    """A sample size written as a base, without its marks: ``n=1.150``, ``N = 1 150``,
    ``(1.150)``, ``(n=1.150)`` -> the count."""
    count = text.strip()
    if count.startswith("(") and count.endswith(")"):
        count = count[1:-1].strip()
    if count[:1] in "nN" and count[1:].lstrip().startswith("="):
        count = count[1:].lstrip()[1:].strip()
    return count


# A published margin over this many times the largest 95 % sampling margin of its sample
# size (a share of 50 %): no design effect comes near it (weighting rarely doubles one).
_MARGIN_PAST_SAMPLING = 5
# Without a sample size: over this many points, no survey of 16 respondents or more.
_MARGIN_PAST_ANY_SURVEY = 25


def _sampling_margin(share_pct: float, size: int) -> float:
    """The 95 % sampling margin, in points, of a share of ``size`` respondents."""
    return 1.96 * (share_pct / 100 * (1 - share_pct / 100) / size) ** 0.5 * 100


def _margin_in_points(record: dict[str, Any], margin: float | None, scale: int) -> str | None:
    """Why a margin of a file of proportions (``scale`` 100) reads as written in points,
    times 100 (None: it does not). Shares written as ``0.64`` beside margins written as
    ``0.6`` (points) loaded a margin of 60 points: an interval of 4 to 100 at n = 32,000.
    Measured against the largest margin of the sample size, the one at a share of 50 %,
    which tables often give for every share of a survey (a share of 1 % has a far
    smaller sampling margin, and its published margin is no mistake)."""
    if scale == 1 or margin is None:
        return None
    size = record.get("sample_size")
    written = f"margin {margin / scale:g} read as a proportion is {margin:g} points"
    fix = (
        ": written in points while the shares are proportions "
        '("share_scale": "proportion")? Write the margins as the shares are written'
    )
    if not size:
        if margin <= _MARGIN_PAST_ANY_SURVEY:
            return None
        return f"{written}, more than any survey of 16 respondents or more has{fix}"
    largest = _sampling_margin(50.0, size)
    if margin <= _MARGIN_PAST_SAMPLING * largest:
        return None
    return (
        f"{written}, over {_MARGIN_PAST_SAMPLING} times the largest sampling margin of "
        f"{size:,} respondents ({largest:.1f} points, at a share of 50 %){fix}"
    )


# A published margin under this fraction of the 95 % sampling margin of its own share and
# sample size: no design gains that much (stratification rarely takes a tenth off).
_MARGIN_UNDER_SAMPLING = 1 / 3


def _margin_too_small(record: dict[str, Any]) -> str | None:
    """Why a share's margin in points reads as written as a proportion (None: it does not):
    under a third of its own sampling margin, where a hundred times it would be a margin
    this sample could have (0,027 for 70 % of 1,150 respondents, whose sampling margin is
    2.6 points, was loaded as an interval of 69.97 to 70.03). A small margin that is no
    proportion (the whole survey's beside a country's sample size) is loaded as written."""
    size, share = record["sample_size"], record["value"]
    margin = record["margin_of_error_pct"]
    if record["measure"] != "share_pct" or not margin or not size or not 0 < share < 100:
        return None
    sampling = _sampling_margin(share, size)
    low = _MARGIN_UNDER_SAMPLING * sampling
    if margin >= low or not low <= margin * 100 <= _MARGIN_PAST_SAMPLING * sampling:
        return None
    return (
        f"margin {margin:g} points is under a third of the sampling margin of {share:g} % "
        f"from {size:,} respondents ({sampling:.1f} points): a margin written as a proportion? "
        f"Write it in points ({margin * 100:g}), as the shares are"
    )


def _scaled(number: float, scale: int) -> float:
    """``number`` times ``scale``, as the file's decimals give it: 0.29 times 100 is 29,
    where binary floating point gives 28.999999999999996 (and 0.145 gave 14.499999999999998,
    which rounds to 14 where the survey's 14.5 % rounds to 15)."""
    return number if scale == 1 else round(number * scale, 9)


def _number(text: str) -> float:
    """``76``, ``76.5``, ``76,5``, ``76 %``, ``76,5%``, ``1.234,5`` and ``1,234.5`` all read as
    numbers. A lone ``.`` or ``,`` is the decimal mark (``1,000`` is one); the same mark
    between several groups of three digits, or a space between them, groups thousands.
    ``inf`` and ``nan``, which float() reads, are no figures: ValueError."""
    number = _parsed_number(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _parsed_number(text: str) -> float:
    cleaned = _number_text(text)
    grouped = _GROUPED_DECIMAL.fullmatch(cleaned)
    if grouped and grouped["sep"] != grouped["mark"]:
        return float(f"{grouped['whole'].replace(grouped['sep'], '')}.{grouped['fraction']}")
    grouped = _GROUPED.fullmatch(cleaned)
    if grouped and (grouped["sep"] in " '" or cleaned.count(grouped["sep"]) > 1):
        return float(cleaned.replace(grouped["sep"], ""))
    if "_" in cleaned:  # float() would read 1_000 as 1000
        raise ValueError(text)
    return float(cleaned.replace(",", "."))


def _whole(text: str) -> int:
    """A whole number, its thousands grouped or not: ``1150``, ``1.150``, ``1,150``,
    ``1 150``, ``1150,0``. A separator before three digits groups thousands here, as a count
    has no decimal part."""
    cleaned = _number_text(text)
    grouped = _GROUPED.fullmatch(cleaned)
    if grouped:
        return int(cleaned.replace(grouped["sep"], ""))
    number = _number(cleaned)
    if not number.is_integer():
        raise ValueError(text)
    return int(number)


# How a note under a table starts: a footnote mark, a numbered note, a base (``n = 1.150
# Befragte``), or a word saying what follows (the source, the base, the fieldwork, the
# unit, a remark), in English, German, French and Spanish.
_NOTE_WORDS = (
    r"quellen?|sources?|notes?|anmerkung(?:en)?|hinweise?|basis|base|fu(?:ß|ss)note"
    r"|footnote|lesehilfe|stand|angaben|befragungszeitraum|erhebungszeitraum|feldzeit"
    r"|fieldwork|survey period|fuente|nota|remarque|terrain"
)
_NOTE_OPENING = re.compile(
    rf"\s*(?:[{FOOTNOTE_MARKS}\u00a9]|\(?\d+\)|n\s*=|(?:{_NOTE_WORDS})\b)", re.IGNORECASE
)


# A note's label in a cell of its own, the note's text in the next (``Quelle:`` |
# ``Edelman Trust Barometer 2019``, ``*`` | ``Werte gerundet``): the whole cell is the label.
# Matched against the stripped cell, one run of spaces at most (before the colon): two
# quantifiers over one run would try each split of it.
_NOTE_LABEL = re.compile(
    rf"(?:[{FOOTNOTE_MARKS}\u00a9]+|\(?\d+\)|(?:{_NOTE_WORDS})(?:\s*:)?)", re.IGNORECASE
)


_LABELLED_NOTE = re.compile(rf"\s*(?:{_NOTE_WORDS})\s*:\s*\S", re.IGNORECASE)


def _note_text(cells: list[str]) -> str | None:
    """A row's text if it can be a note: its one filled cell, or a label cell
    (:data:`_NOTE_LABEL`) and one text after it (in one cell or merged over several); None
    for any other row (a figure fills cells with different texts: a row ``*`` |
    ``Edelman`` | ``2019`` | ... with a flag column is a figure)."""
    lone = lone_cell(cells)
    if lone is not None:
        return lone
    filled = [cell for cell in cells if cell]
    # The text may fill several cells as one (merged across them in a sheet).
    if len(filled) >= 2 and len(set(filled[1:])) == 1 and _NOTE_LABEL.fullmatch(filled[0].strip()):
        return " ".join(filled[:2])
    # A note whose first cell says what it is (``Basis: alle Befragten`` | ``n = 2.300``,
    # ``Quelle: Edelman`` | ``Stand: Januar 2019``): no figure opens with such a label.
    if filled and _LABELLED_NOTE.match(filled[0]):
        return " ".join(filled)
    return None


# A header's second row giving units (``in %`` | ``n`` under ``Zustimmung`` | ``Befragte``):
# every filled cell one of these.
_UNIT_CELLS = frozenset(
    {"%", "in %", "(%)", "in prozent", "prozent", "percent", "n", "(n)", "anzahl", "abs."}
    | {"absolut", "pp", "pp.", "basis", "count", "en %", "en pourcentage", "en porcentaje"}
)


def _without_repeated_headers(
    name: str, table: TextTable, rows: list[tuple[int, list[str]]]
) -> list[tuple[int, list[str]]]:
    """The rows without the header's second row of units right under it and without the
    header repeated further down (a table pasted from pages, each headed again); logged."""
    header = [cell.strip().casefold() for cell in table.header]
    kept, left_out = [], []
    for position, (line_no, cells) in enumerate(rows):
        folded = [cell.strip().casefold() for cell in cells]
        filled = [cell for cell in folded if cell]
        units = position == 0 and filled and all(cell in _UNIT_CELLS for cell in filled)
        repeated = filled and folded[: len(header)] + [""] * (len(header) - len(folded)) == header
        if units or repeated:
            left_out.append(line_no)
        else:
            kept.append((line_no, cells))
    if left_out:
        log.info(
            "%s: %s read as the header's, not data",
            name,
            ", ".join(f"row {line_no}" for line_no in left_out),
        )
    return kept


def _qualify_question(record: dict[str, Any], qualifiers: list[str]) -> None:
    """Make a figure of one answer or one part of the population a question of its own:
    ``Trust in business`` with ``Response`` ``Distrust`` and ``Audience`` ``Informed Public``
    is ``Trust in business — Distrust (Informed Public)``, id ``..._distrust_informed_public``
    (:data:`QUALIFIER_COLUMNS`; an audience of the whole population qualifies nothing)."""
    response, audience = (text.strip() for text in qualifiers)
    if " ".join(audience.casefold().split()) in WHOLE_POPULATION:
        audience = ""
    if not response and not audience:
        return
    suffix = (f" \u2014 {response}" if response else "") + (f" ({audience})" if audience else "")
    words = " ".join(text for text in (response, audience) if text)
    if record["question_text"] or record["question_id"]:
        record["question_text"] = (record["question_text"] or record["question_id"]) + suffix
    if record["question_id"]:
        record["question_id"] = f"{record['question_id']}_{slug(words)}"


def _cut_short_or_note(text: str) -> str:
    """What a report says of a row of one filled cell right under the figures."""
    return (
        f"holds only {shown_cells([text])}: a figure cut short, or a note below the table? "
        "A note is left out when an empty row is above it or it opens as a note does "
        "('Quelle:', 'Anmerkung:', 'Basis:', '*', '1)')"
    )


def _without_notes_below(
    table: TextTable,
) -> tuple[list[tuple[int, list[str]]], list[tuple[int, list[str]]]]:
    """The table's rows without the notes below it (a source line, a footnote: ``Quelle:
    Edelman Trust Barometer 2019``, or ``Quelle:`` and the source in the next cell), and
    those notes. Notes are the rows that can be one (:func:`_note_text`) after the last
    row that cannot, from the first that starts as a note does (:data:`_NOTE_OPENING`) or
    sits below an empty row: a one-cell row right under the figures may be a figure cut
    short (``Misstrauen;``), which is reported, not dropped."""
    rows = table.rows
    end = len(rows)
    while end and _note_text(rows[end - 1][1]) is not None:
        end -= 1
    if end == 0:
        return rows, []
    for first in range(end, len(rows)):
        line_no, cells = rows[first]
        below_empty = line_no > table.next_row_after(rows[first - 1][0])
        if below_empty or _NOTE_OPENING.match(_note_text(cells) or ""):
            return rows[:first], rows[first:]
    return rows, []


# The optional columns that say what a figure is (beside the required ones: source, wave,
# scope, question): a pivot table writes each of these labels once too, blank in the rows
# under it that share it.
OPTIONAL_LABEL_COLUMNS = ("question_text", "measure", "citation", *QUALIFIER_COLUMNS)


# A pivot table's total rows: its grand total (``Gesamtergebnis``, ``Grand Total``) or a
# subtotal (``Deutschland Ergebnis``, ``Germany Total``) in a label cell, the label cells
# after it empty. Their figure is an average or sum of others, no figure of its own.
_TOTAL_LABEL = re.compile(
    r"(?:^|.*\s)(?:gesamtergebnis|ergebnis|gesamtsumme|grand total|total|totale|"
    r"total g[ée]n[ée]ral|total general|totaal|summe|sum)$",
    re.IGNORECASE,
)


def _pivot_layout(
    name: str,
    rows: list[tuple[int, list[str]]],
    required: list[int],
    optional: list[int],
    value: int,
) -> list[tuple[int, list[str]]]:
    """``rows`` read as a pivot table pasted as values lays them out, each change logged.
    ``required``, ``optional``: the positions of the required and optional label columns.

    * A total row is left out: a total word (:data:`_TOTAL_LABEL`) in a required label and
      the required labels after it empty, which no figure's row has.
    * A row under a row whose required labels are all filled, with a figure and with its
      first required labels (in the file's order) empty but not all of them, is a row
      under labels a pivot table wrote once (its tabular form without "Repeat all item
      labels", or merged cells saved as CSV: ``;;Frankreich;Q;65`` under
      ``Edelman;2019;Deutschland;Q;76``): its label cells before its first filled one,
      optional ones included (an audience, a measure), are taken from the row above. An
      empty required label after a filled one, or with no full row above, is reported as
      before; an optional label left empty after the first filled one stays empty.
    """
    required = sorted(required)
    every_label = sorted({*required, *optional})
    kept: list[tuple[int, list[str]]] = []
    filled: list[int] = []
    totals: list[int] = []
    above: list[str] | None = None
    for line_no, cells in rows:

        def text(index: int, cells: list[str] = cells) -> str:
            return cells[index].strip() if index < len(cells) else ""

        named = [index for index in required if text(index)]
        empty = [index for index in required if not text(index)]
        if named and empty and empty[-1] > named[-1] and _TOTAL_LABEL.match(text(named[-1])):
            totals.append(line_no)
            continue
        leading = empty and empty == required[: len(empty)]
        if above is not None and text(value) and named and leading:
            first = next(index for index in every_label if text(index))
            cells = [*cells, *[""] * (first + 1 - len(cells))]
            for index in every_label:
                if index >= first:
                    break
                cells[index] = above[index] if index < len(above) else ""
            filled.append(line_no)
        elif empty or not text(value):
            kept.append((line_no, cells))
            continue
        above = cells
        kept.append((line_no, cells))
    for lines, what in (
        (totals, "a pivot table's total: left out"),
        (filled, "empty label cells at the start, read as the labels of the row above"),
    ):
        if lines:
            log.warning("%s: %s %s", name, ", ".join(f"row {n}" for n in lines), what)
    return kept


def _optional(text: str, *, whole: bool) -> float | int | None:
    """An optional figure (sample size, margin): None when the cell is empty or marks it
    missing (``n.a.``, ``-``, ``k.A.``: :data:`MISSING_MARKS`)."""
    text = text.strip()
    if not text or text.lower() in MISSING_MARKS:
        return None
    if whole:
        return _whole(_base_count(text))
    return _number(_without_points(_PLUS_MINUS.sub("", text)))


# A date as spreadsheets write one to CSV, the year last (German ``01.01.2019``, US
# ``1/1/2019``), a time of day after it or not: its year is the wave.
# A time may follow, an English Excel's with AM or PM (11/30/2019 12:00:00 AM).
_LOCAL_DATE = re.compile(
    r"(\d{1,2})([./])(\d{1,2})\2(\d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp]\.?[Mm]\.?)?)?"
)


def _local_date_year(local: re.Match[str]) -> int:
    """The year of a date written with the year last, day and month in either order
    (``31.12.2019``, ``12/31/2019``); ValueError when it is no date."""
    first, second, year = int(local[1]), int(local[3]), int(local[4])
    # The date is built only to tell a real one from 31.13.2019.
    for day, month in ((first, second), (second, first)):
        try:
            return date(year, month, day).year
        except ValueError:
            continue
    raise ValueError(f"{local[0]!r} is not a date")


# Words a wave cell may hold beside its one year (``Januar 2019``, ``Wave 2020``, ``Nov.
# 2018``): month names and their short forms in English, German (Austrian Jänner too), French
# and Spanish (as each language's Excel writes ``mmm-yy``: ``janv.-19``, ``ene-19``), and a
# word for the wave. A second number (``2018/19``, ``Q4 2019``) leaves the year unclear.
_MONTH_WORDS = frozenset(
    {"january", "february", "march", "april", "may", "june", "july", "august", "september"}
    | {"october", "november", "december", "januar", "jänner", "februar", "märz", "mai"}
    | {"juni", "juli", "oktober", "dezember", "janvier", "février", "fevrier", "mars"}
    | {"avril", "juin", "juillet", "août", "aout", "septembre", "octobre", "novembre"}
    | {"décembre", "decembre", "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio"}
    | {"agosto", "septiembre", "setiembre", "octubre", "noviembre", "diciembre"}
    | {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
    | {"mär", "mrz", "okt", "dez", "jän"}
    | {"janv", "févr", "fevr", "avr", "juil", "déc"}
    | {"ene", "abr", "ago", "dic"}
)
_WAVE_WORDS = _MONTH_WORDS | {"wave", "welle", "vague", "ola", "edition", "ausgabe", "year", "jahr"}
_WAVE_WORD_SEPARATORS = re.compile(r"[\s.,:;()\-\u2013]+")


# A month of a year, as a date column formatted ``yyyy-mm`` or Excel's ``mmm-yy`` is written
# to CSV (``2019-01``, ``Jan-19``, ``Jan 19``): the year is the wave.
_YEAR_MONTH = re.compile(r"(\d{4})[-.](\d{1,2})")
_MONTH_SHORT_YEAR = re.compile(r"([^\W\d_]+)\.?[-\s](\d{2})")


def _year_among_words(text: str) -> int:
    """The year of a wave cell that is one four-digit year among :data:`_WAVE_WORDS`, a
    year and month (``2019-01``), or a month and a two-digit year (``Jan-19``: 2019, and
    ``Nov-98``: 1998, ``Jan-30``: 2030); ValueError otherwise."""
    if (month := _YEAR_MONTH.fullmatch(text.strip())) and 1 <= int(month[2]) <= 12:
        return int(month[1])
    short = _MONTH_SHORT_YEAR.fullmatch(text.strip())
    if short and short[1].casefold() in _MONTH_WORDS:
        # Two digits: 90-99 are the 1990s, 00-89 2000-2089. Excel reads 30-89 as 1930-1989,
        # no survey year (1990 to 2100): a 2030 wave written "Jan-30" was refused as 1930.
        year = int(short[2])
        return 1900 + year if year >= 90 else 2000 + year
    words = [word for word in _WAVE_WORD_SEPARATORS.split(text.casefold()) if word]
    years = [word for word in words if word.isdigit()]
    if len(years) != 1 or len(years[0]) != 4 or len(words) == 1:
        raise ValueError(text)
    if not all(word in _WAVE_WORDS for word in words if not word.isdigit()):
        raise ValueError(text)
    return int(years[0])


def wave_year(text: str) -> int:
    """The survey year a wave cell or a sidecar's ``wave`` names (``2019``, ``Jan-19``,
    ``Wave 2020``, ``31.12.2019``); ValueError saying why when it names none."""
    return _wave(text)


def _wave(text: str) -> int:
    try:
        # A date (an XLSX year cell holding 2019-01-01, formatted to show 2019; the same
        # cell written to CSV by a German Excel, 01.01.2019) is its year.
        if local := _LOCAL_DATE.fullmatch(text):
            wave = _local_date_year(local)
        else:
            wave = date.fromisoformat(text[:10]).year if len(text) >= 10 else _whole(text)
    except (ValueError, OverflowError):  # OverflowError: '1e999' reads as infinity
        try:
            wave = _year_among_words(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a year") from None
    if not 1990 <= wave <= 2100:
        raise ValueError(f"{wave} is not a plausible survey year")
    return wave


def _scope(text: str) -> str:
    if is_global_scope(text):
        return "global"
    code = survey_country(text)
    if is_part_of_country(text):
        raise ValueError(
            f"{text.strip()!r} is a part of {code}: its figure is none of the whole country's"
        )
    return code


# How a measure cell may name one, besides its own name: a share in percent (``Prozent``,
# ``%``, ``Anteil``), an index.
MEASURE_NAMES = {
    **{name: "share_pct" for name in ("share_pct", "share", "percent", "per cent", "pct", "%")},
    **{name: "share_pct" for name in ("prozent", "anteil", "pourcentage", "porcentaje")},
    **{name: "index" for name in ("index", "indexwert", "indice", "índice")},
}


def _measure(text: str) -> str:
    measure = MEASURE_NAMES.get(" ".join(text.casefold().split()))
    if measure is None:
        raise ValueError(f"{text!r} is not one of {', '.join(MEASURES)}")
    return measure


_CONSTANT_CHECKS = {"wave": _wave, "scope": _scope, "measure": _measure}


def parse_published_declaration(sidecar_name: str, data: dict[str, Any]) -> PublishedDeclaration:
    """Check a published sidecar; raise SurveyValidationError naming each bad field."""
    issues: list[RowIssue] = []

    def problem(column: str, reason: str) -> None:
        issues.append(RowIssue(sidecar_name, 0, column, reason))

    for key in data:
        if key not in SIDECAR_FIELDS:
            problem(key, f"not a published sidecar field (one of: {', '.join(SIDECAR_FIELDS)})")
    if data.get("shape", "published") != "published":
        problem("shape", f"{data['shape']!r} is not published")
    sheet = data.get("sheet")
    if sheet is not None and (not isinstance(sheet, str) or not sheet.strip()):
        problem("sheet", "needs a sheet name")
    share_scale = data.get("share_scale")
    if share_scale is not None and share_scale not in SHARE_SCALES:
        problem("share_scale", f"{share_scale!r} is not one of {', '.join(SHARE_SCALES)}")
    columns: dict[str, str] = {}
    mapping = data.get("columns")
    if mapping is not None and not isinstance(mapping, dict):
        problem("columns", 'must map contract columns to header cells, e.g. {"value": "Anteil"}')
        mapping = {}
    mapped_to: dict[str, str] = {}
    for column, cell in (mapping or {}).items():
        where = f"columns.{column}"
        if column not in READ_COLUMNS:
            problem(where, f"not a published column (one of: {', '.join(READ_COLUMNS)})")
        elif not isinstance(cell, str) or not cell.strip():
            problem(where, "needs a header cell name")
        elif cell.strip().casefold() in mapped_to:
            problem(where, f"{cell!r} is also mapped to {mapped_to[cell.strip().casefold()]}")
        else:
            mapped_to[cell.strip().casefold()] = column
            columns[column] = cell.strip()
    constants: dict[str, str] = {}
    for column in CONSTANT_COLUMNS:
        if column not in data:
            continue
        value = data[column]
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
            problem(column, "needs a text or number for every row of the file")
            continue
        text = str(value).strip()
        try:
            _CONSTANT_CHECKS.get(column, str)(text)
        except ValueError as exc:
            problem(column, str(exc))
            continue
        if column in columns:
            problem(column, f"also mapped to the header cell {columns[column]!r}; give one")
            continue
        constants[column] = text
    if issues:
        raise SurveyValidationError(issues)
    return PublishedDeclaration(sidecar_name, columns, constants, sheet, share_scale)


def _read_sidecar(path: Path) -> tuple[str, dict[str, Any] | None]:
    sidecar = sidecar_path(path)
    try:
        present = sidecar.is_file()
    except OSError:  # a name too long for the file system has no sidecar either
        present = False
    return sidecar.name, read_sidecar(sidecar) if present else None


# --- header --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    """Where each contract column is in a header, and what went wrong finding them."""

    positions: dict[str, int]
    unmatched: dict[str, str]  # column -> header cell the sidecar names but the file lacks
    repeated: dict[str, list[int]]  # column -> the several cells that read as it

    def has(self, column: str, declaration: PublishedDeclaration) -> bool:
        return column in self.positions or column in declaration.constants

    def missing(self, declaration: PublishedDeclaration) -> dict[str, str]:
        """Each required column the header lacks, with the reason a report gives."""

        def has(column: str) -> bool:
            # A repeated or wrongly mapped column has its own, more precise report.
            return (
                self.has(column, declaration) or column in self.repeated or column in self.unmatched
            )

        missing = {}
        if not has("source_name"):
            missing["source_name"] = (
                "required column missing: no source name and no source id column (the "
                "source id is derived from the name when there is no id column)"
                if not has("source_id")
                else "required column missing: the source's name"
            )
        for column in ("wave", "scope", "value"):
            if not has(column):
                missing[column] = f"required column missing ({_known_as(column)})"
        if not has("question_id") and not has("question_text"):
            missing["question_id"] = (
                "required column missing: no question id and no question text column (the "
                "question id is derived from the text when there is no id column; a file of "
                'one question can take it from its sidecar\'s "question_text")'
            )
        return missing


def _known_as(column: str) -> str:
    names = [column, *(n for names in HEADER_NAMES[column].values() for n in names[:2])]
    return "a header cell such as " + ", ".join(repr(name) for name in dict.fromkeys(names))


def _locate(header: list[str], declaration: PublishedDeclaration) -> _Header:
    positions: dict[str, int] = {}
    unmatched: dict[str, str] = {}
    repeated: dict[str, list[int]] = {}
    folded = [cell.strip().casefold() for cell in header]
    for column, cell in declaration.columns.items():
        found = [i for i, text in enumerate(folded) if text == cell.casefold()]
        if not found:
            unmatched[column] = cell
        elif len(found) > 1:
            repeated[column] = found
        else:
            positions[column] = found[0]
    taken = set(positions.values())
    candidates: dict[str, list[int]] = {}
    for index, cell in enumerate(header):
        column = _HEADER_INDEX.get(header_key(cell)) if cell.strip() else None
        if column and index not in taken and column not in declaration.columns:
            candidates.setdefault(column, []).append(index)
    for column, found in candidates.items():
        own_name = [i for i in found if header_key(header[i]) == header_key(column)]
        if len(own_name) == 1:
            # Files headed by the contract's names loaded before the usual names were
            # known, extra columns and all: a 'year' beside 'wave' is such an extra column.
            found = own_name
        if len(found) > 1:
            repeated[column] = found
        else:
            positions[column] = found[0]
    row_labels = _row_labels(header, positions, repeated, declaration)
    if row_labels is not None:
        positions[row_labels[0]] = row_labels[1]
    return _Header(positions, unmatched, repeated)


def _row_labels(
    header: list[str],
    positions: dict[str, int],
    repeated: dict[str, list[int]],
    declaration: PublishedDeclaration,
) -> tuple[str, int] | None:
    """The column of a table's row labels, headed by no cell: the empty cell just left of
    the first column the header names, the cells left of it empty too (a pivot table's or
    a chart export's corner: `` | Anteil der Befragten`` over ``Deutschland | 76 %``). It
    is the scope when nothing else gives one, else the wave when nothing gives that (a
    country's time series: ``2019 | 76 %``). None when both are given, or the header names
    no column."""

    def given(column: str) -> bool:
        return (
            column in positions
            or column in repeated
            or column in declaration.columns
            or column in declaration.constants
        )

    column = next((column for column in ("scope", "wave") if not given(column)), None)
    if column is None:
        return None
    named = [*positions.values(), *(i for found in repeated.values() for i in found)]
    if not named or min(named) == 0:
        return None
    corner = min(named) - 1
    if any(cell.strip() for cell in header[: corner + 1]):
        return None
    return column, corner


def _cell_meanings(header: list[str], located: _Header, declaration: PublishedDeclaration) -> str:
    meaning = {index: column for column, index in located.positions.items()}
    for column, found in located.repeated.items():
        meaning.update(dict.fromkeys(found, column))
    for index, cell in enumerate(header):
        column = _HEADER_INDEX.get(header_key(cell))
        if index not in meaning and column in declaration.columns:
            meaning[index] = f"not used: the sidecar maps {column} to another cell"
        elif index not in meaning and column in located.positions:
            meaning[index] = f"not used: {header[located.positions[column]]!r} is the {column}"
    described = [
        f"{shown_cells([cell])} ({meaning.get(index, 'not recognised')})"
        for index, cell in enumerate(header)
        if cell.strip()
    ]
    return ", ".join(described) if described else "no filled cell"


def _header_issues(
    name: str, table: TextTable, declaration: PublishedDeclaration, located: _Header
) -> list[RowIssue]:
    header, row = table.header, table.header_row
    issues = [
        RowIssue(
            declaration.sidecar,
            0,
            f"columns.{column}",
            f"no header cell {cell!r} in {name} (header: {shown_cells(header)})",
        )
        for column, cell in located.unmatched.items()
    ]
    for column, found in located.repeated.items():
        cells = " and ".join(f"{header[i]!r} (column {i + 1})" for i in found)
        issues.append(
            RowIssue(
                name,
                row,
                column,
                f"header cells {cells} all read as {column}: keep one, or name the one to use "
                'in the sidecar\'s "columns"',
            )
        )
    missing = located.missing(declaration)
    issues += [RowIssue(name, row, column, reason) for column, reason in missing.items()]
    issues += [
        RowIssue(
            declaration.sidecar,
            0,
            column,
            f"the file has a {column} column ({header[located.positions[column]]!r}); "
            "declare the value or keep the column, not both",
        )
        for column in declaration.constants
        if column in located.positions
    ]
    if missing or located.repeated:
        where = f"header found in row {row}" if row else "header found"
        sidecar = sidecar_path(Path(name)).name
        hint = (
            f'; map other header cells in {sidecar} ("columns")'
            if declaration.sidecar
            else f'; a sidecar {sidecar} can map other header cells ("columns"), or declare '
            "respondent microdata and its questions"
        )
        issues.append(
            RowIssue(
                name, row, "*", f"{where}: {_cell_meanings(header, located, declaration)}{hint}"
            )
        )
    return issues


def _as_declaration(data: dict[str, Any] | None) -> PublishedDeclaration:
    """A sidecar for shape detection: its mapping when valid, else none (its own check
    reports what is wrong with it)."""
    try:
        return parse_published_declaration("", data or {})
    except SurveyValidationError:
        return PublishedDeclaration()


def _wide_block(
    header: list[str], declaration: PublishedDeclaration
) -> tuple[str, tuple[int, ...]] | None:
    """A wide table's columns: the longest run of two or more header cells that each name a
    country (the scope) or a year (the wave), when neither the header nor the sidecar gives
    that column or the figure's (``Frage;DE;FR;IT``, ``Land;2018;2019;2020``). A run may
    hold an aggregate's column (``Deutschland;Frankreich;Total;Italien``), which is not read,
    and the country codes that are also answer or statistics heads (``SE;NO;DK``, ``IN``,
    ``ID``) when written in capitals in a run that names countries otherwise
    (:func:`_read_of`): ``Yes;No;DK`` and ``Mean;SD;SE;CV`` are no countries. (column,
    positions of the cells read), or None."""
    located = _locate(header, declaration)
    if "value" in located.positions or "value" in located.repeated:
        return None
    runs: list[tuple[str, tuple[int, ...]]] = []
    for column, kind in (("scope", _scope_head), ("wave", _wave_head)):
        if located.has(column, declaration) or column in located.repeated:
            continue
        run: list[tuple[int, str]] = []
        for position, cell in enumerate([*header, ""]):
            found = kind(cell.strip()) if cell.strip() else None
            if found is not None:
                run.append((position, found))
                continue
            read = _read_of(run)
            if len(read) >= 2:
                runs.append((column, read))
            run = []
    # The longest; of runs as long, the first found.
    return max(runs, key=lambda run: len(run[1]), default=None)


def _read_of(run: list[tuple[int, str]]) -> tuple[int, ...]:
    """The positions a run of header cells reads: none unless it names two countries (or
    years) plainly, or one beside two codes (``Frage;SE;NO;DK;FI``); then each stretch
    between aggregate columns that names one plainly or holds two codes
    (``Frage;DE;FR;Total;SE;NO``). A lone code after an aggregate column is not read: at
    the run's end it is an answer's head (``Deutschland;Frankreich;Total;NA``, no answer),
    between countries read :func:`_refuse_countries_apart` refuses it."""
    named = sum(head == _NAMED for _, head in run)
    codes = sum(head == _CODE for _, head in run)
    if named < 2 and not (named and codes >= 2):
        return ()
    read: list[int] = []
    stretch: list[tuple[int, str]] = []
    for at, head in [*run, (-1, _GAP)]:
        if head != _GAP:
            stretch.append((at, head))
            continue
        kinds = [kind for _, kind in stretch]
        if _NAMED in kinds or kinds.count(_CODE) >= 2:
            read += [position for position, _ in stretch]
        stretch = []
    return tuple(read)


# What a header cell is to a wide table's run: a country or year named plainly, a country
# code that is also an answer or statistics head (read as :func:`_read_of` says), or an
# aggregate's column inside the run (not read).
_NAMED, _CODE, _GAP = "named", "code", "gap"
# Header words of answer and statistics columns that are also country codes or places, or
# read as the global average: ``Yes;No;DK`` (Norway, Denmark), ``Mean;SD;SE;CV`` (global,
# Sudan, Sweden, Cape Verde), ``Female;Male`` (the Maldives' capital). Never a country on
# their own.
_NOT_WIDE_COUNTRIES = frozenset(
    {"yes", "no", "dk", "sd", "se", "ci", "na", "id", "or", "in", "is", "am", "pm", "pt", "ma"}
    | {"cv", "me", "male"}
    | {"mean", "median", "average", "avg", "total", "min", "max", "base", "n", "pct", "std"}
)
# Of those, an aggregate's column a run of countries or years may hold, not read (where
# ``Global`` is read, as the global scope): in English, German, French and Spanish (a
# ``Gesamt`` column was read as the global figure, the mean of the table's two countries).
_AGGREGATE_HEADS = frozenset(
    {"mean", "median", "average", "avg", "total"}
    | {"gesamt", "insgesamt", "durchschnitt", "mittelwert", "schnitt", "\u00f8", "\u2300"}
    | {"moyenne", "m\u00e9diane", "ensemble", "promedio", "media", "mediana"}
)
# No country's name is longer: a longer header cell is looked up no further.
_LONGEST_SCOPE_CELL = 80


def _names_a_scope(cell: str) -> bool:
    return _scope_head(cell) == _NAMED


def _scope_head(cell: str) -> str | None:
    folded = cell.casefold()
    if folded in _AGGREGATE_HEADS:
        return _GAP
    if len(cell) > _LONGEST_SCOPE_CELL or cell.replace(".", "").isdigit():
        # A numeric country code is a cell's, never a header's: 10;20;40 are percentiles or
        # answers, though ISO numbers Antarctica, Andorra and Austria so.
        return None
    # A column's usual name ("Land") is no country here.
    if _HEADER_INDEX.get(header_key(cell)) or not names_a_place(cell):
        return None
    if folded in _NOT_WIDE_COUNTRIES:
        return _CODE if len(cell) == 2 and cell.isupper() else None
    return _NAMED


def _wave_head(cell: str) -> str | None:
    if cell.casefold() in _AGGREGATE_HEADS:
        return _GAP
    return _NAMED if _names_a_year(cell) else None


def _names_a_year(cell: str) -> bool:
    return len(cell) == 4 and cell.isdigit() and 1990 <= int(cell) <= 2100


def _long_header(header: list[str], declaration: PublishedDeclaration) -> list[str]:
    """The header as the long table a wide one is read as (:func:`_long_table`)."""
    block = _wide_block(header, declaration)
    return header if block is None else _long_header_of(header, block)


def _long_header_of(header: list[str], block: tuple[str, tuple[int, ...]]) -> list[str]:
    column, read = block
    return [*(cell for at, cell in enumerate(header) if at not in read), column, "value"]


def _long_table(name: str, table: TextTable, declaration: PublishedDeclaration) -> TextTable:
    """A wide table (countries or years as columns) as the long one it stands for: each of
    its figures a row of the other cells, the column's country or year and the figure; an
    empty figure cell is no figure. Each row keeps the number of the row it came from."""
    block = _wide_block(table.header, declaration)
    if block is None:
        return table
    column, read = block
    heads = [table.header[at] for at in read]
    _refuse_countries_apart(name, table.header, block)
    width = len(table.header)
    rows = []
    for line_no, cells in table.rows:
        padded = cells + [""] * (width - len(cells))
        rest = [cell for at, cell in enumerate(padded[:width]) if at not in read]
        figures = [
            (head, figure)
            for head, figure in zip(heads, (padded[at] for at in read), strict=True)
            if figure.strip()
        ]
        # A row without a figure (a note below the table, a figure cut short) stays one
        # row, for the notes and the report to see as it is.
        for head, figure in figures or [("", "")]:
            rows.append((line_no, [*rest, head, figure]))
    log.info(
        "%s: read as a wide table, %s as columns: %s",
        name,
        "countries" if column == "scope" else "years",
        ", ".join(heads),
    )
    return TextTable(_long_header_of(table.header, block), rows, table.header_row, table.spans)


def _refuse_countries_apart(
    name: str, header: list[str], block: tuple[str, tuple[int, ...]]
) -> None:
    """A wide table reads one run of country columns: a country heading a column apart from
    it (``Frage;DE;FR;Notiz;Italien``), or a code between its countries that it cannot tell from
    an answer's head (``Frage;DE;FR;Total;NA;Mean;ES;AT``), would be left unread, so the
    file is refused naming it."""
    column, read = block
    if column != "scope":
        return
    first, last = min(read), max(read)
    apart = [
        cell
        for at, cell in enumerate(header)
        if at not in read
        and (_names_a_scope(cell) or (first < at < last and _scope_head(cell) == _CODE))
    ]
    if apart:
        raise file_problem(
            name,
            f"read as a wide table, countries as columns ({', '.join(header[at] for at in read)}),"
            f" but {', '.join(repr(cell) for cell in apart)}"
            f" also head{'s a column' if len(apart) == 1 else ' columns'} apart from them,"
            " which would be left unread: put every country column side by side",
        )


def _is_header_row(cells: list[str], declaration: PublishedDeclaration) -> bool:
    # Title rows above a header name at most one contract column; a header names several.
    located = _locate(_long_header(cells, declaration), declaration)
    return len(located.positions) + len(located.repeated) >= 2


def looks_like_header(cells: list[str], declaration: dict[str, Any] | None = None) -> bool:
    """Whether a sheet row is a published header: two or more cells that name contract
    columns, by a usual name or by the sidecar's mapping."""
    return _is_header_row(cells, _as_declaration(declaration))


def header_fits(header: list[str], declaration: dict[str, Any] | None = None) -> bool:
    """Whether a header (with its sidecar's mapping) holds every required published column."""
    return _holds_every_column(header, _as_declaration(declaration))


def _holds_every_column(header: list[str], declaration: PublishedDeclaration) -> bool:
    located = _locate(_long_header(header, declaration), declaration)
    return not located.repeated and not located.missing(declaration)


# --- rows ----------------------------------------------------------------------------------


def parse_published_table(
    name: str, table: TextTable, declaration: PublishedDeclaration | None = None
) -> pd.DataFrame:
    """Validate published aggregates; raise SurveyValidationError listing every issue.

    Issues name the row (CSV record, XLSX sheet row, Parquet record) and the column as the
    file heads it, with the contract column beside a localized name: ``Land (scope)``.
    """
    declaration = declaration or PublishedDeclaration()
    table = dataclasses.replace(table, rows=_without_repeated_headers(name, table, table.rows))
    table = _long_table(name, table, declaration)
    located = _locate(table.header, declaration)
    header_issues = _header_issues(name, table, declaration, located)
    if header_issues:
        raise SurveyValidationError(header_issues)
    positions = located.positions
    derived = {
        column: source
        for column, source in DERIVED_FROM.items()
        if not located.has(column, declaration)
    }

    def label(column: str) -> str:
        column = derived.get(column, column)
        if column not in positions:
            return column
        cell = table.header[positions[column]].strip()
        if not cell:  # the row labels' column (_row_labels)
            return f"column {positions[column] + 1} ({column})"
        return cell if header_key(cell) == header_key(column) else f"{cell} ({column})"

    required = [derived.get(column, column) for column in REQUIRED_COLUMNS]
    issues: list[RowIssue] = []
    records = []
    # Rows whose figure is marked missing (``n.a.``, ``-``: a question not asked in a
    # country, as dashboard exports mark it): nothing to load, so skipped and logged.
    without_figure: list[tuple[int, str]] = []
    rows, notes = _without_notes_below(table)
    if "value" in positions:
        required_labels = [positions[c] for c in required if c in positions and c != "value"]
        optional_labels = [
            positions[c] for c in OPTIONAL_LABEL_COLUMNS if c in positions and c not in required
        ]
        rows = _pivot_layout(name, rows, required_labels, optional_labels, positions["value"])
    # The row each record came from (rows without a figure are skipped).
    record_rows: list[int] = []
    # The rows whose share was written with a percent sign, and those written as a number
    # up to 1 without one (0.71 among 76 %: a cell left without its percent format).
    written_percent: list[int] = []
    bare_fractions: list[int] = []
    # Shares under 1 with decimals (0,76): in a file without percent signs, a proportion
    # typed among percentages when the same question's other shares are near it times 100.
    decimal_fractions: list[int] = []
    if notes:
        log.info(
            "%s: %s below the table read as %s, not data: %s",
            name,
            ", ".join(f"row {line_no}" for line_no, _ in notes),
            "a note" if len(notes) == 1 else "notes",
            "; ".join(repr(_note_text(cells)) for _, cells in notes),
        )
    # The rows of one filled cell at the table's end, kept as they may be figures cut
    # short: their report also says how a note below the table is left out.
    last_figure = max(
        (index for index, (_, cells) in enumerate(rows) if lone_cell(cells) is None), default=-1
    )
    for index, (line_no, cells) in enumerate(rows):

        def problem(column: str, reason: str, line_no: int = line_no) -> None:
            issues.append(RowIssue(name, line_no, label(column), reason))

        lone = lone_cell(cells)
        if lone is not None and index > last_figure:
            issues.append(RowIssue(name, line_no, "*", _cut_short_or_note(lone)))

        def cell(column: str, cells: list[str] = cells) -> str:
            if column in positions:
                index = positions[column]
                return cells[index].strip() if index < len(cells) else ""
            return declaration.constants.get(column, "")

        record: dict[str, Any] = {column: cell(column) for column in PUBLISHED_COLUMNS}
        if record["value"].lower() in MISSING_MARKS:
            without_figure.append((line_no, record["value"]))
            continue
        _qualify_question(record, [cell(column) for column in QUALIFIER_COLUMNS])
        for column, source in derived.items():
            record[column] = slug(record[source]) if record[source] else ""
        for column in dict.fromkeys(required):
            if not record[column]:
                problem(column, "value is empty")
        for column, check in _CONSTANT_CHECKS.items():
            if record[column]:
                try:
                    record[column] = check(record[column])
                except ValueError as exc:
                    problem(column, str(exc))
        measure = record["measure"] or "share_pct"
        record["measure"] = measure
        scale = 100 if measure == "share_pct" and declaration.share_scale == "proportion" else 1
        try:
            value = _scaled(_number(record["value"]), scale)
            if measure == "share_pct" and not 0 <= value <= 100:
                problem("value", f"share {value} is outside 0-100")
            if measure == "share_pct" and "%" in record["value"]:
                written_percent.append(line_no)
            elif measure == "share_pct" and 0 < value <= 1 and scale == 1:
                bare_fractions.append(line_no)
                if not value.is_integer():
                    decimal_fractions.append(line_no)
            record["value"] = value
        except ValueError:
            if record["value"]:
                problem("value", f"{record['value']!r} is not a number")
        try:
            record["sample_size"] = _optional(record["sample_size"], whole=True)
            if record["sample_size"] is not None and not 1 <= record["sample_size"] <= _MAX_INTEGER:
                problem(
                    "sample_size",
                    f"{record['sample_size']} is out of range for a sample size "
                    f"(1 to {_MAX_INTEGER})",
                )
        except ValueError:
            problem("sample_size", f"{record['sample_size']!r} is not a whole number")
        try:
            margin = _optional(record["margin_of_error_pct"], whole=False)
            margin = _scaled(margin, scale) if margin is not None else None
            if margin is not None and not 0 <= margin <= 100:
                problem("margin_of_error_pct", f"margin {margin} is outside 0-100")
            elif (said := _margin_in_points(record, margin, scale)) is not None:
                problem("margin_of_error_pct", said)
            record["margin_of_error_pct"] = margin
        except ValueError:
            problem("margin_of_error_pct", f"{record['margin_of_error_pct']!r} is not a number")
        record["question_text"] = record["question_text"] or record["question_id"]
        record["citation"] = record["citation"] or record["source_name"]
        records.append(record)
        record_rows.append(line_no)
    if written_percent and declaration.share_scale is None:
        issues += [
            RowIssue(
                name,
                line_no,
                label("value"),
                "a share up to 1 without a percent sign, beside shares written in percent "
                f"(row {written_percent[0]}): a proportion (write it in percent, 71 % for "
                '0.71) or a share under 1 % (write "0,5 %"), or declare "share_scale"',
            )
            for line_no in bare_fractions
        ]
    elif decimal_fractions and declaration.share_scale is None:
        # Percent signs nowhere: 0,76 beside 81 and 70 loaded as 0.76 %, Germany's headline
        # at 1 % where the survey gave 76 %.
        sidecar = declaration.sidecar or sidecar_path(Path(name)).name
        issues += _proportions_among_percent(
            name, sidecar, decimal_fractions, record_rows, records, label("value")
        )
    if without_figure:
        one = len(without_figure) == 1
        log.warning(
            "%s: %s %s no figure (%s) and %s skipped",
            name,
            ", ".join(f"row {line_no}" for line_no, _ in without_figure),
            "has" if one else "have",
            ", ".join(sorted({repr(mark) for _, mark in without_figure})),
            "was" if one else "were",
        )
    if not records and not issues:
        reason = "file has no data rows"
        if without_figure:
            reason = f"no row has a figure: {label('value')} marks each missing"
        issues.append(RowIssue(name, table.header_row + 1, "*", reason))
    if not issues and declaration.share_scale is None and not written_percent:
        # Shares written with a percent sign (or in percent-formatted cells) are percent,
        # however small: 0,5 % is no proportion.
        issues += _proportion_issue(name, declaration, record_rows, records, label("value"))
    if not issues:
        issues += [
            RowIssue(name, line_no, label("margin_of_error_pct"), said)
            for line_no, record in zip(record_rows, records, strict=True)
            if (said := _margin_too_small(record)) is not None
        ]
    if not issues:
        frame = pd.DataFrame.from_records(records, columns=list(PUBLISHED_COLUMNS))
        duplicated = frame.duplicated(list(FIGURE_KEY))
        for index in frame.index[duplicated]:
            issues.append(
                RowIssue(
                    name,
                    record_rows[index],
                    label("question_id"),
                    "same source, wave, scope, question and measure as an earlier row",
                )
            )
    if issues:
        raise SurveyValidationError(cap_issues(issues, name))
    return frame


def _proportions_among_percent(
    name: str,
    sidecar: str,
    suspects: list[int],
    record_rows: list[int],
    records: list[dict[str, Any]],
    value_label: str,
) -> list[RowIssue]:
    """The rows of ``suspects`` (shares under 1 with decimals, no percent sign anywhere)
    whose value times 100 lies near the same question's other shares (half to twice their
    median), or the file's when no other share of the question is over 1: 0,76 beside 81
    and 70 is a proportion typed among percentages, where 0,5 beside 12 and 3 is a share of
    half a percent."""
    question = ("source_id", "wave", "question_id", "measure")
    by_row = dict(zip(record_rows, records, strict=True))
    over_one: dict[tuple[Any, ...], list[tuple[int, float]]] = {}
    for row, record in by_row.items():
        if isinstance(record["value"], float) and record["value"] > 1:
            key = tuple(record[column] for column in question)
            over_one.setdefault(key, []).append((row, record["value"]))
    everywhere = [peer for rows in over_one.values() for peer in rows]
    issues = []
    for line_no in suspects:
        record = by_row.get(line_no)
        if record is None:
            continue
        # A question no other share over 1 gives (a country's factsheet, a row a question):
        # the file's shares over 1 stand in.
        key = tuple(record[column] for column in question)
        peers = over_one.get(key) or everywhere
        if not peers:
            continue
        typical = statistics.median(value for _, value in peers)
        share = record["value"]
        if not 0.5 <= share * 100 / typical <= 2:
            continue
        same = " for the same question" if key in over_one else ""
        beside = ", ".join(f"{value:g} (row {row})" for row, value in sorted(peers)[:3])
        issues.append(
            RowIssue(
                name,
                line_no,
                value_label,
                f"a share of {share:g} beside {beside}{same}: a proportion? "
                f"Write it in percent ({share * 100:g}); if it is {share:g} %, write it with "
                f'its percent sign ("{share:g} %") or declare "share_scale": "percent" in '
                f"{sidecar}",
            )
        )
    return issues


def _proportion_issue(
    name: str,
    declaration: PublishedDeclaration,
    record_rows: list[int],
    records: list[dict[str, Any]],
    value_label: str,
) -> list[RowIssue]:
    """A file whose every share lies between 0 and 1, one at least not a whole number,
    writes proportions (0.76 for 76 %): read as percentages, every figure would be a
    hundred times too small. Refused unless its sidecar says how shares are written."""
    shares = [r["value"] for r in records if r["measure"] == "share_pct"]
    if not shares or max(shares) > 1 or all(float(v).is_integer() for v in shares):
        return []
    sidecar = declaration.sidecar or sidecar_path(Path(name)).name
    first = next(i for i, r in enumerate(records) if r["measure"] == "share_pct")
    return [
        RowIssue(
            name,
            record_rows[first],
            value_label,
            f"every share is between 0 and 1, as proportions are written (0.76 for 76 %): "
            f'write percentages, or declare "share_scale": "proportion" (loaded times 100, '
            f'margins too) or "percent" (as written) in {sidecar}',
        )
    ]


# What an XLSX header row is searched for (named in the report when no row has it).
HEADER_WANTED = [
    "source_name or source_id",
    "wave",
    "scope",
    "question_id or question_text",
    "value",
]


def _published_search(sheet: str | None, declared: PublishedDeclaration) -> HeaderSearch:
    return HeaderSearch(
        HEADER_WANTED,
        sheet or declared.sheet,
        lambda cells: _is_header_row(cells, declared),
        fill_merged=True,
        fits=lambda cells: _holds_every_column(cells, declared),
        fits_or_unread=True,
    )


def read_published_table(
    path: Path, sheet: str | None = None, declaration: PublishedDeclaration | None = None
) -> TextTable:
    declared = declaration or PublishedDeclaration()
    return format_of(path).read_table(path, _published_search(sheet, declared))


def _parse_every_sheet(
    path: Path, sheets: list[str], declared: PublishedDeclaration
) -> pd.DataFrame:
    """A workbook holding a table in each of several sheets (one per wave, one per country),
    none named in its sidecar: every sheet's figures, each sheet's problems reported under
    its name; a figure in two sheets is refused, as a figure twice in one sheet is."""
    frames, issues = [], []
    for title in sheets:
        try:
            frames.append(
                parse_published_table(
                    path.name, read_published_table(path, title, declared), declared
                )
            )
        except SurveyValidationError as exc:
            issues += [
                RowIssue(i.file, i.row, i.column, f"sheet {title!r}: {i.reason}")
                for i in exc.issues
            ]
    if not issues:
        keys = list(FIGURE_KEY)
        tagged = pd.concat(
            [frame.assign(_sheet=title) for frame, title in zip(frames, sheets, strict=True)],
            ignore_index=True,
        )
        for _, repeated in tagged[tagged.duplicated(keys, keep=False)].groupby(keys):
            key = ", ".join(f"{column} {repeated.iloc[0][column]!r}" for column in keys)
            issues.append(
                RowIssue(
                    path.name,
                    0,
                    "*",
                    f"sheets {' and '.join(map(repr, repeated['_sheet']))} both hold {key}: "
                    'keep it in one, or name the sheet to read in the sidecar\'s "sheet"',
                )
            )
    if issues:
        raise SurveyValidationError(cap_issues(issues, path.name))
    log.info("%s: read the tables of sheets %s", path.name, ", ".join(map(repr, sheets)))
    return pd.concat(frames, ignore_index=True)


# ``parse_published_file``'s default: read the sidecar beside the file, if there is one.
SIDECAR_BESIDE_FILE: Any = object()


def _refuse_past_size(path: Path, sheet: str | None, declared: PublishedDeclaration) -> None:
    """Raise SurveyValidationError for a file larger than a table of published figures is
    (``SLW_SURVEY_MAX_PUBLISHED_BYTES``), read in memory whole, before its rows are read: a
    respondent export without its sidecar (300 MB took 4.4 GB, and a worker killed for it
    left every later run to die on it again). Its header is read first: one that lacks the
    columns is reported as such (:class:`HeaderSearch` ``fits_or_unread``)."""
    limits = limits_in_force()
    reader = format_of(path)
    size, said = reader.size_read(path, limits.max_published_bytes)
    if size <= limits.max_published_bytes:
        return
    header = reader.read_header(path, _published_search(sheet, declared))
    if not _holds_every_column(header, declared):
        return  # the table is its header alone, whose report says what it lacks
    raise file_problem(path.name, limits.published_too_large(size, sidecar_path(path).name, said))


def parse_published_file(
    path: Path,
    sheet: str | None = None,
    *,
    declaration: dict[str, Any] | None = SIDECAR_BESIDE_FILE,
) -> pd.DataFrame:
    """Validate a published-aggregate CSV, XLSX or Parquet file. ``declaration`` is its
    sidecar's content as already read (``None``: the file has no sidecar); by default the
    sidecar beside the file is read, if any."""
    sidecar_name = sidecar_path(path).name
    if declaration is SIDECAR_BESIDE_FILE:
        sidecar_name, declaration = _read_sidecar(path)
    declared = (
        parse_published_declaration(sidecar_name, declaration)
        if declaration is not None
        else PublishedDeclaration()
    )
    _refuse_past_size(path, sheet, declared)
    if not (sheet or declared.sheet):
        sheets = format_of(path).tables(path, _published_search(None, declared))
        if len(sheets) > 1:
            return _parse_every_sheet(path, sheets, declared)
    return parse_published_table(path.name, read_published_table(path, sheet, declared), declared)


def load_published_frame(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    file_name: str,
    sha: str,
    loaded_at: datetime | None = None,
) -> int:
    """Insert validated rows; the caller holds the transaction that replaced older rows."""
    frame = frame.copy()
    frame["is_published_aggregate"] = True
    frame["file_name"] = file_name
    frame["file_sha256"] = sha
    frame["loaded_at"] = loaded_at or datetime.now(UTC)
    con.register("incoming_survey_rows", frame)
    try:
        con.execute(
            """
            insert into raw.survey_results (
                source_id, source_name, wave, scope, question_id, question_text, measure,
                value, sample_size, margin_of_error_pct, is_published_aggregate, citation,
                file_name, file_sha256, loaded_at
            )
            select source_id, source_name, wave, scope, question_id, question_text, measure,
                value, sample_size, margin_of_error_pct, is_published_aggregate, citation,
                file_name, file_sha256, loaded_at
            from incoming_survey_rows
            """
        )
    finally:
        con.unregister("incoming_survey_rows")
    return len(frame)
