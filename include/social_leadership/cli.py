"""Command line: ``slw <command>`` (or ``python -m social_leadership <command>``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from social_leadership.settings import ENV_PREFIX, SETTING_DOCS, load_settings


def _settings(_: argparse.Namespace) -> int:
    settings = load_settings()
    values = settings.as_env()
    for name, doc in SETTING_DOCS.items():
        key = ENV_PREFIX + name
        print(f"{key:<26} {values[key]}\n{'':<26} {doc}")
    return 0


def _run(_: argparse.Namespace) -> int:
    from social_leadership.demo import main

    return main()


def _summary(_: argparse.Namespace) -> int:
    import duckdb

    from social_leadership.summary import build_summary

    settings = load_settings()
    try:
        print(build_summary(settings))
    except duckdb.IOException as exc:
        # DuckDB allows one writer or many readers: a running pipeline task holds the file.
        print(
            f"cannot read {settings.warehouse_path} now (a pipeline task is writing it; "
            f"try again when the run ends): {str(exc).splitlines()[0]}",
            file=sys.stderr,
        )
        return 1
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from social_leadership.sandbox.__main__ import main

    return main(args.sandbox_args) or 0


def _import_history(args: argparse.Namespace) -> int:
    from social_leadership.history import HistoryFileError, import_history
    from social_leadership.roster import load_roster
    from social_leadership.warehouse import connect

    settings = load_settings()
    roster = load_roster(settings.roster_path)
    failed = False
    with connect(settings.warehouse_path) as con:
        for path in args.paths:
            try:
                outcome = import_history(con, path, roster, settings.quarantine_dir)
            except HistoryFileError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failed = True
                continue
            for error in outcome.errors:
                print(f"rejected {error}", file=sys.stderr)
            print(
                f"{path}: {outcome.rows_loaded} rows loaded, {outcome.rows_rejected} rejected"
                + (f" (kept in {outcome.quarantine_path})" if outcome.quarantine_path else "")
            )
            failed = failed or outcome.rows_rejected > 0
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slw", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="run the pipeline for today against the sandbox API"
    ).set_defaults(func=_run)
    commands.add_parser("summary", help="print the summary of the last run").set_defaults(
        func=_summary
    )
    commands.add_parser("settings", help="print every SLW_* setting in force").set_defaults(
        func=_settings
    )
    history = commands.add_parser(
        "import-history", help="import follower history files (CSV or Parquet) into raw"
    )
    history.add_argument("paths", nargs="+", type=Path)
    history.set_defaults(func=_import_history)
    sandbox = commands.add_parser("sandbox", help="serve the sandbox platform API")
    sandbox.add_argument("sandbox_args", nargs=argparse.REMAINDER)
    sandbox.set_defaults(func=_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
