"""X API v2: ``GET /2/users/by`` with public metrics, 100 usernames a call, app Bearer token."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

from social_leadership.platforms import base
from social_leadership.platforms.registry import register

X_API = "https://api.x.com"
USERS_BY_PATH = "/2/users/by"
# Only the counts are asked for. A protected account's counts are public all the same (X
# shows them on its profile and sends them): an executive who protects their account
# keeps their reach, so its ``protected`` flag, which X sends only when asked, is not.
USER_FIELDS = "public_metrics"
_NOT_FOUND_TYPE = "https://api.twitter.com/2/problems/resource-not-found"
_NOT_AUTHORIZED_TYPE = "https://api.twitter.com/2/problems/not-authorized-for-resource"
# The top-level keys of a problem document (RFC 7807) or a gateway's error body.
_PROBLEM_KEYS = ("status", "title", "detail", "type", "error", "message")
# The usernames an error's detail names, when it names them only there ("Could not find
# user with usernames: [ghost].", "User has been suspended: [ghost]."): a bracket after
# the word user, never any bracketed word ("Upstream [timeout]").
_DETAIL_NAMES = re.compile(r"\buser\b[^\[\]]{0,40}\[([A-Za-z0-9_]{1,15})\]", re.IGNORECASE)


@register
class XConnector(base.Connector):
    platform = "x"
    display_name = "X (Twitter)"
    public_base_url = X_API
    connection_fields = (
        base.ConnectionField("bearer_token", "password", "the app's bearer token", required=True),
    )
    handle_pattern = re.compile(r"^[A-Za-z0-9_]{1,15}$")
    drops_at_sign = True
    profile_links = (
        base.profile_link(
            ("x.com", "twitter.com"),
            r"@?(?P<handle>[A-Za-z0-9_]{1,15})",
            reserved=(
                "i", "home", "explore", "search", "notifications", "messages", "settings",
                "intent", "share", "hashtag", "login", "logout", "signup", "tos", "privacy",
                "compose", "account", "jobs", "about", "download", "rules", "lists",
                "communities", "premium", "topics", "bookmarks", "help", "en",
            ),
            tabs=(
                "with_replies", "media", "likes", "highlights", "articles", "followers",
                "following", "verified_followers", "superfollows", "lists",
            ),
        ),
    )  # fmt: skip
    profile_hosts = ("x.com", "twitter.com")
    profile_link_forms = "https://x.com/<handle>"
    batch_size = 100
    rate_limit_reset_headers = ("x-rate-limit-reset",)
    rate_limit_remaining_headers = ("x-rate-limit-remaining",)

    def __init__(
        self, base_url: str = X_API, bearer_token: str | None = None, **options: Any
    ) -> None:
        super().__init__(base_url, **options)
        self._bearer_token = self.keep_secret(bearer_token)

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        return httpx.Request(
            "GET",
            self.base_url + USERS_BY_PATH,
            params={"usernames": ",".join(handles), "user.fields": USER_FIELDS},
            headers={"Authorization": f"Bearer {self._bearer_token}", "Accept": "application/json"},
        )

    @classmethod
    def body_is_error(cls, document: Any) -> bool:
        # Without user data (no ``data``, or an empty or null one), only errors naming users
        # answer (X names each unknown user among them, reference): a problem document (RFC
        # 7807) or a gateway's error, errors naming no user or that are no objects, no
        # errors at all, or a reply that is no JSON object is X failing.
        if not isinstance(document, dict):
            return True
        if document.get("data"):
            return False
        if any(key in document for key in _PROBLEM_KEYS):
            return True
        errors = document.get("errors")
        if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
            return True
        return not any(_named_user(error) for error in errors)

    @classmethod
    def left_unanswered(cls, response: base.RawResponse) -> str | None:
        # X answers each username asked, in ``data`` (found) or among the ``errors`` (the
        # rest, reference): one in neither list is X failing part-way. Loaded as it came,
        # the run was green with most of X's accounts missing their day.
        document = base.json_document(response.body)
        if not isinstance(document, dict):
            return None
        answered = {
            name.casefold()
            for user in _users(document)
            if isinstance(user, dict) and isinstance(name := user.get("username"), str)
        }
        answered.update(name.casefold() for e in _errors(document) if (name := _named_user(e)))
        left = [h for h in response.requested_handles if h.casefold() not in answered]
        if not left:
            return None
        return (
            f"answering {len(response.requested_handles) - len(left)} of the "
            f"{len(response.requested_handles)} users asked (none of {len(left)} in its data "
            "or its errors: X failing part-way)"
        )

    @classmethod
    def parse(cls, response: base.RawResponse) -> list[base.AccountObservation]:
        reply = base.read_reply(response)
        if isinstance(reply, list):
            return reply
        users = _users(reply)
        users_by_name = base.keyed(
            (
                (name.casefold() if isinstance(name := user.get("username"), str) else None, user)
                for user in users
                if isinstance(user, dict)
            ),
            figures=lambda user: (user.get("id"), user.get("public_metrics")),
        )
        error_status: dict[str, base.AccountStatus] = {}
        for error in _errors(reply):
            name = _named_user(error)
            if name is not None:
                error_status[name.casefold()] = _status_of_error(error)
        # X lists each unknown user among the errors (``data`` holds the found users,
        # ``errors`` the rest): a user in neither list went unanswered, X failing part-way.
        # Taken for not found, it replaced the day's counts of an account that exists.
        observations = []
        for handle in response.requested_handles:
            key = handle.casefold()
            user = users_by_name.get(key)
            if user is base.ANSWERED_TWICE:
                observations.append(base.answered_twice(response, handle))
                continue
            if user is None:
                status = error_status.get(key, base.AccountStatus.ERROR)
                observations.append(base.observation_without_counts(response, handle, status))
                continue
            metrics = user.get("public_metrics")
            if not isinstance(metrics, dict):
                # X sends the metrics of every user when the request asks for them: a user
                # without them is no answer, not an account hiding its counts.
                observations.append(
                    base.observation_without_counts(response, handle, base.AccountStatus.ERROR)
                )
                continue
            try:
                followers = base.count_value(metrics, "followers_count")
                following = base.count_value(metrics, "following_count")
                posts = base.count_value(metrics, "post_count")
                if posts is None:
                    posts = base.count_value(metrics, "tweet_count")
            except base.UnreadableCount as problem:
                observations.append(base.unreadable_counts(response, handle, problem))
                continue
            observations.append(
                base.counted_observation(
                    response,
                    handle,
                    user.get("id"),
                    followers=followers,
                    following=following,
                    posts=posts,
                    hidden=base.hidden_count(metrics, "followers_count"),
                )
            )
        return observations


def _users(document: dict[str, Any]) -> list[Any]:
    """The users of a reply's ``data``: one user's route sends the user itself, read as a
    list of one."""
    data = document.get("data")
    return [data] if isinstance(data, dict) else data if isinstance(data, list) else []


def _errors(document: dict[str, Any]) -> list[dict[str, Any]]:
    errors = document.get("errors")
    return (
        [error for error in errors if isinstance(error, dict)] if isinstance(errors, list) else []
    )


def _named_user(error: dict[str, Any]) -> str | None:
    """The username an error is about (``value``, else ``resource_id``, else the one its
    ``detail`` names in brackets), or None."""
    name = error.get("value") or error.get("resource_id")
    if isinstance(name, str) and name:
        return name
    named = _DETAIL_NAMES.findall(str(error.get("detail") or ""))
    return named[0] if len(named) == 1 else None


def _status_of_error(error: dict[str, Any]) -> base.AccountStatus:
    # X reports suspended users under the not-found problem type; only the detail tells.
    detail = f"{error.get('detail', '')} {error.get('title', '')}".casefold()
    problem = str(error.get("type", ""))
    if "suspended" in detail:
        return base.AccountStatus.SUSPENDED
    if "protected" in detail or problem == _NOT_AUTHORIZED_TYPE:
        return base.AccountStatus.PROTECTED
    if problem == _NOT_FOUND_TYPE or "not found" in detail:
        return base.AccountStatus.NOT_FOUND
    return base.AccountStatus.ERROR
