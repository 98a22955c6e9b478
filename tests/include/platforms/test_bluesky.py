from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from social_leadership.demo.synthetic import synthetic_did, synthetic_metrics
from social_leadership.landing import read_landed
from social_leadership.platform_metrics import extract_platform
from social_leadership.platforms import build_connector
from social_leadership.platforms.base import AccountStatus, RawResponse
from social_leadership.platforms.bluesky import GET_PROFILES_PATH, BlueskyConnector
from social_leadership.roster import Account, Executive, Roster
from social_leadership.sandbox.server import SandboxServer

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
HANDLES = [f"exec{number:03d}.bsky.social" for number in range(80)]


def roster_with_bluesky(handles: list[str]) -> Roster:
    executives = [
        Executive(f"e{n:03d}", f"Exec {n}", "CEO", f"Synthetic Co {n}", "DE", "Energy", True)
        for n in range(len(handles))
    ]
    accounts = [Account(f"e{n:03d}", "bluesky", handle) for n, handle in enumerate(handles)]
    return Roster(executives=executives, accounts=accounts)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(roster_with_bluesky(HANDLES), clock=lambda: NOW) as server:
        yield server


def connector(server: SandboxServer, **options: object) -> BlueskyConnector:
    options.setdefault("sleep", Sleeps())
    return BlueskyConnector(server.base_url, **options)  # type: ignore[arg-type]


def test_60_handles_take_exactly_3_requests(sandbox: SandboxServer) -> None:
    result = connector(sandbox).extract(HANDLES[:60])

    assert result.requests_sent == 3
    assert sandbox.requests_to(GET_PROFILES_PATH) == 3
    assert [len(r.requested_handles) for r in result.responses] == [25, 25, 10]
    assert result.deferred_handles == []
    assert result.message is None
    observations = [o for r in result.responses for o in BlueskyConnector.parse(r)]
    assert [o.account_handle for o in observations] == HANDLES[:60]
    assert all(o.status is AccountStatus.OK for o in observations)
    first = observations[0]
    assert (first.followers, first.following, first.posts) == synthetic_metrics(
        "bluesky", HANDLES[0], NOW.date()
    )
    assert first.account_id == synthetic_did(HANDLES[0])
    assert first.observed_at.tzinfo is not None


def test_duplicates_are_requested_once(sandbox: SandboxServer) -> None:
    handles = [HANDLES[0], HANDLES[1], HANDLES[0], HANDLES[1].upper(), HANDLES[2]]

    result = connector(sandbox).extract(handles)

    assert result.requests_sent == 1
    (_, query), *_ = sandbox.request_log
    assert parse_qs(query)["actors"] == HANDLES[:3]


def test_unknown_handles_are_not_found(sandbox: SandboxServer) -> None:
    result = connector(sandbox).extract([HANDLES[0], "nobody.bsky.social"])

    statuses = {
        o.account_handle: o.status for r in result.responses for o in BlueskyConnector.parse(r)
    }
    assert statuses == {HANDLES[0]: AccountStatus.OK, "nobody.bsky.social": AccountStatus.NOT_FOUND}


def test_429_with_reset_beyond_max_wait_stops_and_defers(sandbox: SandboxServer) -> None:
    sandbox.add_fault("429", platform="bluesky", reset_seconds=3600)
    sleeps = Sleeps()

    result = connector(sandbox, sleep=sleeps, max_wait_seconds=60).extract(HANDLES[:60])

    assert sandbox.requests_to(GET_PROFILES_PATH) == 1
    assert result.requests_sent == 1
    assert result.responses == []
    assert result.deferred_handles == HANDLES[:60]
    assert result.message is not None
    assert "rate limited" in result.message
    assert sleeps == []


def test_exhausted_budget_stops_before_sending_into_a_429() -> None:
    roster = roster_with_bluesky(HANDLES)
    with SandboxServer(roster, clock=lambda: NOW, bluesky_limit=2) as server:
        result = connector(server).extract(HANDLES[:60])
        # The second reply says "0 remaining, reset in 300 s": no third request is sent.
        assert server.requests_to(GET_PROFILES_PATH) == 2
    assert len(result.responses) == 2
    assert result.deferred_handles == HANDLES[50:60]


def test_429_with_short_reset_waits_then_continues(sandbox: SandboxServer) -> None:
    sandbox.add_fault("429", platform="bluesky", reset_seconds=2)
    sleeps = Sleeps()

    result = connector(sandbox, sleep=sleeps).extract(HANDLES[:30])

    assert sleeps == [2.0]
    assert result.requests_sent == 3
    assert result.deferred_handles == []
    assert len(result.responses) == 2


def test_500_then_success_is_retried(sandbox: SandboxServer) -> None:
    sandbox.add_fault("500", platform="bluesky")
    sleeps = Sleeps()

    result = connector(sandbox, sleep=sleeps).extract(HANDLES[:5])

    assert result.requests_sent == 2
    assert len(sleeps) == 1
    assert result.deferred_handles == []
    assert [r.status_code for r in result.responses] == [200]


def test_persistent_500_gives_up_after_bounded_attempts(sandbox: SandboxServer) -> None:
    sandbox.add_fault("500", platform="bluesky", times=10)
    sleeps = Sleeps()

    result = connector(sandbox, sleep=sleeps, max_attempts=3).extract(HANDLES[:30])

    # Three attempts of the first batch of 25, then one of the second: the API failing.
    assert result.requests_sent == 3 + 1
    assert sandbox.requests_to(GET_PROFILES_PATH) == 3 + 1
    assert len(sleeps) == 2
    assert sleeps[1] > sleeps[0] * 0.6  # backoff grows (jitter is 0.5x to 1.5x)
    assert result.deferred_handles == HANDLES[:30]
    assert result.message is not None
    assert "HTTP 500" in result.message


def test_connection_errors_are_retried_then_deferred() -> None:
    with SandboxServer(roster_with_bluesky(HANDLES)) as server:
        base_url = server.base_url
    sleeps = Sleeps()

    result = BlueskyConnector(base_url, sleep=sleeps, max_attempts=2).extract(HANDLES[:3])

    assert result.requests_sent == 2
    assert result.deferred_handles == HANDLES[:3]
    assert result.message is not None
    assert "ConnectError" in result.message
    # What to check: the connection's address (a port dropped, https to a plain server).
    assert "check the scheme, host and port of the connection slw_bluesky" in result.message


def test_malformed_json_is_retried_and_the_good_reply_lands(sandbox: SandboxServer) -> None:
    sandbox.add_fault("malformed_json", platform="bluesky")

    result = connector(sandbox).extract(HANDLES[:2])

    assert result.requests_sent == 2
    statuses = [o.status for o in BlueskyConnector.parse(result.responses[0])]
    assert statuses == [AccountStatus.OK, AccountStatus.OK]


def test_stored_malformed_json_parses_to_errors() -> None:
    response = RawResponse(
        "bluesky", ("a.bsky.social",), "http://x", 200, b'{"profiles": [', NOW, 1.0
    )

    statuses = [o.status for o in BlueskyConnector.parse(response)]
    assert statuses == [AccountStatus.ERROR]


@pytest.mark.parametrize("body", [b"{}", b'{"profiles": null}', b"[]"])
def test_a_reply_without_its_profiles_list_is_retried_and_no_account_is_gone(body) -> None:
    # Read as an empty list, it made every account not found, replacing the day's counts.
    assert BlueskyConnector.body_is_error(json.loads(body))
    assert not BlueskyConnector.body_is_error({"profiles": []})
    response = RawResponse("bluesky", ("a.bsky.social",), "http://x", 200, body, NOW, 1.0)
    assert [o.status for o in BlueskyConnector.parse(response)] == [AccountStatus.ERROR]


def test_parse_matches_by_did_and_case_from_the_stored_response() -> None:
    body = {
        "profiles": [
            {
                "did": "did:plc:abcdefghijklmnopqrstuvwx",
                "handle": "ceo.example.com",
                "followersCount": 10,
                "followsCount": 2,
                "postsCount": 3,
            }
        ]
    }
    response = RawResponse(
        platform="bluesky",
        requested_handles=(
            "did:plc:abcdefghijklmnopqrstuvwx",
            "CEO.example.com",
            "gone.bsky.social",
        ),
        request_url="https://public.api.bsky.app/xrpc/app.bsky.actor.getProfiles",
        status_code=200,
        body=json.dumps(body).encode(),
        fetched_at=NOW,
        elapsed_ms=12.5,
    )

    observations = BlueskyConnector.parse(response)

    assert [(o.status, o.followers, o.observed_at) for o in observations] == [
        (AccountStatus.OK, 10, NOW),
        (AccountStatus.OK, 10, NOW),
        (AccountStatus.NOT_FOUND, None, NOW),
    ]


def test_build_connector_gives_a_bluesky_connector(sandbox: SandboxServer) -> None:
    built = build_connector("bluesky", sandbox.base_url, None, sleep=Sleeps())

    assert isinstance(built, BlueskyConnector)
    assert built.extract(HANDLES[:1]).requests_sent == 1


# --- a renamed handle (issue 10): asked by the DID learned from earlier landings ---------


def _landed_observations(run_dir: str | None) -> dict[str, tuple[AccountStatus, str | None]]:
    assert run_dir is not None
    responses, _ = read_landed(Path(run_dir))
    return {
        o.account_handle: (o.status, o.account_id)
        for r in responses
        for o in BlueskyConnector.parse(r)
    }


def test_a_renamed_handle_is_asked_by_its_did_and_is_not_lost(tmp_path: Path) -> None:
    handles = HANDLES[:3]
    renamed = handles[0]
    did = synthetic_did(renamed)

    def run(server: SandboxServer, landing: Path, run_id: str):
        return extract_platform(
            "bluesky",
            handles,
            server.base_url,
            None,
            landing,
            run_id,
            NOW,
            now=NOW,
            sleep=Sleeps(),
        )

    with SandboxServer(roster_with_bluesky(handles), clock=lambda: NOW) as server:
        first = run(server, tmp_path / "landing", "first")
        server.rename_account("bluesky", renamed, "new-name.bsky.social")
        second = run(server, tmp_path / "landing", "second")
        # Without earlier landings the old handle no longer names anyone.
        unknown = run(server, tmp_path / "fresh", "fresh")
        (_, first_query), (_, second_query), *_ = server.request_log

    assert _landed_observations(first.landing_dir)[renamed] == (AccountStatus.OK, did)
    assert _landed_observations(second.landing_dir) == {
        h: (AccountStatus.OK, synthetic_did(h)) for h in handles
    }
    assert parse_qs(first_query)["actors"] == handles
    # Every account asked by the DID the first landing taught.
    assert parse_qs(second_query)["actors"] == [synthetic_did(h) for h in handles]
    assert _landed_observations(unknown.landing_dir)[renamed] == (AccountStatus.NOT_FOUND, None)


def test_parse_maps_profiles_asked_by_did_back_to_the_roster_handle() -> None:
    did = "did:plc:abcdefghijklmnopqrstuvwx"
    body = {"profiles": [{"did": did, "handle": "renamed.example.com", "followersCount": 7}]}
    response = RawResponse(
        platform="bluesky",
        requested_handles=("ceo.example.com",),
        request_url=f"https://public.api.bsky.app{GET_PROFILES_PATH}?actors={did}",
        status_code=200,
        body=json.dumps(body).encode(),
        fetched_at=NOW,
        elapsed_ms=1.0,
    )

    [observation] = BlueskyConnector.parse(response)

    assert (observation.account_handle, observation.status, observation.account_id) == (
        "ceo.example.com",
        AccountStatus.OK,
        did,
    )
    assert observation.followers == 7


def _profile(did: str, handle: str, followers: int) -> dict[str, object]:
    return {
        "did": did,
        "handle": handle,
        "followersCount": followers,
        "followsCount": 1,
        "postsCount": 1,
    }


def _asked(handles: tuple[str, ...], profiles: list[dict[str, object]]) -> dict[str, tuple]:
    query = "&".join(f"actors={handle}" for handle in handles)
    response = RawResponse(
        "bluesky",
        handles,
        f"http://x{GET_PROFILES_PATH}?{query}",
        200,
        json.dumps({"profiles": profiles}).encode(),
        NOW,
        1.0,
    )
    return {
        o.account_handle: (o.status, o.followers, o.account_id)
        for o in BlueskyConnector.parse(response)
    }


def test_the_one_profile_sent_as_handle_invalid_is_the_one_handle_left_unnamed() -> None:
    # The AppView sends "handle.invalid" for a handle that no longer verifies: the DID and
    # counts are the asked account's, which was called not found, its DID never learned.
    did = "did:plc:" + "b" * 24
    seen = _asked(
        ("a.bsky.social", "b.bsky.social"),
        [_profile("did:plc:" + "a" * 24, "a.bsky.social", 5), _profile(did, "handle.invalid", 7)],
    )

    assert seen["b.bsky.social"] == (AccountStatus.OK, 7, did)
    assert seen["a.bsky.social"][:2] == (AccountStatus.OK, 5)


def test_two_profiles_sent_as_handle_invalid_are_matched_to_no_one() -> None:
    seen = _asked(
        ("a.bsky.social", "b.bsky.social"),
        [
            _profile("did:plc:" + "a" * 24, "handle.invalid", 5),
            _profile("did:plc:" + "b" * 24, "handle.invalid", 7),
        ],
    )

    assert {status for status, _, _ in seen.values()} == {AccountStatus.NOT_FOUND}


def test_a_learned_did_no_longer_answered_is_asked_for_by_its_handle(
    sandbox: SandboxServer,
) -> None:
    # The handle moved to a new account (the sandbox's DID for it) and the learned DID is
    # gone: asked by that DID alone, the account read not found, replacing the day's
    # counts, for as long as the landings kept teaching the old DID.
    moved, gone, kept = HANDLES[:3]
    stale = {moved: synthetic_did("old-account.bsky.social")}
    stale[gone] = synthetic_did("deleted.bsky.social")
    stale[kept] = synthetic_did(kept)
    sandbox.rename_account("bluesky", gone, "someone-else.bsky.social")

    bluesky = connector(sandbox, account_ids=stale)
    result = bluesky.extract([moved, gone, kept])

    seen = {
        o.account_handle: (o.status, o.account_id)
        for r in result.responses
        for o in BlueskyConnector.parse(r)
    }
    assert seen == {
        moved: (AccountStatus.OK, synthetic_did(moved)),
        gone: (AccountStatus.NOT_FOUND, None),
        kept: (AccountStatus.OK, synthetic_did(kept)),
    }
    (_, first), (_, second) = sandbox.request_log
    assert parse_qs(first)["actors"] == [stale[moved], stale[gone], stale[kept]]
    # One request more, for the two handles only; the DID the handle now has is learned.
    assert parse_qs(second)["actors"] == [moved, gone]
    assert result.requests_sent == 2
    assert BlueskyConnector.learn_state(result.responses)[moved] == synthetic_did(moved)
