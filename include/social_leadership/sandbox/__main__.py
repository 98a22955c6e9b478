"""Run the sandbox API until SIGTERM or SIGINT.

    python -m social_leadership.sandbox --port 8765 [--roster PATH] [--ready-file PATH] [--token T]
        [--youtube-key K]

With ``--port 0`` the system picks a free port; ``--ready-file`` receives the base URL once
the server listens, so a supervisor (a test, docker-compose healthcheck) knows where and when.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from social_leadership.sandbox.server import (
    SANDBOX_TOKEN,
    SANDBOX_YOUTUBE_KEY,
    SYNTHETIC_STAND_INS,
    SandboxServer,
)

# YouTube takes an API key (key=) where the other platforms take the bearer token.
YOUTUBE_KEY_ENV = "SLW_SANDBOX_YOUTUBE_KEY"
YOUTUBE_KEY_HELP = (
    "the API key YouTube's route takes (key=), where the others take the token "
    f"(default: {YOUTUBE_KEY_ENV}, else {SANDBOX_YOUTUBE_KEY!r})"
)


CONNECTIONS_FILE_HELP = (
    "write an Airflow connection slw_<platform> to this sandbox for every platform, as "
    "AIRFLOW_CONN_* lines a shell reads (set -a; . FILE; set +a), then slw dags test "
    "platform_metrics asks it; readable by you alone (it holds the token), removed when "
    "the sandbox stops"
)


def write_connections(server: SandboxServer, path: Path) -> None:
    """``server``'s connections (:meth:`SandboxServer.connection_env`) as shell assignments,
    the file readable by its owner alone and complete once it has its name."""
    lines = [f"{name}={shlex.quote(value)}\n" for name, value in server.connection_env().items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.unlink(missing_ok=True)
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.writelines(lines)
    os.replace(partial, path)


def stand_ins_help() -> str:
    """The synthetic accounts served where the roster has none (for --help)."""
    lines = ["When the roster has no account on one of these platforms, the sandbox serves"]
    lines.append("synthetic stand-ins there:")
    lines += [
        f"  {platform}: {', '.join(handles)}" for platform, handles in SYNTHETIC_STAND_INS.items()
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m social_leadership.sandbox",
        description="Local sandbox of the platform APIs serving synthetic counts.",
        epilog=stand_ins_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--roster", type=Path, help="roster CSV (default: SLW_ROSTER_PATH)")
    parser.add_argument("--ready-file", type=Path, help="write the base URL here when listening")
    parser.add_argument("--connections-file", type=Path, help=CONNECTIONS_FILE_HELP)
    parser.add_argument(
        "--token",
        default=os.environ.get("SLW_SANDBOX_TOKEN", SANDBOX_TOKEN),
        help="the bearer token of every platform route that takes one "
        f"(default: SLW_SANDBOX_TOKEN, else {SANDBOX_TOKEN!r})",
    )
    parser.add_argument(
        "--youtube-key",
        default=os.environ.get(YOUTUBE_KEY_ENV, SANDBOX_YOUTUBE_KEY),
        help=YOUTUBE_KEY_HELP,
    )
    args = parser.parse_args(argv)
    return serve(
        host=args.host,
        port=args.port,
        roster=args.roster,
        ready_file=args.ready_file,
        token=args.token,
        youtube_key=args.youtube_key,
        connections_file=args.connections_file,
    )


def serve(
    *,
    host: str,
    port: int,
    roster: Path | None,
    ready_file: Path | None,
    token: str,
    youtube_key: str = SANDBOX_YOUTUBE_KEY,
    connections_file: Path | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT (also what ``slw sandbox`` runs)."""
    if connections_file is not None and connections_file.is_dir():
        print(f"error: --connections-file {connections_file} is a folder", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    # Serving for as long as it runs: no request log (it would grow with every request).
    server = SandboxServer(
        roster=roster,
        host=host,
        port=port,
        token=token,
        youtube_key=youtube_key,
        record_requests=False,
    )
    base_url = server.start()
    try:
        print(f"sandbox listening on {base_url}", flush=True)
        if token == SANDBOX_TOKEN:
            # The well-known demo token, no secret: a client needs it for the other routes.
            print(f"  bearer token {token!r}: every route that takes one", flush=True)
        if youtube_key == SANDBOX_YOUTUBE_KEY:
            # The well-known demo key, no secret: a client needs it to reach YouTube's route.
            print(f"  youtube: takes the API key {youtube_key!r} (key=)", flush=True)
        for platform, handles in server.stand_ins.items():
            print(
                f"  {platform}: the roster has none; serving synthetic {', '.join(handles)}",
                flush=True,
            )
        if connections_file:
            write_connections(server, connections_file)
            print(
                f"  connections slw_* to it in {connections_file}: set -a; . "
                f"{shlex.quote(str(connections_file))}; set +a",
                flush=True,
            )
        if ready_file:
            ready_file.parent.mkdir(parents=True, exist_ok=True)
            partial = ready_file.with_name(ready_file.name + ".tmp")
            partial.write_text(base_url + "\n", encoding="utf-8")
            # Atomic, so a poller never reads half a URL.
            os.replace(partial, ready_file)
        while not stopping.wait(timeout=1.0):
            pass
    finally:
        server.stop()
        if connections_file:
            # Naming a sandbox no longer there, it would send a later run to a dead port.
            connections_file.unlink(missing_ok=True)
        print("sandbox stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
