"""Threads profile discovery: ``/v1.0/profile_lookup?username=...``, one account a call.

Looking up someone else's profile needs the ``threads_profile_discovery`` permission, which
Meta grants case by case. A token without it fails every lookup alike, so the run stops
with an error naming the permission. Throttling, token errors and unknown users are Graph
error bodies, handled as for Facebook. The lookup names the count ``follower_count``
(singular; insights say ``followers_count``, also accepted) and returns no post count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

from social_leadership.platforms import base
from social_leadership.platforms.graph import INVALID_PARAMETER_CODE, GraphConnector, graph_error
from social_leadership.platforms.registry import register

THREADS_API = "https://graph.threads.net"
THREADS_VERSION = "v1.0"
PROFILE_LOOKUP_PATH = f"/{THREADS_VERSION}/profile_lookup"
THREADS_FIELDS = "username,follower_count"
DISCOVERY_PERMISSION = "threads_profile_discovery"


def is_permission_error(code: Any) -> bool:
    """Graph's "permission not granted" codes: 10 and the 200 to 299 range."""
    return isinstance(code, int) and (code == 10 or 200 <= code <= 299)


@register
class ThreadsConnector(GraphConnector):
    platform = "threads"
    display_name = "Threads"
    public_base_url = THREADS_API
    connection_fields = (
        base.ConnectionField(
            "access_token",
            "password",
            f"an access token with the {DISCOVERY_PERMISSION} permission",
            required=True,
        ),
    )
    handle_pattern = re.compile(r"^[A-Za-z0-9._]{1,30}$")
    drops_at_sign = True
    profile_links = (
        base.profile_link(
            ("threads.net", "threads.com"),
            r"@(?P<handle>[A-Za-z0-9._]{1,30})",
            tabs=("replies", "reposts", "media"),
        ),
    )
    profile_hosts = ("threads.net", "threads.com")
    profile_link_forms = "https://www.threads.net/@<username>"

    def __init__(
        self, base_url: str = THREADS_API, access_token: str | None = None, **options: Any
    ):
        super().__init__(base_url, access_token, **options)

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        return httpx.Request(
            "GET",
            self.base_url + PROFILE_LOOKUP_PATH,
            params={"username": handles[0], "fields": THREADS_FIELDS},
            headers=self._headers(),
        )

    def judge(self, status: int, body: bytes, headers: httpx.Headers) -> base.Verdict:
        error = graph_error(base.json_document(body))
        if error is not None and status != 200 and is_permission_error(error.get("code")):
            return base.Verdict(
                "fatal",
                f"Graph error {error['code']}: the token lacks the {DISCOVERY_PERMISSION} "
                "permission needed to look up other profiles",
            )
        return super().judge(status, body, headers)

    @classmethod
    def _account_not_found(cls, error: dict[str, Any]) -> bool:
        # The lookup names the account in its query, never a node of the caller's: what
        # Threads sends for an unknown username (code 100, with or without a subcode) is
        # about that account alone.
        return error.get("code") == INVALID_PARAMETER_CODE or super()._account_not_found(error)

    @classmethod
    def parse(cls, response: base.RawResponse) -> list[base.AccountObservation]:
        handle = response.requested_handles[0]
        document = base.json_document(response.body) if response.status_code == 200 else None
        username = document.get("username") if isinstance(document, dict) else None
        if isinstance(username, str) and username.casefold() != cls.clean_handle(handle).casefold():
            # Answered with another profile (asked for its username, the reply names it):
            # never that account's counts, as Mastodon's lookup has it. An error.
            return [base.observation_without_counts(response, handle, base.AccountStatus.ERROR)]
        # Threads' profile lookup says follower_count (singular); insights say followers_.
        return cls._parse_profile(response, followers=("follower_count", "followers_count"))
