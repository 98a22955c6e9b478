"""Meta's Graph connectors (Facebook, Instagram, Threads): they read the usage headers and
stop before the app's budget is spent; a Facebook profile (not a Page) is import-only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from social_leadership.platforms import build_connector, connector_class
from social_leadership.platforms.base import AccountStatus, Connector, PlatformError
from social_leadership.platforms.graph import graph_usage
from social_leadership.roster import Account, Executive, Roster, load_roster
from social_leadership.sandbox.server import SANDBOX_IG_USER_ID, SandboxServer
from social_leadership.settings import BUNDLED_DATA_DIR

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
TOKEN = "graph-token-5e2a"
GRAPH = ("facebook", "instagram", "threads")
COUNT = 30
BUDGET = 20  # requests per window in the sandbox: 19 replies reach 95 %


def handle(platform: str, number: int) -> str:
    return f"acct.{platform[:2]}{number:03d}"


def roster(*extra: Account) -> Roster:
    executives = [
        Executive(f"e{n:03d}", f"Exec {n}", "CEO", "Synthetic Co", "DE", "Energy", True)
        for n in range(COUNT)
    ]
    accounts = [
        Account(f"e{n:03d}", platform, handle(platform, n))
        for n in range(COUNT)
        for platform in GRAPH
    ]
    return Roster(executives=executives, accounts=[*accounts, *extra])


def make(platform: str, base_url: str, **options: object) -> Connector:
    login = SANDBOX_IG_USER_ID if platform == "instagram" else None
    options.setdefault("sleep", lambda _: None)
    return build_connector(platform, base_url, TOKEN, login, **options)  # type: ignore[arg-type]


@pytest.fixture
def small_budget() -> Iterator[SandboxServer]:
    limits = dict.fromkeys(GRAPH, (BUDGET, 3600))
    with SandboxServer(roster(), token=TOKEN, clock=lambda: NOW, limits=limits) as server:
        yield server


@pytest.mark.parametrize("platform", GRAPH)
def test_usage_at_the_threshold_stops_the_run_before_the_budget_is_spent(
    platform: str, small_budget: SandboxServer
) -> None:
    handles = [handle(platform, n) for n in range(COUNT)]

    result = make(platform, small_budget.base_url).extract(handles)

    # Reply 19 reports 95 % of the budget used: request 20 (the last the budget allows)
    # and the rest are left for a later run, and no request meets the throttle.
    assert result.requests_sent == BUDGET - 1
    assert sorted(result.deferred_handles) == sorted(handles[BUDGET - 1 :])
    statuses = {o.status for r in result.responses for o in connector_class(platform).parse(r)}
    assert statuses == {AccountStatus.OK}
    assert "95" in (result.message or "")
    assert "usage" in (result.message or "").casefold()


@pytest.mark.parametrize("platform", ["facebook", "instagram"])
def test_the_business_use_case_header_alone_also_stops_the_run(platform: str) -> None:
    limits = dict.fromkeys(GRAPH, (BUDGET, 3600))
    with SandboxServer(
        roster(),
        token=TOKEN,
        clock=lambda: NOW,
        limits=limits,
        graph_usage_headers=("X-Business-Use-Case-Usage",),
    ) as server:
        result = make(platform, server.base_url).extract(
            [handle(platform, n) for n in range(COUNT)]
        )

    assert result.requests_sent == BUDGET - 1
    assert "X-Business-Use-Case-Usage" in (result.message or "")


def test_usage_below_the_threshold_lets_every_account_through() -> None:
    with SandboxServer(roster(), token=TOKEN, clock=lambda: NOW) as server:
        result = make("facebook", server.base_url).extract(
            [handle("facebook", n) for n in range(COUNT)]
        )

    assert result.is_complete
    assert result.requests_sent == COUNT


@pytest.mark.parametrize(
    ("headers", "highest"),
    [
        ({"X-App-Usage": '{"call_count": 12, "total_cputime": 96, "total_time": 40}'}, 96),
        (
            {
                "X-Business-Use-Case-Usage": json.dumps(
                    {
                        "1234": [
                            {"type": "pages", "call_count": 3, "total_cputime": 5, "total_time": 9},
                            {"type": "pages", "call_count": 97, "total_time": 1},
                        ]
                    }
                )
            },
            97,
        ),
        ({"X-App-Usage": "not json", "X-Business-Use-Case-Usage": "[]"}, None),
        ({"X-App-Usage": '{"call_count": "lots", "total_time": true}'}, None),
        ({"X-App-Usage": '{"call_count": "96", "total_cputime": "12.5", "total_time": 3}'}, 96),
        ({"X-App-Usage": '{"call_count": "97%", "total_time": "NaN"}'}, 97),
        ({"X-App-Usage": '{"call_count": "inf", "total_time": 4}'}, 4),
        ({}, None),
    ],
)
def test_usage_headers_are_read_as_percentages(
    headers: dict[str, str], highest: float | None
) -> None:
    usage = graph_usage(httpx.Headers(headers))

    assert (usage.percent if usage else None) == highest


def test_a_custom_threshold_is_honoured(small_budget: SandboxServer) -> None:
    connector = make("facebook", small_budget.base_url, usage_stop_percent=50)

    result = connector.extract([handle("facebook", n) for n in range(COUNT)])

    assert result.requests_sent == BUDGET // 2


# --- a Facebook profile is import-only -----------------------------------------------


def test_a_profile_is_written_with_its_marker_and_never_requested() -> None:
    profile = Account("e000", "facebook", "profile:zuck")
    with SandboxServer(roster(profile), token=TOKEN, clock=lambda: NOW) as server:
        result = make("facebook", server.base_url).extract(["profile:zuck", handle("facebook", 0)])
        # The sandbox does not play a profile as a Page either.
        page = httpx.get(
            f"{server.base_url}/v21.0/zuck",
            params={"fields": "followers_count"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )

    assert result.requests_sent == 1
    assert [r.requested_handles for r in result.responses] == [(handle("facebook", 0),)]
    assert page.json()["error"]["code"] == 100


def test_the_roster_accepts_the_profile_marker_and_the_bundled_zuck_is_a_profile() -> None:
    facebook = connector_class("facebook")

    assert facebook.normalize_handle(" profile:zuck ") == "profile:zuck"
    assert facebook.is_import_only("profile:zuck")
    assert not facebook.is_import_only("zuck")
    with pytest.raises(ValueError, match="facebook"):
        facebook.normalize_handle("profile:")
    bundled = load_roster(BUNDLED_DATA_DIR / "roster" / "executives.csv")
    zuckerberg = [a for a in bundled.accounts if a.executive_id == "mark-zuckerberg"]
    assert zuckerberg == [Account("mark-zuckerberg", "facebook", "profile:zuck")]


# --- Instagram business discovery: the own id and the accounts looked up ------------------


def test_a_wrong_own_instagram_id_stops_the_run_naming_the_login() -> None:
    # Graph answers an own id it cannot read with code 100, subcode 33, for every account
    # alike: a configuration error, not a roster of accounts that are not found.
    handles = [handle("instagram", n) for n in range(3)]
    with SandboxServer(roster(), token=TOKEN, clock=lambda: NOW) as server:
        connector = build_connector(
            "instagram", server.base_url, TOKEN, "17841499999999999", sleep=lambda _: None
        )
        with pytest.raises(PlatformError) as raised:
            connector.extract(handles)

        assert server.requests_to("/v21.0/17841499999999999") == 1
    message = str(raised.value)
    assert "17841499999999999" in message
    assert "login" in message
    assert "business" in message


def test_an_unknown_instagram_account_is_not_found_and_the_others_are_read() -> None:
    handles = [handle("instagram", 0), "not.in.roster", handle("instagram", 1)]
    with SandboxServer(roster(), token=TOKEN, clock=lambda: NOW) as server:
        result = make("instagram", server.base_url).extract(handles)

    parse = connector_class("instagram").parse
    seen = {o.account_handle: o.status for r in result.responses for o in parse(r)}
    assert seen == {
        handles[0]: AccountStatus.OK,
        "not.in.roster": AccountStatus.NOT_FOUND,
        handles[2]: AccountStatus.OK,
    }
    assert result.is_complete
