"""Bluesky through the public AppView: ``app.bsky.actor.getProfiles``, 25 actors a call."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import httpx

from social_leadership.platforms.base import (
    AccountObservation,
    AccountStatus,
    Connector,
    RawResponse,
    count_value,
    failed_response_observations,
    observation_without_counts,
    utc_now,
)

BLUESKY_PUBLIC_APPVIEW = "https://public.api.bsky.app"
GET_PROFILES_PATH = "/xrpc/app.bsky.actor.getProfiles"


class BlueskyConnector(Connector):
    platform = "bluesky"
    batch_size = 25
    rate_limit_reset_headers = ("ratelimit-reset",)
    rate_limit_remaining_headers = ("ratelimit-remaining",)

    def __init__(
        self,
        base_url: str = BLUESKY_PUBLIC_APPVIEW,
        client: httpx.Client | None = None,
        max_wait_seconds: float = 60,
        sleep: Callable[[float], None] | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        **options: Any,
    ) -> None:
        if sleep is not None:
            options["sleep"] = sleep
        super().__init__(
            base_url, client=client, max_wait_seconds=max_wait_seconds, clock=clock, **options
        )

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        # The xrpc lexicon repeats the parameter rather than joining values with commas.
        return httpx.Request(
            "GET",
            self.base_url + GET_PROFILES_PATH,
            params=[("actors", handle) for handle in handles],
            headers={"Accept": "application/json"},
        )

    @classmethod
    def parse(cls, response: RawResponse) -> list[AccountObservation]:
        requested = response.requested_handles
        failed = failed_response_observations(response)
        if failed is not None:
            return failed
        try:
            profiles = json.loads(response.body).get("profiles", [])
        except (ValueError, AttributeError):
            return [observation_without_counts(response, h, AccountStatus.ERROR) for h in requested]
        by_key: dict[str, dict[str, Any]] = {}
        for profile in profiles:
            if not isinstance(profile, dict):
                continue
            for key in (profile.get("handle"), profile.get("did")):
                if isinstance(key, str):
                    by_key[key.casefold()] = profile
        observations = []
        for handle in requested:
            profile = by_key.get(handle.casefold())
            if profile is None:
                observations.append(
                    observation_without_counts(response, handle, AccountStatus.NOT_FOUND)
                )
                continue
            counts = (
                count_value(profile, "followersCount"),
                count_value(profile, "followsCount"),
                count_value(profile, "postsCount"),
            )
            observations.append(
                AccountObservation(
                    platform=cls.platform,
                    account_handle=handle,
                    account_id=profile.get("did"),
                    status=AccountStatus.OK if counts[0] is not None else AccountStatus.HIDDEN,
                    followers=counts[0],
                    following=counts[1],
                    posts=counts[2],
                    observed_at=response.fetched_at,
                )
            )
        return observations
