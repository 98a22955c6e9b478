"""One count formatter for the summary, the report's tables and its chart axes."""

from __future__ import annotations

import pytest

from social_leadership.formatting import ELISION, compact_count, counted, shortened
from social_leadership.reports.render import NO_VALUE, compact

# No half (0.5, 1250): the copies rounded it to even, as Python's format does.
VALUES = [0, 7, 999, 999.4, 1000, 1234, 99_950, 1_234_567, 2_500_000_000, -1500, -12, 0.4]


def _as_written_before(value, scaled, whole):
    """The three copies this replaced (summary, render.compact, charts._compact)."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:{scaled}}{unit}"
    return f"{value:{whole}}"


@pytest.mark.parametrize("value", VALUES)
def test_the_three_styles_print_what_their_copies_did(value):
    assert compact_count(value) == _as_written_before(float(value), ".1f", ".0f")
    assert compact(value) == _as_written_before(value, ".1f", ".0f")
    assert compact_count(value, scaled="g", whole="g") == _as_written_before(value, "g", "g")


def test_examples_and_missing_values():
    assert compact_count(1_234_567) == "1.2M"
    assert compact_count(None) == "-"
    assert compact(None) == NO_VALUE
    assert compact_count(1e6, scaled="g", whole="g") == "1M"


def test_a_half_rounds_up_as_readers_round_it():
    # A median reach of 458.5 read "458", and 1,250 followers "1.2k" (half to even).
    assert [compact_count(v) for v in (0.5, 2.5, 458.5, 459.5, 1250, -2.5, -1250)] == [
        "1",
        "3",
        "459",
        "460",
        "1.3k",
        "-3",
        "-1.3k",
    ]
    assert compact(458.5) == "459"
    # A chart axis ("g") shows the number as it is.
    assert compact_count(2.5, scaled="g", whole="g") == "2.5"


def test_a_count_that_rounds_to_a_thousand_of_its_unit_is_written_in_the_next():
    assert [compact_count(v) for v in (999.7, 999_950, -999_950, 999_960_000)] == [
        "1.0k",
        "1.0M",
        "-1.0M",
        "1.0B",
    ]
    assert compact_count(5e12) == "5000.0B"
    assert compact_count(999_950, scaled="g", whole="g") == "999.95k"
    assert [compact_count(v) for v in (float("nan"), float("inf"))] == ["nan", "inf"]


@pytest.mark.parametrize("limit", [40, 61, 100, 299, 500])
def test_a_long_message_keeps_its_start_and_end_within_the_limit(limit):
    words = " ".join(f"word{n}" for n in range(200))
    message = f"start here: {words}; fix it this way"

    short = shortened(message, limit)

    assert len(short) <= limit
    head, tail = short.split(ELISION)
    assert message.startswith(head)
    assert message.endswith(tail)
    assert short.startswith("start")
    assert short.endswith("way")
    # Cut at words: no part of a word on either side of the elision.
    assert message[len(head)] == " "
    assert message[len(message) - len(tail) - 1] == " "


def test_a_message_within_the_limit_is_left_whole():
    assert shortened("x" * 50, 50) == "x" * 50


def test_a_count_of_one_takes_the_singular():
    assert [counted(n, "row") for n in (0, 1, 2)] == ["0 rows", "1 row", "2 rows"]
    assert counted(1, "country", "countries") == "1 country"
    assert counted(3, "country", "countries") == "3 countries"
