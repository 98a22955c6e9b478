"""Mastodon: each account is asked of its own instance, ``/api/v1/accounts?id[]=`` for 40
known ids a call, else ``/api/v1/accounts/lookup?acct=`` one handle a call.

Roster handles are ``user@instance``. The base URL names where to ask: ``https://{instance}``
(the default) asks each account's home instance, the only one sure to know it (a lookup
of a remote account only answers for accounts the instance has already seen, with its
cached counts); a URL without ``{instance}`` sends every request to that one instance.

The token (for instances in whitelist mode) belongs to one account on one instance: with
``{instance}`` it is sent only to the instances named in ``allowed_instances`` (the
connection extra), and every other instance is asked anonymously. A fixed instance, chosen
by the user in the URL, always gets it. An instance that refuses (a login it was not given,
a redirect, another 4xx) leaves those of its own accounts it had not answered yet unread
(deferred) and the extraction ``refused``, failed; the other instances' accounts are read
all the same.

A Mastodon id is only known once an account has been looked up, so the first run looks
every account up and later runs (given the ids found, see ``account_ids``) fetch 40 per
request. An id batch that leaves an account out (an id that changed, or one learned from
another instance), one that answers a stored id with another account (its ``username`` or
``acct`` not the handle's), and an instance older than Mastodon 4.3, which answers the
batch route 404, are all followed by lookups of the accounts concerned (whose ids then
replace the stored ones): only a lookup says an account is not found. When the batches
were stopped early (rate limited), the accounts to look up are deferred with the rest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from social_leadership.platforms import base
from social_leadership.platforms.registry import register

log = logging.getLogger(__name__)

# HTTP 410 Gone: an account deleted for good.
GONE = 410
LOOKUP_PATH = "/api/v1/accounts/lookup"
ACCOUNTS_PATH = "/api/v1/accounts"
MASTODON_MAX_IDS = 40
# The tabs of a profile page (https://<instance>/@user/media).
_PROFILE_TABS = ("with_replies", "media", "followers", "following", "tagged")
# Sites with /@name pages that are not Mastodon instances (besides the other platforms'
# profile_hosts): a link to one of them in the Mastodon column is a mistake.
_OTHER_AT_SITES = ("medium.com", "tiktok.com", "substack.com", "pinterest.com", "vk.com")


@register
class MastodonConnector(base.Connector):
    platform = "mastodon"
    display_name = "Mastodon"
    # Each account is asked of its own instance.
    public_base_url = "https://{instance}"
    connection_fields = (
        base.ConnectionField(
            "access_token",
            "password",
            "optional: a token for instances in whitelist mode, sent only to the instances "
            "in allowed_instances",
        ),
        base.ConnectionField(
            "allowed_instances",
            "extra",
            "the instance host names the token may go to (a list or a comma-separated "
            "string); every other instance is asked anonymously",
        ),
    )
    handle_pattern = re.compile(r"^[A-Za-z0-9_]{1,30}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
    drops_at_sign = True
    # https://<instance>/@<user>, https://<instance>/@<user>@<home> (an account of another
    # instance, as that one shows it) and https://<instance>/users/<user>.
    profile_links = (
        base.profile_link(
            None,
            r"@(?P<user>[A-Za-z0-9_]{1,30})(?:@(?P<home>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+))?",
            tabs=_PROFILE_TABS,
        ),
        base.profile_link(None, r"users/(?P<user>[A-Za-z0-9_]{1,30})", tabs=_PROFILE_TABS),
    )
    batch_size = MASTODON_MAX_IDS
    # Ids seen in earlier landings let later runs fetch 40 accounts a request.
    state_option = "account_ids"
    rate_limit_reset_headers = ("x-ratelimit-reset",)
    rate_limit_remaining_headers = ("x-ratelimit-remaining",)

    def __init__(
        self,
        base_url: str,
        access_token: str | None = None,
        *,
        account_ids: Mapping[str, str] | None = None,
        allowed_instances: Sequence[str] | str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, **options)
        self._access_token = self.keep_secret(access_token)
        self._ids = {key.casefold(): value for key, value in (account_ids or {}).items()}
        self._batch_sent = False
        self._token_instances = instance_hosts(allowed_instances)
        # A fixed instance is the user's own choice; per-account instances are not.
        self._send_token = INSTANCE not in self.base_url

    @classmethod
    def link_handle(cls, match: re.Match[str]) -> str:
        from social_leadership.platforms.registry import registered

        instance = match.group("instance").lower()
        other_sites = {h for c in registered() for h in c.profile_hosts} | set(_OTHER_AT_SITES)
        if base.on_site(instance, other_sites):
            raise ValueError(
                f"{match.string!r} is a link to {instance}, no Mastodon instance: write the "
                "handle (user@instance) or the link to the profile on its instance"
            )
        home = match.groupdict().get("home") or match.group("instance")
        return f"{match.group('user')}@{home}"

    def plan_batches(self, handles: list[str]) -> list[list[str]]:
        known = [h for h in handles if h.casefold() in self._ids]
        unknown = [h for h in handles if h.casefold() not in self._ids]
        return super().plan_batches(known) + [[handle] for handle in unknown]

    def extract(self, handles: Sequence[str]) -> base.ExtractResult:
        if INSTANCE not in self.base_url:
            return self._extract_from_one_instance(handles)
        by_instance: dict[str, list[str]] = {}
        for handle in base.dedupe_handles(handles, self.handle_key):
            by_instance.setdefault(_instance_of(handle), []).append(handle)
        result = base.ExtractResult(platform=self.platform)
        template = self.base_url
        anonymous = [i for i in by_instance if i not in self._token_instances]
        if self._access_token and anonymous:
            log.info(
                "mastodon: %d instance(s) not in the connection's allowed_instances are "
                "asked without the token: %s",
                len(anonymous),
                ", ".join(sorted(anonymous)),
            )
        try:
            for instance, members in by_instance.items():
                # Each instance has its own rate limit: one throttled instance defers only
                # its own accounts.
                self.base_url = template.replace(INSTANCE, instance)
                self._send_token = instance in self._token_instances
                try:
                    base.merge_results(result, self._extract_from_one_instance(members))
                except base.PlatformError as refusal:
                    # Anyone's instance can be in the roster: its refusal (a login it was
                    # not given, a redirect, a 4xx) leaves only its own accounts unread, and
                    # of those only the ones it had not answered yet (its ``partial``): the
                    # replies before the refusal are landed and cost no request again.
                    base.merge_results(result, base.read_before(refusal, self.platform, members))
        finally:
            self.base_url = template
            self._send_token = False
        return result

    def _extract_from_one_instance(self, handles: Sequence[str]) -> base.ExtractResult:
        return base.extract_with_follow_up(
            super().extract,
            handles,
            _left_out_of_batch,
            lambda handle: self._ids.pop(handle.casefold(), None),
        )

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        headers = {"Accept": "application/json"}
        if self._access_token and self._send_token:
            headers["Authorization"] = f"Bearer {self._access_token}"
        first = handles[0].casefold()
        if len(handles) == 1 and first not in self._ids:
            return httpx.Request(
                "GET", self.base_url + LOOKUP_PATH, params={"acct": handles[0]}, headers=headers
            )
        params = [("id[]", self._ids[h.casefold()]) for h in handles]
        self._batch_sent = True
        return httpx.Request("GET", self.base_url + ACCOUNTS_PATH, params=params, headers=headers)

    def prepare(self, client: httpx.Client, batch: Sequence[str]) -> httpx.Request:
        self._batch_sent = False
        return super().prepare(client, batch)

    def judge(self, status: int, body: bytes, headers: httpx.Headers) -> base.Verdict:
        if status == 404 and (self._batch_sent or isinstance(base.json_document(body), dict)):
            # A lookup's 404 is a per-account answer; a batch's, that the route is missing.
            return base.LAND
        if status == GONE and not self._batch_sent and isinstance(base.json_document(body), dict):
            # An account removed for good (Mastodon's 410 for a deleted or purged account):
            # that account's answer, not the instance failing.
            return base.LAND
        if status == 401 and self._access_token and not self._send_token:
            return base.Verdict(
                "fatal",
                "HTTP 401: the instance requires a login, and the token goes only to the "
                "instances in the connection's allowed_instances",
            )
        verdict = super().judge(status, body, headers)
        if verdict == base.LAND and status == 200:
            # A batch is answered by a list of accounts, a lookup by one: a reply of the
            # other shape is garbled (a lone account answering a batch was read as the
            # first requested account's).
            document = base.json_document(body)
            if self._batch_sent != isinstance(document, list):
                return base.Verdict("retry", "HTTP 200 with a reply of the wrong shape")
        return verdict

    @classmethod
    def parse(cls, response: base.RawResponse) -> list[base.AccountObservation]:
        requested = response.requested_handles
        # Accounts a batch left out are looked up one by one, or deferred when the run
        # stopped early (base.extract_with_follow_up): the batch says nothing about them.
        left_out = {handle.casefold() for handle in _left_out_of_batch(response)}
        if response.status_code in (404, GONE):
            return (
                []
                if left_out
                else base.observations_without_counts(response, base.AccountStatus.NOT_FOUND)
            )
        failed = base.failed_response_observations(response)
        if failed is not None:
            return failed
        document = base.json_document(response.body)
        ids = parse_qs(urlsplit(response.request_url).query).get("id[]", [])
        if isinstance(document, dict) and not ids and len(requested) == 1:
            # A lookup: its account, unless it names another (never another's counts).
            if _names_another(document, requested[0]):
                return base.observations_without_counts(response, base.AccountStatus.ERROR)
            by_handle = {requested[0].casefold(): document}
        elif isinstance(document, list) and len(ids) == len(requested):
            by_id = base.keyed(
                ((str(a.get("id")), a) for a in document if isinstance(a, dict)),
                figures=lambda a: tuple(
                    a.get(key)
                    for key in ("acct", "followers_count", "following_count", "statuses_count")
                ),
            )
            by_handle = {
                handle.casefold(): by_id[account_id]
                for handle, account_id in zip(requested, ids, strict=True)
                if account_id in by_id
            }
        else:
            return base.observations_without_counts(response, base.AccountStatus.ERROR)
        observations = []
        for handle in requested:
            if handle.casefold() in left_out:
                continue
            account = by_handle.get(handle.casefold())
            if account is base.ANSWERED_TWICE:
                observations.append(base.answered_twice(response, handle))
                continue
            if account is None:
                observations.append(
                    base.observation_without_counts(response, handle, base.AccountStatus.NOT_FOUND)
                )
                continue
            # An account moved to another (Mastodon's "moved": the new account, which
            # the old one names): the old one's counts stay as they were when it moved
            # (its followers went along), so the new account's counts are the handle's,
            # under the roster's handle (a new one would start a new series), and the
            # move is said in the run's alert.
            moved = account.get("moved")
            moved_to = None
            if isinstance(moved, dict):
                moved_to = _full_acct(moved, response.request_url)
                # Without the new account's counts, none: the old one's are left over.
                account = {**moved, "id": account.get("id")}
            try:
                if "followers_count" not in account:
                    # Mastodon sends every account's counts (a hidden one as -1, some forks):
                    # an account without them is no answer, not one hiding its counts (read
                    # so, it replaced the day's counts with none).
                    raise base.UnreadableCount("followers_count is missing")
                followers = base.count_value(account, "followers_count")
                following = base.count_value(account, "following_count")
                posts = base.count_value(account, "statuses_count")
            except base.UnreadableCount as problem:
                observations.append(base.unreadable_counts(response, handle, problem))
                continue
            # A suspended account's zeros are the server's placeholders, not its counts.
            suspended = account.get("suspended") is True
            observations.append(
                base.counted_observation(
                    response,
                    handle,
                    account.get("id"),
                    followers=None if suspended else followers,
                    following=None if suspended else following,
                    posts=None if suspended else posts,
                    status=base.AccountStatus.SUSPENDED if suspended else None,
                    hidden=base.hidden_count(account, "followers_count"),
                    moved_to=moved_to,
                )
            )
        return observations


def _full_acct(account: dict, request_url: str) -> str:
    """``user@domain`` of an account a reply names: its ``acct``, which a local account
    gives without the domain: then the host of its profile ``url``, else of the instance
    that answered (``request_url``; a connection to one fixed instance asks there for
    accounts of every instance)."""
    acct = str(account.get("acct") or account.get("username") or account.get("id"))
    if "@" in acct:
        return acct
    host = urlsplit(str(account.get("url") or "")).hostname or urlsplit(request_url).hostname
    return f"{acct}@{host}" if host else acct


INSTANCE = "{instance}"
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d+)?$")


def instance_hosts(listed: Sequence[str] | str | None) -> frozenset[str]:
    """The instance host names in a connection's ``allowed_instances``: a list or a
    comma-separated string of host names (a URL is reduced to its host), any case."""
    if listed is None:
        return frozenset()
    if isinstance(listed, str):
        entries: list[object] = listed.split(",")
    elif isinstance(listed, list | tuple | set | frozenset):
        entries = list(listed)
    else:
        raise base.PlatformError(
            "mastodon: allowed_instances (connection extra) must be a list or a "
            f"comma-separated string of instance host names, not {type(listed).__name__}"
        )
    hosts = set()
    for entry in entries:
        if not isinstance(entry, str):
            raise base.PlatformError(
                f"mastodon: allowed_instances entry {entry!r} is not a host name"
            )
        host = entry.strip()
        if "://" in host:
            host = urlsplit(host).netloc
        host = host.strip("/").removeprefix("@").casefold()
        if not host:
            continue
        if not _HOST.match(host):
            raise base.PlatformError(
                f"mastodon: allowed_instances entry {entry!r} is not a host name"
            )
        hosts.add(host)
    return frozenset(hosts)


def _instance_of(handle: str) -> str:
    return handle.rsplit("@", 1)[-1].casefold()


def _left_out_of_batch(response: base.RawResponse) -> list[str]:
    """The accounts an id batch did not answer for: all of them when the instance has no
    batch route (404), else those whose id is not in the reply or was answered with
    another account (a stored id that now names someone else, or one learned elsewhere)."""
    if not urlsplit(response.request_url).path.endswith(ACCOUNTS_PATH):
        return []
    if response.status_code == 404:
        return list(response.requested_handles)
    if response.status_code != 200:
        return []
    document = base.json_document(response.body)
    ids = parse_qs(urlsplit(response.request_url).query).get("id[]", [])
    if not isinstance(document, list) or len(ids) != len(response.requested_handles):
        return []
    answered = {str(a.get("id")): a for a in document if isinstance(a, dict)}
    return [
        handle
        for handle, account_id in zip(response.requested_handles, ids, strict=True)
        if account_id not in answered or not _is_account_of(answered[account_id], handle)
    ]


def _names_another(account: dict[str, Any], handle: str) -> bool:
    """Whether an account a lookup returned is another user than ``handle``'s: its
    ``username`` another (one naming none is taken as the one asked for: a lookup answers
    for one account). Its domain is not compared: an instance whose accounts are named by
    another domain than its own (``user@example.com`` served by ``social.example.com``)
    answers for ``user@social.example.com`` too."""
    username = account.get("username")
    user = handle.rsplit("@", 1)[0].casefold()
    return isinstance(username, str) and username.casefold() != user


def _is_account_of(account: dict[str, Any], handle: str) -> bool:
    """Whether an account an instance returned is ``handle``'s (``user@domain``): its
    ``username`` is the user, and its ``acct`` the user alone (an account local to the
    instance) or the whole handle, ignoring case."""
    user = handle.rsplit("@", 1)[0].casefold()
    username, acct = account.get("username"), account.get("acct")
    if not isinstance(username, str) or not isinstance(acct, str):
        return False
    return username.casefold() == user and acct.casefold() in (user, handle.casefold())
