"""Contract tests: every connector against the sandbox, fault-free and through every fault."""

from __future__ import annotations

import json
import math
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import certifi
import httpx
import pytest

from social_leadership.demo.synthetic import synthetic_account_id, synthetic_metrics
from social_leadership.platforms import build_connector, connector_class
from social_leadership.platforms.base import (
    AccountStatus,
    Connector,
    PlatformError,
    RawResponse,
)
from social_leadership.roster import Account, Executive, Roster
from social_leadership.sandbox.server import (
    SANDBOX_IG_USER_ID,
    SANDBOX_TOKEN,
    SANDBOX_YOUTUBE_KEY,
    SandboxServer,
    synthetic_channel_id,
)

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
SECRET = "s3cret-Token-9f"
PLATFORMS = (
    "x",
    "bluesky",
    "mastodon",
    "youtube",
    "facebook",
    "instagram",
    "linkedin",
    "threads",
)
# Platforms whose throttle signal names a reset time (the others only say "stop").
NAMES_RESET = {"x", "bluesky", "mastodon"}
COUNT = 120


def handle(platform: str, number: int) -> str:
    return {
        "x": f"acct_{number:04d}",
        "bluesky": f"acct{number:04d}.bsky.social",
        "mastodon": f"acct{number:04d}@mastodon.example",
        "youtube": synthetic_channel_id(f"@acct{number:04d}"),
        "facebook": f"acct.page{number:04d}",
        "instagram": f"acct.ig{number:04d}",
        "linkedin": f"urn:li:organization:{1000 + number}",
        "threads": f"acct.th{number:04d}",
    }[platform]


UNKNOWN = {
    "x": "nobody_here",
    "bluesky": "nobody.bsky.social",
    "mastodon": "nobody@mastodon.example",
    "youtube": "UCnobodynobodynobodynobo",
    "facebook": "nobody.page",
    "instagram": "nobody.ig",
    "linkedin": "urn:li:organization:1",
    "threads": "nobody.th",
}


def roster() -> Roster:
    executives = [
        Executive(f"e{n:04d}", f"Exec {n}", "CEO", "Synthetic Co", "DE", "Energy", True)
        for n in range(COUNT)
    ]
    accounts = [
        Account(f"e{n:04d}", platform, handle(platform, n))
        for n in range(COUNT)
        for platform in PLATFORMS
    ]
    return Roster(executives=executives, accounts=accounts)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(roster(), token=SECRET, youtube_key=SECRET, clock=lambda: NOW) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(server: SandboxServer) -> Iterator[SandboxServer]:
    server.clear_faults()
    # Facebook and Instagram draw on one app's budget: each test starts with it full.
    server.reset_budgets()
    yield server
    server.clear_faults()


def make(platform: str, sandbox: SandboxServer, **options: object) -> Connector:
    options.setdefault("sleep", Sleeps())
    options.setdefault("backoff_seconds", 0.01)
    if platform == "mastodon":
        options.setdefault(
            "account_ids",
            {
                handle("mastodon", n): synthetic_account_id("mastodon", handle("mastodon", n))
                for n in range(COUNT)
            },
        )
    login = SANDBOX_IG_USER_ID if platform == "instagram" else None
    credentials = None if platform in ("bluesky", "mastodon") else SECRET
    return build_connector(platform, sandbox.base_url, credentials, login, **options)  # type: ignore[arg-type]


def statuses(connector: Connector, responses: list) -> dict[str, AccountStatus]:
    parse = connector_class(connector.platform).parse
    return {o.account_handle: o.status for r in responses for o in parse(r)}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_fault_free_run_uses_the_fewest_requests_and_reports_unknowns(
    platform: str, sandbox: SandboxServer
) -> None:
    connector = make(platform, sandbox)
    handles = [handle(platform, n) for n in range(COUNT)]

    result = connector.extract([*handles, handles[0], UNKNOWN[platform]])

    # The unknown Mastodon handle has no id yet, so it needs a lookup of its own.
    expected = (
        math.ceil(COUNT / connector.batch_size) + 1
        if platform == "mastodon"
        else math.ceil((COUNT + 1) / connector.batch_size)
    )
    assert result.requests_sent == expected
    assert result.is_complete
    seen = statuses(connector, result.responses)
    assert len(seen) == COUNT + 1
    assert seen[UNKNOWN[platform]] is AccountStatus.NOT_FOUND
    assert {seen[h] for h in handles} == {AccountStatus.OK}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_throttle_beyond_the_bound_stops_at_once_and_defers_the_rest(
    platform: str, sandbox: SandboxServer
) -> None:
    sandbox.set_fault("429", platform=platform, reset_seconds=3600)
    connector = make(platform, sandbox, max_wait_seconds=60)
    handles = [handle(platform, n) for n in range(COUNT)]

    result = connector.extract(handles)

    assert result.requests_sent == 1  # never keeps sending into a throttle
    assert sorted(result.deferred_handles) == sorted(handles)
    assert result.responses == []
    assert result.message is not None
    assert "rate limited" in result.message


@pytest.mark.parametrize("platform", sorted(NAMES_RESET))
def test_throttle_with_a_short_named_reset_waits_then_completes(
    platform: str, sandbox: SandboxServer
) -> None:
    sandbox.add_fault("429", platform=platform, reset_seconds=20)
    sleeps = Sleeps()
    connector = make(platform, sandbox, sleep=sleeps, max_wait_seconds=60)

    result = connector.extract([handle(platform, n) for n in range(3)])

    assert result.is_complete
    assert result.requests_sent == 2
    assert len(sleeps) == 1
    assert 15 <= sleeps[0] <= 21


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    "kind", ["500", "503", "malformed_json", "truncated_json", "error_200", "drop"]
)
def test_transient_faults_are_retried_with_backoff(
    platform: str, kind: str, sandbox: SandboxServer
) -> None:
    sandbox.add_fault(kind, platform=platform, times=2)  # type: ignore[arg-type]
    sleeps = Sleeps()
    connector = make(platform, sandbox, sleep=sleeps)

    result = connector.extract([handle(platform, 0), handle(platform, 1)])

    assert result.is_complete, result.message
    assert {s for s in statuses(connector, result.responses).values()} == {AccountStatus.OK}
    assert result.requests_sent == 2 + (2 if connector.batch_size == 1 else 1)
    assert len(sleeps) == 2
    assert sleeps[1] > sleeps[0] * 0.5


@pytest.mark.parametrize("platform", PLATFORMS)
def test_persistent_outage_gives_up_bounded_and_defers(
    platform: str, sandbox: SandboxServer
) -> None:
    sandbox.set_fault("500", platform=platform)
    connector = make(platform, sandbox, max_attempts=3)

    result = connector.extract([handle(platform, 0)])

    assert result.requests_sent == 3
    assert result.deferred_handles == [handle(platform, 0)]
    assert "gave up after 3 attempts" in (result.message or "")


ONE_A_REQUEST = ["facebook", "instagram", "linkedin", "threads"]


@pytest.mark.parametrize("platform", ONE_A_REQUEST)
def test_an_account_whose_replies_keep_failing_leaves_the_accounts_after_it_read(
    platform: str, sandbox: SandboxServer
) -> None:
    # One account a request: an account the API failed every time (a proxy's 502) kept
    # every account after it unread, in every try of the run.
    sandbox.add_fault("500", platform=platform, times=3)
    connector = make(platform, sandbox, max_attempts=3)
    handles = [handle(platform, n) for n in range(4)]

    result = connector.extract(handles)

    assert result.gave_up
    assert result.deferred_handles == handles[:1]
    assert statuses(connector, result.responses) == dict.fromkeys(handles[1:], AccountStatus.OK)
    assert result.requests_sent == 3 + 3
    assert "gave up after 3 attempts" in (result.message or "")


@pytest.mark.parametrize("platform", ONE_A_REQUEST)
def test_an_outage_is_given_up_after_one_account_and_one_request_more(
    platform: str, sandbox: SandboxServer
) -> None:
    sandbox.set_fault("500", platform=platform)
    connector = make(platform, sandbox, max_attempts=3)
    handles = [handle(platform, n) for n in range(4)]

    result = connector.extract(handles)

    assert result.gave_up
    assert result.requests_sent == 3 + 1
    assert result.deferred_handles == handles
    assert result.message is not None
    assert "gave up after 3 attempts; the next request failed too: 3 accounts left unread" in (
        result.message
    )


@pytest.mark.parametrize("platform", ["x", "youtube", "facebook", "threads"])
def test_slow_replies_time_out_and_are_retried(platform: str, sandbox: SandboxServer) -> None:
    sandbox.add_fault("slow", platform=platform, delay_seconds=1.0)
    connector = make(platform, sandbox, timeout_seconds=0.3)

    result = connector.extract([handle(platform, 0)])

    assert result.is_complete
    assert result.requests_sent == 2


@pytest.mark.parametrize(
    "platform", ["x", "youtube", "facebook", "instagram", "linkedin", "threads"]
)
def test_secrets_never_reach_urls_or_errors(platform: str, sandbox: SandboxServer) -> None:
    sandbox.set_fault("500", platform=platform)
    failing = make(platform, sandbox, max_attempts=1)
    failed = failing.extract([handle(platform, 0)])
    sandbox.clear_faults()
    ok = make(platform, sandbox).extract([handle(platform, 0)])
    wrong = build_connector(
        platform,
        sandbox.base_url,
        "wrong-" + SECRET,
        SANDBOX_IG_USER_ID,
        sleep=Sleeps(),
    )

    with pytest.raises(PlatformError) as raised:
        wrong.extract([handle(platform, 0)])

    texts = [failed.message or "", str(raised.value), repr(failing)]
    texts += [r.request_url for r in ok.responses]
    assert all(SECRET not in text for text in texts)


def test_sandbox_enforces_batch_limits_and_auth(sandbox: SandboxServer) -> None:
    base = sandbox.base_url
    ids = ",".join(handle("youtube", n) for n in range(51))
    assert (
        httpx.get(f"{base}/youtube/v3/channels?part=statistics&id={ids}&key={SECRET}").json()[
            "error"
        ]["errors"][0]["reason"]
        == "invalidFilters"
    )
    assert httpx.get(f"{base}/youtube/v3/channels?part=statistics&id=x&key=bad").status_code == 400
    many = "&".join(f"id[]={n}" for n in range(41))
    assert httpx.get(f"{base}/api/v1/accounts?{many}").status_code == 422
    page = httpx.get(f"{base}/v21.0/{handle('facebook', 0)}?fields=followers_count")
    assert page.json()["error"]["code"] == 190
    assert httpx.get(f"{base}/v2/networkSizes/urn:li:organization:1001").status_code == 401
    lookup = httpx.get(f"{base}/v1.0/profile_lookup?username={handle('threads', 0)}")
    assert lookup.json()["error"]["code"] == 190


def test_youtube_counts_are_strings_rounded_and_may_be_hidden() -> None:
    channel = "@hidden_one"
    with SandboxServer(
        Roster(
            executives=[Executive("e1", "E", "CEO", "Co", "DE", "Energy", True)],
            accounts=[Account("e1", "youtube", channel), Account("e1", "youtube", "@shown")],
        ),
        youtube_hidden=(channel,),
        clock=lambda: NOW,
    ) as server:
        reply = httpx.get(
            f"{server.base_url}/youtube/v3/channels",
            params={"part": "statistics", "forHandle": "@shown", "key": SANDBOX_YOUTUBE_KEY},
        ).json()
        stats = reply["items"][0]["statistics"]
        assert isinstance(stats["subscriberCount"], str)
        connector = build_connector("youtube", server.base_url, SANDBOX_YOUTUBE_KEY, sleep=Sleeps())
        result = connector.extract([channel, "@shown"])
    seen = statuses(connector, result.responses)
    assert seen == {channel: AccountStatus.HIDDEN, "@shown": AccountStatus.OK}


def test_mastodon_without_known_ids_looks_up_one_by_one_and_learns_ids(
    sandbox: SandboxServer,
) -> None:
    connector = make("mastodon", sandbox, account_ids={})
    handles = [handle("mastodon", n) for n in range(3)]

    result = connector.extract(handles)

    assert result.requests_sent == 3
    parse = connector_class("mastodon").parse
    ids = {o.account_handle: o.account_id for r in result.responses for o in parse(r)}
    assert ids[handles[0]] == synthetic_account_id("mastodon", handles[0])


def test_linkedin_members_are_never_requested(sandbox: SandboxServer) -> None:
    connector = make("linkedin", sandbox)

    result = connector.extract(["satyanadella", handle("linkedin", 0)])

    assert result.requests_sent == 1
    assert [r.requested_handles for r in result.responses] == [(handle("linkedin", 0),)]


def test_instagram_needs_the_own_account_id() -> None:
    with pytest.raises(PlatformError, match="own business account id"):
        build_connector("instagram", "http://127.0.0.1:1", SANDBOX_TOKEN, None)


def test_threads_reads_follower_count_singular_and_leaves_posts_null(
    sandbox: SandboxServer,
) -> None:
    reply = httpx.get(
        f"{sandbox.base_url}/v1.0/profile_lookup",
        params={"username": handle("threads", 0), "fields": "username,follower_count"},
        headers={"Authorization": f"Bearer {SECRET}"},
    ).json()
    assert "followers_count" not in reply
    connector = make("threads", sandbox)

    result = connector.extract([handle("threads", 0)])

    [observation] = connector_class("threads").parse(result.responses[0])
    assert observation.followers == reply["follower_count"]
    assert observation.status is AccountStatus.OK
    assert observation.posts is None


def test_threads_also_accepts_followers_count() -> None:
    response = RawResponse(
        platform="threads",
        requested_handles=("someone",),
        request_url="https://graph.threads.net/v1.0/profile_lookup?username=someone",
        status_code=200,
        body=b'{"username":"someone","followers_count":1234}',
        fetched_at=NOW,
        elapsed_ms=1.0,
    )

    [observation] = connector_class("threads").parse(response)

    assert (observation.status, observation.followers) == (AccountStatus.OK, 1234)


def test_threads_without_the_discovery_permission_stops_naming_it() -> None:
    with SandboxServer(
        roster(), token=SECRET, threads_profile_discovery=False, clock=lambda: NOW
    ) as server:
        connector = build_connector("threads", server.base_url, SECRET, sleep=Sleeps())
        with pytest.raises(PlatformError, match="threads_profile_discovery") as raised:
            connector.extract([handle("threads", 0), handle("threads", 1)])
        assert server.requests_to("/v1.0/profile_lookup") == 1
    assert SECRET not in str(raised.value)


def test_threads_needs_a_token() -> None:
    with pytest.raises(PlatformError, match="access token"):
        build_connector("threads", "http://127.0.0.1:1", None)


def test_mastodon_before_4_3_falls_back_to_lookups_instead_of_not_found() -> None:
    with SandboxServer(roster(), mastodon_batch_route=False, clock=lambda: NOW) as server:
        connector = make("mastodon", server)  # every id known: batches of 40 planned
        handles = [handle("mastodon", n) for n in range(COUNT)]

        result = connector.extract(handles)

        assert server.requests_to("/api/v1/accounts/lookup") == COUNT
    assert result.is_complete
    seen = statuses(connector, result.responses)
    assert seen == dict.fromkeys(handles, AccountStatus.OK)
    assert result.requests_sent == math.ceil(COUNT / connector.batch_size) + COUNT


@pytest.mark.parametrize(
    ("reason", "action"),
    [
        ("quotaExceeded", "rate_limited"),
        ("dailyLimitExceeded", "rate_limited"),
        ("rateLimitExceeded", "retry"),
        ("userRateLimitExceeded", "retry"),
    ],
)
def test_youtube_waits_for_midnight_only_for_the_daily_quota(reason: str, action: str) -> None:
    connector = build_connector("youtube", "http://127.0.0.1:1", SECRET, sleep=Sleeps())
    body = json.dumps(
        {"error": {"code": 403, "message": "m", "errors": [{"domain": "d", "reason": reason}]}}
    ).encode()

    assert connector.judge(403, body, httpx.Headers()).action == action


def test_a_negative_count_is_not_a_count() -> None:
    from social_leadership.platforms.base import UnreadableCount, count_value

    assert count_value({"followers_count": -1}, "followers_count") is None
    assert count_value({"followers_count": 0}, "followers_count") == 0
    with pytest.raises(UnreadableCount):
        count_value({"followers_count": True}, "followers_count")


def test_request_urls_with_keys_are_not_logged_by_the_http_client(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.NOTSET)
    caplog.set_level(logging.DEBUG)
    connector = make("youtube", sandbox)

    connector.extract([handle("youtube", 0)])

    assert SECRET not in caplog.text
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING


def _two_instance_roster() -> Roster:
    executives = [Executive(f"e{n}", f"E{n}", "CEO", "Co", "DE", "Energy", True) for n in range(4)]
    handles = ["ann@alpha.example", "bob@alpha.example", "cy@beta.example", "di@beta.example"]
    accounts = [Account(f"e{n}", "mastodon", h) for n, h in enumerate(handles)]
    return Roster(executives=executives, accounts=accounts)


def test_mastodon_asks_each_account_of_its_own_instance() -> None:
    with SandboxServer(_two_instance_roster(), clock=lambda: NOW) as server:
        connector = build_connector(
            "mastodon", server.base_url + "/mastodon/{instance}", None, sleep=Sleeps()
        )
        handles = ["ann@alpha.example", "cy@beta.example", "nobody@beta.example"]

        first = connector.extract(handles)

        assert server.requests_to("/mastodon/alpha.example/api/v1/accounts/lookup") == 1
        assert server.requests_to("/mastodon/beta.example/api/v1/accounts/lookup") == 2
        # The ids learned answer later runs from the same instances, a batch per instance.
        ids = {
            o.account_handle: o.account_id
            for r in first.responses
            for o in connector_class("mastodon").parse(r)
            if o.account_id
        }
        again = build_connector(
            "mastodon",
            server.base_url + "/mastodon/{instance}",
            None,
            sleep=Sleeps(),
            account_ids=ids,
        ).extract(handles)
        assert server.requests_to("/mastodon/beta.example/api/v1/accounts") == 1
    assert statuses(connector, first.responses) == {
        "ann@alpha.example": AccountStatus.OK,
        "cy@beta.example": AccountStatus.OK,
        "nobody@beta.example": AccountStatus.NOT_FOUND,
    }
    assert statuses(connector, again.responses) == statuses(connector, first.responses)
    assert again.requests_sent == 3  # a batch on each instance, a lookup for the unknown


def test_an_instance_knows_only_its_own_accounts() -> None:
    with SandboxServer(_two_instance_roster(), clock=lambda: NOW) as server:
        wrong = httpx.get(
            f"{server.base_url}/mastodon/alpha.example/api/v1/accounts/lookup",
            params={"acct": "cy@beta.example"},
        )
        local = httpx.get(
            f"{server.base_url}/mastodon/beta.example/api/v1/accounts/lookup",
            params={"acct": "cy"},
        )
    assert wrong.status_code == 404
    # As on a real instance, its own account's acct is the user alone.
    assert local.json()["acct"] == "cy"


def test_mastodon_looks_up_an_account_a_batch_left_out_before_calling_it_not_found(
    sandbox: SandboxServer,
) -> None:
    handles = [handle("mastodon", n) for n in range(3)]
    stale = {h: synthetic_account_id("mastodon", h) for h in handles}
    stale[handles[1]] = "999999999"  # an id that changed, or one from another instance
    connector = make("mastodon", sandbox, account_ids=stale)

    result = connector.extract(handles)

    seen = statuses(connector, result.responses)
    assert seen == dict.fromkeys(handles, AccountStatus.OK)
    assert result.requests_sent == 2  # the batch, then one lookup


def test_mastodon_never_counts_another_account_under_a_stored_id(
    sandbox: SandboxServer,
) -> None:
    handles = [handle("mastodon", n) for n in range(3)]
    ids = {h: synthetic_account_id("mastodon", h) for h in handles}
    # A stored id that now names someone else (or was learned from another instance):
    # the instance answers it with that account, whose counts are not this handle's.
    stale = {**ids, handles[1]: ids[handles[2]]}
    connector = make("mastodon", sandbox, account_ids=stale)

    result = connector.extract(handles)

    observed = {
        o.account_handle: (o.status, o.account_id, o.followers)
        for r in result.responses
        for o in connector_class("mastodon").parse(r)
    }
    assert observed == {
        h: (AccountStatus.OK, ids[h], synthetic_metrics("mastodon", h, NOW.date())[0])
        for h in handles
    }
    assert result.requests_sent == 2  # the batch, then a lookup of the mismatched handle
    assert connector_class("mastodon").learn_state(result.responses) == ids


def test_mastodon_defers_the_accounts_a_batch_left_out_once_rate_limited(
    sandbox: SandboxServer,
) -> None:
    handles = [handle("mastodon", n) for n in range(41)]  # two id batches
    stale = {h: synthetic_account_id("mastodon", h) for h in handles}
    stale[handles[5]] = "999999999"  # left out of the first batch
    sandbox.add_fault("slow", platform="mastodon", delay_seconds=0)  # answered as usual
    sandbox.add_fault("429", platform="mastodon", reset_seconds=900)
    connector = make("mastodon", sandbox, account_ids=stale)

    result = connector.extract(handles)

    # No lookup is sent into the spent window: the left-out account waits with the rest.
    assert result.requests_sent == 2
    assert sorted(result.deferred_handles) == sorted([handles[5], handles[40]])
    assert "rate limited" in (result.message or "")
    seen = statuses(connector, result.responses)
    assert seen == {h: AccountStatus.OK for h in handles[:40] if h != handles[5]}


def _client_tls(client: httpx.Client) -> ssl.SSLContext:
    return client._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_every_client_verifies_servers_with_one_tls_context_per_ca_bundle(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    x, youtube = make("x", sandbox), make("youtube", sandbox)
    with x.new_client() as first, youtube.new_client() as second:
        shared = _client_tls(first)
        assert _client_tls(second) is shared
    assert shared.verify_mode == ssl.CERT_REQUIRED
    assert shared.check_hostname
    assert shared.cert_store_stats()["x509_ca"] > 1  # certifi's bundle
    # A bundle named in the environment, as httpx reads it, gets a context of its own.
    bundle = tmp_path / "ca.pem"
    end = "-----END CERTIFICATE-----"
    first = Path(certifi.where()).read_text(encoding="ascii").split(end)[0]
    bundle.write_text(first[first.index("-----BEGIN") :] + end + "\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with x.new_client() as client:
        own = _client_tls(client)
    assert own.verify_mode == ssl.CERT_REQUIRED
    assert own.cert_store_stats()["x509_ca"] == 1
