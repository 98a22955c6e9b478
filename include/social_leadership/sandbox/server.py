"""The sandbox HTTP server: Bluesky ``getProfiles`` and X ``users/by`` on one base URL.

Known accounts are the roster's handles; their counts come from
:func:`~social_leadership.sandbox.synthetic.synthetic_metrics` for the date of the server's
clock. Tests can queue faults (``server.faults``) to exercise retries and rate limits.
"""

from __future__ import annotations

import json
import logging
import re
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
from urllib.parse import parse_qs, urlsplit

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

FaultKind = Literal["429", "500", "malformed_json"]


@dataclass(frozen=True)
class Fault:
    """One injected failure, served instead of the next matching request's answer."""

    kind: FaultKind
    platform: str | None = None  # "x", "bluesky", or None for whichever comes first
    reset_seconds: float = 60.0  # for "429": when the server says the window resets


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
        self.faults: deque[Fault] = deque()
        self.request_log: list[tuple[str, str]] = []
        self._budgets = {
            "bluesky": _Budget(bluesky_limit, bluesky_window_seconds),
            "x": _Budget(x_limit, x_window_seconds),
        }
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
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
        self._httpd = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._httpd.daemon_threads = True
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
    ) -> None:
        for _ in range(times):
            self.faults.append(Fault(kind, platform, reset_seconds))

    def requests_to(self, path: str) -> int:
        """How many requests reached ``path`` (faulted and rejected ones included)."""
        return sum(1 for logged_path, _ in self.request_log if logged_path == path)

    # --- request handling --------------------------------------------------------------

    def handle(self, path: str, query: str, headers: dict[str, str]) -> _Reply:
        with self._lock:
            self.request_log.append((path, query))
        if path == BLUESKY_PATH:
            platform = "bluesky"
        elif path == X_PATH:
            platform = "x"
        else:
            return _Reply(404, {"error": "MethodNotImplemented", "message": "Not Found"})
        params = parse_qs(query, keep_blank_values=True)
        now = self.rate_clock()
        with self._lock:
            fault = self._take_fault(platform)
            allowed, remaining, reset = (
                (True, 0, 0) if fault else self._budgets[platform].spend(now)
            )
        budget = self._budgets[platform]
        if fault is not None:
            reply = self._faulted(platform, fault, now, budget)
            if not reply.headers:
                with self._lock:
                    reply.headers.update(self._current_rate_headers(platform, now))
            return reply
        rate_headers = _rate_headers(platform, budget, remaining, reset)
        if not allowed:
            return self._too_many(platform, rate_headers, reset - now)
        if platform == "bluesky":
            reply = self._get_profiles(params.get("actors", []))
        else:
            reply = self._users_by(params, headers.get("authorization", ""))
        reply.headers.update(rate_headers)
        return reply

    def _current_rate_headers(self, platform: str, now: float) -> dict[str, str]:
        budget = self._budgets[platform]
        start = budget.window_start if budget.window_start is not None else now
        return _rate_headers(
            platform, budget, budget.limit - budget.used, int(start + budget.window_seconds)
        )

    def _take_fault(self, platform: str) -> Fault | None:
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
        if fault.kind == "500":
            body: Any = (
                {"error": "InternalServerError", "message": "Internal Server Error"}
                if platform == "bluesky"
                else {"title": "Internal Server Error", "type": "about:blank", "status": 500}
            )
            return _Reply(500, body)
        return _Reply(200, raw=b'{"profiles": [{"did": "did:plc:trunc')

    def _too_many(self, platform: str, rate_headers: dict[str, str], wait: float) -> _Reply:
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

    def __post_init__(self) -> None:
        if self.headers is None:
            self.headers = {}

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, separators=(",", ":")).encode()


def _rate_headers(platform: str, budget: _Budget, remaining: int, reset: int) -> dict[str, str]:
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

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                reply = sandbox.handle(parts.path, parts.query, headers)
            except Exception:
                log.exception("sandbox failed on %s", parts.path)
                reply = _Reply(500, {"error": "InternalServerError", "message": "sandbox bug"})
            payload = reply.payload()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (reply.headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("sandbox: " + format, *args)

    return SandboxHandler
