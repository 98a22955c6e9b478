from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from social_leadership import landing
from social_leadership.landing import (
    SUCCESS_MARKER,
    LandingError,
    failed_landing_of_run,
    land_responses,
    latest_complete_run,
    read_landed,
    safe_run_id,
)
from social_leadership.platforms.base import AccountStatus, RawResponse
from social_leadership.platforms.bluesky import BlueskyConnector
from social_leadership.roster import Account, Executive, Roster
from social_leadership.sandbox.server import SandboxServer

DAY = date(2026, 3, 2)
FETCHED = datetime(2026, 3, 2, 6, 0, 1, tzinfo=UTC)


def response(number: int, url: str = "https://example.test/x") -> RawResponse:
    return RawResponse(
        platform="bluesky",
        requested_handles=(f"a{number}.bsky.social", f"b{number}.bsky.social"),
        request_url=url,
        status_code=200,
        body=json.dumps({"profiles": [], "n": number}).encode(),
        fetched_at=FETCHED,
        elapsed_ms=12.25,
    )


def test_round_trip_keeps_bytes_and_metadata(tmp_path: Path) -> None:
    originals = [response(0), response(1)]

    run_dir = land_responses(
        tmp_path,
        "bluesky",
        DAY,
        "manual__2026-03-02T06:00:00+00:00",
        originals,
        deferred_handles=["c.bsky.social"],
        requests_sent=3,
        message="rate limited",
    )

    assert run_dir.parent == tmp_path / "platform=bluesky" / "date=2026-03-02"
    assert run_dir.name.startswith("run=manual__2026-03-02T06_00_00_00_00-")
    landed, manifest = read_landed(run_dir)
    assert landed == originals
    assert manifest["deferred_handles"] == ["c.bsky.social"]
    assert manifest["requests_sent"] == 3
    assert manifest["message"] == "rate limited"
    assert manifest["responses"] == 2


def test_bodies_are_gzip_on_disk_and_meta_is_redacted(tmp_path: Path) -> None:
    secret = "AIzaSecretKey123"
    run_dir = land_responses(
        tmp_path, "bluesky", DAY, "run1", [response(0, f"https://x.test/v3/c?id=1&key={secret}")]
    )

    raw = (run_dir / "0000.json.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == response(0).body
    meta_text = (run_dir / "0000.meta.json").read_text()
    assert secret not in meta_text
    meta = json.loads(meta_text)
    assert meta["request_url"] == "https://x.test/v3/c?id=1&key=REDACTED"
    assert meta["requested_handles"] == ["a0.bsky.social", "b0.bsky.social"]
    assert meta["status_code"] == 200
    assert meta["fetched_at"] == "2026-03-02T06:00:01+00:00"
    assert meta["elapsed_ms"] == 12.25
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_success_marker_is_written_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    real_replace = os.replace

    def recording_replace(source: str | Path, target: str | Path) -> None:
        order.append(Path(target).name)
        real_replace(source, target)

    monkeypatch.setattr(landing.os, "replace", recording_replace)
    land_responses(tmp_path, "bluesky", DAY, "run1", [response(0), response(1)])

    assert order[-1] == SUCCESS_MARKER
    assert sorted(order[:-1]) == [
        "0000.json.gz",
        "0000.meta.json",
        "0001.json.gz",
        "0001.meta.json",
    ]


def test_latest_complete_run_ignores_incomplete_runs(tmp_path: Path) -> None:
    assert latest_complete_run(tmp_path, "bluesky", DAY) is None
    complete = land_responses(tmp_path, "bluesky", DAY, "early", [response(0)])
    later = land_responses(tmp_path, "bluesky", DAY, "later", [response(1)])
    interrupted = later.parent / "run=zzz_interrupted"
    interrupted.mkdir()
    (interrupted / "0000.json.gz").write_bytes(gzip.compress(b"{}"))

    assert latest_complete_run(tmp_path, "bluesky", DAY) == later
    assert complete != later
    assert latest_complete_run(tmp_path, "bluesky", date(2026, 3, 3)) is None
    assert latest_complete_run(tmp_path, "x", DAY) is None
    with pytest.raises(LandingError):
        read_landed(interrupted)


def test_landing_the_same_run_again_never_overwrites(tmp_path: Path) -> None:
    first = land_responses(tmp_path, "bluesky", DAY, "scheduled_1", [response(0)])
    first_bytes = (first / "0000.json.gz").read_bytes()

    second = land_responses(tmp_path, "bluesky", DAY, "scheduled_1", [response(5), response(6)])

    assert second != first
    assert (first / "0000.json.gz").read_bytes() == first_bytes
    assert latest_complete_run(tmp_path, "bluesky", DAY) == second
    assert len(read_landed(second)[0]) == 2


def test_a_later_try_starts_from_its_runs_latest_landing_only_when_that_failed(
    tmp_path: Path,
) -> None:
    run = "scheduled__2026-03-02T00:00:00+00:00"
    assert failed_landing_of_run(tmp_path, "bluesky", DAY, run) is None
    first = land_responses(tmp_path, "bluesky", DAY, run, [response(0)], failed=True)
    assert failed_landing_of_run(tmp_path, "bluesky", DAY, run) == first
    # An interrupted landing (no _SUCCESS) of a later try is not read.
    (first.parent / f"{first.name}.2").mkdir()
    assert failed_landing_of_run(tmp_path, "bluesky", DAY, run) == first
    third = land_responses(tmp_path, "bluesky", DAY, run, [response(0)], failed=True)
    assert third.name == f"{first.name}.3"
    assert failed_landing_of_run(tmp_path, "bluesky", DAY, run) == third
    # Neither another run of the day nor another day reads it.
    assert failed_landing_of_run(tmp_path, "bluesky", DAY, "manual__2026-03-02") is None
    assert failed_landing_of_run(tmp_path, "bluesky", date(2026, 3, 3), run) is None
    # A try that succeeded ends the run's failed state: a try after it starts over.
    land_responses(tmp_path, "bluesky", DAY, run, [response(0)])
    assert failed_landing_of_run(tmp_path, "bluesky", DAY, run) is None


def test_another_run_whose_id_looks_like_a_later_try_is_not_taken_for_one(
    tmp_path: Path,
) -> None:
    land_responses(tmp_path, "bluesky", DAY, "nightly", [response(0)])
    land_responses(tmp_path, "bluesky", DAY, "nightly.2", [response(1)], failed=True)
    assert failed_landing_of_run(tmp_path, "bluesky", DAY, "nightly") is None


def test_safe_run_id() -> None:
    assert safe_run_id("plain-run_1.2") == "plain-run_1.2"
    assert safe_run_id("a:b") != safe_run_id("a_b")
    assert "/" not in safe_run_id("../../etc/passwd")
    assert not safe_run_id("../x").startswith(".")


def test_landed_connector_responses_reparse(tmp_path: Path) -> None:
    handles = [f"p{n}.bsky.social" for n in range(30)]
    roster = Roster(
        executives=[Executive("e1", "P", "CEO", "Synthetic Co", "DE", "Energy", True)],
        accounts=[Account("e1", "bluesky", h) for h in handles],
    )
    with SandboxServer(roster) as server:
        result = BlueskyConnector(server.base_url).extract([*handles, "ghost.bsky.social"])

    run_dir = land_responses(
        tmp_path, "bluesky", DAY, "r", result.responses, requests_sent=result.requests_sent
    )
    landed, manifest = read_landed(run_dir)
    statuses = [o.status for r in landed for o in BlueskyConnector.parse(r)]

    assert manifest["requests_sent"] == 2
    assert statuses == [AccountStatus.OK] * 30 + [AccountStatus.NOT_FOUND]
