"""Replies the sandbox does not serve: a redirect to another host, a body whose declared
gzip encoding is garbage, an error page that escapes the echoed token the way Gson or an
HTML template does, a rate-limit reset spelled with a lowercase ``z``, counts in every form
a JSON encoder may write them, Instagram's code 24 for an account that is no business
account. Each comes from a real loopback HTTP server."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from social_leadership.platform_metrics import extract_platform
from social_leadership.platforms import build_connector
from social_leadership.platforms.base import PlatformError

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
SECRET = "Hostile/t0k+en=Z9q"
HANDLES = {
    "x": "acct_0001",
    "bluesky": "acct0001.bsky.social",
    "mastodon": "acct0001@mastodon.example",
    "youtube": "@acct0001",
    "facebook": "acct.page0001",
    "linkedin": "urn:li:organization:1001",
    "threads": "acct.th0001",
}
# (status, headers, body) for a request (its path with query, its headers); a header given
# a list of values is sent once per value.
Reply = tuple[int, dict[str, Any], bytes]
Answer = Callable[[str, dict[str, str]], Reply]


class _Server(http.server.ThreadingHTTPServer):
    answer: Answer
    received: list[tuple[str, dict[str, str]]]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.received.append((self.path, headers))
        status, reply_headers, body = self.server.answer(self.path, headers)
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **reply_headers}.items():
            # A list: the header sent once per value, as a proxy that repeats one does.
            for each in value if isinstance(value, list) else [value]:
                self.send_header(name, each)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(answer: Answer) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.answer = answer
    server.received = []
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def connector(platform: str, base_url: str):
    return build_connector(
        platform, base_url, SECRET, None, sleep=lambda _: None, backoff_seconds=0
    )


@pytest.fixture
def elsewhere() -> Iterator[_Server]:
    """Another host: where a redirect points. It must never see the token."""
    with serving(lambda path, headers: (200, {}, b'{"data": []}')) as server:
        yield server


@pytest.mark.parametrize("platform", sorted(HANDLES))
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_fails_the_platform(
    platform: str, status: int, elsewhere: _Server
) -> None:
    target = f"{url(elsewhere)}/moved?copy=1"
    # An API that moved answers with a JSON body, which once landed as a green day of errors.
    moved = json.dumps({"message": "moved", "url": target}).encode()
    with (
        serving(lambda path, headers: (status, {"Location": target}, moved)) as api,
        pytest.raises(PlatformError) as raised,
    ):
        connector(platform, url(api)).extract([HANDLES[platform]])

    assert elsewhere.received == []
    assert f"HTTP {status}" in str(raised.value)
    assert "redirect" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_body_that_is_not_the_gzip_it_claims_is_a_transient_fault(tmp_path: Path) -> None:
    with serving(lambda path, headers: (200, {"Content-Encoding": "gzip"}, b"not gzip")) as api:
        outcome = extract_platform(
            "x",
            [HANDLES["x"]],
            url(api),
            SECRET,
            tmp_path / "landing",
            "run-1",
            NOW,
            now=NOW,
            sleep=lambda _: None,
            max_attempts=2,
        )
        attempts = len(api.received)

    assert attempts == 2
    assert outcome.status == "failed"
    assert outcome.transient
    assert "DecodingError" in (outcome.message or "")
    assert outcome.landing_dir is not None


def _escaped_echo(path: str, headers: dict[str, str]) -> Reply:
    """A 400 that quotes the token as Gson (\\u003d) and an HTML template (&#43;) write it,
    and the URL as a proxy that encoded it once more."""
    authorization = headers.get("authorization", "")
    gson = authorization.replace("=", "\\u003d")
    html = authorization.replace("+", "&#43;")
    body = json.dumps({"gson": gson, "html": html, "proxy": quote(path, safe="")})
    return 400, {}, body.replace("\\\\u003d", "\\u003d").encode()


@pytest.mark.parametrize("platform", ["x", "youtube", "facebook"])
def test_an_escaped_echo_of_the_token_never_reaches_the_error(platform: str) -> None:
    with serving(_escaped_echo) as api:
        with pytest.raises(PlatformError) as raised:
            connector(platform, url(api)).extract([HANDLES[platform]])
        path, headers = api.received[-1]

    assert SECRET in headers.get("authorization", "") or quote(SECRET, safe="") in path
    message = str(raised.value)
    assert "HTTP 400" in message
    for fragment in ("Hostile/t0k", "Hostile%2Ft0k", "Hostile%252Ft0k", "en\\u003dZ9q"):
        assert fragment not in message


def _instances(path: str, headers: dict[str, str]) -> Reply:
    """One server for every instance (``/<instance>/api/v1/...``): moved.example redirects,
    the others answer each lookup."""
    if path.startswith("/moved.example/"):
        return 301, {"Location": "http://127.0.0.1:1/elsewhere"}, b'{"message": "moved"}'
    handle = path.rsplit("acct=", 1)[-1]
    body = {"id": handle, "followers_count": 7, "following_count": 1, "statuses_count": 2}
    return 200, {}, json.dumps(body).encode()


def test_one_mastodon_instance_that_redirects_fails_the_platform_but_not_the_others(
    tmp_path: Path,
) -> None:
    from social_leadership.platform_metrics import load_platform_day
    from social_leadership.warehouse import connect

    handles = ["ann@good.example", "bob@moved.example", "cy@other.example"]
    with serving(_instances) as api:
        outcome = extract_platform(
            "mastodon",
            handles,
            url(api) + "/{instance}",
            None,
            tmp_path / "landing",
            "run-1",
            NOW,
            now=NOW,
            sleep=lambda _: None,
        )

    # Failed, and not for a transient reason: an Airflow retry would meet the same redirect.
    assert outcome.status == "failed"
    assert not outcome.transient
    assert "HTTP 301" in (outcome.message or "")
    assert outcome.landing_dir is not None
    with connect(tmp_path / "warehouse.duckdb") as con:
        loaded = load_platform_day(
            con,
            tmp_path / "landing",
            "mastodon",
            NOW.date(),
            "run-1",
            run_dir=Path(outcome.landing_dir),
        )
        statuses = dict(
            con.execute(
                "select account_handle, account_status from raw.platform_metrics"
            ).fetchall()
        )
    assert loaded.status == "failed"
    assert statuses == {
        "ann@good.example": "ok",
        "bob@moved.example": "deferred",
        "cy@other.example": "ok",
    }


def _throttled_once(reset: str) -> Answer:
    """A Mastodon instance whose first reply is a 429 naming its reset as ``reset``."""
    replies = iter(
        [(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, b'{"error": "x"}')]
    )

    def answer(path: str, headers: dict[str, str]) -> Reply:
        account = {"id": "7", "username": "acct0001", "acct": "acct0001", "followers_count": 5}
        return next(replies, (200, {}, json.dumps(account).encode()))

    return answer


_IN_20_SECONDS = (NOW + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%S.000")


@pytest.mark.parametrize(
    "reset",
    [
        _IN_20_SECONDS + "Z",
        _IN_20_SECONDS + "z",
        str(int((NOW + timedelta(seconds=20)).timestamp())),
        "20",
        "20.0",
    ],
    ids=["iso_Z", "iso_z", "epoch_seconds", "seconds_left", "seconds_left_decimal"],
)
def test_a_reset_is_waited_for_in_every_form_it_is_written(reset: str) -> None:
    # ISO-8601 with the UTC designator in either case (RFC 3339 allows both); epoch seconds
    # as the reference names them; the seconds left, as the IETF RateLimit headers do.
    sleeps: list[float] = []
    with serving(_throttled_once(reset)) as api:
        result = build_connector(
            "mastodon", url(api), None, None, sleep=sleeps.append, clock=lambda: NOW
        ).extract([HANDLES["mastodon"]])

    assert sleeps == [20.0]
    assert result.is_complete
    assert len(api.received) == 2


# --- counts in every form a JSON encoder may give them -----------------------------------


def _reply_counting(platform: str, followers: object) -> dict[str, object]:
    """The platform's reply for its account in HANDLES, ``followers`` as sent."""
    handle = HANDLES.get(platform)  # Instagram's reply names no handle
    return {
        "x": {
            "data": [
                {
                    "id": "1",
                    "username": handle,
                    "public_metrics": {
                        "followers_count": followers,
                        "following_count": 2,
                        "tweet_count": 3,
                    },
                }
            ]
        },
        "bluesky": {
            "profiles": [
                {
                    "did": "did:plc:" + "a" * 24,
                    "handle": handle,
                    "followersCount": followers,
                    "followsCount": 2,
                    "postsCount": 3,
                }
            ]
        },
        "mastodon": {
            "id": "7",
            "username": "acct0001",
            "acct": "acct0001",
            "followers_count": followers,
            "following_count": 2,
            "statuses_count": 3,
        },
        "youtube": {
            "kind": "youtube#channelListResponse",
            "items": [
                {
                    "id": "UC" + "a" * 22,
                    "statistics": {
                        "subscriberCount": followers,
                        "hiddenSubscriberCount": False,
                        "videoCount": "3",
                    },
                }
            ],
        },
        "facebook": {"followers_count": followers, "fan_count": 900, "id": "1"},
        "instagram": {
            "business_discovery": {
                "followers_count": followers,
                "follows_count": 2,
                "media_count": 3,
                "id": "9",
            },
            "id": "1",
        },
        "threads": {"username": handle, "follower_count": followers, "id": "5"},
        "linkedin": {"firstDegreeSize": followers},
    }[platform]


def _observe(platform: str, answer: Answer, handles: list[str]) -> dict[str, tuple[str, object]]:
    """(status, followers) per handle, as the platform's connector reads ``answer``."""
    with serving(answer) as api:
        return _observe_in(api, platform, handles)


def _observe_in(api: _Server, platform: str, handles: list[str]) -> dict[str, tuple[str, object]]:
    """(status, followers) per handle, as the platform's connector reads ``api``'s replies."""
    login = "1" if platform == "instagram" else None
    connector = build_connector(platform, url(api), SECRET, login, sleep=lambda _: None)
    result = connector.extract(handles)
    assert result.is_complete
    return {
        o.account_handle: (o.status.value, o.followers)
        for r in result.responses
        for o in connector.parse(r)
    }


def _answering(body: object) -> Answer:
    return lambda path, headers: (200, {}, json.dumps(body).encode())


@pytest.mark.parametrize("platform", sorted(HANDLES))
@pytest.mark.parametrize(
    "followers", [583423, 583423.0, "583423"], ids=["integer", "float", "digits"]
)
def test_a_whole_number_count_is_read_as_an_integer_float_or_digit_string(
    platform: str, followers: object
) -> None:
    answer = _answering(_reply_counting(platform, followers))

    seen = _observe(platform, answer, [HANDLES[platform]])

    assert seen == {HANDLES[platform]: ("ok", 583423)}


@pytest.mark.parametrize("platform", sorted(HANDLES))
@pytest.mark.parametrize(
    "followers",
    [12.5, "1.2K", True, {"value": 3}, 2**63, str(10**30), 1e300],
    ids=["fraction", "abbreviated", "boolean", "object", "beyond-bigint", "digits", "huge-float"],
)
def test_a_count_that_is_not_a_whole_number_or_too_large_is_an_error_for_its_account(
    platform: str, followers: object
) -> None:
    answer = _answering(_reply_counting(platform, followers))

    seen = _observe(platform, answer, [HANDLES[platform]])

    assert seen == {HANDLES[platform]: ("error", None)}


_ENTRIES = {"x": "data", "bluesky": "profiles", "youtube": "items"}
# (platform, account asked): YouTube by channel id (its batch, each item going to the id it
# carries) and by handle (forHandle, one channel a request).
_TWICE = [("x", HANDLES["x"]), ("bluesky", HANDLES["bluesky"])]
_TWICE += [("youtube", "UC" + "a" * 22), ("youtube", HANDLES["youtube"])]


@pytest.mark.parametrize(("platform", "asked"), _TWICE)
@pytest.mark.parametrize(
    ("second", "seen"), [(583423, ("ok", 583423)), (584423, ("error", None))], ids=["same", "other"]
)
def test_an_account_answered_twice_with_other_figures_is_an_error_never_a_pick(
    platform: str, asked: str, second: int, seen: tuple[str, object]
) -> None:
    reply = _reply_counting(platform, 583423)
    entries = _ENTRIES[platform]
    again = _reply_counting(platform, second)[entries]
    # What is no figure may differ between the two: one answer all the same.
    again[0]["indexedAt" if platform == "bluesky" else "etag"] = "2026-03-02T06:00:01Z"
    reply[entries] = [*reply[entries], *again]

    assert _observe(platform, _answering(reply), [asked]) == {asked: seen}


def test_counts_past_float_precision_and_up_to_bigint_are_stored_exactly(tmp_path: Path) -> None:
    from social_leadership.platform_metrics import load_platform_day
    from social_leadership.warehouse import connect

    def user(name: str, followers: int | None) -> dict[str, object]:
        metrics = {"followers_count": followers, "following_count": 1, "tweet_count": 1}
        return {"id": name, "username": name, "public_metrics": metrics}

    counts = {"past_2_53": 2**53 + 1, "bigint_max": 2**63 - 1, "unreadable": None}
    reply = {"data": [user(name, followers) for name, followers in counts.items()]}
    with serving(_answering(reply)) as api:
        outcome = extract_platform(
            "x", list(counts), url(api), SECRET, tmp_path / "landing", "run-1", NOW, now=NOW
        )
    with connect(tmp_path / "warehouse.duckdb") as con:
        load_platform_day(con, tmp_path / "landing", "x", NOW.date(), "run-1")
        stored = con.execute(
            "select account_handle, account_status, followers from raw.platform_metrics"
        ).fetchall()

    assert outcome.status == "landed"
    assert sorted(stored) == [
        ("bigint_max", "ok", 2**63 - 1),
        ("past_2_53", "ok", 2**53 + 1),
        ("unreadable", "error", None),
    ]


def test_an_unreadable_count_costs_only_its_own_account_of_a_batch() -> None:
    def user(name: str, followers: object) -> dict[str, object]:
        metrics = {"followers_count": followers, "following_count": 1, "tweet_count": 1}
        return {"id": name, "username": name, "public_metrics": metrics}

    answer = _answering({"data": [user("whole", 10.0), user("half", 12.5), user("text", "7")]})

    seen = _observe("x", answer, ["whole", "half", "text"])

    assert seen == {"whole": ("ok", 10), "half": ("error", None), "text": ("ok", 7)}


@pytest.mark.parametrize(
    ("page", "seen"),
    [
        ({"followers_count": 1000.0, "fan_count": 900}, ("ok", 1000)),
        # followers_count sent but unreadable: the likes are not its followers.
        ({"followers_count": 12.5, "fan_count": 900}, ("error", None)),
        ({"followers_count": "many", "fan_count": 900}, ("error", None)),
        # Only a Page that sends no followers_count at all is counted by its likes: a
        # null one is a count the reply lacks (an error, the day's earlier count kept).
        ({"fan_count": 900}, ("ok", 900)),
        ({"followers_count": None, "fan_count": "900"}, ("error", None)),
    ],
    ids=["float", "fraction", "text", "absent", "null"],
)
def test_facebook_counts_likes_only_when_no_follower_count_was_sent(
    page: dict[str, object], seen: tuple[str, object]
) -> None:
    answer = _answering({**page, "id": "1"})

    assert _observe("facebook", answer, [HANDLES["facebook"]]) == {HANDLES["facebook"]: seen}


@pytest.mark.parametrize(
    ("platform", "body"),
    [
        # Asked for public_metrics, X sends them for every user it returns.
        ("x", {"data": [{"id": "1", "username": HANDLES["x"]}]}),
        # Asked for part=statistics, YouTube sends them for every channel it returns.
        ("youtube", {"items": [{"id": "UC" + "a" * 22}]}),
        # No count and no error object: that organization's answer (it failed LinkedIn).
        ("linkedin", {}),
    ],
    ids=["x", "youtube", "linkedin"],
)
def test_a_reply_without_its_counts_block_is_an_error_not_a_hidden_count(
    platform: str, body: dict[str, object]
) -> None:
    seen = _observe(platform, _answering(body), [HANDLES[platform]])

    assert seen == {HANDLES[platform]: ("error", None)}


def _instagram_discovery(path: str, headers: dict[str, str]) -> Reply:
    """Business discovery where ``personal`` is no business account: Graph's code 24 with
    the "cannot find user" subcode."""
    if "username%28personal%29" in path:
        error = {
            "message": "Invalid parameter",
            "type": "OAuthException",
            "code": 24,
            "error_subcode": 2207013,
            "fbtrace_id": "x",
        }
        return 400, {}, json.dumps({"error": error}).encode()
    found = {"followers_count": 267793, "follows_count": 1, "media_count": 1205, "id": "9"}
    return 200, {}, json.dumps({"business_discovery": found, "id": "1"}).encode()


def test_an_instagram_account_answered_with_code_24_is_not_found_alone() -> None:
    seen = _observe("instagram", _instagram_discovery, ["biz1", "personal", "biz2"])

    assert seen == {
        "biz1": ("ok", 267793),
        "personal": ("not_found", None),
        "biz2": ("ok", 267793),
    }


@pytest.mark.parametrize(
    ("body", "not_found"),
    [
        (b'{"status": 404, "serviceErrorCode": 0, "message": "Not Found"}', True),
        (b"", True),
        (b"<html><body><h1>404 Not Found</h1>nginx</body></html>", False),
        (b'{"error": "MethodNotImplemented", "message": "no such route"}', False),
        (b"true", False),
        # LinkedIn's answer to a route it does not have (a wrong base URL): no organization's.
        (
            b'{"status": 404, "serviceErrorCode": 0, "code": "RESOURCE_NOT_FOUND", '
            b'"message": "No virtual resource found"}',
            False,
        ),
    ],
    ids=[
        "json_error",
        "empty",
        "html_page",
        "another_servers_error",
        "json_not_an_error",
        "unknown_route",
    ],
)
def test_a_linkedin_404_is_an_unknown_organization_only_when_the_api_sent_it(
    body: bytes, not_found: bool
) -> None:
    handle = HANDLES["linkedin"]
    answer: Answer = lambda path, headers: (404, {"Content-Type": "text/html"}, body)  # noqa: E731
    if not_found:
        assert _observe("linkedin", answer, [handle]) == {handle: ("not_found", None)}
        return
    with serving(answer) as api, pytest.raises(PlatformError) as raised:
        connector("linkedin", url(api)).extract([handle])
    assert "HTTP 404" in str(raised.value)


# --- what other emulators of the reference may send ---------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"errors": []},
        {"meta": {"result_count": 0}},
        {},
        {"errors": ["Internal error"]},
        {"errors": [{"title": "Service Unavailable", "detail": "Upstream [timeout]"}]},
    ],
    ids=["empty_errors", "meta_only", "empty_object", "errors_not_objects", "bracket_no_user"],
)
def test_an_x_reply_without_users_that_names_none_is_x_failing(body: object) -> None:
    """X names each unknown user among its errors (reference): a reply with no user data
    that names no user answers nothing, and is retried, never every user not found."""
    with serving(_answering(body)) as api:
        result = connector("x", url(api)).extract(["ghost"])
        sent = len(api.received)

    assert sent > 1
    assert result.deferred_handles == ["ghost"]
    assert not result.is_complete


def test_an_x_user_sent_as_an_object_is_read() -> None:
    user = {"id": "1", "username": "Open", "public_metrics": {"followers_count": 5}}

    assert _observe("x", _answering({"data": user}), ["open"]) == {"open": ("ok", 5)}


def test_an_x_error_that_names_its_user_only_in_its_detail_is_that_user_s() -> None:
    errors = [
        {"title": "Not Found Error", "detail": "Could not find user with usernames: [ghost]."}
    ]
    user = {"id": "1", "username": "Open", "public_metrics": {"followers_count": 5}}

    seen = _observe("x", _answering({"data": [user], "errors": errors}), ["Open", "ghost"])

    assert seen == {"Open": ("ok", 5), "ghost": ("not_found", None)}


def _x_throttled_once(headers: dict[str, Any]) -> Answer:
    replies = iter([(429, headers, b'{"title": "Too Many Requests", "status": 429}')])
    user = {"id": "1", "username": "acct_0001", "public_metrics": {"followers_count": 5}}
    return lambda path, request_headers: next(
        replies, (200, {}, json.dumps({"data": [user]}).encode())
    )


@pytest.mark.parametrize(
    "headers",
    [
        # RFC 9110's three HTTP-date forms; asctime names no zone (it is GMT).
        {"Retry-After": (NOW + timedelta(seconds=20)).strftime("%a %b %d %H:%M:%S %Y")},
        {"Retry-After": (NOW + timedelta(seconds=20)).strftime("%a, %d %b %Y %H:%M:%S GMT")},
        # A proxy that repeats the reset header.
        {"x-rate-limit-reset": [str(int(NOW.timestamp()) + 20)] * 2},
    ],
    ids=["retry_after_asctime", "retry_after_imf", "reset_sent_twice"],
)
def test_a_wait_is_read_from_every_form_a_server_may_give_it(headers: dict[str, Any]) -> None:
    sleeps: list[float] = []
    with serving(_x_throttled_once(headers)) as api:
        result = build_connector(
            "x", url(api), SECRET, None, sleep=sleeps.append, clock=lambda: NOW
        ).extract([HANDLES["x"]])

    assert sleeps == [20.0]
    assert result.is_complete


def test_a_graph_throttle_code_sent_as_a_string_stops_the_run() -> None:
    throttled = {
        "error": {"message": "(#17) User request limit reached", "code": "17", "is_transient": True}
    }
    with serving(lambda path, headers: (400, {}, json.dumps(throttled).encode())) as api:
        result = connector("facebook", url(api)).extract(["page.one", "page.two"])
        sent = len(api.received)

    assert sent == 1
    assert sorted(result.deferred_handles) == ["page.one", "page.two"]


def test_a_mastodon_account_gone_for_good_is_not_found_alone() -> None:
    def answer(path: str, headers: dict[str, str]) -> Reply:
        if "gone" in path:
            return 410, {}, b'{"error": "Record not found"}'
        account = {"id": "7", "username": "ann", "acct": "ann", "followers_count": 5}
        return 200, {}, json.dumps(account).encode()

    seen = _observe("mastodon", answer, ["ann@mastodon.example", "gone@mastodon.example"])

    assert seen == {
        "ann@mastodon.example": ("ok", 5),
        "gone@mastodon.example": ("not_found", None),
    }


def test_a_youtube_limit_named_by_google_s_status_alone_defers_the_rest() -> None:
    # As a 403, which YouTube also sends for a spent quota (a 429 is a throttle anyway).
    exhausted = {
        "error": {"code": 403, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}
    }
    with serving(lambda path, headers: (403, {}, json.dumps(exhausted).encode())) as api:
        result = connector("youtube", url(api)).extract([HANDLES["youtube"]])

    assert result.deferred_handles == [HANDLES["youtube"]]
    assert not result.is_complete


# --- a count not sent, or sent as hidden ----------------------------------------------------

_COUNT_MARK = "follower-count-here"


def _reply_with_count(platform: str, form: str) -> object:
    """The platform's reply for one account, its follower count absent, null or -1 (for
    Facebook: no likes either, which a Page without followers_count is counted by)."""

    def edit(node: object) -> object:
        if isinstance(node, dict):
            edited = {}
            for key, value in node.items():
                if platform == "facebook" and key == "fan_count":
                    continue
                if value == _COUNT_MARK:
                    if form != "absent":
                        edited[key] = None if form == "null" else -1
                    continue
                edited[key] = edit(value)
            return edited
        if isinstance(node, list):
            return [edit(item) for item in node]
        return node

    return edit(_reply_counting(platform, _COUNT_MARK))


_COUNTED_HANDLES = {**HANDLES, "instagram": "acct.ig0001"}


@pytest.mark.parametrize(
    ("platform", "form"),
    [
        (platform, form)
        for platform in sorted(_COUNTED_HANDLES)
        for form in ("absent", "null", "negative")
        # LinkedIn's reply is its count alone: without it, a garbled reply (retried).
        if (platform, form) != ("linkedin", "absent")
    ],
)
def test_a_follower_count_not_sent_is_an_error_and_a_negative_one_a_hidden_count(
    platform: str, form: str
) -> None:
    # Read as hidden, a reply without the count replaced the counts the day already had
    # (only an error or a deferral keeps them), on a green run.
    handle = _COUNTED_HANDLES[platform]
    answer = _answering(_reply_with_count(platform, form))

    seen = _observe(platform, answer, [handle])

    if form == "negative" and platform != "linkedin":
        assert seen == {handle: ("hidden_counts", None)}
    else:
        assert seen == {handle: ("error", None)}


def test_youtube_s_own_flag_is_a_hidden_count() -> None:
    channel = {"id": "UC" + "a" * 22, "statistics": {"hiddenSubscriberCount": True}}

    seen = _observe("youtube", _answering({"items": [channel]}), [HANDLES["youtube"]])

    assert seen == {HANDLES["youtube"]: ("hidden_counts", None)}


def _graph_refusal(code: int, message: str, subcode: int | None = None) -> Answer:
    error: dict[str, object] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return lambda path, headers: (400, {}, json.dumps({"error": error}).encode())


def test_graph_s_invalid_parameter_error_on_the_own_node_stops_instagram():
    # The Instagram login set to the Page's id: every call gets this alike; read as "not
    # found", every executive was recorded gone on a green run.
    answer = _graph_refusal(
        100, "(#100) Tried accessing nonexisting field (business_discovery) on node type (Page)"
    )
    with serving(answer) as api, pytest.raises(PlatformError) as raised:
        build_connector("instagram", url(api), SECRET, "1", sleep=lambda _: None).extract(
            ["biz.one", "biz.two"]
        )

    said = str(raised.value)
    assert "Graph error 100" in said
    assert "nonexisting field" in said
    assert "slw_instagram" in said
    assert len(api.received) == 1


def test_graph_s_invalid_parameter_error_on_a_page_is_an_error_of_that_page_alone():
    # A Facebook request is of the account's own node: a person's profile id instead of a
    # Page's is that account's error, not every account's, and not "not found".
    def answer(path: str, headers: dict[str, str]) -> Reply:
        if "person.profile" in path:
            refusal = (
                "(#100) Tried accessing nonexisting field (followers_count) on node type (User)"
            )
            return _graph_refusal(100, refusal)(path, headers)
        return 200, {}, json.dumps({"followers_count": 7, "id": "1"}).encode()

    seen = _observe("facebook", answer, ["page.one", "person.profile"])

    assert seen == {"page.one": ("ok", 7), "person.profile": ("error", None)}


def test_graph_s_unsupported_get_of_a_page_and_threads_unknown_user_are_that_account_alone():
    unsupported = _graph_refusal(100, "Unsupported get request. Object does not exist", 33)
    assert _observe("facebook", unsupported, ["gone.page"]) == {"gone.page": ("not_found", None)}
    for subcode in (33, None):
        unknown = _graph_refusal(100, "(#100) No public Threads profile has this name", subcode)
        assert _observe("threads", unknown, ["gone.user"]) == {"gone.user": ("not_found", None)}


class _Trickling(http.server.BaseHTTPRequestHandler):
    """A reply whose body comes a byte every 50 ms (10 s in all): each read is quick, the
    whole is not."""

    def do_GET(self) -> None:
        body = json.dumps({"firstDegreeSize": 5, "pad": "x" * 160}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the client stopped reading

    def log_message(self, *args: object) -> None:
        pass


def test_a_reply_trickling_in_is_cut_off_at_the_timeout_and_retried() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        trickled = build_connector(
            "linkedin",
            f"http://127.0.0.1:{server.server_address[1]}",
            SECRET,
            None,
            sleep=lambda _: None,
            timeout_seconds=0.5,
            max_attempts=2,
        )
        started = time.monotonic()
        result = trickled.extract([HANDLES["linkedin"]])
        took = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()

    assert result.gave_up
    assert result.requests_sent == 2
    assert "ReadTimeout" in result.message
    assert "gave up after 2 attempts" in result.message
    # Two tries of about half a second each; the reply alone takes 10 s.
    assert took < 5, took


@pytest.mark.parametrize(
    ("username", "seen"),
    [("acct.th0001", ("ok", 7)), ("ACCT.TH0001", ("ok", 7)), ("someoneelse", ("error", None))],
    ids=["same", "other-case", "another"],
)
def test_a_threads_lookup_answered_by_another_profile_is_an_error(
    username: str, seen: tuple[str, object]
) -> None:
    answer = _answering({"username": username, "follower_count": 7, "id": "5"})

    assert _observe("threads", answer, [HANDLES["threads"]]) == {HANDLES["threads"]: seen}


class _TaskInstance:
    task_id = "load_facebook"

    def xcom_pull(self, task_ids: list[str]) -> list[None]:
        return [None for _ in task_ids]


def test_accounts_answered_without_readable_counts_are_counted_named_and_an_alert_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Page answered without its counts, or with a count in no readable form, keeps the
    # day's earlier counts; no log line, alert or audit figure named it, day after day.
    from social_leadership import alerts
    from social_leadership.task_payloads import to_xcom
    from social_leadership.tasks import load_task

    pages = {"goodpage": {"followers_count": 5}, "nocount": {}, "half": {"followers_count": 2.5}}

    def answer(path: str, headers: dict[str, str]) -> Reply:
        page = next(name for name in pages if f"/{name}?" in path)
        return 200, {}, json.dumps({**pages[page], "id": page}).encode()

    calls: list = []
    monkeypatch.setattr(alerts, "report_attention", calls.append)
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    now = datetime.now(UTC)
    with serving(answer) as api:
        extracted = extract_platform(
            "facebook", list(pages), url(api), SECRET, tmp_path / "data" / "landing", "run-1",
            now, now=now,
        )  # fmt: skip
    loaded = load_task(
        "facebook",
        to_xcom(extracted),
        {"run_id": "run-1", "logical_date": now, "ti": _TaskInstance()},
    )

    assert (loaded["status"], loaded["accounts_loaded"]) == ("loaded", 1)
    (facts,) = calls
    assert [fact.what for fact in facts] == [
        "platform facebook: 2 of 3 accounts answered without counts it could read (the day's "
        "earlier counts kept): half, nocount"
    ]
    assert facts[0].where == "raw.platform_metrics (account_status error)"


@pytest.mark.parametrize(
    ("platform", "status", "body", "said"),
    [
        (
            "facebook",
            400,
            {"error": {"message": "Session has expired", "code": 190, "error_subcode": 463}},
            "Graph error 190: access token expired: renew it",
        ),
        (
            "linkedin",
            401,
            {"serviceErrorCode": 65601, "message": "The token used in the request has expired"},
            "HTTP 401: credentials missing, wrong, expired or lacking access (the reply: "
            '{"serviceErrorCode": 65601, "message": "The token used in the request has expired"})',
        ),
        (
            "linkedin",
            403,
            "<html><body>Attention Required! | Cloudflare</body></html>",
            "HTTP 403: credentials missing, wrong, expired or lacking access (the reply: "
            "<html><body>Attention Required! | Cloudflare</body></html>)",
        ),
    ],
    ids=["graph-expired", "linkedin-expired", "proxy-page"],
)
def test_a_refused_token_says_what_answered_and_whether_it_expired(
    platform: str, status: int, body: object, said: str
) -> None:
    # Before: "access token rejected" or "credentials missing, wrong or lacking access",
    # and a proxy's 403 page was not shown (a 404's was).
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    with serving(lambda path, headers: (status, {}, raw)) as api:
        connector = build_connector(platform, url(api), SECRET, None, sleep=lambda _: None)
        with pytest.raises(PlatformError) as refused:
            connector.extract([HANDLES[platform]])

    assert said in str(refused.value)


def test_accounts_failing_apart_are_each_tried_once_after_the_first_and_said_once() -> None:
    # Each failing account after the first took the full retries and repeated the message.
    pages = ["p0", "bad1", "p1", "bad2", "p2", "bad3", "p3"]

    def answer(path: str, headers: dict[str, str]) -> Reply:
        if "/bad" in path:
            return 502, {}, b"<html>502 Bad Gateway</html>"
        return 200, {}, json.dumps({"followers_count": 5, "id": "1"}).encode()

    with serving(answer) as api:
        connector = build_connector("facebook", url(api), SECRET, None, sleep=lambda _: None)
        result = connector.extract(pages)

    assert result.gave_up
    assert not result.stopped_early
    assert result.deferred_handles == ["bad1", "bad2", "bad3"]
    assert sorted(o.account_handle for r in result.responses for o in connector.parse(r)) == [
        "p0", "p1", "p2", "p3"
    ]  # fmt: skip
    assert result.requests_sent == 4 + connector.max_attempts + 2
    assert result.message is not None
    assert result.message.count("gave up after") == 1
    assert result.message.endswith(
        "2 later accounts failed at the one try each had, left for the retry"
    )


@pytest.mark.parametrize(("second", "seen"), [(10, ("ok", 10)), (11, ("error", None))])
def test_a_mastodon_batch_answering_an_id_twice_with_other_figures_is_an_error(
    second: int, seen: tuple[str, object]
) -> None:
    def account(followers: int) -> dict[str, object]:
        return {
            "id": "7",
            "username": "ann",
            "acct": "ann",
            "followers_count": followers,
            "following_count": 1,
            "statuses_count": 1,
        }

    handle = "ann@mastodon.example"
    reply = [account(10), {**account(second), "last_status_at": "2026-03-02"}]
    with serving(_answering(reply)) as api:
        connector = build_connector(
            "mastodon",
            url(api) + "/{instance}",
            None,
            None,
            sleep=lambda _: None,
            account_ids={handle: "7"},
        )
        result = connector.extract([handle])
        observed = {
            o.account_handle: (o.status.value, o.followers)
            for r in result.responses
            for o in connector.parse(r)
        }

    assert observed == {handle: seen}
