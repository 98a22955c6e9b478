from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest

from social_leadership.demo.synthetic import synthetic_metrics
from social_leadership.platforms import build_connector
from social_leadership.platforms.base import AccountStatus, PlatformError, RawResponse
from social_leadership.platforms.x import USERS_BY_PATH, XConnector
from social_leadership.roster import Account, Executive, Roster
from social_leadership.sandbox.server import SandboxServer

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
TOKEN = "test-token-3f9a"
USERNAMES = [f"Exec_{number:04d}" for number in range(260)]


def roster_with_x(usernames: list[str]) -> Roster:
    executives = [
        Executive(f"e{n:04d}", f"Exec {n}", "CEO", f"Synthetic Co {n}", "US", "Energy", True)
        for n in range(len(usernames))
    ]
    accounts = [Account(f"e{n:04d}", "x", name) for n, name in enumerate(usernames)]
    return Roster(executives=executives, accounts=accounts)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(
        roster_with_x(USERNAMES), token=TOKEN, clock=lambda: NOW, x_suspended=("Banned_1",)
    ) as server:
        yield server


def connector(server: SandboxServer, token: str = TOKEN, **options: object) -> XConnector:
    options.setdefault("sleep", Sleeps())
    return XConnector(server.base_url, bearer_token=token, **options)  # type: ignore[arg-type]


def observations_of(result_responses: list[RawResponse]) -> dict[str, object]:
    return {o.account_handle: o for r in result_responses for o in XConnector.parse(r)}


def test_250_usernames_take_exactly_3_requests(sandbox: SandboxServer) -> None:
    result = connector(sandbox).extract(USERNAMES[:250])

    assert result.requests_sent == 3
    assert sandbox.requests_to(USERS_BY_PATH) == 3
    assert [len(r.requested_handles) for r in result.responses] == [100, 100, 50]
    observations = [o for r in result.responses for o in XConnector.parse(r)]
    assert len(observations) == 250
    assert all(o.status is AccountStatus.OK for o in observations)
    first = observations[0]
    assert (first.followers, first.following, first.posts) == synthetic_metrics(
        "x", USERNAMES[0], NOW.date()
    )
    assert first.account_id is not None
    _, query = sandbox.request_log[0]
    assert parse_qs(query)["user.fields"] == ["public_metrics"]


def test_duplicates_are_requested_once_ignoring_case(sandbox: SandboxServer) -> None:
    result = connector(sandbox).extract([USERNAMES[0], USERNAMES[0].upper(), USERNAMES[1]])

    assert result.requests_sent == 1
    _, query = sandbox.request_log[0]
    assert parse_qs(query)["usernames"] == [f"{USERNAMES[0]},{USERNAMES[1]}"]


def test_usernames_match_case_insensitively(sandbox: SandboxServer) -> None:
    result = connector(sandbox).extract([USERNAMES[3].lower()])

    (observation,) = XConnector.parse(result.responses[0])
    assert observation.account_handle == USERNAMES[3].lower()
    assert observation.status is AccountStatus.OK


def test_unknown_and_suspended_accounts(sandbox: SandboxServer) -> None:
    result = connector(sandbox).extract([USERNAMES[0], "nosuchuser", "Banned_1"])

    body = json.loads(result.responses[0].body)
    assert body["errors"][0] == {
        "value": "nosuchuser",
        "detail": "Could not find user with usernames: [nosuchuser].",
        "title": "Not Found Error",
        "resource_type": "user",
        "parameter": "usernames",
        "resource_id": "nosuchuser",
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }
    statuses = {o.account_handle: o.status for o in XConnector.parse(result.responses[0])}
    assert statuses == {
        USERNAMES[0]: AccountStatus.OK,
        "nosuchuser": AccountStatus.NOT_FOUND,
        "Banned_1": AccountStatus.SUSPENDED,
    }


def test_wrong_token_raises_without_leaking_it(sandbox: SandboxServer) -> None:
    secret = "wrong-secret-value-77"
    with pytest.raises(PlatformError) as raised:
        connector(sandbox, token=secret).extract(USERNAMES[:3])

    assert "401" in str(raised.value)
    assert secret not in str(raised.value)
    assert secret not in repr(raised.value)
    assert sandbox.requests_to(USERS_BY_PATH) == 1


def test_token_never_lands_in_the_raw_response(sandbox: SandboxServer) -> None:
    result = connector(sandbox).extract(USERNAMES[:2])

    response = result.responses[0]
    assert TOKEN not in response.request_url
    assert TOKEN.encode() not in response.body
    assert TOKEN not in repr(connector(sandbox))


def test_a_protected_account_s_counts_are_counted() -> None:
    # X shows a protected account's counts and sends them: labelled protected, they were
    # landed and then left out of every reach mart, as if the executive had no audience.
    names = [*USERNAMES[:2], "Locked_1"]
    with SandboxServer(
        roster_with_x(names), token=TOKEN, clock=lambda: NOW, x_protected=("Locked_1",)
    ) as server:
        result = connector(server).extract(names)
        assert server.requests_to(USERS_BY_PATH) == 1

    seen = {
        o.account_handle: (o.status, o.followers)
        for o in observations_of(result.responses).values()
    }
    assert seen[USERNAMES[0]][0] is AccountStatus.OK
    assert seen["Locked_1"] == (
        AccountStatus.OK,
        synthetic_metrics("x", "Locked_1", NOW.date())[0],
    )


def test_the_sandbox_sends_protected_only_when_asked(sandbox: SandboxServer) -> None:
    def users(fields: str) -> list[dict[str, object]]:
        reply = httpx.get(
            sandbox.base_url + USERS_BY_PATH,
            params={"usernames": USERNAMES[0], "user.fields": fields},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        return reply.json()["data"]

    assert "protected" not in users("public_metrics")[0]
    assert users("public_metrics,protected")[0]["protected"] is False


def test_post_count_variant_is_accepted() -> None:
    with SandboxServer(
        roster_with_x(USERNAMES[:5]),
        token=TOKEN,
        clock=lambda: NOW,
        x_post_count_field="post_count",
    ) as server:
        result = connector(server).extract(USERNAMES[:2])

    body = json.loads(result.responses[0].body)
    assert "post_count" in body["data"][0]["public_metrics"]
    (first, _) = XConnector.parse(result.responses[0])
    assert first.posts == synthetic_metrics("x", USERNAMES[0], NOW.date())[2]


def test_429_with_reset_beyond_max_wait_stops_and_defers(sandbox: SandboxServer) -> None:
    sandbox.add_fault("429", platform="x", reset_seconds=900)
    sleeps = Sleeps()

    result = connector(sandbox, sleep=sleeps, max_wait_seconds=60).extract(USERNAMES[:150])

    assert sandbox.requests_to(USERS_BY_PATH) == 1
    assert result.responses == []
    assert result.deferred_handles == USERNAMES[:150]
    assert result.message is not None
    assert sleeps == []


def test_a_429_whose_reset_is_past_waits_a_growing_minimum(sandbox: SandboxServer) -> None:
    # A reset now or past (a clock ahead of X's) must not be retried at once, with no wait.
    sandbox.add_fault("429", platform="x", reset_seconds=-5)
    sleeps = Sleeps()

    result = connector(sandbox, sleep=sleeps).extract(USERNAMES[:3])

    assert sleeps == [1.0]
    assert result.requests_sent == 2
    assert result.is_complete


def test_429s_after_every_allowed_wait_say_the_waits_ran_out(sandbox: SandboxServer) -> None:
    sandbox.add_fault("429", platform="x", reset_seconds=-5, times=4)
    sleeps = Sleeps()

    result = connector(sandbox, sleep=sleeps, max_rate_limit_waits=3).extract(USERNAMES[:3])

    assert sleeps == [1.0, 2.0, 4.0]
    assert sandbox.requests_to(USERS_BY_PATH) == 4
    assert result.deferred_handles == USERNAMES[:3]
    assert "still rate limited after 3 wait(s)" in (result.message or "")
    assert "exceeds" not in (result.message or "")


def test_spent_window_is_not_sent_into() -> None:
    with SandboxServer(roster_with_x(USERNAMES), token=TOKEN, x_limit=1) as server:
        result = connector(server).extract(USERNAMES[:150])
        assert server.requests_to(USERS_BY_PATH) == 1
    assert len(result.responses) == 1
    assert result.deferred_handles == USERNAMES[100:150]


def test_500_then_success_is_retried(sandbox: SandboxServer) -> None:
    sandbox.add_fault("500", platform="x")
    sleeps = Sleeps()

    result = connector(sandbox, sleep=sleeps).extract(USERNAMES[:3])

    assert result.requests_sent == 2
    assert len(sleeps) == 1
    assert result.deferred_handles == []


def test_parse_protected_without_metrics_and_tweet_count() -> None:
    body = {
        "data": [
            {
                "id": "1",
                "username": "Open",
                "public_metrics": {"followers_count": 5, "following_count": 1, "tweet_count": 9},
            },
            {
                "id": "2",
                "username": "Locked",
                "protected": True,
                "public_metrics": {"followers_count": 7, "following_count": 1, "tweet_count": 2},
            },
            {"id": "3", "username": "NoMetrics"},
        ]
    }
    response = RawResponse(
        platform="x",
        requested_handles=("open", "Locked", "NoMetrics"),
        request_url="https://api.x.com/2/users/by?usernames=open,Locked,NoMetrics",
        status_code=200,
        body=json.dumps(body).encode(),
        fetched_at=NOW,
        elapsed_ms=1.0,
    )

    observations = XConnector.parse(response)

    assert [(o.status, o.posts) for o in observations] == [
        (AccountStatus.OK, 9),
        # A protected account's counts are public: counted.
        (AccountStatus.OK, 2),
        # Asked for, public_metrics come with every user: none is no answer.
        (AccountStatus.ERROR, None),
    ]


def _reply(body: object, handles: tuple[str, ...]) -> RawResponse:
    return RawResponse(
        platform="x",
        requested_handles=handles,
        request_url="https://api.x.com/2/users/by?usernames=" + ",".join(handles),
        status_code=200,
        body=json.dumps(body).encode(),
        fetched_at=NOW,
        elapsed_ms=1.0,
    )


# The problem type of an unknown user (reference/platform-apis.md).
X_NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
GENERIC_ERROR = {"title": "Service Unavailable", "detail": "Internal error", "type": "about:blank"}


def test_a_200_whose_errors_name_no_user_is_x_failing_and_retried() -> None:
    assert XConnector.body_is_error({"errors": [GENERIC_ERROR]})
    assert (
        XConnector(bearer_token=TOKEN)
        .judge(200, json.dumps({"errors": [GENERIC_ERROR]}).encode(), httpx.Headers())
        .action
        == "retry"
    )
    # An answer whose errors name the unknown users is no failure.
    assert not XConnector.body_is_error(
        {"errors": [{"value": "nosuchuser", "title": "Not Found Error"}]}
    )


@pytest.mark.parametrize(
    "document",
    [
        {"data": []},
        {"data": None},
        {"data": [], "errors": []},
        {"data": [], "errors": [GENERIC_ERROR]},
        [],
    ],
    ids=["empty data", "null data", "empty both", "an error naming no user", "a list"],
)
def test_a_200_without_users_or_errors_naming_users_is_x_failing_and_retried(document) -> None:
    # Read as an answer, it made every requested account not found: the day's counts of
    # accounts that exist were replaced with nothing.
    assert XConnector.body_is_error(document)
    assert not XConnector.body_is_error(
        {"data": [], "errors": [{"value": "nosuchuser", "title": "Not Found Error"}]}
    )


def test_a_user_in_neither_list_is_an_error_not_gone() -> None:
    user = {"id": "1", "username": "Open", "public_metrics": {"followers_count": 5}}
    gone = {"value": "Gone", "title": "Not Found Error", "type": X_NOT_FOUND}
    partial = _reply({"data": [user], "errors": [gone, GENERIC_ERROR]}, ("Open", "Gone", "Other"))
    complete = _reply({"data": [user], "errors": [gone]}, ("Open", "Gone", "Other"))

    assert [o.status for o in XConnector.parse(partial)] == [
        AccountStatus.OK,
        AccountStatus.NOT_FOUND,
        AccountStatus.ERROR,
    ]
    # X names each unknown user among its errors (``errors`` holds "the rest"): one in
    # neither list went unanswered, without an error naming no user too (it was taken for
    # not found, replacing the day's counts).
    assert [o.status for o in XConnector.parse(complete)] == [
        AccountStatus.OK,
        AccountStatus.NOT_FOUND,
        AccountStatus.ERROR,
    ]


def test_a_reply_leaving_users_out_of_both_lists_is_asked_again(sandbox: SandboxServer) -> None:
    # X answered the first user of 100 and left the other 99 out of data and errors: loaded,
    # the run was green with 99 accounts missing their day. Asked again, X answered whole.
    sandbox.add_fault("part_way", platform="x")
    sleeps = Sleeps()

    result = connector(sandbox, sleep=sleeps).extract(USERNAMES[:150])

    assert result.requests_sent == sandbox.requests_to(USERS_BY_PATH) == 3
    assert len(sleeps) == 1  # the backoff before the second try of the first batch
    observations = [o for r in result.responses for o in XConnector.parse(r)]
    assert [o.account_handle for o in observations] == USERNAMES[:150]
    assert all(o.status is AccountStatus.OK for o in observations)
    assert not result.gave_up
    assert result.deferred_handles == []


def test_a_batch_answered_part_way_at_every_try_is_given_up_for_a_later_try(
    sandbox: SandboxServer,
) -> None:
    # Its accounts are deferred and the platform fails (a later try of the run asks them
    # again), where its one answered user made the day look loaded.
    sandbox.set_fault("part_way", platform="x")

    result = connector(sandbox).extract(USERNAMES[:50])

    assert result.requests_sent == 4
    assert result.gave_up
    assert result.deferred_handles == USERNAMES[:50]
    assert not result.responses
    assert result.message is not None
    assert "answering 1 of the 50 users asked (none of 49 in its data or its errors" in (
        result.message
    )
    assert "gave up after 4 attempts" in result.message


def test_build_connector() -> None:
    assert isinstance(build_connector("x", "http://127.0.0.1:1", "t"), XConnector)
    with pytest.raises(PlatformError, match="bearer token"):
        build_connector("x", "http://127.0.0.1:1", None)
    with pytest.raises(PlatformError, match="threads"):
        build_connector("threads", "http://127.0.0.1:1", None)

    with pytest.raises(PlatformError, match="unknown platform"):
        build_connector("myspace", "http://127.0.0.1:1", None)


def test_a_failed_batch_s_message_names_its_first_users_not_all(sandbox: SandboxServer) -> None:
    # A hundred usernames filled the message in the task log, the alert and
    # audit.platform_loads with 2 KB of names.
    for _ in range(4):
        sandbox.add_fault("500", platform="x")

    result = connector(sandbox).extract(USERNAMES[:100])

    message = result.message or ""
    assert "usernames=Exec_0000,Exec_0001,Exec_0002,...(100)" in message, message
    assert "Exec_0003" not in message
    assert len(message) < 400, message
