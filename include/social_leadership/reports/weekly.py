"""The weekly report: read the serving copy, write ``$SLW_REPORTS_DIR/<week>/``, mail it.

The report reads only the published serving data (the DuckLake catalog, read-only), never
the working warehouse, so it neither waits for nor blocks a build. A week's folder is
replaced whole: the files are written into a new folder that then takes the old one's
place. Mail goes through the SMTP connection ``slw_smtp`` to ``SLW_REPORT_EMAILS``, once
per week and recipient: a record under ``<reports>/.deliveries/`` (per week and last day)
names who has it, and a rerun of the same week mails again only those who have not (a
recipient the server refused, one added since) unless asked to mail all (``resend``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from social_leadership.bi import connect_serving
from social_leadership.landing import write_atomic
from social_leadership.mail import (
    Attachment,
    InlineImage,
    RecipientsRefusedError,
    build_message,
    failure_reason,
    send_each,
    sender_of,
    server_of,
)
from social_leadership.reports.data import ReportWeek, WeeklyReportData, collect
from social_leadership.reports.render import (
    HTML_NAME,
    PDF_NAME,
    RenderedReport,
    render,
    write_files,
)
from social_leadership.settings import Settings

log = logging.getLogger(__name__)

DELIVERIES_DIR = ".deliveries"
DEFAULT_FROM_EMAIL = "social-leadership-reports@localhost"
# Why a report was not mailed when recipients are set but no connection is.
NO_SMTP_CONNECTION = "no SMTP connection slw_smtp"


class ReportError(RuntimeError):
    """The report could not be written or mailed (the message says why)."""


@dataclass(frozen=True)
class WeeklyReport:
    week: ReportWeek
    folder: Path
    files: dict[str, Path]
    enough_data: bool
    mailed_to: tuple[str, ...]
    mail_skipped: str
    # The last day with data (None: not enough data); before week.end: a week to date.
    data_through: date | None = None
    # The report mailed from the folder before, kept apart since this one differs from it:
    # what was said of it and where it is now ('': none was).
    kept_mailed: str = ""

    @property
    def html(self) -> Path:
        return self.files[HTML_NAME]

    @property
    def pdf(self) -> Path:
        return self.files[PDF_NAME]


def read_report_data(settings: Settings, week: ReportWeek) -> WeeklyReportData:
    """The week's figures from the serving copy, or an empty report before any publish."""
    if not settings.serving_lake_path.exists():
        return WeeklyReportData(week, None, 0, settings.report_min_executives)
    with connect_serving(settings) as con:
        con.execute("set enable_progress_bar = false")
        return collect(
            con, week, min_executives=settings.report_min_executives, movers=settings.report_movers
        )


# In a report's folder once the report is mailed: to whom and on which day.
MAILED_MARK = ".mailed.json"


def _replace_folder(folder: Path, rendered: RenderedReport) -> tuple[dict[str, Path], str]:
    """Write the report into ``folder``, which it replaces whole; returns its files and,
    when the folder held a mailed report that differs from this one, what was said of
    that report and where it is kept (``<folder>_mailed_<day>``): the report its readers
    have is never lost. The same report mailed is left as it is (its PDF too)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    kept = ""
    try:
        write_files(rendered, staging)
        staging.chmod(0o755)
        mails = _mails_of(folder)
        if mails and _same_report(staging, folder):
            shutil.rmtree(staging, ignore_errors=True)
            return _files(folder), ""
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        if mails:
            old = _kept_folder(folder, mails)
            kept = f"the report {_mailed_on(mails)} differs from this one: it is kept in {old}"
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        if not mails:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _files(folder), kept


def _files(folder: Path) -> dict[str, Path]:
    return {path.name: path for path in sorted(folder.iterdir()) if not path.name.startswith(".")}


def _mails_of(folder: Path) -> list[dict[str, str]]:
    """To whom and on which day the report in ``folder`` was mailed ([]: never, or it was
    written before folders were marked)."""
    try:
        mails = json.loads((folder / MAILED_MARK).read_text(encoding="utf-8"))["mails"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [mail for mail in mails if isinstance(mail, dict) and mail.get("to")]


def _mark_mailed(folder: Path, address: str) -> None:
    mails = [*_mails_of(folder), {"to": address, "on": datetime.now(UTC).date().isoformat()}]
    write_atomic(
        folder / MAILED_MARK,
        (json.dumps({"mails": mails}, indent=2) + "\n").encode(),
        partial=folder / f"{MAILED_MARK}.partial",
    )


def _same_report(new: Path, mailed: Path) -> bool:
    """Whether two folders hold the same report: the same files, each HTML and CSV file
    the same bytes (the same serving data give the same ones; a PDF's bytes may differ)."""
    new_files, mailed_files = _files(new), _files(mailed)
    return new_files.keys() == mailed_files.keys() and all(
        path.read_bytes() == mailed_files[name].read_bytes()
        for name, path in new_files.items()
        if name != PDF_NAME
    )


def _kept_folder(folder: Path, mails: list[dict[str, str]]) -> Path:
    name = f"{folder.name}_mailed_{mails[0]['on']}"
    kept, number = folder.with_name(name), 1
    while kept.exists():
        number += 1
        kept = folder.with_name(f"{name}_{number}")
    return kept


def _mailed_on(mails: list[dict[str, str]]) -> str:
    days = list(dict.fromkeys(mail["on"] for mail in mails))
    to = list(dict.fromkeys(mail["to"] for mail in mails))
    return f"mailed on {', '.join(days)} to {', '.join(to)}"


def _delivery_record(settings: Settings, report: WeeklyReport) -> Path:
    # Per period, not per folder: a week-to-date report (make run, a mid-week slw report)
    # shares its ISO week's folder with the Monday run's full week, which still gets mailed.
    # A report whose data end before its last day is recorded apart: mailed, it stopped the
    # mail of the same days once their data were in. So is a "not enough data" report: it
    # stopped the mail of the week's figures once they were published.
    week, through = report.week, report.data_through
    name = f"{week.label}_{week.end.isoformat()}"
    if not report.enough_data:
        name += "_not_enough_data"
    elif through is not None and through < week.end:
        name += f"_through_{through.isoformat()}"
    return settings.reports_dir / DELIVERIES_DIR / f"{name}.json"


def mail_report(
    settings: Settings,
    report: WeeklyReport,
    rendered: RenderedReport,
    *,
    resend: bool,
    resend_run: str | None = None,
) -> tuple[tuple[str, ...], str]:
    """Mail the report once per week and recipient; returns (recipients mailed now, why
    none was). A recipient the server refuses fails it (:class:`ReportError`) once the
    others have it and are recorded, so that a retry mails only the one refused.

    ``resend`` mails every recipient again; a resend of ``resend_run`` (an Airflow run, whose
    retries must not mail twice) goes on where that run's earlier tries stopped."""
    recipients = settings.report_recipients
    if not recipients:
        return (), "SLW_REPORT_EMAILS is not set"
    # Airflow is imported only to mail: writing the report needs none of it.
    from social_leadership.alerts import SMTP_CONN_ID
    from social_leadership.orchestration import UnreadableConnectionError, airflow_connection

    try:
        connection = airflow_connection(SMTP_CONN_ID)
    except UnreadableConnectionError as exc:
        raise ReportError(
            f"the weekly report {report.week.heading} was not mailed: {exc}"
        ) from None
    record = _delivery_record(settings, report)
    if connection is None:
        # Every recipient has the week already (the connection removed since): nothing is
        # left to mail, and no connection is needed to mail nothing.
        _, _, pending = _mailed_and_pending(_recorded(record), recipients, resend, resend_run)
        if not pending:
            return (), _already_mailed(_recorded(record))
        return (), NO_SMTP_CONNECTION
    # One mail of the week at a time (a slw report started while the Monday run mails,
    # two retries): the second reads the record once the first has written it, or both
    # read it before either wrote, and every recipient got the week twice.
    with _record_lock(record):
        return _mail_pending(record, connection, recipients, report, rendered, resend, resend_run)


@contextmanager
def _record_lock(record: Path) -> Iterator[None]:
    record.parent.mkdir(parents=True, exist_ok=True)
    with open(record.with_name(f".{record.name}.lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _recorded(record: Path) -> dict[str, Any]:
    return json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}


def _mailed_and_pending(
    recorded: dict[str, Any],
    recipients: tuple[str, ...],
    resend: bool,
    resend_run: str | None,
) -> tuple[tuple[str, ...], str | None, list[str]]:
    """From the week's delivery record: who has the week, the resend the record is to
    name, and the recipients still to mail."""
    # A resend starts over, unless the record is of this very resend (a retry of its run).
    going_on = resend_run is not None and recorded.get("resend_run") == resend_run
    mailed = tuple(recorded.get("to", ())) if going_on or not resend else ()
    marker = resend_run if resend or going_on else recorded.get("resend_run")
    # An address is one mailbox in any case (as in SLW_REPORT_EMAILS itself): B@ mailed,
    # b@ has it.
    have = {address.casefold() for address in mailed}
    return mailed, marker, [address for address in recipients if address.casefold() not in have]


def _already_mailed(recorded: dict[str, Any]) -> str:
    return f"already mailed to {', '.join(recorded.get('to', ()))} (resend to mail again)"


def _mail_pending(
    record: Path,
    connection: Any,
    recipients: tuple[str, ...],
    report: WeeklyReport,
    rendered: RenderedReport,
    resend: bool,
    resend_run: str | None,
) -> tuple[tuple[str, ...], str]:
    from social_leadership.alerts import SMTP_CONN_ID

    recorded = _recorded(record)
    mailed, marker, pending = _mailed_and_pending(recorded, recipients, resend, resend_run)
    if not pending:
        return (), _already_mailed(recorded)
    sender = sender_of(connection, DEFAULT_FROM_EMAIL)
    images = [InlineImage(cid, png) for cid, png in rendered.inline_images().items()]
    pdf = Attachment(attachment_name(report), report.pdf.read_bytes(), "application/pdf")
    # A message per recipient, addressed to that recipient alone: readers outside the
    # organisation do not see who else gets the briefing.
    messages = [
        (
            address,
            build_message(
                sender=sender,
                recipients=[address],
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.mail_html,
                inline_images=images,
                attachments=[pdf],
            ),
        )
        for address in pending
    ]
    done: list[str] = []

    def delivered(address: str) -> None:
        # Recorded as each is mailed: a send that fails part-way (the server gone, the
        # task killed) leaves those mailed recorded, and a retry mails only the others.
        done.append(address)
        _record_delivery(record, report, [*mailed, *done], marker)
        _mark_mailed(report.folder, address)

    try:
        send_each(SMTP_CONN_ID, messages, delivered, connection=connection)
    except RecipientsRefusedError as exc:
        _record_delivery(record, report, [*mailed, *done], marker)
        raise ReportError(
            f"the weekly report {report.week.heading} was not mailed to all recipients: {exc}"
            + (f"; mailed to {', '.join(done)}" if done else "")
        ) from None
    except Exception as exc:
        # The server is named (no secret in a host and port) to say where to look.
        server = "the SMTP server " + (
            server_of(connection) if connection.host else "the connection leaves unnamed"
        )
        raise ReportError(
            f"the weekly report {report.week.heading} was not mailed"
            + (f" to all recipients (mailed to {', '.join(done)})" if done else "")
            + f": {failure_reason(exc)} from {server} (connection {SMTP_CONN_ID})"
        ) from None
    return tuple(done), ""


def attachment_name(report: WeeklyReport) -> str:
    """The PDF's name in the mail: its ISO week's for that whole week; else its days (seven
    ending on another day than a Sunday), and the last day of its data when they end
    before its last day. A week to date is not named as its ISO week's report, which its
    readers get later with other figures."""
    week, through = report.week, report.data_through
    name = week.label if week.is_iso_week else f"{week.start}_to_{week.end}"
    if through is not None and through < week.end:
        name += f"_through_{through}"
    return f"weekly_report_{name}.pdf"


def _record_delivery(
    record: Path, report: WeeklyReport, recipients: list[str], resend_run: str | None
) -> None:
    """Record who has the week's mail (``resend_run``: the run whose resend it is), and
    whether it had the week's figures."""
    delivered: dict[str, object] = {
        "week": report.week.label,
        "to": list(dict.fromkeys(recipients)),
        "through": report.week.end.isoformat(),
        "enough_data": report.enough_data,
    }
    if resend_run is not None:
        delivered["resend_run"] = resend_run
    record.parent.mkdir(parents=True, exist_ok=True)
    # Whole or not at all (a new file moved over the old): a record cut short by a crash
    # or a full disk failed every rerun of the week, unreadable.
    partial = record.with_name(f".{record.name}.partial")
    partial.write_text(json.dumps(delivered, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, record)


def write_weekly_report(
    settings: Settings,
    week_end: date,
    *,
    mail: bool = True,
    resend: bool = False,
    resend_run: str | None = None,
) -> WeeklyReport:
    """Write the report of the seven days ending on ``week_end`` and mail it if configured
    (:func:`mail_report`)."""
    today = datetime.now(UTC).date()
    if week_end > today:
        raise ReportError(
            f"the week ending {week_end} has not ended yet (today is {today}, UTC): "
            "a report of it would read as the whole week"
        )
    week = ReportWeek(week_end)
    data = read_report_data(settings, week)
    rendered = render(data, settings.report_font_files)
    folder = settings.reports_dir / week.folder_name(today)
    files, kept = _replace_folder(folder, rendered)
    if kept:
        log.warning("weekly report %s: %s", week.heading, kept)
    through = data.data_through if data.enough_data else None
    report = WeeklyReport(week, folder, files, data.enough_data, (), "not asked", through, kept)
    if mail:
        to, skipped = mail_report(settings, report, rendered, resend=resend, resend_run=resend_run)
        report = WeeklyReport(week, folder, files, data.enough_data, to, skipped, through, kept)
    log.info(
        "weekly report %s written to %s%s",
        week.heading,
        folder,
        f", mailed to {len(report.mailed_to)} recipient(s)"
        if report.mailed_to
        else f"; not mailed: {report.mail_skipped}",
    )
    return report
