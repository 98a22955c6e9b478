"""Extract -> land -> load against the real sandbox server and a real DuckDB file."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from social_leadership.demo.synthetic import synthetic_metrics
from social_leadership.platform_metrics import (
    extract_platform,
    load_platform_day,
    observation_date,
    record_skipped,
)
from social_leadership.platforms.base import PlatformError
from social_leadership.sandbox.server import SandboxServer
from social_leadership.warehouse import ensure_schema

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
TOKEN = "test-token-abc123"
ROWS = "select * exclude (loaded_at) from raw.platform_metrics order by all"


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(token=TOKEN, clock=lambda: NOW) as server:
        yield server


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_schema(connection)
    yield connection
    connection.close()


def _x_handles(server: SandboxServer) -> list[str]:
    return [handle for handle, _ in server._x.values()]


def test_observation_date_only_for_today():
    assert observation_date(NOW, now=NOW) == NOW.date()
    assert observation_date(NOW - timedelta(days=1), now=NOW) is None


def test_extract_land_load_round_trip(tmp_path, con, sandbox):
    handles = [*_x_handles(sandbox), "nosuchuser_zz"]
    outcome = extract_platform(
        "x", handles, sandbox.base_url, TOKEN, tmp_path / "landing", "run-1", NOW, now=NOW
    )
    assert outcome.status == "landed"
    assert outcome.requests_sent == -(-len(handles) // 100)
    loaded = load_platform_day(con, tmp_path / "landing", "x", NOW.date(), "run-1")
    assert loaded.accounts_loaded == len(handles) - 1
    assert loaded.accounts_missing == 1
    row = con.execute(
        "select followers, following, posts, account_status, source from raw.platform_metrics "
        "where account_handle = 'elonmusk'"
    ).fetchone()
    assert row == (*synthetic_metrics("x", "elonmusk", NOW.date()), "ok", "api")
    status = con.execute(
        "select account_status from raw.platform_metrics where account_handle = 'nosuchuser_zz'"
    ).fetchone()
    assert status == ("not_found",)
    landed_text = b"".join(p.read_bytes() for p in (tmp_path / "landing").rglob("*.json"))
    assert TOKEN.encode() not in landed_text


def test_reloading_a_day_replaces_it(tmp_path, con, sandbox):
    handles = _x_handles(sandbox)
    for run in ("run-1", "run-2"):
        extract_platform("x", handles, sandbox.base_url, TOKEN, tmp_path / "l", run, NOW, now=NOW)
        load_platform_day(con, tmp_path / "l", "x", NOW.date(), run)
        load_platform_day(con, tmp_path / "l", "x", NOW.date(), run)
    count = con.execute("select count(*) from raw.platform_metrics").fetchone()[0]
    assert count == len(set(h.casefold() for h in handles))


def test_an_older_run_s_load_run_again_keeps_the_day_s_later_observations(tmp_path, con):
    # An earlier run's load cleared and run again after a later run of the day had loaded
    # (or two runs of the day loading at once) replaced the day's counts with older ones.
    moment = [NOW]
    with SandboxServer(token=TOKEN, clock=lambda: moment[0]) as server:
        handles = _x_handles(server)
        for run, hours in (("run-early", 0), ("run-late", 2)):
            moment[0] = NOW + timedelta(hours=hours)
            extract_platform(
                "x", handles, server.base_url, TOKEN, tmp_path / "l", run, moment[0], now=moment[0]
            )
        day_dir = tmp_path / "l" / "platform=x" / f"date={NOW.date()}"
        load_platform_day(
            con, tmp_path / "l", "x", NOW.date(), "run-late", run_dir=day_dir / "run=run-late"
        )
        later = con.execute(ROWS).fetchall()

        again = load_platform_day(
            con, tmp_path / "l", "x", NOW.date(), "run-early", run_dir=day_dir / "run=run-early"
        )

    assert con.execute(ROWS).fetchall() == later
    paths = con.execute("select distinct landing_path from raw.platform_metrics").fetchall()
    assert paths == [(str(day_dir / "run=run-late"),)]
    accounts = len({h.casefold() for h in handles})
    assert f"kept the day's later observations of {accounts} account(s)" in (again.message or "")


def test_a_rerun_asking_for_fewer_accounts_keeps_the_day_s_counts_of_the_others(
    tmp_path, con, sandbox
):
    # A roster losing accounts (an executive removed, a platform's column misread) before a
    # rerun of the day deleted their counts of the day from raw: no later run could fetch
    # them again, and README says a removed executive's rows stay in raw.
    handles = _x_handles(sandbox)
    # A handle mistyped in the first run: its answer without counts goes with the rerun.
    asked = [*handles, "nosuchuser_zz"]
    extract_platform("x", asked, sandbox.base_url, TOKEN, tmp_path / "l", "run-1", NOW, now=NOW)
    load_platform_day(con, tmp_path / "l", "x", NOW.date(), "run-1")
    # A protected account's counts are counts too (X gives its followers).
    con.execute(
        "update raw.platform_metrics set account_status = 'protected' where account_handle = ?",
        [handles[1]],
    )
    first = con.execute(ROWS).fetchall()
    assert len(first) == len(asked)
    kept, protected, *others = handles

    for run, asked in (("run-2", others), ("run-3", [])):
        extract_platform("x", asked, sandbox.base_url, TOKEN, tmp_path / "l", run, NOW, now=NOW)
        loaded = load_platform_day(con, tmp_path / "l", "x", NOW.date(), run)
        rows = con.execute(ROWS).fetchall()
        assert len(rows) == len(handles)
        mistyped = "select count(*) from raw.platform_metrics where account_handle = ?"
        assert con.execute(mistyped, ["nosuchuser_zz"]).fetchone() == (0,)
        not_asked = len(handles) - len(asked)
        assert f"kept {not_asked} earlier count(s) of the day for accounts this run did not " in (
            loaded.message or ""
        )
        for handle in (kept, protected):
            (row,) = con.execute(
                "select followers, landing_path from raw.platform_metrics where account_handle = ?",
                [handle],
            ).fetchall()
            assert row[0] is not None
            assert "run-1" in row[1]


def test_backfill_skips_extraction_and_is_audited(tmp_path, con, sandbox):
    before = len(sandbox.request_log)
    past = NOW - timedelta(days=5)
    outcome = extract_platform(
        "bluesky", ["a.bsky.social"], sandbox.base_url, None, tmp_path, "bf", past, now=NOW
    )
    assert outcome.status == "skipped_backfill"
    assert len(sandbox.request_log) == before
    record_skipped(con, outcome, "bf")
    assert con.execute("select status, snapshot_date from audit.platform_loads").fetchall() == [
        ("skipped_backfill", past.date())
    ]
    assert con.execute("select count(*) from raw.platform_metrics").fetchone()[0] == 0


def test_a_refused_platform_says_the_day_s_earlier_observations_are_kept(tmp_path, con, sandbox):
    # Audited "failed, 0 loaded, 4 missing": read as the day's counts gone, where the
    # earlier run's stay in raw.
    from social_leadership.platform_metrics import ExtractOutcome

    handles = _x_handles(sandbox)[:4]
    extract_platform("x", handles, sandbox.base_url, TOKEN, tmp_path / "l", "run-1", NOW, now=NOW)
    load_platform_day(con, tmp_path / "l", "x", NOW.date(), "run-1")
    refused = ExtractOutcome("x", NOW.date(), "failed", accounts_requested=4, message="401")

    outcome = record_skipped(con, refused, "run-2")

    assert (outcome.status, outcome.accounts_missing) == ("failed", 4)
    assert outcome.message == "401; kept 4 earlier observation(s) of the day"
    assert con.execute("select count(*) from raw.platform_metrics").fetchone() == (4,)


# Two LinkedIn organizations (one request each) and a member, whose counts come by import.
LINKEDIN_HANDLES = ["urn:li:organization:1001", "satyanadella", "urn:li:organization:1002"]


def test_import_only_accounts_are_never_counted_as_asked_for(tmp_path, con, sandbox):
    def extract(run_id, logical_date):
        return extract_platform(
            "linkedin", LINKEDIN_HANDLES, sandbox.base_url, TOKEN, tmp_path / "l", run_id,
            logical_date, now=NOW, sleep=lambda _: None,
        )  # fmt: skip

    backfill = extract("bf", NOW - timedelta(days=5))
    today = extract("today", NOW)

    assert (backfill.status, backfill.accounts_requested) == ("skipped_backfill", 2)
    assert (today.status, today.accounts_requested, today.requests_sent) == ("landed", 2, 2)
    loaded = load_platform_day(con, tmp_path / "l", "linkedin", NOW.date(), "today")
    assert (loaded.accounts_requested, loaded.accounts_loaded) == (2, 2)


def test_a_retry_after_midnight_leaves_no_import_only_account_deferred(tmp_path, con, sandbox):
    landing = tmp_path / "l"
    # The first organization read; every attempt at the second failing.
    sandbox.add_fault("slow", platform="linkedin", delay_seconds=0)
    sandbox.add_fault("503", platform="linkedin", times=4)
    first = extract_platform(
        "linkedin", LINKEDIN_HANDLES, sandbox.base_url, TOKEN, landing, "run-1", NOW, now=NOW,
        sleep=lambda _: None,
    )  # fmt: skip
    sandbox.clear_faults()
    assert (first.status, first.deferred) == ("failed", 1)

    retried = extract_platform(
        "linkedin", LINKEDIN_HANDLES, sandbox.base_url, TOKEN, landing, "run-1", NOW,
        now=NOW + timedelta(days=1), sleep=lambda _: None,
    )  # fmt: skip

    assert (retried.accounts_requested, retried.deferred, retried.accounts_reused) == (2, 1, 1)
    loaded = load_platform_day(
        con, landing, "linkedin", NOW.date(), "run-1", run_dir=Path(retried.landing_dir)
    )
    deferred = con.execute(
        "select account_handle from raw.platform_metrics where account_status = 'deferred'"
    ).fetchall()
    assert deferred == [("urn:li:organization:1002",)]
    assert (loaded.accounts_requested, loaded.accounts_loaded) == (2, 1)


def _load_then_die(db_path: str, landing: str, day: str) -> None:
    import os
    from datetime import date

    import social_leadership.platform_metrics as platform_metrics

    original = platform_metrics._write_audit

    def crash(*args, **kwargs):
        original(*args, **kwargs)
        os._exit(17)  # the process dies mid-transaction: no rollback, no commit

    platform_metrics._write_audit = crash
    with duckdb.connect(db_path) as con:
        platform_metrics.load_platform_day(
            con, __import__("pathlib").Path(landing), "x", date.fromisoformat(day), "crash"
        )


def test_crash_mid_load_leaves_previous_state(tmp_path, sandbox):
    db_path = tmp_path / "warehouse.duckdb"
    handles = _x_handles(sandbox)
    with duckdb.connect(str(db_path)) as con:
        ensure_schema(con)
        extract_platform("x", handles, sandbox.base_url, TOKEN, tmp_path / "l", "r1", NOW, now=NOW)
        load_platform_day(con, tmp_path / "l", "x", NOW.date(), "r1")
        before = con.execute("select * from raw.platform_metrics order by all").fetchall()
    process = multiprocessing.get_context("spawn").Process(
        target=_load_then_die, args=(str(db_path), str(tmp_path / "l"), NOW.date().isoformat())
    )
    process.start()
    process.join(60)
    assert process.exitcode == 17
    with duckdb.connect(str(db_path)) as con:
        after = con.execute("select * from raw.platform_metrics order by all").fetchall()
        audits = con.execute("select run_id from audit.platform_loads").fetchall()
    assert after == before
    assert audits == [("r1",)]


def _throttled_rerun(sandbox: SandboxServer, handles: list[str], landing: Path):
    """A second run of the day (run-2) meeting a rate limit that resets in an hour: every
    account is deferred."""
    sandbox.add_fault("429", platform="x", reset_seconds=3600)
    return extract_platform(
        "x",
        handles,
        sandbox.base_url,
        TOKEN,
        landing,
        "run-2",
        NOW,
        now=NOW,
        max_wait_seconds=1,
        sleep=lambda _: None,
    )


def test_throttled_rerun_keeps_the_days_good_counts_and_loads_its_own_landing(
    tmp_path, con, sandbox
):
    handles = _x_handles(sandbox)
    first = extract_platform(
        "x", handles, sandbox.base_url, TOKEN, tmp_path / "l", "run-1", NOW, now=NOW
    )
    load_platform_day(con, tmp_path / "l", "x", NOW.date(), "run-1")
    good = con.execute(ROWS).fetchall()

    second = _throttled_rerun(sandbox, handles, tmp_path / "l")
    assert second.deferred == len({h.casefold() for h in handles})
    outcome = load_platform_day(
        con, tmp_path / "l", "x", NOW.date(), "run-2", run_dir=Path(second.landing_dir)
    )

    assert con.execute(ROWS).fetchall() == good
    assert "kept" in outcome.message
    # Loading the first run's own landing again gives the same counts (a new loaded_at).
    load_platform_day(
        con, tmp_path / "l", "x", NOW.date(), "run-1b", run_dir=Path(first.landing_dir)
    )
    assert con.execute(ROWS).fetchall() == good


def test_a_throttled_rerun_of_a_handle_whose_case_changed_keeps_the_day_s_counts(
    tmp_path, con, sandbox
):
    # The roster's spelling changed between two runs of the day (elonmusk, then ELONMUSK):
    # the rerun's deferral replaced the day's only counts of the account.
    handles = _x_handles(sandbox)[:3]
    extract_platform("x", handles, sandbox.base_url, TOKEN, tmp_path / "l", "run-1", NOW, now=NOW)
    load_platform_day(con, tmp_path / "l", "x", NOW.date(), "run-1")
    counts = "select lower(account_handle), account_status, followers from raw.platform_metrics"
    good = sorted(con.execute(counts).fetchall())

    second = _throttled_rerun(sandbox, [h.upper() for h in handles], tmp_path / "l")
    load_platform_day(
        con, tmp_path / "l", "x", NOW.date(), "run-2", run_dir=Path(second.landing_dir)
    )

    assert sorted(con.execute(counts).fetchall()) == good


def test_throttled_rerun_keeps_the_days_answer_that_an_account_is_not_found(tmp_path, con, sandbox):
    handles = [*_x_handles(sandbox)[:3], "nosuchexec_0"]
    extract_platform("x", handles, sandbox.base_url, TOKEN, tmp_path / "l", "run-1", NOW, now=NOW)
    load_platform_day(con, tmp_path / "l", "x", NOW.date(), "run-1")
    answered = con.execute(ROWS).fetchall()
    statuses = "select account_handle, account_status from raw.platform_metrics order by all"
    assert ("nosuchexec_0", "not_found") in con.execute(statuses).fetchall()

    second = _throttled_rerun(sandbox, handles, tmp_path / "l")
    assert second.deferred == len(handles)
    load_platform_day(
        con, tmp_path / "l", "x", NOW.date(), "run-2", run_dir=Path(second.landing_dir)
    )

    # A deferral is no answer: the day keeps what the platform said, not_found too.
    assert con.execute(ROWS).fetchall() == answered


def test_a_platform_that_answers_for_none_of_its_accounts_fails_and_keeps_the_day(
    tmp_path, con, sandbox
):
    # A wrong host or path (another sandbox, a changed API) answers 200 with every account
    # not found: the day's good counts were replaced with not_found, the run green.
    handles = _x_handles(sandbox)[:4]
    extract_platform("x", handles, sandbox.base_url, TOKEN, tmp_path / "l", "run-1", NOW, now=NOW)
    load_platform_day(con, tmp_path / "l", "x", NOW.date(), "run-1")
    good = con.execute(ROWS).fetchall()
    strangers = [f"nosuchexec_{n}" for n in range(4)]

    second = extract_platform(
        "x", strangers, sandbox.base_url, TOKEN, tmp_path / "l", "run-2", NOW, now=NOW
    )
    loaded = load_platform_day(
        con, tmp_path / "l", "x", NOW.date(), "run-2", run_dir=Path(second.landing_dir)
    )

    assert (loaded.status, loaded.accounts_loaded, loaded.accounts_missing) == ("failed", 0, 4)
    assert loaded.message.startswith("every account it answered about (4) is not found")
    assert "connection slw_x" in loaded.message
    assert con.execute(ROWS).fetchall() == good
    audited = con.execute(
        "select status, accounts_missing from audit.platform_loads where run_id = 'run-2'"
    ).fetchall()
    assert audited == [("failed", 4)]


@pytest.mark.parametrize(
    ("user", "said"),
    [
        # Every account at 0 (a stub at the host, an API answering placeholders): the 0s
        # were loaded, built and published green, the gate's jump check only warning.
        (
            {"public_metrics": {"followers_count": 0, "following_count": 0, "tweet_count": 0}},
            "every account it counted (4) has 0 followers",
        ),
        # Every account without counts (an API that changed shape): a green "loaded".
        ({}, "no account of the 4 asked was answered with counts it could read"),
    ],
    ids=["zeros", "no counts"],
)
def test_a_reply_of_zeros_or_of_no_counts_for_every_account_fails_and_keeps_the_day(
    tmp_path, con, sandbox, user, said
):
    import json

    from social_leadership.landing import land_responses
    from social_leadership.platforms.base import RawResponse

    handles = _x_handles(sandbox)[:4]
    extract_platform("x", handles, sandbox.base_url, TOKEN, tmp_path / "l", "run-1", NOW, now=NOW)
    load_platform_day(con, tmp_path / "l", "x", NOW.date(), "run-1")
    good = con.execute(ROWS).fetchall()
    body = {"data": [{"id": f"1{n}", "username": h, **user} for n, h in enumerate(handles)]}
    reply = RawResponse(
        "x",
        tuple(handles),
        f"https://api.x.com/2/users/by?usernames={','.join(handles)}",
        200,
        json.dumps(body).encode(),
        NOW + timedelta(minutes=5),
        1.0,
    )
    run_dir = land_responses(tmp_path / "l", "x", NOW.date(), "run-2", [reply])

    loaded = load_platform_day(con, tmp_path / "l", "x", NOW.date(), "run-2", run_dir=run_dir)

    assert loaded.status == "failed"
    assert loaded.message.startswith(said)
    assert "connection slw_x" in loaded.message
    assert con.execute(ROWS).fetchall() == good


def test_accounts_not_found_are_counted_and_the_first_named(tmp_path, con, sandbox):
    handles = [*_x_handles(sandbox)[:2], *(f"nosuchexec_{n}" for n in range(7))]
    extract_platform("x", handles, sandbox.base_url, TOKEN, tmp_path / "l", "run-1", NOW, now=NOW)

    loaded = load_platform_day(con, tmp_path / "l", "x", NOW.date(), "run-1")

    assert (loaded.status, loaded.accounts_loaded, loaded.not_found) == ("loaded", 2, 7)
    assert loaded.not_found_examples == [f"nosuchexec_{n}" for n in range(5)]


def _bluesky_handles(server: SandboxServer) -> list[str]:
    return sorted({handle for handle, _, _ in server._bluesky.values()})


def test_an_api_that_never_answered_is_failed_not_loaded(tmp_path, con, sandbox):
    sandbox.set_fault("500", platform="x")
    try:
        outcome = extract_platform(
            "x",
            _x_handles(sandbox),
            sandbox.base_url,
            TOKEN,
            tmp_path / "l",
            "run-1",
            NOW,
            now=NOW,
            sleep=lambda _: None,
        )
    finally:
        sandbox.clear_faults()
    assert (outcome.status, outcome.transient) == ("failed", True)
    assert "gave up" in outcome.message

    loaded = load_platform_day(
        con, tmp_path / "l", "x", NOW.date(), "run-1", run_dir=Path(outcome.landing_dir)
    )

    assert (loaded.status, loaded.accounts_loaded) == ("failed", 0)
    audit = con.execute("select status, accounts_loaded, message from audit.platform_loads")
    assert [(status, count) for status, count, _ in audit.fetchall()] == [("failed", 0)]


def test_a_platform_that_gave_up_midway_is_failed_and_keeps_what_it_got(tmp_path, con, sandbox):
    handles = _bluesky_handles(sandbox)[:30]  # two batches of at most 25
    sandbox.add_fault("slow", platform="bluesky", delay_seconds=0)  # the first: answered
    sandbox.add_fault("500", platform="bluesky", times=4)  # the second: never
    try:
        outcome = extract_platform(
            "bluesky",
            handles,
            sandbox.base_url,
            None,
            tmp_path / "l",
            "run-1",
            NOW,
            now=NOW,
            sleep=lambda _: None,
        )
    finally:
        sandbox.clear_faults()
    assert (outcome.status, outcome.deferred) == ("failed", 5)

    loaded = load_platform_day(
        con, tmp_path / "l", "bluesky", NOW.date(), "run-1", run_dir=Path(outcome.landing_dir)
    )

    assert (loaded.status, loaded.accounts_loaded, loaded.accounts_missing) == ("failed", 25, 5)
    rows = con.execute(
        "select account_status, count(*) from raw.platform_metrics group by all order by all"
    ).fetchall()
    assert rows == [("deferred", 5), ("ok", 25)]


def test_a_rate_limit_deferral_is_not_a_failure(tmp_path, con, sandbox):
    sandbox.add_fault("429", platform="x", reset_seconds=3600)
    outcome = extract_platform(
        "x",
        _x_handles(sandbox),
        sandbox.base_url,
        TOKEN,
        tmp_path / "l",
        "run-1",
        NOW,
        now=NOW,
        max_wait_seconds=1,
        sleep=lambda _: None,
    )

    loaded = load_platform_day(
        con, tmp_path / "l", "x", NOW.date(), "run-1", run_dir=Path(outcome.landing_dir)
    )

    assert (outcome.status, outcome.transient) == ("landed", False)
    assert loaded.status == "loaded"
    assert "rate limited" in loaded.message


class _WithoutSyntheticHeader:
    """A loopback proxy to the sandbox that drops its X-SLW-Synthetic header: the same
    replies as a real platform API gives them, with nothing saying they are invented."""

    def __init__(self, upstream: str) -> None:
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        from social_leadership.platforms.base import SYNTHETIC_HEADER

        target = urlsplit(upstream)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                connection = http.client.HTTPConnection(target.hostname, target.port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request("GET", self.path, headers=headers)
                reply = connection.getresponse()
                body = reply.read()
                self.send_response(reply.status)
                for name, value in reply.getheaders():
                    if name.lower() not in (SYNTHETIC_HEADER.lower(), "transfer-encoding"):
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
                connection.close()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _WithoutSyntheticHeader:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_sandbox_counts_are_recorded_synthetic_even_for_real_executives(tmp_path, con, sandbox):
    # Elon Musk is a real executive of the demo roster, but the sandbox invents his counts:
    # its replies say so, and the raw rows carry it.
    extract_platform(
        "x", ["elonmusk"], sandbox.base_url, TOKEN, tmp_path / "landing", "run-1", NOW, now=NOW
    )
    load_platform_day(con, tmp_path / "landing", "x", NOW.date(), "run-1")
    rows = con.execute(
        "select account_handle, source, is_synthetic from raw.platform_metrics"
    ).fetchall()
    assert rows == [("elonmusk", "api", True)]


def test_a_reply_without_the_synthetic_header_is_real(tmp_path, con, sandbox):
    with _WithoutSyntheticHeader(sandbox.base_url) as real_api:
        extract_platform(
            "x", ["elonmusk"], real_api.base_url, TOKEN, tmp_path / "landing", "run-1", NOW, now=NOW
        )
    load_platform_day(con, tmp_path / "landing", "x", NOW.date(), "run-1")
    rows = con.execute(
        "select account_handle, account_status, is_synthetic from raw.platform_metrics"
    ).fetchall()
    assert rows == [("elonmusk", "ok", False)]


BLUESKY_PATH = "/xrpc/app.bsky.actor.getProfiles"
# What a load writes that depends on when, or in which landing, the counts were read.
SAME_AS_A_CLEAN_RUN = (
    "select platform, snapshot_date, account_handle, account_id, account_status, followers,"
    " following, posts, source, is_synthetic from raw.platform_metrics order by all"
)


def _retry_handles(server: SandboxServer) -> list[str]:
    # Two batches of at most 25; the second holds an account the platform does not know.
    return [*_bluesky_handles(server)[:29], "nobody-zz.bsky.social"]


def _extract_bluesky(sandbox: SandboxServer, landing: Path, run_id: str, handles: list[str]):
    return extract_platform(
        "bluesky",
        handles,
        sandbox.base_url,
        None,
        landing,
        run_id,
        NOW,
        now=NOW,
        sleep=lambda _: None,
    )


def _actors_asked(sandbox: SandboxServer, since: int) -> list[list[str]]:
    from urllib.parse import parse_qs

    return [
        parse_qs(query)["actors"]
        for path, query in sandbox.request_log[since:]
        if path == BLUESKY_PATH
    ]


def _clean_run_rows(tmp_path: Path, sandbox: SandboxServer, handles: list[str]) -> list[tuple]:
    landing = tmp_path / "clean-landing"
    outcome = _extract_bluesky(sandbox, landing, "clean-run", handles)
    assert (outcome.status, outcome.requests_sent) == ("landed", 2)
    with duckdb.connect(str(tmp_path / "clean.duckdb")) as clean:
        ensure_schema(clean)
        load_platform_day(
            clean, landing, "bluesky", NOW.date(), "clean-run", run_dir=Path(outcome.landing_dir)
        )
        return clean.execute(SAME_AS_A_CLEAN_RUN).fetchall()


def _failed_first_try(sandbox: SandboxServer, landing: Path, handles: list[str]):
    """Run run-1's first try: its first batch read, every attempt at the second failing."""
    sandbox.add_fault("slow", platform="bluesky", delay_seconds=0)
    sandbox.add_fault("503", platform="bluesky", times=4)
    try:
        return _extract_bluesky(sandbox, landing, "run-1", handles)
    finally:
        sandbox.clear_faults()


def test_a_retry_asks_only_for_the_accounts_the_failed_try_left_and_loads_as_a_clean_run(
    tmp_path, con, sandbox
):
    handles = _retry_handles(sandbox)
    landing = tmp_path / "l"
    failed = _failed_first_try(sandbox, landing, handles)
    assert (failed.status, failed.transient, failed.deferred) == ("failed", True, 5)

    before = len(sandbox.request_log)
    retried = _extract_bluesky(sandbox, landing, "run-1", handles)  # Airflow's next try

    assert _actors_asked(sandbox, before) == [handles[25:]]
    assert (retried.status, retried.requests_sent, retried.accounts_reused) == ("landed", 1, 25)
    loaded = load_platform_day(
        con, landing, "bluesky", NOW.date(), "run-1", run_dir=Path(retried.landing_dir)
    )
    assert (loaded.status, loaded.accounts_loaded, loaded.accounts_missing) == ("loaded", 29, 1)
    assert loaded.requests_sent == 6  # the run's: 1 + 4 attempts, then 1
    rows = con.execute(SAME_AS_A_CLEAN_RUN).fetchall()
    assert rows == _clean_run_rows(tmp_path, sandbox, handles)
    assert len(rows) == len(handles)


def test_a_new_run_of_the_day_asks_for_every_account(tmp_path, con, sandbox):
    handles = _retry_handles(sandbox)
    landing = tmp_path / "l"
    sandbox.add_fault("slow", platform="bluesky", delay_seconds=0)
    sandbox.add_fault("503", platform="bluesky", times=4)
    try:
        _extract_bluesky(sandbox, landing, "run-1", handles)
    finally:
        sandbox.clear_faults()

    before = len(sandbox.request_log)
    rerun = _extract_bluesky(sandbox, landing, "run-2", handles)

    # Every account, the first batch's by the DIDs the failed try taught.
    assert [len(actors) for actors in _actors_asked(sandbox, before)] == [25, 5]
    assert (rerun.status, rerun.requests_sent, rerun.accounts_reused) == ("landed", 2, 0)


def test_a_try_after_a_successful_one_asks_for_every_account(tmp_path, sandbox):
    # A task cleared after it succeeded asks again: only a failed try's replies are reused.
    handles = _retry_handles(sandbox)
    _extract_bluesky(sandbox, tmp_path / "l", "run-1", handles)
    before = len(sandbox.request_log)
    again = _extract_bluesky(sandbox, tmp_path / "l", "run-1", handles)
    assert len(_actors_asked(sandbox, before)) == 2
    assert again.accounts_reused == 0


def test_a_refusal_midway_lands_what_was_read_and_a_later_try_asks_only_for_the_rest(
    tmp_path, con, sandbox
):
    handles = _retry_handles(sandbox)
    landing = tmp_path / "l"
    sandbox.add_fault("slow", platform="bluesky", delay_seconds=0)  # the first batch: read
    sandbox.add_fault("echo", platform="bluesky", status=403)  # the second: refused
    try:
        with pytest.raises(PlatformError, match="403") as refused:
            _extract_bluesky(sandbox, landing, "run-1", handles)
    finally:
        sandbox.clear_faults()
    assert refused.value.landing_dir is not None
    partial = load_platform_day(
        con, landing, "bluesky", NOW.date(), "run-1", run_dir=Path(refused.value.landing_dir)
    )
    assert (partial.status, partial.accounts_loaded, partial.accounts_missing) == ("failed", 25, 5)

    before = len(sandbox.request_log)
    retried = _extract_bluesky(sandbox, landing, "run-1", handles)

    assert _actors_asked(sandbox, before) == [handles[25:]]
    load_platform_day(
        con, landing, "bluesky", NOW.date(), "run-1", run_dir=Path(retried.landing_dir)
    )
    assert con.execute(SAME_AS_A_CLEAN_RUN).fetchall() == _clean_run_rows(
        tmp_path, sandbox, handles
    )


def test_accounts_read_after_midnight_are_never_labelled_with_the_day_before(
    tmp_path, con, sandbox
):
    """An extraction that crossed midnight (UTC) read its later batches on the next day:
    those counts are not the run's day's. They are deferred (the day keeps an earlier
    answer, if it has one) and no row of the day holds counts read on another day."""
    handles = [*_x_handles(sandbox), *(f"nosuchexec_{n}" for n in range(120))]
    day_end = datetime.combine(NOW.date(), datetime.max.time(), tzinfo=UTC)
    extract_platform("x", handles, sandbox.base_url, TOKEN, tmp_path / "l", "run-1", NOW, now=NOW)
    load_platform_day(con, tmp_path / "l", "x", NOW.date(), "run-1")
    earlier = con.execute(ROWS).fetchall()
    ticks = iter([day_end - timedelta(seconds=1), day_end + timedelta(seconds=1)])

    late = extract_platform(
        "x",
        handles,
        sandbox.base_url,
        TOKEN,
        tmp_path / "l",
        "run-2",
        day_end - timedelta(minutes=1),
        now=day_end - timedelta(minutes=1),
        observed_clock=lambda: next(ticks, day_end + timedelta(seconds=2)),
    )
    assert late.requests_sent == -(-len(handles) // 100) > 1
    outcome = load_platform_day(
        con, tmp_path / "l", "x", NOW.date(), "run-2", run_dir=Path(late.landing_dir)
    )

    crossed = con.execute(
        "select count(*) from raw.platform_metrics "
        "where cast(timezone('UTC', observed_at) as date) <> snapshot_date"
    ).fetchone()
    assert crossed == (0,)
    after_midnight = len(handles) - 100
    assert f"{after_midnight} account(s) answered after {NOW.date()} ended (UTC)" in outcome.message
    assert outcome.accounts_missing >= after_midnight
    # The first batch is run-2's answer; the later ones keep run-1's answer of the day.
    by_landing = dict(
        con.execute(
            "select landing_path = ?, count(*) from raw.platform_metrics group by all",
            [late.landing_dir],
        ).fetchall()
    )
    assert by_landing == {True: 100, False: after_midnight}
    assert len(con.execute(ROWS).fetchall()) == len(earlier)


def test_a_retry_after_midnight_loads_what_the_failed_try_read_on_its_day(tmp_path, con, sandbox):
    """A try that failed on its day, retried by Airflow after midnight (UTC): nothing more
    is asked (the counts now would be the next day's), and what the failed try read on its
    day is loaded for it instead of being skipped as a backfill."""
    handles = _retry_handles(sandbox)
    landing = tmp_path / "l"
    failed = _failed_first_try(sandbox, landing, handles)
    assert failed.status == "failed"
    before = len(sandbox.request_log)

    retried = extract_platform(
        "bluesky",
        handles,
        sandbox.base_url,
        None,
        landing,
        "run-1",
        NOW,
        now=NOW + timedelta(days=1),
        sleep=lambda _: None,
    )

    assert len(sandbox.request_log) == before
    assert (retried.status, retried.snapshot_date, retried.requests_sent) == (
        "failed",
        NOW.date(),
        0,
    )
    assert not retried.transient  # no later try could ask for more
    assert (retried.accounts_reused, retried.deferred) == (25, 5)
    # The platform failed on its day, for the first try's reason, as before midnight.
    assert retried.message.startswith(failed.message)
    assert "ended (UTC) before this try" in retried.message
    loaded = load_platform_day(
        con, landing, "bluesky", NOW.date(), "run-1", run_dir=Path(retried.landing_dir)
    )
    assert loaded.status == "failed"
    assert (loaded.accounts_loaded, loaded.accounts_missing) == (25, 5)
    assert con.execute(
        "select count(*) from raw.platform_metrics where snapshot_date = ? and followers > 0",
        [NOW.date()],
    ).fetchone() == (25,)
    # Another run for that day (a backfill, a catchup) still asks and loads nothing.
    other = extract_platform(
        "bluesky", handles, sandbox.base_url, None, landing, "run-2", NOW,
        now=NOW + timedelta(days=1),
    )  # fmt: skip
    assert other.status == "skipped_backfill"


def test_a_handle_answered_by_another_account_than_the_day_before_is_said(tmp_path, con):
    # An X username freed by a rename and taken by someone else: the executive's series
    # went on with that person's counts, loaded green, said nowhere.
    import json

    from social_leadership.landing import land_responses
    from social_leadership.platforms.base import RawResponse
    from social_leadership.tasks import _load_attention

    handles = ("alpha", "beta", "gamma")

    def landed(day, ids, run_id):
        users = [
            {"id": i, "username": h, "public_metrics": {"followers_count": 1000 + n}}
            for n, (h, i) in enumerate(zip(handles, ids, strict=True))
        ]
        reply = RawResponse(
            "x",
            handles,
            f"https://api.x.com/2/users/by?usernames={','.join(handles)}",
            200,
            json.dumps({"data": users}).encode(),
            datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=6),
            1.0,
        )
        run_dir = land_responses(tmp_path / "l", "x", day, run_id, [reply])
        return load_platform_day(con, tmp_path / "l", "x", day, run_id, run_dir=run_dir)

    before = NOW.date() - timedelta(days=1)
    assert landed(before, ["101", "102", "103"], "run-1").changed == 0
    outcome = landed(NOW.date(), ["101", "999", "103"], "run-2")

    assert (outcome.status, outcome.accounts_loaded) == ("loaded", 3)
    assert (outcome.changed, outcome.changed_examples) == (1, ["beta (id 999, was 102)"])
    extract = type("Extract", (), {"platform": "x", "deferred": 0})()
    [fact] = _load_attention("load_x", extract, outcome)
    assert fact.what.startswith(
        "platform x: 1 of 3 accounts answered by another account than before (the handle "
        "taken by someone else, or an account made anew? check the roster): beta (id 999, "
        "was 102)"
    )


def test_a_mastodon_account_that_moved_is_said_in_the_run_s_alert(tmp_path, con):
    import json

    from social_leadership.landing import land_responses
    from social_leadership.platforms.base import RawResponse
    from social_leadership.tasks import _load_attention

    account = {
        "id": "7",
        "acct": "gina",
        "followers_count": 3,
        "moved": {"id": "88", "acct": "gina@new.example", "followers_count": 21004},
    }
    reply = RawResponse(
        "mastodon",
        ("gina@m.example",),
        "https://m.example/api/v1/accounts/lookup?acct=gina%40m.example",
        200,
        json.dumps(account).encode(),
        NOW,
        1.0,
    )
    run_dir = land_responses(tmp_path / "l", "mastodon", NOW.date(), "run-1", [reply])

    outcome = load_platform_day(
        con, tmp_path / "l", "mastodon", NOW.date(), "run-1", run_dir=run_dir
    )

    assert (outcome.moved, outcome.moved_examples) == (1, ["gina@m.example to gina@new.example"])
    assert con.execute(
        "select account_id, account_status, followers from raw.platform_metrics"
    ).fetchall() == [("7", "ok", 21004)]
    extract = type("Extract", (), {"platform": "mastodon", "deferred": 0})()
    [fact] = _load_attention("load_mastodon", extract, outcome)
    assert fact.what == (
        "platform mastodon: 1 of 1 accounts moved to another account (counted by the new one "
        "under the roster's handle, which keeps the series: a new handle in the roster starts "
        "a new one): gina@m.example to gina@new.example"
    )
