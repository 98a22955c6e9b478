"""Publishing the marts built by a real dbt build to the serving copy and Parquet."""

from __future__ import annotations

import duckdb
import pytest

from social_leadership.serving import SYNTHETIC_NOTICE, publish
from social_leadership.settings import Settings

EXPECTED_MARTS = {
    "dim_company",
    "dim_country",
    "dim_date",
    "dim_executive",
    "dim_platform",
    "dim_sector",
    "fct_country_comparison_yearly",
    "fct_executive_reach_daily",
    "fct_reach_by_country_sector_daily",
    "fct_survey_results",
}


def served_tables(settings: Settings) -> dict[str, str]:
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        return dict(
            con.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        )


def leftovers(settings: Settings) -> list[str]:
    folders = (settings.serving_path.parent, settings.serving_parquet_dir)
    return sorted(
        path.name for folder in folders for path in folder.iterdir() if ".tmp" in path.name
    )


def test_publish_creates_read_only_copy_with_synthetic_comment(
    copied_built_warehouse: Settings,
) -> None:
    publication = publish(
        copied_built_warehouse, "manual__2025-02-05T03:00:00+00:00", synthetic=True
    )

    assert set(publication.tables) >= EXPECTED_MARTS
    assert publication.serving_path == copied_built_warehouse.serving_path
    comments = served_tables(copied_built_warehouse)
    assert set(comments) >= EXPECTED_MARTS
    assert all(comment.startswith(SYNTHETIC_NOTICE) for comment in comments.values())
    with (
        duckdb.connect(str(copied_built_warehouse.serving_path), read_only=True) as served,
        duckdb.connect(str(copied_built_warehouse.warehouse_path), read_only=True) as working,
    ):
        query = "select * from marts.fct_reach_by_country_sector_daily order by all"
        assert served.execute(query).fetchall() == working.execute(query).fetchall()
    assert leftovers(copied_built_warehouse) == []


def test_publishing_twice_swaps_the_file_and_leaves_no_temporaries(
    copied_built_warehouse: Settings,
) -> None:
    publish(copied_built_warehouse, "run-1", synthetic=True)
    first_inode = copied_built_warehouse.serving_path.stat().st_ino
    # A BI tool holding the old copy open keeps reading it while the new one is swapped in.
    reader = duckdb.connect(str(copied_built_warehouse.serving_path), read_only=True)
    try:
        publish(copied_built_warehouse, "run-2", synthetic=False)
        assert reader.execute("select count(*) from marts.dim_sector").fetchone() == (11,)
    finally:
        reader.close()

    assert copied_built_warehouse.serving_path.stat().st_ino != first_inode
    comments = served_tables(copied_built_warehouse)
    assert all("run-2" in comment for comment in comments.values())
    assert not any(SYNTHETIC_NOTICE in comment for comment in comments.values())
    assert leftovers(copied_built_warehouse) == []
    with duckdb.connect(str(copied_built_warehouse.warehouse_path), read_only=True) as con:
        assert con.execute(
            "select run_id, tables_published from audit.publications order by published_at"
        ).fetchall() == [("run-1", len(comments)), ("run-2", len(comments))]


def test_parquet_export_is_readable(copied_built_warehouse: Settings) -> None:
    publication = publish(copied_built_warehouse, "run-parquet", synthetic=True)

    assert set(publication.parquet_paths) >= EXPECTED_MARTS
    with duckdb.connect(str(copied_built_warehouse.warehouse_path), read_only=True) as con:
        for table, path in publication.parquet_paths.items():
            assert path == copied_built_warehouse.serving_parquet_dir / f"{table}.parquet"
            exported = con.execute("select count(*) from read_parquet(?)", [str(path)]).fetchone()
            assert exported == con.execute(f"select count(*) from marts.{table}").fetchone()


def test_no_marts_fails_and_keeps_previous_copy(copied_built_warehouse: Settings) -> None:
    publish(copied_built_warehouse, "run-ok", synthetic=True)
    before = copied_built_warehouse.serving_path.read_bytes()
    with duckdb.connect(str(copied_built_warehouse.warehouse_path)) as con:
        con.execute("drop schema marts cascade")

    with pytest.raises(RuntimeError, match="no tables in schema marts"):
        publish(copied_built_warehouse, "run-empty", synthetic=True)

    assert copied_built_warehouse.serving_path.read_bytes() == before
    assert leftovers(copied_built_warehouse) == []
