"""Platform connectors: one module per platform, shared behaviour in :mod:`.base`."""

from __future__ import annotations

from typing import Any

from social_leadership.domain import API_PLATFORMS, PLATFORMS
from social_leadership.platforms.base import (
    AccountObservation,
    AccountStatus,
    Connector,
    ExtractResult,
    PlatformError,
    RawResponse,
)
from social_leadership.platforms.bluesky import BlueskyConnector
from social_leadership.platforms.graph import FacebookConnector, InstagramConnector
from social_leadership.platforms.linkedin import LinkedInConnector
from social_leadership.platforms.mastodon import MastodonConnector
from social_leadership.platforms.threads import ThreadsConnector
from social_leadership.platforms.x import XConnector
from social_leadership.platforms.youtube import YouTubeConnector

IMPLEMENTED_PLATFORMS: tuple[str, ...] = API_PLATFORMS


CONNECTOR_CLASSES: dict[str, type[Connector]] = {
    "bluesky": BlueskyConnector,
    "x": XConnector,
    "mastodon": MastodonConnector,
    "youtube": YouTubeConnector,
    "facebook": FacebookConnector,
    "instagram": InstagramConnector,
    "linkedin": LinkedInConnector,
    "threads": ThreadsConnector,
}


def connector_class(platform: str) -> type[Connector]:
    """The connector class for ``platform`` (its ``parse`` re-reads landed responses)."""
    try:
        return CONNECTOR_CLASSES[platform]
    except KeyError:
        raise PlatformError(
            f"{platform}: no connector is implemented (implemented: "
            f"{', '.join(IMPLEMENTED_PLATFORMS)})"
        ) from None


def build_connector(
    platform: str,
    base_url: str,
    credentials: str | None = None,
    login: str | None = None,
    **options: Any,
) -> Connector:
    """The connector for ``platform`` from its Airflow connection's fields: ``credentials``
    is the token or key (connection password), ``login`` the caller's own account where the
    API needs one (Instagram business user id). ``options`` go to the connector
    (``max_wait_seconds``, ``sleep``, ``client``, Mastodon ``account_ids``, ...)."""
    if platform == "bluesky":
        return BlueskyConnector(base_url, **options)
    if platform == "x":
        return XConnector(base_url, bearer_token=credentials, **options)
    if platform == "mastodon":
        return MastodonConnector(base_url, access_token=credentials, **options)
    if platform == "youtube":
        return YouTubeConnector(base_url, api_key=credentials, **options)
    if platform == "facebook":
        return FacebookConnector(base_url, access_token=credentials, **options)
    if platform == "instagram":
        return InstagramConnector(base_url, access_token=credentials, ig_user_id=login, **options)
    if platform == "linkedin":
        return LinkedInConnector(base_url, access_token=credentials, **options)
    if platform == "threads":
        return ThreadsConnector(base_url, access_token=credentials, **options)
    if platform in PLATFORMS:
        raise PlatformError(
            f"{platform}: no connector is implemented (implemented: "
            f"{', '.join(IMPLEMENTED_PLATFORMS)}); import its data from a file instead"
        )
    raise PlatformError(f"unknown platform {platform!r} (known: {', '.join(PLATFORMS)})")


__all__ = [
    "IMPLEMENTED_PLATFORMS",
    "PLATFORMS",
    "AccountObservation",
    "AccountStatus",
    "BlueskyConnector",
    "Connector",
    "ExtractResult",
    "FacebookConnector",
    "InstagramConnector",
    "LinkedInConnector",
    "MastodonConnector",
    "PlatformError",
    "RawResponse",
    "ThreadsConnector",
    "XConnector",
    "YouTubeConnector",
    "build_connector",
    "connector_class",
]
