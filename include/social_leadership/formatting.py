"""Numbers and messages as people read them, shared by the run summary, the weekly report
and the alerts."""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal

_UNITS = (("B", 1e9), ("M", 1e6), ("k", 1e3))


def compact_count(
    value: float | Decimal | None, *, missing: str = "-", scaled: str = ".1f", whole: str = ".0f"
) -> str:
    """A count in thousands (k), millions (M) or billions (B): 1234567 -> ``1.2M``.

    ``scaled`` formats the number in its unit, ``whole`` a count under a thousand (a chart
    axis wants ``g``: ``1M``, not ``1.0M``); ``missing`` stands for None.
    """
    if value is None:
        return missing
    number = float(value)
    if not math.isfinite(number):
        return f"{number:{whole}}"
    shown = _rounded(number, whole)
    if abs(float(shown)) < 1000:
        return shown
    # From the smallest unit up, the first in which the number, as written, is under 1000
    # (999,950 is 1.0M, not 1000.0k); the largest unit takes any number.
    *smaller, (largest, largest_size) = reversed(_UNITS)
    for unit, size in smaller:
        shown = _rounded(number / size, scaled)
        if abs(float(shown)) < 1000:
            return f"{shown}{unit}"
    return f"{_rounded(number / largest_size, scaled)}{largest}"


def _rounded(number: float, spec: str) -> str:
    """``number`` formatted by ``spec``; a fixed-point one (``.1f``) rounds half up, as
    readers do (Python's rounds half to even: a median reach of 458.5 read "458")."""
    places = re.fullmatch(r"\.(\d)f", spec)
    if places is None:
        return f"{number:{spec}}"
    return f"{half_up(number, int(places[1])):{spec}}"


def half_up(value: float, places: int) -> Decimal:
    """``value`` rounded half away from zero, as readers round (Python's format rounds half
    to even: 12.5 % read "12%")."""
    return Decimal(str(float(value))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def whole_percent(value: float | Decimal | None, *, missing: str = "-") -> str:
    """A share in whole percent, rounded half up; never 0 % or 100 % unless it is exactly
    that (499 of 500 leaders active read "100%"). ``missing`` stands for None."""
    if value is None:
        return missing
    whole = half_up(float(value), 0)
    if whole >= 100 and value < 100:
        return ">99%"
    if whole <= 0 < value:
        return "<1%"
    return f"{whole:.0f}%"


def first_line(exc: BaseException) -> str:
    """An error's first line (a one-line reason for a message), or its type's name when it
    says nothing."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and its noun in the number it takes: ``1 row``, ``2 rows``, ``0 rows``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


ELISION = " ... "


def shortened(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: its start and its end (where a message
    usually says how to fix what it names), each cut at a word when one ends near, joined by
    :data:`ELISION`."""
    if len(text) <= limit:
        return text
    room = max(limit - len(ELISION), 2)
    head, tail = text[: room * 2 // 3], text[len(text) - (room - room * 2 // 3) :]
    near = room // 10
    if " " in head[-near:]:
        head = head.rsplit(" ", 1)[0]
    if " " in tail[:near]:
        tail = tail.split(" ", 1)[1]
    return f"{head}{ELISION}{tail}"[:limit]


def display_width(text: str) -> int:
    """The columns ``text`` takes on a terminal: two for a wide character (Chinese, Japanese,
    Korean), none for a mark drawn on the character before it (Thai vowels and tones, an
    accent given apart) or an invisible format character (an emoji's joiner), one for any
    other."""
    return sum(
        0
        if unicodedata.category(char) in ("Mn", "Me", "Cf")
        else 2
        if unicodedata.east_asian_width(char) in ("W", "F")
        else 1
        for char in text
    )
