"""The sandbox answers as shared/reference/platform-apis.md says the real services do, for
requests written from the reference rather than by our connectors: Graph's batch endpoint and
throttle codes, LinkedIn's ``/rest`` headers, YouTube's ``part`` lists, filters and daily
quota, business discovery among other fields, Mastodon's local ``acct``, routes and limits
per instance, and the Bearer scheme in any case. Each test runs against the real loopback
server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from slw_testing import roster_of

from social_leadership.roster import Roster
from social_leadership.sandbox.server import (
    SANDBOX_TOKEN,
    SANDBOX_YOUTUBE_KEY,
    X_PATH,
    YOUTUBE_PATH,
    SandboxServer,
    synthetic_channel_id,
)

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
ACCOUNTS = [
    ("x", "user_a"),
    ("x", "user_b"),
    ("youtube", "@chan0"),
    ("mastodon", "alice@mastodon.social"),
    ("mastodon", "bob@fosstodon.org"),
    ("facebook", "acmepage"),
    ("instagram", "acmeig"),
    ("linkedin", "urn:li:organization:1337"),
]


def roster(accounts: list[tuple[str, str]] = ACCOUNTS) -> Roster:
    return roster_of(accounts)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(roster(), clock=lambda: NOW) as server:
        yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as http:
        yield http


# --- YouTube ------------------------------------------------------------------------------


def youtube(client: httpx.Client, **params: str) -> httpx.Response:
    return client.get(YOUTUBE_PATH, params={"key": SANDBOX_YOUTUBE_KEY, **params})


@pytest.mark.parametrize("part", ["statistics", "snippet,statistics", "id,statistics"])
def test_youtube_part_is_a_list_that_includes_statistics(client: httpx.Client, part: str) -> None:
    reply = youtube(client, part=part, forHandle="@chan0")

    assert reply.status_code == 200
    [item] = reply.json()["items"]
    assert item["id"] == synthetic_channel_id("@chan0")
    assert int(item["statistics"]["subscriberCount"]) > 0
    assert ("snippet" in item) is ("snippet" in part)


@pytest.mark.parametrize("part", ["snippet", "id", "statistics,nonsense", ""])
def test_youtube_part_without_statistics_or_with_an_unknown_part_is_400(
    client: httpx.Client, part: str
) -> None:
    reply = youtube(client, part=part, forHandle="@chan0")

    assert reply.status_code == 400
    assert reply.json()["error"]["errors"][0]["reason"] == "invalidPart"


def test_youtube_channel_ids_match_exactly_and_handles_ignore_case(client: httpx.Client) -> None:
    channel_id = synthetic_channel_id("@chan0")

    exact = youtube(client, part="statistics", id=channel_id).json()
    other_case = youtube(client, part="statistics", id=channel_id.lower()).json()
    handle = youtube(client, part="statistics", forHandle="@CHAN0").json()

    assert [item["id"] for item in exact["items"]] == [channel_id]
    assert "items" not in other_case
    assert other_case["pageInfo"]["totalResults"] == 0
    assert [item["id"] for item in handle["items"]] == [channel_id]


def test_youtube_without_a_key_is_403_forbidden(client: httpx.Client) -> None:
    reply = client.get(YOUTUBE_PATH, params={"part": "statistics", "forHandle": "@chan0"})

    assert reply.status_code == 403
    error = reply.json()["error"]
    assert error["code"] == 403
    assert error["message"] == "The request is missing a valid API key."
    assert error["errors"][0]["reason"] == "forbidden"
    assert error["errors"][0]["domain"] == "global"


def test_youtube_wrong_key_stays_400_bad_request(client: httpx.Client) -> None:
    reply = client.get(
        YOUTUBE_PATH, params={"part": "statistics", "forHandle": "@chan0", "key": "nope"}
    )

    assert reply.status_code == 400
    assert reply.json()["error"]["errors"][0]["reason"] == "badRequest"


def test_youtube_id_and_for_handle_together_are_incompatible(client: httpx.Client) -> None:
    reply = youtube(
        client, part="statistics", forHandle="@chan0", id=synthetic_channel_id("@chan0")
    )

    assert reply.status_code == 400
    assert reply.json()["error"]["errors"][0]["reason"] == "invalidCriteria"


def test_youtube_quota_resets_at_midnight_pacific_not_a_day_after_the_first_call() -> None:
    pacific = ZoneInfo("America/Los_Angeles")
    now = [datetime(2026, 3, 10, 23, 50, tzinfo=pacific).timestamp()]
    with (
        SandboxServer(
            roster(), clock=lambda: NOW, limits={"youtube": (1, 86_400)}, rate_clock=lambda: now[0]
        ) as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        first = youtube(client, part="statistics", forHandle="@chan0")
        now[0] = datetime(2026, 3, 10, 23, 55, tzinfo=pacific).timestamp()
        spent = youtube(client, part="statistics", forHandle="@chan0")
        now[0] = datetime(2026, 3, 11, 0, 5, tzinfo=pacific).timestamp()
        next_day = youtube(client, part="statistics", forHandle="@chan0")

    assert first.status_code == 200
    assert spent.status_code == 403
    assert spent.json()["error"]["errors"][0]["reason"] == "quotaExceeded"
    assert next_day.status_code == 200


# --- X ------------------------------------------------------------------------------------


def test_x_an_empty_username_in_the_list_is_an_invalid_request(client: httpx.Client) -> None:
    reply = client.get(X_PATH, params={"usernames": "user_a,,user_b"}, headers=AUTH)

    assert reply.status_code == 400
    assert reply.json()["type"] == "https://api.twitter.com/2/problems/invalid-request"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "Bearer "])
def test_the_bearer_scheme_is_read_in_any_case_and_with_any_spaces_after_it(
    client: httpx.Client, scheme: str
) -> None:
    # The scheme in any case, and one space or more after it (RFC 7235).
    params = {"usernames": "user_a", "user.fields": "public_metrics"}

    right = client.get(
        X_PATH, params=params, headers={"Authorization": f"{scheme} {SANDBOX_TOKEN}"}
    )
    wrong = client.get(X_PATH, params=params, headers={"Authorization": f"{scheme} nope"})

    assert right.status_code == 200
    assert wrong.status_code == 401


# --- Mastodon -----------------------------------------------------------------------------


@pytest.mark.parametrize("acct", ["alice", "alice@mastodon.social"])
def test_mastodon_a_local_account_on_its_own_instance_has_the_user_alone_as_acct(
    client: httpx.Client, acct: str
) -> None:
    instance = "/mastodon/mastodon.social"

    looked_up = client.get(instance + "/api/v1/accounts/lookup", params={"acct": acct})
    by_id = client.get(instance + "/api/v1/accounts", params={"id[]": looked_up.json()["id"]})

    assert looked_up.status_code == 200
    assert looked_up.json()["acct"] == "alice"
    assert looked_up.json()["username"] == "alice"
    assert [account["acct"] for account in by_id.json()] == ["alice"]


def test_mastodon_a_remote_account_keeps_user_at_domain(client: httpx.Client) -> None:
    everywhere = client.get("/api/v1/accounts/lookup", params={"acct": "bob@fosstodon.org"})
    elsewhere = client.get("/api/v1/accounts/lookup", params={"acct": "alice@mastodon.social"})

    assert everywhere.json()["acct"] == "bob@fosstodon.org"
    assert elsewhere.json()["acct"] == "alice@mastodon.social"


@pytest.mark.parametrize("instance", ["", "/mastodon/mastodon.social"])
def test_mastodon_the_batch_takes_only_ids_and_the_lookup_only_handles(
    client: httpx.Client, instance: str
) -> None:
    handle = "alice@mastodon.social"
    account = client.get(instance + "/api/v1/accounts/lookup", params={"acct": handle}).json()

    by_id = client.get(instance + "/api/v1/accounts", params={"id[]": account["id"]})
    by_handle = client.get(instance + "/api/v1/accounts", params={"id[]": handle})
    looked_up_by_id = client.get(
        instance + "/api/v1/accounts/lookup", params={"acct": account["id"]}
    )

    assert [found["id"] for found in by_id.json()] == [account["id"]]
    assert by_handle.status_code == 200
    assert by_handle.json() == []
    assert looked_up_by_id.status_code == 404
    assert looked_up_by_id.json() == {"error": "Record not found"}


def test_mastodon_each_instance_has_a_rate_limit_of_its_own() -> None:
    def lookup(client: httpx.Client, instance: str, acct: str) -> httpx.Response:
        return client.get(instance + "/api/v1/accounts/lookup", params={"acct": acct})

    with (
        SandboxServer(roster(), clock=lambda: NOW, limits={"mastodon": (1, 300)}) as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        first = lookup(client, "/mastodon/mastodon.social", "alice")
        spent = lookup(client, "/mastodon/mastodon.social", "alice")
        other_instance = lookup(client, "/mastodon/fosstodon.org", "bob")
        same_in_other_case = lookup(client, "/mastodon/Fosstodon.org", "bob")
        no_instance = lookup(client, "", "bob@fosstodon.org")

    assert first.status_code == 200
    assert spent.status_code == 429
    assert other_instance.status_code == 200
    assert other_instance.headers["X-RateLimit-Remaining"] == "0"
    assert same_in_other_case.status_code == 429
    assert no_instance.status_code == 200


# --- Facebook and Instagram ---------------------------------------------------------------


def test_facebook_a_page_is_fetched_by_the_id_the_sandbox_returned(client: httpx.Client) -> None:
    fields = {"fields": "followers_count,fan_count"}
    by_name = client.get("/v19.0/acmepage", params=fields, headers=AUTH).json()

    by_id = client.get(f"/v19.0/{by_name['id']}", params=fields, headers=AUTH)

    assert by_id.status_code == 200
    assert by_id.json() == by_name


IG_NODE = "/v19.0/17841400000000001"
DISCOVERY = "business_discovery.username(acmeig){followers_count,follows_count,media_count}"


@pytest.mark.parametrize(
    "fields", [DISCOVERY, "id," + DISCOVERY, DISCOVERY + ",id", "id, " + DISCOVERY]
)
def test_instagram_business_discovery_anywhere_in_fields(client: httpx.Client, fields: str) -> None:
    reply = client.get(IG_NODE, params={"fields": fields}, headers=AUTH)

    assert reply.status_code == 200
    body = reply.json()
    assert body["id"] == "17841400000000001"
    assert set(body["business_discovery"]) == {
        "followers_count",
        "follows_count",
        "media_count",
        "id",
    }


def test_instagram_business_discovery_returns_only_the_listed_subfields(
    client: httpx.Client,
) -> None:
    only_followers = client.get(
        IG_NODE,
        params={"fields": "business_discovery.username(acmeig){followers_count}"},
        headers=AUTH,
    ).json()
    with_username = client.get(
        IG_NODE,
        params={"fields": "business_discovery.username(acmeig){username,media_count}"},
        headers=AUTH,
    ).json()

    assert set(only_followers["business_discovery"]) == {"followers_count", "id"}
    assert with_username["business_discovery"]["username"] == "acmeig"
    assert set(with_username["business_discovery"]) == {"username", "media_count", "id"}


def test_instagram_an_unknown_business_discovery_field_is_a_graph_error(
    client: httpx.Client,
) -> None:
    reply = client.get(
        IG_NODE,
        params={"fields": "business_discovery.username(acmeig){followers_count,nonsense}"},
        headers=AUTH,
    )

    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == 100


# --- LinkedIn -----------------------------------------------------------------------------

ORGANIZATION = "urn%3Ali%3Aorganization%3A1337"
EDGE = {"edgeType": "CompanyFollowedByMember"}
REST_HEADERS = {"LinkedIn-Version": "202601", "X-Restli-Protocol-Version": "2.0.0"}


def test_linkedin_rest_serves_network_sizes_with_its_version_headers(client: httpx.Client) -> None:
    rest = client.get(
        f"/rest/networkSizes/{ORGANIZATION}", params=EDGE, headers={**AUTH, **REST_HEADERS}
    )
    v2 = client.get(f"/v2/networkSizes/{ORGANIZATION}", params=EDGE, headers=AUTH)

    assert rest.status_code == 200
    assert rest.json() == v2.json()
    assert rest.json()["firstDegreeSize"] > 0


@pytest.mark.parametrize("missing", list(REST_HEADERS))
def test_linkedin_rest_without_a_version_header_is_a_4xx_naming_it(
    client: httpx.Client, missing: str
) -> None:
    headers = {**AUTH, **{k: v for k, v in REST_HEADERS.items() if k != missing}}

    reply = client.get(f"/rest/networkSizes/{ORGANIZATION}", params=EDGE, headers=headers)

    assert 400 <= reply.status_code < 500
    body = reply.json()
    assert body["status"] == reply.status_code
    assert missing in body["message"]


def test_linkedin_rest_rejects_a_version_not_yyyymm(client: httpx.Client) -> None:
    headers = {**AUTH, **REST_HEADERS, "LinkedIn-Version": "2026"}

    reply = client.get(f"/rest/networkSizes/{ORGANIZATION}", params=EDGE, headers=headers)

    assert reply.status_code == 400
    assert "LinkedIn-Version" in reply.json()["message"]


def test_linkedin_v2_needs_no_version_headers(client: httpx.Client) -> None:
    reply = client.get("/v2/networkSizes/urn:li:organization:1337", params=EDGE, headers=AUTH)

    assert reply.status_code == 200


# --- Graph throttling ---------------------------------------------------------------------

PAGE = ("/v19.0/acmepage", {"fields": "followers_count,fan_count"})


def graph_error(reply: httpx.Response) -> tuple[int, int, str]:
    error = reply.json()["error"]
    return reply.status_code, error["code"], error["message"]


def test_graph_throttle_default_stays_code_4_with_403(
    client: httpx.Client, sandbox: SandboxServer
) -> None:
    sandbox.add_fault("429", platform="facebook")

    reply = client.get(PAGE[0], params=PAGE[1], headers=AUTH)

    assert graph_error(reply) == (403, 4, "(#4) Application request limit reached")
    assert reply.json()["error"]["is_transient"] is True


@pytest.mark.parametrize(
    ("throttle", "message"),
    [
        ((17, 400), "(#17) User request limit reached"),
        ((32, 403), "(#32) Page request limit reached"),
        ((613, 400), "(#613) Calls to this api have exceeded the rate limit."),
    ],
)
def test_a_spent_graph_budget_answers_the_servers_chosen_code_and_status(
    throttle: tuple[int, int], message: str
) -> None:
    limits = {"facebook": (1, 3600)}
    with (
        SandboxServer(roster(), clock=lambda: NOW, limits=limits, graph_throttle=throttle) as s,
        httpx.Client(base_url=s.base_url) as client,
    ):
        first = client.get(PAGE[0], params=PAGE[1], headers=AUTH)
        spent = client.get(PAGE[0], params=PAGE[1], headers=AUTH)

    assert first.status_code == 200
    assert graph_error(spent) == (throttle[1], throttle[0], message)
    assert '"call_count": 100' in spent.headers["X-App-Usage"]


def test_a_throttle_fault_chooses_its_own_graph_code(
    client: httpx.Client, sandbox: SandboxServer
) -> None:
    sandbox.add_fault("429", platform="instagram", graph_throttle=(613, 400))
    sandbox.add_fault("429", platform="facebook", graph_throttle=(32, 403))

    instagram = client.get(
        "/v19.0/17841400000000001",
        params={"fields": "business_discovery.username(acmeig){followers_count}"},
        headers=AUTH,
    )
    facebook = client.get(PAGE[0], params=PAGE[1], headers=AUTH)
    sandbox.add_fault("429", platform="facebook")
    default = client.get(PAGE[0], params=PAGE[1], headers=AUTH)

    assert graph_error(instagram) == (
        400,
        613,
        "(#613) Calls to this api have exceeded the rate limit.",
    )
    assert graph_error(facebook) == (403, 32, "(#32) Page request limit reached")
    assert graph_error(default)[:2] == (403, 4)


@pytest.mark.parametrize("throttle", [(5, 403), (4, 429)])
def test_a_graph_throttle_that_graph_never_sends_is_refused(throttle: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="Graph throttle"):
        SandboxServer(roster(), graph_throttle=throttle)


# --- Graph batch --------------------------------------------------------------------------


def batch_of(*relative_urls: str) -> str:
    return json.dumps([{"method": "GET", "relative_url": url} for url in relative_urls])


PAGE_URL = "v19.0/acmepage?fields=followers_count,fan_count"


@pytest.mark.parametrize(
    ("path", "as_form"), [("/", False), ("/", True), ("/v19.0/", True), ("/v19.0", False)]
)
def test_graph_batch_answers_each_sub_request_as_its_get_would(
    client: httpx.Client, sandbox: SandboxServer, path: str, as_form: bool
) -> None:
    fields = {"batch": batch_of(PAGE_URL, "v19.0/nosuchpage?fields=followers_count")}
    fields["access_token"] = SANDBOX_TOKEN
    single = client.get("/" + PAGE_URL, headers=AUTH)
    used_before = sandbox.requests_to("/v19.0/acmepage")

    reply = client.post(path, data=fields) if as_form else client.post(path, params=fields)

    assert reply.status_code == 200
    found, missing = reply.json()
    assert found["code"] == 200
    assert json.loads(found["body"]) == single.json()
    assert "X-App-Usage" in {header["name"] for header in found["headers"]}
    assert missing["code"] == 400
    assert json.loads(missing["body"])["error"]["code"] == 100
    assert sandbox.requests_to("/v19.0/acmepage") == used_before + 1


def test_graph_batch_charges_each_sub_request_to_the_budget_once() -> None:
    with (
        SandboxServer(roster(), clock=lambda: NOW, limits={"facebook": (3, 3600)}) as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        reply = client.post(
            "/", data={"batch": batch_of(*[PAGE_URL] * 4), "access_token": SANDBOX_TOKEN}
        )

    codes = [answer["code"] for answer in reply.json()]
    assert codes == [200, 200, 200, 403]
    assert json.loads(reply.json()[3]["body"])["error"]["code"] == 4


def test_graph_batch_serves_business_discovery_too(client: httpx.Client) -> None:
    discovery = "v19.0/17841400000000001?fields=" + DISCOVERY
    reply = client.post("/", params={"batch": batch_of(discovery)}, headers=AUTH)

    [answer] = reply.json()
    assert answer["code"] == 200
    assert json.loads(answer["body"])["business_discovery"]["followers_count"] > 0


def test_graph_batch_needs_the_token(client: httpx.Client) -> None:
    reply = client.post("/", data={"batch": batch_of(PAGE_URL)})

    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == 190


def test_graph_batch_of_more_than_50_is_a_code_100_error(client: httpx.Client) -> None:
    reply = client.post(
        "/", data={"batch": batch_of(*[PAGE_URL] * 51), "access_token": SANDBOX_TOKEN}
    )

    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == 100
    assert "50" in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    "batch", ["", "not json", "{}", "[]", '[{"method": "GET"}]', '["v19.0/acmepage"]']
)
def test_a_malformed_graph_batch_is_a_graph_error(client: httpx.Client, batch: str) -> None:
    reply = client.post("/", data={"batch": batch, "access_token": SANDBOX_TOKEN})

    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == 100
    assert reply.json()["error"]["type"] == "OAuthException"


# --- stand-ins where the roster has no account ---------------------------------------------


def stand_in_replies(server: SandboxServer) -> dict[str, httpx.Response]:
    with httpx.Client(base_url=server.base_url, headers=AUTH) as client:
        return {
            "facebook": client.get("/v19.0/sandbox_page_1", params={"fields": "followers_count"}),
            "instagram": client.get(
                IG_NODE,
                params={
                    "fields": "business_discovery.username(sandbox_business_1){followers_count}"
                },
            ),
            "linkedin": client.get("/v2/networkSizes/urn:li:organization:1001", params=EDGE),
        }


def test_the_default_roster_gets_synthetic_stand_ins_on_its_empty_platforms() -> None:
    with SandboxServer() as server:
        replies = stand_in_replies(server)
        stand_ins = server.stand_ins

    assert {platform: reply.status_code for platform, reply in replies.items()} == {
        "facebook": 200,
        "instagram": 200,
        "linkedin": 200,
    }
    assert replies["facebook"].json()["followers_count"] > 0
    assert set(stand_ins) == {"facebook", "instagram", "linkedin"}
    # Fetchable by the id returned, as any page.
    with SandboxServer() as server:
        page_id = replies["facebook"].json()["id"]
        again = httpx.get(
            f"{server.base_url}/v19.0/{page_id}", params={"fields": "followers_count"}, headers=AUTH
        )
    assert again.json() == replies["facebook"].json()


def test_a_roster_with_accounts_on_a_platform_gets_no_stand_ins_there(
    sandbox: SandboxServer,
) -> None:
    replies = stand_in_replies(sandbox)

    assert sandbox.stand_ins == {}
    assert {platform: reply.status_code for platform, reply in replies.items()} == {
        "facebook": 400,
        "instagram": 400,
        "linkedin": 404,
    }
