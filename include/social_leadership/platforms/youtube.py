"""YouTube Data API v3: ``channels?part=statistics``, 50 channel ids a call (``forHandle``
one ``@handle`` a call). The API key travels as ``key=`` and is redacted everywhere.

Every call costs a unit of the daily quota, so an ``@handle`` is looked up by
``forHandle`` once: its channel id, learned from the landing (``account_ids``), puts it
in the 50-id batches of later runs, beside the channels the roster names by id, and its
counts are still stored under the roster's handle. A learned id a batch no longer answers
(a deleted channel, a stale id) is followed by a ``forHandle`` lookup of the handle, whose
id then replaces the stored one: only that lookup says a handle is not found. When the
batches were stopped early (the quota spent), those handles are deferred with the rest.

Google answers an id lookup whole, but an API that pages it (a ``nextPageToken``: a
``maxResults`` of 5 applied to it) answers part of the batch: the channels it did not
answer are no channels not found, and are asked for again, by id, until a round answers
none of them (then deferred, the reply saying why).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx

from social_leadership.platforms import base
from social_leadership.platforms.registry import register

YOUTUBE_API = "https://www.googleapis.com"
CHANNELS_PATH = "/youtube/v3/channels"
YOUTUBE_MAX_IDS = 50
# The daily quota: nothing more until midnight Pacific.
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
# Google's newer error form names a spent quota or limit by status alone.
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
# Short-term limits (requests per second or per user): retried with backoff.
SHORT_TERM_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# The daily quota resets at midnight Pacific time.
_PACIFIC = ZoneInfo("America/Los_Angeles")
# A channel id: UC + 22 characters, case-sensitive.
_CHANNEL_ID = re.compile(r"^UC[A-Za-z0-9_-]{22}$")


# The tabs of a channel's page (https://www.youtube.com/@name/videos).
_PROFILE_TABS = (
    "featured", "videos", "shorts", "streams", "live", "playlists", "community", "posts",
    "about", "podcasts", "releases", "courses", "store", "channels", "search",
)  # fmt: skip


@register
class YouTubeConnector(base.Connector):
    platform = "youtube"
    display_name = "YouTube"
    public_base_url = YOUTUBE_API
    connection_fields = (base.ConnectionField("api_key", "password", "an API key", required=True),)
    # A channel id (UC + 22 characters, case-sensitive) or an @handle, which may hold
    # letters of any script (@Südwest).
    handle_pattern = re.compile(r"^(?:UC[A-Za-z0-9_-]{22}|@[\w.-]{3,30})$")
    profile_links = tuple(
        base.profile_link(("youtube.com",), path, tabs=_PROFILE_TABS)
        for path in (
            r"(?P<handle>@[\w.-]{3,30})",
            r"channel/(?P<handle>UC[A-Za-z0-9_-]{22})",
        )
    )
    profile_hosts = ("youtube.com", "youtu.be")
    profile_link_forms = "https://www.youtube.com/@<handle> or https://www.youtube.com/channel/UC…"
    batch_size = YOUTUBE_MAX_IDS
    # Channel ids of @handles seen in earlier landings put them in the 50-id batches.
    state_option = "account_ids"

    def __init__(
        self,
        base_url: str = YOUTUBE_API,
        api_key: str | None = None,
        *,
        account_ids: Mapping[str, str] | None = None,
        **options: Any,
    ):
        """``account_ids``: roster ``@handle`` -> channel id, as earlier landings read them."""
        super().__init__(base_url, **options)
        self._api_key = self.keep_secret(api_key)
        self._ids = {
            self.handle_key(handle): channel_id
            for handle, channel_id in (account_ids or {}).items()
            if handle.startswith("@") and _CHANNEL_ID.match(channel_id)
        }

    @staticmethod
    def handle_key(handle: str) -> str:
        # Channel ids are case-sensitive; @handles are not.
        return handle.casefold() if handle.startswith("@") else handle

    def plan_batches(self, handles: list[str]) -> list[list[str]]:
        by_id = [h for h in handles if self._channel_id(h) is not None]
        by_handle = [h for h in handles if self._channel_id(h) is None]
        return super().plan_batches(by_id) + [[handle] for handle in by_handle]

    def _channel_id(self, handle: str) -> str | None:
        """The id ``handle`` is asked for by: its own, or the one learned for an @handle."""
        if not handle.startswith("@"):
            return handle
        return self._ids.get(self.handle_key(handle))

    def extract(self, handles: Sequence[str]) -> base.ExtractResult:
        try:
            result = self._extract_round(handles)
        except base.PlatformError as refusal:
            _defer_past_the_page(refusal)
            raise
        pending = _past_the_page(result.responses)
        while pending:
            if result.stopped_early:
                result.deferred_handles.extend(pending)
                break
            try:
                more = self._extract_round(pending)
            except base.PlatformError as refusal:
                _defer_past_the_page(refusal)
                base.merge_results(result, base.read_before(refusal, self.platform, pending))
                refusal.partial = result
                raise
            base.merge_results(result, more)
            left = _past_the_page(more.responses)
            if len(left) >= len(pending):
                # A page that answers none of them: asking again would page on forever.
                result.deferred_handles.extend(left)
                said = f"youtube: {len(left)} channel(s) past a page its replies never reached"
                result.message = f"{result.message}; {said}" if result.message else said
                break
            pending = left
        return result

    def _extract_round(self, handles: Sequence[str]) -> base.ExtractResult:
        return base.extract_with_follow_up(
            super().extract,
            handles,
            _left_out_of_batch,
            lambda handle: self._ids.pop(self.handle_key(handle), None),
        )

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        params = {"part": "statistics", "key": self._api_key}
        ids = [self._channel_id(handle) for handle in handles]
        if len(handles) == 1 and ids[0] is None:
            params["forHandle"] = handles[0]
        else:
            # The ids in the order of the handles: parse matches them back by position.
            params["id"] = ",".join(str(channel_id) for channel_id in ids)
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
        ids = _requested_ids(response)
        if ids is None:
            by_handle = base.keyed(((requested[0], item) for item in items), figures=_figures)
        else:
            # The API answers in an order of its own: each item goes to the handle whose
            # id it carries, never by position.
            by_id = base.keyed(((str(item.get("id")), item) for item in items), figures=_figures)
            by_handle = {
                handle: by_id[channel_id]
                for handle, channel_id in zip(requested, ids, strict=True)
                if channel_id in by_id
            }
        # Learned ids the batch did not answer were looked up by handle, and the channels
        # past a page asked for again (see extract): the batch says nothing about them.
        left_out = set(_left_out_of_batch(response)) | set(_past_the_page([response]))
        observations = []
        for handle in requested:
            if handle in left_out:
                continue
            item = by_handle.get(handle)
            if item is base.ANSWERED_TWICE:
                observations.append(base.answered_twice(response, handle))
                continue
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
                    response,
                    handle,
                    item.get("id"),
                    followers=followers,
                    posts=posts,
                    hidden=hidden or base.hidden_count(stats, "subscriberCount"),
                )
            )
        return observations


def _requested_ids(response: base.RawResponse) -> list[str] | None:
    """The channel ids a batch asked for, one per requested handle in its order (a
    handle's own id, or the one learned for it); None for a ``forHandle`` lookup."""
    query = parse_qs(urlsplit(response.request_url).query)
    if "forHandle" in query:
        return None
    ids = [i for i in ",".join(query.get("id", [])).split(",") if i]
    if len(ids) != len(response.requested_handles):
        # A landing that does not name its ids: the roster named the channels by id.
        return list(response.requested_handles)
    return ids


def _unanswered(response: base.RawResponse) -> tuple[list[str], bool]:
    """The handles an id batch got no channel for, and whether its reply named a next
    page; ([], False) for a lookup by handle or a reply that is no answer."""
    ids = _requested_ids(response)
    if ids is None or response.status_code != 200:
        return [], False
    document = base.json_document(response.body)
    if not isinstance(document, dict):
        return [], False
    items = document.get("items")
    answered = {
        str(item.get("id"))
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict)
    }
    paged = isinstance(document.get("nextPageToken"), str) and bool(document["nextPageToken"])
    missing = [
        handle
        for handle, channel_id in zip(response.requested_handles, ids, strict=True)
        if channel_id not in answered
    ]
    return missing, paged


def _left_out_of_batch(response: base.RawResponse) -> list[str]:
    """The @handles an id batch asked for by a learned channel id and got no channel for
    (a deleted channel, a stale id): each is looked up by ``forHandle`` instead. Past a
    page (:func:`_past_the_page`) none is: they are asked for by id again."""
    missing, paged = _unanswered(response)
    return [] if paged else [handle for handle in missing if handle.startswith("@")]


def _defer_past_the_page(refusal: base.PlatformError) -> None:
    """Defer, with the accounts a refusal left unread, the channels its run's paged replies
    did not reach: neither observed nor deferred, they were lost from the landing."""
    if refusal.partial is not None:
        refusal.partial.deferred_handles.extend(_past_the_page(refusal.partial.responses))


def _past_the_page(responses: Sequence[base.RawResponse]) -> list[str]:
    """The handles id batches left unanswered while naming a next page: not found is not
    what such a reply says of them."""
    past = []
    for response in responses:
        missing, paged = _unanswered(response)
        if paged:
            past.extend(missing)
    return past


def _error_reasons(document: Any) -> set[str]:
    """The reasons a Google error names (``errors[].reason``); a spent quota for one that
    names none but says ``RESOURCE_EXHAUSTED`` (Google's newer error form)."""
    if not isinstance(document, dict) or not isinstance(document.get("error"), dict):
        return set()
    error = document["error"]
    errors = error.get("errors") if isinstance(error.get("errors"), list) else []
    reasons = {str(e.get("reason")) for e in errors if isinstance(e, dict) and e.get("reason")}
    if not reasons and error.get("status") == RESOURCE_EXHAUSTED:
        return {"quotaExceeded"}
    return reasons or {"unknown"}


def quota_reset_after(now: datetime) -> datetime:
    """The next midnight Pacific after ``now`` (when the daily quota resets)."""
    local = now.astimezone(_PACIFIC)
    return (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def _figures(item: dict[str, Any]) -> tuple[object, ...]:
    """What two items of one channel must agree on to be one answer."""
    return item.get("id"), item.get("statistics")
