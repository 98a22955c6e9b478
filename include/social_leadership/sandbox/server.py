"""The sandbox HTTP server: every platform endpoint the connectors call, on one base URL.

Bluesky ``getProfiles``, X ``users/by``, Mastodon ``accounts/lookup`` and ``accounts``,
YouTube ``channels``, Graph pages and Instagram business discovery, LinkedIn
``networkSizes``, Threads ``profile_lookup``: the real paths, parameters, authentication,
batch limits, error bodies, rate-limit signals and count types. Known accounts are the
roster's handles; their counts come from
:func:`~social_leadership.sandbox.synthetic.synthetic_metrics` for the date of the server's
clock. Tests inject faults per request (``add_fault``: a queue) or per run
(``set_fault``: until ``clear_faults``); ``authorization_log`` records which requests
carried an ``Authorization`` header.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from social_leadership.platforms.base import redact_url
from social_leadership.roster import Roster, load_roster
from social_leadership.sandbox.synthetic import (
    synthetic_account_id,
    synthetic_did,
    synthetic_metrics,
)
from social_leadership.settings import load_settings

log = logging.getLogger(__name__)

BLUESKY_PATH = "/xrpc/app.bsky.actor.getProfiles"
X_PATH = "/2/users/by"
BLUESKY_MAX_ACTORS = 25
X_MAX_USERNAMES = 100
X_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
X_NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
X_INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
# A fixed moment for profile timestamps: they must not change between runs.
_CREATED_AT = "2023-04-01T00:00:00.000Z"
# Not a secret: the sandbox's well-known token, so demo connections work out of the box.
SANDBOX_X_TOKEN = "sandbox-token"  # noqa: S105

MASTODON_LOOKUP_PATH = "/api/v1/accounts/lookup"
MASTODON_ACCOUNTS_PATH = "/api/v1/accounts"
# One sandbox plays every Mastodon instance: /mastodon/<instance>/api/v1/... is that
# instance, which knows only its own accounts (the paths without the prefix play one
# instance that knows every account).
MASTODON_INSTANCE_PATH = re.compile(r"^/mastodon/([A-Za-z0-9.-]+)(/api/v1/accounts(?:/lookup)?)$")
MASTODON_MAX_IDS = 40
YOUTUBE_PATH = "/youtube/v3/channels"
YOUTUBE_MAX_IDS = 50
GRAPH_PATH = re.compile(r"^/v\d+\.\d+/([^/]+)$")
LINKEDIN_PATH = re.compile(r"^/v2/networkSizes/(.+)$")
INSTAGRAM_DISCOVERY = re.compile(r"^business_discovery\.username\(([^)]*)\)")
THREADS_LOOKUP_PATH = "/v1.0/profile_lookup"
THREADS_PERMISSION = "threads_profile_discovery"
# Not secrets: the sandbox's well-known credentials, so demo connections work out of the box.
SANDBOX_YOUTUBE_KEY = "sandbox-key"
SANDBOX_IG_USER_ID = "17841400000000001"

FaultKind = Literal[
    "429",  # the platform's own throttle signal (429, YouTube 403 quota, Graph code 4)
    "500",
    "503",
    "malformed_json",  # 200 with a body that is not JSON
    "truncated_json",  # 200 with the real body cut in half
    "error_200",  # 200 carrying the platform's error body
    "slow",  # the real answer after delay_seconds
    "drop",  # connection closed without a reply
    "echo",  # a 4xx (``status``) whose body echoes the request line, headers and query
]


@dataclass(frozen=True)
class Fault:
    """One injected failure, served instead of the next matching request's answer."""

    kind: FaultKind
    platform: str | None = None  # a platform name, or None for whichever comes first
    reset_seconds: float = 60.0  # for "429": when the server says the window resets
    delay_seconds: float = 2.0  # for "slow"
    status: int = 400  # for "echo"


class _Budget:
    """A fixed window request budget, like the platforms' per-app limits."""

    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.window_start: float | None = None
        self.used = 0

    def spend(self, now: float) -> tuple[bool, int, int]:
        """Count one request; returns (allowed, remaining, reset epoch seconds)."""
        if self.window_start is None or now >= self.window_start + self.window_seconds:
            self.window_start = now
            self.used = 0
        reset = int(self.window_start + self.window_seconds)
        if self.used >= self.limit:
            return False, 0, reset
        self.used += 1
        return True, self.limit - self.used, reset


class _QuietHTTPServer(ThreadingHTTPServer):
    """A client that hangs up first (a timed-out request, a dropped connection fault) is
    routine here: socketserver would print its traceback to stderr; it is logged at debug.
    Anything else is logged as an error, with its traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("sandbox: client %s went away (%s)", client_address, error)
            return
        log.error("sandbox: request from %s failed", client_address, exc_info=True)


class SandboxServer:
    """A threaded HTTP server on loopback mimicking the Bluesky and X endpoints."""

    def __init__(
        self,
        roster: Roster | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        x_token: str = SANDBOX_X_TOKEN,
        clock: Callable[[], datetime] | None = None,
        *,
        bluesky_limit: int = 3000,
        bluesky_window_seconds: int = 300,
        x_limit: int = 300,
        x_window_seconds: int = 900,
        x_post_count_field: Literal["tweet_count", "post_count"] = "tweet_count",
        x_suspended: tuple[str, ...] = (),
        rate_clock: Callable[[], float] = time.time,
        token: str | None = None,
        youtube_key: str = SANDBOX_YOUTUBE_KEY,
        instagram_user_id: str = SANDBOX_IG_USER_ID,
        youtube_hidden: tuple[str, ...] = (),
        mastodon_requires_login: bool = False,
        mastodon_batch_route: bool = True,
        threads_profile_discovery: bool = True,
        limits: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        if roster is None:
            roster = load_settings().roster_path
        if isinstance(roster, Path):
            roster = load_roster(roster)
        self.host = host
        self.port = port
        self.x_token = x_token
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rate_clock = rate_clock
        self.x_post_count_field = x_post_count_field
        # Graph, LinkedIn and a login-only Mastodon instance take the X token too.
        self.token = token or x_token
        self.youtube_key = youtube_key
        self.instagram_user_id = instagram_user_id
        self.mastodon_requires_login = mastodon_requires_login
        # False: an instance older than Mastodon 4.3, which has no ``accounts?id[]=`` route.
        self.mastodon_batch_route = mastodon_batch_route
        # Whether the token holds the Threads permission to look up other profiles.
        self.threads_profile_discovery = threads_profile_discovery
        self.faults: deque[Fault] = deque()
        self.run_faults: dict[str | None, Fault] = {}
        self.request_log: list[tuple[str, str]] = []
        # (path, Authorization header or None) per request, in arrival order.
        self.authorization_log: list[tuple[str, str | None]] = []
        windows = {
            "bluesky": (bluesky_limit, bluesky_window_seconds),
            "x": (x_limit, x_window_seconds),
            "mastodon": (300, 300),
            "youtube": (10_000, 86_400),
            "facebook": (200, 3_600),
            "instagram": (200, 3_600),
            "linkedin": (100_000, 86_400),
            "threads": (200, 3_600),
        }
        windows.update(limits or {})
        self._budgets = {name: _Budget(*window) for name, window in windows.items()}
        self._lock = threading.Lock()
        self._httpd: _QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None

        names = {e.executive_id: e.full_name for e in roster.executives}
        self._bluesky: dict[str, tuple[str, str, str]] = {}  # key -> (handle, did, name)
        for account in roster.accounts_for("bluesky"):
            handle = account.account_handle.lower()
            did = handle if handle.startswith("did:") else synthetic_did(handle)
            entry = (handle, did, names.get(account.executive_id, handle))
            self._bluesky[handle] = entry
            self._bluesky[did] = entry
        self._x: dict[str, tuple[str, str]] = {
            account.account_handle.casefold(): (
                account.account_handle,
                names.get(account.executive_id, account.account_handle),
            )
            for account in roster.accounts_for("x")
        }
        self._x_suspended = {name.casefold() for name in x_suspended}
        self._others: dict[str, dict[str, tuple[str, str]]] = {}
        for platform in ("mastodon", "youtube", "facebook", "instagram", "linkedin", "threads"):
            known: dict[str, tuple[str, str]] = {}
            for account in roster.accounts_for(platform):
                entry = (
                    account.account_handle,
                    names.get(account.executive_id, account.account_handle),
                )
                known[account.account_handle.casefold()] = entry
                if platform == "mastodon":
                    known[synthetic_account_id(platform, account.account_handle)] = entry
                if platform == "youtube":
                    known[synthetic_channel_id(account.account_handle).casefold()] = entry
            self._others[platform] = known
        self._youtube_hidden = {name.casefold() for name in youtube_hidden}

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("sandbox server is not running")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> str:
        """Listen and serve in a background thread; returns the base URL."""
        if self._httpd is not None:
            return self.base_url
        self._httpd = _QuietHTTPServer((self.host, self.port), _handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-api",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def add_fault(
        self,
        kind: FaultKind,
        *,
        platform: str | None = None,
        reset_seconds: float = 60.0,
        times: int = 1,
        delay_seconds: float = 2.0,
        status: int = 400,
    ) -> None:
        for _ in range(times):
            self.faults.append(Fault(kind, platform, reset_seconds, delay_seconds, status))

    def set_fault(
        self,
        kind: FaultKind,
        *,
        platform: str | None = None,
        reset_seconds: float = 60.0,
        delay_seconds: float = 2.0,
        status: int = 400,
    ) -> None:
        """Serve ``kind`` to every request (of ``platform``) until :meth:`clear_faults`."""
        with self._lock:
            self.run_faults[platform] = Fault(kind, platform, reset_seconds, delay_seconds, status)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.run_faults.clear()

    def requests_to(self, path: str) -> int:
        """How many requests reached ``path`` (faulted and rejected ones included)."""
        return sum(1 for logged_path, _ in self.request_log if logged_path == path)

    def authorizations_to(self, path: str) -> list[str | None]:
        """The ``Authorization`` header of each request to ``path`` (None: sent without)."""
        return [value for logged_path, value in self.authorization_log if logged_path == path]

    # --- request handling --------------------------------------------------------------

    def handle(self, path: str, query: str, headers: dict[str, str]) -> _Reply:
        with self._lock:
            self.request_log.append((path, query))
            self.authorization_log.append((path, headers.get("authorization")))
        params = parse_qs(query, keep_blank_values=True)
        platform = _platform_of(path, params)
        if platform is None:
            return _Reply(404, {"error": "MethodNotImplemented", "message": "Not Found"})
        now = self.rate_clock()
        with self._lock:
            fault = self._take_fault(platform)
            passes = fault is not None and fault.kind in ("slow", "truncated_json")
            allowed, remaining, reset = (
                self._budgets[platform].spend(now) if fault is None or passes else (True, 0, 0)
            )
        budget = self._budgets[platform]
        if fault is not None and fault.kind == "echo":
            return _echo(fault.status, path, query, params, headers)
        if fault is not None and not passes:
            reply = self._faulted(platform, fault, now, budget)
            if not reply.headers and platform in ("bluesky", "x", "mastodon"):
                with self._lock:
                    reply.headers.update(self._current_rate_headers(platform, now))
            return reply
        rate_headers = _rate_headers(platform, budget, remaining, reset)
        if not allowed:
            return self._too_many(platform, rate_headers, reset - now)
        reply = self._answer(platform, path, params, headers)
        reply.headers.update(rate_headers)
        if fault is not None and fault.kind == "slow":
            reply.delay_seconds = fault.delay_seconds
        if fault is not None and fault.kind == "truncated_json":
            payload = reply.payload()
            reply.raw = payload[: max(1, len(payload) // 2)]
        return reply

    def _answer(
        self, platform: str, path: str, params: dict[str, list[str]], headers: dict[str, str]
    ) -> _Reply:
        authorization = headers.get("authorization", "")
        if platform == "bluesky":
            return self._get_profiles(params.get("actors", []))
        if platform == "x":
            return self._users_by(params, authorization)
        if platform == "mastodon":
            return self._mastodon(path, params, authorization)
        if platform == "youtube":
            return self._youtube(params)
        if platform in ("facebook", "instagram"):
            return self._graph(platform, path, params, authorization)
        if platform == "threads":
            return self._threads(params, authorization)
        return self._linkedin(path, params, headers)

    def _bearer_ok(self, authorization: str, params: dict[str, list[str]]) -> bool:
        token = params.get("access_token", [""])[0]
        return authorization == f"Bearer {self.token}" or token == self.token

    def _mastodon(self, path: str, params: dict[str, list[str]], authorization: str) -> _Reply:
        if self.mastodon_requires_login and authorization != f"Bearer {self.token}":
            return _Reply(401, {"error": "This API requires an authenticated user"})
        day = self.clock().date()
        known = self._others["mastodon"]
        instance_path = MASTODON_INSTANCE_PATH.match(path)
        if instance_path:
            instance = instance_path.group(1).casefold()
            path = instance_path.group(2)
            known = {
                key: entry
                for key, entry in known.items()
                if entry[0].rsplit("@", 1)[-1].casefold() == instance
            }
        if path == MASTODON_LOOKUP_PATH:
            acct = params.get("acct", [""])[0].removeprefix("@")
            if instance_path and "@" not in acct:
                acct = f"{acct}@{instance_path.group(1)}"  # a local account of the instance
            entry = known.get(acct.casefold())
            if entry is None:
                return _Reply(404, {"error": "Record not found"})
            return _Reply(200, _mastodon_account(entry, day))
        if not self.mastodon_batch_route:
            return _Reply(404, {"error": "Not Found"})
        ids = params.get("id[]", [])
        if len(ids) > MASTODON_MAX_IDS:
            return _Reply(
                422,
                {"error": f"Validation failed: id[] must not hold more than {MASTODON_MAX_IDS}"},
            )
        accounts = [_mastodon_account(known[i], day) for i in dict.fromkeys(ids) if i in known]
        return _Reply(200, accounts)

    def _youtube(self, params: dict[str, list[str]]) -> _Reply:
        if params.get("key", [""])[0] != self.youtube_key:
            return _Reply(
                400,
                _google_error(
                    400, "API key not valid. Please pass a valid API key.", "badRequest", "global"
                ),
            )
        if params.get("part", [""])[0] != "statistics":
            return _Reply(
                400,
                _google_error(
                    400, "part must include statistics", "invalidPart", "youtube.parameter"
                ),
            )
        known = self._others["youtube"]
        if "forHandle" in params:
            wanted = [params["forHandle"][0]]
            wanted = [w if w.startswith("@") else "@" + w for w in wanted]
        else:
            wanted = [i for i in ",".join(params.get("id", [])).split(",") if i]
            if len(wanted) > YOUTUBE_MAX_IDS:
                return _Reply(
                    400,
                    _google_error(
                        400,
                        "The request specifies an invalid filter parameter.",
                        "invalidFilters",
                        "youtube.parameter",
                    ),
                )
        day = self.clock().date()
        items = []
        for value in wanted:
            entry = known.get(value.casefold())
            if entry is None:
                continue
            handle = entry[0]
            followers, _, posts = synthetic_metrics("youtube", handle, day)
            statistics: dict[str, Any] = {
                "viewCount": str(followers * 37 + posts * 1000),
                "videoCount": str(posts),
            }
            if handle.casefold() in self._youtube_hidden:
                statistics["hiddenSubscriberCount"] = True
            else:
                statistics["subscriberCount"] = str(_three_significant(followers))
                statistics["hiddenSubscriberCount"] = False
            items.append(
                {
                    "kind": "youtube#channel",
                    "etag": synthetic_account_id("etag", handle),
                    "id": synthetic_channel_id(handle),
                    "statistics": statistics,
                }
            )
        document: dict[str, Any] = {
            "kind": "youtube#channelListResponse",
            "etag": "sandbox",
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        }
        if items:
            document["items"] = items
        return _Reply(200, document)

    def _graph(
        self, platform: str, path: str, params: dict[str, list[str]], authorization: str
    ) -> _Reply:
        if not self._bearer_ok(authorization, params):
            return _Reply(400, _graph_error(190, "Invalid OAuth access token.", "OAuthException"))
        node = unquote(GRAPH_PATH.match(path).group(1))  # type: ignore[union-attr]
        fields = params.get("fields", [""])[0]
        day = self.clock().date()
        known = self._others[platform]
        if platform == "instagram":
            if node != self.instagram_user_id:
                return _Reply(
                    400, _graph_error(100, "Unsupported get request.", "GraphMethodException", 33)
                )
            username = INSTAGRAM_DISCOVERY.match(fields).group(1)  # type: ignore[union-attr]
            entry = known.get(username.casefold())
            if entry is None:
                return _Reply(
                    400,
                    _graph_error(
                        110, "Invalid user id", "OAuthException", 2207013, "Cannot find User"
                    ),
                )
            followers, following, posts = synthetic_metrics("instagram", entry[0], day)
            return _Reply(
                200,
                {
                    "business_discovery": {
                        "followers_count": followers,
                        "follows_count": following,
                        "media_count": posts,
                        "id": synthetic_account_id("instagram", entry[0]),
                    },
                    "id": self.instagram_user_id,
                },
            )
        entry = known.get(node.casefold())
        if entry is None:
            return _Reply(
                400,
                _graph_error(
                    100,
                    f"Unsupported get request. Object with ID '{node}' does not exist, cannot be"
                    " loaded due to missing permissions, or does not support this operation.",
                    "GraphMethodException",
                    33,
                ),
            )
        followers, _, _ = synthetic_metrics("facebook", entry[0], day)
        page: dict[str, Any] = {"id": synthetic_account_id("facebook", entry[0])}
        if "followers_count" in fields:
            page["followers_count"] = followers
        if "fan_count" in fields:
            page["fan_count"] = round(followers * 0.93)
        return _Reply(200, page)

    def _threads(self, params: dict[str, list[str]], authorization: str) -> _Reply:
        if not self._bearer_ok(authorization, params):
            return _Reply(400, _graph_error(190, "Invalid OAuth access token.", "OAuthException"))
        if not self.threads_profile_discovery:
            return _Reply(
                403,
                _graph_error(
                    10,
                    "(#10) Application does not have permission for this action: "
                    f"requires {THREADS_PERMISSION}",
                    "OAuthException",
                ),
            )
        usernames = params.get("username", [])
        if len(usernames) != 1 or not usernames[0]:
            return _Reply(
                400,
                _graph_error(
                    100, "(#100) The parameter username is required once", "OAuthException"
                ),
            )
        entry = self._others["threads"].get(usernames[0].removeprefix("@").casefold())
        if entry is None:
            return _Reply(
                400,
                _graph_error(
                    100,
                    f"(#100) No public Threads profile has the username '{usernames[0]}'",
                    "OAuthException",
                    33,
                ),
            )
        fields = ",".join(params.get("fields", [])).split(",")
        followers, _, _ = synthetic_metrics("threads", entry[0], self.clock().date())
        profile: dict[str, Any] = {"username": entry[0]}
        if "name" in fields:
            profile["name"] = entry[1]
        if "follower_count" in fields:
            profile["follower_count"] = followers
        if "is_verified" in fields:
            profile["is_verified"] = False
        return _Reply(200, profile)

    def _linkedin(self, path: str, params: dict[str, list[str]], headers: dict[str, str]) -> _Reply:
        if headers.get("authorization", "") != f"Bearer {self.token}":
            return _Reply(
                401,
                {
                    "status": 401,
                    "serviceErrorCode": 65600,
                    "code": "INVALID_ACCESS_TOKEN",
                    "message": "Invalid access token",
                },
            )
        if params.get("edgeType", [""])[0] != "CompanyFollowedByMember":
            return _Reply(
                400, {"status": 400, "message": "edgeType must be CompanyFollowedByMember"}
            )
        urn = unquote(LINKEDIN_PATH.match(path).group(1))  # type: ignore[union-attr]
        entry = self._others["linkedin"].get(urn.casefold())
        if entry is None or not urn.startswith("urn:li:organization:"):
            return _Reply(
                404, {"status": 404, "serviceErrorCode": 0, "message": f"Not found: {urn}"}
            )
        followers, _, _ = synthetic_metrics("linkedin", entry[0], self.clock().date())
        return _Reply(200, {"firstDegreeSize": followers})

    def _current_rate_headers(self, platform: str, now: float) -> dict[str, str]:
        budget = self._budgets[platform]
        start = budget.window_start if budget.window_start is not None else now
        return _rate_headers(
            platform, budget, budget.limit - budget.used, int(start + budget.window_seconds)
        )

    def _take_fault(self, platform: str) -> Fault | None:
        for key in (platform, None):
            if key in self.run_faults:
                return self.run_faults[key]
        for fault in self.faults:
            if fault.platform in (None, platform):
                self.faults.remove(fault)
                return fault
        return None

    def _faulted(self, platform: str, fault: Fault, now: float, budget: _Budget) -> _Reply:
        if fault.kind == "429":
            reset = int(now + fault.reset_seconds)
            return self._too_many(
                platform, _rate_headers(platform, budget, 0, reset), fault.reset_seconds
            )
        if fault.kind in ("500", "503"):
            return _Reply(int(fault.kind), _server_error_body(platform, int(fault.kind)))
        if fault.kind == "error_200":
            return _Reply(200, _server_error_body(platform, 500))
        if fault.kind == "drop":
            return _Reply(0, drop=True)
        return _Reply(200, raw=b"<html><body>502 Bad Gateway</body></html>")

    def _too_many(self, platform: str, rate_headers: dict[str, str], wait: float) -> _Reply:
        if platform == "mastodon":
            return _Reply(429, {"error": "Too many requests"}, headers=rate_headers)
        if platform == "youtube":
            return _Reply(
                403,
                _google_error(
                    403,
                    "The request cannot be completed because you have exceeded your "
                    '<a href="/youtube/v3/getting-started#quota">quota</a>.',
                    "quotaExceeded",
                    "youtube.quota",
                ),
            )
        if platform in ("facebook", "instagram", "threads"):
            reply = _Reply(
                403,
                _graph_error(
                    4, "(#4) Application request limit reached", "OAuthException", transient=True
                ),
            )
            reply.headers["X-App-Usage"] = json.dumps(
                {"call_count": 100, "total_cputime": 12, "total_time": 20}
            )
            return reply
        if platform == "linkedin":
            return _Reply(
                429,
                {
                    "status": 429,
                    "serviceErrorCode": 101,
                    "message": "Resource level throttle APPLICATION DAY limit "
                    "for calls to this resource is reached.",
                },
            )
        if platform == "bluesky":
            reply = _Reply(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})
            reply.headers["Retry-After"] = str(max(0, round(wait)))
        else:
            reply = _Reply(
                429,
                {
                    "title": "Too Many Requests",
                    "detail": "Too Many Requests",
                    "type": "about:blank",
                    "status": 429,
                },
            )
        reply.headers.update(rate_headers)
        return reply

    def _get_profiles(self, actors: list[str]) -> _Reply:
        if not actors:
            return _Reply(
                400,
                {
                    "error": "InvalidRequest",
                    "message": 'Error: Params must have the property "actors"',
                },
            )
        if len(actors) > BLUESKY_MAX_ACTORS:
            return _Reply(
                400,
                {
                    "error": "InvalidRequest",
                    "message": (
                        f"Error: actors must not have more than {BLUESKY_MAX_ACTORS} elements"
                    ),
                },
            )
        day = self.clock().date()
        profiles = []
        served: set[str] = set()
        for actor in actors:
            entry = self._bluesky.get(actor.strip().lower())
            if entry is None or entry[1] in served:
                continue
            handle, did, name = entry
            served.add(did)
            followers, following, posts = synthetic_metrics("bluesky", handle, day)
            profiles.append(
                {
                    "did": did,
                    "handle": handle,
                    "displayName": name,
                    "followersCount": followers,
                    "followsCount": following,
                    "postsCount": posts,
                    "indexedAt": f"{day.isoformat()}T00:00:00.000Z",
                    "createdAt": _CREATED_AT,
                }
            )
        return _Reply(200, {"profiles": profiles})

    def _users_by(self, params: dict[str, list[str]], authorization: str) -> _Reply:
        if authorization != f"Bearer {self.x_token}":
            return _Reply(
                401,
                {
                    "title": "Unauthorized",
                    "type": "about:blank",
                    "status": 401,
                    "detail": "Unauthorized",
                },
            )
        raw = ",".join(params.get("usernames", []))
        usernames = [name for name in raw.split(",") if name] if raw else []
        if not 1 <= len(usernames) <= X_MAX_USERNAMES:
            return _x_invalid(
                usernames,
                f"The number of values in the `usernames` query parameter list "
                f"[{len(usernames)}] is not between 1 and {X_MAX_USERNAMES}",
            )
        invalid = [name for name in usernames if not X_USERNAME.match(name)]
        if invalid:
            return _x_invalid(
                invalid,
                f"The `usernames` query parameter value [{invalid[0]}] does not match "
                f"{X_USERNAME.pattern}",
            )
        fields = ",".join(params.get("user.fields", [])).split(",")
        day = self.clock().date()
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for name in usernames:
            key = name.casefold()
            known = self._x.get(key)
            if key in self._x_suspended:
                errors.append(_x_error(name, f"User has been suspended: [{name}].", "Forbidden"))
            elif known is None:
                errors.append(
                    _x_error(
                        name, f"Could not find user with usernames: [{name}].", "Not Found Error"
                    )
                )
            else:
                username, display_name = known
                user: dict[str, Any] = {
                    "id": synthetic_account_id("x", username),
                    "name": display_name,
                    "username": username,
                }
                if "public_metrics" in fields:
                    followers, following, posts = synthetic_metrics("x", username, day)
                    user["public_metrics"] = {
                        "followers_count": followers,
                        "following_count": following,
                        self.x_post_count_field: posts,
                        "listed_count": followers // 400,
                    }
                data.append(user)
        document: dict[str, Any] = {}
        if data:
            document["data"] = data
        if errors:
            document["errors"] = errors
        return _Reply(200, document)


@dataclass
class _Reply:
    status: int
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] | None = None
    delay_seconds: float = 0.0
    drop: bool = False

    def __post_init__(self) -> None:
        if self.headers is None:
            self.headers = {}

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, separators=(",", ":")).encode()


def _platform_of(path: str, params: dict[str, list[str]]) -> str | None:
    if path == BLUESKY_PATH:
        return "bluesky"
    if path == X_PATH:
        return "x"
    if path in (MASTODON_LOOKUP_PATH, MASTODON_ACCOUNTS_PATH) or MASTODON_INSTANCE_PATH.match(path):
        return "mastodon"
    if path == YOUTUBE_PATH:
        return "youtube"
    if LINKEDIN_PATH.match(path):
        return "linkedin"
    if path == THREADS_LOOKUP_PATH:
        return "threads"
    if GRAPH_PATH.match(path):
        fields = params.get("fields", [""])[0]
        return "instagram" if INSTAGRAM_DISCOVERY.match(fields) else "facebook"
    return None


def synthetic_channel_id(handle: str) -> str:
    """A stable ``UC`` + 22 character YouTube channel id for a handle or id."""
    if handle.startswith("UC") and len(handle) == 24:
        return handle
    digest = hashlib.sha256(f"channel\x00{handle.casefold()}".encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "UC" + "".join(alphabet[b % 64] for b in digest[:22])


def _three_significant(value: int) -> int:
    """YouTube rounds public subscriber counts down to three significant figures."""
    if value < 1000:
        return value
    scale = 10 ** (len(str(value)) - 3)
    return value // scale * scale


def _mastodon_account(entry: tuple[str, str], day: Any) -> dict[str, Any]:
    handle, name = entry
    followers, following, posts = synthetic_metrics("mastodon", handle, day)
    return {
        "id": synthetic_account_id("mastodon", handle),
        "username": handle.split("@")[0],
        "acct": handle,
        "display_name": name,
        "locked": False,
        "bot": False,
        "created_at": _CREATED_AT,
        "followers_count": followers,
        "following_count": following,
        "statuses_count": posts,
        "last_status_at": day.isoformat(),
    }


def _google_error(code: int, message: str, reason: str, domain: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
        }
    }


def _graph_error(
    code: int,
    message: str,
    kind: str,
    subcode: int | None = None,
    user_title: str | None = None,
    *,
    transient: bool = False,
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": message,
        "type": kind,
        "is_transient": transient,
        "code": code,
        "fbtrace_id": "AsandboxTrace",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if user_title is not None:
        error["error_user_title"] = user_title
    return {"error": error}


def _server_error_body(platform: str, status: int) -> Any:
    if platform == "bluesky":
        return {"error": "InternalServerError", "message": "Internal Server Error"}
    if platform == "x":
        return {
            "title": "Service Unavailable",
            "type": "about:blank",
            "status": status,
            "detail": "Service Unavailable",
        }
    if platform == "mastodon":
        return {"error": "We're sorry, but something went wrong on our end."}
    if platform == "youtube":
        return _google_error(status, "Backend Error", "backendError", "global")
    if platform in ("facebook", "instagram", "threads"):
        return _graph_error(
            2,
            "An unexpected error has occurred. Please retry your request.",
            "OAuthException",
            transient=True,
        )
    return {"status": status, "message": "Internal Server Error"}


def _rate_headers(platform: str, budget: _Budget, remaining: int, reset: int) -> dict[str, str]:
    if platform in ("youtube", "linkedin"):
        return {}  # neither platform names its limits in headers
    if platform in ("facebook", "instagram", "threads"):
        used = round(100 * (budget.limit - remaining) / budget.limit)
        return {
            "X-App-Usage": json.dumps({"call_count": used, "total_cputime": 1, "total_time": 1})
        }
    if platform == "mastodon":
        return {
            "X-RateLimit-Limit": str(budget.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": datetime.fromtimestamp(reset, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
    if platform == "bluesky":
        return {
            "RateLimit-Limit": str(budget.limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{budget.limit};w={budget.window_seconds}",
        }
    return {
        "x-rate-limit-limit": str(budget.limit),
        "x-rate-limit-remaining": str(remaining),
        "x-rate-limit-reset": str(reset),
    }


def _echo(
    status: int, path: str, query: str, params: dict[str, list[str]], headers: dict[str, str]
) -> _Reply:
    """What a debugging gateway answers: the request as it arrived, credentials included
    (the request line percent-encoded, headers and decoded query values as they are)."""
    request_line = f"GET {path}?{query} HTTP/1.1" if query else f"GET {path} HTTP/1.1"
    return _Reply(
        status,
        {
            "error": "request rejected",
            "headers": headers,
            "request_line": request_line,
            "query": params,
        },
    )


def _x_error(name: str, detail: str, title: str) -> dict[str, str]:
    return {
        "value": name,
        "detail": detail,
        "title": title,
        "resource_type": "user",
        "parameter": "usernames",
        "resource_id": name,
        "type": X_NOT_FOUND,
    }


def _x_invalid(values: list[str], message: str) -> _Reply:
    return _Reply(
        400,
        {
            "errors": [{"parameters": {"usernames": values}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": X_INVALID_REQUEST,
        },
    )


def _handler_for(sandbox: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class SandboxHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "SocialLeadershipSandbox/0.1"
        # Headers and body go out in separate writes; with Nagle on, the body waits for the
        # client's delayed ACK (about 40 ms on Linux) on every keep-alive request.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                reply = sandbox.handle(parts.path, parts.query, headers)
            except Exception:
                log.exception("sandbox failed on %s", parts.path)
                reply = _Reply(500, {"error": "InternalServerError", "message": "sandbox bug"})
            if reply.drop:
                self.close_connection = True
                return
            if reply.delay_seconds:
                time.sleep(reply.delay_seconds)
            payload = reply.payload()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (reply.headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            # args[0] is the request line, whose URL may carry an API key.
            log.debug("sandbox: " + format, *(_redacted_request_line(arg) for arg in args))

    return SandboxHandler


def _redacted_request_line(value: Any) -> Any:
    """A logged request line ("GET /path?key=... HTTP/1.1") without credential values."""
    if not isinstance(value, str):
        return value
    parts = value.split(" ")
    return " ".join(redact_url(part) if "?" in part else part for part in parts)
