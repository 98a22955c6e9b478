"""Meta's Graph API: Facebook Pages (``/{page}?fields=followers_count,fan_count``) and
Instagram business discovery, one account a call.

Graph throttling is not a 429: an error body with code 4, 17, 32 or 613 (HTTP 400 or 403)
and no reset time, so a throttled run stops and defers the rest. Unknown pages and
non-business Instagram accounts are per-account answers, landed and parsed as not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from social_leadership.platforms.base import (
    LAND,
    AccountObservation,
    AccountStatus,
    Connector,
    PlatformError,
    RawResponse,
    Verdict,
    count_value,
    json_document,
    observation_without_counts,
)

GRAPH_API = "https://graph.facebook.com"
GRAPH_VERSION = "v21.0"
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 80002})
AUTH_CODES = frozenset({102, 190})
# "Object does not exist", "Cannot find user", unsupported get (unknown or private node).
NOT_FOUND_CODES = frozenset({100, 110, 803})
INSTAGRAM_FIELDS = "followers_count,follows_count,media_count"


class GraphConnector(Connector):
    batch_size: ClassVar[int] = 1

    def __init__(self, base_url: str = GRAPH_API, access_token: str | None = None, **options: Any):
        if not access_token:
            raise PlatformError(
                f"{self.platform}: an access token is required (connection password)"
            )
        super().__init__(base_url, **options)
        self._access_token = self.keep_secret(access_token)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._access_token}", "Accept": "application/json"}

    def judge(self, status: int, body: bytes, headers: httpx.Headers) -> Verdict:
        error = graph_error(json_document(body))
        if error is not None:
            code = error.get("code")
            if code in THROTTLE_CODES:
                return Verdict("rate_limited", wait_seconds=self._seconds_until_reset(headers))
            if code in AUTH_CODES:
                return Verdict("fatal", f"Graph error {code}: access token rejected")
            if code in NOT_FOUND_CODES and status in (400, 404):
                return LAND
            if status == 200 or error.get("is_transient") is True or code in (1, 2):
                return Verdict("retry", f"Graph error {code} (HTTP {status})")
        return super().judge(status, body, headers)

    @classmethod
    def _failed(cls, response: RawResponse) -> list[AccountObservation] | None:
        if response.status_code == 200:
            return None
        error = graph_error(json_document(response.body))
        if error is not None and error.get("code") in NOT_FOUND_CODES:
            status = AccountStatus.NOT_FOUND
        elif error is not None and error.get("code") in THROTTLE_CODES:
            status = AccountStatus.DEFERRED
        else:
            status = AccountStatus.ERROR
        return [observation_without_counts(response, h, status) for h in response.requested_handles]

    @classmethod
    def _parse_profile(cls, response: RawResponse, **fields: Any) -> list[AccountObservation]:
        return _profile_observation(cls, response, **fields)


def _profile_observation(
    cls: type[GraphConnector],
    response: RawResponse,
    *,
    followers: tuple[str, ...],
    within: str | None = None,
    following: str | None = None,
    posts: str | None = None,
) -> list[AccountObservation]:
    """One account per Graph call: its counts, or why there are none.

    ``followers`` lists the field names to try in order (the Graph APIs disagree:
    ``followers_count``, ``fan_count``, Threads' ``follower_count``); ``within`` names
    the object holding them when they are nested (Instagram's business_discovery).
    """
    failed = cls._failed(response)
    if failed is not None:
        return failed
    handle = response.requested_handles[0]
    document = json_document(response.body)
    if within is not None and isinstance(document, dict):
        document = document.get(within)
    if not isinstance(document, dict):
        return [observation_without_counts(response, handle, AccountStatus.ERROR)]
    count = next(
        (value for key in followers if (value := count_value(document, key)) is not None), None
    )
    return [
        AccountObservation(
            platform=cls.platform,
            account_handle=handle,
            account_id=str(document["id"]) if document.get("id") is not None else None,
            status=AccountStatus.OK if count is not None else AccountStatus.HIDDEN,
            followers=count,
            following=count_value(document, following) if following else None,
            posts=count_value(document, posts) if posts else None,
            observed_at=response.fetched_at,
        )
    ]


class FacebookConnector(GraphConnector):
    platform = "facebook"

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        return httpx.Request(
            "GET",
            f"{self.base_url}/{GRAPH_VERSION}/{handles[0]}",
            params={"fields": "followers_count,fan_count"},
            headers=self._headers(),
        )

    @classmethod
    def parse(cls, response: RawResponse) -> list[AccountObservation]:
        return cls._parse_profile(response, followers=("followers_count", "fan_count"))


class InstagramConnector(GraphConnector):
    """Business discovery runs on the caller's own Instagram business user id."""

    platform = "instagram"

    def __init__(
        self,
        base_url: str = GRAPH_API,
        access_token: str | None = None,
        ig_user_id: str | None = None,
        **options: Any,
    ):
        if not ig_user_id:
            raise PlatformError(
                "instagram: the own business account id is required (connection login)"
            )
        super().__init__(base_url, access_token, **options)
        self._ig_user_id = ig_user_id

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        fields = f"business_discovery.username({handles[0]}){{{INSTAGRAM_FIELDS}}}"
        return httpx.Request(
            "GET",
            f"{self.base_url}/{GRAPH_VERSION}/{self._ig_user_id}",
            params={"fields": fields},
            headers=self._headers(),
        )

    @classmethod
    def parse(cls, response: RawResponse) -> list[AccountObservation]:
        return cls._parse_profile(
            response,
            within="business_discovery",
            followers=("followers_count",),
            following="follows_count",
            posts="media_count",
        )


def graph_error(document: Any) -> dict[str, Any] | None:
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        return document["error"]
    return None
