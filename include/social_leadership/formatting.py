"""Numbers as people read them, shared by the run summary and the weekly report."""

from __future__ import annotations

from decimal import Decimal

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
    for unit, size in _UNITS:
        if abs(number) >= size:
            return f"{number / size:{scaled}}{unit}"
    return f"{number:{whole}}"
