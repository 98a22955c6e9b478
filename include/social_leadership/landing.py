"""The landing zone: raw platform responses kept exactly as received, immutable.

Layout::

    <landing_dir>/platform=<p>/date=<YYYY-MM-DD>/run=<run id>/
        0000.json.gz      the response body, byte for byte, gzip-compressed
        0000.meta.json    requested handles, redacted request URL, status, fetch time
        ...
        _SUCCESS          written last: the run's manifest (requests sent, deferred handles,
                          whether the extraction failed)

Bodies are kept as received, except that a credential a server echoed back has already
been replaced by ``REDACTED`` (see :mod:`social_leadership.platforms.redaction`).

A run folder without ``_SUCCESS`` is an interrupted landing and is never read. Landing the
same run id again (an Airflow retry) claims a fresh folder (``run=<id>.2``, ...) instead
of touching the earlier one, so nothing landed is ever overwritten. A try after a failed
one starts from the failed landing (:func:`failed_landing_of_run`): its folder holds the
replies the earlier tries read, copied, and the ones it read itself.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from social_leadership.platforms.base import RawResponse, redact_url

SUCCESS_MARKER = "_SUCCESS"
_UNSAFE_RUN_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_BODY_SUFFIX = ".json.gz"
_META_SUFFIX = ".meta.json"


class LandingError(RuntimeError):
    """A landed run is missing or unreadable."""


def safe_run_id(run_id: str) -> str:
    """``run_id`` usable as a folder name on any filesystem.

    Airflow run ids hold ``:`` and ``+``; a short hash keeps two ids that differ only in
    replaced characters apart.
    """
    if not run_id:
        raise ValueError("run_id is empty")
    safe = _UNSAFE_RUN_ID_CHARS.sub("_", run_id).lstrip(".")
    if safe != run_id or not safe:
        safe = f"{safe}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"
    return safe


def partition_dir(landing_dir: Path, platform: str, snapshot_date: date) -> Path:
    return landing_dir / f"platform={platform}" / f"date={snapshot_date.isoformat()}"


def land_responses(
    landing_dir: Path,
    platform: str,
    snapshot_date: date,
    run_id: str,
    responses: Sequence[RawResponse],
    *,
    deferred_handles: Sequence[str] = (),
    requests_sent: int | None = None,
    message: str | None = None,
    failed: bool = False,
) -> Path:
    """Write ``responses`` as one complete run and return its folder. ``failed``: the
    extraction gave up before the end (what it fetched is complete all the same)."""
    run_dir = _claim_run_dir(partition_dir(landing_dir, platform, snapshot_date), run_id)
    for number, response in enumerate(responses):
        if response.platform != platform:
            raise ValueError(f"response for {response.platform} landed under {platform}")
        stem = f"{number:04d}"
        write_atomic(run_dir / f"{stem}{_BODY_SUFFIX}", gzip.compress(response.body, mtime=0))
        meta = {
            "platform": response.platform,
            "requested_handles": list(response.requested_handles),
            "request_url": redact_url(response.request_url),
            "status_code": response.status_code,
            "fetched_at": _utc_iso(response.fetched_at),
            "elapsed_ms": response.elapsed_ms,
            "body_sha256": hashlib.sha256(response.body).hexdigest(),
            "is_synthetic": response.is_synthetic,
        }
        write_atomic(run_dir / f"{stem}{_META_SUFFIX}", _json_bytes(meta))
    manifest = {
        "platform": platform,
        "snapshot_date": snapshot_date.isoformat(),
        "run_id": run_id,
        "responses": len(responses),
        "requests_sent": len(responses) if requests_sent is None else requests_sent,
        "deferred_handles": list(deferred_handles),
        "message": message,
        "failed": failed,
        "completed_at": _utc_iso(datetime.now(UTC)),
    }
    # Last, so a reader seeing the marker knows every response file before it is complete.
    write_atomic(run_dir / SUCCESS_MARKER, _json_bytes(manifest))
    return run_dir


def latest_complete_run(landing_dir: Path, platform: str, snapshot_date: date) -> Path | None:
    """The most recently completed run folder for the partition, or ``None``."""
    runs = complete_runs(landing_dir, platform, snapshot_date)
    return runs[-1] if runs else None


def complete_runs(landing_dir: Path, platform: str, snapshot_date: date) -> list[Path]:
    """The partition's complete run folders, the earliest completed first."""
    partition = partition_dir(landing_dir, platform, snapshot_date)
    if not partition.is_dir():
        return []
    candidates: list[tuple[str, float, str, Path]] = []
    for run_dir in partition.iterdir():
        marker = run_dir / SUCCESS_MARKER
        if not run_dir.is_dir() or not marker.is_file():
            continue
        try:
            completed_at = str(json.loads(marker.read_bytes()).get("completed_at", ""))
        except (OSError, ValueError, AttributeError):
            continue
        candidates.append((completed_at, marker.stat().st_mtime, run_dir.name, run_dir))
    return [run_dir for *_, run_dir in sorted(candidates)]


def failed_landing_of_run(
    landing_dir: Path, platform: str, snapshot_date: date, run_id: str
) -> Path | None:
    """The latest complete landing of ``run_id`` (of any of its tries) when its extraction
    failed, or ``None``: when the run landed nothing yet, or its latest landing did not
    fail (a try after it starts over, as a new run does)."""
    partition = partition_dir(landing_dir, platform, snapshot_date)
    if not partition.is_dir():
        return None
    base = f"run={safe_run_id(run_id)}"
    tries: list[tuple[int, dict[str, Any], Path]] = []
    for run_dir in partition.iterdir():
        suffix = run_dir.name.removeprefix(base)
        is_try = suffix == "" or (suffix[:1] == "." and suffix[1:].isdigit())
        if suffix == run_dir.name or not is_try:
            continue
        manifest = _manifest(run_dir)
        # Another run's id may look like a later try's folder name ("<id>.2"): its
        # manifest tells them apart.
        if manifest is not None and manifest.get("run_id") == run_id:
            tries.append((int(suffix[1:] or 1), manifest, run_dir))
    if not tries:
        return None
    _, manifest, latest = max(tries, key=lambda entry: entry[0])
    return latest if manifest.get("failed") is True else None


def _manifest(run_dir: Path) -> dict[str, Any] | None:
    """The ``_SUCCESS`` manifest of a complete landing, or None (incomplete, unreadable)."""
    try:
        manifest = json.loads((run_dir / SUCCESS_MARKER).read_bytes())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def read_landed(run_dir: Path) -> tuple[list[RawResponse], dict[str, Any]]:
    """The responses of a complete run, in request order, and its ``_SUCCESS`` manifest."""
    marker = run_dir / SUCCESS_MARKER
    if not marker.is_file():
        raise LandingError(f"{run_dir} is not a complete landing (no {SUCCESS_MARKER})")
    manifest: dict[str, Any] = json.loads(marker.read_bytes())
    responses: list[RawResponse] = []
    for meta_path in sorted(run_dir.glob(f"*{_META_SUFFIX}")):
        stem = meta_path.name.removesuffix(_META_SUFFIX)
        meta = json.loads(meta_path.read_bytes())
        try:
            body = gzip.decompress((run_dir / f"{stem}{_BODY_SUFFIX}").read_bytes())
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise LandingError(f"{run_dir / stem}{_BODY_SUFFIX}: unreadable ({exc})") from exc
        responses.append(
            RawResponse(
                platform=meta["platform"],
                requested_handles=tuple(meta["requested_handles"]),
                request_url=meta["request_url"],
                status_code=int(meta["status_code"]),
                body=body,
                fetched_at=datetime.fromisoformat(meta["fetched_at"]),
                elapsed_ms=float(meta["elapsed_ms"]),
                # Landings from before the flag came only from real replies or unlabelled.
                is_synthetic=bool(meta.get("is_synthetic", False)),
            )
        )
    expected = manifest.get("responses")
    if isinstance(expected, int) and expected != len(responses):
        raise LandingError(
            f"{run_dir}: manifest lists {expected} responses, found {len(responses)}"
        )
    return responses, manifest


def _claim_run_dir(partition: Path, run_id: str) -> Path:
    partition.mkdir(parents=True, exist_ok=True)
    base = f"run={safe_run_id(run_id)}"
    attempt = 1
    while True:
        run_dir = partition / (base if attempt == 1 else f"{base}.{attempt}")
        try:
            # mkdir is atomic: of two writers racing for a folder, exactly one gets it.
            run_dir.mkdir()
        except FileExistsError:
            attempt += 1
            continue
        return run_dir


def write_atomic(path: Path, payload: bytes, *, partial: Path | None = None) -> None:
    """Write ``payload`` to ``path`` whole or not at all, and to the disk before it is named
    ``path``: written to ``partial`` (a hidden ``.tmp`` beside it by default), synced, then
    renamed over ``path``."""
    partial = partial or path.with_name(f".{path.name}.tmp")
    with partial.open("wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _json_bytes(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps in the landing zone must be timezone-aware")
    return moment.astimezone(UTC).isoformat()
