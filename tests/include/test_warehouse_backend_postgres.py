"""The DuckLake working warehouse on a real PostgreSQL catalog (a ``scale`` test), with its
data on a local folder or on an S3-compatible store (moto's server on loopback), and a BI
reader connecting the way README's "How each user group connects" says.

Outside ``make test`` (CI's time limit): runs with ``SLW_TEST_SCALE=1`` on a machine with
PostgreSQL's server programs (``initdb``, ``pg_ctl``), started here on loopback in a
temporary folder (as the ``postgres`` user when run as root, as initdb refuses root), and
stopped afterwards (``scale_servers``: installed with apt-get when run as root; otherwise,
without them, it is skipped, saying so). ``make test-scale`` runs it.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import psycopg2
import pytest
from conftest import BUILD_WITHOUT_TESTS, BuiltWarehouse, load_synthetic_raw, settings_for_data_dir
from moto.server import ThreadedMotoServer
from scale_servers import Postgres, marts, postgres_server
from slw_testing import PARSE_SEED_VARIABLE, free_port, import_while_a_build_plans

from social_leadership.dbt_runner import run_dbt
from social_leadership.orchestration import DEFAULT_POOL, platform_load_pool
from social_leadership.quality import check_marts
from social_leadership.serving import publish
from social_leadership.serving_lake import extension_path
from social_leadership.settings import REPO_ROOT, Settings
from social_leadership.warehouse import connect, transaction

pytestmark = [
    pytest.mark.scale,
    pytest.mark.skipif(
        os.environ.get("SLW_TEST_SCALE") != "1",
        reason="starts a PostgreSQL server: set SLW_TEST_SCALE=1 to run it",
    ),
]

PASSWORD = "lake-test-password"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with postgres_server((), PASSWORD) as server:
        yield server


@pytest.fixture
def postgres_catalog(postgres: Postgres, request: pytest.FixtureRequest) -> str:
    """A new database of the role ``slw`` (password authentication) on the module's
    PostgreSQL server; SLW_DUCKLAKE_CATALOG for it, no password in it. One per test: a
    DuckLake catalog keeps the data path it was made with."""
    database = f"slw_lake_{request.node.name.removeprefix('test_')[:40]}"
    postgres.create_database(database)
    return postgres.catalog(database)


def _lake_settings(monkeypatch: pytest.MonkeyPatch, data_dir: Path, catalog: str) -> Settings:
    # dbt's own saved parse: the lake's profile is not the shared parse's (tests/conftest.py).
    monkeypatch.delenv(PARSE_SEED_VARIABLE, raising=False)
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "ducklake")
    monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", catalog)
    monkeypatch.setenv("SLW_DUCKLAKE_DATA_PATH", str(data_dir / "shared" / "lake"))
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    return settings_for_data_dir(monkeypatch, data_dir)


@pytest.mark.dbt
def test_the_marts_are_equal_on_a_postgres_catalog(
    synthetic_built_warehouse: BuiltWarehouse,
    postgres_catalog: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    settings = _lake_settings(monkeypatch, tmp_path / "data", postgres_catalog)
    load_synthetic_raw(settings.warehouse_path)

    build = run_dbt(["build"], settings, log_path=settings.logs_dir / "dbt_build.log")

    assert build.returncode == 0, build.output_tail
    with connect(synthetic_built_warehouse.settings.warehouse_path, read_only=True) as con:
        expected = marts(con)
    with connect(settings.warehouse_path, read_only=True) as con:
        assert marts(con) == expected
    assert check_marts(settings, "run-pg").failed == []
    assert publish(settings, "run-pg", synthetic=True).tables_published == len(expected)
    assert not settings.warehouse_path.exists()
    # No password in anything the pipeline wrote.
    for path in settings.data_dir.rglob("*"):
        if path.is_file() and path.suffix in {".log", ".json", ".txt", ""}:
            assert PASSWORD not in path.read_text(errors="replace"), path


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, date, datetime
    from social_leadership.settings import load_settings
    from social_leadership.warehouse import connect, transaction
    from social_leadership.warehouse_backend import retry_conflicts

    platform, settings = sys.argv[1], load_settings()

    def replace_day(round_number):
        with connect(settings.warehouse_path, settings=settings) as con, transaction(con):
            con.execute(
                "delete from raw.platform_metrics where platform = ? and snapshot_date = ?",
                [platform, date(2026, 1, 1)],
            )
            now = datetime.now(UTC)
            con.executemany(
                "insert into raw.platform_metrics values "
                "(?, ?, ?, null, 'ok', ?, 1, 1, ?, 'api', null, ?, false)",
                [(platform, date(2026, 1, 1), f"h{k}", round_number, now, now) for k in range(20)],
            )

    for round_number in range(4):
        retry_conflicts(lambda: replace_day(round_number))
    """
)


def test_platform_loads_write_at_once_on_a_postgres_catalog(
    postgres_catalog: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Four processes replacing their platform's day at once, four times each: every
    commit lands (the conflicts DuckLake refuses are run again), nothing is lost or doubled."""
    settings = _lake_settings(monkeypatch, tmp_path / "data", postgres_catalog)
    assert platform_load_pool() == DEFAULT_POOL
    with connect(settings.warehouse_path):
        pass
    platforms = ["x", "bluesky", "mastodon", "youtube"]
    env = {
        **os.environ,
        **settings.as_env(),
        "PGPASSWORD": PASSWORD,
        "PYTHONPATH": str(REPO_ROOT / "include"),
    }
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, platform], env=env)
        for platform in platforms
    ]
    assert [writer.wait(timeout=600) for writer in writers] == [0, 0, 0, 0]
    with connect(settings.warehouse_path, read_only=True) as con:
        rows = con.execute(
            "select platform, count(*), min(followers), max(followers) "
            "from raw.platform_metrics group by all order by all"
        ).fetchall()
    assert rows == [(platform, 20, 3, 3) for platform in sorted(platforms)]


def test_a_history_import_committed_after_a_build_planned_is_rebuilt_by_the_next(
    postgres_catalog: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On a PostgreSQL catalog an import and a build's plan run at once: the build, planned
    and recorded on its own connection while the import had not committed, cannot see it;
    the next build must rebuild its days (it took the imports stamped since that build
    started, and the import was stamped when it began)."""
    from social_leadership.dbt_runner import DbtResult, plan_build, record_build

    settings = _lake_settings(monkeypatch, tmp_path / "data", postgres_catalog)
    built = DbtResult(args=("build",), returncode=0)
    with connect(settings.warehouse_path) as builder:
        record_build(builder, "r1", plan_build(builder), datetime.now(UTC), built)

    def plan_and_record():
        with connect(settings.warehouse_path) as builder:
            plan = plan_build(builder)
            record_build(builder, "r2", plan, datetime.now(UTC), built)
        return plan

    with connect(settings.warehouse_path) as importer:
        outcome, plans = import_while_a_build_plans(
            monkeypatch, importer, tmp_path, plan_and_record
        )

    assert outcome.rows_loaded == 2
    assert [plan.rebuild_windows for plan in plans] == [()]
    with connect(settings.warehouse_path) as builder:
        assert plan_build(builder).rebuild_windows == ((date(2025, 3, 1), date(2025, 3, 2)),)


# The S3-compatible store's test credentials: moto accepts any key; httpfs reads these
# variables itself, the reader gets them in a DuckDB secret as README says.
S3_KEY, S3_SECRET, BUCKET = "slw-test-key", "slw-test-secret", "slw-lake"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto) on loopback with the bucket ``BUCKET``."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _s3(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def _s3(endpoint: str):  # boto3's client class is generated at run time: no annotation
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )


def _readme_sql_after(marker: str) -> str:
    """The first ```sql block after ``marker`` in README.md (the steps a reader follows)."""
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(marker)
    return re.search(r"```sql\n(.*?)```", text[start:], re.DOTALL).group(1)


READER = textwrap.dedent(
    """
    import sys
    import duckdb

    attach, key, secret, endpoint, ducklake, postgres, httpfs = sys.argv[1:]
    con = duckdb.connect()
    for path in (ducklake, postgres, httpfs):
        con.execute(f"load '{path}'")
    con.execute(
        f"create secret (type s3, key_id '{key}', secret '{secret}', endpoint '{endpoint}', "
        "url_style 'path', use_ssl false, region 'us-east-1')"
    )
    con.execute(attach)

    def counts():
        return [
            con.execute("select count(*) from lake.raw.platform_metrics").fetchone()[0],
            con.execute(
                "select count(*) from lake.marts.fct_reach_by_country_sector_daily"
            ).fetchone()[0],
        ]

    print(*counts(), flush=True)
    sys.stdin.readline()  # the writer committed
    print(*counts(), flush=True)
    try:
        con.execute("delete from lake.raw.platform_metrics")
        print("wrote", flush=True)
    except duckdb.Error as error:
        print("refused", type(error).__name__, flush=True)
    """
)


@pytest.mark.dbt
def test_an_s3_data_path_builds_equal_marts_and_a_bi_reader_reads_the_latest_snapshot(
    synthetic_built_warehouse: BuiltWarehouse,
    postgres: Postgres,
    postgres_catalog: str,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The deployed layout: catalog on PostgreSQL, data on S3 (httpfs). dbt builds the
    marts there equal to the DuckDB file's; a reader in another process, with a read-only
    role made by README's SQL and attached as README says, sees each commit the writer
    makes while it stays connected, and cannot write."""
    _lake_settings(monkeypatch, tmp_path / "data", postgres_catalog)  # the catalog, PGPASSWORD
    monkeypatch.setenv("SLW_DUCKLAKE_DATA_PATH", f"s3://{BUCKET}/warehouse/")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    load_synthetic_raw(settings.warehouse_path)

    # The models, seeds and snapshot (the data tests run on the file's shared build).
    build = run_dbt(
        BUILD_WITHOUT_TESTS,
        settings,
        log_path=settings.logs_dir / "dbt_build.log",
    )

    assert build.returncode == 0, build.output_tail
    with connect(synthetic_built_warehouse.settings.warehouse_path, read_only=True) as con:
        expected = marts(con)
    with connect(settings.warehouse_path, read_only=True) as con:
        assert marts(con) == expected
        raw_rows = con.execute("select count(*) from raw.platform_metrics").fetchone()[0]
    keys = [o["Key"] for o in _s3(s3_endpoint).list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(key.startswith("warehouse/") and key.endswith(".parquet") for key in keys)
    assert not (tmp_path / "data" / "shared").exists()  # nothing fell back to a folder

    database = postgres_catalog.split("dbname=")[1].split()[0]
    role_sql = "\n".join(
        line
        for line in _readme_sql_after("The role, once:").splitlines()
        if not line.lstrip().startswith("--")
    )
    role_sql = role_sql.replace("<openssl rand -hex 32>", "reader-password").replace(
        "slw_lake", database
    )
    with psycopg2.connect(postgres.sqlalchemy_url(database).replace("+psycopg2", "")) as pg:
        pg.autocommit = True
        with pg.cursor() as cursor:
            for statement in filter(str.strip, role_sql.split(";")):
                cursor.execute(statement)
    attach = (
        _readme_sql_after("and in the reader's DuckDB")
        .split(";")[0]
        .replace("dbname=slw_lake", f"dbname={database}")
        .replace("host=<docker host>", f"host=127.0.0.1 port={postgres.port}")
        .replace("s3://<bucket>/<prefix>/", f"s3://{BUCKET}/warehouse/")
    )
    assert "user=bi_reader" in attach
    assert "read_only" in attach
    reader_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "PG", "SLW_"))
    }
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            READER,
            attach,
            S3_KEY,
            S3_SECRET,
            s3_endpoint.removeprefix("http://"),
            *(str(extension_path(name)) for name in ("ducklake", "postgres_scanner", "httpfs")),
        ],
        env={**reader_env, "PGPASSWORD": "reader-password"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = reader.stdout.readline().split()
        assert first, reader.stderr.read()
        assert int(first[0]) == raw_rows
        assert int(first[1]) == len(expected["fct_reach_by_country_sector_daily"])

        now = datetime.now(UTC)
        with connect(settings.warehouse_path) as con, transaction(con):
            con.executemany(
                "insert into raw.platform_metrics values "
                "(?, ?, ?, null, 'ok', 7, 1, 1, ?, 'api', null, ?, false)",
                [("x", date(2030, 1, 1), f"late{k}", now, now) for k in range(20)],
            )
        reader.stdin.write("\n")
        reader.stdin.flush()
        second = reader.stdout.readline().split()
        assert int(second[0]) == raw_rows + 20, reader.stderr.read()
        third = reader.stdout.readline().split()
        assert third[0] == "refused", third
    finally:
        reader.kill()
        reader.wait()
