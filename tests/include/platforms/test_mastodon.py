"""The Mastodon token goes only to the instances the connection lists; every other
instance named in the roster is asked anonymously."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from slw_testing import refused_after_a_batch

from social_leadership.demo.synthetic import synthetic_account_id
from social_leadership.platforms import build_connector, connector_class
from social_leadership.platforms.base import (
    AccountStatus,
    ExtractResult,
    RawResponse,
)
from social_leadership.roster import Account, Executive, Roster
from social_leadership.sandbox.server import SandboxServer

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
TOKEN = "own-instance-token-7c1d"
HANDLES = ["ann@alpha.example", "bob@alpha.example", "cy@beta.example", "di@gamma.example"]
LOOKUP = "/mastodon/{}/api/v1/accounts/lookup"


def roster() -> Roster:
    executives = [Executive(f"e{n}", f"E{n}", "CEO", "Co", "DE", "Energy", True) for n in range(4)]
    accounts = [Account(f"e{n}", "mastodon", h) for n, h in enumerate(HANDLES)]
    return Roster(executives=executives, accounts=accounts)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(roster(), clock=lambda: NOW) as server:
        yield server


def extract(sandbox: SandboxServer, base_url: str, **options: object):
    connector = build_connector("mastodon", base_url, TOKEN, None, sleep=lambda _: None, **options)
    result = connector.extract(HANDLES)
    parse = connector_class("mastodon").parse
    return {o.account_handle: o.status for r in result.responses for o in parse(r)}


def statuses(responses: list[RawResponse]) -> dict[str, AccountStatus]:
    parse = connector_class("mastodon").parse
    return {o.account_handle: o.status for r in responses for o in parse(r)}


def test_the_token_reaches_only_the_listed_instances(sandbox: SandboxServer) -> None:
    seen = extract(
        sandbox,
        sandbox.base_url + "/mastodon/{instance}",
        allowed_instances=["ALPHA.example", " gamma.example "],
    )

    assert sandbox.authorizations_to(LOOKUP.format("alpha.example")) == [f"Bearer {TOKEN}"] * 2
    assert sandbox.authorizations_to(LOOKUP.format("gamma.example")) == [f"Bearer {TOKEN}"]
    assert sandbox.authorizations_to(LOOKUP.format("beta.example")) == [None]
    assert seen == dict.fromkeys(HANDLES, AccountStatus.OK)


def test_without_a_list_no_instance_gets_the_token(sandbox: SandboxServer) -> None:
    extract(sandbox, sandbox.base_url + "/mastodon/{instance}")

    assert {value for _, value in sandbox.authorization_log} == {None}
    assert len(sandbox.authorization_log) == len(HANDLES)


def test_a_fixed_instance_chosen_by_the_user_keeps_its_token(sandbox: SandboxServer) -> None:
    # No {instance} in the host: every request goes to the one instance the user named.
    seen = extract(sandbox, sandbox.base_url, allowed_instances=["beta.example"])

    assert [value for _, value in sandbox.authorization_log] == [f"Bearer {TOKEN}"] * 4
    assert seen == dict.fromkeys(HANDLES, AccountStatus.OK)


@pytest.mark.parametrize("listed", [["https://alpha.example/"], "alpha.example, beta.example"])
def test_the_list_takes_urls_and_comma_separated_hosts(
    sandbox: SandboxServer, listed: object
) -> None:
    extract(sandbox, sandbox.base_url + "/mastodon/{instance}", allowed_instances=listed)

    assert sandbox.authorizations_to(LOOKUP.format("alpha.example")) == [f"Bearer {TOKEN}"] * 2
    assert sandbox.authorizations_to(LOOKUP.format("gamma.example")) == [None]


def test_an_instance_that_wants_a_login_it_was_not_given_says_why() -> None:
    with SandboxServer(roster(), clock=lambda: NOW, mastodon_requires_login=True) as server:
        connector = build_connector(
            "mastodon",
            server.base_url + "/mastodon/{instance}",
            TOKEN,
            None,
            sleep=lambda _: None,
            allowed_instances=["gamma.example"],
        )
        result = connector.extract(HANDLES)
    # One instance's refusal no longer stops the others (see the next test): it is told in
    # the message, and the extraction is refused.
    assert result.refused
    assert "allowed_instances" in (result.message or "")


def test_an_instance_that_refuses_leaves_the_other_instances_accounts_read() -> None:
    # Anyone's instance can be in the roster: its refusal must not cost the other
    # instances' accounts, nor hide that the platform failed.
    with SandboxServer(
        roster(), clock=lambda: NOW, token=TOKEN, mastodon_requires_login=True
    ) as server:
        connector = build_connector(
            "mastodon",
            server.base_url + "/mastodon/{instance}",
            TOKEN,
            None,
            sleep=lambda _: None,
            allowed_instances=["alpha.example"],
        )
        result = connector.extract(HANDLES)

    parse = connector_class("mastodon").parse
    seen = {o.account_handle: o.status for r in result.responses for o in parse(r)}
    assert seen == dict.fromkeys(["ann@alpha.example", "bob@alpha.example"], AccountStatus.OK)
    assert sorted(result.deferred_handles) == ["cy@beta.example", "di@gamma.example"]
    assert result.refused
    assert not result.gave_up
    assert "allowed_instances" in (result.message or "")
    assert "beta.example" in (result.message or "")
    assert "gamma.example" in (result.message or "")


def _refused_after_a_batch(
    sandbox: SandboxServer, ids: dict[str, str], handles: list[str]
) -> ExtractResult:
    connector = build_connector(
        "mastodon", sandbox.base_url, TOKEN, None, sleep=lambda _: None, account_ids=ids
    )
    return refused_after_a_batch(sandbox, connector, handles, 403)


def test_a_refused_lookup_after_a_batch_keeps_what_the_batch_read(
    sandbox: SandboxServer,
) -> None:
    handles = HANDLES[:3]
    ids = {h: synthetic_account_id("mastodon", h) for h in handles}
    ids[handles[1]] = "999999999"  # a stale id: the batch leaves it out, a lookup follows
    partial = _refused_after_a_batch(sandbox, ids, handles)  # the lookup is refused

    # The refusal carries the whole run: the batch's accounts are landed, not asked again.
    assert statuses(partial.responses) == dict.fromkeys([handles[0], handles[2]], AccountStatus.OK)
    assert partial.deferred_handles == [handles[1]]
    assert partial.requests_sent == 2
    assert partial.refused


def test_an_instance_refusing_midway_keeps_the_accounts_it_answered(
    sandbox: SandboxServer,
) -> None:
    sandbox.add_fault("slow", platform="mastodon", delay_seconds=0)  # ann's lookup: answered
    sandbox.add_fault("echo", platform="mastodon", status=403)  # bob's, same instance: refused
    connector = build_connector(
        "mastodon", sandbox.base_url + "/mastodon/{instance}", None, None, sleep=lambda _: None
    )

    result = connector.extract(HANDLES)

    read = [h for h in HANDLES if h != "bob@alpha.example"]
    assert statuses(result.responses) == dict.fromkeys(read, AccountStatus.OK)
    assert result.deferred_handles == ["bob@alpha.example"]
    assert result.requests_sent == len(HANDLES)
    assert result.refused
    assert "403" in (result.message or "")


def test_a_refusal_after_a_batch_that_left_an_account_out_defers_that_account(
    sandbox: SandboxServer,
) -> None:
    handles = HANDLES[:3]
    ids = {h: synthetic_account_id("mastodon", h) for h in handles[:2]}
    ids[handles[0]] = "999999999"  # a stale id: the batch answers without it
    # The batch of the two known ids is answered; the lookup of the third is refused before
    # the stale one's lookup could follow.
    partial = _refused_after_a_batch(sandbox, ids, handles)

    assert statuses(partial.responses) == {handles[1]: AccountStatus.OK}
    # Neither observed nor lost: the account the batch left out is deferred with the rest.
    assert sorted(partial.deferred_handles) == sorted([handles[0], handles[2]])
    assert partial.requests_sent == 2


def _account(account_id: str, user: str) -> dict[str, object]:
    return {"id": account_id, "username": user, "acct": user, "followers_count": 4}


def test_a_batch_answered_by_one_account_is_retried_and_credits_no_one() -> None:
    # A lone account answering a batch was read as the first requested account's: mm got
    # nn's counts and id, and nn was not found.
    connector = build_connector("mastodon", "https://m.example", None, None)
    nn = _account("2", "nn")
    connector._batch_sent = True
    assert connector.judge(200, json.dumps(nn).encode(), httpx.Headers()).action == "retry"
    connector._batch_sent = False
    assert connector.judge(200, json.dumps(nn).encode(), httpx.Headers()).action == "land"
    assert connector.judge(200, json.dumps([nn]).encode(), httpx.Headers()).action == "retry"

    batch = RawResponse(
        "mastodon",
        ("mm@m.example", "nn@m.example"),
        "https://m.example/api/v1/accounts?id[]=1&id[]=2",
        200,
        json.dumps(nn).encode(),
        NOW,
        1.0,
    )
    assert statuses([batch]) == {
        "mm@m.example": AccountStatus.ERROR,
        "nn@m.example": AccountStatus.ERROR,
    }


def test_a_lookup_answered_with_another_account_is_an_error_not_its_counts() -> None:
    def lookup(account: dict[str, object]) -> RawResponse:
        return RawResponse(
            "mastodon",
            ("dave@m.example",),
            "https://m.example/api/v1/accounts/lookup?acct=dave%40m.example",
            200,
            json.dumps(account).encode(),
            NOW,
            1.0,
        )

    assert statuses([lookup(_account("3", "carol"))]) == {"dave@m.example": AccountStatus.ERROR}
    assert statuses([lookup(_account("4", "Dave"))]) == {"dave@m.example": AccountStatus.OK}
    # Named by its instance's other domain (user@example.com served by m.example): itself.
    other_domain = {**_account("5", "dave"), "acct": "dave@example.com"}
    assert statuses([lookup(other_domain)]) == {"dave@m.example": AccountStatus.OK}
    # Mastodon sends every account's counts: one without them is no answer (it was taken
    # for hidden counts, replacing the day's).
    assert statuses([lookup({"id": "4", "username": "dave", "acct": "dave"})]) == {
        "dave@m.example": AccountStatus.ERROR
    }
    # An account naming none is the one a lookup was asked for.
    assert statuses([lookup({"id": "4", "followers_count": 4})]) == {
        "dave@m.example": AccountStatus.OK
    }


def test_a_suspended_account_has_no_counts_not_the_server_s_zeros() -> None:
    # Mastodon answers a suspended account with zero counts: its following and posts were
    # stored as 0 beside followers null.
    suspended = {
        **_account("7", "erin"),
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": 0,
        "suspended": True,
    }
    lookup = RawResponse(
        "mastodon",
        ("erin@m.example",),
        "https://m.example/api/v1/accounts/lookup?acct=erin%40m.example",
        200,
        json.dumps(suspended).encode(),
        NOW,
        1.0,
    )

    (observation,) = connector_class("mastodon").parse(lookup)

    assert observation.status is AccountStatus.SUSPENDED
    assert (observation.followers, observation.following, observation.posts) == (None, None, None)


def test_a_follow_up_lookup_is_not_sent_into_a_window_the_batch_spent() -> None:
    # The id batch left out a stale id and spent the window (X-RateLimit-Remaining: 0, its
    # reset five minutes off): the lookup went out at once, earned a 429 and deferred the
    # account, against README's "never sends into an exhausted window".
    handles = HANDLES[:2]
    ids = {h: synthetic_account_id("mastodon", h) for h in handles}
    ids[handles[1]] = "999999999"
    with SandboxServer(roster(), clock=lambda: NOW, limits={"mastodon": (1, 300)}) as server:
        connector = build_connector(
            "mastodon", server.base_url, None, None, sleep=lambda _: None, account_ids=ids
        )
        result = connector.extract(handles)
        paths = [path for path, _ in server.request_log]

    assert paths == ["/api/v1/accounts"]
    assert result.requests_sent == 1
    assert statuses(result.responses) == {handles[0]: AccountStatus.OK}
    assert result.deferred_handles == [handles[1]]
    assert result.stopped_early
    assert "rate limited; reset in" in (result.message or "")


@pytest.mark.parametrize("reply", ["lookup", "batch"])
def test_an_account_that_moved_is_counted_by_the_account_it_moved_to(reply: str) -> None:
    # Mastodon's "moved" (not in the reference's Account, sent by every real server): the
    # old account keeps the counts it had when it moved (its followers went along), so
    # gina's series fell from 21,004 to 3 on a green run, said nowhere.
    moved = {
        **_account("7", "gina"),
        "followers_count": 3,
        "moved": {
            "id": "88",
            "username": "gina",
            "acct": "gina@new.example",
            "followers_count": 21004,
            "following_count": 12,
            "statuses_count": 900,
        },
    }
    if reply == "lookup":
        url = "https://m.example/api/v1/accounts/lookup?acct=gina%40m.example"
        body = moved
    else:
        url = "https://m.example/api/v1/accounts?id[]=7"
        body = [moved]
    response = RawResponse(
        "mastodon", ("gina@m.example",), url, 200, json.dumps(body).encode(), NOW, 1.0
    )

    (observation,) = connector_class("mastodon").parse(response)

    assert observation.status is AccountStatus.OK
    assert (observation.followers, observation.following, observation.posts) == (21004, 12, 900)
    # The old account's id: the next run asks for it again and meets the move again.
    assert observation.account_id == "7"
    assert observation.moved_to == "gina@new.example"


def test_a_move_within_the_instance_names_the_new_account_whole_and_one_without_counts_none() -> (
    None
):
    local = {**_account("7", "gina"), "moved": {"id": "9", "acct": "gina2", "followers_count": 5}}
    bare = {**_account("8", "hal"), "moved": {"id": "10", "acct": "hal@new.example"}}
    parse = connector_class("mastodon").parse

    def lookup(handle: str, body: dict) -> RawResponse:
        url = f"https://m.example/api/v1/accounts/lookup?acct={handle.replace('@', '%40')}"
        return RawResponse("mastodon", (handle,), url, 200, json.dumps(body).encode(), NOW, 1.0)

    (moved,) = parse(lookup("gina@m.example", local))
    (without,) = parse(lookup("hal@m.example", bare))

    assert (moved.moved_to, moved.followers) == ("gina2@m.example", 5)
    # Asked through one fixed instance: a local account there, or one its url names.
    fixed = "https://mastodon.social/api/v1/accounts/lookup?acct=gina%40m.example"
    through = RawResponse(
        "mastodon", ("gina@m.example",), fixed, 200, json.dumps(local).encode(), NOW, 1.0
    )
    assert parse(through)[0].moved_to == "gina2@mastodon.social"
    named = {**local, "moved": {**local["moved"], "url": "https://new.example/@gina2"}}
    through = RawResponse(
        "mastodon", ("gina@m.example",), fixed, 200, json.dumps(named).encode(), NOW, 1.0
    )
    assert parse(through)[0].moved_to == "gina2@new.example"
    # The old account's 4 followers are left over from before the move: no count.
    assert (without.status, without.followers) == (AccountStatus.ERROR, None)
