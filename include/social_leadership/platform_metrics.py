"""Platform metrics: extract (point-in-time), land, and load into ``raw.platform_metrics``.

Platform APIs return current counts only, so a run may observe only its own day: a run
whose logical date is not today (UTC) skips extraction and says so in the load audit
rather than labelling today's counts with a past date.

Loading replays the landed raw responses of the latest complete landing of a
(platform, date) and replaces that day's API rows in one transaction: reruns never
duplicate, and a crash mid-load leaves the previous state.

An extraction that gave up on transient faults (retries spent on 5xx, timeouts, garbled
replies) is ``failed``, and so is its load, though what it did fetch is landed and loaded.
A rate-limit deferral (stop, keep what we have, defer the rest) is not a failure.

A later try of the same run (an Airflow retry) starts from the run's failed landing: it
asks only for the accounts no earlier try read, and lands the earlier replies with its
own, so its load sees each account once and the platform bills it once. A new run of the
day asks for every account.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from social_leadership.landing import (
    complete_runs,
    failed_landing_of_run,
    land_responses,
    latest_complete_run,
    read_landed,
)
from social_leadership.platforms import build_connector, connector_class
from social_leadership.platforms.base import (
    AccountObservation,
    AccountStatus,
    ExtractResult,
    PlatformError,
    RawResponse,
)
from social_leadership.platforms.redaction import Redactor
from social_leadership.warehouse import transaction

log = logging.getLogger(__name__)

METRIC_COLUMNS = (
    "platform",
    "snapshot_date",
    "account_handle",
    "account_id",
    "account_status",
    "followers",
    "following",
    "posts",
    "observed_at",
    "source",
    "landing_path",
    "loaded_at",
    "is_synthetic",
)


@dataclass
class ExtractOutcome:
    platform: str
    snapshot_date: date
    status: str  # landed | skipped_backfill | not_configured | failed
    requests_sent: int = 0
    accounts_requested: int = 0
    deferred: int = 0
    landing_dir: str | None = None  # set when something landed, a failed extract's too
    message: str | None = None
    # A failure on transient faults (a later try may get through), not a refused request.
    transient: bool = False
    # Accounts an earlier, failed try of the same run had read: not requested again.
    accounts_reused: int = 0


@dataclass
class LoadOutcome:
    platform: str
    snapshot_date: date
    status: str  # loaded | failed | skipped_backfill | not_configured | nothing_landed
    accounts_requested: int = 0
    accounts_loaded: int = 0
    accounts_missing: int = 0
    requests_sent: int = 0
    message: str | None = None
    # Accounts answered only after the day ended: loaded as deferred, not as the day's.
    read_late: int = 0
    # Accounts the platform answered are not found, and the first few of them by name.
    not_found: int = 0
    not_found_examples: list[str] = field(default_factory=list)
    # Accounts answered without counts it could read (an error), and the first few by name.
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    # Handles answered by another account than in the days before (its id changed), and
    # the first few: "alpha (id 999, was 101)".
    changed: int = 0
    changed_examples: list[str] = field(default_factory=list)
    # Handles whose account moved to another (counted by the new one), and the first few:
    # "gina@social.example to gina@new.example".
    moved: int = 0
    moved_examples: list[str] = field(default_factory=list)

    def add_to_message(self, note: str) -> None:
        """``note`` after the message, if any, as one more thing said of the load."""
        self.message = f"{self.message}; {note}" if self.message else note


def observation_date(logical_date: datetime, now: datetime | None = None) -> date | None:
    """The day a run may label its counts with, or None when the run is for another day."""
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    return today if logical_date.astimezone(UTC).date() == today else None


def accounts_to_ask(platform: str, handles: list[str]) -> list[str]:
    """The roster's accounts the platform's API is asked about: all but the import-only
    ones (a LinkedIn member, a Facebook profile), whose counts come by history import."""
    import_only = connector_class(platform).is_import_only
    return [handle for handle in handles if not import_only(handle)]


def refusal_with_fix(message: str, platform: str) -> str:
    """A platform's refusal (a token rejected, a key not valid, a permission missing) and
    where to mend it, unless it names that already."""
    connection = f"slw_{platform}"
    # A message saying how to mend it already: "check the connection's host", "... the
    # credential in the platform's connection".
    if connection in message or "connection" in message.casefold():
        return message
    return f"{message} (fix: check the Airflow connection {connection}: its host, token or key)"


def not_configured_message(platform: str) -> str:
    return (
        f"{platform} is not configured: no Airflow connection slw_{platform}, so nothing "
        "was sent (add the connection to extract it)"
    )


def extract_platform(
    platform: str,
    handles: list[str],
    base_url: str | None,
    credentials: str | None,
    landing_dir: Path,
    run_id: str,
    logical_date: datetime,
    *,
    now: datetime | None = None,
    login: str | None = None,
    **connector_options: Any,
) -> ExtractOutcome:
    """Fetch today's counts for the handles and land the raw responses.

    ``login`` is the connection's own-account field (Instagram); ``connector_options`` go
    to the connector (tests pass ``sleep``, ``max_wait_seconds``; Mastodon
    ``allowed_instances``). A connector that keeps state between runs (its
    ``state_option``: Mastodon ids, Bluesky DIDs, YouTube channel ids) gets what the
    earlier landings taught. Without ``base_url`` nothing is sent (``not_configured``). A
    refused request raises :class:`PlatformError`; no message holds ``credentials``.
    """
    # Counted as asked for, and left deferred by a try after midnight, are only these.
    handles = accounts_to_ask(platform, handles)
    snapshot_date = observation_date(logical_date, now)
    if snapshot_date is None and run_id:
        # A retry after midnight (UTC) of a try that failed on its day: what that try read
        # on the day is the day's, and is landed for the load; nothing more can be asked.
        day = logical_date.astimezone(UTC).date()
        earlier = EarlierTries.of_run(landing_dir, platform, day, run_id)
        if earlier.responses:
            return _land_the_day_s_earlier_tries(landing_dir, day, run_id, handles, earlier)
    if snapshot_date is None:
        message = (
            f"logical date {logical_date.date()} is not today: the {platform} API only "
            "returns current counts, so extraction is skipped; history comes from daily "
            "snapshots and imports"
        )
        log.warning(message)
        return ExtractOutcome(
            platform,
            logical_date.date(),
            "skipped_backfill",
            accounts_requested=len(set(handles)),
            message=message,
        )
    if base_url is None:
        message = not_configured_message(platform)
        log.warning(message)
        return ExtractOutcome(platform, snapshot_date, "not_configured", message=message)
    if now is not None:
        # The replies' time (their observed_at) is the run's clock too: the load labels a
        # day only with counts read on that day. (Waits for a rate limit keep real time.)
        connector_options.setdefault("observed_clock", lambda: now)
    redactor = Redactor([credentials])
    earlier = EarlierTries.of_run(landing_dir, platform, snapshot_date, run_id)
    to_request = earlier.unanswered(handles)
    reused = len(set(handles)) - len(set(to_request))
    try:
        state_option = connector_class(platform).state_option
        if state_option is not None:
            connector_options.setdefault(state_option, known_account_ids(landing_dir, platform))
        connector = build_connector(platform, base_url, credentials, login, **connector_options)
        result = connector.extract(to_request)
    except PlatformError as exc:
        refusal = PlatformError(refusal_with_fix(redactor.text(str(exc)), platform))
        partial = exc.partial
        refusal.requests_sent = partial.requests_sent if partial is not None else 0
        if partial is not None and (partial.responses or earlier.responses):
            # Landed all the same: the rows it read are loaded, and a later try of the run
            # asks only for the accounts left.
            partial.message = str(refusal)
            refusal.landing_dir = str(_land(landing_dir, snapshot_date, run_id, partial, earlier))
        raise refusal from None
    message = redactor.text(result.message) if result.message else None
    result.message = message
    run_dir = _land(landing_dir, snapshot_date, run_id, result, earlier)
    log.info(
        "%s: %d requests for %d accounts (%d read by earlier tries of the run), %d deferred, "
        "landed in %s%s",
        platform,
        result.requests_sent,
        len(set(handles)),
        reused,
        len(result.deferred_handles),
        run_dir,
        f" ({message})" if message else "",
    )
    return ExtractOutcome(
        platform,
        snapshot_date,
        "failed" if result.gave_up or result.refused else "landed",
        requests_sent=result.requests_sent,
        accounts_requested=len(set(handles)),
        deferred=len(result.deferred_handles),
        landing_dir=str(run_dir),
        message=message,
        transient=result.gave_up,
        accounts_reused=reused,
    )


def _land_the_day_s_earlier_tries(
    landing_dir: Path, day: date, run_id: str, handles: list[str], earlier: EarlierTries
) -> ExtractOutcome:
    """The outcome of a try that starts after its run's day ended: the replies earlier
    tries read on the day, landed as the run's, the accounts they left deferred. The
    platform failed on its day (the landing is a failed one): it stays failed, for the
    earlier tries' reason, as it would had this try come before midnight."""
    unread = earlier.unanswered(handles)
    day_ended = (
        f"{day} ended (UTC) before this try: the replies earlier tries of the run read on "
        f"it are loaded; {len(unread)} account(s) they left are not asked for now"
    )
    message = f"{earlier.message}; {day_ended}" if earlier.message else day_ended
    log.warning("%s: %s", earlier.platform, message)
    result = ExtractResult(earlier.platform, deferred_handles=unread, message=message, gave_up=True)
    run_dir = _land(landing_dir, day, run_id, result, earlier)
    return ExtractOutcome(
        earlier.platform,
        day,
        "failed",
        requests_sent=0,
        accounts_requested=len(set(handles)),
        deferred=len(unread),
        landing_dir=str(run_dir),
        message=message,
        # Not transient: a later try, after midnight too, could ask for nothing more.
        accounts_reused=len(set(handles)) - len(set(unread)),
    )


@dataclass(frozen=True)
class EarlierTries:
    """What earlier tries of the same run read, kept in its failed landing: the replies
    the platform answered, and the requests they cost. A try after a failed one asks only
    for the accounts they left unread (:meth:`unanswered`) and lands their replies with
    its own, so the load reads every account once and the platform bills it once."""

    platform: str
    responses: tuple[RawResponse, ...] = ()
    requests_sent: int = 0
    landing: Path | None = None
    # What the failed landing's manifest says: why the tries failed.
    message: str | None = None

    @classmethod
    def of_run(
        cls, landing_dir: Path, platform: str, snapshot_date: date, run_id: str
    ) -> EarlierTries:
        landing = failed_landing_of_run(landing_dir, platform, snapshot_date, run_id)
        if landing is None:
            return cls(platform)
        responses, manifest = read_landed(landing)
        requests_sent = manifest.get("requests_sent")
        if not isinstance(requests_sent, int):
            requests_sent = len(responses)
        log.info("%s: starting from the failed landing %s of this run", platform, landing)
        message = manifest.get("message")
        return cls(
            platform,
            tuple(responses),
            requests_sent,
            landing,
            message if isinstance(message, str) else None,
        )

    def unanswered(self, handles: list[str]) -> list[str]:
        """``handles`` but those the earlier replies answered (an account a reply left for
        another request, as a Mastodon batch does, is asked again)."""
        connector = connector_class(self.platform)
        answered = {
            connector.handle_key(observation.account_handle)
            for response in self.responses
            for observation in connector.parse(response)
            if observation.status is not AccountStatus.DEFERRED
        }
        return [handle for handle in handles if connector.handle_key(handle) not in answered]


def _land(
    landing_dir: Path,
    snapshot_date: date,
    run_id: str,
    result: ExtractResult,
    earlier: EarlierTries,
) -> Path:
    """Land the earlier tries' replies, then this try's, as one complete landing of the run."""
    return land_responses(
        landing_dir,
        result.platform,
        snapshot_date,
        run_id,
        [*earlier.responses, *result.responses],
        deferred_handles=result.deferred_handles,
        requests_sent=earlier.requests_sent + result.requests_sent,
        message=result.message,
        failed=result.gave_up or result.refused,
    )


def known_account_ids(landing_dir: Path, platform: str, days: int = 14) -> dict[str, str]:
    """Handle -> platform account id from every complete landing of the last ``days``
    landed days (newest wins), as the platform's connector learns it
    (:meth:`~social_leadership.platforms.base.Connector.learn_state`).

    Every landing of a day, not its latest alone: a later run of the day (or a later try
    of a run) that read nothing, throttled, left the ids learned earlier that day unknown,
    so a renamed account was asked for by its old handle and called not found, and each
    Mastodon account was looked up alone instead of in batches of 40.

    Read from the immutable landing zone, not the warehouse, so an extract task never
    needs the warehouse's single writer slot.
    """
    root = landing_dir / f"platform={platform}"
    if not root.is_dir():
        return {}
    learn = connector_class(platform).learn_state
    ids: dict[str, str] = {}
    dates = sorted((p.name.removeprefix("date=") for p in root.glob("date=*")), reverse=True)
    for day in reversed(dates[:days]):
        try:
            runs = complete_runs(landing_dir, platform, date.fromisoformat(day))
        except ValueError:
            continue
        for run_dir in runs:
            responses, _ = read_landed(run_dir)
            ids.update(learn(responses))
    return ids


def _observations_frame(
    observations: list[AccountObservation],
    snapshot_date: date,
    landing_path: str,
    loaded_at: datetime,
    synthetic_handles: set[str],
) -> pd.DataFrame:
    rows = [
        {
            "platform": o.platform,
            "snapshot_date": snapshot_date,
            "account_handle": o.account_handle,
            "account_id": o.account_id,
            "account_status": str(o.status),
            "followers": o.followers,
            "following": o.following,
            "posts": o.posts,
            "observed_at": o.observed_at,
            "source": "api",
            "landing_path": landing_path,
            "loaded_at": loaded_at,
            "is_synthetic": o.account_handle in synthetic_handles,
        }
        for o in observations
    ]
    frame = pd.DataFrame.from_records(rows, columns=list(METRIC_COLUMNS))
    for column in ("followers", "following", "posts"):
        # From the ints themselves: a column of ints and None is float64 to pandas, which
        # rounds a count past 2**53 and cannot hold one near 2**63 as an integer again.
        frame[column] = pd.array([row[column] for row in rows], dtype="Int64")
    return frame


def _write_audit(
    con: duckdb.DuckDBPyConnection, outcome: LoadOutcome, run_id: str, started_at: datetime
) -> None:
    con.execute(
        "delete from audit.platform_loads where platform = ? and snapshot_date = ? and run_id = ?",
        [outcome.platform, outcome.snapshot_date, run_id],
    )
    con.execute(
        """
        insert into audit.platform_loads values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            outcome.platform,
            outcome.snapshot_date,
            run_id,
            outcome.status,
            outcome.accounts_requested,
            outcome.accounts_loaded,
            outcome.accounts_missing,
            outcome.requests_sent,
            outcome.message,
            started_at,
            datetime.now(UTC),
        ],
    )


def record_skipped(
    con: duckdb.DuckDBPyConnection, extract: ExtractOutcome, run_id: str
) -> LoadOutcome:
    """Write an audit row for a day that landed nothing: a backfill, a platform not
    configured, or one whose request was refused (``failed``)."""
    outcome = LoadOutcome(
        extract.platform,
        extract.snapshot_date,
        extract.status,
        accounts_requested=extract.accounts_requested,
        # A refused platform read none of the accounts it asked for: each lacks its counts.
        accounts_missing=extract.accounts_requested if extract.status == "failed" else 0,
        requests_sent=extract.requests_sent,
        message=extract.message,
    )
    with transaction(con):
        if extract.status == "failed":
            # Said as in a load that kept them: "0 loaded, all missing" read as the day's
            # counts gone, where an earlier run's stay.
            kept = con.execute(
                "select count(*) from raw.platform_metrics where platform = ? "
                "and snapshot_date = ? and source = 'api' and account_status = 'ok'",
                [extract.platform, extract.snapshot_date],
            ).fetchone()
            if kept and kept[0]:
                note = f"kept {kept[0]} earlier observation(s) of the day"
                outcome.add_to_message(note)
        _write_audit(con, outcome, run_id, datetime.now(UTC))
    return outcome


def _on_the_day(
    observations: list[AccountObservation], day: date
) -> tuple[list[AccountObservation], int]:
    """The observations as ``day`` may be labelled with, and how many were read on another
    day: an extraction that crossed midnight (UTC) read some accounts on the next day, whose
    counts are not ``day``'s. Those are deferred (no counts; an earlier answer of ``day`` is
    kept), never given a past date."""
    kept: list[AccountObservation] = []
    late = 0
    for observation in observations:
        on_the_day = observation.observed_at.astimezone(UTC).date() == day
        if on_the_day or observation.status is AccountStatus.DEFERRED:
            kept.append(observation)
        else:
            late += 1
            kept.append(
                replace(
                    observation,
                    account_id=None,
                    status=AccountStatus.DEFERRED,
                    followers=None,
                    following=None,
                    posts=None,
                )
            )
    return kept, late


# The accounts not found an alert names (the rest are counted).
NAMED_NOT_FOUND = 5


# How far back a handle's account id is compared (days of API observations).
CHANGED_ACCOUNT_LOOKBACK_DAYS = 14


def _accounts_changed(con: duckdb.DuckDBPyConnection, platform: str, day: date) -> list[str]:
    """The handles of ``incoming_platform_metrics`` answered with counts by another account
    (another id) than their newest observation with counts of the days before: a handle
    given up and taken by someone else (an X username freed by a rename), whose counts are
    then another person's; or an account made anew. Said, not refused: which it is only
    the roster's keeper knows."""
    rows = con.execute(
        f"""
        with before as (
            select lower(account_handle) as handle_key,
                arg_max(account_id, snapshot_date) as account_id
            from raw.platform_metrics
            where platform = $platform and source = 'api' and account_status = 'ok'
                and account_id is not null
                and snapshot_date between $day - interval {CHANGED_ACCOUNT_LOOKBACK_DAYS} day
                    and $day - interval 1 day
            group by 1
        )
        select incoming.account_handle, incoming.account_id, before.account_id
        from incoming_platform_metrics as incoming
        inner join before on before.handle_key = lower(incoming.account_handle)
        where incoming.account_status = 'ok' and incoming.account_id is not null
            and incoming.account_id <> before.account_id
        order by lower(incoming.account_handle)
        """,
        {"platform": platform, "day": day},
    ).fetchall()
    return [f"{handle} (id {now}, was {was})" for handle, now, was in rows]


# A platform's reply that counts this many accounts or more, every one at 0 followers, is
# no count: a stub or placeholder answer (an API that changed, a proxy), never a roster of
# executives. Two new accounts at 0 are still believed.
ALL_ZERO_MIN_ACCOUNTS = 3


def _implausible_reply(observations: list[AccountObservation], platform: str) -> str | None:
    """Why a platform's answers of the day are no answer to load, or None: a wrong host or
    path, or an API that changed, reads as every account gone, every count 0, or no count
    readable anywhere. Loaded, they replaced the day's good counts (not found, 0 followers
    published to BI readers) and the run was green. Nothing of it is loaded: the day's
    earlier observations are kept, and the platform fails, saying so."""
    kept = "Nothing loaded: the day's earlier observations are kept"
    where = f"connection slw_{platform}"
    statuses = [o.status for o in observations]
    unanswered = (AccountStatus.DEFERRED, AccountStatus.ERROR)
    answered = sum(status not in unanswered for status in statuses)
    if answered > 1 and statuses.count(AccountStatus.NOT_FOUND) == answered:
        return (
            f"every account it answered about ({answered}) is not found: a wrong host or path "
            f"in {where}, an API that changed, or every handle renamed? {kept}"
        )
    counted = [o for o in observations if o.status == AccountStatus.OK]
    if len(counted) >= ALL_ZERO_MIN_ACCOUNTS and all(o.followers == 0 for o in counted):
        return (
            f"every account it counted ({len(counted)}) has 0 followers: placeholder answers "
            f"(an API that changed, a stub or proxy at the host of {where})? {kept}"
        )
    if len(statuses) > 1 and statuses.count(AccountStatus.ERROR) == len(statuses):
        return (
            f"no account of the {len(statuses)} asked was answered with counts it could "
            f"read: an API that changed, or another service at the host of {where}? {kept}"
        )
    return None


def load_platform_day(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    platform: str,
    snapshot_date: date,
    run_id: str,
    *,
    run_dir: Path | None = None,
) -> LoadOutcome:
    """Replace the day's API rows for one platform with a complete landing.

    ``run_dir`` is the landing the calling run's extract wrote; without it, the latest
    complete landing of the day. An account this landing could not read (deferred by a
    rate limit, or an error) keeps an earlier answer of the same day (its counts, or that
    it is not found, suspended, protected or hides its counts): a throttled rerun never
    replaces what the platform said with no answer. A landing whose extraction
    gave up is loaded all the same and audited ``failed``.
    """
    started_at = datetime.now(UTC)
    run_dir = run_dir or latest_complete_run(landing_dir, platform, snapshot_date)
    if run_dir is None:
        outcome = LoadOutcome(
            platform,
            snapshot_date,
            "nothing_landed",
            message=f"no complete landing for {platform} on {snapshot_date}",
        )
        with transaction(con):
            _write_audit(con, outcome, run_id, started_at)
        return outcome

    parse = connector_class(platform).parse
    responses, manifest = read_landed(run_dir)
    observations: list[AccountObservation] = []
    seen: set[str] = set()
    # Handles whose counts came in a reply marked synthetic (base.SYNTHETIC_HEADER).
    synthetic: set[str] = set()
    for response in responses:
        for observation in parse(response):
            if observation.account_handle not in seen:
                seen.add(observation.account_handle)
                observations.append(observation)
                if response.is_synthetic:
                    synthetic.add(observation.account_handle)
    observations, read_late = _on_the_day(observations, snapshot_date)
    deferred_at = datetime.now(UTC)
    for handle in manifest.get("deferred_handles", []):
        if handle not in seen:
            seen.add(handle)
            observations.append(
                AccountObservation(
                    platform, handle, None, AccountStatus.DEFERRED, None, None, None, deferred_at
                )
            )
    frame = _observations_frame(
        observations, snapshot_date, str(run_dir), datetime.now(UTC), synthetic
    )
    ok = int((frame["account_status"] == str(AccountStatus.OK)).sum())
    outcome = LoadOutcome(
        platform,
        snapshot_date,
        "failed" if manifest.get("failed") else "loaded",
        accounts_requested=len(observations),
        accounts_loaded=ok,
        accounts_missing=len(observations) - ok,
        requests_sent=int(manifest.get("requests_sent", len(responses))),
        message=manifest.get("message"),
    )
    not_found = sorted(
        o.account_handle for o in observations if o.status == AccountStatus.NOT_FOUND
    )
    outcome.not_found, outcome.not_found_examples = len(not_found), not_found[:NAMED_NOT_FOUND]
    errors = sorted(o.account_handle for o in observations if o.status == AccountStatus.ERROR)
    outcome.errors, outcome.error_examples = len(errors), errors[:NAMED_NOT_FOUND]
    moved = sorted(
        f"{o.account_handle} to {o.moved_to}"
        for o in observations
        if o.moved_to is not None and o.status == AccountStatus.OK
    )
    outcome.moved, outcome.moved_examples = len(moved), moved[:NAMED_NOT_FOUND]
    said = _implausible_reply(observations, platform)
    if said is not None:
        outcome.status = "failed"
        outcome.add_to_message(said)
        with transaction(con):
            _write_audit(con, outcome, run_id, started_at)
        return outcome
    outcome.read_late = read_late
    if read_late:
        note = (
            f"{read_late} account(s) answered after {snapshot_date} ended (UTC): not labelled "
            "with that day, left to the next day's run"
        )
        outcome.add_to_message(note)
    unread = [str(AccountStatus.DEFERRED), str(AccountStatus.ERROR)]
    con.register("incoming_platform_metrics", frame)
    changed = _accounts_changed(con, platform, snapshot_date)
    outcome.changed, outcome.changed_examples = len(changed), changed[:NAMED_NOT_FOUND]
    with transaction(con):
        # The accounts this run asked for, a handle in any case.
        con.execute(
            "create or replace temp table asked_accounts as "
            "select distinct lower(account_handle) as handle_key from incoming_platform_metrics"
        )
        # Answered later than this run observed them (a later run of the day loaded since
        # and this run's load was cleared and ran again, or two runs of the day loaded at
        # once): kept, the day's counts never go back to older ones.
        con.execute(
            """
            create or replace temp table newer_seen as
            select distinct lower(kept.account_handle) as handle_key
            from raw.platform_metrics as kept
            inner join incoming_platform_metrics as incoming
                on lower(incoming.account_handle) = lower(kept.account_handle)
            where kept.platform = $platform and kept.snapshot_date = $day
                and kept.source = 'api' and kept.account_status not in $unread
                and kept.observed_at > incoming.observed_at
            """,
            {"platform": platform, "day": snapshot_date, "unread": unread},
        )
        newer = con.execute("select count(*) from newer_seen").fetchone()[0]
        # A rerun of the day replaces the rows of the accounts it asked for. An account no
        # longer asked for (an executive taken off the roster, a roster column misread)
        # keeps its counts of the day, which no later run can fetch again (the APIs give
        # only the current counts); its answers without counts (not found: a handle
        # mistyped, since corrected) go, or the day's coverage counted them still. A
        # handle is one account in any case (the roster's spelling changed): a rerun
        # deferring it keeps the day's counts read under the other spelling.
        con.execute(
            """
            delete from raw.platform_metrics as kept
            where kept.platform = $platform and kept.snapshot_date = $day
                and kept.source = 'api'
                and (
                    (
                        lower(kept.account_handle) not in (select handle_key from asked_accounts)
                        and kept.followers is null
                        and kept.following is null
                        and kept.posts is null
                    )
                    or (
                        lower(kept.account_handle) in (select handle_key from asked_accounts)
                        and lower(kept.account_handle) not in (select handle_key from newer_seen)
                        and not (
                            kept.account_status not in $unread
                            and lower(kept.account_handle) in (
                                select lower(account_handle) from incoming_platform_metrics
                                where account_status in $unread
                            )
                        )
                    )
                )
            """,
            {"platform": platform, "day": snapshot_date, "unread": unread},
        )
        columns = ", ".join(METRIC_COLUMNS)
        con.execute(
            f"""
            insert into raw.platform_metrics ({columns})
            select {columns} from incoming_platform_metrics
            where lower(account_handle) not in (
                select lower(account_handle) from raw.platform_metrics
                where platform = $platform and snapshot_date = $day and source = 'api'
            )
            """,
            {"platform": platform, "day": snapshot_date},
        )
        kept, not_asked = con.execute(
            """
            select
                count(*) filter (where asked and not newer),
                count(*) filter (where not asked)
            from (
                select
                    lower(account_handle) in (select handle_key from asked_accounts) as asked,
                    lower(account_handle) in (select handle_key from newer_seen) as newer
                from raw.platform_metrics
                where platform = ? and snapshot_date = ? and source = 'api'
                    and landing_path <> ?
            )
            """,
            [platform, snapshot_date, str(run_dir)],
        ).fetchone() or (0, 0)
        con.unregister("incoming_platform_metrics")
        con.execute("drop table asked_accounts")
        con.execute("drop table newer_seen")
        if newer:
            outcome.add_to_message(
                f"kept the day's later observations of {newer} account(s), read after this "
                "run's (a later run of the day loaded them): this run's older counts of them "
                "are not loaded"
            )
        if kept:
            # Unread (deferred), or answered without counts it could read: not "unread".
            note = (
                f"kept {kept} earlier observation(s) of the day for accounts this run "
                "got no counts of"
            )
            outcome.add_to_message(note)
        if not_asked:
            outcome.add_to_message(
                f"kept {not_asked} earlier count(s) of the day for accounts this run did not "
                "ask for (no longer in the roster)"
            )
        _write_audit(con, outcome, run_id, started_at)
    return outcome
