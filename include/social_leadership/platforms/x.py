"""X API v2: ``GET /2/users/by`` with public metrics, 100 usernames a call, app Bearer token."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import httpx

from social_leadership.platforms.base import (
    AccountObservation,
    AccountStatus,
    ConnectionField,
    Connector,
    RawResponse,
    count_value,
    failed_response_observations,
    observation_without_counts,
)
from social_leadership.platforms.registry import register

X_API = "https://api.x.com"
USERS_BY_PATH = "/2/users/by"
_NOT_FOUND_TYPE = "https://api.twitter.com/2/problems/resource-not-found"
_NOT_AUTHORIZED_TYPE = "https://api.twitter.com/2/problems/not-authorized-for-resource"


@register
class XConnector(Connector):
    platform = "x"
    display_name = "X (Twitter)"
    public_base_url = X_API
    connection_fields = (
        ConnectionField("bearer_token", "password", "the app's bearer token", required=True),
    )
    handle_pattern = re.compile(r"^[A-Za-z0-9_]{1,15}$")
    drops_at_sign = True
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
            params={"usernames": ",".join(handles), "user.fields": "public_metrics"},
            headers={"Authorization": f"Bearer {self._bearer_token}", "Accept": "application/json"},
        )

    @classmethod
    def body_is_error(cls, document: Any) -> bool:
        # A problem document (RFC 7807) without user data is X failing, not an answer.
        return (
            isinstance(document, dict)
            and "data" not in document
            and ("errors" not in document or "status" in document)
        )

    @classmethod
    def parse(cls, response: RawResponse) -> list[AccountObservation]:
        requested = response.requested_handles
        failed = failed_response_observations(response)
        if failed is not None:
            return failed
        try:
            document = json.loads(response.body)
            users = document.get("data") or []
            errors = document.get("errors") or []
        except (ValueError, AttributeError):
            return [observation_without_counts(response, h, AccountStatus.ERROR) for h in requested]
        users_by_name = {
            user["username"].casefold(): user
            for user in users
            if isinstance(user, dict) and isinstance(user.get("username"), str)
        }
        error_status: dict[str, AccountStatus] = {}
        for error in errors:
            if not isinstance(error, dict):
                continue
            name = error.get("value") or error.get("resource_id")
            if isinstance(name, str):
                error_status[name.casefold()] = _status_of_error(error)
        observations = []
        for handle in requested:
            key = handle.casefold()
            user = users_by_name.get(key)
            if user is None:
                status = error_status.get(key, AccountStatus.NOT_FOUND)
                observations.append(observation_without_counts(response, handle, status))
                continue
            metrics = user.get("public_metrics")
            if not isinstance(metrics, dict):
                metrics = {}
            followers = count_value(metrics, "followers_count")
            posts = count_value(metrics, "post_count")
            if posts is None:
                posts = count_value(metrics, "tweet_count")
            if followers is None:
                status = AccountStatus.HIDDEN
            elif user.get("protected") is True:
                status = AccountStatus.PROTECTED
            else:
                status = AccountStatus.OK
            observations.append(
                AccountObservation(
                    platform=cls.platform,
                    account_handle=handle,
                    account_id=str(user["id"]) if user.get("id") is not None else None,
                    status=status,
                    followers=followers,
                    following=count_value(metrics, "following_count"),
                    posts=posts,
                    observed_at=response.fetched_at,
                )
            )
        return observations


def _status_of_error(error: dict[str, Any]) -> AccountStatus:
    # X reports suspended users under the not-found problem type; only the detail tells.
    detail = f"{error.get('detail', '')} {error.get('title', '')}".casefold()
    problem = str(error.get("type", ""))
    if "suspended" in detail:
        return AccountStatus.SUSPENDED
    if "protected" in detail or problem == _NOT_AUTHORIZED_TYPE:
        return AccountStatus.PROTECTED
    if problem == _NOT_FOUND_TYPE or "not found" in detail:
        return AccountStatus.NOT_FOUND
    return AccountStatus.ERROR
