"""Survey marts built by a real ``dbt build`` from files loaded by the survey loader.

The weighted shares, effective sample sizes and intervals of marts.fct_survey_results are
checked against an independent computation (statsmodels) on the same synthetic data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from statistics import NormalDist

import duckdb
import pandas as pd
import pytest
from survey_microdata import KEY, expected_shares, microdata_frame, sidecar, write_microdata

from social_leadership.dbt_runner import DbtResult, run_dbt
from social_leadership.demo.inputs import INPUTS
from social_leadership.settings import load_settings
from social_leadership.surveys import ingest_folder
from social_leadership.warehouse import connect

pytestmark = pytest.mark.dbt


SURVEY_MODELS = "+fct_survey_results"
# Published figures: a share with its sample size and no margin, one with both, an index
# with a sample size, and a share with neither.
PUBLISHED = (
    "source_id,source_name,wave,scope,question_id,question_text,measure,value,sample_size,"
    "margin_of_error_pct,citation\n"
    "acme_pub,Acme,2024,DE,q_n,Q,share_pct,50,1150,,Acme\n"
    "acme_pub,Acme,2024,DE,q_both,Q,share_pct,76,1150,3.5,Acme\n"
    "acme_pub,Acme,2024,DE,q_index,Q,index,44,1150,,Acme\n"
    "acme_pub,Acme,2024,DE,q_none,Q,share_pct,99.5,,,Acme\n"
)


def panel_frame() -> pd.DataFrame:
    """The synthetic panel, some of its respondents weighted 0 (excluded, as exports mark
    them): they must count in no share and in no number of respondents."""
    frame = microdata_frame(seed=42)
    frame.loc[frame.index % 29 == 3, "gewicht"] = 0.0
    return frame


@pytest.fixture(scope="module")
def survey_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DbtResult]]:
    data_dir = tmp_path_factory.mktemp("slw_surveys")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("WAREHOUSE_PATH", "LOGS_DIR", "DBT_TARGET_DIR", "SURVEY_DIR"):
            monkeypatch.delenv(f"SLW_{name}", raising=False)
        monkeypatch.setenv("SLW_DATA_DIR", str(data_dir))
        settings = load_settings()
        settings.ensure_dirs()
        write_microdata(panel_frame(), settings.survey_dir / "panel.csv", sidecar())
        (settings.survey_dir / "published.csv").write_text(PUBLISHED, encoding="utf-8")
        with connect(settings.warehouse_path) as con:
            # With the demo's synthetic microdata, as survey_ingest loads it with SLW_DEMO on.
            outcomes = ingest_folder(
                con,
                settings.survey_dir,
                settings.quarantine_dir,
                extra_bundled=INPUTS.survey_files(),
                pseudonym_key=KEY,
            )
        assert {o.status for o in outcomes} == {"loaded"}
        build = run_dbt(
            ["build", "--select", SURVEY_MODELS],
            settings,
            log_path=settings.logs_dir / "dbt_build.log",
        )
        yield settings.warehouse_path, build


@pytest.fixture(scope="module")
def marts(survey_build: tuple[Path, DbtResult]) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(survey_build[0]), read_only=True)
    yield con
    con.close()


def test_survey_models_and_their_tests_pass(survey_build: tuple[Path, DbtResult]) -> None:
    build = survey_build[1]
    assert build.returncode == 0, build.output_tail
    assert build.errored == 0
    assert build.warned == 0
    assert any("int_survey_shares_weighted" in node for node in build.statuses)


def test_weighted_shares_and_intervals_match_an_independent_computation(
    marts: duckdb.DuckDBPyConnection,
) -> None:
    expected = expected_shares(panel_frame())
    cursor = marts.execute(
        "select scope, question_id, value, sample_size, effective_sample_size, ci_lower, "
        "ci_upper, margin_of_error_pct, interval_method, is_synthetic, measure "
        "from marts.fct_survey_results where survey_source_id = 'acme_panel'"
    )
    columns = [d[0] for d in cursor.description]
    rows = {(r[0], r[1]): dict(zip(columns, r, strict=True)) for r in cursor.fetchall()}
    assert set(rows) == set(expected)
    for key, want in expected.items():
        got = rows[key]
        assert got["sample_size"] == want["sample_size"]
        for measure in ("value", "effective_sample_size", "ci_lower", "ci_upper"):
            assert got[measure] == pytest.approx(want[measure], rel=0, abs=1e-9), (key, measure)
        assert got["margin_of_error_pct"] == pytest.approx(
            (want["ci_upper"] - want["ci_lower"]) / 2, abs=1e-9
        )
        assert (got["interval_method"], got["is_synthetic"], got["measure"]) == (
            "wald_effective_n",
            True,
            "share_pct",
        )


def test_published_and_computed_rows_side_by_side(marts: duckdb.DuckDBPyConnection) -> None:
    rows = dict(
        marts.execute(
            "select is_published_aggregate, count(*) from marts.fct_survey_results group by 1"
        ).fetchall()
    )
    assert rows[True] == 10 + 4  # the bundled published figures and the test's
    # 8 from the test panel, 12 countries x 3 questions from the bundled synthetic demo.
    assert rows[False] == 8 + 36
    demo = marts.execute(
        "select count(distinct scope), bool_and(is_synthetic), min(sample_size) "
        "from marts.fct_survey_results where survey_source_id = 'synthetic_trust_demo'"
    ).fetchone()
    assert demo[0] >= 10
    assert demo[1] is True
    assert demo[2] > 1000
    published = marts.execute(
        "select bool_or(is_synthetic) from marts.fct_survey_results where is_published_aggregate"
    ).fetchone()
    assert published == (False,)


def test_a_published_share_with_its_sample_size_but_no_margin_gets_the_wald_interval_on_it(
    marts: duckdb.DuckDBPyConnection,
) -> None:
    rows = {
        question: (margin, lower, upper, method)
        for question, margin, lower, upper, method in marts.execute(
            "select question_id, margin_of_error_pct, ci_lower, ci_upper, interval_method "
            "from marts.fct_survey_results where survey_source_id = 'acme_pub'"
        ).fetchall()
    }
    # +/-2.9 points for 1,150 respondents at 50%, as the Trust Barometer publishes it.
    margin = 100 * NormalDist().inv_cdf(0.975) * math.sqrt(0.5 * 0.5 / 1150)
    assert round(margin, 1) == 2.9
    assert rows["q_n"][0] == pytest.approx(margin, abs=1e-9)
    assert rows["q_n"][1:] == (
        pytest.approx(50 - margin),
        pytest.approx(50 + margin),
        "wald_published_n",
    )
    assert rows["q_both"] == (3.5, 72.5, 79.5, "published_margin")
    assert rows["q_index"] == (None, None, None, None)
    assert rows["q_none"] == (None, None, None, None)


def test_a_share_has_its_own_pct_columns_and_an_index_none(
    marts: duckdb.DuckDBPyConnection,
) -> None:
    # DESIGN: shares are named *_pct in every mart; value, ci_lower and ci_upper hold
    # shares and indices alike.
    rows = marts.execute(
        "select measure, value, ci_lower, ci_upper, share_pct, share_ci_lower_pct, "
        "share_ci_upper_pct from marts.fct_survey_results"
    ).fetchall()
    shares = [row for row in rows if row[0] == "share_pct"]
    others = [row for row in rows if row[0] != "share_pct"]
    assert shares
    assert others
    assert all(row[4:] == row[1:4] for row in shares)
    assert all(row[4:] == (None, None, None) for row in others)
