"""Facts of the domain shared by every layer, kept import-free so DAG files can use them."""

from __future__ import annotations

# Every platform the warehouse knows (roster columns, raw rows, dim_platform).
PLATFORMS: tuple[str, ...] = (
    "x",
    "bluesky",
    "mastodon",
    "youtube",
    "facebook",
    "instagram",
    "linkedin",
    "threads",
)

# Platforms with a connector, extracted by platform_metrics. Threads profile lookup needs
# the threads_profile_discovery permission, which Meta grants case by case: a token
# without it stops the Threads extract with an error naming it (import its counts instead).
API_PLATFORMS: tuple[str, ...] = (
    "bluesky",
    "x",
    "mastodon",
    "youtube",
    "facebook",
    "instagram",
    "linkedin",
    "threads",
)

# The 11 sectors of the Global Industry Classification Standard.
GICS_SECTORS: tuple[str, ...] = (
    "Energy",
    "Materials",
    "Industrials",
    "Consumer Discretionary",
    "Consumer Staples",
    "Health Care",
    "Financials",
    "Information Technology",
    "Communication Services",
    "Utilities",
    "Real Estate",
)
