"""The serving data as readers get it: fresh for open connections through the DuckLake
catalog, only what changed republished, and every table self-describing and keyed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from slw_testing import PUBLISH_SCRIPT, package_env, probe_single_file_keys

from social_leadership.serving import (
    CHANGED_DAYS,
    COLUMN_DESCRIPTION_KEY,
    CURRENT_LINK,
    DESCRIPTION_KEY,
    FILE_FORMAT,
    FILE_FORMAT_TABLE,
    GRAIN_KEY,
    SYNTHETIC_NOTICE,
    HistoryLostError,
    Publication,
    publish,
    spare_path,
)
from social_leadership.serving_contracts import read_contracts
from social_leadership.serving_lake import LAKE_EXTENSIONS, attach_lake, open_with_extensions
from social_leadership.settings import Settings

FACT = "fct_executive_reach_daily"


def lake_reader(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB connection on the catalog, as a BI pool would hold it open."""
    con = duckdb.connect()
    attach_lake(con, settings, "serving", read_only=True)
    return con


def latest_publication(con: duckdb.DuckDBPyConnection, alias: str = "serving") -> int:
    return con.execute(f"select max(publication_id) from {alias}.marts.publication").fetchone()[0]


def rows(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple]:
    return con.execute(f"select * from {relation} order by all").fetchall()


def mart_names(con: duckdb.DuckDBPyConnection, alias: str) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            "select table_name from duckdb_tables() where database_name = ? "
            "and schema_name = 'marts' and table_name not like 'publication%' order by 1",
            [alias],
        ).fetchall()
    ]


def assert_served_equals_working(settings: Settings) -> None:
    """Catalog, single file and current Parquet set hold exactly the working marts."""
    con = open_with_extensions(settings, LAKE_EXTENSIONS)
    try:
        con.execute(f"attach '{settings.warehouse_path}' as working (read_only)")
        con.execute(f"attach '{settings.serving_path}' as single_file (read_only)")
        attach_lake(con, settings, "serving", read_only=True)
        tables = mart_names(con, "working")
        assert mart_names(con, "single_file") == tables
        assert mart_names(con, "serving") == tables
        current = settings.serving_parquet_dir / CURRENT_LINK
        for table in tables:
            expected = rows(con, f"working.marts.{table}")
            assert rows(con, f"single_file.marts.{table}") == expected, table
            assert rows(con, f"serving.marts.{table}") == expected, table
            parquet = f"read_parquet('{current / table}/*.parquet')"
            assert rows(con, parquet) == expected, table
    finally:
        con.close()


def simulate_daily_build(settings: Settings, *, changed_days: int = 4) -> object:
    """What a daily dbt build does to the fact: recompute its last days (here: every
    count of them grows by 7) and record the first day recomputed, as the dbt macros do."""
    with duckdb.connect(str(settings.warehouse_path)) as con:
        (last,) = con.execute(f"select max(metric_date) from marts.{FACT}").fetchone()
        since = last - timedelta(days=changed_days - 1)
        con.execute(
            f"update marts.{FACT} set followers = followers + 7 where metric_date >= ?", [since]
        )
        con.execute(
            "insert into audit.incremental_windows (invocation_id, model_name, rebuild_from, "
            "recorded_at) values ('daily-build', ?, ?, now())",
            [FACT, since],
        )
        con.execute("update marts.dim_platform set platform_name = platform_name || ' (renamed)'")
    return since


def test_an_open_connection_sees_each_publication_on_its_next_query(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    reader = lake_reader(settings)
    try:
        assert latest_publication(reader) == 1
        simulate_daily_build(settings)
        publish(settings, "run-2", synthetic=True)
        assert latest_publication(reader) == 2
        assert rows(reader, "serving.marts.dim_platform")[0][1].endswith("(renamed)")
        publish(settings, "run-3", synthetic=True)
        assert latest_publication(reader) == 3
    finally:
        reader.close()


READER_HOLDING_A_TRANSACTION = """
import sys
import duckdb
from social_leadership.serving_lake import attach_lake
from social_leadership.settings import load_settings

con = duckdb.connect()
attach_lake(con, load_settings(), "serving", read_only=True)
latest = "select max(publication_id), max(row_count) filter (table_name = 'dim_platform') "
latest += "from serving.marts.publication"
platforms = "select min(platform_name) from serving.marts.dim_platform"
con.execute("begin transaction")


def report(label):
    print(label, *con.execute(latest).fetchone(), *con.execute(platforms).fetchone(), flush=True)


report("in-transaction")
sys.stdin.readline()  # the test publishes meanwhile
report("in-transaction")
con.execute("commit")
report("next-transaction")
"""


def test_a_reader_inside_a_transaction_sees_one_snapshot_and_never_blocks_the_publish(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    env = package_env()
    reader = subprocess.Popen(
        [sys.executable, "-c", READER_HOLDING_A_TRANSACTION],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().split()[:2] == ["in-transaction", "1"]
        simulate_daily_build(settings)
        # The reader holds its transaction open all through this publish.
        publication = publish(settings, "run-2", synthetic=True)
        assert publication.publication_id == 2
        reader.stdin.write("go\n")
        reader.stdin.flush()
        inside = reader.stdout.readline().split()
        after = reader.stdout.readline().split()
        assert reader.wait(timeout=60) == 0
    finally:
        if reader.poll() is None:
            reader.kill()
    # Inside its transaction: the first publication throughout, not the new platform names.
    assert inside[:2] == ["in-transaction", "1"]
    assert "(renamed)" not in " ".join(inside)
    # Its next transaction: the new publication, whole.
    assert after[:2] == ["next-transaction", "2"]
    assert after[-1] == "(renamed)"


def test_a_daily_publish_republishes_only_the_changed_days_and_matches_the_warehouse(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    first = publish(settings, "run-1", synthetic=True)
    assert first.changes[FACT] == "full"
    since = simulate_daily_build(settings)

    second = publish(settings, "run-2", synthetic=True)

    assert second.changes[FACT] == f"{CHANGED_DAYS} from {since}"
    # The other daily fact was not rebuilt since: nothing of it is rewritten.
    assert second.changes["fct_reach_by_country_sector_daily"] == "unchanged"
    assert not second.serving_file_rebuilt
    assert_served_equals_working(settings)
    # Parquet: the months before the first changed day are the previous files, linked.
    old_files = {p.name: p for p in (first.parquet_paths[FACT]).glob("*.parquet")}
    for path in second.parquet_paths[FACT].glob("*.parquet"):
        month = path.stem.rsplit("-", 2)[-2:]
        same_file = path.stat().st_ino == old_files[path.name].stat().st_ino
        assert same_file is ("-".join(month) < f"{since:%Y-%m}"), path.name
    with duckdb.connect(str(settings.serving_path), read_only=True) as served:
        assert served.execute(
            "select publish_mode, republished_from from marts.publication "
            "where publication_id = 2 and table_name = ?",
            [FACT],
        ).fetchone() == (CHANGED_DAYS, since)


def _publish_in_time_zone(settings: Settings, run_id: str, time_zone: str) -> None:
    """A publish by a process whose host time zone is ``time_zone`` (DuckDB takes its
    session zone from the host when the process starts)."""
    result = subprocess.run(
        [sys.executable, "-c", PUBLISH_SCRIPT, run_id],
        env=package_env(TZ=time_zone),
        cwd=settings.data_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _time_zones(folder: Path) -> dict[str, set[str]]:
    """Each Parquet file's time zones of its timestamp columns, by file name."""
    return {
        path.name: {
            field.type.tz
            for field in pq.read_schema(path)
            if pa.types.is_timestamp(field.type) and field.type.tz is not None
        }
        for path in sorted(folder.glob("*.parquet"))
    }


def test_parquet_timestamps_are_utc_whatever_the_publishing_host_s_time_zone(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    _publish_in_time_zone(settings, "run-utc", "Etc/UTC")
    simulate_daily_build(settings)
    _publish_in_time_zone(settings, "run-new-york", "America/New_York")

    current = settings.serving_parquet_dir / CURRENT_LINK
    zones = _time_zones(current / FACT)
    assert zones
    # The fact's timestamps (observed_at) are stored as UTC in every month, the months
    # linked from the first set and those the second rewrote alike.
    assert {zone for file_zones in zones.values() for zone in file_zones} == {"UTC"}
    assert all(zones.values())
    for folder in current.iterdir():
        if folder.is_dir():
            assert all(z <= {"UTC"} for z in _time_zones(folder).values()), folder.name
    assert pq.read_table(current / FACT).num_rows > 0


def test_a_month_whose_schema_differs_from_a_rewrite_is_rewritten_not_linked(
    copied_built_warehouse: Settings,
) -> None:
    """A previous set written by an earlier version (its timestamps in the host's zone, no
    schema hashes in its manifest) must not be linked beside newly written months: one
    folder would hold two schemas."""
    settings = copied_built_warehouse
    first = publish(settings, "run-1", synthetic=True)
    months = sorted(first.parquet_paths[FACT].glob("*.parquet"))
    assert len(months) > 1
    manifest_path = first.parquet_paths[FACT].parent / "publication.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    del manifest["schemas"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    oldest = months[0]
    table = pq.read_table(oldest)
    local = pa.schema(
        [
            field.with_type(pa.timestamp(field.type.unit, tz="America/New_York"))
            if pa.types.is_timestamp(field.type) and field.type.tz
            else field
            for field in table.schema
        ],
        metadata=table.schema.metadata,
    )
    assert local != table.schema
    pq.write_table(table.cast(local), oldest)
    since = simulate_daily_build(settings)
    assert oldest.name < f"{FACT}-{since:%Y-%m}.parquet"  # a month the publish would link

    second = publish(settings, "run-2", synthetic=True)

    assert second.changes[FACT] == f"{CHANGED_DAYS} from {since}"
    rewritten = second.parquet_paths[FACT] / oldest.name
    assert rewritten.stat().st_ino != oldest.stat().st_ino
    assert set().union(*_time_zones(second.parquet_paths[FACT]).values()) == {"UTC"}
    assert_served_equals_working(settings)


def test_a_daily_fact_without_rows_is_one_file_of_none_that_readers_take_the_schema_from(
    copied_built_warehouse: Settings,
) -> None:
    """A folder without files has no schema: DuckDB's ``<table>/*.parquet`` found no file
    and pandas read no column (a deployment whose platforms all come in by import has no
    coverage rows)."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    kept = settings.data_dir / "kept.parquet"
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(f"copy marts.{FACT} to '{kept}' (format parquet)")
        con.execute(f"delete from marts.{FACT}")
        columns = [row[0] for row in con.execute(f"describe marts.{FACT}").fetchall()]

    # Every row gone after a publication with rows is lost history, published on purpose.
    empty = publish(settings, "run-2", synthetic=True, accept_shorter_history=True)

    folder = empty.parquet_paths[FACT]
    assert [path.name for path in folder.iterdir()] == [f"{FACT}.parquet"]
    with duckdb.connect() as con:
        read = con.execute(f"select * from '{folder}/*.parquet'")
        assert [column[0] for column in read.description] == columns
        assert read.fetchall() == []
    schema = pq.read_schema(folder / f"{FACT}.parquet")
    assert all(field.metadata[COLUMN_DESCRIPTION_KEY] for field in schema)
    manifest = json.loads((folder.parent / "publication.json").read_text(encoding="utf-8"))
    assert manifest["tables"][FACT] == [f"{FACT}.parquet"]

    # Rows again: month files, and no file of none left among them.
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(f"insert into marts.{FACT} select * from '{kept}'")
    again = publish(settings, "run-3", synthetic=True)
    names = sorted(path.name for path in again.parquet_paths[FACT].iterdir())
    assert names
    assert all(name.startswith(f"{FACT}-") for name in names)
    assert_served_equals_working(settings)


def test_a_changed_table_description_rewrites_the_files_that_carry_it(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    first = publish(settings, "run-1", synthetic=True)
    manifest_path = settings.dbt_target_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    [node] = [n for n in manifest["nodes"].values() if n.get("name") == FACT]
    node["description"] = "NEW DESCRIPTION " + node["description"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")

    second = publish(settings, "run-2", synthetic=True)

    for path in sorted(second.parquet_paths[FACT].glob("*.parquet")):
        description = pq.read_schema(path).metadata[DESCRIPTION_KEY.encode()].decode()
        assert description.startswith("NEW DESCRIPTION "), path.name
        assert path.stat().st_ino != (first.parquet_paths[FACT] / path.name).stat().st_ino


def test_rows_changed_outside_any_recorded_window_are_still_published(
    copied_built_warehouse: Settings,
) -> None:
    """A build that did not record its window (dbt run by hand with other macros, a bug)
    must not leave the serving data behind: the count check rewrites the table."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        (first_day,) = con.execute(f"select min(metric_date) from marts.{FACT}").fetchone()
        con.execute(f"delete from marts.{FACT} where metric_date = ?", [first_day])

    publish(settings, "run-2", synthetic=True)

    assert_served_equals_working(settings)


def test_every_served_column_and_table_describes_itself(copied_built_warehouse: Settings) -> None:
    settings = copied_built_warehouse
    publication = publish(settings, "run-docs", synthetic=True)
    contracts = read_contracts(settings.dbt_target_dir / "manifest.json")
    for database in ("single_file", "serving"):
        con = duckdb.connect()
        try:
            if database == "serving":
                attach_lake(con, settings, "serving", read_only=True)
            else:
                con.execute(f"attach '{settings.serving_path}' as single_file (read_only)")
            undescribed = con.execute(
                "select table_name, column_name from duckdb_columns() "
                "where database_name = ? and schema_name = 'marts' and comment is null",
                [database],
            ).fetchall()
            assert undescribed == [], database
            comments = dict(
                con.execute(
                    "select table_name, comment from duckdb_tables() "
                    "where database_name = ? and schema_name = 'marts'",
                    [database],
                ).fetchall()
            )
        finally:
            con.close()
        for table, contract in contracts.items():
            assert contract.description in comments[table], (database, table)
            assert "run-docs" in comments[table]
            if contract.grain:
                assert f"Grain: {contract.grain.rstrip('.')}" in comments[table]
            for key in contract.foreign_keys:
                assert key.describe() in comments[table], (table, key)
    for table, folder in publication.parquet_paths.items():
        for path in folder.glob("*.parquet"):
            schema = pq.read_schema(path)
            contract = contracts[table]
            assert schema.metadata[GRAIN_KEY.encode()].decode() == contract.grain
            for name in schema.names:
                description = schema.field(name).metadata[COLUMN_DESCRIPTION_KEY].decode()
                assert description == contract.column_descriptions[name], (table, name)


def test_the_single_file_declares_the_keys_and_not_null_columns_of_each_grain(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    publish(settings, "run-keys", synthetic=True)
    contracts = read_contracts(settings.dbt_target_dir / "manifest.json")
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        constraints = con.execute(
            "select table_name, constraint_type, constraint_column_names, "
            "referenced_table, referenced_column_names from duckdb_constraints() "
            "where schema_name = 'marts'"
        ).fetchall()
    declared = {(t, kind, tuple(cols)) for t, kind, cols, _, _ in constraints}
    # Beyond the keys: the columns of each mart's not_null_columns test (dbt YAML).
    assert contracts["dim_country"].not_null == {"country_code", "country_name", "region"}
    assert ("dim_country", "NOT NULL", ("region",)) in declared
    for table, contract in contracts.items():
        if contract.primary_key:
            assert (table, "PRIMARY KEY", contract.primary_key) in declared, table
        for column in contract.required_columns():
            assert (table, "NOT NULL", (column,)) in declared, (table, column)
        for key in contract.foreign_keys:
            # Undeclared keys (on the big fact) are documented instead: see the comment test.
            assert ((table, "FOREIGN KEY", key.columns) in declared) is key.declared, (table, key)
    with pytest.raises(duckdb.Error):
        # A read-only client cannot change the served copy.
        duckdb.connect(str(settings.serving_path), read_only=True).execute(
            "delete from marts.dim_sector"
        )


def test_synthetic_tables_say_so_in_the_catalog_too(copied_built_warehouse: Settings) -> None:
    settings = copied_built_warehouse
    publish(settings, "run-synthetic", synthetic=True)
    reader = lake_reader(settings)
    try:
        comment = reader.execute(
            "select comment from duckdb_tables() where database_name = 'serving' "
            "and table_name = 'dim_executive'"
        ).fetchone()[0]
    finally:
        reader.close()
    assert comment.startswith(SYNTHETIC_NOTICE)


def test_catalog_is_in_wal_mode(copied_built_warehouse: Settings) -> None:
    import sqlite3

    publish(copied_built_warehouse, "run-wal", synthetic=True)
    with sqlite3.connect(Path(copied_built_warehouse.serving_lake_path)) as con:
        assert con.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_an_earlier_publication_stays_readable_by_time_travel(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    simulate_daily_build(settings)
    publish(settings, "run-2", synthetic=True)
    reader = lake_reader(settings)
    try:
        snapshots = [
            row[0]
            for row in reader.execute(
                "select snapshot_id from ducklake_snapshots('serving') order by snapshot_id"
            ).fetchall()
        ]
        names_then = {}
        for snapshot in snapshots:
            try:
                names_then[snapshot] = reader.execute(
                    "select min(platform_name) from serving.marts.dim_platform "
                    f"at (version => {snapshot})"
                ).fetchone()[0]
            except duckdb.CatalogException:
                continue  # a snapshot from before the first publication's tables
    finally:
        reader.close()
    # The snapshot of publication 1 still shows the names before the rename.
    assert any(not name.endswith("(renamed)") for name in names_then.values())
    assert list(names_then.values())[-1].endswith("(renamed)")


def test_a_catalog_changed_by_a_read_write_reader_is_rewritten_by_the_next_publish(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A BI session that attached the catalog without (read_only) multiplied a day's
    followers by 100: the row counts stayed, the day lay outside every later rebuild
    window, and the catalog served the edit for good while the file and Parquet did not."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    writer = duckdb.connect()
    attach_lake(writer, settings, "serving", read_only=False)
    (first_day,) = writer.execute(f"select min(metric_date) from serving.marts.{FACT}").fetchone()
    writer.execute(
        f"update serving.marts.{FACT} set followers = followers * 100 where metric_date = ?",
        [first_day],
    )
    # And its structure: a column added, a mart dropped, a view of its own.
    writer.execute("alter table serving.marts.dim_platform add column junk integer")
    writer.execute("drop table serving.marts.dim_company")
    writer.execute("create view serving.marts.junk as select 1 as a")
    writer.close()
    simulate_daily_build(settings)

    with caplog.at_level(logging.WARNING, logger="social_leadership.serving"):
        publish(settings, "run-2", synthetic=True)

    assert_served_equals_working(settings)
    reader = lake_reader(settings)
    try:
        assert not reader.execute(
            "select * from information_schema.tables where table_catalog = 'serving' "
            "and table_name = 'junk'"
        ).fetchall()
        assert "junk" not in [
            row[0] for row in reader.execute("describe serving.marts.dim_platform").fetchall()
        ]
    finally:
        reader.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "the serving catalog was changed since the last publication by a session that "
        "attached it without (read_only): snapshot "
        in message
        and "every table of it is rewritten from the warehouse" in message
        for message in warnings
    ), warnings
    # Once healed, the next publish rewrites only what the build changed.
    caplog.clear()
    simulate_daily_build(settings)
    with caplog.at_level(logging.WARNING, logger="social_leadership.serving"):
        third = publish(settings, "run-3", synthetic=True)
    assert not [r for r in caplog.records if "changed since the last" in r.getMessage()]
    assert third.changes[FACT].startswith("changed days")


def test_each_publication_s_snapshot_is_found_by_its_commit_message(
    copied_built_warehouse: Settings,
) -> None:
    """Snapshot ids drift from publication ids (the catalog's maintenance commits too):
    a reader asks for ``publication <id>`` as docs/bi.md writes it."""
    settings = copied_built_warehouse
    first = publish(settings, "run-1", synthetic=True)
    simulate_daily_build(settings)
    second = publish(settings, "run-2", synthetic=True)
    reader = lake_reader(settings)
    try:
        found = {}
        for publication in (first, second):
            (snapshot,) = reader.execute(
                "select snapshot_id from ducklake_snapshots('serving') "
                "where author = 'social-leadership-warehouse' and commit_message = ?",
                [f"publication {publication.publication_id}"],
            ).fetchone()
            found[publication.publication_id] = reader.execute(
                f"select max(publication_id), sum(followers) "
                f"from serving.marts.publication at (version => {snapshot}), "
                f"serving.marts.{FACT} at (version => {snapshot})"
            ).fetchone()
    finally:
        reader.close()
    assert [found[p.publication_id][0] for p in (first, second)] == [
        first.publication_id,
        second.publication_id,
    ]
    # The daily build grew the last days' counts: the first snapshot has the counts before.
    assert found[first.publication_id][1] < found[second.publication_id][1]


def test_a_failed_catalog_maintenance_does_not_fail_a_finished_publication(
    copied_built_warehouse: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from social_leadership import serving

    def broken(*_: object) -> None:
        raise duckdb.IOException("disk full while merging files")

    monkeypatch.setattr(serving, "_compact_lake", broken)
    publication = publish(copied_built_warehouse, "run-maintenance", synthetic=True)
    reader = lake_reader(copied_built_warehouse)
    try:
        assert latest_publication(reader) == publication.publication_id
    finally:
        reader.close()


def test_a_daily_publish_merges_the_changed_days_row_by_row_into_the_single_file(
    copied_built_warehouse: Settings,
) -> None:
    """Rows of the rebuilt days that dbt dropped leave the single file, changed ones are
    updated, new ones added; the rows dbt gave back unchanged are not written again (their
    row ids stay), and older days are untouched."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    since = simulate_daily_build(settings)
    key = "executive_id, platform, metric_date"
    with duckdb.connect(str(settings.warehouse_path)) as con:
        # One platform's rebuilt days come back as they were.
        (platform,) = con.execute(f"select min(platform) from marts.{FACT}").fetchone()
        con.execute(
            f"update marts.{FACT} set followers = followers - 7 "
            "where metric_date >= ? and platform = ?",
            [since, platform],
        )
        unchanged = con.execute(
            f"select {key} from marts.{FACT} where metric_date >= ? and platform = ? order by all",
            [since, platform],
        ).fetchall()
        gone = con.execute(
            f"select {key} from marts.{FACT} where metric_date = ? and platform != ? "
            "order by all limit 2",
            [since, platform],
        ).fetchall()
        for row in gone:
            con.execute(
                f"delete from marts.{FACT} where executive_id = ? and platform = ? "
                "and metric_date = ?",
                list(row),
            )
        con.execute(
            f"insert into marts.{FACT} select * replace (metric_date + 1 as metric_date) "
            f"from marts.{FACT} where metric_date = (select max(metric_date) from marts.{FACT})"
        )
    assert unchanged
    assert gone

    def served_rows(where: str) -> list[tuple]:
        with duckdb.connect(str(settings.serving_path), read_only=True) as served:
            return served.execute(
                f"select rowid, {key} from marts.{FACT} where {where} order by all", [since]
            ).fetchall()

    before_window = served_rows("metric_date < ?")
    kept = [row for row in served_rows("metric_date >= ?") if tuple(row[1:]) in set(unchanged)]

    publication = publish(settings, "run-2", synthetic=True)

    assert publication.changes[FACT] == f"{CHANGED_DAYS} from {since}"
    assert not publication.serving_file_rebuilt
    assert_served_equals_working(settings)
    assert served_rows("metric_date < ?") == before_window
    after = served_rows("metric_date >= ?")
    assert [row for row in after if tuple(row[1:]) in set(unchanged)] == kept
    assert not {tuple(row[1:]) for row in after} & set(gone)


def test_a_daily_publish_says_how_long_its_copy_of_the_last_single_file_took(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = copied_built_warehouse
    first = publish(settings, "run-1", synthetic=True)
    simulate_daily_build(settings)
    size_mib = settings.serving_path.stat().st_size / 2**20

    with caplog.at_level("INFO", logger="social_leadership.serving"):
        second = publish(settings, "run-2", synthetic=True)

    # The first publication had no file to copy; the next copied the first's.
    assert first.serving_file_copy_seconds is None
    assert second.serving_file_copy_seconds is not None
    assert second.serving_file_copy_seconds > 0
    assert not second.serving_file_rebuilt
    copied = [r.getMessage() for r in caplog.records if "copied the serving file" in r.getMessage()]
    assert copied == [
        f"copied the serving file ({size_mib:.0f} MiB) in {second.serving_file_copy_seconds:.2f} s"
    ]


def test_a_serving_file_that_cannot_be_copied_is_built_whole(
    copied_built_warehouse: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from social_leadership import serving

    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    simulate_daily_build(settings)

    def no_space(source: Path, target: Path) -> None:
        target.write_bytes(source.read_bytes()[:4096])  # part of it, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serving.shutil, "copyfile", no_space)
    publication = publish(settings, "run-2", synthetic=True)

    assert publication.serving_file_rebuilt
    assert publication.serving_file_copy_seconds is None
    assert "copying the serving file failed" in caplog.text
    assert "No space left on device" in caplog.text
    assert_served_equals_working(settings)
    # No temporary file left: the lock, the spare (the first publication's file) and the file.
    assert sorted(p.name for p in settings.serving_path.parent.iterdir() if p.is_file()) == [
        ".serving.duckdb.publish-lock",
        ".serving.duckdb.spare",
        ".serving.duckdb.stamp",
        "serving.duckdb",
    ]


def writable(path: Path) -> Path:
    """``path`` with its owner's write permission back, which a publish takes off: what a
    session of root needs not, and one of the pipeline's user could do."""
    path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    return path


def stamp_path(settings: Settings) -> Path:
    """Where a publish records the single file and the spare as it left them."""
    return settings.serving_path.with_name(f".{settings.serving_path.name}.stamp")


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def held_file(pid: int, identity: os.stat_result) -> Path:
    """The /proc path of the descriptor through which process ``pid`` holds the file
    ``identity`` describes (whatever its name now): its bytes, read without a new name."""
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            held = descriptor.stat()
        except OSError:
            continue
        if (held.st_dev, held.st_ino) == (identity.st_dev, identity.st_ino):
            return descriptor
    raise AssertionError(f"process {pid} does not hold the file")


def served_records(settings: Settings) -> tuple[dict[str, list[tuple]], dict[str, list[tuple]]]:
    """The publication tables as the single file and the catalog hold them."""
    tables = ("publication", "publication_data_as_of")
    with duckdb.connect(str(settings.serving_path), read_only=True) as served:
        in_file = {table: rows(served, f"marts.{table}") for table in tables}
    reader = lake_reader(settings)
    try:
        return in_file, {table: rows(reader, f"serving.marts.{table}") for table in tables}
    finally:
        reader.close()


def publish_logged(
    settings: Settings, run_id: str, caplog: pytest.LogCaptureFixture
) -> tuple[Publication, str]:
    """Publish, and what the publish logged."""
    caplog.clear()
    with caplog.at_level("INFO", logger="social_leadership.serving"):
        publication = publish(settings, run_id, synthetic=True)
    return publication, caplog.text


# The fixture's last day is 2025-02-04: a first build of 9 days rebuilds from January,
# earlier than the month the catalog's plan stages rows from (February); one of 3 days from
# February 2, inside it.
@pytest.mark.parametrize("earlier_days", [9, 3])
def test_a_daily_publish_updates_the_file_before_last_in_place_instead_of_copying(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture, earlier_days: int
) -> None:
    """From the third publication on, the file the previous publish replaced (the spare)
    is brought up to date with the days rebuilt since its own publication, here more than
    since the last one, and swapped in: nothing is copied."""
    settings = copied_built_warehouse
    spare = spare_path(settings.serving_path)
    publish(settings, "run-1", synthetic=True)
    assert not spare.exists()
    first_file = settings.serving_path.stat().st_ino
    simulate_daily_build(settings, changed_days=earlier_days)
    second = publish(settings, "run-2", synthetic=True)
    assert not second.serving_file_from_spare
    assert spare.stat().st_ino == first_file
    second_file = settings.serving_path.stat().st_ino
    simulate_daily_build(settings, changed_days=2)

    third, logged = publish_logged(settings, "run-3", caplog)

    assert third.serving_file_from_spare
    assert not third.serving_file_rebuilt
    assert third.serving_file_copy_seconds is None
    assert "copied the serving file" not in logged
    assert "updating the spare serving file (publication 1) in place" in logged
    assert settings.serving_path.stat().st_ino == first_file
    assert spare.stat().st_ino == second_file
    # Published write-protected (a client opening it read-write is refused), the spare
    # made writable again for its update, and protected again once current.
    assert not stat.S_IMODE(settings.serving_path.stat().st_mode) & 0o222
    assert not stat.S_IMODE(spare.stat().st_mode) & 0o222
    assert_served_equals_working(settings)
    # The file's records of the publications match the catalog's, the skipped one's too.
    in_file, in_catalog = served_records(settings)
    assert in_file == in_catalog
    assert {row[0] for row in in_file["publication"]} == {1, 2, 3}
    with duckdb.connect(str(settings.serving_path), read_only=True) as served:
        assert served.execute(
            "select publication_id, windows_recorded_until is not null from audit.publish_cursor"
        ).fetchall() == [(3, True)]


def test_a_client_opening_the_single_file_read_write_is_refused(
    copied_built_warehouse: Settings, tmp_path: Path
) -> None:
    """Its session locked every other reader out, and what it wrote after the next publish
    went into the new file's log, which that file's readers replayed."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    assert not stat.S_IMODE(settings.serving_path.stat().st_mode) & 0o222
    if os.geteuid() != 0:
        with pytest.raises(duckdb.IOException, match="Permission denied"):
            duckdb.connect(str(settings.serving_path))
        return
    # As root, which permissions do not stop: a child process as another user, on a copy
    # of the file that user owns, with the same permissions, in a folder it may read (a BI
    # tool running as the pipeline's user).
    import pwd

    shared = Path(tempfile.mkdtemp(prefix="slw-readers-"))
    try:
        shared.chmod(0o755)
        copy = shared / "serving.duckdb"
        shutil.copyfile(settings.serving_path, copy)
        copy.chmod(stat.S_IMODE(settings.serving_path.stat().st_mode))
        nobody = pwd.getpwnam("nobody")
        os.chown(copy, nobody.pw_uid, nobody.pw_gid)
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's outcome is its exit code
            refused = 1
            try:
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                duckdb.connect(str(copy)).close()
            except duckdb.IOException as error:
                refused = 0 if "Permission denied" in str(error) else 2
            finally:
                os._exit(refused)
        _, status = os.waitpid(child, 0)
    finally:
        shutil.rmtree(shared)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_spare_this_process_still_reads_is_left_to_it_and_the_current_file_is_copied(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that opened the single file before the last publish still reads the
    spare; DuckDB's file lock never stops the process that holds it."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    here = duckdb.connect(str(settings.serving_path), read_only=True)
    try:
        before = rows(here, f"marts.{FACT}")
        identity = settings.serving_path.stat()
        digest = file_digest(settings.serving_path)
        simulate_daily_build(settings)
        publish(settings, "run-2", synthetic=True)
        simulate_daily_build(settings)

        third, logged = publish_logged(settings, "run-3", caplog)

        assert not third.serving_file_from_spare
        assert third.serving_file_copy_seconds is not None
        assert not third.serving_file_rebuilt
        assert "a reader still has it open" in logged
        # Not a byte of the file it reads changed (its rows could come from its cache).
        assert file_digest(held_file(os.getpid(), identity)) == digest
        assert rows(here, f"marts.{FACT}") == before
    finally:
        here.close()
    # Once it is closed, the next spare (the second publication's file) is updated.
    simulate_daily_build(settings)
    fourth = publish(settings, "run-4", synthetic=True)
    assert fourth.serving_file_from_spare
    assert_served_equals_working(settings)


# A reader that opened the file in two DuckDB instances and closed one: the kernel dropped
# the process's POSIX lock on the file with that close, the other instance still reads it.
HOLD_OPEN_UNLOCKED = """
import sys, duckdb
reader = duckdb.connect(sys.argv[1], read_only=True)
second = duckdb.connect()
second.execute(f"attach '{sys.argv[1]}' as again (read_only)")
second.close()
query = "select sum(followers) from marts.fct_executive_reach_daily"
print(reader.execute(query).fetchone()[0], flush=True)
sys.stdin.readline()
print(reader.execute(query).fetchone()[0], flush=True)
"""


def test_a_spare_another_process_reads_is_not_written_even_without_duckdb_s_lock(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN_UNLOCKED, str(settings.serving_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        before = reader.stdout.readline()
        identity = settings.serving_path.stat()
        digest = file_digest(settings.serving_path)
        # The reader holds the first publication's file without a lock: DuckDB alone
        # would open it for writing.
        with duckdb.connect() as con:
            con.execute(f"attach '{writable(settings.serving_path)}' as unlocked")
        simulate_daily_build(settings)
        publish(settings, "run-2", synthetic=True)
        simulate_daily_build(settings)
        third, logged = publish_logged(settings, "run-3", caplog)
        unchanged = file_digest(held_file(reader.pid, identity)) == digest
        out, _ = reader.communicate("\n", timeout=60)
    finally:
        reader.kill()
    assert not third.serving_file_from_spare
    assert "a reader still has it open" in logged
    assert unchanged
    assert out.strip() == before.strip()
    assert_served_equals_working(settings)


def test_a_spare_that_is_another_name_of_a_file_is_never_written(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A publish killed between keeping the spare and swapping the new file in leaves the
    spare as a second name of the current file; a symbolic link may point anywhere: the
    next publish copies instead, and the current file stays as it was."""
    settings = copied_built_warehouse
    spare = spare_path(settings.serving_path)
    publish(settings, "run-1", synthetic=True)
    for run_no, (make_spare, reason) in enumerate(
        [
            (os.link, "it has another name (a hard link)"),
            (os.symlink, "it is a symbolic link"),
        ],
        start=2,
    ):
        spare.unlink(missing_ok=True)
        make_spare(settings.serving_path, spare)
        current = settings.serving_path.stat().st_ino
        with duckdb.connect(str(settings.serving_path), read_only=True) as served:
            before = rows(served, f"marts.{FACT}")
        simulate_daily_build(settings)

        publication, logged = publish_logged(settings, f"run-{run_no}", caplog)

        assert not publication.serving_file_from_spare
        assert reason in logged
        assert not settings.serving_path.is_symlink()
        assert settings.serving_path.stat().st_ino != current
        # The replaced file (now the spare) still holds the earlier publication untouched.
        assert not spare.is_symlink()
        assert spare.stat().st_ino == current
        with duckdb.connect(str(spare), read_only=True) as kept:
            assert rows(kept, f"marts.{FACT}") == before
        assert_served_equals_working(settings)


def test_a_publish_that_changed_a_definition_builds_whole_and_keeps_no_spare(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The file it replaces has the old definition: no later publish could update it."""
    settings = copied_built_warehouse
    spare = spare_path(settings.serving_path)
    publish(settings, "run-1", synthetic=True)
    simulate_daily_build(settings)
    publish(settings, "run-2", synthetic=True)
    assert spare.is_file()
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("alter table marts.dim_platform add column note varchar default 'new'")

    third, logged = publish_logged(settings, "run-3", caplog)

    # Built whole: nothing earlier to copy or update, and no spare kept.
    assert third.serving_file_rebuilt
    assert third.serving_file_copy_seconds is None
    assert "copied the serving file" not in logged
    assert not spare.exists()
    assert_served_equals_working(settings)
    simulate_daily_build(settings)
    fourth = publish(settings, "run-4", synthetic=True)
    assert not fourth.serving_file_from_spare
    assert not fourth.serving_file_rebuilt
    assert spare.is_file()
    assert_served_equals_working(settings)


def test_a_spare_from_a_catalog_made_anew_is_not_taken_for_its_publication(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A spare holding the old catalog's publication 1 (here a file restored by hand) is
    not the new catalog's publication of that number."""
    settings = copied_built_warehouse
    spare = spare_path(settings.serving_path)
    publish(settings, "run-1", synthetic=True)
    old_file = tmp_path / "old-serving.duckdb"
    shutil.copyfile(settings.serving_path, old_file)
    settings.serving_lake_path.unlink()
    shutil.rmtree(settings.serving_lake_data_dir)
    # The new catalog's numbers would start at 1 again without a single file to go on from.
    settings.serving_path.unlink()
    simulate_daily_build(settings, changed_days=9)
    again = publish(settings, "run-2", synthetic=True)
    assert again.publication_id == 1
    simulate_daily_build(settings, changed_days=2)
    publish(settings, "run-3", synthetic=True)
    os.replace(old_file, spare)
    # The file put in the spare's place is refused for that alone while the last publish's
    # stamp says what it left; without the stamp (lost, or a spare kept before stamps),
    # for the publication it holds.
    stamp_path(settings).unlink()
    simulate_daily_build(settings, changed_days=2)

    fourth, logged = publish_logged(settings, "run-4", caplog)

    assert not fourth.serving_file_from_spare
    assert "it holds publication 1, which cannot be brought up" in logged
    assert_served_equals_working(settings)
    in_file, in_catalog = served_records(settings)
    assert in_file == in_catalog


def test_a_spare_gets_what_the_publications_it_missed_did_beyond_the_recorded_windows(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A daily fact that recorded no rebuilt days at the second publication was replaced
    whole there; the spare (the first publication's file) gets it whole too, although
    the windows since the spare's publication name only its last day."""
    settings = copied_built_warehouse
    other = "fct_reach_by_country_sector_daily"
    publish(settings, "run-1", synthetic=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("delete from audit.incremental_windows where model_name = ?", [other])
        con.execute(f"update marts.{other} set executives_tracked = executives_tracked + 1")
    second = publish(settings, "run-2", synthetic=True)
    assert second.changes[other] == "full"
    with duckdb.connect(str(settings.warehouse_path)) as con:
        (last,) = con.execute(f"select max(metric_date) from marts.{other}").fetchone()
        con.execute(
            f"update marts.{other} set executives_active = executives_active + 1 "
            "where metric_date = ?",
            [last],
        )
        con.execute(
            "insert into audit.incremental_windows (invocation_id, model_name, rebuild_from, "
            "recorded_at) values ('daily-build-3', ?, ?, now())",
            [other, last],
        )

    third = publish(settings, "run-3", synthetic=True)

    assert third.changes[other] == f"{CHANGED_DAYS} from {last}"
    assert third.serving_file_from_spare
    assert_served_equals_working(settings)


def test_a_mart_dropped_from_the_warehouse_leaves_the_single_file(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("drop table marts.fct_reach_by_country_sector_daily")

    publication = publish(settings, "run-2", synthetic=True)

    assert publication.serving_file_rebuilt
    assert_served_equals_working(settings)


def test_no_spare_is_kept_when_the_setting_is_off(copied_built_warehouse: Settings) -> None:
    settings = copied_built_warehouse
    spare = spare_path(settings.serving_path)
    publish(settings, "run-1", synthetic=True)
    simulate_daily_build(settings)
    publish(settings, "run-2", synthetic=True)
    assert spare.is_file()
    off = dataclasses.replace(settings, serving_file_spare=False)
    simulate_daily_build(settings)

    third = publish(off, "run-3", synthetic=True)

    assert not spare.exists()
    assert not third.serving_file_from_spare
    assert third.serving_file_copy_seconds is not None
    simulate_daily_build(settings)
    publish(off, "run-4", synthetic=True)
    assert not spare.exists()
    assert_served_equals_working(settings)


def test_no_spare_is_kept_where_the_system_cannot_tell_who_holds_a_file(
    copied_built_warehouse: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without file leases (another system than Linux) a spare could not be checked for
    readers: none is kept, and every publish copies the current file."""
    from social_leadership import serving

    settings = copied_built_warehouse
    monkeypatch.delattr(serving.fcntl, "F_SETLEASE")
    publish(settings, "run-1", synthetic=True)
    simulate_daily_build(settings)

    second, logged = publish_logged(settings, "run-2", caplog)

    assert not spare_path(settings.serving_path).exists()
    assert second.serving_file_copy_seconds is not None
    assert "keeping no spare serving file: this file system cannot tell" in logged
    assert_served_equals_working(settings)


def publish_in_child(settings: Settings, run_id: str) -> subprocess.CompletedProcess[str]:
    """Publish in a process of its own: a DuckDB crash fails the test, not the worker."""
    return subprocess.run(
        [sys.executable, "-c", PUBLISH_SCRIPT, run_id],
        env=package_env(),
        cwd=settings.data_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_publish_that_changed_nothing_leaves_the_single_file_s_key_index_whole(
    copied_built_warehouse: Settings,
) -> None:
    """A rerun with nothing rebuilt still writes the single file (its publication records,
    run history, comments) and leaves the keyed tables' primary-key indexes as they were.
    DuckDB 1.5.5 attaching a v1.1.0 file without naming its storage version broke such an
    index then, and a later insert into the table died (an internal error, or a
    segmentation fault): here the rerun's file, the spare of the publish after next."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    publish(settings, "run-rerun", synthetic=True)  # the current file copied, nothing changed
    outputs = []
    for run_id in ("run-2", "run-3"):
        simulate_daily_build(settings, changed_days=2)
        result = publish_in_child(settings, run_id)
        assert result.returncode == 0, f"{run_id}: exit {result.returncode}\n{result.stderr}"
        outputs.append(result.stdout.strip())

    assert outputs == ["from spare", "from spare"]  # run-3's spare is the rerun's file
    assert_served_equals_working(settings)
    with duckdb.connect(str(settings.serving_path), read_only=True) as served:
        assert served.execute(f"select format from audit.{FILE_FORMAT_TABLE}").fetchall() == [
            (FILE_FORMAT,)
        ]
    # The fact takes a new day, and every keyed table refuses a repeated key (in a scratch
    # copy, in a process of its own: a broken index crashed DuckDB).
    scratch = settings.serving_path.with_name("scratch.duckdb")
    shutil.copyfile(settings.serving_path, scratch)
    _, outcomes = probe_single_file_keys(sys.executable, scratch, FACT)
    assert outcomes[FACT] == "refused"
    assert len(outcomes) > 3
    assert set(outcomes.values()) == {"refused"}, outcomes


def test_a_single_file_of_an_earlier_format_is_built_whole_not_updated(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A file written before its format was recorded may hold a key index an update in
    place broke: the next publish builds the file whole instead of updating it."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    con = duckdb.connect()
    con.execute(f"attach '{writable(settings.serving_path)}' as f (storage_version 'v1.1.0')")
    con.execute(f"drop table f.audit.{FILE_FORMAT_TABLE}")
    con.close()
    stamp_path(settings).unlink()  # an earlier version recorded no stamp either
    simulate_daily_build(settings)

    publication, logged = publish_logged(settings, "run-2", caplog)

    assert publication.serving_file_rebuilt
    assert f"of format None in place (this version writes format {FILE_FORMAT};" in logged
    assert_served_equals_working(settings)
    with duckdb.connect(str(settings.serving_path), read_only=True) as served:
        assert served.execute(f"select format from audit.{FILE_FORMAT_TABLE}").fetchall() == [
            (FILE_FORMAT,)
        ]


@pytest.mark.parametrize("stamped", [True, False], ids=["stamp", "no-stamp"])
def test_a_single_file_of_a_newer_storage_version_is_replaced_not_a_failed_publish(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture, stamped: bool
) -> None:
    """A file put in the single file's place by hand, of a storage version newer than the
    one DuckDB 1.1 clients read, cannot be updated at that version: it is built whole,
    at once when the last publish's stamp tells it is another file, else once the update
    failed."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    assert not spare_path(settings.serving_path).exists()  # the current file is copied
    settings.serving_path.unlink()
    with duckdb.connect() as con:
        con.execute(f"attach '{settings.serving_path}' as f (storage_version 'v1.2.0')")
        con.execute("create table f.main.placed_by_hand as select 1 as a")
    if not stamped:
        stamp_path(settings).unlink()
    simulate_daily_build(settings)

    publication, logged = publish_logged(settings, "run-2", caplog)

    assert publication.serving_file_rebuilt
    if stamped:
        assert "it changed after its publish" in logged
    else:
        assert "cannot update the serving file in place, rebuilding it" in logged
    assert_served_equals_working(settings)


def _served_fact(settings: Settings) -> tuple[int, int]:
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        return con.execute(
            f"select count(*), max(publication_id) from marts.{FACT}, marts.publication"
        ).fetchone()


def test_a_warehouse_that_lost_its_history_is_not_published_over_the_serving_copy(
    copied_built_warehouse: Settings,
) -> None:
    """A warehouse recreated empty (a deleted file, a catalog database dropped) and run
    again holds the last days only: publishing it replaced every day readers had."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    served = _served_fact(settings)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        (last,) = con.execute(f"select max(metric_date) from marts.{FACT}").fetchone()
        for table in ("fct_executive_reach_daily", "fct_reach_by_country_sector_daily"):
            con.execute(f"delete from marts.{table} where metric_date < ?", [last])

    with pytest.raises(HistoryLostError) as refused:
        publish(settings, "run-2", synthetic=True)

    message = str(refused.value)
    assert f"{FACT} holds 1 day(s) from {last}, the serving copy 35 day(s) from" in message
    assert "fct_reach_by_country_sector_daily holds 1 day(s)" in message
    assert "less than half the history" in message
    assert "accept_shorter_history" in message
    assert "README: Backups" in message
    assert _served_fact(settings) == served
    with lake_reader(settings) as con:
        assert latest_publication(con) == 1

    publish(settings, "run-3", synthetic=True, accept_shorter_history=True)
    assert_served_equals_working(settings)


def test_a_roster_change_that_drops_executives_is_still_published(
    copied_built_warehouse: Settings,
) -> None:
    """Fewer rows on every day; or, the executives of the first days gone, fewer days at
    the start (5 of 35: an executive whose history was imported further back)."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        (first,) = con.execute(f"select min(metric_date) from marts.{FACT}").fetchone()
        con.execute(
            f"delete from marts.{FACT} where executive_id <> 'de_one' or metric_date < ?",
            [first + timedelta(days=5)],
        )

    publish(settings, "run-2", synthetic=True)

    assert_served_equals_working(settings)


def _edit_first_day(con: duckdb.DuckDBPyConnection) -> None:
    """What a BI session that opened the single file read-write might do: change a row of
    the fact's first day, which no daily publish republishes."""
    con.execute(
        f"update marts.{FACT} set followers = -1 "
        f"where metric_date = (select min(metric_date) from marts.{FACT})"
    )


# A BI session holding the single file read-write: its change stays in the write-ahead log
# beside the file until it closes.
HOLD_WRITING = f"""
import sys, duckdb
session = duckdb.connect(sys.argv[1])
session.execute(
    "update marts.{FACT} set followers = -1 "
    "where metric_date = (select min(metric_date) from marts.{FACT})"
)
print("written", flush=True)
sys.stdin.readline()
session.close()
"""


def test_a_session_writing_to_the_serving_file_never_reaches_the_next_publication(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Readers opening a DuckDB file replay the write-ahead log beside it, whatever file
    has that name by then: a session's log left beside the new publication's file put the
    session's changes into it for every new reader."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    wal = Path(f"{settings.serving_path}.wal")
    session = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITING, str(settings.serving_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=package_env(),
    )
    try:
        assert session.stdout is not None
        assert session.stdin is not None
        assert session.stdout.readline().strip() == "written"
        assert wal.exists()
        simulate_daily_build(settings)

        second, logged = publish_logged(settings, "run-2", caplog)

        assert not wal.exists()
        assert f"removed {wal}" in logged
        assert "left its write-ahead log serving.duckdb.wal beside it" in logged
        assert second.serving_file_rebuilt
        assert_served_equals_working(settings)
        session.stdin.write("\n")
        session.stdin.flush()
        assert session.wait(timeout=60) == 0
    finally:
        session.kill()
        session.wait()
    # Its file, closed now, is no spare: the next publish copies the current one.
    simulate_daily_build(settings)
    third = publish(settings, "run-3", synthetic=True)
    assert not third.serving_file_from_spare
    assert_served_equals_working(settings)


def test_a_serving_file_written_after_its_publish_is_built_whole_without_the_change(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A session that wrote to the single file and closed it: the next publish, which
    copied the file and replaced only the days rebuilt, kept its change for good."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    with duckdb.connect(str(writable(settings.serving_path))) as session:
        _edit_first_day(session)
    simulate_daily_build(settings)

    second, logged = publish_logged(settings, "run-2", caplog)

    assert "it changed after its publish" in logged
    assert second.serving_file_rebuilt
    assert second.serving_file_copy_seconds is None
    assert_served_equals_working(settings)
    # The rebuilt file is kept as the spare and used by the publish after it.
    simulate_daily_build(settings)
    third = publish(settings, "run-3", synthetic=True)
    assert not third.serving_file_from_spare
    simulate_daily_build(settings)
    fourth = publish(settings, "run-4", synthetic=True)
    assert fourth.serving_file_from_spare
    assert_served_equals_working(settings)


def test_a_spare_written_after_it_was_replaced_is_not_updated_in_place(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A session that held the single file read-write while a publish replaced it wrote
    into the spare when it closed: updated in place, the spare kept the change (or DuckDB
    crashed on it)."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    simulate_daily_build(settings)
    publish(settings, "run-2", synthetic=True)
    spare = spare_path(settings.serving_path)
    with duckdb.connect(str(writable(spare))) as session:
        _edit_first_day(session)
    simulate_daily_build(settings)

    third, logged = publish_logged(settings, "run-3", caplog)

    assert not third.serving_file_from_spare
    assert "it changed after it was replaced" in logged
    assert third.serving_file_copy_seconds is not None
    assert_served_equals_working(settings)


def test_a_catalog_made_anew_numbers_its_publications_after_the_single_file_s(
    copied_built_warehouse: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Readers that take what is newer than the last publication they saw: a catalog lost
    (or moved away) and made anew numbered from 1 again, so they took nothing more."""
    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    simulate_daily_build(settings)
    publish(settings, "run-2", synthetic=True)
    settings.serving_lake_path.unlink()
    shutil.rmtree(settings.serving_lake_data_dir)
    simulate_daily_build(settings)

    third, logged = publish_logged(settings, "run-3", caplog)

    assert third.publication_id == 3
    assert "the catalog was made anew (its time travel begins with this publication 3)" in logged
    assert_served_equals_working(settings)
    in_file, in_catalog = served_records(settings)
    assert in_file == in_catalog
    assert {row[0] for row in in_catalog["publication"]} == {3}
    simulate_daily_build(settings)
    assert publish(settings, "run-4", synthetic=True).publication_id == 4


def test_a_write_right_after_the_swap_is_seen_by_the_next_publish(
    copied_built_warehouse: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The file was stamped as the publish ended, after the catalog's maintenance: a
    session's write in between was taken for the publish's own, and the file updated in
    place two publishes later crashed DuckDB."""
    from social_leadership import serving

    settings = copied_built_warehouse
    publish(settings, "run-1", synthetic=True)
    maintain = serving._maintain_lake

    def and_a_session_writes(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
        maintain(con, settings)
        with duckdb.connect(str(writable(settings.serving_path))) as session:
            _edit_first_day(session)

    monkeypatch.setattr(serving, "_maintain_lake", and_a_session_writes)
    simulate_daily_build(settings)
    publish(settings, "run-2", synthetic=True)
    monkeypatch.setattr(serving, "_maintain_lake", maintain)
    simulate_daily_build(settings)

    third, logged = publish_logged(settings, "run-3", caplog)

    assert "it changed after its publish" in logged
    assert third.serving_file_rebuilt
    assert_served_equals_working(settings)


def test_a_rename_refused_onto_the_write_protected_file_is_made_once_it_is_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that takes the permissions for the DOS read-only attribute (SMB
    without Unix extensions) refuses a rename onto the published file: the swap failed
    after the catalog had committed."""
    from social_leadership import serving

    current, staged = tmp_path / "serving.duckdb", tmp_path / "staged.duckdb"
    current.write_bytes(b"old")
    staged.write_bytes(b"new")
    current.chmod(0o444)
    replace = os.replace

    def like_smb(source: os.PathLike, target: os.PathLike) -> None:
        if not stat.S_IMODE(Path(target).stat().st_mode) & stat.S_IWUSR:
            raise PermissionError(13, "Permission denied", str(target))
        replace(source, target)

    monkeypatch.setattr(serving.os, "replace", like_smb)

    serving._replace_write_protected(staged, current)

    assert current.read_bytes() == b"new"
    assert not staged.exists()
