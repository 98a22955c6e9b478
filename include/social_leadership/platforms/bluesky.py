"""Bluesky through the public AppView: ``app.bsky.actor.getProfiles``, 25 actors a call.

A handle is a domain name its owner may change; the DID is the account for good. Once a
landing has read an account, later runs ask for it by its DID (``account_ids``, learned
from the landings), so a renamed handle is still found, under the roster's handle. A
learned DID the AppView no longer answers for (an account deleted, its handle moved to a
new account) is followed by a request for the handle itself, whose DID then replaces the
learned one: only that request says a handle is not found. When the batches were stopped
early (rate limited), those handles are deferred with the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from social_leadership.platforms import base
from social_leadership.platforms.registry import register

BLUESKY_PUBLIC_APPVIEW = "https://public.api.bsky.app"
GET_PROFILES_PATH = "/xrpc/app.bsky.actor.getProfiles"
_DOMAIN_HANDLE = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"


@register
class BlueskyConnector(base.Connector):
    platform = "bluesky"
    display_name = "Bluesky"
    public_base_url = BLUESKY_PUBLIC_APPVIEW
    # A domain handle (name.bsky.social) or a did:plc: / did:web: identifier.
    handle_pattern = re.compile(
        rf"^(?:{_DOMAIN_HANDLE}|did:plc:[a-z2-7]{{24}}|did:web:{_DOMAIN_HANDLE})$"
    )
    drops_at_sign = True
    profile_links = (
        base.profile_link(
            ("bsky.app",),
            r"profile/(?P<handle>[^/?#]+)",
            tabs=("followers", "follows", "known-followers", "lists", "feed"),
        ),
    )
    profile_hosts = ("bsky.app",)
    profile_link_forms = "https://bsky.app/profile/<handle>"
    batch_size = 25
    state_option = "account_ids"
    rate_limit_reset_headers = ("ratelimit-reset",)
    rate_limit_remaining_headers = ("ratelimit-remaining",)

    def __init__(
        self,
        base_url: str = BLUESKY_PUBLIC_APPVIEW,
        *,
        account_ids: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        """``account_ids``: roster handle -> DID, as earlier landings read them."""
        super().__init__(base_url, **options)
        self._dids = {handle.lower(): did for handle, did in (account_ids or {}).items()}

    @classmethod
    def clean_handle(cls, handle: str) -> str:
        # Handles are domain names (case-insensitive) and DIDs lowercase: stored lowercase.
        return super().clean_handle(handle).lower()

    def extract(self, handles: Sequence[str]) -> base.ExtractResult:
        return base.extract_with_follow_up(
            super().extract,
            handles,
            _left_out_of_batch,
            lambda handle: self._dids.pop(handle.lower(), None),
        )

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        # The xrpc lexicon repeats the parameter rather than joining values with commas.
        return httpx.Request(
            "GET",
            self.base_url + GET_PROFILES_PATH,
            params=[("actors", self._dids.get(handle.lower(), handle)) for handle in handles],
            headers={"Accept": "application/json"},
        )

    @classmethod
    def body_is_error(cls, document: Any) -> bool:
        # Unknown actors are left out of ``profiles``: a reply without the list (none, or
        # null) says nothing of any actor, where read as an empty list it made every
        # account not found. It is garbled, as is a reply that is no JSON object.
        return (
            not isinstance(document, dict)
            or "error" in document
            or not isinstance(document.get("profiles"), list)
        )

    @classmethod
    def parse(cls, response: base.RawResponse) -> list[base.AccountObservation]:
        reply = base.read_reply(response)
        if isinstance(reply, list):
            return reply
        profiles = reply.get("profiles")
        if not isinstance(profiles, list):
            return base.observations_without_counts(response, base.AccountStatus.ERROR)
        by_key = base.keyed(
            (
                (key.casefold() if isinstance(key, str) else None, profile)
                for profile in profiles
                if isinstance(profile, dict)
                for key in (profile.get("handle"), profile.get("did"))
            ),
            figures=_figures,
        )
        requested = response.requested_handles
        actors = _asked_as(response) or list(requested)
        _match_invalid_handle(actors, profiles, by_key)
        # Learned DIDs the batch did not answer for were asked by handle (see extract): the
        # batch says nothing about them.
        left_out = set(_left_out_of_batch(response))
        observations = []
        for handle, actor in zip(requested, actors, strict=True):
            if handle in left_out:
                continue
            profile = by_key.get(actor.casefold())
            if profile is base.ANSWERED_TWICE:
                observations.append(base.answered_twice(response, handle))
                continue
            if profile is None:
                observations.append(
                    base.observation_without_counts(response, handle, base.AccountStatus.NOT_FOUND)
                )
                continue
            try:
                followers = base.count_value(profile, "followersCount")
                following = base.count_value(profile, "followsCount")
                posts = base.count_value(profile, "postsCount")
            except base.UnreadableCount as problem:
                observations.append(base.unreadable_counts(response, handle, problem))
                continue
            observations.append(
                base.counted_observation(
                    response,
                    handle,
                    profile.get("did"),
                    followers=followers,
                    following=following,
                    posts=posts,
                    hidden=base.hidden_count(profile, "followersCount"),
                )
            )
        return observations


def _asked_as(response: base.RawResponse) -> list[str]:
    """The actors a request asked for, one per requested handle in its order: a DID where
    one was learned, else the handle itself."""
    actors = parse_qs(urlsplit(response.request_url).query).get("actors", [])
    return actors if len(actors) == len(response.requested_handles) else []


def _left_out_of_batch(response: base.RawResponse) -> list[str]:
    """The handles a batch asked for by a learned DID and got no profile for (an account
    deleted, or the handle now another account's): each is asked for by handle instead."""
    if response.status_code != 200:
        return []
    document = base.json_document(response.body)
    profiles = document.get("profiles") if isinstance(document, dict) else None
    if not isinstance(profiles, list):
        return []
    answered = {
        profile["did"].casefold()
        for profile in profiles
        if isinstance(profile, dict) and isinstance(profile.get("did"), str)
    }
    return [
        handle
        for handle, actor in zip(
            response.requested_handles,
            _asked_as(response) or response.requested_handles,
            strict=True,
        )
        if actor.startswith("did:")
        and actor.casefold() != handle.casefold()
        and actor.casefold() not in answered
    ]


# What the AppView sends as the handle of a profile whose handle no longer verifies (its
# DID document and its domain disagree): the DID and counts are there, the name is not.
INVALID_HANDLE = "handle.invalid"


def _match_invalid_handle(
    actors: Sequence[str], profiles: list[Any], by_key: dict[str, Any]
) -> None:
    """Give the one actor asked by handle that no profile names the one profile sent as
    ``handle.invalid`` whose DID no actor asked for: the AppView answers only for actors
    asked, so that profile is that actor's (it was called not found, and its DID never
    learned). With more than one of either, which is whose is unknown: none is matched."""
    asked = {actor.casefold() for actor in actors}
    unnamed = [
        actor for actor in actors if not actor.startswith("did:") and actor.casefold() not in by_key
    ]
    invalid = [
        profile
        for profile in profiles
        if isinstance(profile, dict)
        and profile.get("handle") == INVALID_HANDLE
        and isinstance(profile.get("did"), str)
        and profile["did"].casefold() not in asked
    ]
    if len(unnamed) == 1 and len(invalid) == 1:
        by_key[unnamed[0].casefold()] = invalid[0]


def _figures(profile: dict[str, Any]) -> tuple[object, ...]:
    """What two entries of one profile must agree on to be one answer."""
    return tuple(
        profile.get(key) for key in ("did", "followersCount", "followsCount", "postsCount")
    )
