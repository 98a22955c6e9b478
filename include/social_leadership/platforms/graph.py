"""Meta's Graph API: Facebook Pages (``/{page}?fields=followers_count,fan_count``) and
Instagram business discovery, one account a call.

Graph throttling is not a 429: an error body with code 4, 17, 32 or 613 (HTTP 400 or 403)
and no reset time, so a throttled run stops and defers the rest. Before that happens,
every reply says how much of the budget is used: ``X-App-Usage`` (the app's) and
``X-Business-Use-Case-Usage`` (per business object), JSON percentages ``call_count``,
``total_cputime`` and ``total_time``. Once any of them reaches ``usage_stop_percent``
(95 by default) the run stops and defers the accounts left, rather than spend the last of
the budget and meet the throttle (which Meta counts against the app). Unknown pages and
non-business Instagram accounts are per-account answers, landed and parsed as not found.

A Facebook profile (a person, not a Page) has no follower count in the API: the roster
writes it ``profile:<name>`` and it is import-only, like a LinkedIn member.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from social_leadership.platforms import base
from social_leadership.platforms.registry import register

GRAPH_API = "https://graph.facebook.com"
GRAPH_VERSION = "v21.0"
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 80002})
AUTH_CODES = frozenset({102, 190})
# Code 190's subcodes for a token past its expiry (463) or invalidated by a logout (467).
EXPIRED_TOKEN_SUBCODES = frozenset({463, 467})
# "Cannot find user" and "Some of the aliases you requested do not exist"; code 100 says so
# only with subcode 33 (see UNSUPPORTED_GET_SUBCODE). Code 100 alone is "invalid parameter"
# (a field the node does not have): read as "not found", it recorded every executive as
# gone on a green run when the Instagram login was no business user id. Asked of the
# caller's own node (Instagram), it stops the platform; asked of the account's (a Facebook
# Page that is a person's profile), it is an error of that account.
NOT_FOUND_CODES = frozenset({110, 803})
INVALID_PARAMETER_CODE = 100
# Instagram's "cannot find user" (an unknown account, or one that is not a business or
# creator account), sent with code 110 or 24.
IG_USER_NOT_FOUND_SUBCODE = 2207013
# Code 100 with this subcode, "Unsupported get request": the node asked for does not exist
# or the token cannot read it. A Page that is not there on Facebook; on Instagram the node
# is the caller's own business user id, so every account would get it alike.
UNSUPPORTED_GET_SUBCODE = 33
INSTAGRAM_FIELDS = "followers_count,follows_count,media_count"
USAGE_HEADERS = ("X-App-Usage", "X-Business-Use-Case-Usage")
USAGE_METRICS = ("call_count", "total_cputime", "total_time")
USAGE_STOP_PERCENT = 95.0
# The roster's mark of a Facebook profile (a person), which the API does not count.
PROFILE_PREFIX = "profile:"


@dataclass(frozen=True)
class GraphUsage:
    """The highest share of a Graph budget a reply reports used."""

    percent: float
    header: str
    metric: str


def graph_usage(headers: httpx.Headers) -> GraphUsage | None:
    """The highest percentage in the usage headers, or None when they say nothing usable.

    ``X-App-Usage`` is one object of percentages; ``X-Business-Use-Case-Usage`` maps each
    business object id to a list of such objects (one per use case).
    """
    highest: GraphUsage | None = None
    for name in USAGE_HEADERS:
        try:
            document = json.loads(headers.get(name) or "null")
        except ValueError:
            continue
        if isinstance(document, dict) and name == "X-Business-Use-Case-Usage":
            objects = [
                entry
                for entries in document.values()
                if isinstance(entries, list)
                for entry in entries
            ]
        else:
            objects = [document]
        for usage in objects:
            if not isinstance(usage, dict):
                continue
            for metric in USAGE_METRICS:
                value = _percent(usage.get(metric))
                if value is not None and (highest is None or value > highest.percent):
                    highest = GraphUsage(value, name, metric)
    return highest


def _percent(value: Any) -> float | None:
    """A usage percentage as a number, or as a numeric string (``"96"``, ``"96.5"``,
    ``"96%"``: gateways and older API versions send strings); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().removesuffix("%"))
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class GraphConnector(base.Connector):
    # Facebook and Instagram are both asked of the Graph API (Threads has a host of its own).
    public_base_url: ClassVar[str] = GRAPH_API
    batch_size: ClassVar[int] = 1
    # Whether every request is of the caller's own node (Instagram's business discovery on
    # the login's id): an "invalid parameter" there is the connection's, for every account.
    asks_of_own_node: ClassVar[bool] = False

    def __init__(
        self,
        base_url: str = GRAPH_API,
        access_token: str | None = None,
        *,
        usage_stop_percent: float = USAGE_STOP_PERCENT,
        **options: Any,
    ):
        """``usage_stop_percent``: the share of a usage budget (any header, any metric) at
        which the run stops and defers the accounts left."""
        super().__init__(base_url, **options)
        self._access_token = self.keep_secret(access_token)
        self.usage_stop_percent = usage_stop_percent

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._access_token}", "Accept": "application/json"}

    def budget_spent(self, headers: httpx.Headers) -> str | None:
        usage = graph_usage(headers)
        if usage is None or usage.percent < self.usage_stop_percent:
            return None
        return (
            f"{self.platform}: {usage.header} reports {usage.metric} at {usage.percent:g}% of "
            f"the budget (the run stops at {self.usage_stop_percent:g}%): the accounts left "
            "are deferred to a later run"
        )

    def judge(self, status: int, body: bytes, headers: httpx.Headers) -> base.Verdict:
        error = graph_error(base.json_document(body))
        if error is not None:
            code = error.get("code")
            if code in THROTTLE_CODES:
                return base.Verdict("rate_limited", wait_seconds=self._seconds_until_reset(headers))
            if code in AUTH_CODES:
                # Subcode 463 (or 467): the token expired, and wants renewing, not checking.
                expired = error.get("error_subcode") in EXPIRED_TOKEN_SUBCODES
                why = "access token expired: renew it" if expired else "access token rejected"
                return base.Verdict("fatal", f"Graph error {code}: {why}")
            if self._account_not_found(error) and status in (400, 404):
                return base.LAND
            if code == INVALID_PARAMETER_CODE and status != 200:
                if self.asks_of_own_node:
                    return base.Verdict(
                        "fatal",
                        f"Graph error 100 (HTTP {status}), {str(error.get('message'))[:200]!r}: "
                        "a request the API refuses for every account alike; check the "
                        f"connection slw_{self.platform} (its login and token)",
                    )
                # Asked of the account's own node (a Page): its answer alone, an error.
                return base.LAND
            if status == 200 or error.get("is_transient") is True or code in (1, 2):
                return base.Verdict("retry", f"Graph error {code} (HTTP {status})")
        return super().judge(status, body, headers)

    @classmethod
    def _failed(cls, response: base.RawResponse) -> list[base.AccountObservation] | None:
        if response.status_code == 200:
            return None
        error = graph_error(base.json_document(response.body))
        if error is not None and cls._account_not_found(error):
            status = base.AccountStatus.NOT_FOUND
        elif error is not None and error.get("code") in THROTTLE_CODES:
            status = base.AccountStatus.DEFERRED
        else:
            status = base.AccountStatus.ERROR
        return base.observations_without_counts(response, status)

    @classmethod
    def _account_not_found(cls, error: dict[str, Any]) -> bool:
        """Whether a Graph error says that the one account asked for is not there."""
        return error.get("code") in NOT_FOUND_CODES or _is_unsupported_get(error)

    @classmethod
    def _parse_profile(
        cls, response: base.RawResponse, **fields: Any
    ) -> list[base.AccountObservation]:
        return _profile_observation(cls, response, **fields)


def _profile_observation(
    cls: type[GraphConnector],
    response: base.RawResponse,
    *,
    followers: tuple[str, ...],
    within: str | None = None,
    following: str | None = None,
    posts: str | None = None,
) -> list[base.AccountObservation]:
    """One account per Graph call: its counts, or why there are none.

    ``followers`` lists the field names to try in order (the Graph APIs disagree:
    ``followers_count``, ``fan_count``, Threads' ``follower_count``): the first the reply
    holds is the count, a later one is read only when the earlier ones are absent (never
    when one is there but null or unreadable: a Page's likes are not its followers).
    ``within`` names the object holding them when they are nested (Instagram's
    business_discovery).
    """
    failed = cls._failed(response)
    if failed is not None:
        return failed
    handle = response.requested_handles[0]
    document = base.json_document(response.body)
    if within is not None and isinstance(document, dict):
        document = document.get(within)
    if not isinstance(document, dict):
        return [base.observation_without_counts(response, handle, base.AccountStatus.ERROR)]
    sent = next((key for key in followers if key in document), None)
    try:
        count = base.count_value(document, sent) if sent else None
        following_count = base.count_value(document, following) if following else None
        post_count = base.count_value(document, posts) if posts else None
    except base.UnreadableCount as problem:
        return [base.unreadable_counts(response, handle, problem)]
    return [
        base.counted_observation(
            response,
            handle,
            document.get("id"),
            followers=count,
            following=following_count,
            posts=post_count,
            hidden=base.hidden_count(document, sent),
        )
    ]


@register
class FacebookConnector(GraphConnector):
    platform = "facebook"
    display_name = "Facebook"
    connection_fields = (
        base.ConnectionField(
            "access_token", "password", "a page or app access token", required=True
        ),
    )
    # A Page's name, or profile:<name> for a person's profile (import-only).
    handle_pattern = re.compile(r"^(?:profile:)?[A-Za-z0-9.]{1,50}$")
    drops_at_sign = True
    profile_links = (
        base.profile_link(
            ("facebook.com", "fb.com"),
            r"(?P<handle>[A-Za-z0-9.]{1,50})",
            reserved=(
                "profile.php", "people", "pages", "pg", "groups", "events", "watch", "share",
                "sharer", "sharer.php", "story.php", "permalink.php", "photo.php", "photo",
                "home.php", "login", "login.php", "hashtag", "marketplace", "gaming", "help",
                "policies", "privacy", "settings", "business", "ads", "notifications",
                "messages", "friends", "bookmarks", "reel", "reels", "stories", "search",
                "dialog", "plugins", "legal", "terms", "about", "careers", "fundraisers",
                "live", "media", "places", "permalink", "posts", "videos", "photos",
            ),
            tabs=(
                "about", "photos", "videos", "posts", "reviews", "events", "community",
                "mentions", "reels", "followers", "following", "friends", "live_videos",
                "about_profile_transparency",
            ),
        ),
    )  # fmt: skip
    profile_hosts = ("facebook.com", "fb.com")
    profile_link_forms = (
        "https://www.facebook.com/<page>; a person's profile is written profile:<name>"
    )

    @classmethod
    def is_import_only(cls, handle: str) -> bool:
        return handle.startswith(PROFILE_PREFIX)

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        return httpx.Request(
            "GET",
            f"{self.base_url}/{GRAPH_VERSION}/{handles[0]}",
            params={"fields": "followers_count,fan_count"},
            headers=self._headers(),
        )

    @classmethod
    def parse(cls, response: base.RawResponse) -> list[base.AccountObservation]:
        return cls._parse_profile(response, followers=("followers_count", "fan_count"))


@register
class InstagramConnector(GraphConnector):
    """Business discovery runs on the caller's own Instagram business user id."""

    platform = "instagram"
    display_name = "Instagram"
    connection_fields = (
        base.ConnectionField("access_token", "password", "a user access token", required=True),
        base.ConnectionField(
            "ig_user_id",
            "login",
            "the own business account id (the caller's Instagram business user id)",
            required=True,
        ),
    )
    handle_pattern = re.compile(r"^[A-Za-z0-9._]{1,30}$")
    drops_at_sign = True
    profile_links = (
        base.profile_link(
            ("instagram.com",),
            r"@?(?P<handle>[A-Za-z0-9._]{1,30})",
            reserved=(
                "p",
                "reel",
                "reels",
                "tv",
                "explore",
                "stories",
                "accounts",
                "direct",
                "about",
                "legal",
                "developer",
                "directory",
                "web",
                "challenge",
                "emails",
                "session",
                "privacy",
                "help",
            ),
            tabs=("reels", "tagged", "guides", "followers", "following"),
        ),
    )
    profile_hosts = ("instagram.com",)
    asks_of_own_node = True
    profile_link_forms = "https://www.instagram.com/<username>"

    def __init__(
        self,
        base_url: str = GRAPH_API,
        access_token: str | None = None,
        ig_user_id: str | None = None,
        **options: Any,
    ):
        super().__init__(base_url, access_token, **options)
        self._ig_user_id = ig_user_id

    def judge(self, status: int, body: bytes, headers: httpx.Headers) -> base.Verdict:
        error = graph_error(base.json_document(body))
        if error is not None and status != 200 and _is_unsupported_get(error):
            return base.Verdict(
                "fatal",
                f"Graph error 100 (subcode {UNSUPPORTED_GET_SUBCODE}), unsupported get request "
                f"on the own Instagram user id {self._ig_user_id!r}: the connection's login "
                "must be the id of an Instagram business or creator account the token can "
                "read",
            )
        return super().judge(status, body, headers)

    @classmethod
    def _account_not_found(cls, error: dict[str, Any]) -> bool:
        if _is_unsupported_get(error):
            # About the own id, not the account looked up (see judge).
            return False
        return error.get("error_subcode") == IG_USER_NOT_FOUND_SUBCODE or (
            super()._account_not_found(error)
        )

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        fields = f"business_discovery.username({handles[0]}){{{INSTAGRAM_FIELDS}}}"
        return httpx.Request(
            "GET",
            f"{self.base_url}/{GRAPH_VERSION}/{self._ig_user_id}",
            params={"fields": fields},
            headers=self._headers(),
        )

    @classmethod
    def parse(cls, response: base.RawResponse) -> list[base.AccountObservation]:
        return cls._parse_profile(
            response,
            within="business_discovery",
            followers=("followers_count",),
            following="follows_count",
            posts="media_count",
        )


def _is_unsupported_get(error: dict[str, Any]) -> bool:
    return error.get("code") == 100 and error.get("error_subcode") == UNSUPPORTED_GET_SUBCODE


def graph_error(document: Any) -> dict[str, Any] | None:
    """The ``error`` object of a Graph reply, its ``code`` and ``error_subcode`` as numbers
    (a gateway may send them as strings, ``"17"``), or None."""
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        error = dict(document["error"])
        for name in ("code", "error_subcode"):
            value = error.get(name)
            if isinstance(value, str) and value.strip().isdigit():
                error[name] = int(value.strip())
        return error
    return None
