"""Deterministic synthetic follower, following and post counts: what the sandbox API serves
and what the demo history (:mod:`.follower_history`) holds for the days before.

Every number here is invented. Each account gets a base size and a growth rate from a
hash of platform and handle, so a day's counts are the same on every machine and run, and
consecutive days continue one smooth curve (history never jumps when the sandbox restarts).
"""

from __future__ import annotations

import hashlib
import math
from datetime import date

# Day zero of every synthetic curve; days before it extrapolate the same curve backwards.
CURVE_ORIGIN = date(2025, 1, 1)

SYNTHETIC_FOLLOWERS_MIN = 200
SYNTHETIC_FOLLOWERS_MAX = 2_000_000

# The real accounts named in the founding brief get magnitudes of their actual order, so
# demo charts look plausible; the counts are still synthetic.
WELL_KNOWN_ACCOUNTS: dict[tuple[str, str], tuple[int, int, int]] = {
    ("x", "elonmusk"): (210_000_000, 1_100, 60_000),
    ("x", "satyanadella"): (3_400_000, 300, 2_300),
    ("x", "manomama"): (21_000, 1_800, 28_000),
    ("x", "joekaeser"): (64_000, 250, 4_100),
    ("facebook", "profile:zuck"): (119_000_000, 0, 1_600),
    ("linkedin", "satyanadella"): (11_000_000, 0, 900),
}


def _unit_values(platform: str, handle: str) -> list[float]:
    """Eight numbers in [0, 1) fixed for the account (hashlib: stable across processes)."""
    digest = hashlib.sha256(f"{platform}\x00{handle.casefold()}".encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(0, 32, 4)]


def _log_uniform(unit: float, low: float, high: float) -> float:
    return math.exp(math.log(low) + unit * (math.log(high) - math.log(low)))


def synthetic_metrics(platform: str, handle: str, day: date) -> tuple[int, int, int]:
    """``(followers, following, posts)`` of one account on ``day``."""
    u = _unit_values(platform, handle)
    known = WELL_KNOWN_ACCOUNTS.get((platform, handle.casefold()))
    if known is not None:
        base_followers, base_following, base_posts = (float(v) for v in known)
        daily_growth = 0.0002 + 0.0006 * u[1]
        posts_per_day = 1.0 + 20.0 * u[5] if base_posts > 10_000 else 0.2 + 2.0 * u[5]
    else:
        base_followers = _log_uniform(u[0], SYNTHETIC_FOLLOWERS_MIN, SYNTHETIC_FOLLOWERS_MAX)
        # Mostly growing accounts, a few slowly shrinking ones.
        daily_growth = -0.0004 + 0.0030 * u[1]
        base_following = _log_uniform(u[2], 20, 3_000)
        base_posts = _log_uniform(u[3], 20, 20_000)
        posts_per_day = 6.0 * u[5] ** 2
    days = (day - CURVE_ORIGIN).days
    followers = round(base_followers * math.exp(daily_growth * days))
    following_per_day = 0.5 * u[6] if base_following > 0 else 0.0
    following = max(0, round(base_following + following_per_day * days))
    # floor of a non-decreasing function, clamped at zero, never decreases day over day.
    posts = max(0, math.floor(base_posts + posts_per_day * days))
    return max(0, followers), following, posts


def synthetic_account_id(platform: str, handle: str) -> str:
    """A stable numeric account id (X-style snowflake digits)."""
    digest = hashlib.sha256(f"id\x00{platform}\x00{handle.casefold()}".encode()).digest()
    return str(10**17 + int.from_bytes(digest[:8], "big") % (9 * 10**17))


def synthetic_did(handle: str) -> str:
    """A stable ``did:plc:`` identifier for a Bluesky handle (24 base32 characters)."""
    digest = hashlib.sha256(f"did\x00{handle.casefold()}".encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    number = int.from_bytes(digest[:15], "big")
    chars = [alphabet[(number >> (5 * i)) & 31] for i in range(24)]
    return "did:plc:" + "".join(reversed(chars))
