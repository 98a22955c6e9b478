"""Extraction of 10,000 accounts per platform from a fault-free sandbox, over a bare loop
sending the very same requests (same URLs, same headers) through an ``httpx.Client`` with
the connector's settings. Bound 1.5: batching, retries, rate-limit bookkeeping and reply
checks may cost at most half again what the HTTP round trips cost.

The sandbox runs in its own process, so its request handling does not share the client's
interpreter (and its lock). Connector and bare loop alternate in slices of 2,000 accounts
of a platform (which goes first alternates too), so a drift in the machine's load hits
both sides alike: with whole platforms alternated, one slow stretch of the host gave one
side of one platform twice the other's time (threads 10.7 s against 5.0 s, 2026-12-03),
and the run's ratio 1.43 against a bound of 1.5. One pass: 41,000 requests each way
average out the noise of single requests (three passes gave ratios within 0.08 of each
other, against a bound 0.25 above them), and each further pass cost `make bench` 70 s. The
connector is given every account of a slice twice, as bench extract_requests asks (it
must not fetch any again); that benchmark reads its request counts, summed over the
slices, from this same pass (:func:`extraction`), which one `make bench` runs once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import statistics
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

import _common
from bench_extract_requests import (
    ACCOUNTS,
    BATCH_MAX,
    CREDENTIALS,
    bench_roster,
    handle,
    unlimited,
)

from social_leadership.demo.synthetic import synthetic_account_id
from social_leadership.platforms import build_connector
from social_leadership.platforms.base import Connector, dedupe_handles
from social_leadership.sandbox.server import SandboxServer

REPEATS = 1
# Accounts per slice: a multiple of every platform's batch maximum (bench extract_requests'
# BATCH_MAX), so the slices need as many requests as the whole and the minimum holds.
SLICE = 2_000
WARM_UP_ACCOUNTS = 500
BOUND = 1.5


def serve(pipe: Connection) -> None:
    """The sandbox process: serve until the parent says stop (or goes away)."""
    with SandboxServer(bench_roster(), limits=unlimited()) as server:
        pipe.send(server.base_url)
        with contextlib.suppress(EOFError):
            pipe.recv()


def connector_for(platform: str, base_url: str, handles: list[str]) -> Connector:
    options: dict[str, object] = {"sleep": lambda seconds: None}
    if platform == "mastodon":
        options["account_ids"] = {h: synthetic_account_id("mastodon", h) for h in handles}
    credentials, login = CREDENTIALS[platform]
    return build_connector(platform, base_url, credentials, login, **options)


def slices(handles: list[str]) -> list[list[str]]:
    """``handles`` in slices of :data:`SLICE`, in order (the last may be shorter)."""
    return [handles[start : start + SLICE] for start in range(0, len(handles), SLICE)]


def wire_requests(connector: Connector, handles: list[str]) -> list[tuple[str, dict[str, str]]]:
    """The URL and headers of every request the connector sends for ``handles``."""
    batches = connector.plan_batches(dedupe_handles(handles, connector.handle_key))
    with connector.new_client() as client:
        requests = [connector.prepare(client, batch) for batch in batches]
    return [(str(request.url), dict(request.headers)) for request in requests]


def bare_loop(connector: Connector, wire: list[tuple[str, dict[str, str]]]) -> int:
    """The baseline: the same requests in a plain loop, bodies read, nothing checked."""
    with connector.new_client() as client:
        for url, headers in wire:
            client.get(url, headers=headers)
    return len(wire)


def _measure() -> dict[str, dict[str, Any]]:
    """Per platform: the seconds of each connector pass and bare pass, and what the
    connector's last pass sent (``requests``, ``deferred``, ``complete``) for every account
    given twice (it must not ask for any again: bench extract_requests counts them), and
    the requests the bare loop sends (``wire``)."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    sandbox = context.Process(target=serve, args=(child,), daemon=True)
    sandbox.start()
    try:
        base_url = parent.recv()
        plans = {}
        for platform in BATCH_MAX:
            handles = [handle(platform, n) for n in range(ACCOUNTS)]
            connector = connector_for(platform, base_url, handles)
            plans[platform] = (
                connector,
                [(part, wire_requests(connector, part)) for part in slices(handles)],
            )
        # Untimed: the first platform's first accounts each way, so neither timed side pays
        # for the first connections and imports.
        warm_connector, warm_parts = next(iter(plans.values()))
        warm_handles = warm_parts[0][0][:WARM_UP_ACCOUNTS]
        warm_connector.extract(warm_handles)
        bare_loop(warm_connector, wire_requests(warm_connector, warm_handles))
        measured: dict[str, dict[str, Any]] = {}
        for repeat in range(REPEATS):
            for index, (platform, (connector, parts)) in enumerate(plans.items()):
                record = measured.setdefault(
                    platform,
                    {"connector": [], "bare": [], "wire": sum(len(w) for _, w in parts)},
                )
                spent = {"connector": 0.0, "bare": 0.0}
                requests = deferred = 0
                complete = True
                for number, (part, wire) in enumerate(parts):
                    order = ["connector", "bare"]
                    if (repeat + index + number) % 2:
                        order.reverse()
                    for kind in order:
                        started = time.perf_counter()
                        if kind == "connector":
                            result = connector.extract(part + part[::-1])
                        else:
                            bare_loop(connector, wire)
                        spent[kind] += time.perf_counter() - started
                    requests += result.requests_sent
                    deferred += len(result.deferred_handles)
                    complete = complete and result.is_complete
                record["connector"].append(spent["connector"])
                record["bare"].append(spent["bare"])
                record.update(requests=requests, deferred=deferred, complete=complete)
        return measured
    finally:
        parent.send("stop")
        sandbox.join(timeout=10)


def extraction() -> dict[str, dict[str, Any]]:
    """:func:`_measure`, once per ``make bench``: bench extract_requests reads its request
    counts, bench extract_time its times (the first of the two to run measures)."""
    return _common.cached_measurement("extraction", _measure)


def main() -> int:
    measured = extraction()
    total_connector = total_bare = 0.0
    for platform, record in measured.items():
        # A deferred account would shorten the connector's pass: a wrong number of requests.
        if not record["complete"] or record["requests"] != record["wire"]:
            print(
                f"{platform}: the connector sent {record['requests']} requests "
                f"(complete: {record['complete']}), the bare loop {record['wire']}"
            )
            return _common.report("extract_time", float("inf"), BOUND)
        connector_s = statistics.median(record["connector"])
        bare_s = statistics.median(record["bare"])
        total_connector += connector_s
        total_bare += bare_s
        print(
            f"{platform:<10} accounts={ACCOUNTS} requests={record['wire']} "
            f"connector={connector_s:.3f}s bare={bare_s:.3f}s ratio={connector_s / bare_s:.3f}",
            flush=True,
        )
    print(f"{'all':<10} connector={total_connector:.3f}s bare={total_bare:.3f}s", flush=True)
    # Each repeat's ratio over all platforms: their spread shows how many repeats it needs.
    for repeat in range(REPEATS):
        connector_s = sum(record["connector"][repeat] for record in measured.values())
        bare_s = sum(record["bare"][repeat] for record in measured.values())
        print(f"repeat {repeat + 1}: ratio {connector_s / bare_s:.3f}", flush=True)
    return _common.report("extract_time", total_connector / total_bare, BOUND)


if __name__ == "__main__":
    sys.exit(main())
