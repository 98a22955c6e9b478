"""LinkedIn organizations: ``/v2/networkSizes/urn:li:organization:{id}``, one a call.

LinkedIn has no API returning another member's follower count, so member handles in the
roster are never requested: their counts come in by history import only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

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
    failed_response_observations,
    observation_without_counts,
)
from social_leadership.roster import is_linkedin_organization

LINKEDIN_API = "https://api.linkedin.com"
NETWORK_SIZES_PATH = "/v2/networkSizes/"
LINKEDIN_VERSION = "202601"


class LinkedInConnector(Connector):
    platform = "linkedin"
    batch_size = 1

    def __init__(
        self, base_url: str = LINKEDIN_API, access_token: str | None = None, **options: Any
    ):
        if not access_token:
            raise PlatformError("linkedin: an OAuth access token is required (connection password)")
        super().__init__(base_url, **options)
        self._access_token = self.keep_secret(access_token)

    def __repr__(self) -> str:
        return f"LinkedInConnector(base_url={self.base_url!r})"

    @staticmethod
    def handle_key(handle: str) -> str:
        return handle

    def plan_batches(self, handles: list[str]) -> list[list[str]]:
        return [[handle] for handle in handles if is_linkedin_organization(handle)]

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        return httpx.Request(
            "GET",
            self.base_url + NETWORK_SIZES_PATH + handles[0],
            params={"edgeType": "CompanyFollowedByMember"},
            headers={
                "Authorization": f"Bearer {self._access_token}",
                "LinkedIn-Version": LINKEDIN_VERSION,
                "X-Restli-Protocol-Version": "2.0.0",
                "Accept": "application/json",
            },
        )

    def judge(self, status: int, body: bytes, headers: httpx.Headers) -> Verdict:
        if status == 404:
            return LAND
        return super().judge(status, body, headers)

    @classmethod
    def body_is_error(cls, document: Any) -> bool:
        return isinstance(document, dict) and "firstDegreeSize" not in document

    @classmethod
    def parse(cls, response: RawResponse) -> list[AccountObservation]:
        handle = response.requested_handles[0]
        if response.status_code == 404:
            return [observation_without_counts(response, handle, AccountStatus.NOT_FOUND)]
        failed = failed_response_observations(response)
        if failed is not None:
            return failed
        try:
            document = json.loads(response.body)
        except ValueError:
            return [observation_without_counts(response, handle, AccountStatus.ERROR)]
        followers = count_value(document, "firstDegreeSize") if isinstance(document, dict) else None
        return [
            AccountObservation(
                platform=cls.platform,
                account_handle=handle,
                account_id=handle,
                status=AccountStatus.OK if followers is not None else AccountStatus.ERROR,
                followers=followers,
                following=None,
                posts=None,
                observed_at=response.fetched_at,
            )
        ]
