"""What every platform connector shares: batching, retries, rate limits, raw responses.

A connector's ``extract`` only fetches; it returns the raw responses as they came (save
for a credential the server echoed back, which is replaced by ``REDACTED``) so they can be
landed. ``parse`` turns one stored response back into observations, so the loader can
re-parse landed files without calling the platform again.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import re
import ssl
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import httpx

from social_leadership.formatting import counted
from social_leadership.platforms.redaction import REDACTED, Redactor

# Query parameters that carry credentials on some platforms (YouTube's key=, Graph's
# access_token=): they never reach a log, a landed file or an exception message.
SECRET_QUERY_PARAMS = frozenset(
    {"key", "api_key", "apikey", "access_token", "token", "client_secret", "bearer_token"}
)
USER_AGENT = "social-leadership-warehouse/0.1"
log = logging.getLogger(__name__)
# The first wait after a 429 whose reset time is now or past (a clock ahead of the
# server's, a reset rounded down): the window has not reopened yet, so the retry waits at
# least this long, doubled at each further 429 of the same request.
MIN_RATE_LIMIT_WAIT_SECONDS = 1.0
# A numeric reset header below this (2001-09-09 as epoch seconds) is a number of seconds
# from now: no server names a reset in the past by an epoch time that old.
RESET_AS_DELTA_BELOW = 1_000_000_000


class AccountStatus(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"
    SUSPENDED = "suspended"
    PROTECTED = "protected"
    HIDDEN = "hidden_counts"
    DEFERRED = "deferred"
    ERROR = "error"


class PlatformError(Exception):
    """A platform call failed in a way retrying will not fix. Messages hold no credentials.

    Raised by :meth:`Connector.extract` after some batches were answered, ``partial`` holds
    what was read (the accounts left listed as deferred), for it to be landed all the same;
    ``landing_dir`` is where it was landed.
    """

    partial: ExtractResult | None = None
    landing_dir: str | None = None
    # The requests sent before it ended, the refused one too (for the audit).
    requests_sent: int = 0


# A reply carrying this header with the value ``true`` holds invented counts: the sandbox
# API (social_leadership.sandbox) sends it on every reply, no real platform API does. The
# connectors keep it with the response and the loader records it per raw row
# (raw.platform_metrics.is_synthetic), so synthetic data is labelled at its source without
# production code knowing the demo.
SYNTHETIC_HEADER = "X-SLW-Synthetic"


@dataclass(frozen=True)
class RawResponse:
    platform: str
    requested_handles: tuple[str, ...]
    request_url: str
    status_code: int
    body: bytes
    fetched_at: datetime
    elapsed_ms: float
    # The reply said its counts are synthetic (SYNTHETIC_HEADER).
    is_synthetic: bool = False


@dataclass(frozen=True)
class AccountObservation:
    platform: str
    account_handle: str
    account_id: str | None
    status: AccountStatus
    followers: int | None
    following: int | None
    posts: int | None
    observed_at: datetime
    # The account the handle's account says it moved to (Mastodon's ``moved``), whose
    # counts these are: said in the run's alert, never stored.
    moved_to: str | None = None


@dataclass
class ExtractResult:
    platform: str
    responses: list[RawResponse] = field(default_factory=list)
    requests_sent: int = 0
    deferred_handles: list[str] = field(default_factory=list)
    message: str | None = None
    # Retries ran out on transient faults (5xx, timeouts, garbled replies): the platform
    # failed, though what it answered before is kept. A rate-limit deferral is not this.
    gave_up: bool = False
    # Some accounts' requests were refused (a 4xx, a redirect) while the others were read,
    # as when one Mastodon instance of several refuses: the platform failed, and a retry
    # would meet the same answer.
    refused: bool = False
    # The batches stopped before the last (a rate limit, a spent budget, the API failing),
    # not just one account given up: accounts a batch left out are deferred, not looked up.
    stopped_early: bool = False

    @property
    def is_complete(self) -> bool:
        return not self.deferred_handles and self.message is None


def merge_results(result: ExtractResult, more: ExtractResult) -> None:
    """Add what a further extraction of the same run (``more``) fetched to ``result``."""
    result.responses.extend(more.responses)
    result.requests_sent += more.requests_sent
    result.deferred_handles.extend(more.deferred_handles)
    result.gave_up = result.gave_up or more.gave_up
    result.refused = result.refused or more.refused
    result.stopped_early = result.stopped_early or more.stopped_early
    if more.message and more.message != result.message:
        result.message = f"{result.message}; {more.message}" if result.message else more.message


def read_before(refusal: PlatformError, platform: str, handles: Sequence[str]) -> ExtractResult:
    """What an extraction of ``handles`` read before ``refusal`` (its ``partial``: the
    replies landed, the accounts not answered deferred), marked refused; every handle
    deferred when the refusal tells nothing of what was read."""
    read = refusal.partial
    if read is None:
        read = ExtractResult(platform, deferred_handles=list(handles))
    read.message, read.refused = str(refusal), True
    return read


def extract_with_follow_up(
    extract: Callable[[Sequence[str]], ExtractResult],
    handles: Sequence[str],
    left_out: Callable[[RawResponse], list[str]],
    forget: Callable[[str], object],
) -> ExtractResult:
    """``extract(handles)``, then each account an answered batch left out (``left_out`` of
    its response: an id gone stale) looked up on its own, its learned id ``forget``-ed first.

    When the batches stopped early (a rate limit, a quota, the API failing; not one account
    given up), the left-out accounts are deferred with the rest: a lookup each would only be
    sent into the same wall. A
    refusal, in either pass, is raised carrying the whole run's replies and requests and
    every account not yet answered, those left out included, as :meth:`Connector.extract`
    promises: the replies already given are landed and not asked for again.
    """
    try:
        result = extract(handles)
    except PlatformError as refusal:
        if refusal.partial is not None:
            for response in refusal.partial.responses:
                for handle in left_out(response):
                    forget(handle)
                    refusal.partial.deferred_handles.append(handle)
        raise
    retry = [handle for response in result.responses for handle in left_out(response)]
    for handle in retry:
        forget(handle)
    if retry and result.stopped_early:
        result.deferred_handles.extend(retry)
    elif retry:
        try:
            merge_results(result, extract(retry))
        except PlatformError as refusal:
            merge_results(result, read_before(refusal, result.platform, retry))
            refusal.partial = result
            raise
    return result


def redact_url(url: str) -> str:
    """``url`` with credential-bearing query values, and a ``user:password@`` before its
    host, replaced by ``REDACTED``."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=f"{REDACTED}@{parts.netloc.rsplit('@', 1)[1]}")
        url = urlunsplit(parts)
    if not parts.query:
        return url
    pairs = [
        (name, REDACTED if name.lower() in SECRET_QUERY_PARAMS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe=",:@")))


# How many handles or ids of a batch a message shows of its request's URL.
SHOWN_QUERY_VALUES = 3


def shown_url(url: str) -> str:
    """``url`` as a message shows it: a batch's list of handles or ids (a comma-separated
    value, or a parameter repeated) cut to its first few and how many in all. A whole X
    batch, a hundred usernames, filled a failed load's message in the task log, the alert
    and ``audit.platform_loads`` with 2 KB of names."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    counts = Counter(name for name, _ in pairs)
    shown: list[tuple[str, str]] = []
    seen: Counter[str] = Counter()
    for name, value in pairs:
        seen[name] += 1
        values = value.split(",")
        if len(values) > SHOWN_QUERY_VALUES:
            value = ",".join(values[:SHOWN_QUERY_VALUES]) + f",...({len(values)})"
        if seen[name] <= SHOWN_QUERY_VALUES:
            shown.append((name, value))
        elif seen[name] == SHOWN_QUERY_VALUES + 1:
            shown.append((name, f"...({counts[name]})"))
    if not pairs or shown == pairs:
        return url
    return urlunsplit(parts._replace(query=urlencode(shown, safe=",:@.()[]")))


def dedupe_handles(handles: Sequence[str], key: Callable[[str], str] = str.casefold) -> list[str]:
    """Handles without repeats (by ``key``), first occurrence kept, order preserved."""
    seen: set[str] = set()
    unique: list[str] = []
    for handle in handles:
        normalized = key(handle)
        if normalized not in seen:
            seen.add(normalized)
            unique.append(handle)
    return unique


def utc_now() -> datetime:
    return datetime.now(UTC)


def observation_without_counts(
    response: RawResponse, handle: str, status: AccountStatus
) -> AccountObservation:
    """An observation of ``handle`` that carries a status but no counts."""
    return counted_observation(response, handle, None, followers=None, status=status)


def observations_without_counts(
    response: RawResponse, status: AccountStatus
) -> list[AccountObservation]:
    """An observation of every handle the response was asked for, with ``status``."""
    return [observation_without_counts(response, h, status) for h in response.requested_handles]


def failed_response_observations(response: RawResponse) -> list[AccountObservation] | None:
    """Observations for a response that carries no data (non-200), else ``None``.

    A landed 429 means the accounts were deferred, not missing; anything else is an error.
    """
    if response.status_code == 200:
        return None
    status = AccountStatus.DEFERRED if response.status_code == 429 else AccountStatus.ERROR
    return observations_without_counts(response, status)


def read_reply(response: RawResponse) -> dict[str, Any] | list[AccountObservation]:
    """The JSON object of a 200 reply; or, when there is none to read, what every requested
    handle was instead (see :func:`failed_response_observations`; a body that is not a
    JSON object is an error)."""
    failed = failed_response_observations(response)
    if failed is not None:
        return failed
    document = json_document(response.body)
    if not isinstance(document, dict):
        return observations_without_counts(response, AccountStatus.ERROR)
    return document


def counted_observation(
    response: RawResponse,
    handle: str,
    account_id: object,
    *,
    followers: int | None,
    following: int | None = None,
    posts: int | None = None,
    status: AccountStatus | None = None,
    hidden: bool = False,
    moved_to: str | None = None,
) -> AccountObservation:
    """An observation of ``handle`` with the counts ``response`` gave; ``account_id`` as
    the platform sent it (a number or a string; None when it sent none). Its status is
    ``status`` when given, else ok when the follower count is known; when it is not,
    hidden if the reply said so (``hidden``: a negative count, YouTube's flag), else an
    error: a reply without the count is no answer, and read as hidden it replaced the
    counts the day already had."""
    if status is None:
        if followers is not None:
            status = AccountStatus.OK
        else:
            status = AccountStatus.HIDDEN if hidden else AccountStatus.ERROR
    return AccountObservation(
        platform=response.platform,
        account_handle=handle,
        account_id=None if account_id is None else str(account_id),
        status=status,
        followers=followers,
        following=following,
        posts=posts,
        observed_at=response.fetched_at,
        moved_to=moved_to,
    )


@functools.cache
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    del cert_file, cert_dir  # the cache key: httpx reads them from the environment
    return httpx.create_ssl_context()


def tls_context() -> ssl.SSLContext:
    """The TLS context every client of this process verifies servers with, made once per
    CA bundle (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` if set, else certifi's, as httpx
    chooses): a client made with none loads the bundle itself, about 20 ms of CPU (measured
    here), for each run of each platform. A context is meant to be shared by connections.
    The bundle is read once per process: a bundle replaced in place reaches the processes
    started after it."""
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


def quiet_http_logs() -> None:
    """httpx and httpcore log every request URL at INFO/DEBUG, and YouTube's API key travels
    in the URL: their loggers are kept at WARNING (the connectors log redacted URLs)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


class UnreadableCount(ValueError):
    """A reply sent a count that is not a whole number (``12.5``, ``"1.2K"``, ``true``)."""


_DIGITS = re.compile(r"-?[0-9]+")
# The largest count the warehouse holds (BIGINT): far above any account's, so a larger one
# is a broken reply.
MAX_COUNT = 2**63 - 1


def count_value(document: Mapping[str, Any], key: str) -> int | None:
    """A count from a JSON object: an integer, a float with a whole value (``583423.0``, as
    a JSON encoder working in doubles writes it) or a string of digits (YouTube's form).
    ``None`` when absent or null, or negative (some Mastodon forks send -1 for a hidden
    count). Raises :class:`UnreadableCount` for any other value, or one above
    :data:`MAX_COUNT`: the account's counts are then unknown, an error, not a hidden count
    (and the platform's other accounts still load)."""
    value = document.get(key)
    if value is None:
        return None
    whole_float = isinstance(value, float) and value.is_integer()
    digits = isinstance(value, str) and _DIGITS.fullmatch(value) is not None
    if whole_float or digits:
        count = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    else:
        raise UnreadableCount(f"{key} = {json.dumps(value)[:40]} is not a whole number")
    if count > MAX_COUNT:
        raise UnreadableCount(f"{key} = {str(count)[:40]} is larger than any count can be")
    return count if count >= 0 else None


def hidden_count(document: Mapping[str, Any], key: str | None) -> bool:
    """Whether ``document`` sends ``key`` as a negative number: a count the account hides
    (some Mastodon forks send -1), which :func:`count_value` reads as None."""
    value = document.get(key) if key else None
    if isinstance(value, str):
        return _DIGITS.fullmatch(value) is not None and value.startswith("-")
    return isinstance(value, int | float) and not isinstance(value, bool) and value < 0


class _AnsweredTwice:
    def __repr__(self) -> str:
        return "ANSWERED_TWICE"


# What :func:`keyed` gives for a key two entries of one reply give with other figures.
ANSWERED_TWICE: Any = _AnsweredTwice()


def keyed(
    entries: Iterable[tuple[object, Any]], figures: Callable[[Any], object]
) -> dict[str, Any]:
    """Each entry of a reply by its key (an entry without a text key left out), and
    :data:`ANSWERED_TWICE` for a key two entries give with other ``figures`` (the account's
    id and counts): a reply that answers an account twice, with other figures, says nothing
    sure of it (:func:`answered_twice`). The same figures repeated are one answer, whatever
    else the two entries hold (a fetch time, a viewer's state)."""
    by_key: dict[str, Any] = {}
    for key, entry in entries:
        if not isinstance(key, str):
            continue
        first = by_key.setdefault(key, entry)
        if first is not ANSWERED_TWICE and figures(first) != figures(entry):
            by_key[key] = ANSWERED_TWICE
    return by_key


def answered_twice(response: RawResponse, handle: str) -> AccountObservation:
    """The observation of ``handle`` when the reply holds it twice with other figures: an
    error for that account alone, never either answer picked."""
    problem = UnreadableCount("the reply answers it twice, with other figures")
    return unreadable_counts(response, handle, problem)


def unreadable_counts(
    response: RawResponse, handle: str, problem: UnreadableCount
) -> AccountObservation:
    """The observation of ``handle`` whose reply held a count that is not a whole number:
    an error for that account alone (the reply's other accounts are read as usual)."""
    log.warning("%s: %s for %s: recorded as an error", response.platform, problem, handle)
    return observation_without_counts(response, handle, AccountStatus.ERROR)


@dataclass(frozen=True)
class Verdict:
    """What a connector makes of one HTTP reply (see :meth:`Connector.judge`).

    ``land``: keep the reply (its accounts are parsed from it, even a per-account 404);
    ``rate_limited``: the platform's limit hit, wait ``wait_seconds`` (None: unknown);
    ``retry``: transient, retry with backoff; ``fatal``: stop the platform's run.
    """

    action: str
    message: str = ""
    wait_seconds: float | None = None


LAND = Verdict("land")


def json_document(body: bytes) -> Any:
    """The parsed JSON body, or ``None`` when it is not valid JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


# A link's host: an http(s) URL's, or a bare host.domain/ before a path.
_LINK_HOST = re.compile(r"(?:https?://)?(?P<host>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?:/|$)", re.I)


def on_site(host: str, sites: Iterable[str]) -> bool:
    """Whether ``host`` (lowercase) is one of ``sites`` or a subdomain of one."""
    return any(host == site or host.endswith("." + site) for site in sites)


def profile_link(
    hosts: Sequence[str] | None,
    path: str,
    *,
    reserved: Sequence[str] = (),
    tabs: Sequence[str] = (),
) -> re.Pattern[str]:
    """A pattern of links to a profile page: on one of ``hosts`` (any case, with or without
    scheme, ``www.`` or another one-label subdomain such as ``m.`` or ``de.``), or on any
    host when ``hosts`` is None (the group ``instance``); then ``path`` (a regular
    expression, its group ``handle`` the handle), then one of the profile's ``tabs``
    (regular expressions: ``videos``), a query or a fragment. A first path segment in
    ``reserved`` (the site's own pages: ``x.com/home``) is no profile, nor is any other
    page below one (a post: ``x.com/jack/status/20``, whose author it names)."""
    if hosts is None:
        host = r"(?P<instance>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
    else:
        host = r"(?:[a-z-]+\.)?(?:" + "|".join(re.escape(h) for h in hosts) + ")"
    not_reserved = ""
    if reserved:
        words = "|".join(re.escape(word) for word in reserved)
        not_reserved = rf"(?!(?:{words})(?:[/?#]|$))"
    tab = ""
    if tabs:
        tab = "(?:/(?:" + "|".join(tabs) + "))?"
    tail = rf"{tab}/?(?:[?#].*)?"
    return re.compile(rf"(?:https?://)?{host}/{not_reserved}{path}{tail}", re.I)


@dataclass(frozen=True)
class ConnectionField:
    """One field of the Airflow connection ``slw_<platform>`` that a connector takes.

    ``source`` is where it is set: the connection's ``password`` or ``login``, or a key of
    its JSON ``extra`` (``extra_key``, by default ``option``). ``option`` is the keyword
    argument of the connector's constructor that receives it; ``meaning`` says what to put
    there. A ``required`` field the connection leaves empty fails the platform, with a
    message naming the field.
    """

    option: str
    source: Literal["password", "login", "extra"]
    meaning: str
    required: bool = False
    extra_key: str | None = None

    @property
    def key(self) -> str:
        """The ``extra`` key the value is read from (for ``source == "extra"``)."""
        return self.extra_key or self.option


class _RateLimited(Exception):
    """The rate limit stops the run: the reset is unknown or too far (``wait_seconds``), or
    the request met a 429 again after every wait allowed (``waits_spent`` of them)."""

    def __init__(self, wait_seconds: float | None, waits_spent: int | None = None) -> None:
        super().__init__(wait_seconds)
        self.wait_seconds = wait_seconds
        self.waits_spent = waits_spent


class _Exhausted(Exception):
    """Retries used up on transient failures; carries a credential-free description."""


class Connector(ABC):
    """Base for one platform's connector, and the one place that platform's facts are stated.

    A subclass declares the class attributes below and implements :meth:`build_request`
    and :meth:`parse`; registered with :func:`~social_leadership.platforms.registry.register`,
    it is all the pipeline needs to know about the platform (the roster's column and handle
    check, the Airflow connection, the extract and load tasks, the dbt seed row).
    """

    # The platform's id: roster column, raw rows, dim_platform, the connection slw_<platform>.
    platform: ClassVar[str]
    # Its name as people write it (dim_platform.platform_name).
    display_name: ClassVar[str]
    # Where requests go when the connection leaves the host empty: the public API.
    public_base_url: ClassVar[str]
    # The connection fields the constructor takes, with what each means.
    connection_fields: ClassVar[tuple[ConnectionField, ...]] = ()
    # A roster handle in its stored form (see normalize_handle).
    handle_pattern: ClassVar[re.Pattern[str]]
    # Whether the "@" people write before a handle is dropped from the stored form.
    drops_at_sign: ClassVar[bool] = False
    # The links to an account's profile page a roster may hold in place of its handle, as
    # copied from a browser (made with profile_link): each one's group "handle" is the
    # handle. A link to one of profile_hosts that none of them reads is refused, saying
    # which links are read (profile_link_forms).
    profile_links: ClassVar[tuple[re.Pattern[str], ...]] = ()
    profile_hosts: ClassVar[tuple[str, ...]] = ()
    profile_link_forms: ClassVar[str] = ""
    # The most accounts one request may ask for.
    batch_size: ClassVar[int]
    # "api" when an API returns executives' follower counts, "import" when only files can
    # (dim_platform.follower_source).
    follower_source: ClassVar[Literal["api", "import"]] = "api"
    # The constructor option that takes what earlier landings taught (handle -> account
    # id, see learn_state), or None for a connector that keeps nothing between runs.
    state_option: ClassVar[str | None] = None
    # Headers naming when the window resets, as epoch seconds; Retry-After is always honoured.
    rate_limit_reset_headers: ClassVar[tuple[str, ...]] = ()
    rate_limit_remaining_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.Client | None = None,
        max_wait_seconds: float = 60,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        observed_clock: Callable[[], datetime] | None = None,
        timeout_seconds: float = 30.0,
        max_attempts: int = 4,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
        max_rate_limit_waits: int = 3,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.max_wait_seconds = max_wait_seconds
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.max_rate_limit_waits = max_rate_limit_waits
        self._client = client
        self._sleep = sleep
        self._clock = clock
        # When a reply was read (its observed_at); the rate-limit arithmetic keeps ``clock``.
        self._observed_clock = observed_clock or clock
        self._redactor = Redactor()
        # The base URL and headers of the last reply read: a further extraction of the run
        # (a follow-up's lookups) sends nothing into a window that reply said is spent.
        self._last_reply: tuple[str, httpx.Headers] | None = None

    def __repr__(self) -> str:
        # Never the credentials: a repr reaches logs and tracebacks.
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def keep_secret(self, secret: str | None) -> str | None:
        """Register a credential this connector sends, so that no server text quoting it
        (an error body, a landed reply) carries it further; returns it unchanged."""
        self._redactor.add(secret)
        return secret

    # --- what a platform defines -------------------------------------------------------

    @abstractmethod
    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        """The request fetching one batch of at most ``batch_size`` handles."""

    @classmethod
    @abstractmethod
    def parse(cls, response: RawResponse) -> list[AccountObservation]:
        """Observations for every requested handle, from the stored response alone."""

    @staticmethod
    def handle_key(handle: str) -> str:
        """The form under which two handles name the same account."""
        return handle.casefold()

    @classmethod
    def normalize_handle(cls, value: str) -> str:
        """The stored form of a roster handle, or of a link to the account's profile page;
        raises ``ValueError`` when it is neither."""
        text = value.strip()
        handle = cls.clean_handle(cls.handle_in_link(text))
        if not cls.handle_pattern.match(handle):
            raise ValueError(f"{text!r} is not a valid {cls.platform} handle")
        return handle

    @classmethod
    def handle_in_link(cls, text: str) -> str:
        """The handle a profile link names (:attr:`profile_links`), else ``text``; raises
        ``ValueError`` for a link to the platform that names no account the roster reads."""
        # A browser copies a name in another script percent-encoded (/in/j%C3%B6rg).
        link = unquote(text) if "%" in text else text
        for pattern in cls.profile_links:
            match = pattern.fullmatch(link)
            if match:
                return cls.link_handle(match)
        # A page of the site, not a bare name: bsky.app is a Bluesky handle.
        on_host = _LINK_HOST.match(link) if "/" in link else None
        host = on_host.group("host").lower() if on_host else ""
        if on_site(host, cls.profile_hosts):
            raise ValueError(
                f"{text!r} links to no {cls.display_name} profile: write the handle, or the "
                f"profile's link ({cls.profile_link_forms})"
            )
        return text

    @classmethod
    def link_handle(cls, match: re.Match[str]) -> str:
        """The handle in a matched profile link."""
        return match.group("handle")

    @classmethod
    def clean_handle(cls, handle: str) -> str:
        """``handle`` (stripped) in the spelling :attr:`handle_pattern` is checked against."""
        return handle.removeprefix("@") if cls.drops_at_sign else handle

    @classmethod
    def is_import_only(cls, handle: str) -> bool:
        """Whether the API cannot tell this account's counts (a LinkedIn member, a Facebook
        profile): it is never requested, and its counts come in by history import."""
        return False

    @classmethod
    def learn_state(cls, responses: Iterable[RawResponse]) -> dict[str, str]:
        """What landed responses teach a later run: handle -> the platform's account id,
        for every account they read (a later response wins), its counts public or hidden.
        Used when :attr:`state_option` is set."""
        learned: dict[str, str] = {}
        found = (AccountStatus.OK, AccountStatus.HIDDEN)
        for response in responses:
            for observation in cls.parse(response):
                if observation.account_id and observation.status in found:
                    learned[observation.account_handle] = observation.account_id
        return learned

    def plan_batches(self, handles: list[str]) -> list[list[str]]:
        """Split unique handles into requests; platforms with two lookup modes override."""
        return [
            handles[start : start + self.batch_size]
            for start in range(0, len(handles), self.batch_size)
        ]

    def judge(self, status: int, body: bytes, headers: httpx.Headers) -> Verdict:
        """Classify a reply. The default covers the common HTTP conventions; platforms
        whose throttling or not-found signal is an error body override it."""
        if status == 429:
            return Verdict("rate_limited", wait_seconds=self._seconds_until_reset(headers))
        if status >= 500:
            return Verdict("retry", f"HTTP {status}")
        if status in (401, 403):
            # What answered said why (a token expired, a proxy's page): shown, as a 404's is.
            said = f" (the reply: {_brief(body, 200)})" if body.strip() else ""
            refused = f"HTTP {status}: credentials missing, wrong, expired or lacking access"
            return Verdict("fatal", refused + said)
        if status >= 400:
            return Verdict("fatal", f"HTTP {status}: {_brief(body)}")
        document = json_document(body)
        if document is None:
            # A truncated or garbled body is a transport fault, not the platform's answer.
            return Verdict("retry", "HTTP 200 with a body that is not valid JSON")
        if self.body_is_error(document):
            return Verdict("retry", "HTTP 200 carrying an error body")
        return LAND

    def budget_spent(self, headers: httpx.Headers) -> str | None:
        """Why the run stops before the next request though the last reply was fine (a
        platform reporting its usage, not a remaining count, says the budget is nearly
        spent), or None to go on. The accounts left are deferred."""
        return None

    @classmethod
    def body_is_error(cls, document: Any) -> bool:
        """Whether a 200 reply's JSON is an error document (some gateways answer so)."""
        return isinstance(document, dict) and "error" in document

    @classmethod
    def left_unanswered(cls, response: RawResponse) -> str | None:
        """What a reply to be landed left unanswered of the accounts it was asked for, when
        the API answers each of them (found or not): then the reply is retried as a 200
        carrying an error body is, and a batch that keeps being answered so is given up
        (the platform fails, a later try asks its accounts again). None when the reply
        answers every account, or the API does not say of each."""
        return None

    # --- shared behaviour --------------------------------------------------------------

    def extract(self, handles: Sequence[str]) -> ExtractResult:
        """Fetch current counts for ``handles`` in as few requests as the platform allows.

        Stops early, without error, when the platform's rate limit would need a longer wait
        than ``max_wait_seconds``. A batch that keeps failing is given up (``gave_up`` is
        set) and each batch after it is tried once: the rest are asked as long as one of
        every two answers (one account whose every reply fails, on a platform asked one
        account a request, kept every account after it unread in every try of the run);
        two failing in a row, the API is taken to be failing and the rest are not asked.
        The handles not fetched are listed in ``deferred_handles`` and ``message`` says
        why.
        Authentication and other non-retryable failures raise :class:`PlatformError`,
        carrying what the batches before read (its ``partial``).
        Import-only accounts (:meth:`is_import_only`) are not requested.
        """
        unique = dedupe_handles(handles, self.handle_key)
        batches = self.plan_batches([h for h in unique if not self.is_import_only(h)])
        result = ExtractResult(platform=self.platform)
        given_up = False  # a batch was given up: each after it gets one attempt
        failed_before = False  # the batch just before this one failed
        more_given_up = 0  # accounts of batches after the first given up, failed too
        with self._http() as client:
            for index, batch in enumerate(batches):
                if index == 0 and self._last_reply and self._last_reply[0] == self.base_url:
                    closed = self._window_closed(self._last_reply[1])
                    if closed is not None:
                        self._defer(result, batches, closed)
                        result.stopped_early = True
                        break
                try:
                    response, headers = self._fetch_batch(
                        client, batch, result, attempts=1 if given_up else self.max_attempts
                    )
                except PlatformError as refusal:
                    # What the earlier batches read is kept with the refusal: a later try
                    # of the run lands it and need not ask for those accounts again.
                    self._defer(result, batches[index:], str(refusal))
                    result.refused = True
                    refusal.partial = result
                    raise
                except _RateLimited as limited:
                    self._defer(result, batches[index:], self._rate_limit_message(limited))
                    result.stopped_early = True
                    break
                except _Exhausted as exhausted:
                    result.gave_up = True
                    if failed_before:
                        # Two requests in a row: the API failing, not one account.
                        left = sum(map(len, batches[index:]))
                        said = (
                            f"the next request failed too: {counted(left, 'account')} left unread"
                        )
                        self._defer(result, batches[index:], said)
                        result.stopped_early = True
                        break
                    if given_up:
                        more_given_up += len(batch)
                        self._defer(result, [batch], "")
                    else:
                        self._defer(result, [batch], str(exhausted))
                    given_up = failed_before = True
                    continue
                failed_before = False
                result.responses.append(response)
                self._last_reply = (self.base_url, headers)
                if index + 1 < len(batches):
                    closed = self._window_closed(headers)
                    if closed is not None:
                        self._defer(result, batches[index + 1 :], closed)
                        result.stopped_early = True
                        break
        if more_given_up:
            failed = counted(more_given_up, "later account")
            self._defer(result, [], f"{failed} failed at the one try each had, left for the retry")
        return result

    def new_client(self) -> httpx.Client:
        """The HTTP client a run opens when none was given."""
        return httpx.Client(
            timeout=self.timeout_seconds,
            headers={"User-Agent": USER_AGENT},
            verify=tls_context(),
        )

    def prepare(self, client: httpx.Client, batch: Sequence[str]) -> httpx.Request:
        """:meth:`build_request` merged with ``client``'s defaults (its User-Agent among
        them), which ``client.send`` leaves out of a request built elsewhere."""
        request = self.build_request(batch)
        return client.build_request(request.method, request.url, headers=request.headers)

    @contextmanager
    def _http(self) -> Iterator[httpx.Client]:
        quiet_http_logs()
        if self._client is not None:
            yield self._client
            return
        with self.new_client() as client:
            yield client

    def _defer(self, result: ExtractResult, batches: list[list[str]], message: str) -> None:
        """Defer the handles of ``batches``, ``message`` saying why after what earlier
        deferrals of the run said (an account given up, then the rate limit)."""
        result.deferred_handles.extend(handle for batch in batches for handle in batch)
        if message:
            result.message = f"{result.message}; {message}" if result.message else message

    def _rate_limit_message(self, limited: _RateLimited) -> str:
        if limited.waits_spent is not None:
            return (
                f"{self.platform}: still rate limited after {limited.waits_spent} wait(s) for "
                "the reset, all the run may make for one request (max_rate_limit_waits)"
            )
        if limited.wait_seconds is None:
            return f"{self.platform}: rate limited and the server named no reset time"
        return (
            f"{self.platform}: rate limited; reset in {limited.wait_seconds:.0f}s exceeds "
            f"the {self.max_wait_seconds:.0f}s the run may wait"
        )

    def _fetch_batch(
        self, client: httpx.Client, batch: list[str], result: ExtractResult, *, attempts: int
    ) -> tuple[RawResponse, httpx.Headers]:
        """One batch's reply, after at most ``attempts`` tries of its transient faults
        (then :class:`_Exhausted`)."""
        attempt = 0
        rate_limit_waits = 0
        while True:
            request = self.prepare(client, batch)
            url = self._redactor.text(redact_url(str(request.url)))
            shown = shown_url(url)
            fetched_at = self._observed_clock()
            started = time.perf_counter()
            result.requests_sent += 1
            attempt += 1
            try:
                response = client.send(request, stream=True)
                try:
                    # Before anything reads it: a server quoting the request quotes its token.
                    body = self._redactor.bytes(self._read_in_time(response, started))
                finally:
                    response.close()
            except httpx.LocalProtocolError as exc:
                # The request as built breaks HTTP (a header value holding a line break or
                # another control character): no retry sends it. Its text quotes the header.
                message = (
                    f"{self.platform}: {type(exc).__name__}: the request to {shown} could not "
                    "be sent, a header holds a character HTTP refuses (a line break?); "
                    "check the credential in the platform's connection"
                )
                raise PlatformError(self._redactor.text(message)) from None
            except httpx.UnsupportedProtocol:
                # The connection's URL names a scheme HTTP has not (ftp://, or a word taken
                # for one): no retry reaches anything, and it was retried as a network fault.
                scheme = urlsplit(self.base_url).scheme or "none"
                message = (
                    f"{self.platform}: the base URL's scheme ({scheme}) is not http or "
                    f"https: check the host and schema of the connection slw_{self.platform}"
                )
                raise PlatformError(self._redactor.text(message)) from None
            except (httpx.TransportError, httpx.DecodingError) as exc:
                # A DecodingError is a garbled reply (a body that is not the gzip it claims).
                # The exception text can embed the request; name only its type.
                failure = f"{type(exc).__name__} calling {shown}"
                if isinstance(exc, httpx.ConnectError):
                    # Nothing took the connection: a host, port or scheme of the connection
                    # that names no server (or a TLS handshake with a plain HTTP one).
                    failure += (
                        f" (no connection made: check the scheme, host and port of the "
                        f"connection slw_{self.platform}, and that the server is up)"
                    )
                self._retry_or_give_up(attempt, attempts, failure)
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            status = response.status_code
            if 300 <= status < 400:
                # httpx follows no redirect, so the credential stays with the configured
                # host; an API that moved is for the connection to say, not a day of data.
                message = (
                    f"{self.platform}: HTTP {status} redirect (from {shown}) not followed: "
                    "credentials go only to the configured host; check the connection's host"
                )
                raise PlatformError(self._redactor.text(message))
            verdict = self.judge(status, body, response.headers)
            if verdict.action == "rate_limited":
                wait = verdict.wait_seconds
                if wait is None or wait > self.max_wait_seconds:
                    raise _RateLimited(wait)
                if rate_limit_waits >= self.max_rate_limit_waits:
                    raise _RateLimited(wait, waits_spent=rate_limit_waits)
                if wait <= 0:
                    # A reset already past: retrying at once would only meet the 429 again.
                    wait = min(
                        self.max_wait_seconds,
                        MIN_RATE_LIMIT_WAIT_SECONDS * 2**rate_limit_waits,
                    )
                rate_limit_waits += 1
                self._sleep(wait)
                continue
            if verdict.action == "retry":
                self._retry_or_give_up(attempt, attempts, f"{verdict.message} from {shown}")
                continue
            if verdict.action == "fatal":
                message = f"{self.platform}: {verdict.message} (from {shown})"
                raise PlatformError(self._redactor.text(message))
            raw = RawResponse(
                platform=self.platform,
                requested_handles=tuple(batch),
                request_url=url,
                status_code=status,
                body=body,
                fetched_at=fetched_at,
                elapsed_ms=round(elapsed_ms, 3),
                is_synthetic=is_synthetic_reply(response.headers),
            )
            left = self.left_unanswered(raw)
            if left is not None:
                self._retry_or_give_up(attempt, attempts, f"HTTP 200 {left} from {shown}")
                continue
            return raw, response.headers

    def _read_in_time(self, response: httpx.Response, started: float) -> bytes:
        """The reply's body, read by ``timeout_seconds`` after the request was sent. httpx's
        timeout bounds each read alone: a reply trickling a byte at a time (a proxy, a
        server in trouble) held the task for as long as it dripped. Raises
        :class:`httpx.ReadTimeout` (retried as any timeout) once the time is up."""
        chunks = []
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if time.perf_counter() - started > self.timeout_seconds:
                raise httpx.ReadTimeout(
                    f"the reply took more than {self.timeout_seconds:g}s", request=response.request
                )
        return b"".join(chunks)

    def _retry_or_give_up(self, attempt: int, attempts: int, failure: str) -> None:
        if attempt >= attempts:
            message = f"{self.platform}: {failure}; gave up after {attempt} attempts"
            raise _Exhausted(self._redactor.text(message))
        delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        # Full jitter spreads retries of parallel tasks so they do not hit the API together.
        self._sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not security

    def _window_closed(self, headers: httpx.Headers) -> str | None:
        """Why no further request may follow the reply that sent ``headers`` (its budget
        spent, or its window's reset further off than the run may wait), after waiting for
        a reset near enough; None to go on."""
        spent = self.budget_spent(headers)
        if spent is not None:
            return spent
        try:
            self._respect_remaining_budget(headers)
        except _RateLimited as limited:
            return self._rate_limit_message(limited)
        return None

    def _respect_remaining_budget(self, headers: httpx.Headers) -> None:
        """Wait for the window reset before the next batch if the last reply spent the budget.

        Sending into an exhausted window only earns a 429, which some platforms count
        against the app.
        """
        remaining = _first_int(headers, self.rate_limit_remaining_headers)
        if remaining is None or remaining > 0:
            return
        wait = self._seconds_until_reset(headers)
        if wait is None or wait > self.max_wait_seconds:
            raise _RateLimited(wait)
        self._sleep(wait)

    def _seconds_until_reset(self, headers: httpx.Headers | dict[str, str]) -> float | None:
        now = self._clock()
        retry_after = _header(headers, "retry-after")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                try:
                    when = parsedate_to_datetime(retry_after)
                    # An HTTP date is in GMT; its asctime form names no zone.
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=UTC)
                    return max(0.0, (when - now).total_seconds())
                except (TypeError, ValueError):
                    pass
        for name in self.rate_limit_reset_headers:
            value = _header(headers, name)
            if value:
                try:
                    reset = float(value)
                    # Epoch seconds as the reference says; a small number is the seconds
                    # left, as the IETF RateLimit headers define the field.
                    if reset < RESET_AS_DELTA_BELOW:
                        return max(0.0, reset)
                    return max(0.0, reset - now.timestamp())
                except ValueError:
                    pass
                # Mastodon names the reset as an ISO-8601 timestamp; RFC 3339 allows the
                # UTC designator in either case.
                text = value.strip()
                if text[-1:] in ("Z", "z"):
                    text = text[:-1] + "+00:00"
                try:
                    reset = datetime.fromisoformat(text)
                except ValueError:
                    continue
                if reset.tzinfo is None:
                    reset = reset.replace(tzinfo=UTC)
                return max(0.0, (reset - now).total_seconds())
        return None


def is_synthetic_reply(headers: httpx.Headers | dict[str, str]) -> bool:
    """Whether a reply's headers say its counts are synthetic (:data:`SYNTHETIC_HEADER`)."""
    value = _header(headers, SYNTHETIC_HEADER.lower())
    return value is not None and value.strip().lower() == "true"


def _header(headers: httpx.Headers | dict[str, str], name: str) -> str | None:
    """The header's value; of a header sent twice (a proxy may repeat one), the first line
    (httpx would join them with a comma, which no number or date reads)."""
    if isinstance(headers, httpx.Headers):
        values = headers.get_list(name)
        return values[0] if values else None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _first_int(headers: httpx.Headers | dict[str, str], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = _header(headers, name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                continue
    return None


def _brief(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."
