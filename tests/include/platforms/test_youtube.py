"""YouTube's @handles cost a forHandle lookup (one quota unit) each only until their channel
id is learned: later runs ask for them in the 50-id batches, under the roster's handle."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import duckdb
import pytest
from slw_testing import refused_after_a_batch

from social_leadership.landing import read_landed
from social_leadership.platform_metrics import (
    extract_platform,
    known_account_ids,
    load_platform_day,
)
from social_leadership.platforms import build_connector
from social_leadership.platforms.base import (
    AccountStatus,
    ExtractResult,
    RawResponse,
)
from social_leadership.platforms.youtube import CHANNELS_PATH, YouTubeConnector
from social_leadership.roster import Account, Executive, Roster
from social_leadership.sandbox.server import (
    SANDBOX_YOUTUBE_KEY,
    SandboxServer,
    synthetic_channel_id,
)
from social_leadership.warehouse import ensure_schema

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
HANDLES = [f"@exec{number:03d}" for number in range(120)]
# Channels the roster names by id, beside the @handles.
CHANNELS = [synthetic_channel_id(f"@chan{number:03d}") for number in range(10)]
STALE_ID = "UC" + "0" * 22  # an id no channel has (any more)

Observed = dict[str, tuple[AccountStatus, str | None, int | None, int | None]]


def youtube_roster(handles: list[str]) -> Roster:
    executives = [
        Executive(f"e{n:03d}", f"Exec {n}", "CEO", f"Synthetic Co {n}", "DE", "Energy", True)
        for n in range(len(handles))
    ]
    accounts = [Account(f"e{n:03d}", "youtube", handle) for n, handle in enumerate(handles)]
    return Roster(executives=executives, accounts=accounts)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(youtube_roster(HANDLES + CHANNELS), clock=lambda: NOW) as server:
        yield server


def run(server: SandboxServer, handles: list[str], landing: Path, run_id: str, **options):
    return extract_platform(
        "youtube",
        handles,
        server.base_url,
        SANDBOX_YOUTUBE_KEY,
        landing,
        run_id,
        NOW,
        now=NOW,
        sleep=lambda _: None,
        **options,
    )


def observed(responses: list[RawResponse]) -> Observed:
    return {
        o.account_handle: (o.status, o.account_id, o.followers, o.posts)
        for r in responses
        for o in YouTubeConnector.parse(r)
    }


def landed(run_dir: str | None) -> Observed:
    assert run_dir is not None
    responses, _ = read_landed(Path(run_dir))
    return observed(responses)


def queries(server: SandboxServer) -> list[dict[str, list[str]]]:
    return [parse_qs(query) for path, query in server.request_log if path == CHANNELS_PATH]


def test_a_second_run_asks_for_learned_handles_by_id_50_a_request(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"

    first = run(sandbox, HANDLES, landing, "first")
    second = run(sandbox, HANDLES, landing, "second")

    assert first.requests_sent == len(HANDLES)  # never seen: one forHandle each
    assert second.requests_sent == math.ceil(len(HANDLES) / 50) == 3
    assert sandbox.requests_to(CHANNELS_PATH) == len(HANDLES) + 3
    asked = queries(sandbox)[len(HANDLES) :]
    assert all("forHandle" not in query for query in asked)
    assert [len(query["id"][0].split(",")) for query in asked] == [50, 50, 20]
    # The same counts under the same roster handles as the lookups by handle gave.
    by_handle = landed(first.landing_dir)
    assert landed(second.landing_dir) == by_handle
    assert {account_id for _, account_id, _, _ in by_handle.values()} == {
        synthetic_channel_id(h) for h in HANDLES
    }
    assert len({followers for _, _, followers, _ in by_handle.values()}) > len(HANDLES) // 2

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_schema(con)
    load_platform_day(con, landing, "youtube", NOW.date(), "second")
    rows = con.execute(
        "select account_handle, account_status, account_id, followers, posts "
        "from raw.platform_metrics where platform = 'youtube'"
    ).fetchall()
    con.close()
    assert {row[0]: (AccountStatus(row[1]), *row[2:]) for row in rows} == by_handle


def test_a_learned_id_the_api_no_longer_returns_is_looked_up_by_handle_and_relearned(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    handles = HANDLES[:3]
    stale = {h: synthetic_channel_id(h) for h in handles} | {handles[1]: STALE_ID}
    landing = tmp_path / "landing"

    first = run(sandbox, handles, landing, "first", account_ids=stale)

    assert first.requests_sent == 2  # the batch, then forHandle for the stale one
    batch, lookup = queries(sandbox)
    assert batch["id"] == [",".join(stale[h] for h in handles)]
    assert lookup["forHandle"] == [handles[1]]
    assert landed(first.landing_dir) == {
        h: (AccountStatus.OK, synthetic_channel_id(h), *_counts(sandbox, h)) for h in handles
    }
    # Re-learned from the landing: the next run asks for all three in one batch.
    assert known_account_ids(landing, "youtube") == {h: synthetic_channel_id(h) for h in handles}
    second = run(sandbox, handles, landing, "second")
    assert second.requests_sent == 1
    assert queries(sandbox)[-1]["id"] == [",".join(synthetic_channel_id(h) for h in handles)]


def test_ids_learned_earlier_in_the_day_outlive_a_later_run_that_read_nothing(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Only the day's latest landing was read: after a run stopped by the quota, the next
    # asked forHandle again for every handle (a unit each), and a renamed Bluesky account
    # was asked for by its old handle, not its DID, and called not found.
    handles = HANDLES[:3]
    landing = tmp_path / "landing"
    run(sandbox, handles, landing, "first")
    learned = {h: synthetic_channel_id(h) for h in handles}
    assert known_account_ids(landing, "youtube") == learned
    sandbox.add_fault("429", platform="youtube")  # the daily quota: a 403 quotaExceeded

    throttled = run(sandbox, handles, landing, "second")

    assert throttled.deferred == len(handles)
    assert known_account_ids(landing, "youtube") == learned


def test_a_handle_whose_learned_id_and_lookup_find_nothing_is_not_found(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    gone = "@gone_channel"  # not in the sandbox's roster: deleted since it was learned

    learned = {HANDLES[0]: synthetic_channel_id(HANDLES[0]), gone: STALE_ID}

    outcome = run(sandbox, [HANDLES[0], gone], tmp_path, "run", account_ids=learned)

    assert outcome.requests_sent == 2  # the batch (both by id), then forHandle for it
    seen = landed(outcome.landing_dir)
    assert seen[gone] == (AccountStatus.NOT_FOUND, None, None, None)
    assert seen[HANDLES[0]][0] is AccountStatus.OK


def test_a_handle_left_out_of_a_batch_waits_once_the_quota_is_spent(
    sandbox: SandboxServer,
) -> None:
    handles = HANDLES[:51]  # two id batches
    stale = {h: synthetic_channel_id(h) for h in handles} | {handles[5]: STALE_ID}
    sandbox.add_fault("slow", platform="youtube", delay_seconds=0)  # answered as usual
    sandbox.add_fault("429", platform="youtube")  # the daily quota: a 403 quotaExceeded
    connector = build_connector(
        "youtube", sandbox.base_url, SANDBOX_YOUTUBE_KEY, sleep=lambda _: None, account_ids=stale
    )

    result = connector.extract(handles)

    # No forHandle is spent into an exhausted quota: the stale handle waits with the rest.
    assert result.requests_sent == 2
    assert sorted(result.deferred_handles) == sorted([handles[5], handles[50]])
    seen = observed(result.responses)
    assert {h for h, (status, *_) in seen.items() if status is AccountStatus.OK} == {
        h for h in handles[:50] if h != handles[5]
    }
    assert handles[5] not in seen


def _refused_after_a_batch(
    sandbox: SandboxServer, learned: dict[str, str], handles: list[str]
) -> ExtractResult:
    connector = build_connector(
        "youtube", sandbox.base_url, SANDBOX_YOUTUBE_KEY, sleep=lambda _: None, account_ids=learned
    )
    return refused_after_a_batch(sandbox, connector, handles, 400)


def test_a_refused_for_handle_lookup_keeps_what_the_batch_read(sandbox: SandboxServer) -> None:
    handles = HANDLES[:3]
    stale = {h: synthetic_channel_id(h) for h in handles} | {handles[1]: STALE_ID}
    partial = _refused_after_a_batch(sandbox, stale, handles)  # the forHandle is refused

    # The refusal carries the whole run: the batch's channels are landed, not asked again.
    assert "forHandle" in queries(sandbox)[-1]
    assert {h: status for h, (status, *_) in observed(partial.responses).items()} == {
        handles[0]: AccountStatus.OK,
        handles[2]: AccountStatus.OK,
    }
    assert partial.deferred_handles == [handles[1]]
    assert partial.requests_sent == 2
    assert partial.refused


def test_handles_and_ids_in_one_batch_are_counted_under_their_own_handles(
    sandbox: SandboxServer,
) -> None:
    mixed = [x for pair in zip(HANDLES[:10], CHANNELS, strict=True) for x in pair]
    learned = {h: synthetic_channel_id(h) for h in HANDLES[:10]}
    connector = build_connector(
        "youtube", sandbox.base_url, SANDBOX_YOUTUBE_KEY, sleep=lambda _: None, account_ids=learned
    )

    result = connector.extract(mixed)

    assert result.requests_sent == 1
    [query] = queries(sandbox)
    assert query["id"] == [",".join(learned.get(h, h) for h in mixed)]
    assert observed(result.responses) == {
        h: (AccountStatus.OK, learned.get(h, h), *_counts(sandbox, h)) for h in mixed
    }


def test_parse_matches_each_channel_to_its_handle_by_id_not_by_position() -> None:
    requested = ("@first", "UCsecondsecondsecondseco", "@third")
    ids = ["UCfirstfirstfirstfirstfi", requested[1], "UCthirdthirdthirdthirdth"]
    # The API answers in an order of its own.
    items = [
        {"id": channel_id, "statistics": {"subscriberCount": str(n), "videoCount": "1"}}
        for n, channel_id in reversed(list(enumerate(ids, start=1)))
    ]
    response = RawResponse(
        platform="youtube",
        requested_handles=requested,
        request_url=f"https://www.googleapis.com{CHANNELS_PATH}?part=statistics"
        f"&id={','.join(ids)}&key=REDACTED",
        status_code=200,
        body=json.dumps({"items": items}).encode(),
        fetched_at=NOW,
        elapsed_ms=1.0,
    )

    assert observed([response]) == {
        "@first": (AccountStatus.OK, ids[0], 1, 1),
        requested[1]: (AccountStatus.OK, ids[1], 2, 1),
        "@third": (AccountStatus.OK, ids[2], 3, 1),
    }
    assert YouTubeConnector.learn_state([response]) == dict(zip(requested, ids, strict=True))


def test_the_sandbox_answers_a_handle_and_its_channel_id_alike(sandbox: SandboxServer) -> None:
    connector = build_connector(
        "youtube", sandbox.base_url, SANDBOX_YOUTUBE_KEY, sleep=lambda _: None
    )
    by_handle = observed(connector.extract(HANDLES[:3]).responses)
    ids = [synthetic_channel_id(h) for h in HANDLES[:3]]
    by_id = observed(connector.extract(ids).responses)

    assert [by_handle[h] for h in HANDLES[:3]] == [by_id[i] for i in ids]


def _counts(server: SandboxServer, handle: str) -> tuple[int | None, int | None]:
    """What a forHandle (or id) lookup of ``handle`` alone says: subscribers, videos."""
    connector = build_connector(
        "youtube", server.base_url, SANDBOX_YOUTUBE_KEY, sleep=lambda _: None
    )
    [(_, _, followers, posts)] = observed(connector.extract([handle]).responses).values()
    return followers, posts


def test_a_channel_that_hides_its_subscriber_count_is_learned_too(tmp_path: Path) -> None:
    handles = HANDLES[:2]
    with SandboxServer(
        youtube_roster(handles), youtube_hidden=(handles[0],), clock=lambda: NOW
    ) as server:
        first = run(server, handles, tmp_path, "first")
        second = run(server, handles, tmp_path, "second")

    assert landed(first.landing_dir)[handles[0]][:2] == (
        AccountStatus.HIDDEN,
        synthetic_channel_id(handles[0]),
    )
    assert (first.requests_sent, second.requests_sent) == (2, 1)
    assert landed(second.landing_dir) == landed(first.landing_dir)


def test_a_refusal_after_a_batch_that_left_a_channel_out_defers_that_channel(
    sandbox: SandboxServer,
) -> None:
    handles = HANDLES[:3]
    # The first two asked by id (the first's gone stale), the third by forHandle.
    learned = {handles[0]: STALE_ID, handles[1]: synthetic_channel_id(handles[1])}
    partial = _refused_after_a_batch(sandbox, learned, handles)  # the forHandle is refused

    assert {h: status for h, (status, *_) in observed(partial.responses).items()} == {
        handles[1]: AccountStatus.OK
    }
    # Neither observed nor lost: the channel the batch left out is deferred with the rest.
    assert sorted(partial.deferred_handles) == sorted([handles[0], handles[2]])
    assert partial.requests_sent == 2


def test_channels_past_a_page_are_asked_for_again_not_called_not_found() -> None:
    # An API that pages id lookups (maxResults 5) answered 5 channels of a batch of 7 with
    # a nextPageToken: the other 2 were recorded not found, replacing the day's counts.
    asked = [*CHANNELS[:7], STALE_ID]
    with SandboxServer(
        youtube_roster(HANDLES + CHANNELS), clock=lambda: NOW, youtube_page_size=5
    ) as server:
        connector = build_connector(
            "youtube", server.base_url, SANDBOX_YOUTUBE_KEY, None, sleep=lambda _: None
        )
        result = connector.extract(asked)
        queries = [parse_qs(query) for _, query in server.request_log]

    seen = observed(result.responses)
    assert {channel: seen[channel][0] for channel in asked} == {
        **dict.fromkeys(CHANNELS[:7], AccountStatus.OK),
        STALE_ID: AccountStatus.NOT_FOUND,
    }
    assert result.deferred_handles == []
    # The second request asks only for the 3 the first page did not answer.
    assert [query["id"][0].split(",") for query in queries] == [asked, asked[5:]]
    assert result.requests_sent == 2


def test_a_page_that_answers_none_of_the_rest_defers_them() -> None:
    with SandboxServer(
        youtube_roster(HANDLES + CHANNELS), clock=lambda: NOW, youtube_page_size=0
    ) as server:
        connector = build_connector(
            "youtube", server.base_url, SANDBOX_YOUTUBE_KEY, None, sleep=lambda _: None
        )
        result = connector.extract(CHANNELS[:3])

    assert observed(result.responses) == {}
    assert result.deferred_handles == CHANNELS[:3]
    assert result.requests_sent == 2
    assert "past a page" in (result.message or "")


def test_a_refusal_after_a_paged_reply_defers_the_channels_past_the_page() -> None:
    # The @handle's lookup, after the paged id batch, was refused: the 2 channels past the
    # page were neither observed nor deferred, lost from the landing.
    asked = [*CHANNELS[:7], HANDLES[0]]
    with SandboxServer(
        youtube_roster(HANDLES + CHANNELS), clock=lambda: NOW, youtube_page_size=5
    ) as server:
        connector = build_connector(
            "youtube", server.base_url, SANDBOX_YOUTUBE_KEY, None, sleep=lambda _: None
        )
        partial = refused_after_a_batch(server, connector, asked, 400)

    assert set(observed(partial.responses)) == set(CHANNELS[:5])
    assert sorted(partial.deferred_handles) == sorted([*CHANNELS[5:7], HANDLES[0]])
