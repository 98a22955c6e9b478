"""The sandbox answers the requests widely used client libraries send, as the real services
do, so a user's own code works against it: Mastodon.py's version check (the instance's
description) and ``account(id)``, tweepy's ``get_user`` and ``get_users(ids=)``, atproto's
``get_profile``, LinkedIn's ``/rest`` edge type in capitals, Graph's ``OAuth`` scheme,
``?ids=``, a Page's ``name``, business discovery's ``media`` and a batch posted to a node
or as a multipart or JSON body (facebook-sdk, curl), YouTube's key chosen at startup. A
route it does not play is answered in its platform's error form. Each test runs against
the real loopback server, with the request as the library sends it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from slw_testing import SandboxProcess, roster_of

from social_leadership.roster import Roster
from social_leadership.sandbox.server import SANDBOX_TOKEN, SANDBOX_YOUTUBE_KEY, SandboxServer

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
ACCOUNTS = [
    ("x", "user_a"),
    ("x", "user_b"),
    ("bluesky", "ann.bsky.social"),
    ("mastodon", "alice@mastodon.social"),
    ("facebook", "acmepage"),
    ("facebook", "otherpage"),
    ("instagram", "acmeig"),
    ("linkedin", "urn:li:organization:1337"),
]


def roster() -> Roster:
    return roster_of(ACCOUNTS)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(roster(), clock=lambda: NOW) as server:
        yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as http:
        yield http


# --- Mastodon (Mastodon.py) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/instance/",
        "/api/v2/instance/",
        "/api/v1/instance",
        "/mastodon/mastodon.social/api/v1/instance/",
        "/mastodon/mastodon.social/api/v2/instance",
    ],
)
def test_an_instance_describes_itself_with_a_version_that_has_the_batch_route(
    client: httpx.Client, path: str
) -> None:
    reply = client.get(path)

    assert reply.status_code == 200
    document = reply.json()
    assert document["version"] == "4.3.0"
    assert document["title"]
    if "/v2/" in path:
        assert document["api_versions"] == {"mastodon": 2}
    if path.startswith("/mastodon/"):
        assert document["uri" if "/v1/" in path else "domain"] == "mastodon.social"


def test_an_instance_without_the_batch_route_reports_a_version_before_4_3() -> None:
    with SandboxServer(roster(), clock=lambda: NOW, mastodon_batch_route=False) as server:
        reply = httpx.get(server.base_url + "/api/v2/instance/")

    assert reply.json()["version"] == "4.2.0"
    assert "api_versions" not in reply.json()


def test_an_instance_that_requires_login_still_describes_itself() -> None:
    with SandboxServer(roster(), clock=lambda: NOW, mastodon_requires_login=True) as server:
        described = httpx.get(server.base_url + "/api/v1/instance/")
        looked_up = httpx.get(
            server.base_url + "/api/v1/accounts/lookup", params={"acct": "alice@mastodon.social"}
        )

    assert described.status_code == 200
    assert looked_up.status_code == 401


def test_a_mastodon_account_is_read_by_its_id_on_its_instance_and_at_the_root(
    client: httpx.Client,
) -> None:
    looked_up = client.get(
        "/mastodon/mastodon.social/api/v1/accounts/lookup/", params={"acct": "alice"}
    )
    account_id = looked_up.json()["id"]

    by_id = client.get(f"/mastodon/mastodon.social/api/v1/accounts/{account_id}")
    at_root = client.get(f"/api/v1/accounts/{account_id}/")
    unknown = client.get("/api/v1/accounts/999")
    elsewhere = client.get(f"/mastodon/fosstodon.org/api/v1/accounts/{account_id}")

    assert by_id.json() == looked_up.json()
    assert at_root.json()["acct"] == "alice@mastodon.social"
    assert at_root.json()["followers_count"] == looked_up.json()["followers_count"]
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Record not found"})
    assert elsewhere.status_code == 404


def test_a_mastodon_route_the_sandbox_does_not_play_is_mastodon_s_404(
    client: httpx.Client,
) -> None:
    reply = client.get("/mastodon/mastodon.social/api/v1/timelines/public")

    assert (reply.status_code, reply.json()) == (404, {"error": "Not Found"})


# --- X (tweepy) ---------------------------------------------------------------------------


def test_one_x_user_by_username_is_the_data_object(client: httpx.Client) -> None:
    fields = {"user.fields": "public_metrics"}
    listed = client.get("/2/users/by", params={"usernames": "user_a", **fields}, headers=AUTH)

    one = client.get("/2/users/by/username/USER_A", params=fields, headers=AUTH)
    unknown = client.get("/2/users/by/username/nobody", params=fields, headers=AUTH)
    invalid = client.get("/2/users/by/username/not-valid!", headers=AUTH)
    anonymous = client.get("/2/users/by/username/user_a")

    assert one.json() == {"data": listed.json()["data"][0]}
    assert "data" not in unknown.json()
    [error] = unknown.json()["errors"]
    assert (error["value"], error["parameter"], error["title"]) == (
        "nobody",
        "username",
        "Not Found Error",
    )
    assert invalid.status_code == 400
    assert anonymous.status_code == 401


def test_x_users_by_id_as_a_list_and_one_by_one(client: httpx.Client) -> None:
    fields = {"user.fields": "public_metrics"}
    by_name = client.get(
        "/2/users/by", params={"usernames": "user_a,user_b", **fields}, headers=AUTH
    ).json()["data"]
    ids = [user["id"] for user in by_name]

    listed = client.get("/2/users", params={"ids": f"{ids[1]},{ids[0]},42", **fields}, headers=AUTH)
    one = client.get(f"/2/users/{ids[0]}", params=fields, headers=AUTH)
    too_many = client.get("/2/users", params={"ids": ",".join(["1"] * 101)}, headers=AUTH)

    assert listed.json()["data"] == [by_name[1], by_name[0]]
    [error] = listed.json()["errors"]
    assert (error["value"], error["parameter"]) == ("42", "ids")
    assert one.json() == {"data": by_name[0]}
    assert too_many.status_code == 400


# --- Bluesky (atproto) --------------------------------------------------------------------


def test_one_bluesky_profile_by_handle_or_did(client: httpx.Client) -> None:
    [listed] = client.get(
        "/xrpc/app.bsky.actor.getProfiles", params={"actors": "ann.bsky.social"}
    ).json()["profiles"]

    by_handle = client.get("/xrpc/app.bsky.actor.getProfile", params={"actor": "ann.bsky.social"})
    by_did = client.get("/xrpc/app.bsky.actor.getProfile", params={"actor": listed["did"]})
    unknown = client.get("/xrpc/app.bsky.actor.getProfile", params={"actor": "nobody.bsky.social"})
    missing = client.get("/xrpc/app.bsky.actor.getProfile")

    assert by_handle.json() == listed
    assert by_did.json() == listed
    assert (unknown.status_code, unknown.json()["message"]) == (400, "Profile not found")
    assert (missing.status_code, missing.json()["error"]) == (400, "InvalidRequest")


def test_an_xrpc_method_the_sandbox_does_not_play_is_not_implemented(client: httpx.Client) -> None:
    reply = client.get(
        "/xrpc/com.atproto.identity.resolveHandle", params={"handle": "ann.bsky.social"}
    )

    assert (reply.status_code, reply.json()["error"]) == (501, "MethodNotImplemented")


# --- LinkedIn (linkedin-api-client) -------------------------------------------------------

REST = {**AUTH, "LinkedIn-Version": "202506", "X-Restli-Protocol-Version": "2.0.0"}


@pytest.mark.parametrize("edge", ["CompanyFollowedByMember", "COMPANY_FOLLOWED_BY_MEMBER"])
@pytest.mark.parametrize("prefix", ["/v2", "/rest"])
def test_linkedin_takes_the_follower_edge_in_either_spelling(
    client: httpx.Client, edge: str, prefix: str
) -> None:
    reply = client.get(
        f"{prefix}/networkSizes/urn%3Ali%3Aorganization%3A1337",
        params={"edgeType": edge},
        headers=REST,
    )

    assert reply.status_code == 200
    assert reply.json()["firstDegreeSize"] > 0


def test_a_linkedin_route_the_sandbox_does_not_play_is_linkedin_s_unknown_resource(
    client: httpx.Client,
) -> None:
    reply = client.get("/rest/organizationAcls", headers=REST)

    assert reply.status_code == 404
    assert reply.json()["code"] == "RESOURCE_NOT_FOUND"


# --- Graph (facebook-sdk, curl) -----------------------------------------------------------


def test_graph_takes_the_token_under_its_oauth_scheme(client: httpx.Client) -> None:
    reply = client.get(
        "/v21.0/acmepage",
        params={"fields": "followers_count"},
        headers={"Authorization": f"OAuth {SANDBOX_TOKEN}"},
    )
    wrong = client.get("/v21.0/acmepage", headers={"Authorization": "OAuth wrong"})

    assert reply.status_code == 200
    assert wrong.json()["error"]["code"] == 190


def test_a_page_gives_its_name_when_asked(client: httpx.Client) -> None:
    reply = client.get(
        "/v21.0/acmepage", params={"fields": "id,name,followers_count"}, headers=AUTH
    )

    assert set(reply.json()) == {"id", "name", "followers_count"}
    assert reply.json()["name"] == "Person 4"


def test_several_pages_in_one_request_by_ids(client: httpx.Client) -> None:
    fields = {"fields": "followers_count"}
    one = client.get("/v21.0/acmepage", params=fields, headers=AUTH).json()

    both = client.get("/v21.0/", params={"ids": "acmepage,otherpage", **fields}, headers=AUTH)
    missing = client.get("/v21.0/", params={"ids": "acmepage,nosuchpage", **fields}, headers=AUTH)

    assert both.status_code == 200
    assert both.json()["acmepage"] == one
    assert set(both.json()) == {"acmepage", "otherpage"}
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == 803
    assert "nosuchpage" in missing.json()["error"]["message"]


def test_business_discovery_answers_a_media_edge_with_its_subfields(
    client: httpx.Client, sandbox: SandboxServer
) -> None:
    fields = (
        "business_discovery.username(acmeig){followers_count,media_count,"
        "media{comments_count,like_count}}"
    )
    reply = client.get(
        f"/v21.0/{sandbox.instagram_user_id}", params={"fields": fields}, headers=AUTH
    )

    assert reply.status_code == 200
    discovered = reply.json()["business_discovery"]
    assert discovered["media"] == {"data": []}
    assert discovered["followers_count"] > 0


def batch_of(*relative_urls: str) -> str:
    return json.dumps([{"method": "GET", "relative_url": url} for url in relative_urls])


PAGE_URL = "v21.0/acmepage?fields=followers_count"


@pytest.mark.parametrize("path", ["/me", "/v21.0/me", "/"])
def test_a_graph_batch_posted_to_a_node_is_a_batch(client: httpx.Client, path: str) -> None:
    reply = client.post(
        path,
        params={"batch": batch_of(PAGE_URL), "include_headers": "false"},
        data={"access_token": SANDBOX_TOKEN},
    )

    assert reply.status_code == 200
    [answer] = reply.json()
    assert answer["code"] == 200
    assert "headers" not in answer


@pytest.mark.parametrize("form", ["multipart", "json"])
def test_a_graph_batch_is_read_from_a_multipart_or_json_body(
    client: httpx.Client, form: str
) -> None:
    fields = {"batch": batch_of(PAGE_URL, PAGE_URL), "access_token": SANDBOX_TOKEN}
    if form == "multipart":
        # As curl -F batch=... -F access_token=... sends it.
        reply = client.post("/", files={name: (None, value) for name, value in fields.items()})
    else:
        reply = client.post("/", json={**fields, "batch": json.loads(fields["batch"])})

    assert reply.status_code == 200
    assert [answer["code"] for answer in reply.json()] == [200, 200]


def test_a_post_that_is_no_batch_is_not_served(client: httpx.Client) -> None:
    reply = client.post("/v21.0/me", data={"access_token": SANDBOX_TOKEN})

    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "OAuthException"


# --- YouTube's key ------------------------------------------------------------------------


def test_the_youtube_key_is_chosen_at_startup_and_named_when_it_is_the_demo_s(
    tmp_path: Path,
) -> None:
    def started(*options: str) -> tuple[str, str]:
        with SandboxProcess(tmp_path / f"ready{len(options)}.txt", *options) as sandbox:
            reply = httpx.get(
                sandbox.base_url + "/youtube/v3/channels",
                params={"part": "statistics", "forHandle": "@nobody", "key": "probe-key"},
            )
        return str(reply.status_code), sandbox.stdout

    status_default, said_default = started()
    status_chosen, said_chosen = started("--youtube-key", "probe-key")

    assert status_default == "400"
    assert f"youtube: takes the API key {SANDBOX_YOUTUBE_KEY!r}" in said_default
    assert f"bearer token {SANDBOX_TOKEN!r}: every route that takes one" in said_default
    assert status_chosen == "200"
    assert "probe-key" not in said_chosen
