"""Publishing the marts built by a real dbt build to the serving copy and Parquet."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from slw_testing import PUBLISH_SCRIPT, package_env

from social_leadership import serving
from social_leadership.serving import (
    CURRENT_FILE,
    CURRENT_LINK,
    FOLDER_MANIFEST,
    PUBLICATION_ID_KEY,
    RUN_ID_KEY,
    SYNTHETIC_NOTICE,
    publish,
    version_folder_name,
)
from social_leadership.settings import Settings

EXPECTED_MARTS = {
    "dim_company",
    "dim_country",
    "dim_date",
    "dim_executive",
    "dim_platform",
    "dim_sector",
    "fct_country_comparison_yearly",
    "fct_country_expectations_yearly",
    "fct_executive_reach_daily",
    "fct_platform_coverage_daily",
    "fct_reach_by_country_sector_all_platforms_daily",
    "fct_reach_by_country_sector_daily",
    "fct_survey_results",
}


def current_parquet_dir(parquet_dir: Path) -> Path:
    """The current publication's folder as a reader finds it (README, "Parquet export"):
    the ``CURRENT`` pointer, read once."""
    return parquet_dir / (parquet_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()


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


def publication_folders(settings: Settings) -> list[str]:
    return sorted(
        path.name
        for path in settings.serving_parquet_dir.iterdir()
        if path.is_dir() and not path.is_symlink()
    )


def table_files(folder: Path, table: str) -> list[Path]:
    """The Parquet files of one table in a publication folder (one, or one per month)."""
    return sorted((folder / table).glob("*.parquet"))


def run_id_of(path: Path) -> str:
    metadata = pq.read_metadata(path).metadata or {}
    return metadata[RUN_ID_KEY.encode()].decode()


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
    # Every table showing the synthetic roster says so; the publication records the same.
    for table in (
        "dim_executive",
        "fct_executive_reach_daily",
        "fct_reach_by_country_sector_daily",
    ):
        assert comments[table].startswith(SYNTHETIC_NOTICE), table
    with duckdb.connect(str(copied_built_warehouse.serving_path), read_only=True) as served:
        flags = dict(
            served.execute(
                "select table_name, contains_synthetic_data from marts.publication"
            ).fetchall()
        )
    assert {t: c.startswith(SYNTHETIC_NOTICE) for t, c in comments.items() if t in flags} == flags
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
    assert served_tables(copied_built_warehouse)["dim_sector"].startswith(SYNTHETIC_NOTICE)
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
    # Tables without synthetic flags of their own follow the publication's flag; those
    # with flags (the executives of this synthetic warehouse) say what their rows are.
    assert not comments["dim_sector"].startswith(SYNTHETIC_NOTICE)
    assert comments["dim_executive"].startswith(SYNTHETIC_NOTICE)
    assert leftovers(copied_built_warehouse) == []
    with duckdb.connect(str(copied_built_warehouse.warehouse_path), read_only=True) as con:
        assert con.execute(
            "select run_id, tables_published from audit.publications order by published_at"
        ).fetchall() == [("run-1", len(EXPECTED_MARTS)), ("run-2", len(EXPECTED_MARTS))]


def test_parquet_export_is_readable_through_the_pointer_and_names_its_run(
    copied_built_warehouse: Settings,
) -> None:
    publication = publish(copied_built_warehouse, "run-parquet", synthetic=True)

    parquet_dir = copied_built_warehouse.serving_parquet_dir
    assert set(publication.parquet_paths) >= EXPECTED_MARTS
    assert publication.parquet_dir.parent == parquet_dir
    assert (parquet_dir / CURRENT_LINK).resolve() == publication.parquet_dir
    assert current_parquet_dir(parquet_dir) == publication.parquet_dir
    assert (parquet_dir / CURRENT_FILE).read_text() == publication.parquet_dir.name + "\n"
    with duckdb.connect(str(copied_built_warehouse.warehouse_path), read_only=True) as con:
        for table, path in publication.parquet_paths.items():
            assert path == publication.parquet_dir / table
            through_link = parquet_dir / CURRENT_LINK / table
            exported = con.execute(
                "select count(*) from read_parquet(?)", [str(through_link / "*.parquet")]
            ).fetchone()
            assert exported == con.execute(f"select count(*) from marts.{table}").fetchone()
            assert {run_id_of(path) for path in table_files(parquet_dir / CURRENT_LINK, table)} == {
                "run-parquet"
            }
        recorded = con.execute("select parquet_dir from audit.publications").fetchall()
    assert recorded == [(str(publication.parquet_dir),)]


def test_each_parquet_set_carries_the_publication_tables_of_the_other_forms(
    copied_built_warehouse: Settings,
) -> None:
    """docs/bi.md puts marts.publication and marts.publication_data_as_of on every
    dashboard: a Parquet reader finds them in the folder, as of that publication."""
    settings = copied_built_warehouse
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "insert into audit.platform_data_as_of by name select 'check' as run_id, "
            "'x' as platform, date '2026-11-30' as data_as_of, 1 as days_behind, "
            "false as is_stale, now() as checked_at"
        )
    publish(settings, "run-1", synthetic=True)
    second = publish(settings, "run-2", synthetic=True)

    folder = current_parquet_dir(settings.serving_parquet_dir)
    manifest = json.loads((folder / FOLDER_MANIFEST).read_text(encoding="utf-8"))
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        for table in ("publication", "publication_data_as_of"):
            assert manifest["tables"][table] == [f"{table}.parquet"]
            (path,) = table_files(folder, table)
            assert run_id_of(path) == "run-2"
            exported = con.execute(
                "select * from read_parquet(?) order by all", [str(path)]
            ).fetchall()
            assert exported == con.execute(f"select * from marts.{table} order by all").fetchall()
            assert {row[0] for row in exported} == {1, 2}, table
            schema = pq.read_schema(path)
            assert all(schema.field(name).metadata[b"description"] for name in schema.names)
        assert con.execute(
            "select count(*) from read_parquet(?) where table_name = 'fct_executive_reach_daily'",
            [str(second.parquet_dir / "publication" / "publication.parquet")],
        ).fetchone() == (2,)


def test_no_marts_fails_and_keeps_previous_copy(copied_built_warehouse: Settings) -> None:
    publish(copied_built_warehouse, "run-ok", synthetic=True)
    before = copied_built_warehouse.serving_path.read_bytes()
    with duckdb.connect(str(copied_built_warehouse.warehouse_path)) as con:
        con.execute("drop schema marts cascade")

    with pytest.raises(RuntimeError, match="no tables in schema marts"):
        publish(copied_built_warehouse, "run-empty", synthetic=True)

    assert copied_built_warehouse.serving_path.read_bytes() == before
    assert leftovers(copied_built_warehouse) == []
    assert {
        run_id_of(path)
        for path in current_parquet_dir(copied_built_warehouse.serving_parquet_dir).glob(
            "*/*.parquet"
        )
    } == {"run-ok"}


def _publish_fails_naming_the_repeated_key(
    settings: Settings, table: str, key: tuple[str, ...], repeated: str
) -> None:
    """Publish once, add ``repeated`` (a SELECT of rows already in ``table``) to the
    working mart, and check that the next publish fails at once naming the mart and one
    repeated key, leaving the previous publication as it was."""
    publish(settings, "run-ok", synthetic=True)
    before = settings.serving_path.read_bytes()
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(f"insert into marts.{table} {repeated}")
        expected = con.execute(
            f"select {', '.join(key)} from marts.{table} group by all "
            "having count(*) > 1 order by all limit 1"
        ).fetchone()
    builds = []
    original = serving._build_file
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(serving, "_build_file", lambda *a: builds.append(1) or original(*a))
        with pytest.raises(serving.DuplicateKeyError) as raised:
            publish(settings, "run-duplicated", synthetic=True)

    assert str(raised.value).startswith(
        f"{table}: duplicate key ({', '.join(key)}) = "
        f"({', '.join(map(repr, expected))}) in working.marts.{table}"
    ), str(raised.value)
    # The copy's update failed on the key: the file is not built whole again, in vain.
    assert builds == []
    assert settings.serving_path.read_bytes() == before
    assert leftovers(settings) == []


def test_a_fact_with_a_repeated_key_fails_the_publish_naming_the_mart_and_key(
    copied_built_warehouse: Settings,
) -> None:
    # Its key is added once its rows are in: DuckDB finds the repeat at commit.
    _publish_fails_naming_the_repeated_key(
        copied_built_warehouse,
        "fct_executive_reach_daily",
        ("executive_id", "platform", "metric_date"),
        "select * from marts.fct_executive_reach_daily where metric_date = "
        "(select max(metric_date) from marts.fct_executive_reach_daily)",
    )


def test_a_dimension_with_a_repeated_key_fails_the_publish_naming_the_mart_and_key(
    copied_built_warehouse: Settings,
) -> None:
    # Referenced by the facts' foreign keys, it is created with its key: the insert fails.
    _publish_fails_naming_the_repeated_key(
        copied_built_warehouse,
        "dim_sector",
        ("sector_name",),
        "select * from marts.dim_sector order by all limit 1",
    )


def test_a_first_publish_with_a_repeated_key_fails_naming_the_mart_and_key(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("insert into marts.dim_sector select * from marts.dim_sector limit 1")

    with pytest.raises(
        serving.DuplicateKeyError, match=r"^dim_sector: duplicate key \(sector_name\)"
    ):
        publish(settings, "run-first", synthetic=True)

    assert not settings.serving_path.exists()
    assert leftovers(settings) == []


def _start_publish_and_kill_it_mid_export(settings: Settings) -> None:
    """Run a real publish in a subprocess and SIGKILL it while it writes Parquet files (and
    copies the last single file: a daily publish, no definition changed since the last)."""
    process = subprocess.Popen(
        [sys.executable, "-c", PUBLISH_SCRIPT, "run-killed"],
        env=package_env(),
        cwd=settings.data_dir,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            serving = settings.serving_path
            if list(settings.serving_parquet_dir.glob("*.tmp-*")) and list(
                serving.parent.glob(f"{serving.name}.tmp-*")
            ):
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        returncode = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert returncode == -signal.SIGKILL, "the publish ended before it could be killed"


def test_a_publish_killed_mid_way_leaves_debris_that_the_next_publish_removes(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    # A large mart (replaced whole at every publish) makes the export last long enough to
    # be caught in the middle of it.
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "create table marts.zz_padding as "
            "select range as n, md5(cast(range as varchar)) as digest from range(1000000)"
        )
    publish(settings, "run-before", synthetic=True)
    _start_publish_and_kill_it_mid_export(settings)
    # What older versions of the project left too: per-file temporaries and flat files.
    parquet_dir = settings.serving_parquet_dir
    (parquet_dir / "dim_sector.parquet.tmp-scheduled__2025-01-01").write_bytes(b"partial")
    (parquet_dir / "dim_sector.parquet").write_bytes(b"flat layout")
    Path(f"{settings.serving_path}.tmp-older-run.wal").write_bytes(b"wal")
    debris = leftovers(settings)
    assert any(name.startswith("serving.duckdb.tmp-run-killed") for name in debris), debris
    assert any(name.endswith(".tmp-run-killed") for name in debris), debris

    publication = publish(settings, "run-after", synthetic=True)

    assert leftovers(settings) == []
    assert not list(parquet_dir.glob("*.parquet"))
    assert current_parquet_dir(parquet_dir) == publication.parquet_dir
    assert [name.rsplit("-", 1)[-1] for name in publication_folders(settings)] == [
        "before",
        "after",
    ]
    assert all("run-after" in comment for comment in served_tables(settings).values())


def test_a_reader_of_every_table_sees_one_publication_while_publishes_run(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    parquet_dir = settings.serving_parquet_dir
    publish(settings, "run-0", synthetic=True)
    read_sets: list[set[str]] = []
    failures: list[BaseException] = []
    publishing = threading.Event()
    publishing.set()

    def read_every_table() -> None:
        by_link = False
        try:
            while publishing.is_set():
                # Resolve the pointer once per set, by each of the two documented means.
                if by_link:
                    folder = Path(os.path.realpath(parquet_dir / CURRENT_LINK))
                else:
                    folder = current_parquet_dir(parquet_dir)
                by_link = not by_link
                # The folder's manifest names its publication and every file of it; a file
                # kept from an earlier publication (hard-linked) names the one that wrote it.
                manifest = json.loads((folder / FOLDER_MANIFEST).read_text(encoding="utf-8"))
                run_ids = {manifest["run_id"]}
                for table in sorted(EXPECTED_MARTS):
                    assert sorted(p.name for p in table_files(folder, table)) == sorted(
                        manifest["tables"][table]
                    )
                    for path in table_files(folder, table):
                        pq.read_table(path)
                        written_by = int(
                            pq.read_metadata(path).metadata[PUBLICATION_ID_KEY.encode()]
                        )
                        assert written_by <= manifest["publication_id"]
                read_sets.append(run_ids)
        except BaseException as exc:  # handed to the test thread, which fails with it
            failures.append(exc)

    reader = threading.Thread(target=read_every_table)
    reader.start()
    try:
        for number in range(1, 5):
            publish(settings, f"run-{number}", synthetic=True)
            time.sleep(0.05)
    finally:
        publishing.clear()
        reader.join(timeout=60)

    assert not failures, failures
    assert read_sets
    assert [run_ids for run_ids in read_sets if len(run_ids) != 1] == []
    seen = set().union(*read_sets)
    assert len(seen) >= 2, f"the reader saw only {seen}: it did not overlap the publishes"


def test_replaced_sets_are_kept_for_the_retention_time_counted_from_their_replacement(
    copied_built_warehouse: Settings,
) -> None:
    settings = dataclasses.replace(copied_built_warehouse, serving_parquet_retention_minutes=60)
    parquet_dir = settings.serving_parquet_dir
    now = datetime.now(tz=UTC)
    # Two sets from older publishes: the first replaced by the second two hours ago, the
    # second current until the publish below, although made two hours ago.
    made = {
        "run-old": now - timedelta(hours=3),
        "run-older-but-current": now - timedelta(hours=2),
    }
    for run_id, at in made.items():
        folder = parquet_dir / version_folder_name(run_id, at)
        folder.mkdir(parents=True)
        (folder / "dim_sector.parquet").write_bytes(b"old set")
    current = version_folder_name("run-older-but-current", made["run-older-but-current"])
    (parquet_dir / CURRENT_LINK).symlink_to(current)
    (parquet_dir / CURRENT_FILE).write_text(current + "\n")

    first = publish(settings, "run-new", synthetic=True)

    # The set replaced just now stays for the readers still reading it; the one replaced
    # two hours ago is gone.
    assert publication_folders(settings) == [current, first.parquet_dir.name]

    second = publish(settings, "run-newer", synthetic=True)
    assert publication_folders(settings) == [
        current,
        first.parquet_dir.name,
        second.parquet_dir.name,
    ]
    assert current_parquet_dir(parquet_dir) == second.parquet_dir


class _Killed(BaseException):
    """A publish's process killed (no ``except Exception`` of the publish catches it)."""


def _publish_killed_before_the_pointers_moved(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, run_id: str, *, link_moved: bool
) -> None:
    """A publish whose process died once its Parquet set was renamed into place: before
    either pointer moved to it, or (``link_moved``) between ``current`` and ``CURRENT``."""

    def switch_and_die(parquet_dir: Path, version: str, run_id: str) -> None:
        if link_moved:
            moved = parquet_dir / "current.tmp-moving"
            moved.symlink_to(version, target_is_directory=True)
            os.replace(moved, parquet_dir / CURRENT_LINK)
        raise _Killed

    with monkeypatch.context() as patched:
        patched.setattr(serving, "_switch_current", switch_and_die)
        with pytest.raises(_Killed):
            publish(settings, run_id, synthetic=True)


def _made_hours_ago(parquet_dir: Path, hours: int) -> dict[str, str]:
    """Rename every publication folder as if it had been made ``hours`` ago and later (the
    oldest first, an hour apart), the pointers following: old name -> new name."""
    now = datetime.now(tz=UTC)
    names = sorted(p.name for p in parquet_dir.iterdir() if p.name.startswith("publication-"))
    renamed = {
        name: version_folder_name(name.rsplit("-", 1)[-1], now - timedelta(hours=hours - n))
        for n, name in enumerate(names)
    }
    for old, new in renamed.items():
        os.rename(parquet_dir / old, parquet_dir / new)
    link = parquet_dir / CURRENT_LINK
    target = renamed[os.readlink(link)]
    link.unlink()
    link.symlink_to(target, target_is_directory=True)
    pointer = parquet_dir / CURRENT_FILE
    pointer.write_text(renamed[pointer.read_text(encoding="utf-8").strip()] + "\n")
    return renamed


def _a_day_after_a_killed_publish(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, *, link_moved: bool
) -> tuple[str, str]:
    """A publish, then one killed as :func:`_publish_killed_before_the_pointers_moved`
    says, both made a day ago: their folders' names, in that order."""
    publish(settings, "run-live", synthetic=True)
    _publish_killed_before_the_pointers_moved(
        settings, monkeypatch, "run-killed", link_moved=link_moved
    )
    older, newer = sorted(_made_hours_ago(settings.serving_parquet_dir, 26).values())
    return older, newer


def test_a_set_a_killed_publish_never_made_current_is_removed_not_taken_for_its_successor(
    copied_built_warehouse: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed after its set was renamed into place, before the pointers moved: the next
    # publish, a day later, took that set for the one that replaced the live set a day
    # ago, and deleted the live set at once, under the readers reading it (probe ops63).
    settings = dataclasses.replace(copied_built_warehouse, serving_parquet_retention_minutes=60)
    parquet_dir = settings.serving_parquet_dir
    live, killed = _a_day_after_a_killed_publish(settings, monkeypatch, link_moved=False)
    assert current_parquet_dir(parquet_dir).name == live

    after = publish(settings, "run-after", synthetic=True)

    # The set current until this publish stays for its retention; the one no pointer ever
    # named (no reader could find it) is gone.
    assert publication_folders(settings) == [live, after.parquet_dir.name]
    record = json.loads((parquet_dir / live / serving.REPLACED_FILE).read_text())
    assert record["replaced_by"] == after.parquet_dir.name
    assert not (parquet_dir / killed).exists()


def test_a_set_replaced_after_a_clock_went_back_is_kept_for_its_retention(
    copied_built_warehouse: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A publish whose clock was 10 minutes behind the one before (another worker, NTP):
    # its folder sorts before the one it replaced, which the next publish took for a set no
    # pointer ever named, and deleted at once.
    settings = dataclasses.replace(copied_built_warehouse, serving_parquet_retention_minutes=60)
    ahead = publish(settings, "run-a", synthetic=True).parquet_dir.name

    class BehindClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) - timedelta(minutes=10)

    with monkeypatch.context() as behind:
        behind.setattr(serving, "datetime", BehindClock)
        behind_name = publish(settings, "run-b", synthetic=True).parquet_dir.name
    assert behind_name < ahead
    last = publish(settings, "run-c", synthetic=True).parquet_dir.name

    assert set(publication_folders(settings)) == {ahead, behind_name, last}


def test_no_set_is_swept_as_never_current_when_no_pointer_names_a_set(tmp_path: Path) -> None:
    parquet_dir = tmp_path / "parquet"
    names = [
        version_folder_name(run, datetime(2026, 12, 7, hour, tzinfo=UTC))
        for hour, run in ((1, "a"), (2, "b"))
    ]
    for name in names:
        (parquet_dir / name).mkdir(parents=True)
    assert serving.never_current_sets(parquet_dir) == []
    (parquet_dir / "live").mkdir()
    (parquet_dir / CURRENT_LINK).symlink_to("live")  # rolled back by hand to another folder
    (parquet_dir / CURRENT_FILE).write_bytes("live\n".encode("utf-16"))
    assert serving.never_current_sets(parquet_dir) == []
    (parquet_dir / CURRENT_LINK).unlink()
    (parquet_dir / CURRENT_LINK).symlink_to(names[0])
    assert serving.never_current_sets(parquet_dir) == [parquet_dir / names[1]]


def test_sets_both_pointers_named_are_kept_for_the_retention_after_both_moved_on(
    copied_built_warehouse: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed between moving ``current`` and ``CURRENT``: readers by ``CURRENT`` kept the
    # older set until the next publish, which deleted it at once (its successor, by name,
    # was made a day before).
    settings = dataclasses.replace(copied_built_warehouse, serving_parquet_retention_minutes=60)
    parquet_dir = settings.serving_parquet_dir
    by_file, by_link = _a_day_after_a_killed_publish(settings, monkeypatch, link_moved=True)
    assert current_parquet_dir(parquet_dir).name == by_file
    assert os.readlink(parquet_dir / CURRENT_LINK) == by_link

    after = publish(settings, "run-after", synthetic=True)
    name = after.parquet_dir.name

    assert publication_folders(settings) == [by_file, by_link, name]
    replaced_at = {
        json.loads((parquet_dir / folder / serving.REPLACED_FILE).read_text())["replaced_at"]
        for folder in (by_file, by_link)
    }
    assert len(replaced_at) == 1
    moved_on = datetime.fromisoformat(replaced_at.pop())
    assert moved_on >= datetime.strptime(name.split("-")[1], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    retention = timedelta(minutes=60)
    prune = serving.prune_parquet_versions
    assert prune(parquet_dir, name, retention, moved_on + retention) == []
    tick = timedelta(microseconds=1)
    assert prune(parquet_dir, name, retention, moved_on + retention + tick) == [by_file, by_link]
    assert publication_folders(settings) == [name]


def test_each_replaced_set_goes_once_its_retention_after_its_replacement_is_over(
    copied_built_warehouse: Settings,
) -> None:
    from social_leadership.serving import prune_parquet_versions

    settings = copied_built_warehouse
    parquet_dir = settings.serving_parquet_dir
    names = [publish(settings, f"run-{n}", synthetic=True).parquet_dir.name for n in range(3)]
    assert publication_folders(settings) == names

    def replaced(name: str) -> datetime:
        """When the pointers left the folder, as the publish recorded it there."""
        record = json.loads((parquet_dir / name / serving.REPLACED_FILE).read_text())
        assert record["replaced_by"] == names[names.index(name) + 1]
        return datetime.fromisoformat(record["replaced_at"])

    retention = timedelta(minutes=settings.serving_parquet_retention_minutes)
    tick = timedelta(microseconds=1)
    current = names[2]
    first_replaced, second_replaced = replaced(names[0]), replaced(names[1])

    assert prune_parquet_versions(parquet_dir, current, retention, first_replaced + retention) == []
    assert (
        prune_parquet_versions(parquet_dir, current, retention, first_replaced + retention + tick)
        == names[:1]
    )
    assert (
        prune_parquet_versions(parquet_dir, current, retention, second_replaced + retention + tick)
        == names[1:2]
    )
    assert (
        prune_parquet_versions(
            parquet_dir, current, retention, second_replaced + timedelta(days=30)
        )
        == []
    )
    assert publication_folders(settings) == [current]
    assert current_parquet_dir(parquet_dir).name == current


def test_a_publish_removes_only_its_own_leftovers_never_other_files_in_the_parquet_folder(
    copied_built_warehouse: Settings,
) -> None:
    """SLW_SERVING_PARQUET_DIR may be a folder people keep other files in. Before: every
    publish deleted each ``*.parquet`` file in it (meant for the flat layout's mart files)
    and anything whose name held ``.tmp-``."""
    settings = copied_built_warehouse
    parquet_dir = settings.serving_parquet_dir
    parquet_dir.mkdir(parents=True, exist_ok=True)
    theirs = {
        "analysis.parquet": b"someone's own Parquet file",
        "budget.tmp-2025.xlsx": b"someone's draft",
    }
    for name, content in theirs.items():
        (parquet_dir / name).write_bytes(content)
    (parquet_dir / "dim_sector.parquet").write_bytes(b"flat layout")

    publish(settings, "run-one", synthetic=True)

    for name, content in theirs.items():
        assert (parquet_dir / name).read_bytes() == content, name
    assert not (parquet_dir / "dim_sector.parquet").exists()
