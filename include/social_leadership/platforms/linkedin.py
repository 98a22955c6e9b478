"""LinkedIn organizations: ``/v2/networkSizes/urn:li:organization:{id}``, one a call.

LinkedIn has no API returning another member's follower count, so member handles in the
roster are never requested: their counts come in by history import only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

from social_leadership.platforms import base
from social_leadership.platforms.registry import register

LINKEDIN_API = "https://api.linkedin.com"
NETWORK_SIZES_PATH = "/v2/networkSizes/"
LINKEDIN_VERSION = "202601"
# The code of LinkedIn's 404 for a route it does not have ("No virtual resource found").
UNKNOWN_ROUTE_CODE = "RESOURCE_NOT_FOUND"
ORGANIZATION_PREFIX = "urn:li:organization:"


def is_linkedin_organization(handle: str) -> bool:
    """Whether a roster LinkedIn handle names an organization (fetched) or a member."""
    return handle.startswith(ORGANIZATION_PREFIX)


# How LinkedIn's internal member ids begin (/in/ACoAAB...), in links from search results
# and Sales Navigator: no vanity name, and no history file names a member so.
_MEMBER_ID_PREFIX = "ACoAA"


@register
class LinkedInConnector(base.Connector):
    platform = "linkedin"
    display_name = "LinkedIn"
    public_base_url = LINKEDIN_API
    connection_fields = (
        base.ConnectionField("access_token", "password", "an OAuth access token", required=True),
    )
    # A member's vanity name (import-only) or an organization's URN (fetched).
    # Vanity names may hold letters of any script (/in/jörg-müller).
    handle_pattern = re.compile(r"^(?:[\w-]{2,100}|urn:li:organization:[0-9]{1,20})$")
    # A member's profile, or an organization's page by its numeric id (its name in the
    # link, linkedin.com/company/<name>, is not the URN's id).
    profile_links = (
        base.profile_link(
            ("linkedin.com",),
            r"in/(?P<handle>[\w-]{2,100})",
            tabs=(r"details(?:/[^?#]*)?", r"recent-activity(?:/[^?#]*)?", r"overlay(?:/[^?#]*)?"),
        ),
        base.profile_link(
            ("linkedin.com",),
            r"company/(?P<organization>[0-9]{1,20})",
            tabs=("about", "posts", "people", "jobs", "life", "mycompany"),
        ),
    )
    profile_hosts = ("linkedin.com",)
    profile_link_forms = (
        "https://www.linkedin.com/in/<name> for a member; an organization as "
        "urn:li:organization:<id> or https://www.linkedin.com/company/<id>, its numeric id"
    )
    batch_size = 1
    # Executives are members: their counts come in by import only.
    follower_source = "import"

    def __init__(
        self, base_url: str = LINKEDIN_API, access_token: str | None = None, **options: Any
    ):
        super().__init__(base_url, **options)
        self._access_token = self.keep_secret(access_token)

    @staticmethod
    def handle_key(handle: str) -> str:
        return handle

    @classmethod
    def is_import_only(cls, handle: str) -> bool:
        return not is_linkedin_organization(handle)

    @classmethod
    def link_handle(cls, match: re.Match[str]) -> str:
        organization = match.groupdict().get("organization")
        if organization:
            return f"urn:li:organization:{organization}"
        if match.group("handle").startswith(_MEMBER_ID_PREFIX):
            raise ValueError(
                f"{match.string!r} names the member by an internal id (a link from search or "
                "Sales Navigator), not by the profile's name: open the profile and copy its "
                "link, https://www.linkedin.com/in/<name>"
            )
        return match.group("handle")

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

    def judge(self, status: int, body: bytes, headers: httpx.Headers) -> base.Verdict:
        # An unknown organization: LinkedIn's 404 carries its error object (status,
        # serviceErrorCode, message), or nothing. A 404 of something else (a proxy's HTML
        # page, another server's {"error": ...}) would make every organization "not found"
        # on a green run: it fails the platform as any other 4xx does, naming what answered.
        if status == 404 and (not body.strip() or _linkedin_error(base.json_document(body))):
            return base.LAND
        return super().judge(status, body, headers)

    @classmethod
    def body_is_error(cls, document: Any) -> bool:
        """LinkedIn's error object (``status``, ``serviceErrorCode``, ``message``) or
        another server's (``error``, ``code``) in a 200: retried. A reply that is neither
        and holds no ``firstDegreeSize`` (``{}``) is the organization's answer without a
        count, an error of that organization alone (it failed the platform)."""
        return (
            isinstance(document, dict)
            and "firstDegreeSize" not in document
            and any(key in document for key in _ERROR_KEYS)
        )

    @classmethod
    def parse(cls, response: base.RawResponse) -> list[base.AccountObservation]:
        handle = response.requested_handles[0]
        if response.status_code == 404:
            return [base.observation_without_counts(response, handle, base.AccountStatus.NOT_FOUND)]
        reply = base.read_reply(response)
        if isinstance(reply, list):
            return reply
        try:
            followers = base.count_value(reply, "firstDegreeSize")
        except base.UnreadableCount as problem:
            return [base.unreadable_counts(response, handle, problem)]
        # An organization's URN is its id; a reply without a count is not an answer.
        status = base.AccountStatus.OK if followers is not None else base.AccountStatus.ERROR
        return [
            base.counted_observation(response, handle, handle, followers=followers, status=status)
        ]


_ERROR_KEYS = ("status", "serviceErrorCode", "message", "error", "code")


def _linkedin_error(document: Any) -> bool:
    """Whether a reply's JSON is LinkedIn's error object about the organization:
    ``{"status": 404, "serviceErrorCode": 0, "message": "..."}``, never ``{"error": ...}``,
    and not its answer to a route it does not have (``"code": "RESOURCE_NOT_FOUND"``,
    "No virtual resource found": a wrong base URL or path, which would otherwise make every
    organization "not found")."""
    return (
        isinstance(document, dict)
        and "error" not in document
        and document.get("code") != UNKNOWN_ROUTE_CODE
        and ("status" in document or "serviceErrorCode" in document or "message" in document)
    )
