"""The platform registry is the one statement of each platform's facts: the platform lists,
the roster's handle check, build_connector, the Airflow endpoints and the dbt seed all
follow it, and the dbt project repeats no list of platforms."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from social_leadership import domain, roster
from social_leadership.platforms import build_connector
from social_leadership.platforms.base import (
    AccountObservation,
    ConnectionField,
    Connector,
    PlatformError,
    RawResponse,
)
from social_leadership.platforms.registry import (
    SEED_PATH,
    connector_class,
    main,
    register,
    registered,
    seed_drift,
    seed_text,
    unregister,
)
from social_leadership.settings import DBT_PROJECT_DIR

# The roster's column order, which the bundled roster file is written in.
BUILT_IN = ("x", "bluesky", "mastodon", "youtube", "facebook", "instagram", "linkedin", "threads")


def test_the_registry_holds_the_built_in_platforms_in_roster_column_order() -> None:
    assert tuple(c.platform for c in registered()) == BUILT_IN
    assert tuple(domain.PLATFORMS) == BUILT_IN
    assert tuple(domain.API_PLATFORMS) == BUILT_IN
    assert tuple(roster.ACCOUNT_COLUMNS) == BUILT_IN
    assert roster.roster_columns() == roster.ROSTER_COLUMNS


# --- the dbt project against the registry ------------------------------------------------


def test_the_platforms_seed_is_the_registry() -> None:
    assert seed_drift() == []
    assert SEED_PATH.read_text(encoding="utf-8") == seed_text()
    assert main(["--check"]) == 0


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (lambda text: text.replace("threads,Threads,api\n", ""), "threads is registered"),
        (lambda text: text + "myspace,MySpace,api\n", "myspace has a row"),
        (lambda text: text.replace("linkedin,LinkedIn,import", "linkedin,LinkedIn,api"), "says"),
    ],
)
def test_a_seed_that_drifts_from_the_registry_is_named(
    tmp_path: Path, edit: Any, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = tmp_path / "platforms.csv"
    seed.write_text(edit(seed_text()), encoding="utf-8")

    problems = seed_drift(seed)

    assert len(problems) == 1
    assert complaint in problems[0]
    assert main(["--check", "--seed", str(seed)]) == 1
    assert complaint in capsys.readouterr().err
    assert main(["--write-seed", "--seed", str(seed)]) == 0
    assert seed_drift(seed) == []


def test_the_seed_command_sees_the_registered_platforms(tmp_path: Path) -> None:
    # As CONTRIBUTING.md runs it, the package (`-m` of the registry module ran a second
    # copy of it, and Python warned so on every run).
    seed = tmp_path / "platforms.csv"
    command = [sys.executable, "-m", "social_leadership.platforms", "--seed", str(seed)]

    written = subprocess.run([*command, "--write-seed"], capture_output=True, text=True)
    checked = subprocess.run([*command, "--check"], capture_output=True, text=True)

    assert written.returncode == 0, written.stderr
    assert seed.read_text(encoding="utf-8") == SEED_PATH.read_text(encoding="utf-8")
    assert checked.returncode == 0, checked.stderr
    assert written.stderr == checked.stderr == ""


def _data_tests(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (test name, arguments) under a dbt YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("data_tests", "tests") and isinstance(value, list):
                for test in value:
                    if isinstance(test, dict):
                        yield from test.items()
            else:
                yield from _data_tests(value)
    elif isinstance(node, list):
        for item in node:
            yield from _data_tests(item)


def _platform_columns(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for model in document.get("models", []):
        for column in model.get("columns", []):
            if column["name"] == "platform":
                yield model["name"], column


def test_no_dbt_test_repeats_the_list_of_platforms() -> None:
    names = set(domain.PLATFORMS)
    listed = []
    for path in sorted((DBT_PROJECT_DIR / "models").rglob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for name, arguments in _data_tests(document):
            values = (arguments or {}).get("arguments", arguments or {}).get("values")
            if isinstance(values, Sequence) and names & set(values):
                listed.append(f"{path.name}: {name} {values}")
    assert listed == []


def test_every_mart_platform_column_is_checked_against_dim_platform() -> None:
    path = DBT_PROJECT_DIR / "models" / "marts" / "_marts__models.yml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    unchecked = []
    for model, column in _platform_columns(document):
        if model == "dim_platform":
            continue
        targets = [
            arguments["arguments"]["to"]
            for test in column.get("data_tests", [])
            if isinstance(test, dict)
            for name, arguments in test.items()
            if name == "relationships"
        ]
        if targets != ["ref('dim_platform')"]:
            unchecked.append(model)
    assert unchecked == []
    assert {model for model, _ in _platform_columns(document)} >= {
        "fct_executive_reach_daily",
        "fct_reach_by_country_sector_daily",
    }


# --- what every connector declares, and who reads it -------------------------------------


@pytest.mark.parametrize("platform", BUILT_IN)
def test_every_connector_declares_its_facts(platform: str) -> None:
    connector = connector_class(platform)

    assert connector.platform == platform
    assert connector.display_name
    assert connector.public_base_url.startswith("https://")
    assert connector.batch_size >= 1
    assert connector.follower_source in ("api", "import")
    assert isinstance(connector.handle_pattern, re.Pattern)
    for declared in connector.connection_fields:
        assert declared.source in ("password", "login", "extra")
        assert declared.meaning


def test_state_kept_between_runs_is_declared_where_it_exists() -> None:
    keeping = {c.platform: c.state_option for c in registered() if c.state_option}

    assert keeping == {
        "mastodon": "account_ids",
        "bluesky": "account_ids",
        "youtube": "account_ids",
    }


@pytest.mark.parametrize(
    ("platform", "written", "stored"),
    [
        ("x", " @JoeKaeser ", "JoeKaeser"),
        ("bluesky", "@Ada.BSKY.social", "ada.bsky.social"),
        ("mastodon", "@ann@mastodon.social", "ann@mastodon.social"),
        ("youtube", "@channel", "@channel"),
        ("facebook", "profile:zuck", "profile:zuck"),
        ("linkedin", "urn:li:organization:1337", "urn:li:organization:1337"),
    ],
)
def test_the_roster_validates_handles_with_the_connectors_pattern(
    platform: str, written: str, stored: str
) -> None:
    assert roster.normalize_handle(platform, written) == stored


@pytest.mark.parametrize(
    ("platform", "link", "stored"),
    [
        ("x", "https://x.com/JoeKaeser", "JoeKaeser"),
        ("x", "https://twitter.com/tim_cook?lang=en", "tim_cook"),
        ("x", "x.com/jack/", "jack"),
        ("x", "HTTPS://MOBILE.TWITTER.COM/jack/media", "jack"),
        ("bluesky", "https://bsky.app/profile/Ada.BSKY.social", "ada.bsky.social"),
        (
            "bluesky",
            "https://bsky.app/profile/did:plc:z72i7hdynmk6r22z27h6tvur",
            "did:plc:z72i7hdynmk6r22z27h6tvur",
        ),
        ("mastodon", "https://mastodon.social/@Gargron", "Gargron@mastodon.social"),
        ("mastodon", "https://social.example.org/@ann/", "ann@social.example.org"),
        # An account of another instance, as this one shows it: its home instance counts.
        ("mastodon", "https://mastodon.social/@bob@fosstodon.org", "bob@fosstodon.org"),
        ("mastodon", "https://fosstodon.org/users/carl", "carl@fosstodon.org"),
        ("mastodon", "https://mastodon.social/@Gargron/media", "Gargron@mastodon.social"),
        ("youtube", "https://www.youtube.com/@MrBeast", "@MrBeast"),
        ("youtube", "https://m.youtube.com/@MrBeast/videos", "@MrBeast"),
        (
            "youtube",
            "https://www.youtube.com/channel/UCX6OQ3DkcsbYNE6H8uQQuVA/featured",
            "UCX6OQ3DkcsbYNE6H8uQQuVA",
        ),
        ("facebook", "https://www.facebook.com/coca.cola/", "coca.cola"),
        ("facebook", "https://de-de.facebook.com/Siemens?ref=page", "Siemens"),
        ("facebook", "@Siemens", "Siemens"),
        ("instagram", "https://www.instagram.com/zuck/", "zuck"),
        ("instagram", "instagram.com/zuck?igsh=abc", "zuck"),
        ("instagram", "@zuck", "zuck"),
        ("threads", "https://www.threads.net/@zuck", "zuck"),
        ("threads", "https://www.threads.com/@zuck/media", "zuck"),
        ("threads", "@zuck", "zuck"),
        ("linkedin", "https://www.linkedin.com/in/satyanadella/", "satyanadella"),
        ("linkedin", "de.linkedin.com/in/joe-kaeser-123", "joe-kaeser-123"),
        ("linkedin", "https://www.linkedin.com/company/1035/about/", "urn:li:organization:1035"),
        ("linkedin", "https://www.linkedin.com/in/satya/details/experience/", "satya"),
        # Letters of another script, percent-encoded as a browser copies them.
        ("linkedin", "https://de.linkedin.com/in/j%C3%B6rg-m%C3%BCller-4b2a1", "jörg-müller-4b2a1"),
        ("youtube", "https://www.youtube.com/@S%C3%BCdwest", "@Südwest"),
        ("facebook", "https://www.facebook.com/Siemens/about", "Siemens"),
        ("bluesky", "https://bsky.app/profile/jay.bsky.team/followers", "jay.bsky.team"),
        ("instagram", "https://www.instagram.com/zuck/reels/", "zuck"),
        ("x", "x.com/jack/lists", "jack"),
        # A bare domain handle on a profile host's domain is a handle, no link.
        ("bluesky", "bsky.app", "bsky.app"),
        ("bluesky", "team.bsky.app", "team.bsky.app"),
    ],
)
def test_a_link_to_the_profile_page_is_read_as_its_handle(
    platform: str, link: str, stored: str
) -> None:
    assert roster.normalize_handle(platform, link) == stored


@pytest.mark.parametrize(
    ("platform", "link", "forms"),
    [
        ("x", "https://x.com/home", "https://x.com/<handle>"),
        ("x", "https://x.com/i/lists/1", "https://x.com/<handle>"),
        ("x", "https://x.com/compose/post", "https://x.com/<handle>"),
        ("x", "x.com/jobs", "https://x.com/<handle>"),
        # A post names its author, who may be someone else than the executive.
        ("x", "https://x.com/SomeoneElse/status/179", "https://x.com/<handle>"),
        (
            "facebook",
            "https://www.facebook.com/Siemens/posts/123",
            "https://www.facebook.com/<page>",
        ),
        ("facebook", "https://www.facebook.com/sharer/sharer.php?u=x", "profile:<name>"),
        ("bluesky", "https://bsky.app/profile/jay.bsky.team/post/3k", "bsky.app/profile/<handle>"),
        ("threads", "https://www.threads.net/@zuck/post/C1", "threads.net/@<username>"),
        ("bluesky", "https://bsky.app/", "https://bsky.app/profile/<handle>"),
        ("youtube", "https://www.youtube.com/c/MrBeast6000", "https://www.youtube.com/@<handle>"),
        ("youtube", "https://youtu.be/dQw4w9WgXcQ", "https://www.youtube.com/@<handle>"),
        ("facebook", "https://www.facebook.com/profile.php?id=4", "profile:<name>"),
        ("instagram", "https://www.instagram.com/p/Cxyz/", "https://www.instagram.com/<username>"),
        ("threads", "https://www.threads.net/zuck", "https://www.threads.net/@<username>"),
        # An organization's name in its link is not the id its URN needs.
        ("linkedin", "https://www.linkedin.com/company/microsoft/", "urn:li:organization:<id>"),
        # A member's internal id, from search results or Sales Navigator: no vanity name.
        ("linkedin", "https://www.linkedin.com/in/ACoAAA123xyz", "linkedin.com/in/<name>"),
    ],
)
def test_a_link_to_the_platform_naming_no_profile_is_an_error_saying_what_to_write(
    platform: str, link: str, forms: str
) -> None:
    with pytest.raises(
        ValueError, match=r"links to no .* profile|names the member by an"
    ) as raised:
        roster.normalize_handle(platform, link)
    assert forms in str(raised.value)
    assert repr(link) in str(raised.value)


def test_a_link_to_another_platform_is_no_handle() -> None:
    with pytest.raises(ValueError, match="not a valid instagram handle"):
        roster.normalize_handle("instagram", "https://x.com/zuck")
    with pytest.raises(ValueError, match="not a valid mastodon handle"):
        roster.normalize_handle("mastodon", "https://mastodon.social/about")
    # Other sites with /@name pages are no Mastodon instances.
    for link in ("https://medium.com/@joe", "https://www.youtube.com/@SiemensTV"):
        with pytest.raises(ValueError, match=r"is a link to .*, no Mastodon instance"):
            roster.normalize_handle("mastodon", link)


def test_a_handle_the_pattern_refuses_is_an_error_naming_the_platform() -> None:
    with pytest.raises(ValueError, match="not a valid x handle"):
        roster.normalize_handle("x", "far_too_long_for_x_names")
    with pytest.raises(ValueError, match="unknown platform 'myspace'"):
        roster.normalize_handle("myspace", "someone")


def test_build_connector_fills_the_declared_fields_from_the_connection() -> None:
    instagram = build_connector("instagram", "http://127.0.0.1:1", "token-12345", "1784")

    assert instagram._ig_user_id == "1784"  # type: ignore[attr-defined]
    with pytest.raises(PlatformError, match=r"instagram: the own business account id .*login"):
        build_connector("instagram", "http://127.0.0.1:1", "token-12345", None)
    with pytest.raises(PlatformError, match="unknown platform 'myspace'"):
        build_connector("myspace", "http://127.0.0.1:1")


# --- registering: mistakes fail at once, naming the class ---------------------------------


class _Declared(Connector):
    platform = "declared"
    display_name = "Declared"
    public_base_url = "https://api.declared.example"
    handle_pattern = re.compile(r"^[a-z]+$")
    batch_size = 10
    connection_fields = (ConnectionField("api_token", "password", "a token", required=True),)

    def __init__(self, base_url: str, api_token: str | None = None, **options: Any) -> None:
        super().__init__(base_url, **options)
        self.api_token = api_token

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        return httpx.Request("GET", self.base_url)

    @classmethod
    def parse(cls, response: RawResponse) -> list[AccountObservation]:
        return []


@pytest.fixture
def cleanup() -> Iterator[None]:
    yield
    unregister("declared")


@pytest.mark.usefixtures("cleanup")
def test_a_complete_declaration_registers_and_reaches_every_reader() -> None:
    register(_Declared)

    assert "declared" in domain.PLATFORMS
    assert roster.ACCOUNT_COLUMNS[-1] == "declared"
    built = build_connector("declared", "http://127.0.0.1:1", "token-12345")
    assert isinstance(built, _Declared)
    assert built.api_token == "token-12345"
    with pytest.raises(PlatformError, match=r"declared: a token is required \(connection password"):
        build_connector("declared", "http://127.0.0.1:1")
    unregister("declared")
    assert "declared" not in domain.PLATFORMS


@pytest.mark.usefixtures("cleanup")
@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"handle_pattern": "^[a-z]+$"}, "handle_pattern"),
        ({"batch_size": 0}, "batch_size"),
        ({"platform": "Not A Name"}, "platform must be a name"),
        ({"follower_source": "guess"}, "follower_source"),
        (
            {"connection_fields": (ConnectionField("secret", "password", "a secret"),)},
            "no 'secret'",
        ),
        ({"state_option": "remembered"}, "no 'remembered'"),
    ],
)
def test_an_incomplete_declaration_fails_naming_the_class(
    override: dict[str, Any], complaint: str
) -> None:
    broken = type("Broken", (_Declared,), override)

    with pytest.raises(TypeError, match=complaint) as raised:
        register(broken)
    assert "Broken" in str(raised.value)


@pytest.mark.usefixtures("cleanup")
def test_a_platform_name_is_registered_once() -> None:
    register(_Declared)
    other = type("Other", (_Declared,), {})

    with pytest.raises(ValueError, match="already registered by _Declared"):
        register(other)


# --- the sandbox plays every registered platform -----------------------------------------

ONE_HANDLE = {
    "x": "someone",
    "bluesky": "someone.bsky.social",
    "mastodon": "someone@mastodon.example",
    "youtube": "@someone",
    "facebook": "some.page",
    "instagram": "some.ig",
    "linkedin": "urn:li:organization:42",
    "threads": "some.th",
}


def test_every_platform_has_a_sandbox_route_whose_demo_connection_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from social_leadership.orchestration import platform_endpoint
    from social_leadership.roster import Account, Executive, Roster
    from social_leadership.sandbox.server import SandboxServer, routes

    assert [route.platform for route in routes()] == list(domain.PLATFORMS)
    accounts = [Account("e1", platform, handle) for platform, handle in ONE_HANDLE.items()]
    roster_ = Roster([Executive("e1", "E", "CEO", "Co", "DE", "Energy", True)], accounts)
    seen = {}
    with SandboxServer(roster_) as sandbox:
        # What make run sets: one connection per platform, pointing at the sandbox.
        for name, value in sandbox.connection_env().items():
            monkeypatch.setenv(name, value)
        for platform, handle in ONE_HANDLE.items():
            endpoint = platform_endpoint(platform)
            assert endpoint.base_url is not None
            connector = build_connector(
                platform,
                endpoint.base_url,
                endpoint.credentials,
                endpoint.login,
                sleep=lambda _: None,
                **endpoint.options,
            )
            result = connector.extract([handle])
            seen[platform] = [
                o.status for r in result.responses for o in connector_class(platform).parse(r)
            ]
    assert seen == {platform: ["ok"] for platform in ONE_HANDLE}
