"""Mastodon (any instance): ``/api/v1/accounts?id[]=`` for 40 known ids a call, else
``/api/v1/accounts/lookup?acct=`` one handle a call.

Roster handles are ``user@instance``; a Mastodon id is only known once an account has been
looked up, so the first run looks every account up and later runs (given the ids found,
see ``account_ids``) fetch 40 per request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from social_leadership.platforms.base import (
    LAND,
    AccountObservation,
    AccountStatus,
    Connector,
    RawResponse,
    Verdict,
    count_value,
    json_document,
    observation_without_counts,
)

LOOKUP_PATH = "/api/v1/accounts/lookup"
ACCOUNTS_PATH = "/api/v1/accounts"
MASTODON_MAX_IDS = 40


class MastodonConnector(Connector):
    platform = "mastodon"
    batch_size = MASTODON_MAX_IDS
    rate_limit_reset_headers = ("x-ratelimit-reset",)
    rate_limit_remaining_headers = ("x-ratelimit-remaining",)

    def __init__(
        self,
        base_url: str,
        access_token: str | None = None,
        *,
        account_ids: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, **options)
        self._access_token = access_token
        self._ids = {key.casefold(): value for key, value in (account_ids or {}).items()}

    def __repr__(self) -> str:
        return f"MastodonConnector(base_url={self.base_url!r})"

    def plan_batches(self, handles: list[str]) -> list[list[str]]:
        known = [h for h in handles if h.casefold() in self._ids]
        unknown = [h for h in handles if h.casefold() not in self._ids]
        return super().plan_batches(known) + [[handle] for handle in unknown]

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        headers = {"Accept": "application/json"}
        if self._access_token:
            headers["Authorization"] = f"Bearer {self._access_token}"
        first = handles[0].casefold()
        if len(handles) == 1 and first not in self._ids:
            return httpx.Request(
                "GET", self.base_url + LOOKUP_PATH, params={"acct": handles[0]}, headers=headers
            )
        params = [("id[]", self._ids[h.casefold()]) for h in handles]
        return httpx.Request("GET", self.base_url + ACCOUNTS_PATH, params=params, headers=headers)

    def judge(self, status: int, body: bytes, headers: httpx.Headers) -> Verdict:
        if status == 404 and isinstance(json_document(body), dict):
            return LAND  # lookup of an unknown account: a per-account answer
        return super().judge(status, body, headers)

    @classmethod
    def parse(cls, response: RawResponse) -> list[AccountObservation]:
        requested = response.requested_handles
        if response.status_code == 404:
            return [
                observation_without_counts(response, h, AccountStatus.NOT_FOUND) for h in requested
            ]
        if response.status_code != 200:
            status = AccountStatus.DEFERRED if response.status_code == 429 else AccountStatus.ERROR
            return [observation_without_counts(response, h, status) for h in requested]
        try:
            document = json.loads(response.body)
        except ValueError:
            return [observation_without_counts(response, h, AccountStatus.ERROR) for h in requested]
        query = parse_qs(urlsplit(response.request_url).query)
        ids = query.get("id[]", [])
        if isinstance(document, dict):
            by_handle = {requested[0].casefold(): document}
        elif isinstance(document, list) and len(ids) == len(requested):
            by_id = {str(a.get("id")): a for a in document if isinstance(a, dict)}
            by_handle = {
                handle.casefold(): by_id[account_id]
                for handle, account_id in zip(requested, ids, strict=True)
                if account_id in by_id
            }
        else:
            return [observation_without_counts(response, h, AccountStatus.ERROR) for h in requested]
        observations = []
        for handle in requested:
            account = by_handle.get(handle.casefold())
            if account is None:
                observations.append(
                    observation_without_counts(response, handle, AccountStatus.NOT_FOUND)
                )
                continue
            followers = count_value(account, "followers_count")
            if account.get("suspended") is True:
                status = AccountStatus.SUSPENDED
            elif followers is None:
                status = AccountStatus.HIDDEN
            else:
                status = AccountStatus.OK
            observations.append(
                AccountObservation(
                    platform=cls.platform,
                    account_handle=handle,
                    account_id=str(account["id"]) if account.get("id") is not None else None,
                    status=status,
                    followers=followers if status is AccountStatus.OK else None,
                    following=count_value(account, "following_count"),
                    posts=count_value(account, "statuses_count"),
                    observed_at=response.fetched_at,
                )
            )
        return observations
