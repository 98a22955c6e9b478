"""What the DAG files share: assets, default arguments, the warehouse pool, endpoints.

Kept import-light (no warehouse or network work at import time): the scheduler parses
DAG files often.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

import pendulum
from airflow.sdk import Asset

from social_leadership.domain import API_PLATFORMS

# Every task that writes the DuckDB warehouse runs in this one-slot pool (one writer).
WAREHOUSE_POOL = "duckdb_warehouse"


class PlatformEndpoint(NamedTuple):
    base_url: str | None
    credentials: str | None
    login: str | None = None


START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

DEFAULT_ARGS = {
    "owner": "social-leadership",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}

# Assets link producers to consumers: warehouse_build runs when either raw input changes.
RAW_PLATFORM_METRICS = Asset(
    name="raw_platform_metrics", uri="duckdb://warehouse/raw/platform_metrics"
)
RAW_SURVEY_RESULTS = Asset(name="raw_survey_results", uri="duckdb://warehouse/raw/survey_results")
SERVING_MARTS = Asset(name="serving_marts", uri="duckdb://serving/marts")

__all__ = [
    "API_PLATFORMS",
    "DEFAULT_ARGS",
    "RAW_PLATFORM_METRICS",
    "RAW_SURVEY_RESULTS",
    "SERVING_MARTS",
    "START_DATE",
    "WAREHOUSE_POOL",
    "platform_endpoint",
]

PUBLIC_BASE_URLS = {
    "bluesky": "https://public.api.bsky.app",
    # Each account is asked of its own instance (see platforms/mastodon.py).
    "mastodon": "https://{instance}",
    "x": "https://api.x.com",
    "youtube": "https://www.googleapis.com",
    "facebook": "https://graph.facebook.com",
    "instagram": "https://graph.facebook.com",
    "linkedin": "https://api.linkedin.com",
    "threads": "https://graph.threads.net",
}


def platform_endpoint(platform: str) -> PlatformEndpoint:
    """Base URL and credential from the Airflow connection ``slw_<platform>``.

    ``host`` holds the base URL, ``password`` the token or API key and ``login`` the
    caller's own account id where the API needs one (Instagram). Without a connection, a
    platform that needs no credential (Bluesky, and Mastodon, asked of each account's home
    instance) uses its public URL; the others are reported as not configured instead of
    failing the run.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(f"slw_{platform}")
    except AirflowNotFoundException:
        if platform in ("bluesky", "mastodon"):
            return PlatformEndpoint(PUBLIC_BASE_URLS[platform], None)
        return PlatformEndpoint(None, None)
    host = connection.host or PUBLIC_BASE_URLS.get(platform)
    if host and "://" not in host:
        scheme = connection.schema or "https"
        port = f":{connection.port}" if connection.port else ""
        host = f"{scheme}://{host}{port}"
    return PlatformEndpoint(host, connection.password or None, connection.login or None)
