"""Platform connectors: one module per platform, shared behaviour in :mod:`.base`."""

from __future__ import annotations

from typing import Any

from social_leadership.platforms.base import (
    PLATFORMS,
    AccountObservation,
    AccountStatus,
    Connector,
    ExtractResult,
    PlatformError,
    RawResponse,
)
from social_leadership.platforms.bluesky import BlueskyConnector
from social_leadership.platforms.x import XConnector

IMPLEMENTED_PLATFORMS: tuple[str, ...] = ("x", "bluesky")


CONNECTOR_CLASSES: dict[str, type[Connector]] = {"bluesky": BlueskyConnector, "x": XConnector}


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
    platform: str, base_url: str, credentials: str | None = None, **options: Any
) -> Connector:
    """The connector for ``platform``; ``credentials`` is the X bearer token (unused for
    Bluesky's public AppView). ``options`` go to the connector (``max_wait_seconds``,
    ``sleep``, ``client``, ...)."""
    if platform == "bluesky":
        return BlueskyConnector(base_url, **options)
    if platform == "x":
        return XConnector(base_url, bearer_token=credentials, **options)
    if platform in PLATFORMS:
        raise PlatformError(
            f"{platform}: no connector is implemented yet (implemented: "
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
    "PlatformError",
    "RawResponse",
    "XConnector",
    "build_connector",
    "connector_class",
]
