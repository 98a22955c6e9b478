from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from slw_testing import SandboxProcess

from social_leadership.demo.synthetic import (
    SYNTHETIC_FOLLOWERS_MAX,
    SYNTHETIC_FOLLOWERS_MIN,
    synthetic_metrics,
)
from social_leadership.roster import Account, Executive, Roster
from social_leadership.sandbox.server import BLUESKY_PATH, X_PATH, SandboxServer
from social_leadership.settings import REPO_ROOT

DAY = date(2026, 3, 2)
BLUESKY = [f"person{n:02d}.bsky.social" for n in range(30)]
X_NAMES = ["Person_A", "Person_B"]


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def small_roster() -> Roster:
    executives = [
        Executive(f"e{n:02d}", f"Person {n}", "CEO", "Synthetic Co", "DE", "Energy", True)
        for n in range(len(BLUESKY))
    ]
    accounts = [Account(f"e{n:02d}", "bluesky", h) for n, h in enumerate(BLUESKY)]
    accounts += [Account(f"e{n:02d}", "x", name) for n, name in enumerate(X_NAMES)]
    return Roster(executives=executives, accounts=accounts)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 6, tzinfo=UTC))


@pytest.fixture
def sandbox(clock: Clock) -> Iterator[SandboxServer]:
    with SandboxServer(small_roster(), clock=clock) as server:
        yield server


def get_profiles(base_url: str, actors: list[str]) -> httpx.Response:
    return httpx.get(base_url + BLUESKY_PATH, params=[("actors", a) for a in actors])


def test_synthetic_metrics_are_deterministic_and_smooth() -> None:
    today = synthetic_metrics("bluesky", "someone.bsky.social", DAY)
    assert today == synthetic_metrics("bluesky", "someone.bsky.social", DAY)
    assert today == synthetic_metrics("bluesky", "SOMEONE.bsky.social", DAY)
    assert today != synthetic_metrics("x", "someone.bsky.social", DAY)

    series = [synthetic_metrics("x", "steady_one", DAY + timedelta(days=n)) for n in range(400)]
    for (f0, _, p0), (f1, _, p1) in itertools.pairwise(series):
        assert abs(f1 - f0) <= max(2, 0.005 * f0)
        assert p1 >= p0


def test_synthetic_magnitudes() -> None:
    origin = date(2025, 1, 1)
    followers = [synthetic_metrics("bluesky", f"h{n}.bsky.social", origin)[0] for n in range(500)]
    assert min(followers) >= SYNTHETIC_FOLLOWERS_MIN
    assert max(followers) <= SYNTHETIC_FOLLOWERS_MAX
    assert min(followers) < 2_000
    assert max(followers) > 200_000
    assert synthetic_metrics("x", "elonmusk", DAY)[0] > 100_000_000
    assert (
        synthetic_metrics("x", "JoeKaeser", DAY)[0] < synthetic_metrics("x", "satyanadella", DAY)[0]
    )


def test_same_day_same_counts_next_day_smoothly_different(
    sandbox: SandboxServer, clock: Clock
) -> None:
    first = get_profiles(sandbox.base_url, BLUESKY[:3]).json()
    again = get_profiles(sandbox.base_url, BLUESKY[:3]).json()
    clock.moment += timedelta(days=1)
    tomorrow = get_profiles(sandbox.base_url, BLUESKY[:3]).json()

    assert first == again
    for before, after in zip(first["profiles"], tomorrow["profiles"], strict=True):
        assert before["did"] == after["did"]
        assert abs(after["followersCount"] - before["followersCount"]) <= max(
            2, 0.005 * before["followersCount"]
        )
        assert after["postsCount"] >= before["postsCount"]
        expected = synthetic_metrics("bluesky", before["handle"], DAY)
        assert (before["followersCount"], before["followsCount"], before["postsCount"]) == expected


def test_bluesky_batch_limit_and_unknown_actors(sandbox: SandboxServer) -> None:
    too_many = get_profiles(sandbox.base_url, BLUESKY[:26])
    assert too_many.status_code == 400
    assert too_many.json()["error"] == "InvalidRequest"

    ok = get_profiles(sandbox.base_url, [*BLUESKY[:24], "unknown.bsky.social"])
    assert ok.status_code == 200
    assert [p["handle"] for p in ok.json()["profiles"]] == BLUESKY[:24]
    for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"):
        assert header in ok.headers
    assert ok.headers["RateLimit-Policy"] == "3000;w=300"


@pytest.mark.parametrize(
    "actor",
    [
        *("a.bsky.social,b.bsky.social", "not a handle", "@a.bsky.social", "bsky.social."),
        *("x", "a.bsky.social\n", f"{'a' * 63}.{'b' * 63}.{'c' * 63}.{'d' * 63}.social"),
    ],
)
def test_bluesky_refuses_the_request_for_an_actor_that_is_no_handle_or_did(
    sandbox: SandboxServer, actor: str
) -> None:
    # As the AppView checks each actor (the at-identifier format): two actors joined by a
    # comma, a name with spaces or an at sign, a bare word are a 400 for the whole request.
    refused = get_profiles(sandbox.base_url, [BLUESKY[0], actor])
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "InvalidRequest",
        "message": "Error: actors/1 must be a valid did or a handle",
    }
    # Handles and DIDs of every form are asked for, found or not.
    fine = get_profiles(
        sandbox.base_url,
        [BLUESKY[0], "did:plc:abcdefghijklmnopqrstuvwx", "did:web:example.com", "a-b.example.org"],
    )
    assert fine.status_code == 200
    assert [p["handle"] for p in fine.json()["profiles"]] == [BLUESKY[0]]


def test_x_auth_batch_limit_and_headers(sandbox: SandboxServer) -> None:
    url = sandbox.base_url + X_PATH
    params = {"usernames": "Person_A,nobody", "user.fields": "public_metrics"}

    unauthorized = httpx.get(url, params=params)
    assert unauthorized.status_code == 401
    wrong = httpx.get(url, params=params, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401

    auth = {"Authorization": "Bearer sandbox-token"}
    ok = httpx.get(url, params=params, headers=auth)
    assert ok.status_code == 200
    body = ok.json()
    assert [u["username"] for u in body["data"]] == ["Person_A"]
    assert set(body["data"][0]["public_metrics"]) == {
        "followers_count",
        "following_count",
        "tweet_count",
        "listed_count",
    }
    assert body["errors"][0]["resource_id"] == "nobody"
    for header in ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"):
        assert header in ok.headers
    assert ok.headers["x-rate-limit-limit"] == "300"

    too_many = httpx.get(
        url, params={"usernames": ",".join(f"u{n}" for n in range(101))}, headers=auth
    )
    assert too_many.status_code == 400
    assert too_many.json()["type"] == "https://api.twitter.com/2/problems/invalid-request"


def test_budget_exhaustion_returns_429_with_reset(clock: Clock) -> None:
    with SandboxServer(small_roster(), clock=clock, bluesky_limit=2) as server:
        responses = [get_profiles(server.base_url, BLUESKY[:1]) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[1].headers["RateLimit-Remaining"] == "0"
    limited = responses[2]
    assert limited.json()["error"] == "RateLimitExceeded"
    assert 0 < int(limited.headers["Retry-After"]) <= 300
    assert int(limited.headers["RateLimit-Reset"]) > time.time()


def test_faults_are_served_in_order(sandbox: SandboxServer) -> None:
    sandbox.add_fault("500")
    sandbox.add_fault("malformed_json")
    sandbox.add_fault("429", reset_seconds=30)

    codes = [get_profiles(sandbox.base_url, BLUESKY[:1]) for _ in range(4)]

    assert [r.status_code for r in codes] == [500, 200, 429, 200]
    with pytest.raises(json.JSONDecodeError):
        json.loads(codes[1].content)
    assert codes[2].headers["Retry-After"] == "30"
    assert len(sandbox.request_log) == 4


def test_unknown_path_is_404(sandbox: SandboxServer) -> None:
    assert httpx.get(sandbox.base_url + "/nothing").status_code == 404


def test_default_roster_is_the_bundled_one() -> None:
    with SandboxServer() as server:
        response = httpx.get(
            server.base_url + X_PATH,
            params={"usernames": "elonmusk,JoeKaeser", "user.fields": "public_metrics"},
            headers={"Authorization": "Bearer sandbox-token"},
        )
    assert [u["username"] for u in response.json()["data"]] == ["elonmusk", "JoeKaeser"]


def test_command_line_runs_until_sigterm(tmp_path: Path) -> None:
    with SandboxProcess(tmp_path / "ready.txt") as sandbox:
        base_url = sandbox.base_url
        assert base_url.startswith("http://127.0.0.1:")
        assert get_profiles(base_url, ["nobody.bsky.social"]).json() == {"profiles": []}
    stdout = sandbox.stdout
    assert sandbox.returncode == 0
    assert f"sandbox listening on {base_url}" in stdout
    # The bundled roster has no Facebook Page, Instagram business account or LinkedIn
    # organization: the stand-ins served instead are named at startup.
    assert "facebook: the roster has none; serving synthetic sandbox_page_1" in stdout
    assert "instagram: the roster has none; serving synthetic sandbox_business_1" in stdout
    assert "linkedin: the roster has none; serving synthetic urn:li:organization:1001" in stdout


def test_the_connections_file_points_airflow_s_connections_at_the_sandbox(tmp_path: Path) -> None:
    # A newcomer had to read SandboxServer.connection_env to point slw dags test at it.
    connections = tmp_path / "sandbox.env"
    reader = (
        "from social_leadership.orchestration import airflow_connection\n"
        "import json\n"
        "found = {p: airflow_connection('slw_' + p) for p in ('x', 'youtube', 'instagram')}\n"
        "print(json.dumps({p: [c.host, c.password, c.login] for p, c in found.items()}))\n"
    )
    with SandboxProcess(tmp_path / "ready.txt", "--connections-file", str(connections)) as box:
        read = subprocess.run(
            ["bash", "-c", 'set -a; . "$1"; set +a; exec "$2" -c "$3"', "bash",
             str(connections), sys.executable, reader],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "include")},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )  # fmt: skip
        found = json.loads(read.stdout.strip().splitlines()[-1])
        mode = connections.stat().st_mode & 0o777
        answer = httpx.get(
            found["x"][0] + X_PATH,
            params={"usernames": "JoeKaeser", "user.fields": "public_metrics"},
            headers={"Authorization": f"Bearer {found['x'][1]}"},
        )
    assert found["x"][:2] == [box.base_url, "sandbox-token"]
    assert found["youtube"][:2] == [box.base_url, "sandbox-key"]
    assert found["instagram"][2] == "17841400000000001"
    assert answer.status_code == 200
    assert answer.json()["data"][0]["username"] == "JoeKaeser"
    # It holds the token: its owner's alone.
    assert mode == 0o600
    assert f"connections slw_* to it in {connections}" in box.stdout
    # Gone with the sandbox: it would send a later run to a dead port.
    assert not connections.exists()


@pytest.mark.parametrize(
    ("error", "routine"),
    [
        (BrokenPipeError(32, "Broken pipe"), True),
        (ConnectionResetError(), True),
        (KeyError("x"), False),
    ],
)
def test_a_client_hanging_up_is_not_printed_but_a_real_failure_is_logged(
    error: BaseException,
    routine: bool,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from social_leadership.sandbox.server import _QuietHTTPServer

    server = _QuietHTTPServer(("127.0.0.1", 0), http_handler_stub())
    try:
        caplog.set_level("DEBUG", logger="social_leadership.sandbox.server")
        try:
            raise error
        except BaseException:
            server.handle_error(None, ("127.0.0.1", 5555))
    finally:
        server.server_close()

    assert "Exception occurred during processing of request" not in capfd.readouterr().err
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert (len(errors) == 0) is routine
    if not routine:
        assert errors[0].exc_info is not None


def http_handler_stub() -> type:
    from http.server import BaseHTTPRequestHandler

    return BaseHTTPRequestHandler
