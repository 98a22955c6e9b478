"""Synthetic respondent microdata for the survey tests (not real answers)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from social_leadership.surveys.pseudonym import registered

# Country spellings as users send them, and the ISO code each must become.
COUNTRY_SPELLINGS = {"Deutschland": "DE", "UK": "GB", "FRA": "FR", "Schweiz": "CH"}
KEY = b"test-pseudonym-key-0123456789"


def pseudonym(respondent_id: str, source_id: str = "acme_panel", key: bytes = KEY) -> int | None:
    """The pseudonym the loader stores for a respondent id: the SQL function it registers."""
    with duckdb.connect() as con, registered(con, key, source_id) as function:
        row = con.execute(f"select {function}(?)", [respondent_id]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def microdata_frame(seed: int, per_country: int = 300, prefix: str = "r") -> pd.DataFrame:
    """Respondents with weights, two 9-point answers (99 = don't know) and free text."""
    rng = np.random.default_rng(seed)
    parts = []
    for index, spelling in enumerate(COUNTRY_SPELLINGS):
        size = per_country + 7 * index
        q1 = rng.integers(1, 10, size)
        q2 = rng.integers(1, 6, size)
        q1[rng.random(size) < 0.05] = 99
        parts.append(
            pd.DataFrame(
                {
                    "resp": [f"{prefix}{index}-{i}" for i in range(size)],
                    "land": spelling,
                    "gewicht": rng.lognormal(0.0, 0.5, size),
                    "q1": q1.astype(float),
                    "q2": q2.astype(float),
                    "kommentar": [f"geheimer Freitext Nr. {i} \u2013 äöü" for i in range(size)],
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    # Some respondents skipped q2: an empty cell leaves them out of its base.
    frame.loc[frame.index % 17 == 0, "q2"] = np.nan
    return frame


def sidecar(source_id: str = "acme_panel", wave: int | None = 2024) -> dict:
    declaration: dict = {
        "shape": "microdata",
        "source_id": source_id,
        "source_name": "Acme panel (test data)",
        "is_synthetic": True,
        "columns": {"respondent_id": "resp", "country": "land", "weight": "gewicht"},
        "questions": [
            {
                "question_id": "ceo_lead_change",
                "column": "q1",
                "text": "Lead on change",
                "scale": [1, 9],
                "agree": [6, 9],
                "missing": [99],
            },
            {
                "question_id": "trust_business",
                "column": "q2",
                "text": "Trust business",
                "scale": [1, 5],
                "agree": [4, 5],
            },
        ],
    }
    if wave is not None:
        declaration["wave"] = wave
    return declaration


def write_microdata(
    frame: pd.DataFrame, path: Path, declaration: dict, *, german: bool = True
) -> Path:
    """CSV as German Excel writes it (``;``, decimal comma, Windows-1252), XLSX or Parquet."""
    if path.suffix == ".csv":
        if german:
            frame.to_csv(path, sep=";", decimal=",", index=False, encoding="cp1252")
        else:
            frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        from openpyxl import Workbook

        workbook = Workbook()
        sheet = workbook.active
        sheet.append(["Acme panel export"])
        sheet.append([])
        sheet.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            sheet.append([None if isinstance(v, float) and np.isnan(v) else v for v in row])
        workbook.save(path)
    stem = path.name.removesuffix(path.suffix)
    path.with_name(stem + ".survey.json").write_text(json.dumps(declaration))
    return path


def expected_shares(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    """Weighted shares, n_eff and 95% Wald intervals computed independently (statsmodels)."""
    from statsmodels.stats.proportion import proportion_confint
    from statsmodels.stats.weightstats import DescrStatsW

    result = {}
    for spelling, code in COUNTRY_SPELLINGS.items():
        country = frame[frame["land"] == spelling]
        for question_id, column, low, high, missing in (
            ("ceo_lead_change", "q1", 6, 9, {99}),
            ("trust_business", "q2", 4, 5, set()),
        ):
            # A respondent weighted 0 is in no share and no count (as SPSS's WEIGHT BY).
            answered = country[
                country[column].notna() & ~country[column].isin(missing) & (country["gewicht"] > 0)
            ]
            weights = answered["gewicht"].to_numpy()
            agree = answered[column].between(low, high).to_numpy(dtype=float)
            share = DescrStatsW(agree, weights=weights).mean
            n_eff = weights.sum() ** 2 / (weights**2).sum()
            lower, upper = proportion_confint(share * n_eff, n_eff, alpha=0.05, method="normal")
            result[(code, question_id)] = {
                "value": 100 * share,
                "sample_size": len(answered),
                "effective_sample_size": n_eff,
                "ci_lower": 100 * lower,
                "ci_upper": 100 * upper,
            }
    return result
