"""The survey landing folder as a boundary: what is listed, followed, opened and blamed.

Whatever lands in the folder, :func:`~social_leadership.surveys.ingest.ingest_folder` ends
with the file loaded or quarantined; only a fault of the warehouse (or of the machine)
raises, so Airflow retries that and nothing else:

* :func:`landed_files` lists every entry with a survey file's name (a registered format's
  suffix, :mod:`.formats`; a ``.txt`` only when it is a regular file whose first line is
  tab-separated cells), symlinks and special files included, and every one named as
  survey data in a format the intake does not read (``.xls``, ``.ods``: quarantined saying
  which formats are read), so nothing is passed over in silence;
* :func:`check_landed` follows a symlink only to a regular file inside the folder, and
  checks a sidecar the same way; a FIFO is never opened (reading one would block);
* :func:`check_size` and :func:`check_contents` enforce the limits
  (:mod:`.limits`) before a parser sees the file: the file's size, then what its format
  checks (an XLSX archive's declared and actual sizes, a ``.csv.gz`` decompressed in a
  streaming pass, a Parquet file's decoded size);
* :func:`unreadable_reason` says in a report why a file could not be read; whether an error
  is the warehouse's fault (raise) or the file's (quarantine) is
  :func:`.common.is_warehouse_fault`;
* :func:`reading` notes the file being read, and :func:`died_reading` finds a note a run
  left when its process died on that file (killed for its memory): the next run
  quarantines that file instead of dying on it again.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from social_leadership.intake import RowIssue
from social_leadership.landing import write_atomic
from social_leadership.surveys.common import SurveyValidationError, cannot_read, file_problem
from social_leadership.surveys.formats import (
    existing_sidecar,
    format_of,
    is_survey_file,
    is_unread_data_name,
)
from social_leadership.surveys.limits import IntakeLimits

# A declaration is a few hundred bytes; a megabyte is no declaration, and it is read whole.
MAX_SIDECAR_BYTES = 1 << 20


def unreadable_reason(path: Path, exc: BaseException) -> str:
    """``cannot be read as XLSX (BadZipFile: File is not a zip file)``."""
    return cannot_read(format_of(path).kind, exc)


def landed_files(folder: Path) -> list[Path]:
    """Every entry named like a survey data file (not hidden, not a sidecar), of a format
    the intake reads or not, oldest first (by modification time, then name): files landed
    together load in the order they were written, so a correction saved after the file it
    corrects replaces its figures, whatever the two are named. Folders are left alone, but
    a symlink to one is listed (and rejected)."""
    if not folder.exists():
        return []
    found = []
    for entry in folder.iterdir():
        if not (is_survey_file(entry) or is_unread_data_name(entry.name)):
            continue
        try:
            status = entry.lstat()
        except FileNotFoundError:
            continue  # taken away since the folder was listed
        if not stat.S_ISDIR(status.st_mode):
            found.append((status.st_mtime_ns, entry.name, entry))
    return [entry for _, _, entry in sorted(found)]


def unread_folders(folder: Path) -> list[tuple[Path, int]]:
    """Each folder in the landing folder (not hidden) holding survey files, anywhere below
    it, with how many: an export unzipped into the landing folder, which the intake does
    not read (only the files at its top are read), so its files are not passed over in
    silence."""
    if not folder.exists():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue
        count = sum(
            1
            for path in entry.rglob("*")
            if not any(part.startswith(".") for part in path.relative_to(entry).parts)
            and (is_survey_file(path) or is_unread_data_name(path.name))
        )
        if count:
            found.append((entry, count))
    return found


# Where the unread folders an alert named are recorded (in the survey quarantine folder):
# a folder left in place is alerted once, and again when its survey files change, not at
# every five-minute run.
ALERTED_FOLDERS_FILE = ".unread-folders-alerted.json"


def _folder_state(folder: Path, count: int) -> str:
    """What an alert about ``folder`` said: its survey files' count and newest change."""
    newest = max((path.stat().st_mtime_ns for path in folder.rglob("*")), default=0)
    return f"{count} file(s), newest {newest}"


def folders_to_alert(found: list[tuple[Path, int]], record_dir: Path) -> list[tuple[Path, int]]:
    """The unread folders of ``found`` (:func:`unread_folders`) not alerted before as they
    are now; records them all as alerted (a folder gone is forgotten)."""
    record = record_dir / ALERTED_FOLDERS_FILE
    try:
        said = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        said = {}
    states = {folder.name: _folder_state(folder, count) for folder, count in found}
    fresh = [
        (folder, count) for folder, count in found if said.get(folder.name) != states[folder.name]
    ]
    if states != said:
        record_dir.mkdir(parents=True, exist_ok=True)
        temporary = record.with_name(record.name + ".tmp")
        temporary.write_text(json.dumps(states), encoding="utf-8")
        os.replace(temporary, record)
    return fresh


def _within(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


# What :func:`link_targets` gives a link that is a loop (a.csv to b.csv and back): where it
# ends is nowhere, and a loop whose other link is quarantined first is still said to be one.
LOOP = ""


def _is_loop(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def link_targets(paths: list[Path]) -> dict[Path, str]:
    """Where each symlink of ``paths`` ends (resolved through every link), read before any
    of them is moved: a link to a link quarantined first read as dangling, not as the link
    out of the folder it is."""
    return {
        path: LOOP if _is_loop(path) else os.path.realpath(path)
        for path in paths
        if path.is_symlink()
    }


def _broken_link(path: Path, target: str | None) -> str:
    """What a symlink that leads to no file is: a loop (``a.csv`` to ``b.csv`` and back, now
    or when the folder was listed: ``target``), or a link to a target that does not exist."""
    if target == LOOP or _is_loop(path):
        return "a symlink loop: its links lead back to themselves, to no file"
    return "a dangling symlink: its target does not exist"


def _entry_problem(path: Path, folder: Path, what: str, target: str | None = None) -> str | None:
    """Why ``path`` may not be read, or None: a symlink is followed only to a regular file
    inside the landing folder (resolved through every link), where it ends now and where it
    ended when the folder was listed (``target``: a link to a link quarantined since reads
    as the link out of the folder it was, not as dangling; a link changed since is checked
    where it ends now); only regular files are read."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        inside = os.path.realpath(folder)
        current = os.path.realpath(path)
        outside = f"{what} is a symlink pointing outside the survey landing folder; not followed"
        if target is not None and os.path.exists(target) and not _within(target, inside):
            return outside
        if not os.path.exists(current):
            return f"{what} is {_broken_link(path, target)}"
        if not _within(current, inside):
            return outside
        mode = os.stat(current).st_mode
    if not stat.S_ISREG(mode):
        return f"{what} is not a regular file; only regular files are read"
    return None


def check_landed(path: Path, folder: Path, target: str | None = None) -> None:
    """Raise SurveyValidationError unless the file, and its sidecar if any, may be read
    (``target``: where the file, a symlink, ended when the folder was listed)."""
    issues = []
    problem = _entry_problem(path, folder, "the file", target)
    if problem is None and path.stat().st_size == 0:
        # Not a "required column missing" for each column.
        problem = "the file is empty (0 bytes): there is nothing to load"
    if problem:
        issues.append(RowIssue(path.name, 0, "*", problem))
    sidecar = existing_sidecar(path)
    if sidecar is not None:
        problem = _entry_problem(sidecar, folder, "the sidecar")
        if problem:
            issues.append(RowIssue(sidecar.name, 0, "*", problem))
    if issues:
        raise SurveyValidationError(issues)


def check_size(path: Path, limits: IntakeLimits) -> None:
    """The file (and its sidecar) within the size limits, read from the file system only."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise file_problem(path.name, limits.file_too_large(size))
    sidecar = existing_sidecar(path)
    if sidecar is not None and sidecar.exists():
        size = sidecar.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            reason = (
                f"sidecar is {size} bytes, over the {MAX_SIDECAR_BYTES} bytes a declaration "
                "may hold"
            )
            raise file_problem(sidecar.name, reason)


def check_contents(path: Path, limits: IntakeLimits) -> None:
    """What the file's format checks before any parser reads it: decompressed what is
    compressed, in a streaming pass, and decoded what is encoded, within the limits."""
    format_of(path).check_contents(path, limits)


# Where the intake notes the landed file it is reading (in the survey quarantine folder),
# written to the disk before the file is read and removed once it is loaded or quarantined,
# or its run stopped by an error: a note left behind says the process died reading that file
# (the kernel killed it for its memory, a SIGKILL), which no error handler sees. The file
# would be read again by every run, and every run die on it, the files after it never read.
# One run reads at a time: it holds the warehouse's lock throughout.
READING_FILE = ".reading.json"


def _file_state(path: Path) -> dict[str, object]:
    """What tells the file read apart from another version under its name."""
    status = path.stat()
    return {
        "name_hex": os.fsencode(path.name).hex(),
        "size": status.st_size,
        "mtime_ns": status.st_mtime_ns,
    }


@contextmanager
def reading(path: Path, record_dir: Path) -> Iterator[None]:
    """Note ``path`` as the file being read while the block runs (:data:`READING_FILE`)."""
    record = record_dir / READING_FILE
    note = {
        "file": os.fsencode(path.name).decode("utf-8", "backslashreplace"),
        **_file_state(path),
        "started_at": datetime.now(UTC).isoformat(),
        "pid": os.getpid(),
    }
    record_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(record, json.dumps(note).encode())
    try:
        yield
    finally:
        record.unlink(missing_ok=True)


def died_reading(record_dir: Path) -> dict[str, object] | None:
    """The note of the file a run's process died reading (:func:`reading`), or None."""
    try:
        note = json.loads((record_dir / READING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def forget_reading(record_dir: Path) -> None:
    (record_dir / READING_FILE).unlink(missing_ok=True)


def is_file_died_on(path: Path, note: dict[str, object]) -> bool:
    """Whether ``path`` is, unchanged, the file of ``note`` (:func:`died_reading`): a new
    version under its name is read as any file is."""
    try:
        state = _file_state(path)
    except OSError:
        return False
    return all(note.get(key) == value for key, value in state.items())


def died_reading_reason(note: dict[str, object]) -> str:
    """Why the file a run died reading is quarantined."""
    return (
        f"the survey intake's process died while reading this file (a run that began "
        f"reading it at {note.get('started_at', 'an unknown time')} never finished: killed, "
        "most likely for the memory the file took, as the kernel kills a process out of "
        "memory); read again, it would stop every run. Respondent data needs its sidecar "
        'declaring its questions (README "Surveys"); if the machine stopped for another '
        "reason, move the file back to the landing folder to read it again"
    )
