"""The sandbox as a server for clients we did not write (written from
shared/reference/platform-apis.md alone): a request refused for its credentials costs no
budget, an advertised reset is a moment the window is open again, Facebook and Instagram
draw on one Graph app's budget (which a batch's usage header reports), bodies come in any
HTTP framing, a method a route does not take is a 405 in the platform's error form, and a
long-running sandbox keeps no log of requests. Each test runs against the real loopback
server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest
from slw_testing import roster_of

from social_leadership.sandbox import __main__ as sandbox_main
from social_leadership.sandbox.server import (
    SANDBOX_IG_USER_ID,
    SANDBOX_TOKEN,
    SANDBOX_YOUTUBE_KEY,
    SandboxServer,
)

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
ACCOUNTS = [
    ("x", "user_a"),
    ("bluesky", "ann.bsky.social"),
    ("mastodon", "alice@mastodon.social"),
    ("youtube", "@chan0"),
    ("facebook", "acmepage"),
    ("facebook", "otherpage"),
    ("instagram", "acmeig"),
    ("linkedin", "urn:li:organization:1337"),
    ("threads", "thready"),
]
DISCOVERY = (
    f"v21.0/{SANDBOX_IG_USER_ID}?fields=business_discovery.username(acmeig){{followers_count}}"
)

# Per platform: a request with the credential (path, params, headers), and without it.
CREDENTIALED = {
    "x": ("/2/users/by", {"usernames": "user_a"}, AUTH),
    "youtube": (
        "/youtube/v3/channels",
        {"part": "statistics", "forHandle": "@chan0", "key": SANDBOX_YOUTUBE_KEY},
        {},
    ),
    "facebook": ("/v21.0/acmepage", {"fields": "followers_count"}, AUTH),
    "instagram": ("/" + DISCOVERY.split("?")[0], {"fields": DISCOVERY.split("=", 1)[1]}, AUTH),
    "linkedin": (
        "/v2/networkSizes/urn:li:organization:1337",
        {"edgeType": "CompanyFollowedByMember"},
        AUTH,
    ),
    "threads": ("/v1.0/profile_lookup", {"username": "thready", "fields": "follower_count"}, AUTH),
}
# What each platform answers a request without its credential: (status, body check).
REFUSED = {
    "x": (401, lambda body: body["title"] == "Unauthorized"),
    "youtube": (403, lambda body: body["error"]["errors"][0]["reason"] == "forbidden"),
    "facebook": (400, lambda body: body["error"]["code"] == 190),
    "instagram": (400, lambda body: body["error"]["code"] == 190),
    "linkedin": (401, lambda body: body["code"] == "INVALID_ACCESS_TOKEN"),
    "threads": (400, lambda body: body["error"]["code"] == 190),
}


def started(**options: object) -> SandboxServer:
    return SandboxServer(roster_of(ACCOUNTS), clock=lambda: NOW, **options)  # type: ignore[arg-type]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with started() as server, httpx.Client(base_url=server.base_url, timeout=10) as http:
        yield http


def without_credential(params: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in params.items() if name != "key"}


@pytest.mark.parametrize("platform", sorted(CREDENTIALED))
def test_requests_refused_for_their_credential_cost_the_budget_nothing(platform: str) -> None:
    path, params, headers = CREDENTIALED[platform]
    status, says = REFUSED[platform]
    # Instagram's business discovery draws on Facebook's Graph app budget.
    budget = {"instagram": "facebook"}.get(platform, platform)
    with (
        started(limits={budget: (1, 3600)}) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        refused = [http.get(path, params=without_credential(params)) for _ in range(3)]
        served = http.get(path, params=params, headers=headers)
        # The budget (one request) is spent now: a request without the credential is
        # still told what is wrong with it, not that it is throttled.
        refused_after = http.get(path, params=without_credential(params))

    for reply in [*refused, refused_after]:
        assert reply.status_code == status
        assert says(reply.json())
    assert served.status_code == 200, served.text


@pytest.mark.parametrize(
    ("platform", "signal"),
    [("x", "reset"), ("bluesky", "reset"), ("bluesky", "retry-after"), ("mastodon", "reset")],
)
def test_a_client_that_waits_as_the_throttle_says_finds_the_window_open(
    platform: str, signal: str
) -> None:
    # The window opens mid-second, as it does on a real clock.
    now = [1_800_000_000.7]
    path, params, headers = {
        "x": ("/2/users/by", {"usernames": "user_a"}, AUTH),
        "bluesky": ("/xrpc/app.bsky.actor.getProfiles", {"actors": "ann.bsky.social"}, {}),
        "mastodon": ("/api/v1/accounts/lookup", {"acct": "alice@mastodon.social"}, {}),
    }[platform]
    with (
        started(limits={platform: (1, 60)}, rate_clock=lambda: now[0]) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        assert http.get(path, params=params, headers=headers).status_code == 200
        now[0] += 1
        throttled = http.get(path, params=params, headers=headers)
        assert throttled.status_code == 429
        if signal == "retry-after":
            wait = int(throttled.headers["Retry-After"])
            assert 0 < wait <= 60
            now[0] += wait
        elif platform == "mastodon":
            reset = throttled.headers["X-RateLimit-Reset"]
            now[0] = datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
        else:
            name = {"x": "x-rate-limit-reset", "bluesky": "RateLimit-Reset"}[platform]
            now[0] = int(throttled.headers[name])
        again = http.get(path, params=params, headers=headers)

    assert again.status_code == 200


def test_facebook_and_instagram_draw_on_one_app_budget_which_the_batch_reports() -> None:
    page, page_params, _ = CREDENTIALED["facebook"]
    discovery, discovery_params, _ = CREDENTIALED["instagram"]
    with (
        started(limits={"facebook": (4, 3600)}) as server,
        httpx.Client(base_url=server.base_url, timeout=10, headers=AUTH) as http,
    ):
        assert http.get(page, params=page_params).status_code == 200
        batch = json.dumps([{"method": "GET", "relative_url": DISCOVERY}] * 2)
        answered = http.post("/", data={"batch": batch})
        last = http.get(discovery, params=discovery_params)
        throttled = http.get(page, params=page_params)

    assert [answer["code"] for answer in answered.json()] == [200, 200]
    # Three of the app's four calls spent, the Page's one among them.
    assert json.loads(answered.headers["X-App-Usage"])["call_count"] == 75
    assert last.status_code == 200
    assert throttled.status_code == 403
    assert throttled.json()["error"]["code"] == 4


def test_a_batch_sub_request_may_carry_its_version_and_ask_several_pages(
    client: httpx.Client,
) -> None:
    batch = json.dumps(
        [{"method": "GET", "relative_url": "v21.0/?ids=acmepage,otherpage&fields=name"}]
    )

    [answer] = client.post("/", data={"batch": batch}, headers=AUTH).json()

    assert answer["code"] == 200
    assert set(json.loads(answer["body"])) == {"acmepage", "otherpage"}


def test_a_field_no_page_has_is_graphs_error_100(client: httpx.Client) -> None:
    reply = client.get("/v21.0/acmepage", params={"fields": "follower_count"}, headers=AUTH)

    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == 100
    assert "(follower_count)" in error["message"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/2/users/by", {"usernames": "user_a\n"}),
        ("/2/users", {"ids": "123\n"}),
        ("/2/users/by/username/user_a%0A", {}),
    ],
)
def test_x_a_name_or_id_ending_in_a_line_break_is_an_invalid_request(
    client: httpx.Client, path: str, params: dict[str, str]
) -> None:
    reply = client.get(path, params=params, headers=AUTH)

    assert reply.status_code == 400
    assert reply.json()["title"] == "Invalid Request"


def _raw_post(base_url: str, head: str, body: bytes) -> tuple[int, bytes]:
    """An HTTP/1.1 POST written by hand (framing a client library would not send), and the
    reply's status and body."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
            head_end = reply.find(b"\r\n\r\n")
            if head_end >= 0:
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in reply[:head_end].split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                if len(reply) >= head_end + 4 + length:
                    break
    status = int(reply.split(b" ", 2)[1])
    return status, reply[reply.find(b"\r\n\r\n") + 4 :]


def test_a_batch_posted_in_chunks_is_read_whole() -> None:
    form = httpx.QueryParams(
        {"batch": json.dumps([{"method": "GET", "relative_url": "v21.0/acmepage"}])}
    )
    body = str(form).encode() + f"&access_token={SANDBOX_TOKEN}".encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]) if part
    )

    def chunked() -> Iterator[bytes]:
        yield body[:10]
        yield body[10:]

    with started() as server:
        # httpx streams a generator's body in chunks, as requests does.
        streamed = httpx.post(
            server.base_url + "/",
            content=chunked(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        by_hand = _raw_post(
            server.base_url,
            "POST / HTTP/1.1\r\nHost: sandbox\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nConnection: close",
            chunks + b"0\r\n\r\n",
        )

    assert streamed.request.headers["Transfer-Encoding"] == "chunked"
    assert streamed.status_code == 200, streamed.text
    assert streamed.json()[0]["code"] == 200
    assert by_hand[0] == 200
    assert json.loads(by_hand[1])[0]["code"] == 200


@pytest.mark.parametrize("size", [b"-1", b"+5", b"0x5", b"zz"])
def test_a_chunk_size_that_is_not_plain_hexadecimal_is_refused(size: bytes) -> None:
    # int(size, 16) took a sign or 0x; a size of -1 read until the client hung up.
    with started() as server:
        status, body = _raw_post(
            server.base_url,
            "POST / HTTP/1.1\r\nHost: sandbox\r\nTransfer-Encoding: chunked\r\nConnection: close",
            size + b"\r\nbatch=[]\r\n0\r\n\r\n",
        )

    assert status == 400
    assert "not hexadecimal" in json.loads(body)["error"]["message"]


def test_instagram_s_limit_is_facebook_s_or_refused() -> None:
    # One budget: which route asked first decided its size.
    with pytest.raises(ValueError, match="instagram draws on facebook's budget"):
        started(limits={"instagram": (2, 60)})
    with started(limits={"facebook": (2, 60), "instagram": (2, 60)}):
        pass


def test_a_post_with_a_content_length_that_is_no_number_is_a_graph_error() -> None:
    with started() as server:
        status, body = _raw_post(
            server.base_url,
            "POST / HTTP/1.1\r\nHost: sandbox\r\nContent-Length: abc\r\nConnection: close",
            b"batch=[]",
        )

    assert status == 400
    assert "Content-Length" in json.loads(body)["error"]["message"]


ROUTES_BY_KIND = {
    "x": "/2/users/by",
    "bluesky": "/xrpc/app.bsky.actor.getProfiles",
    "mastodon": "/api/v1/accounts/lookup",
    "youtube": "/youtube/v3/channels",
    "linkedin": "/v2/networkSizes/urn:li:organization:1337",
    "graph": "/v21.0/acmepage",
}


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        (method, kind)
        for method in ("PUT", "PATCH", "DELETE", "OPTIONS", "POST")
        for kind in ROUTES_BY_KIND
        # A POST to a Graph node is a batch (tests/include/test_sandbox_clients.py).
        if (method, kind) != ("POST", "graph")
    ],
)
def test_a_method_the_route_does_not_take_is_refused_in_the_platforms_error_form(
    client: httpx.Client, method: str, kind: str
) -> None:
    path = ROUTES_BY_KIND[kind]
    reply = client.request(method, path, headers=AUTH)

    assert reply.status_code == (400 if kind == "graph" else 405)
    assert reply.headers["content-type"].startswith("application/json")
    assert "GET" in reply.headers["Allow"]
    body = reply.json()
    assert method in json.dumps(body)
    assert {
        "x": "title",
        "bluesky": "error",
        "mastodon": "error",
        "youtube": "error",
        "linkedin": "code",
        "graph": "error",
    }[kind] in body


@pytest.mark.parametrize("path", ["/", "/v21.0/"])
def test_graph_s_root_allows_get_of_pages_and_post_of_batches(
    client: httpx.Client, path: str
) -> None:
    reply = client.put(path, headers=AUTH)

    assert reply.status_code in (400, 405)
    assert reply.headers["Allow"] == "GET, POST"


def test_head_answers_as_get_without_a_body(client: httpx.Client) -> None:
    get = client.get("/2/users/by", params={"usernames": "user_a"}, headers=AUTH)
    head = client.head("/2/users/by", params={"usernames": "user_a"}, headers=AUTH)

    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


def test_a_sandbox_without_a_request_log_keeps_none_and_says_so() -> None:
    with started(record_requests=False) as server:
        httpx.get(server.base_url + "/2/users/by", params={"usernames": "user_a"}, headers=AUTH)

        assert server.request_log == []
        assert server.authorization_log == []
        with pytest.raises(RuntimeError, match="no request log"):
            server.requests_to("/2/users/by")


def test_slw_sandbox_serves_without_a_request_log(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[SandboxServer] = []

    class Recorded(SandboxServer):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

        def start(self) -> str:
            base_url = super().start()
            # Stop at once: the loop waits for a signal that never comes otherwise.
            stopping.set()
            return base_url

    stopping = _StopAtOnce(monkeypatch)
    monkeypatch.setattr(sandbox_main, "SandboxServer", Recorded)

    sandbox_main.serve(host="127.0.0.1", port=0, roster=None, ready_file=None, token=SANDBOX_TOKEN)

    [server] = made
    assert server.record_requests is False


class _StopAtOnce:
    """Makes ``serve``'s wait for a signal return at once when set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import threading

        self.event = threading.Event()
        real = threading.Event
        created = self

        class Event(real):  # type: ignore[misc, valid-type]
            def wait(self, timeout: float | None = None) -> bool:
                return created.event.is_set() or super().wait(timeout)

        monkeypatch.setattr(sandbox_main.threading, "Event", Event)
        monkeypatch.setattr(sandbox_main.signal, "signal", lambda *args: None)

    def set(self) -> None:
        self.event.set()
