"""The sandbox HTTP server: every platform endpoint the connectors call, on one base URL.

Each platform is one :class:`SandboxRoute` (which requests are its, what it answers, its
request budget, how it signals throttling and outages, the Airflow connection the demo
gives it), registered with :func:`register_route`: Bluesky ``getProfiles``, X
``users/by``, Mastodon ``accounts/lookup`` and ``accounts``, YouTube ``channels``, Graph
pages (and Graph's batch endpoint, a POST) and Instagram business discovery, LinkedIn
``networkSizes`` (``/v2`` and ``/rest``), Threads ``profile_lookup``, with the real paths,
parameters, authentication, batch limits, error bodies, rate-limit signals and count types;
and what widely used client libraries ask besides (X's user by username or id, Bluesky's
``getProfile``, a Mastodon instance's description and an account by id, Graph's ``?ids=``),
a route it does not play answered in its platform's error form.
A new platform registers its own route (see CONTRIBUTING.md). Known accounts are the
roster's handles (an import-only one, such as a LinkedIn member or a Facebook profile, is
not served) and, on Facebook, Instagram and LinkedIn where the roster has none, a few
synthetic stand-ins (``SYNTHETIC_STAND_INS``); their counts come from
:func:`~social_leadership.demo.synthetic.synthetic_metrics` for the date of the server's
clock. Tests inject faults per request (``add_fault``: a queue) or per run (``set_fault``:
until ``clear_faults``), rename a Bluesky account (``rename_account``);
``request_log`` and ``authorization_log`` record each request's path, query and
``Authorization`` header, for tests; a long-running sandbox (``slw sandbox``) keeps neither
(``record_requests=False``), or its memory would grow with every request, and every token
ever sent would stay in it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy as email_policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from social_leadership.demo.synthetic import (
    synthetic_account_id,
    synthetic_did,
    synthetic_metrics,
)
from social_leadership.platforms.base import SYNTHETIC_HEADER, redact_url
from social_leadership.platforms.registry import connector_class, is_registered
from social_leadership.roster import Roster, load_roster
from social_leadership.settings import load_settings

log = logging.getLogger(__name__)

BLUESKY_PATH = "/xrpc/app.bsky.actor.getProfiles"
# One actor's profile (what atproto's get_profile asks).
BLUESKY_PROFILE_PATH = "/xrpc/app.bsky.actor.getProfile"
X_PATH = "/2/users/by"
# X's other user lookups, as client libraries (tweepy's get_user, get_users(ids=)) send
# them: one user by username, users by id (``?ids=``, up to 100) and one user by id.
X_USER_BY_USERNAME = re.compile(r"^/2/users/by/username/([^/]+)\Z")
X_USERS_PATH = "/2/users"
X_USER_BY_ID = re.compile(r"^/2/users/([0-9]+)\Z")
X_USER_ID = re.compile(r"^[0-9]{1,19}\Z")
BLUESKY_MAX_ACTORS = 25
X_MAX_USERNAMES = 100
X_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}\Z")
# The AT Protocol's at-identifier, as the AppView checks each actor: a handle (a domain
# name whose last label starts with a letter) or a DID. Anything else, two actors joined
# by a comma among them, is a 400 for the whole request.
BLUESKY_ACTOR = re.compile(
    r"(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
    r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"|did:[a-z]+:[a-zA-Z0-9._:%-]{0,2040}[a-zA-Z0-9._-])"
)
X_NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
X_INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
# A fixed moment for profile timestamps: they must not change between runs.
_CREATED_AT = "2023-04-01T00:00:00.000Z"
# Not a secret: the sandbox's well-known token (every platform that takes one), so demo
# connections work out of the box.
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105

MASTODON_LOOKUP_PATH = "/api/v1/accounts/lookup"
MASTODON_ACCOUNTS_PATH = "/api/v1/accounts"
# One sandbox plays every Mastodon instance: /mastodon/<instance>/api/v1/... is that
# instance, which knows only its own accounts (the paths without the prefix play one
# instance that knows every account).
MASTODON_INSTANCE_PATH = re.compile(r"^/mastodon/([A-Za-z0-9.-]+)(/api/v[12]/[^?]*)\Z")
# An instance's own description, which clients read first (Mastodon.py's version check),
# and one account by its id (Mastodon.py's account()).
MASTODON_INSTANCE_INFO = re.compile(r"^/api/v[12]/instance\Z")
MASTODON_ACCOUNT_BY_ID = re.compile(r"^/api/v1/accounts/([0-9]+)\Z")
MASTODON_MAX_IDS = 40
# The version an instance reports: 4.3 has the accounts?id[]= route, 4.2 not.
MASTODON_VERSION = "4.3.0"
MASTODON_VERSION_WITHOUT_BATCH = "4.2.0"
YOUTUBE_PATH = "/youtube/v3/channels"
YOUTUBE_MAX_IDS = 50
# YouTube's daily quota resets at midnight Pacific time, whenever it was first drawn on.
YOUTUBE_QUOTA_ZONE = ZoneInfo("America/Los_Angeles")
# The parts channels.list knows; the sandbox serves id, snippet and statistics, and a request
# must ask for statistics (the counts are the point).
YOUTUBE_PARTS = frozenset(
    {
        "auditDetails",
        "brandingSettings",
        "contentDetails",
        "contentOwnerDetails",
        "id",
        "localizations",
        "snippet",
        "statistics",
        "status",
        "topicDetails",
    }
)
GRAPH_PATH = re.compile(r"^/v\d+\.\d+/([^/]+)\Z")
GRAPH_UNVERSIONED_NODE = re.compile(r"^/([^/v][^/]*|v[^/\d][^/]*)\Z")
GRAPH_VERSION_PREFIX = re.compile(r"^/(v\d+\.\d+)(?:/|\Z)")
# Graph's batch endpoint: POST / or /v{N}.0/ with ``batch``, a JSON list of sub-requests.
GRAPH_BATCH_PATH = re.compile(r"^/(v\d+\.\d+/?)?\Z")
GRAPH_MAX_BATCH = 50
# The version a batch's unversioned relative_url gets when the batch's path names none.
GRAPH_BATCH_DEFAULT_VERSION = "v21.0"
# The platforms served on graph.facebook.com, which its batch endpoint reaches.
GRAPH_BATCH_PLATFORMS = ("facebook", "instagram")
# The versioned API (/rest, which wants the two headers below) and the older /v2 one.
LINKEDIN_PATH = re.compile(r"^/(?:v2|rest)/networkSizes/(.+)\Z")
# The edge type of an organization's followers: the /v2 docs spell it in camel case, the
# /rest docs (and the clients that follow them) in capitals; both are taken on both.
LINKEDIN_FOLLOWER_EDGES = frozenset({"CompanyFollowedByMember", "COMPANY_FOLLOWED_BY_MEMBER"})
LINKEDIN_REST_PREFIX = "/rest/"
LINKEDIN_VERSION = re.compile(r"^\d{6}\Z")
RESTLI_PROTOCOL_VERSION = "2.0.0"
# One field of a Graph ``fields`` list: business discovery, with its subfields in braces.
INSTAGRAM_DISCOVERY = re.compile(r"^business_discovery\.username\(([^)]*)\)(?:\{(.*)\})?\Z")
# What business discovery knows of an account (the sandbox leaves out the ones it has no
# value for, as Graph leaves out unset fields; the account's media is an empty list).
BUSINESS_DISCOVERY_FIELDS = frozenset(
    {
        "biography",
        "followers_count",
        "follows_count",
        "id",
        "ig_id",
        "media",
        "media_count",
        "name",
        "profile_picture_url",
        "username",
        "website",
    }
)
# A field's name, before its modifiers (``media.limit(5){like_count}``, ``media{id}``).
GRAPH_FIELD_NAME = re.compile(r"[A-Za-z_]*")
THREADS_LOOKUP_PATH = "/v1.0/profile_lookup"
THREADS_PERMISSION = "threads_profile_discovery"
# Meta's usage headers, JSON percentages of the app's (and the business's) budget.
APP_USAGE_HEADER = "X-App-Usage"
BUSINESS_USAGE_HEADER = "X-Business-Use-Case-Usage"
# Not secrets: the sandbox's well-known credentials, so demo connections work out of the box.
SANDBOX_YOUTUBE_KEY = "sandbox-key"
SANDBOX_IG_USER_ID = "17841400000000001"
SANDBOX_BUSINESS_ID = "1000000000000001"
# Graph's throttle signals: error code -> message (app, user, page, custom limit), each sent
# with HTTP 403 or 400 (GRAPH_THROTTLE_STATUSES). A server chooses one (``graph_throttle``),
# a "429" fault may choose another.
GRAPH_THROTTLE_MESSAGES = MappingProxyType(
    {
        4: "(#4) Application request limit reached",
        17: "(#17) User request limit reached",
        32: "(#32) Page request limit reached",
        613: "(#613) Calls to this api have exceeded the rate limit.",
    }
)
GRAPH_THROTTLE_STATUSES = (403, 400)
DEFAULT_GRAPH_THROTTLE = (4, 403)

# Served on a platform when the roster has no account the sandbox serves there (the bundled
# roster names no Facebook Page, Instagram business account or LinkedIn organization), so a
# client run against plain ``slw sandbox`` gets answers on every platform. Clearly synthetic.
SYNTHETIC_STAND_INS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "facebook": ("sandbox_page_1", "sandbox_page_2", "sandbox_page_3"),
        "instagram": ("sandbox_business_1", "sandbox_business_2", "sandbox_business_3"),
        "linkedin": (
            "urn:li:organization:1001",
            "urn:li:organization:1002",
            "urn:li:organization:1003",
        ),
    }
)

FaultKind = Literal[
    "429",  # the platform's own throttle signal (429, YouTube 403 quota, Graph codes 4-613)
    "500",
    "503",
    "malformed_json",  # 200 with a body that is not JSON
    "truncated_json",  # 200 with the real body cut in half
    "error_200",  # 200 carrying the platform's error body
    "slow",  # the real answer after delay_seconds
    "drop",  # connection closed without a reply
    "echo",  # a 4xx (``status``) whose body echoes the request line, headers and query
    "part_way",  # 200 with the real answer's first item alone, its errors left out (X's
    # users lookup failing part-way: the other users asked are in neither list)
]

# What a route's functions receive: the decoded query, and the headers with lowercase names.
Params = dict[str, list[str]]
Headers = dict[str, str]


@dataclass(frozen=True)
class Fault:
    """One injected failure, served instead of the next matching request's answer."""

    kind: FaultKind
    platform: str | None = None  # a platform name, or None for whichever comes first
    reset_seconds: float = 60.0  # for "429": when the server says the window resets
    delay_seconds: float = 2.0  # for "slow"
    status: int = 400  # for "echo"
    # For "429" on Meta's platforms: (Graph error code, HTTP status) instead of the server's
    # graph_throttle, e.g. (613, 400).
    graph_throttle: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.graph_throttle is not None:
            _check_graph_throttle(self.graph_throttle)


def _check_graph_throttle(throttle: tuple[int, int]) -> None:
    code, status = throttle
    if code not in GRAPH_THROTTLE_MESSAGES or status not in GRAPH_THROTTLE_STATUSES:
        raise ValueError(
            f"a Graph throttle is a code of {sorted(GRAPH_THROTTLE_MESSAGES)} with HTTP "
            f"{' or '.join(map(str, GRAPH_THROTTLE_STATUSES))}, not {throttle!r}"
        )


class Budget:
    """A fixed window request budget, like the platforms' per-app limits.

    A window opens with the first request after the last one ended and lasts
    ``window_seconds``; with ``resets``, it ends instead at ``resets(opened)`` (epoch
    seconds), for a quota that resets at a set time of day whenever it was first drawn on.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: int,
        resets: Callable[[float], float] | None = None,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.resets = resets
        self.window_end: float | None = None
        self.used = 0

    def spend(self, now: float) -> tuple[bool, int, int]:
        """Count one request; returns (allowed, remaining, reset epoch seconds)."""
        if self.window_end is None or now >= self.window_end:
            self.window_end = self.end_of_window_opened(now)
            self.used = 0
        # Rounded up: a client that waits until the reset it was told finds the window open.
        reset = math.ceil(self.window_end)
        if self.used >= self.limit:
            return False, 0, reset
        self.used += 1
        return True, self.limit - self.used, reset

    def end_of_window_opened(self, now: float) -> float:
        """When a window opened at ``now`` ends (epoch seconds)."""
        return self.resets(now) if self.resets is not None else now + self.window_seconds

    def used_percent(self, remaining: int) -> int:
        return round(100 * (self.limit - remaining) / self.limit)


@dataclass
class Reply:
    """What the sandbox sends back: a JSON ``body`` (or ``raw`` bytes) and headers."""

    status: int
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    drop: bool = False

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, separators=(",", ":")).encode()


RateHeaders = Callable[["SandboxServer", Budget, int, int], dict[str, str]]


def limit_headers(
    limit: str,
    remaining: str,
    reset: str,
    *,
    reset_text: Callable[[int], str] = str,
    policy: str | None = None,
) -> RateHeaders:
    """Rate-limit headers under the given names: the budget's limit, the requests it has
    left and when it resets (epoch seconds, as ``reset_text`` writes them), and with
    ``policy`` the budget as ``<limit>;w=<window seconds>``."""

    def headers(server: SandboxServer, budget: Budget, left: int, reset_at: int) -> dict[str, str]:
        named = {limit: str(budget.limit), remaining: str(left), reset: reset_text(reset_at)}
        if policy is not None:
            named[policy] = f"{budget.limit};w={budget.window_seconds}"
        return named

    return headers


# The common x-rate-limit-* triple (X's spelling; reset in epoch seconds).
rate_limit_headers = limit_headers(
    "x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"
)


def too_many_requests(server: SandboxServer, rate_headers: dict[str, str], wait: float) -> Reply:
    """A 429 with an RFC 7807 problem body and the rate-limit headers."""
    body = {
        "title": "Too Many Requests",
        "detail": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
    }
    return Reply(429, body, headers=dict(rate_headers))


def server_error(status: int) -> Any:
    return {"status": status, "message": "Internal Server Error"}


@dataclass(frozen=True)
class SandboxRoute:
    """How the sandbox plays one platform.

    ``matches(path, params)`` claims a request; ``answer(server, path, params, headers)``
    serves it (after the budget and the faults). ``budget`` is (requests, window seconds)
    unless the server's ``limits`` say otherwise; with ``budget_resets(opened)`` a window
    ends at that moment instead (epoch seconds), and ``budget_scope(path)`` names which of
    the platform's budgets a request draws on (one per Mastodon instance).
    ``rate_headers(server, budget, remaining, reset)`` go on every answer and
    ``throttled(server, rate_headers, wait)`` is the reply once the budget is spent;
    ``server_error(status)`` is the body of a 5xx. ``refuses(server, params, headers)`` is
    the reply to a request without valid credentials (None: it has them), given before any
    budget is charged: a platform charges a request to the credential it proves (X's app,
    YouTube's API key), which such a request does not. With ``budget_owner``, the route
    draws on that platform's budgets (one Graph app serves Facebook and Instagram).
    ``connection(server)`` holds the Airflow connection fields (``host``, ``password``,
    ``login``) that point the platform's connector at this sandbox, as the demo does.
    """

    platform: str
    matches: Callable[[str, Params], bool]
    answer: Callable[[SandboxServer, str, Params, Headers], Reply]
    budget: tuple[int, int] = (1000, 3600)
    budget_resets: Callable[[float], float] | None = None
    budget_scope: Callable[[str], str] = lambda path: ""
    rate_headers: RateHeaders = rate_limit_headers
    throttled: Callable[[SandboxServer, dict[str, str], float], Reply] = too_many_requests
    server_error: Callable[[int], Any] = server_error
    refuses: Callable[[SandboxServer, Params, Headers], Reply | None] = (
        lambda server, params, headers: None
    )
    budget_owner: str | None = None
    # Platforms that send their rate-limit headers on every reply, faults included.
    rate_headers_on_faults: bool = False
    connection: Callable[[SandboxServer], dict[str, str]] = lambda server: {
        "host": server.base_url,
        "password": server.token,
    }


_ROUTES: dict[str, SandboxRoute] = {}


def register_route(route: SandboxRoute) -> SandboxRoute:
    """Add a platform's route (a request is matched against routes in registration order)."""
    if route.platform in _ROUTES:
        raise ValueError(f"a sandbox route for {route.platform!r} is already registered")
    _ROUTES[route.platform] = route
    return route


def unregister_route(platform: str) -> None:
    _ROUTES.pop(platform, None)


def routes() -> tuple[SandboxRoute, ...]:
    return tuple(_ROUTES.values())


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
    """A threaded HTTP server on loopback playing every registered platform's API."""

    def __init__(
        self,
        roster: Roster | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = SANDBOX_TOKEN,
        clock: Callable[[], datetime] | None = None,
        *,
        bluesky_limit: int | None = None,
        bluesky_window_seconds: int | None = None,
        x_limit: int | None = None,
        x_window_seconds: int | None = None,
        x_post_count_field: Literal["tweet_count", "post_count"] = "tweet_count",
        x_suspended: tuple[str, ...] = (),
        x_protected: tuple[str, ...] = (),
        rate_clock: Callable[[], float] = time.time,
        youtube_key: str = SANDBOX_YOUTUBE_KEY,
        instagram_user_id: str = SANDBOX_IG_USER_ID,
        record_requests: bool = True,
        youtube_hidden: tuple[str, ...] = (),
        youtube_page_size: int | None = None,
        mastodon_requires_login: bool = False,
        mastodon_batch_route: bool = True,
        threads_profile_discovery: bool = True,
        graph_usage_headers: tuple[str, ...] = (APP_USAGE_HEADER, BUSINESS_USAGE_HEADER),
        graph_throttle: tuple[int, int] = DEFAULT_GRAPH_THROTTLE,
        limits: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        if roster is None:
            roster = load_settings().roster_path
        if isinstance(roster, Path):
            roster = load_roster(roster)
        self.host = host
        self.port = port
        # The bearer token of every platform that takes one (YouTube takes a key instead).
        self.token = token
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rate_clock = rate_clock
        self.x_post_count_field = x_post_count_field
        self.youtube_key = youtube_key
        self.instagram_user_id = instagram_user_id
        self.mastodon_requires_login = mastodon_requires_login
        # False: an instance older than Mastodon 4.3, which has no ``accounts?id[]=`` route.
        self.mastodon_batch_route = mastodon_batch_route
        # Whether the token holds the Threads permission to look up other profiles.
        self.threads_profile_discovery = threads_profile_discovery
        # Which of Meta's usage headers the Graph platforms send with each answer.
        self.graph_usage_headers = graph_usage_headers
        # How Meta's platforms signal a spent budget: (Graph error code, HTTP status).
        _check_graph_throttle(graph_throttle)
        self.graph_throttle = graph_throttle
        # Per request thread: the throttle a "429" fault chose for the reply being made.
        self._fault_context = threading.local()
        self.faults: deque[Fault] = deque()
        self.run_faults: dict[str | None, Fault] = {}
        self.record_requests = record_requests
        self.request_log: list[tuple[str, str]] = []
        # (path, Authorization header or None) per request, in arrival order.
        self.authorization_log: list[tuple[str, str | None]] = []
        # Request budgets that differ from the routes' own: (requests, window seconds); a
        # route whose budget resets at a set time (YouTube's quota, at midnight Pacific)
        # takes the requests and keeps its own reset.
        self._limits = dict(limits or {})
        for route in routes():
            owner = route.budget_owner
            if (
                owner
                and route.platform in self._limits
                and (self._limits[route.platform] != self._limits.get(owner))
            ):
                raise ValueError(
                    f"{route.platform} draws on {owner}'s budget: give its limit as {owner}'s"
                )
        for platform, limit, window in (
            ("bluesky", bluesky_limit, bluesky_window_seconds),
            ("x", x_limit, x_window_seconds),
        ):
            if platform not in self._limits and (limit, window) != (None, None):
                default_limit, default_window = _ROUTES[platform].budget
                self._limits[platform] = (
                    default_limit if limit is None else limit,
                    default_window if window is None else window,
                )
        # (platform, budget scope) -> its budget.
        self._budgets: dict[tuple[str, str], Budget] = {}
        self._lock = threading.Lock()
        self._httpd: _QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None

        names = {e.executive_id: e.full_name for e in roster.executives}
        # platform -> lookup key (handle casefolded, or an id the platform also answers
        # to) -> (handle, display name)
        self._accounts: dict[str, dict[str, tuple[str, str]]] = {}
        # Mastodon's id -> (handle, display name): its two routes take different keys, the
        # batch ids only and the lookup handles only, so its ids are kept apart.
        self._mastodon_ids: dict[str, tuple[str, str]] = {}
        self._bluesky: dict[str, tuple[str, str, str]] = {}  # key -> (handle, did, name)
        # A renamed Bluesky account keeps its counts: did -> the handle they are drawn for.
        self._counted_as: dict[str, str] = {}
        for account in roster.accounts:
            if _is_import_only(account.platform, account.account_handle):
                continue
            handle = account.account_handle
            entry = (handle, names.get(account.executive_id, handle))
            known = self._accounts.setdefault(account.platform, {})
            if account.platform == "youtube" and _is_channel_id(handle):
                known[handle] = entry
            else:
                known[handle.casefold()] = entry
            if account.platform == "facebook":
                # The id the sandbox returns for the account names it too.
                known[synthetic_account_id(account.platform, handle)] = entry
            if account.platform == "mastodon":
                self._mastodon_ids[synthetic_account_id(account.platform, handle)] = entry
            if account.platform == "youtube":
                # Channel ids are case-sensitive (handles are not): an exact key.
                known[synthetic_channel_id(handle)] = entry
            if account.platform == "bluesky":
                lowered = handle.lower()
                did = lowered if lowered.startswith("did:") else synthetic_did(lowered)
                self._bluesky[lowered] = self._bluesky[did] = (lowered, did, entry[1])
        # The stand-ins served on each platform the roster leaves empty.
        self.stand_ins: dict[str, tuple[str, ...]] = {}
        for platform, handles in SYNTHETIC_STAND_INS.items():
            if self._accounts.get(platform):
                continue
            known = self._accounts.setdefault(platform, {})
            for handle in handles:
                entry = (handle, f"Sandbox stand-in {handle} (synthetic)")
                known[handle.casefold()] = entry
                if platform == "facebook":
                    known[synthetic_account_id(platform, handle)] = entry
            self.stand_ins[platform] = handles
        self._x = self._accounts.setdefault("x", {})
        # X's user id -> the key of its account in self._x.
        self._x_by_id = {synthetic_account_id("x", entry[0]): key for key, entry in self._x.items()}
        self._x_suspended = {name.casefold() for name in x_suspended}
        self._x_protected = {name.casefold() for name in x_protected}
        self._youtube_hidden = {name.casefold() for name in youtube_hidden}
        # An API that pages id lookups too (maxResults, 5 by default, applied to them): the
        # channels past the page are left to the next page. Google's own pages searches
        # and lists, not id lookups (None); an emulator may page them all.
        self.youtube_page_size = youtube_page_size

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

    def add_fault(self, kind: FaultKind, *, times: int = 1, **details: Any) -> None:
        """Serve ``kind`` instead of the next ``times`` answers (of ``platform``);
        ``details`` are the other fields of :class:`Fault`."""
        fault = Fault(kind, **details)
        for _ in range(times):
            self.faults.append(fault)

    def set_fault(self, kind: FaultKind, **details: Any) -> None:
        """Serve ``kind`` to every request (of ``platform``) until :meth:`clear_faults`;
        ``details`` are the other fields of :class:`Fault`."""
        fault = Fault(kind, **details)
        with self._lock:
            self.run_faults[fault.platform] = fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.run_faults.clear()

    def requests_to(self, path: str) -> int:
        """How many requests reached ``path`` (faulted and rejected ones included)."""
        self._check_recording()
        return sum(1 for logged_path, _ in self.request_log if logged_path == path)

    def authorizations_to(self, path: str) -> list[str | None]:
        """The ``Authorization`` header of each request to ``path`` (None: sent without)."""
        self._check_recording()
        return [value for logged_path, value in self.authorization_log if logged_path == path]

    def reset_budgets(self) -> None:
        """Every request budget full again, as after its window (for tests that share one
        server)."""
        with self._lock:
            self._budgets.clear()

    def _check_recording(self) -> None:
        if not self.record_requests:
            raise RuntimeError("this sandbox keeps no request log (record_requests=False)")

    def _record(self, path: str, query: str, headers: Headers) -> None:
        if self.record_requests:
            with self._lock:
                self.request_log.append((path, query))
                self.authorization_log.append((path, headers.get("authorization")))

    def known_accounts(self, platform: str) -> Mapping[str, tuple[str, str]]:
        """The accounts the sandbox serves on ``platform``: lookup key (the handle
        casefolded, or an id the platform also answers to) -> (handle, display name)."""
        return MappingProxyType(self._accounts.get(platform, {}))

    def rename_account(self, platform: str, handle: str, new_handle: str) -> None:
        """Give a Bluesky account a new handle, as its owner can: the old handle names
        nobody any more, the DID still names the account, and its counts continue."""
        if platform != "bluesky":
            raise ValueError(f"the sandbox renames Bluesky accounts only, not {platform}")
        with self._lock:
            old, did, name = self._bluesky.pop(handle.lower())
            self._counted_as.setdefault(did, old)
            entry = (new_handle.lower(), did, name)
            self._bluesky[entry[0]] = self._bluesky[did] = entry

    def connection_env(self) -> dict[str, str]:
        """An Airflow connection ``slw_<platform>`` for every route, pointing at this
        sandbox, as ``AIRFLOW_CONN_*`` environment variables (what ``make run`` sets)."""
        env = {}
        for route in routes():
            fields = {"conn_type": "http", **route.connection(self)}
            env[f"AIRFLOW_CONN_SLW_{route.platform.upper()}"] = json.dumps(fields)
        return env

    # --- request handling --------------------------------------------------------------

    def handle(self, path: str, query: str, headers: dict[str, str]) -> Reply:
        self._record(path, query, headers)
        params = parse_qs(query, keep_blank_values=True)
        route = next((r for r in routes() if r.matches(path, params)), None)
        if route is None:
            return _not_served(path)
        refusal = route.refuses(self, params, headers)
        if refusal is not None:
            return refusal
        platform = route.platform
        now = self.rate_clock()
        with self._lock:
            budget = self._budget(route, route.budget_scope(path))
            fault = self._take_fault(platform)
            passes = fault is not None and fault.kind in ("slow", "truncated_json", "part_way")
            allowed, remaining, reset = (
                budget.spend(now) if fault is None or passes else (True, 0, 0)
            )
        if fault is not None and fault.kind == "echo":
            return _echo(fault.status, path, query, params, headers)
        if fault is not None and not passes:
            reply = self._faulted(route, fault, now, budget)
            if not reply.headers and route.rate_headers_on_faults:
                with self._lock:
                    reply.headers.update(self._current_rate_headers(route, budget, now))
            return reply
        rate_headers = route.rate_headers(self, budget, remaining, reset)
        if not allowed:
            # The wait to the window's true end (the reset header is that end rounded up).
            end = budget.window_end if budget.window_end is not None else reset
            return route.throttled(self, rate_headers, end - now)
        reply = route.answer(self, path, params, headers)
        reply.headers.update(rate_headers)
        if fault is not None and fault.kind == "slow":
            reply.delay_seconds = fault.delay_seconds
        if fault is not None and fault.kind == "truncated_json":
            payload = reply.payload()
            reply.raw = payload[: max(1, len(payload) // 2)]
        if fault is not None and fault.kind == "part_way" and isinstance(reply.body, dict):
            items = reply.body.get("data")
            reply.body = {"data": items[:1]} if isinstance(items, list) else reply.body
        return reply

    def handle_post(self, path: str, query: str, body: bytes, headers: Headers) -> Reply:
        """A POST: Graph's batch endpoint, ``batch`` in the query or the body (a form,
        URL-encoded or multipart, or JSON), posted to the root or to any node (``/me``),
        with or without a version."""
        self._record(path, query, headers)
        params = parse_qs(query, keep_blank_values=True)
        for name, values in _posted_fields(body, headers.get("content-type", "")).items():
            params.setdefault(name, []).extend(values)
        batch_path = GRAPH_BATCH_PATH.match(path)
        node_path = GRAPH_PATH.match(path) or GRAPH_UNVERSIONED_NODE.match(path)
        if batch_path is None and not (node_path and "batch" in params):
            if any(route.matches(path, params) for route in routes()):
                return _method_not_allowed(path, "POST")
            return _not_served(path)
        versioned = GRAPH_VERSION_PREFIX.match(path)
        version = versioned.group(1) if versioned else GRAPH_BATCH_DEFAULT_VERSION
        return self._graph_batch(version, params, headers)

    def handle_other(self, path: str, method: str) -> Reply:
        """A method no platform's read API takes (PUT, PATCH, DELETE, OPTIONS): 405 on a
        route the sandbox plays, else its not-served answer."""
        if not any(route.matches(path, {}) for route in routes()) and not (
            GRAPH_BATCH_PATH.match(path)
        ):
            return _not_served(path)
        graph = GRAPH_VERSION_PREFIX.match(path) or GRAPH_BATCH_PATH.match(path)
        allowed = "GET, POST" if graph else "GET"
        return _method_not_allowed(path, method, allowed)

    def _graph_batch(self, version: str, params: Params, headers: Headers) -> Reply:
        """Each sub-request answered by the GET routes (and charged to their budget), as
        ``{"code", "headers", "body"}`` with the body a JSON string; null for one whose
        connection was dropped (Graph's null for a sub-request that did not complete)."""
        refusal = self._graph_refusal(params, headers)
        if refusal is not None:
            return refusal
        requests = _batch_requests(params.get("batch", [""])[0])
        if isinstance(requests, Reply):
            return requests
        include_headers = params.get("include_headers", ["true"])[0] != "false"
        # Sub-requests carry the batch's token the way the batch did.
        token = params.get("access_token", [""])[0]
        sub_headers = {k: v for k, v in headers.items() if k in ("authorization", "user-agent")}
        answers: list[dict[str, Any] | None] = []
        delay = 0.0
        for request in requests:
            reply = self._batch_sub_request(version, request, sub_headers, token)
            if reply.drop:
                answers.append(None)
                continue
            delay = max(delay, reply.delay_seconds)
            answer: dict[str, Any] = {"code": reply.status}
            if include_headers:
                answer["headers"] = [
                    {"name": "Content-Type", "value": "application/json; charset=UTF-8"},
                    *({"name": name, "value": value} for name, value in reply.headers.items()),
                ]
            answer["body"] = reply.payload().decode("utf-8", "replace")
            answers.append(answer)
        with self._lock:
            facebook = _ROUTES["facebook"]
            usage = self._current_rate_headers(facebook, self._budget(facebook), self.rate_clock())
        return Reply(200, answers, headers=usage, delay_seconds=delay)

    def _batch_sub_request(
        self, version: str, request: dict[str, Any], headers: Headers, token: str
    ) -> Reply:
        method = str(request.get("method", "GET")).upper()
        if method != "GET":
            return Reply(
                400,
                _graph_error(
                    100, f"(#100) The sandbox batch serves GET only, not {method}", "OAuthException"
                ),
            )
        relative = urlsplit(request["relative_url"])
        path = "/" + relative.path.lstrip("/")
        if not GRAPH_VERSION_PREFIX.match(path):
            path = f"/{version}{path}"
        query = relative.query
        if token and "access_token" not in parse_qs(query):
            query = f"{query}&access_token={token}" if query else f"access_token={token}"
        params = parse_qs(query, keep_blank_values=True)
        route = next((r for r in routes() if r.matches(path, params)), None)
        if route is None or route.platform not in GRAPH_BATCH_PLATFORMS:
            return Reply(
                400,
                _graph_error(100, "Unsupported get request.", "GraphMethodException", 33),
            )
        return self.handle(path, query, headers)

    def _budget(self, route: SandboxRoute, scope: str = "") -> Budget:
        """The platform's budget for ``scope`` (each scope has the whole limit to itself)."""
        owner = route.budget_owner or route.platform
        key = (owner, scope)
        budget = self._budgets.get(key)
        if budget is None:
            limit, window = self._limits.get(owner, _ROUTES[owner].budget)
            budget = self._budgets[key] = Budget(limit, window, route.budget_resets)
        return budget

    def _graph_refusal(self, params: Params, headers: Headers) -> Reply | None:
        if self._bearer_ok(headers, params):
            return None
        return Reply(400, _graph_error(190, "Invalid OAuth access token.", "OAuthException"))

    def _bearer_ok(self, headers: Headers, params: dict[str, list[str]]) -> bool:
        """Whether a Graph request carries the token: as ``access_token=`` or in the
        ``Authorization`` header, under the Bearer scheme or Graph's own ``OAuth``."""
        token = params.get("access_token", [""])[0]
        return self._has_bearer(headers, schemes=("bearer", "oauth")) or token == self.token

    def _has_bearer(self, headers: Headers, schemes: tuple[str, ...] = ("bearer",)) -> bool:
        # The auth scheme is case-insensitive and followed by one or more spaces (RFC 7235,
        # 6750); the token is compared exactly.
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.casefold() in schemes and token.lstrip(" ") == self.token

    def _mastodon(self, path: str, params: dict[str, list[str]], headers: Headers) -> Reply:
        instance_path = MASTODON_INSTANCE_PATH.match(path)
        if instance_path:
            path = instance_path.group(2)
        # Rails takes a path with or without a slash at its end (Mastodon.py sends one).
        path = path.rstrip("/") or "/"
        if MASTODON_INSTANCE_INFO.match(path):
            # An instance describes itself to anyone, even one that requires login.
            domain = instance_path.group(1) if instance_path else "mastodon.sandbox.invalid"
            return Reply(200, self._mastodon_instance_info(domain, path))
        if self.mastodon_requires_login and not self._has_bearer(headers):
            return Reply(401, {"error": "This API requires an authenticated user"})
        day = self.clock().date()
        by_id = MASTODON_ACCOUNT_BY_ID.match(path)
        if path not in (MASTODON_LOOKUP_PATH, MASTODON_ACCOUNTS_PATH) and not by_id:
            return Reply(404, {"error": "Not Found"})
        # The lookup takes an acct (a handle), the batch ids: a handle is no account's id,
        # and an id no acct.
        known = (
            self._accounts.get("mastodon", {})
            if path == MASTODON_LOOKUP_PATH
            else self._mastodon_ids
        )
        if instance_path:
            instance = instance_path.group(1).casefold()
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
                return Reply(404, {"error": "Record not found"})
            return Reply(200, _mastodon_account(entry, day, local=instance_path is not None))
        if by_id:
            entry = known.get(by_id.group(1))
            if entry is None:
                return Reply(404, {"error": "Record not found"})
            return Reply(200, _mastodon_account(entry, day, local=instance_path is not None))
        if not self.mastodon_batch_route:
            return Reply(404, {"error": "Not Found"})
        ids = params.get("id[]", [])
        if len(ids) > MASTODON_MAX_IDS:
            return Reply(
                422,
                {"error": f"Validation failed: id[] must not hold more than {MASTODON_MAX_IDS}"},
            )
        accounts = [
            _mastodon_account(known[i], day, local=instance_path is not None)
            for i in dict.fromkeys(ids)
            if i in known
        ]
        return Reply(200, accounts)

    def _mastodon_instance_info(self, domain: str, path: str) -> dict[str, Any]:
        """``/api/v1/instance`` or ``/api/v2/instance``: the instance's domain, title and
        version (4.3, or 4.2 when it has no ``accounts?id[]=`` route), as each spells them."""
        version = MASTODON_VERSION if self.mastodon_batch_route else MASTODON_VERSION_WITHOUT_BATCH
        title = f"Sandbox instance {domain} (synthetic)"
        registrations = not self.mastodon_requires_login
        if path.startswith("/api/v2/"):
            # 4.3 added the API's own version beside the software's; clients check it.
            api_versions = {"api_versions": {"mastodon": 2}} if self.mastodon_batch_route else {}
            return {
                **api_versions,
                "domain": domain,
                "title": title,
                "version": version,
                "source_url": "https://github.com/mastodon/mastodon",
                "description": "A sandbox instance serving synthetic accounts.",
                "usage": {"users": {"active_month": 0}},
                "languages": ["en"],
                "configuration": {"accounts": {"max_featured_tags": 10}},
                "registrations": {"enabled": registrations, "approval_required": False},
                "contact": {"email": ""},
                "rules": [],
            }
        return {
            "uri": domain,
            "title": title,
            "short_description": "A sandbox instance serving synthetic accounts.",
            "description": "A sandbox instance serving synthetic accounts.",
            "email": "",
            "version": version,
            "urls": {},
            "stats": {"user_count": 0, "status_count": 0, "domain_count": 0},
            "languages": ["en"],
            "registrations": registrations,
            "approval_required": False,
            "invites_enabled": False,
            "rules": [],
        }

    def _youtube_refusal(self, params: Params) -> Reply | None:
        key = params.get("key", [""])[0]
        if not key:
            return Reply(
                403,
                _google_error(
                    403, "The request is missing a valid API key.", "forbidden", "global"
                ),
            )
        if key != self.youtube_key:
            return Reply(
                400,
                _google_error(
                    400, "API key not valid. Please pass a valid API key.", "badRequest", "global"
                ),
            )
        return None

    def _youtube(self, params: dict[str, list[str]]) -> Reply:
        parts = {part.strip() for part in ",".join(params.get("part", [])).split(",")}
        if "statistics" not in parts or not parts <= YOUTUBE_PARTS:
            return Reply(
                400,
                _google_error(
                    400,
                    "'part' must be a comma-separated list of "
                    f"{', '.join(sorted(YOUTUBE_PARTS))} that includes statistics",
                    "invalidPart",
                    "youtube.parameter",
                ),
            )
        if "forHandle" in params and "id" in params:
            return Reply(
                400,
                _google_error(
                    400,
                    "Incompatible parameters specified in the request: a maximum of one of "
                    "the filters id, forHandle, forUsername, mine may be specified.",
                    "invalidCriteria",
                    "youtube.parameter",
                ),
            )
        known = self._accounts.get("youtube", {})
        if "forHandle" in params:
            handle = params["forHandle"][0]
            wanted = [(handle if handle.startswith("@") else "@" + handle).casefold()]
        else:
            # Ids match exactly; an @handle is no id.
            ids = [i for i in ",".join(params.get("id", [])).split(",") if i]
            wanted = [i for i in ids if not i.startswith("@")]
            if len(ids) > YOUTUBE_MAX_IDS:
                return Reply(
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
            entry = known.get(value)
            if entry is None:
                continue
            handle, name = entry
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
            item: dict[str, Any] = {
                "kind": "youtube#channel",
                "etag": synthetic_account_id("etag", handle),
                "id": synthetic_channel_id(handle),
            }
            if "snippet" in parts:
                item["snippet"] = {
                    "title": name,
                    "description": "A synthetic sandbox channel.",
                    "customUrl": handle.casefold() if handle.startswith("@") else "",
                    "publishedAt": _CREATED_AT,
                }
            item["statistics"] = statistics
            items.append(item)
        total, page = len(items), self.youtube_page_size
        document: dict[str, Any] = {
            "kind": "youtube#channelListResponse",
            "etag": "sandbox",
        }
        if page is not None and total > page:
            items = items[:page]
            document["nextPageToken"] = f"sandbox-page-{page}"
        document["pageInfo"] = {"totalResults": total, "resultsPerPage": len(items)}
        if items:
            document["items"] = items
        return Reply(200, document)

    def _graph(
        self, platform: str, path: str, params: dict[str, list[str]], headers: Headers
    ) -> Reply:
        fields = params.get("fields", [""])[0]
        if platform == "facebook":
            unknown = _unknown_page_field(fields)
            if unknown is not None:
                message = f"(#100) Tried accessing nonexisting field ({unknown}) on node type"
                return Reply(400, _graph_error(100, f"{message} (Page)", "OAuthException"))
        day = self.clock().date()
        known = self._accounts.get(platform, {})
        node_path = GRAPH_PATH.match(path)
        if node_path is None:  # the root with ?ids=: several nodes in one request
            return self._graph_pages(params.get("ids", [""])[0], fields, known, day)
        node = unquote(node_path.group(1))
        if platform == "instagram":
            if node != self.instagram_user_id:
                return Reply(
                    400, _graph_error(100, "Unsupported get request.", "GraphMethodException", 33)
                )
            return self._business_discovery(fields, known, day)
        entry = known.get(node.casefold())
        if entry is None:
            return Reply(
                400,
                _graph_error(
                    100,
                    f"Unsupported get request. Object with ID '{node}' does not exist, cannot be"
                    " loaded due to missing permissions, or does not support this operation.",
                    "GraphMethodException",
                    33,
                ),
            )
        return Reply(200, _graph_page(entry, fields, day))

    def _graph_pages(
        self, ids: str, fields: str, known: Mapping[str, tuple[str, str]], day: Any
    ) -> Reply:
        """``?ids=a,b``: each page by the name or id asked with, or Graph's error naming
        the ones that are not there (the whole request fails, as on Graph)."""
        names = [name.strip() for name in unquote(ids).split(",") if name.strip()]
        if not names:
            return Reply(
                400, _graph_error(100, "(#100) The parameter ids is required", "OAuthException")
            )
        missing = [name for name in names if name.casefold() not in known]
        if missing:
            return Reply(
                404,
                _graph_error(
                    803,
                    f"(#803) Some of the aliases you requested do not exist: {','.join(missing)}",
                    "OAuthException",
                ),
            )
        return Reply(
            200, {name: _graph_page(known[name.casefold()], fields, day) for name in names}
        )

    def _business_discovery(
        self, fields: str, known: Mapping[str, tuple[str, str]], day: Any
    ) -> Reply:
        """Business discovery, wherever it stands in ``fields``: the subfields asked for (and
        the id) of the account named, beside the own account's id."""
        discovery = next(
            match
            for field_text in _graph_fields(fields)
            if (match := INSTAGRAM_DISCOVERY.match(field_text))
        )
        username, listed = discovery.group(1), discovery.group(2) or ""
        subfields = [_field_name(text) for text in _graph_fields(listed) if text]
        unknown = [name for name in subfields if name not in BUSINESS_DISCOVERY_FIELDS]
        if unknown:
            return Reply(
                400,
                _graph_error(
                    100,
                    f"(#100) Tried accessing nonexisting field ({unknown[0]}) "
                    "on node type (BusinessDiscovery)",
                    "OAuthException",
                ),
            )
        entry = known.get(username.casefold())
        if entry is None:
            return Reply(
                400,
                _graph_error(110, "Invalid user id", "OAuthException", 2207013, "Cannot find User"),
            )
        handle, name = entry
        followers, following, posts = synthetic_metrics("instagram", handle, day)
        account_id = synthetic_account_id("instagram", handle)
        values: dict[str, Any] = {
            "biography": "A synthetic sandbox account.",
            "followers_count": followers,
            "follows_count": following,
            "ig_id": int(account_id) % 10**10,
            "media": {"data": []},
            "media_count": posts,
            "name": name,
            "username": handle,
        }
        account = {wanted: values[wanted] for wanted in subfields if wanted in values}
        account["id"] = account_id
        return Reply(200, {"business_discovery": account, "id": self.instagram_user_id})

    def _threads(self, params: dict[str, list[str]], headers: Headers) -> Reply:
        if not self.threads_profile_discovery:
            return Reply(
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
            return Reply(
                400,
                _graph_error(
                    100, "(#100) The parameter username is required once", "OAuthException"
                ),
            )
        entry = self._accounts.get("threads", {}).get(usernames[0].removeprefix("@").casefold())
        if entry is None:
            return Reply(
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
        return Reply(200, profile)

    def _linkedin_refusal(self, headers: Headers) -> Reply | None:
        if self._has_bearer(headers):
            return None
        return Reply(
            401,
            {
                "status": 401,
                "serviceErrorCode": 65600,
                "code": "INVALID_ACCESS_TOKEN",
                "message": "Invalid access token",
            },
        )

    def _linkedin(self, path: str, params: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if path.startswith(LINKEDIN_REST_PREFIX):
            refused = _linkedin_rest_headers_refused(headers)
            if refused is not None:
                return refused
        if params.get("edgeType", [""])[0] not in LINKEDIN_FOLLOWER_EDGES:
            return Reply(
                400, {"status": 400, "message": "edgeType must be CompanyFollowedByMember"}
            )
        urn = unquote(LINKEDIN_PATH.match(path).group(1))  # type: ignore[union-attr]
        entry = self._accounts.get("linkedin", {}).get(urn.casefold())
        if entry is None or not urn.startswith("urn:li:organization:"):
            return Reply(
                404, {"status": 404, "serviceErrorCode": 0, "message": f"Not found: {urn}"}
            )
        followers, _, _ = synthetic_metrics("linkedin", entry[0], self.clock().date())
        return Reply(200, {"firstDegreeSize": followers})

    def current_graph_throttle(self) -> tuple[int, int]:
        """The (Graph error code, HTTP status) of the throttled reply being made: the
        fault's choice while a "429" fault is served, else the server's."""
        chosen = getattr(self._fault_context, "graph_throttle", None)
        return chosen if chosen is not None else self.graph_throttle

    def _current_rate_headers(
        self, route: SandboxRoute, budget: Budget, now: float
    ) -> dict[str, str]:
        end = (
            budget.window_end if budget.window_end is not None else budget.end_of_window_opened(now)
        )
        return route.rate_headers(self, budget, budget.limit - budget.used, math.ceil(end))

    def _take_fault(self, platform: str) -> Fault | None:
        for key in (platform, None):
            if key in self.run_faults:
                return self.run_faults[key]
        for fault in self.faults:
            if fault.platform in (None, platform):
                self.faults.remove(fault)
                return fault
        return None

    def _faulted(self, route: SandboxRoute, fault: Fault, now: float, budget: Budget) -> Reply:
        if fault.kind == "429":
            reset = int(now + fault.reset_seconds)
            rate_headers = route.rate_headers(self, budget, 0, reset)
            self._fault_context.graph_throttle = fault.graph_throttle
            try:
                return route.throttled(self, rate_headers, fault.reset_seconds)
            finally:
                self._fault_context.graph_throttle = None
        if fault.kind in ("500", "503"):
            return Reply(int(fault.kind), route.server_error(int(fault.kind)))
        if fault.kind == "error_200":
            return Reply(200, route.server_error(500))
        if fault.kind == "drop":
            return Reply(0, drop=True)
        return Reply(200, raw=b"<html><body>502 Bad Gateway</body></html>")

    def _get_profiles(self, actors: list[str]) -> Reply:
        if not actors:
            return Reply(
                400,
                {
                    "error": "InvalidRequest",
                    "message": 'Error: Params must have the property "actors"',
                },
            )
        if len(actors) > BLUESKY_MAX_ACTORS:
            return Reply(
                400,
                {
                    "error": "InvalidRequest",
                    "message": (
                        f"Error: actors must not have more than {BLUESKY_MAX_ACTORS} elements"
                    ),
                },
            )
        for index, actor in enumerate(actors):
            handle_too_long = not actor.startswith("did:") and len(actor) > 253
            if handle_too_long or not BLUESKY_ACTOR.fullmatch(actor):
                return Reply(
                    400,
                    {
                        "error": "InvalidRequest",
                        "message": f"Error: actors/{index} must be a valid did or a handle",
                    },
                )
        profiles = []
        served: set[str] = set()
        for actor in actors:
            entry = self._bluesky.get(actor.strip().lower())
            if entry is None or entry[1] in served:
                continue
            served.add(entry[1])
            profiles.append(self._bluesky_profile(entry))
        return Reply(200, {"profiles": profiles})

    def _get_profile(self, actors: list[str]) -> Reply:
        """``getProfile``: one actor's profile, or the AppView's 400 for an unknown one."""
        if len(actors) != 1 or not actors[0]:
            return Reply(
                400,
                {
                    "error": "InvalidRequest",
                    "message": 'Error: Params must have the property "actor"',
                },
            )
        if not BLUESKY_ACTOR.fullmatch(actors[0]):
            return Reply(
                400,
                {
                    "error": "InvalidRequest",
                    "message": "Error: actor must be a valid did or a handle",
                },
            )
        entry = self._bluesky.get(actors[0].strip().lower())
        if entry is None:
            return Reply(400, {"error": "InvalidRequest", "message": "Profile not found"})
        return Reply(200, self._bluesky_profile(entry))

    def _bluesky_profile(self, entry: tuple[str, str, str]) -> dict[str, Any]:
        handle, did, name = entry
        day = self.clock().date()
        counted_as = self._counted_as.get(did, handle)
        followers, following, posts = synthetic_metrics("bluesky", counted_as, day)
        return {
            "did": did,
            "handle": handle,
            "displayName": name,
            "followersCount": followers,
            "followsCount": following,
            "postsCount": posts,
            "indexedAt": f"{day.isoformat()}T00:00:00.000Z",
            "createdAt": _CREATED_AT,
        }

    def _x_lookup(self, path: str, params: Params, headers: Headers) -> Reply:
        """X's user lookups: ``users/by`` (usernames, 1 to 100), one user by username or by
        id (``data`` is the user), users by id (``?ids=``, 1 to 100)."""
        if path == X_PATH:
            usernames = _x_listed(params, "usernames", X_USERNAME)
            if isinstance(usernames, Reply):
                return usernames
            return self._x_users(usernames, params, parameter="usernames")
        by_username = X_USER_BY_USERNAME.match(path)
        if by_username:
            name = unquote(by_username.group(1))
            if not X_USERNAME.match(name):
                return _x_invalid(
                    [name],
                    f"The `username` query parameter value [{name}] does not match "
                    f"{X_USERNAME.pattern}",
                    parameter="username",
                )
            return self._x_users([name], params, parameter="username", one=True)
        by_id = X_USER_BY_ID.match(path)
        if by_id:
            return self._x_users([by_id.group(1)], params, parameter="id", one=True)
        ids = _x_listed(params, "ids", X_USER_ID)
        if isinstance(ids, Reply):
            return ids
        return self._x_users(ids, params, parameter="ids")

    def _x_users(
        self, names: list[str], params: Params, *, parameter: str, one: bool = False
    ) -> Reply:
        """The users asked for by username or id (``parameter`` says which): ``data``
        holds the users found (the user itself when ``one``), ``errors`` the rest."""
        fields = ",".join(params.get("user.fields", [])).split(",")
        day = self.clock().date()
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        by_id = parameter in ("id", "ids")
        for name in names:
            key = self._x_by_id.get(name) if by_id else name.casefold()
            known = self._x.get(key) if key is not None else None
            listed = f"{'ids' if by_id else 'usernames'}: [{name}]"
            if key is not None and key in self._x_suspended:
                errors.append(
                    _x_error(name, f"User has been suspended: [{name}].", "Forbidden", parameter)
                )
            elif known is None:
                errors.append(
                    _x_error(
                        name, f"Could not find user with {listed}.", "Not Found Error", parameter
                    )
                )
            else:
                username, display_name = known
                user: dict[str, Any] = {
                    "id": synthetic_account_id("x", username),
                    "name": display_name,
                    "username": username,
                }
                if "protected" in fields:
                    # Like X, only when asked for (user.fields), and then for every user.
                    user["protected"] = key in self._x_protected
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
            document["data"] = data[0] if one else data
        if errors:
            document["errors"] = errors
        return Reply(200, document)


def _is_channel_id(handle: str) -> bool:
    return handle.startswith("UC") and len(handle) == 24


def synthetic_channel_id(handle: str) -> str:
    """A stable ``UC`` + 22 character YouTube channel id for a handle or id."""
    if _is_channel_id(handle):
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


def _mastodon_account(entry: tuple[str, str], day: Any, *, local: bool) -> dict[str, Any]:
    """An account as an instance shows it: ``acct`` is the user alone on the account's own
    instance (``local``), ``user@domain`` elsewhere."""
    handle, name = entry
    followers, following, posts = synthetic_metrics("mastodon", handle, day)
    username = handle.split("@")[0]
    return {
        "id": synthetic_account_id("mastodon", handle),
        "username": username,
        "acct": username if local else handle,
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


def _echo(
    status: int, path: str, query: str, params: dict[str, list[str]], headers: dict[str, str]
) -> Reply:
    """What a debugging gateway answers: the request as it arrived, credentials included
    (the request line percent-encoded, headers and decoded query values as they are)."""
    request_line = f"GET {path}?{query} HTTP/1.1" if query else f"GET {path} HTTP/1.1"
    return Reply(
        status,
        {
            "error": "request rejected",
            "headers": headers,
            "request_line": request_line,
            "query": params,
        },
    )


def _posted_fields(body: bytes, content_type: str) -> dict[str, list[str]]:
    """The fields of a POST body: a URL-encoded or multipart form (what ``curl -F`` and
    form posts send), or a JSON object (a list value, such as ``batch``, kept as JSON
    text); nothing for any other body."""
    if not body:
        return {}
    kind = content_type.split(";", 1)[0].strip().casefold()
    if kind == "application/x-www-form-urlencoded":
        return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    if kind == "multipart/form-data":
        message = BytesParser(policy=email_policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace") + body
        )
        fields: dict[str, list[str]] = {}
        for part in message.iter_parts() if message.is_multipart() else ():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.setdefault(name, []).append(payload.decode("utf-8", "replace"))
        return fields
    if kind == "application/json":
        try:
            document = json.loads(body)
        except ValueError:
            return {}
        if isinstance(document, dict):
            return {
                str(name): [value if isinstance(value, str) else json.dumps(value)]
                for name, value in document.items()
            }
    return {}


def _not_served(path: str) -> Reply:
    """What the platform whose API the path belongs to answers a route the sandbox does
    not play, in that platform's error form (a client's own error handling then reads it)."""
    if path.startswith("/xrpc/"):
        return Reply(501, {"error": "MethodNotImplemented", "message": "Method Not Implemented"})
    if GRAPH_VERSION_PREFIX.match(path):
        return Reply(
            400,
            _graph_error(2500, f"Unknown path components: {path}", "OAuthException"),
        )
    return _route_error(path, 404, "Not Found", f"Sorry, the sandbox does not serve {path}")


def _method_not_allowed(path: str, method: str, allowed: str = "GET") -> Reply:
    """A route the sandbox plays, asked with a method it does not take: 405 (with
    ``Allow``) in the platform's error form, as the platforms' HTTP servers answer (Graph's
    is a 400, like all of its refusals)."""
    detail = f"{method} is not allowed on {path}: use {allowed}"
    if path.startswith("/xrpc/"):
        reply = Reply(405, {"error": "InvalidRequest", "message": detail})
    elif GRAPH_VERSION_PREFIX.match(path):
        # Graph answers every refused call 400, whatever the cause.
        reply = Reply(400, _graph_error(100, f"(#100) {detail}", "OAuthException"))
    else:
        reply = _route_error(path, 405, "Method Not Allowed", detail)
    reply.headers["Allow"] = allowed
    return reply


def _route_error(path: str, status: int, title: str, detail: str) -> Reply:
    """An error in the form of the platform whose API ``path`` belongs to (Graph's and
    Bluesky's aside)."""
    if path.startswith(("/api/v1/", "/api/v2/", "/mastodon/")):
        return Reply(status, {"error": title if status == 404 else detail})
    if path.startswith("/2/"):
        problem = {"title": f"{title} Error" if status == 404 else title, "detail": detail}
        return Reply(status, {**problem, "type": "about:blank", "status": status})
    if path.startswith("/youtube/"):
        if status == 404:
            return Reply(status, _google_error(status, title, "notFound", "global"))
        return Reply(status, _google_error(status, detail, "methodNotAllowed", "global"))
    if path.startswith(("/v2/", "/rest/")):
        code = "RESOURCE_NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED"
        message = "No virtual resource found" if status == 404 else detail
        return Reply(
            status, {"status": status, "serviceErrorCode": 0, "code": code, "message": message}
        )
    return Reply(status, {"error": title.replace(" ", ""), "message": detail})


def _batch_requests(text: str) -> list[dict[str, Any]] | Reply:
    """A batch's sub-requests, or the Graph error for a missing, malformed or too long one."""

    def refused(message: str) -> Reply:
        return Reply(400, _graph_error(100, message, "OAuthException"))

    if not text:
        return refused("(#100) The parameter batch is required")
    try:
        requests = json.loads(text)
    except ValueError:
        return refused("(#100) The parameter batch must be a JSON-encoded array")
    if not isinstance(requests, list) or not requests:
        return refused("(#100) The parameter batch must be a non-empty JSON-encoded array")
    if len(requests) > GRAPH_MAX_BATCH:
        return refused(
            f"(#100) Too many requests in batch message. Maximum batch size is {GRAPH_MAX_BATCH}"
        )
    for request in requests:
        if not isinstance(request, dict) or not isinstance(request.get("relative_url"), str):
            return refused("(#100) Each batch request must be an object with a relative_url")
    return requests


def _x_error(name: str, detail: str, title: str, parameter: str = "usernames") -> dict[str, str]:
    return {
        "value": name,
        "detail": detail,
        "title": title,
        "resource_type": "user",
        "parameter": parameter,
        "resource_id": name,
        "type": X_NOT_FOUND,
    }


def _x_listed(params: Params, parameter: str, valid: re.Pattern[str]) -> list[str] | Reply:
    """The comma-separated values of ``parameter`` (1 to 100, each matching ``valid``), or
    X's 400 naming the ones that are not."""
    raw = ",".join(params.get(parameter, []))
    # An empty element (``a,,b``) is a value that fails the pattern, as on X.
    values = raw.split(",") if raw else []
    if not 1 <= len(values) <= X_MAX_USERNAMES:
        return _x_invalid(
            values,
            f"The number of values in the `{parameter}` query parameter list "
            f"[{len(values)}] is not between 1 and {X_MAX_USERNAMES}",
            parameter=parameter,
        )
    invalid = [value for value in values if not valid.match(value)]
    if invalid:
        return _x_invalid(
            invalid,
            f"The `{parameter}` query parameter value [{invalid[0]}] does not match "
            f"{valid.pattern}",
            parameter=parameter,
        )
    return values


def _x_unauthorized() -> Reply:
    return Reply(
        401,
        {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"},
    )


def _x_invalid(values: list[str], message: str, parameter: str = "usernames") -> Reply:
    return Reply(
        400,
        {
            "errors": [{"parameters": {parameter: values}, "message": message}],
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
            self._answer(lambda path, query, headers: sandbox.handle(path, query, headers))

        def do_HEAD(self) -> None:
            self._answer(
                lambda path, query, headers: sandbox.handle(path, query, headers), body=False
            )

        def do_POST(self) -> None:
            body = self._request_body()
            if isinstance(body, Reply):
                # The rest of the connection cannot be told from the unread body.
                self.close_connection = True
                self._answer(lambda path, query, headers: body)
                return
            self._answer(
                lambda path, query, headers: sandbox.handle_post(path, query, body, headers)
            )

        def _other_method(self) -> None:
            self._answer(lambda path, query, headers: sandbox.handle_other(path, self.command))

        do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _other_method

        def _request_body(self) -> bytes | Reply:
            """The request's body: sent with a Content-Length or in chunks; or the 400
            (411 without either framing, 413 over the size the sandbox takes) that answers
            a body that cannot be read."""
            if "chunked" in self.headers.get("Transfer-Encoding", "").casefold():
                return _read_chunked(self.rfile)
            length_text = self.headers.get("Content-Length")
            if length_text is None:
                return b""
            if not length_text.strip().isdigit():
                return _bad_body(400, f"Content-Length {length_text!r} is not a number")
            length = int(length_text)
            if length > MAX_REQUEST_BODY_BYTES:
                return _bad_body(413, f"a body of {length} bytes is over the sandbox's limit")
            return self.rfile.read(length)

        def _answer(self, serve: Callable[[str, str, Headers], Reply], body: bool = True) -> None:
            parts = urlsplit(self.path)
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                reply = serve(parts.path, parts.query, headers)
            except Exception:
                log.exception("sandbox failed on %s", parts.path)
                reply = Reply(500, {"error": "InternalServerError", "message": "sandbox bug"})
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
            # Every count the sandbox serves is invented, the five real executives' too. An
            # extra header (no real API sends it, and clients following the reference ignore
            # unknown headers) lets the connectors record that per raw row without anything
            # in production code knowing the demo: platforms.base.SYNTHETIC_HEADER.
            self.send_header(SYNTHETIC_HEADER, "true")
            self.end_headers()
            if body:
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            # args[0] is the request line, whose URL may carry an API key.
            log.debug("sandbox: " + format, *(_redacted_request_line(arg) for arg in args))

    return SandboxHandler


# Graph's batch of 50 sub-requests is a few kilobytes; a megabyte is far beyond any client's.
MAX_REQUEST_BODY_BYTES = 1 << 20


def _bad_body(status: int, message: str) -> Reply:
    """A POST body the sandbox cannot read, answered in Graph's error form (the sandbox
    takes POSTs for Graph's batch endpoint only)."""
    return Reply(status, _graph_error(100, f"(#100) {message}", "OAuthException"))


def _read_chunked(stream: Any) -> bytes | Reply:
    """A body sent with ``Transfer-Encoding: chunked`` (RFC 9112 section 7.1), trailers
    skipped."""
    body = bytearray()
    while True:
        size_line = stream.readline(1024).split(b";", 1)[0].strip()
        # Hexadecimal digits only: int() would also take a sign or 0x, and a size of -1 read
        # until the client hung up.
        if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_line):
            return _bad_body(400, f"a chunk size {size_line[:20]!r} is not hexadecimal")
        size = int(size_line, 16)
        if size == 0:
            while stream.readline(1024).strip():
                pass
            return bytes(body)
        if len(body) + size > MAX_REQUEST_BODY_BYTES:
            return _bad_body(413, "a chunked body over the sandbox's limit")
        body += stream.read(size)
        stream.readline(3)


def _redacted_request_line(value: Any) -> Any:
    """A logged request line ("GET /path?key=... HTTP/1.1") without credential values."""
    if not isinstance(value, str):
        return value
    parts = value.split(" ")
    return " ".join(redact_url(part) if "?" in part else part for part in parts)


def _is_import_only(platform: str, handle: str) -> bool:
    """Whether the platform's connector never asks for ``handle`` (a LinkedIn member, a
    Facebook profile): the sandbox does not serve it either."""
    return is_registered(platform) and connector_class(platform).is_import_only(handle)


# --- the built-in platforms' routes ---------------------------------------------------------


_bluesky_rate_headers = limit_headers(
    "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", policy="RateLimit-Policy"
)


def _bluesky_throttled(server: SandboxServer, rate_headers: dict[str, str], wait: float) -> Reply:
    reply = Reply(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})
    reply.headers["Retry-After"] = str(max(0, math.ceil(wait)))
    reply.headers.update(rate_headers)
    return reply


def _is_mastodon_path(path: str) -> bool:
    """A Mastodon route the sandbox plays: an instance's (``/mastodon/<instance>/api/...``,
    any route, its unknown ones answered as Mastodon does), or one of the routes at the root
    (the lookup, the batch, one account by id, the instance's description)."""
    if MASTODON_INSTANCE_PATH.match(path):
        return True
    path = path.rstrip("/")
    return (
        path in (MASTODON_LOOKUP_PATH, MASTODON_ACCOUNTS_PATH)
        or MASTODON_INSTANCE_INFO.match(path) is not None
        or MASTODON_ACCOUNT_BY_ID.match(path) is not None
    )


def _mastodon_instance(path: str) -> str:
    """The instance a Mastodon request is asked of, whose budget it draws on (Mastodon
    limits each instance on its own); the paths without one play an instance of their own."""
    instance_path = MASTODON_INSTANCE_PATH.match(path)
    return instance_path.group(1).casefold() if instance_path else ""


def _next_pacific_midnight(now: float) -> float:
    """The first midnight Pacific time after ``now`` (epoch seconds both)."""
    tomorrow = datetime.fromtimestamp(now, YOUTUBE_QUOTA_ZONE).date() + timedelta(days=1)
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=YOUTUBE_QUOTA_ZONE)
    return midnight.timestamp()


def _iso_millis(epoch_seconds: int) -> str:
    """Mastodon's spelling of a moment: ISO 8601 in UTC, to the millisecond, with ``Z``."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


_mastodon_rate_headers = limit_headers(
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", reset_text=_iso_millis
)


def _no_rate_headers(
    server: SandboxServer, budget: Budget, remaining: int, reset: int
) -> dict[str, str]:
    return {}  # YouTube and LinkedIn do not name their limits in headers


def _youtube_throttled(server: SandboxServer, rate_headers: dict[str, str], wait: float) -> Reply:
    return Reply(
        403,
        _google_error(
            403,
            "The request cannot be completed because you have exceeded your "
            '<a href="/youtube/v3/getting-started#quota">quota</a>.',
            "quotaExceeded",
            "youtube.quota",
        ),
    )


def _graph_usage(server: SandboxServer, percent: int) -> dict[str, str]:
    """Meta's usage headers: the share of the app's (and the business's) hourly budget
    used, in percent (the sandbox reports its request budget as the call count)."""
    usage = {"call_count": percent, "total_cputime": 1, "total_time": 1}
    headers = {
        APP_USAGE_HEADER: json.dumps(usage),
        BUSINESS_USAGE_HEADER: json.dumps(
            {
                SANDBOX_BUSINESS_ID: [
                    {"type": "pages", **usage, "estimated_time_to_regain_access": 0}
                ]
            }
        ),
    }
    return {name: value for name, value in headers.items() if name in server.graph_usage_headers}


def _graph_rate_headers(
    server: SandboxServer, budget: Budget, remaining: int, reset: int
) -> dict[str, str]:
    return _graph_usage(server, budget.used_percent(remaining))


def _graph_throttled(server: SandboxServer, rate_headers: dict[str, str], wait: float) -> Reply:
    code, status = server.current_graph_throttle()
    error = _graph_error(code, GRAPH_THROTTLE_MESSAGES[code], "OAuthException", transient=True)
    return Reply(status, error, headers=_graph_usage(server, 100))


def _graph_server_error(status: int) -> Any:
    return _graph_error(
        2,
        "An unexpected error has occurred. Please retry your request.",
        "OAuthException",
        transient=True,
    )


def _linkedin_rest_headers_refused(headers: Headers) -> Reply | None:
    """LinkedIn's answer to a ``/rest`` call without its version headers (None: both are
    there): ``LinkedIn-Version: YYYYMM`` and ``X-Restli-Protocol-Version: 2.0.0``."""
    version = headers.get("linkedin-version")
    if version is None:
        return Reply(
            400,
            {
                "status": 400,
                "code": "VERSION_MISSING",
                "message": "A version must be present. Please specify a version by adding "
                "the LinkedIn-Version header.",
            },
        )
    if not LINKEDIN_VERSION.match(version):
        return Reply(
            400,
            {
                "status": 400,
                "code": "INVALID_VERSION",
                "message": f"Invalid LinkedIn-Version header {version!r}: expected YYYYMM.",
            },
        )
    protocol = headers.get("x-restli-protocol-version")
    if protocol != RESTLI_PROTOCOL_VERSION:
        return Reply(
            400,
            {
                "status": 400,
                "code": "ILLEGAL_ARGUMENT",
                "message": "The X-Restli-Protocol-Version header must be "
                f"{RESTLI_PROTOCOL_VERSION} (got {protocol!r}).",
            },
        )
    return None


def _linkedin_throttled(server: SandboxServer, rate_headers: dict[str, str], wait: float) -> Reply:
    return Reply(
        429,
        {
            "status": 429,
            "serviceErrorCode": 101,
            "message": "Resource level throttle APPLICATION DAY limit "
            "for calls to this resource is reached.",
        },
    )


# Meta's platforms (Facebook and Instagram on one Graph app, Threads on its own) each have an
# app budget, Graph's usage headers, Graph's throttle and error bodies, and Graph's answer to
# a missing token.
_META_LIMITS: dict[str, Any] = {
    "refuses": lambda server, params, headers: server._graph_refusal(params, headers),
    "budget": (200, 3_600),
    "rate_headers": _graph_rate_headers,
    "throttled": _graph_throttled,
    "server_error": _graph_server_error,
}


def _is_graph_node(path: str, params: Params) -> bool:
    """A Graph node (``/v21.0/<node>``), or several at the root (``/v21.0/?ids=a,b``)."""
    if path == THREADS_LOOKUP_PATH:
        return False
    return GRAPH_PATH.match(path) is not None or (
        "ids" in params and GRAPH_BATCH_PATH.match(path) is not None
    )


def _graph_page(entry: tuple[str, str], fields: str, day: Any) -> dict[str, Any]:
    """A Facebook Page with the fields asked for that the sandbox knows (and its id)."""
    handle, name = entry
    followers, _, _ = synthetic_metrics("facebook", handle, day)
    asked = {_field_name(text) for text in _graph_fields(fields)}
    page: dict[str, Any] = {"id": synthetic_account_id("facebook", handle)}
    if "name" in asked:
        page["name"] = name
    if "followers_count" in asked:
        page["followers_count"] = followers
    if "fan_count" in asked:
        page["fan_count"] = round(followers * 0.93)
    return page


# A Page's fields a client may ask for (Graph's reference names many more; these are the
# common ones). The sandbox answers id, name, followers_count and fan_count; the others it
# leaves out, as Graph does a field the Page has not set. Any other name is Graph's error
# 100, as for ``follower_count`` (Threads' spelling) asked of a Page.
GRAPH_PAGE_FIELDS = frozenset(
    {
        "about", "category", "category_list", "cover", "description", "emails", "fan_count",
        "followers_count", "founded", "general_info", "id", "is_published", "is_verified",
        "link", "location", "mission", "name", "overall_star_rating", "phone", "picture",
        "rating_count", "talking_about_count", "username", "verification_status", "website",
        "were_here_count",
    }
)  # fmt: skip


def _unknown_page_field(fields: str) -> str | None:
    """The first field in ``fields`` that no Page has, or None."""
    for text in _graph_fields(fields):
        name = _field_name(text)
        if name and name not in GRAPH_PAGE_FIELDS:
            return name
    return None


def _field_name(text: str) -> str:
    """A Graph field's name without its modifiers (``media{id}`` -> ``media``)."""
    match = GRAPH_FIELD_NAME.match(text.strip())
    return match.group() if match and match.group() else text.strip()


def _graph_fields(text: str) -> list[str]:
    """A Graph ``fields`` list split at its top-level commas (not those inside a field's
    ``(...)`` arguments or ``{...}`` subfields), each field stripped."""
    fields, depth, start = [], 0, 0
    for position, char in enumerate(text):
        if char in "({":
            depth += 1
        elif char in ")}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            fields.append(text[start:position].strip())
            start = position + 1
    fields.append(text[start:].strip())
    return fields


def _asks_business_discovery(params: Params) -> bool:
    fields = params.get("fields", [""])[0]
    return any(INSTAGRAM_DISCOVERY.match(field_text) for field_text in _graph_fields(fields))


for _route in (
    SandboxRoute(
        "x",
        matches=lambda path, params: (
            path in (X_PATH, X_USERS_PATH)
            or X_USER_BY_USERNAME.match(path) is not None
            or X_USER_BY_ID.match(path) is not None
        ),
        answer=lambda server, path, params, headers: server._x_lookup(path, params, headers),
        refuses=lambda server, params, headers: (
            None if server._has_bearer(headers) else _x_unauthorized()
        ),
        budget=(300, 900),
        server_error=lambda status: {
            "title": "Service Unavailable",
            "type": "about:blank",
            "status": status,
            "detail": "Service Unavailable",
        },
        rate_headers_on_faults=True,
    ),
    SandboxRoute(
        "bluesky",
        matches=lambda path, params: path in (BLUESKY_PATH, BLUESKY_PROFILE_PATH),
        answer=lambda server, path, params, headers: (
            server._get_profiles(params.get("actors", []))
            if path == BLUESKY_PATH
            else server._get_profile(params.get("actor", []))
        ),
        budget=(3000, 300),
        rate_headers=_bluesky_rate_headers,
        throttled=_bluesky_throttled,
        server_error=lambda status: {
            "error": "InternalServerError",
            "message": "Internal Server Error",
        },
        rate_headers_on_faults=True,
        connection=lambda server: {"host": server.base_url},
    ),
    SandboxRoute(
        "mastodon",
        matches=lambda path, params: _is_mastodon_path(path),
        answer=lambda server, path, params, headers: server._mastodon(path, params, headers),
        # 300 requests per 5 minutes per IP, on each instance.
        budget=(300, 300),
        budget_scope=_mastodon_instance,
        rate_headers=_mastodon_rate_headers,
        throttled=lambda server, rate_headers, wait: Reply(
            429, {"error": "Too many requests"}, headers=dict(rate_headers)
        ),
        server_error=lambda status: {"error": "We're sorry, but something went wrong on our end."},
        rate_headers_on_faults=True,
        # Each account asked of its own instance, as by default (see platforms/mastodon.py).
        connection=lambda server: {"host": server.base_url + "/mastodon/{instance}"},
    ),
    SandboxRoute(
        "youtube",
        matches=lambda path, params: path == YOUTUBE_PATH,
        answer=lambda server, path, params, headers: server._youtube(params),
        refuses=lambda server, params, headers: server._youtube_refusal(params),
        # 10,000 units a day (a unit a request here), reset at midnight Pacific time.
        budget=(10_000, 86_400),
        budget_resets=_next_pacific_midnight,
        rate_headers=_no_rate_headers,
        throttled=_youtube_throttled,
        server_error=lambda status: _google_error(
            status, "Backend Error", "backendError", "global"
        ),
        connection=lambda server: {"host": server.base_url, "password": server.youtube_key},
    ),
    SandboxRoute(
        "facebook",
        matches=lambda path, params: (
            _is_graph_node(path, params) and not _asks_business_discovery(params)
        ),
        answer=lambda server, path, params, headers: server._graph(
            "facebook", path, params, headers
        ),
        **_META_LIMITS,
    ),
    SandboxRoute(
        "instagram",
        matches=lambda path, params: (
            _is_graph_node(path, params) and _asks_business_discovery(params)
        ),
        answer=lambda server, path, params, headers: server._graph(
            "instagram", path, params, headers
        ),
        **_META_LIMITS,
        # Business discovery is a call of the Facebook app's, on the app's budget.
        budget_owner="facebook",
        # Business discovery runs on the caller's own Instagram business account.
        connection=lambda server: {
            "host": server.base_url,
            "password": server.token,
            "login": server.instagram_user_id,
        },
    ),
    SandboxRoute(
        "linkedin",
        matches=lambda path, params: LINKEDIN_PATH.match(path) is not None,
        answer=lambda server, path, params, headers: server._linkedin(path, params, headers),
        refuses=lambda server, params, headers: server._linkedin_refusal(headers),
        budget=(100_000, 86_400),
        rate_headers=_no_rate_headers,
        throttled=_linkedin_throttled,
    ),
    SandboxRoute(
        "threads",
        matches=lambda path, params: path == THREADS_LOOKUP_PATH,
        answer=lambda server, path, params, headers: server._threads(params, headers),
        **_META_LIMITS,
    ),
):
    register_route(_route)
