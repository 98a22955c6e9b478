"""YouTube Data API v3: ``channels?part=statistics``, 50 channel ids a call (``forHandle``
one ``@handle`` a call). The API key travels as ``key=`` and is redacted everywhere."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from social_leadership.platforms import base
from social_leadership.platforms.registry import register

YOUTUBE_API = "https://www.googleapis.com"
CHANNELS_PATH = "/youtube/v3/channels"
YOUTUBE_MAX_IDS = 50
# The daily quota: nothing more until midnight Pacific.
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
# Short-term limits (requests per second or per user): retried with backoff.
SHORT_TERM_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# The daily quota resets at midnight Pacific time.
_PACIFIC = ZoneInfo("America/Los_Angeles")


@register
class YouTubeConnector(base.Connector):
    platform = "youtube"
    display_name = "YouTube"
    public_base_url = YOUTUBE_API
    connection_fields = (base.ConnectionField("api_key", "password", "an API key", required=True),)
    # A channel id (UC + 22 characters, case-sensitive) or an @handle.
    handle_pattern = re.compile(r"^(?:UC[A-Za-z0-9_-]{22}|@[A-Za-z0-9._-]{3,30})$")
    batch_size = YOUTUBE_MAX_IDS

    def __init__(self, base_url: str = YOUTUBE_API, api_key: str | None = None, **options: Any):
        super().__init__(base_url, **options)
        self._api_key = self.keep_secret(api_key)

    @staticmethod
    def handle_key(handle: str) -> str:
        # Channel ids are case-sensitive; @handles are not.
        return handle.casefold() if handle.startswith("@") else handle

    def plan_batches(self, handles: list[str]) -> list[list[str]]:
        ids = [h for h in handles if not h.startswith("@")]
        named = [h for h in handles if h.startswith("@")]
        return super().plan_batches(ids) + [[handle] for handle in named]

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        params = {"part": "statistics", "key": self._api_key}
        if handles[0].startswith("@"):
            params["forHandle"] = handles[0]
        else:
            params["id"] = ",".join(handles)
        return httpx.Request(
            "GET",
            self.base_url + CHANNELS_PATH,
            params=params,
            headers={"Accept": "application/json"},
        )

    def judge(self, status: int, body: bytes, headers: httpx.Headers) -> base.Verdict:
        reasons = _error_reasons(base.json_document(body))
        if status in (403, 429) and reasons & QUOTA_REASONS:
            return base.Verdict("rate_limited", wait_seconds=self._seconds_until_quota_reset())
        if status in (403, 429) and reasons & SHORT_TERM_REASONS:
            return base.Verdict("retry", f"HTTP {status}: short-term rate limit")
        if status == 200 and reasons:
            return base.Verdict("retry", "HTTP 200 carrying an error body")
        return super().judge(status, body, headers)

    def _seconds_until_quota_reset(self) -> float:
        now = self._clock()
        return (quota_reset_after(now) - now).total_seconds()

    @classmethod
    def parse(cls, response: base.RawResponse) -> list[base.AccountObservation]:
        if response.status_code in (403, 429):
            # YouTube signals a spent quota with a 403 as well as a 429.
            return base.observations_without_counts(response, base.AccountStatus.DEFERRED)
        reply = base.read_reply(response)
        if isinstance(reply, list):
            return reply
        items = [item for item in reply.get("items") or [] if isinstance(item, dict)]
        requested = response.requested_handles
        if requested[0].startswith("@"):
            by_handle = {requested[0]: items[0]} if items else {}
        else:
            by_handle = {str(item.get("id")): item for item in items}
        observations = []
        for handle in requested:
            item = by_handle.get(handle)
            if item is None:
                observations.append(
                    base.observation_without_counts(response, handle, base.AccountStatus.NOT_FOUND)
                )
                continue
            stats = item.get("statistics")
            if not isinstance(stats, dict):
                # part=statistics gives every channel its statistics: none is no answer.
                observations.append(
                    base.observation_without_counts(response, handle, base.AccountStatus.ERROR)
                )
                continue
            hidden = stats.get("hiddenSubscriberCount") is True
            try:
                # Counts are JSON strings ("36200000"); numbers are accepted too.
                followers = None if hidden else base.count_value(stats, "subscriberCount")
                posts = base.count_value(stats, "videoCount")
            except base.UnreadableCount as problem:
                observations.append(base.unreadable_counts(response, handle, problem))
                continue
            observations.append(
                base.counted_observation(
                    response, handle, item.get("id"), followers=followers, posts=posts
                )
            )
        return observations


def _error_reasons(document: Any) -> set[str]:
    if not isinstance(document, dict) or not isinstance(document.get("error"), dict):
        return set()
    errors = document["error"].get("errors") or []
    reasons = {str(e.get("reason")) for e in errors if isinstance(e, dict)}
    return reasons or {"unknown"}


def quota_reset_after(now: datetime) -> datetime:
    """The next midnight Pacific after ``now`` (when the daily quota resets)."""
    local = now.astimezone(_PACIFIC)
    return (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
