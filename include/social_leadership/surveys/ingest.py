"""One entry point per file and per folder: detect the shape, validate, load or quarantine.

Shape: a sidecar ``<stem>.survey.json`` may declare ``"shape": "published"`` or
``"microdata"``; without one, a file is published aggregates (whose checks report a header
they cannot read) unless its header has a ``respondent_id`` column: microdata always needs
its sidecar, which declares the agreeing answers.

Boundary: whatever lands in the folder ends loaded or quarantined with a report, within the
limits in force (:mod:`.boundary`, :mod:`.limits`); only a fault of the warehouse or of the
machine, or an unusable pseudonym key, raises, so Airflow retries only what a retry can mend.

Replacement, in one transaction (readers see the old figures or the new, never a mix): a
published file replaces its own earlier version (the rows loaded from a file of the same
name) and, from other files, the figures of each (source, wave, scope, question, measure)
it holds, so one wave may come split into files by country or by question; it also replaces
the respondent data of its (source, wave) pairs. A microdata file likewise replaces its own
earlier version and, from other files, the respondents of each (source, wave, country) it
holds, so a wave may come split into files by country; it replaces the published figures
of its (source, wave) pairs. Files that share a wave must declare the same questions (the
answers are stored in question order): one that declares others than a file whose
respondents stay is refused, naming that file.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from social_leadership.intake import RowIssue, left_to_settle, modified_within
from social_leadership.progress import step
from social_leadership.surveys import microdata
from social_leadership.surveys.boundary import (
    check_contents,
    check_landed,
    check_size,
    died_reading,
    died_reading_reason,
    forget_reading,
    is_file_died_on,
    landed_files,
    link_targets,
    reading,
    unread_folders,
    unreadable_reason,
)
from social_leadership.surveys.common import (
    HeaderSearch,
    SurveyFileOutcome,
    SurveyValidationError,
    cap_issues,
    content_sha256,
    file_problem,
    is_warehouse_fault,
    quarantine,
    text_name,
)
from social_leadership.surveys.formats import (
    existing_sidecar,
    format_of,
    is_survey_file,
    read_sidecar,
    sidecar_path,
    unread_format_reason,
)
from social_leadership.surveys.limits import IntakeLimits, applied
from social_leadership.surveys.pseudonym import KeySource, PseudonymKey
from social_leadership.surveys.published import (
    FIGURE_KEY,
    REQUIRED_COLUMNS,
    header_fits,
    load_published_frame,
    looks_like_header,
    parse_published_file,
)
from social_leadership.warehouse import transaction

BUNDLED_DIR = Path(__file__).resolve().parent.parent.parent / "data" / "surveys"
BUNDLED_PUBLISHED_FILE = BUNDLED_DIR / "published_ceo_expectations.csv"
# Real published figures, part of the product: loaded into every warehouse. The demo's
# synthetic microdata comes only with SLW_DEMO on, passed in as ``extra_bundled``.
BUNDLED_FILES = (BUNDLED_PUBLISHED_FILE,)
_SHIPPED_NAMES = frozenset(path.name for path in BUNDLED_FILES)
log = logging.getLogger(__name__)

SURVEY_TABLES = ("raw.survey_results", "raw.survey_questions", "raw.survey_respondent_answers")


def _configured_limits() -> IntakeLimits:
    from social_leadership.settings import load_settings

    return IntakeLimits.from_settings(load_settings())


def _already_loaded(con: duckdb.DuckDBPyConnection, sha: str, name: str) -> bool:
    """Whether the file is in the ledger as it is: the last version loaded under its name,
    or a copy of a file loaded under another name (never loaded under this one).

    The ledger, not the rows: a file whose rows a later correction replaced must not come
    back on the next poll and replace the correction in turn. An earlier version sent back
    under its own name is no copy: it replaces the version loaded since (a correction
    undone). A copy stays a no-op, so rows stored under one file's hash belong to one name
    (a later version of either name deleted the other's rows)."""
    row = con.execute(
        """
        select case
            when not exists (
                select 1 from raw.survey_files where file_sha256 = $sha and file_name = $name
            )
                then exists (select 1 from raw.survey_files where file_sha256 = $sha)
            else $sha in (
                select file_sha256 from raw.survey_files where file_name = $name
                qualify loaded_at = max(loaded_at) over ()
            )
        end
        """,
        {"sha": sha, "name": name},
    ).fetchone()
    return bool(row and row[0])


# SQL: the hashes of every version loaded under the name ``$name``.
_EARLIER_VERSIONS = "select file_sha256 from raw.survey_files where file_name = $name"
# The name each stored hash was loaded under (a copy under another name is never loaded).
_FILE_NAMES = (
    "(select file_sha256, any_value(file_name) as file_name from raw.survey_files group by all)"
)


def _log_replaced(file_name: str, replaced: list[tuple[str, str, int, int | None]]) -> list[str]:
    """Say what a file replaces that other files had loaded (``replaced``: what, the other
    file, how many rows, how many of the same this file brings): a correction under another
    name does it on purpose, a stray row of another country or wave by mistake, and
    the other file, unchanged, is never loaded again. Returns each said shortly, for the
    run's alert."""
    said = []
    for what, other, count, brought in replaced:
        brings = f" (this file brings {brought})" if brought is not None else ""
        said.append(f"{count} {what} from {other}{brings}")
        log.warning(
            "%s replaces what %s had loaded: %d %s%s", file_name, other, count, what, brings
        )
    return said


def _forget_load(con: duckdb.DuckDBPyConnection, sha: str) -> None:
    """Delete the respondents and questions stored under ``sha``: a file loaded again (an
    earlier version sent back) stores them anew, never twice."""
    for table in ("raw.survey_respondent_answers", "raw.survey_questions"):
        con.execute(f"delete from {table} where file_sha256 = $sha", {"sha": sha})


def _record_file(
    con: duckdb.DuckDBPyConnection, sha: str, name: str, loaded_at: datetime | None
) -> None:
    # After every earlier load of the name, whatever this worker's clock says: the latest
    # row of a name is its version in force (_already_loaded), and workers' clocks differ.
    con.execute(
        "insert into raw.survey_files select $sha, $name, greatest($at, ("
        "select max(loaded_at) + interval 1 microsecond from raw.survey_files "
        "where file_name = $name))",
        {"sha": sha, "name": name, "at": loaded_at or datetime.now(UTC)},
    )


def _replace_keys(
    con: duckdb.DuckDBPyConnection,
    keys: pd.DataFrame,
    tables: Sequence[str] = SURVEY_TABLES,
) -> None:
    """Delete the earlier rows of each (source, wave) from ``tables``."""
    con.register("incoming_survey_keys", keys[["source_id", "wave"]].drop_duplicates())
    try:
        for table in tables:
            con.execute(
                f"delete from {table} as r using incoming_survey_keys as k "
                "where r.source_id = k.source_id and r.wave = k.wave"
            )
    finally:
        con.unregister("incoming_survey_keys")


def _replace_published(
    con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, file_name: str
) -> tuple[list[str], list[str]]:
    """Delete what a published file replaces (the module docstring): the rows of its earlier
    version, the published figures of its keys, the respondent data of its (source, wave).
    Returns what of its earlier version it removed that it does not hold again, and what of
    other files it replaced."""
    keys = frame[list(FIGURE_KEY)].drop_duplicates()
    con.register("incoming_survey_keys", keys)
    try:
        figures = con.execute(
            "select r.file_name, r.source_id, r.wave, r.scope, count(*) "
            "from raw.survey_results as r where r.file_name <> $name and exists ("
            "select 1 from incoming_survey_keys as k where r.source_id = k.source_id "
            "and r.wave = k.wave and r.scope = k.scope and r.question_id = k.question_id "
            "and r.measure = k.measure) group by all order by all",
            {"name": file_name},
        ).fetchall()
        respondents = con.execute(
            f"select coalesce(f.file_name, r.file_sha256), r.source_id, r.wave, count(*) "
            f"from raw.survey_respondent_answers as r left join {_FILE_NAMES} as f "
            f"using (file_sha256) where r.file_sha256 not in ({_EARLIER_VERSIONS}) and exists ("
            "select 1 from incoming_survey_keys as k where r.source_id = k.source_id "
            "and r.wave = k.wave) group by all order by all",
            {"name": file_name},
        ).fetchall()
        replaced = _log_replaced(
            file_name,
            [
                (f"figure(s) of {source} wave {wave} {scope}", other, count, None)
                for other, source, wave, scope, count in figures
            ]
            + [
                (f"respondent(s) of {source} wave {wave}", other, count, None)
                for other, source, wave, count in respondents
            ],
        )
        dropped = con.execute(
            "select source_id, wave, count(*) from raw.survey_results as r "
            "where r.file_name = $name and not exists (select 1 from incoming_survey_keys as k "
            "where r.source_id = k.source_id and r.wave = k.wave) group by all order by all",
            {"name": file_name},
        ).fetchall()
        removed = _log_waves_dropped(file_name, "figure(s)", dropped)
        con.execute(
            "delete from raw.survey_results as r where r.file_name = $name or exists ("
            "select 1 from incoming_survey_keys as k where r.source_id = k.source_id "
            "and r.wave = k.wave and r.scope = k.scope and r.question_id = k.question_id "
            "and r.measure = k.measure)",
            {"name": file_name},
        )
        # Its earlier version sent as respondent data (the file's shape changed): gone too.
        dropped = con.execute(
            f"select source_id, wave, count(*) from raw.survey_respondent_answers as r "
            f"where r.file_sha256 in ({_EARLIER_VERSIONS}) and not exists (select 1 from "
            "incoming_survey_keys as k where r.source_id = k.source_id and r.wave = k.wave) "
            "group by all order by all",
            {"name": file_name},
        ).fetchall()
        removed += _log_waves_dropped(file_name, "respondent(s)", dropped)
        con.execute(
            f"delete from raw.survey_respondent_answers where file_sha256 in ({_EARLIER_VERSIONS})",
            {"name": file_name},
        )
    finally:
        con.unregister("incoming_survey_keys")
    _replace_keys(con, keys, tables=SURVEY_TABLES[1:])
    _drop_unanswered_questions(con)
    return removed, replaced


def _drop_unanswered_questions(con: duckdb.DuckDBPyConnection, sha: str = "") -> None:
    """Delete the questions of waves left without respondents (an earlier version's other
    waves), but those stored under ``sha``, the file being loaded."""
    con.execute(
        """
        delete from raw.survey_questions as q
        where q.file_sha256 <> $sha and not exists (
            select 1 from raw.survey_respondent_answers as r
            where r.source_id = q.source_id and r.wave = q.wave
        )
        """,
        {"sha": sha},
    )


def _log_waves_dropped(file_name: str, what: str, dropped: list[tuple[str, int, int]]) -> list[str]:
    """Say which (source, wave) pairs of a file's earlier version its new version no longer
    holds: they are removed with it (a correction), which a file of another wave under a
    tool's fixed export name (export.csv) would do by mistake. Returns each said shortly,
    for the run's alert."""
    for source_id, wave, count in dropped:
        log.warning(
            "%s replaces its earlier version, whose %d %s of %s wave %s it does not hold: "
            "they are removed (a file of another wave keeps them under a name of its own)",
            file_name,
            count,
            what,
            source_id,
            wave,
        )
    return [f"{count} {what} of {source_id} wave {wave}" for source_id, wave, count in dropped]


def _wave_keys(decl: microdata.MicrodataDeclaration, waves: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"source_id": decl.source_id, "wave": waves})


class QuestionsConflict(SurveyValidationError):
    """A microdata file declares other questions than a file whose respondents of the same
    wave stay (reported under the sidecar's ``questions``)."""

    def __init__(self, file_name: str, reason: str) -> None:
        super().__init__([RowIssue(file_name, 0, "questions", reason)])


# What a question is to the answers stored under it: its place in the answers list, how
# they are read, and whether they are invented (one wave's question rows label the shares
# of every country in it: a synthetic country file beside a real one would label both
# alike). Its text, the source's name and the citation may differ between files.
_QUESTION_SHAPE = (
    "question_id, question_position, scale_min, scale_max, agree_min, agree_max, is_synthetic"
)


def _replace_respondents(
    con: duckdb.DuckDBPyConnection,
    decl: microdata.MicrodataDeclaration,
    waves: list[int],
    *,
    file_name: str,
    sha: str,
) -> list[str]:
    """Delete what a microdata file replaces (the module docstring), its respondents
    already in under ``sha``, its questions not yet; raise SurveyValidationError when it
    declares other questions than a file whose respondents of the same wave stay. Returns
    what of its earlier version it removed that it does not hold again, and what of other
    files it replaced."""
    params = {"source": decl.source_id, "sha": sha}
    respondents = con.execute(
        f"""
        with incoming as (
            select wave, country_code, count(*) as brought
            from raw.survey_respondent_answers where file_sha256 = $sha group by all
        )
        select coalesce(f.file_name, r.file_sha256), r.wave, r.country_code, count(*),
            any_value(i.brought)
        from raw.survey_respondent_answers as r
        inner join incoming as i using (wave, country_code)
        left join {_FILE_NAMES} as f using (file_sha256)
        where r.source_id = $source and r.file_sha256 <> $sha
            and r.file_sha256 not in ({_EARLIER_VERSIONS})
        group by all order by all
        """,
        {**params, "name": file_name},
    ).fetchall()
    figures = con.execute(
        "select file_name, wave, count(*) from raw.survey_results where source_id = $source "
        "and list_contains($waves, wave) and file_name <> $name group by all order by all",
        {"source": decl.source_id, "waves": waves, "name": file_name},
    ).fetchall()
    shipped = sorted({other for other, _, _ in figures if other in _SHIPPED_NAMES})
    if shipped:
        # Replaced, the shipped figures never came back: the shipped file stays in the
        # ledger as loaded, and a copy of it is a copy (_already_loaded).
        raise file_problem(
            file_name,
            f"source_id {decl.source_id!r} is the source of the published figures the "
            f"pipeline ships ({', '.join(shipped)}): this file's respondents would replace "
            f"them (wave {', '.join(str(w) for w in waves)}) for good. Give your survey a "
            "source_id of its own in its sidecar",
            "source_id",
        )
    # Said once the file is known to replace them (a file refused below replaces none).
    replacing = [
        (f"respondent(s) of {decl.source_id} wave {wave} {country}", other, count, brought)
        for other, wave, country, count, brought in respondents
    ] + [
        (f"figure(s) of {decl.source_id} wave {wave}", other, count, None)
        for other, wave, count in figures
    ]
    dropped = con.execute(
        f"select source_id, wave, count(*) from raw.survey_respondent_answers "
        f"where file_sha256 <> $sha and file_sha256 in ({_EARLIER_VERSIONS}) "
        f"and not (source_id = $source and list_contains($waves, wave)) "
        "group by all order by all",
        {**params, "name": file_name, "waves": waves},
    ).fetchall()
    removed = _log_waves_dropped(file_name, "respondent(s)", dropped)
    # Its earlier version sent as published figures (the file's shape changed): gone too.
    dropped = con.execute(
        "select source_id, wave, count(*) from raw.survey_results where file_name = $name "
        "and not (source_id = $source and list_contains($waves, wave)) "
        "group by all order by all",
        {"name": file_name, "source": decl.source_id, "waves": waves},
    ).fetchall()
    removed += _log_waves_dropped(file_name, "figure(s)", dropped)
    con.execute("delete from raw.survey_results where file_name = $name", {"name": file_name})
    # Its earlier version (the same name), whatever it held, and from other files the
    # respondents of each (source, wave, country) it holds.
    con.execute(
        f"delete from raw.survey_respondent_answers as r where r.file_sha256 <> $sha and "
        f"r.file_sha256 in ({_EARLIER_VERSIONS})",
        {"sha": sha, "name": file_name},
    )
    con.execute(
        """
        delete from raw.survey_respondent_answers as r
        using (
            select distinct wave, country_code from raw.survey_respondent_answers
            where file_sha256 = $sha
        ) as k
        where r.source_id = $source and r.file_sha256 <> $sha
            and r.wave = k.wave and r.country_code = k.country_code
        """,
        params,
    )
    _replace_keys(con, _wave_keys(decl, waves), tables=("raw.survey_results",))
    con.register("incoming_waves", pd.DataFrame({"wave": waves}))
    try:
        staying = con.execute(
            """
            select r.wave, coalesce(f.file_name, r.file_sha256), string_agg(
                distinct r.country_code, ', ' order by r.country_code
            )
            from raw.survey_respondent_answers as r
            left join raw.survey_files as f using (file_sha256)
            where r.source_id = $source and r.file_sha256 <> $sha
                and r.wave in (select wave from incoming_waves)
            group by all order by all
            """,
            params,
        ).fetchall()
        declared = [
            (
                q.question_id,
                position,
                q.scale_min,
                q.scale_max,
                q.agree_min,
                q.agree_max,
                decl.is_synthetic,
            )
            for position, q in enumerate(decl.questions, start=1)
        ]
        for wave, other, countries in staying:
            # Kept, as this file does not hold them (a correction under another name that
            # left a country out keeps that country's earlier respondents): said in the log.
            log.info(
                "%s: the respondents of %r wave %s from %r (%s) stay",
                file_name,
                decl.source_id,
                wave,
                other,
                countries,
            )
            stored = con.execute(
                f"select {_QUESTION_SHAPE} from raw.survey_questions where source_id = $source "
                "and wave = $wave and file_sha256 <> $sha order by question_position",
                {"source": decl.source_id, "wave": wave, "sha": sha},
            ).fetchall()
            if [tuple(row) for row in stored] != declared:
                raise QuestionsConflict(
                    file_name,
                    f"declares other questions for {decl.source_id!r} wave {wave} than "
                    f"{other!r}, whose respondents ({countries}) stay: files of one wave "
                    "must declare the same questions, in the same order, with the same "
                    "scales and agreeing answers, and be alike synthetic or real "
                    f"(is_synthetic: {str(decl.is_synthetic).lower()} here; or replace that "
                    "file: give this one its name)",
                )
        con.execute(
            "delete from raw.survey_questions where source_id = $source and file_sha256 <> $sha "
            "and wave in (select wave from incoming_waves)",
            params,
        )
    finally:
        con.unregister("incoming_waves")
    _drop_unanswered_questions(con, sha)
    return removed, _log_replaced(file_name, replacing)


def detect_shape(path: Path, declaration: dict | None) -> str:
    """``published`` or ``microdata``; raise SurveyValidationError for respondent data
    without a sidecar. A file of neither shape is given to the published checks, whose
    report names the missing columns and the header found."""
    declared = (declaration or {}).get("shape")
    if declared in {"published", "microdata"}:
        return str(declared)
    if declared is not None:
        reason = f"{declared!r} is not published or microdata"
        raise file_problem(path.name, reason, column="shape")
    if declaration is not None and "questions" in declaration:
        return "microdata"
    columns = (declaration or {}).get("columns")
    if isinstance(columns, dict) and "respondent_id" in columns:
        return "microdata"  # a microdata sidecar that lacks its questions: its check says so
    sheet = (declaration or {}).get("sheet")

    def names_respondents(cells: list[str]) -> bool:
        return "respondent_id" in {cell.strip().casefold() for cell in cells}

    try:
        search = HeaderSearch(
            list(REQUIRED_COLUMNS),
            sheet if isinstance(sheet, str) else None,
            lambda cells: looks_like_header(cells, declaration) or names_respondents(cells),
        )
        header = format_of(path).read_header(path, search)
    except SurveyValidationError:
        header = []
    if not names_respondents(header) or header_fits(header, declaration):
        return "published"
    if declaration is not None:
        return "microdata"  # its sidecar lacks the questions: the microdata check says so
    reason = (
        f"respondent microdata needs a sidecar {sidecar_path(path).name} declaring its "
        "questions and agreeing answers"
    )
    raise SurveyValidationError([RowIssue(path.name, 1, "*", reason)])


def load_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    pseudonym_key: KeySource | PseudonymKey = None,
    loaded_at: datetime | None = None,
    limits: IntakeLimits | None = None,
    note_dir: Path | None = None,
) -> SurveyFileOutcome:
    """Validate and load one file (with its sidecar, if any) within ``limits`` (default: the
    settings'); raise SurveyValidationError. The pseudonym key (default: the settings') is
    read only for a respondent file. With ``note_dir``, a file not loaded before is noted
    there while it is read (:func:`.boundary.reading`)."""
    with applied(limits or _configured_limits()) as in_force:
        return _load_file(
            con,
            path,
            in_force,
            pseudonym_key=PseudonymKey.of(pseudonym_key),
            loaded_at=loaded_at,
            note_dir=note_dir,
        )


def _load_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    limits: IntakeLimits,
    *,
    pseudonym_key: PseudonymKey,
    loaded_at: datetime | None,
    note_dir: Path | None = None,
) -> SurveyFileOutcome:
    check_size(path, limits)
    sidecar = existing_sidecar(path)
    sha = content_sha256(path, sidecar)
    stored_name = text_name(path)
    if _already_loaded(con, sha, stored_name):
        return SurveyFileOutcome(file=path.name, status="unchanged")
    # Noted only from here: a file loaded before, hashed again at every run, is no file a
    # process died reading (a restart during its hash would have quarantined it).
    with reading(path, note_dir) if note_dir is not None else contextlib.nullcontext():
        return _load_new(
            con,
            path,
            limits,
            sidecar=sidecar,
            sha=sha,
            stored_name=stored_name,
            pseudonym_key=pseudonym_key,
            loaded_at=loaded_at,
        )


def _load_new(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    limits: IntakeLimits,
    *,
    sidecar: Path | None,
    sha: str,
    stored_name: str,
    pseudonym_key: PseudonymKey,
    loaded_at: datetime | None,
) -> SurveyFileOutcome:
    """Validate and load a file not loaded before (:func:`_load_file`)."""
    check_contents(path, limits)
    declaration = read_sidecar(sidecar) if sidecar else None
    shape = detect_shape(path, declaration)
    if shape == "published":
        # The declaration already read (the boundary checked its sidecar): never re-read it.
        frame = parse_published_file(
            path, (declaration or {}).get("sheet"), declaration=declaration
        )
        with transaction(con):
            removed, replaced = _replace_published(con, frame, stored_name)
            rows = load_published_frame(
                con, frame, file_name=stored_name, sha=sha, loaded_at=loaded_at
            )
            _record_file(con, sha, stored_name, loaded_at)
        return SurveyFileOutcome(
            path.name, "loaded", shape, rows_loaded=rows, removed=removed, replaced=replaced
        )
    if sidecar is None or declaration is None:
        raise file_problem(path.name, "microdata needs its sidecar declaration")
    decl = microdata.parse_declaration(sidecar.name, declaration)
    key = pseudonym_key()
    stamp = loaded_at or datetime.now(UTC)
    if format_of(path).one_pass:
        try:
            with transaction(con):
                _forget_load(con, sha)
                rows, waves = microdata.insert_fast(con, path, decl, key, sha=sha, loaded_at=stamp)
                removed, replaced = _replace_respondents(
                    con, decl, waves, file_name=stored_name, sha=sha
                )
                microdata.insert_questions(
                    con, decl, waves, file_name=stored_name, sha=sha, loaded_at=stamp
                )
                _record_file(con, sha, stored_name, stamp)
            return SurveyFileOutcome(
                path.name, "loaded", shape, rows_loaded=rows, removed=removed, replaced=replaced
            )
        except QuestionsConflict:
            raise  # the file's respondents are fine: the staged path would only say it again
        except (
            duckdb.Error,
            pa.ArrowException,
            microdata.FastPathDeclined,
            SurveyValidationError,
        ) as exc:
            if is_warehouse_fault(exc):
                raise
            # Rolled back: the staged path below finds and reports what is wrong.
    try:
        microdata.prepare(con, path, decl, key)
    except SurveyValidationError as exc:
        raise SurveyValidationError(decl.defaults_said(exc.issues)) from exc
    try:
        waves = microdata.staged_waves(con)
        with transaction(con):
            _forget_load(con, sha)
            rows = microdata.insert(con, decl, sha=sha, loaded_at=stamp)
            removed, replaced = _replace_respondents(
                con, decl, waves, file_name=stored_name, sha=sha
            )
            microdata.insert_questions(
                con, decl, waves, file_name=stored_name, sha=sha, loaded_at=stamp
            )
            _record_file(con, sha, stored_name, stamp)
    finally:
        microdata.cleanup(con)
    return SurveyFileOutcome(
        path.name, "loaded", shape, rows_loaded=rows, removed=removed, replaced=replaced
    )


def ingest_folder(
    con: duckdb.DuckDBPyConnection,
    survey_dir: Path,
    quarantine_dir: Path,
    *,
    include_bundled: bool = True,
    extra_bundled: Sequence[Path] = (),
    pseudonym_key: KeySource | PseudonymKey = None,
    limits: IntakeLimits | None = None,
    settle_seconds: int = 0,
) -> list[SurveyFileOutcome]:
    """Load the bundled published figures, ``extra_bundled`` files (the demo's synthetic
    microdata when ``SLW_DEMO`` is on) and every survey file in the landing folder.

    A landed file that it or its sidecar changed less than ``settle_seconds`` ago
    (``SLW_INTAKE_SETTLE_SECONDS``) may still be being written: it is left for the next
    run, saying so in the log. The limits guard against what lands; the shipped files are
    read within the default limits, whatever the settings say.

    Whatever a landed file holds, it is loaded or quarantined (with its sidecar) beside a
    report saying what was wrong; it never stops the other files: one that ran the intake
    out of memory is quarantined, and so is one whose reading a run's process died in (it
    is noted while read: :func:`.boundary.reading`), when the next run begins. Only a
    fault of the warehouse or the machine, or an unusable pseudonym key, raises. Bundled
    and extra files are never moved (they are part of the product, not arrivals); one that
    fails is a bug and raises. ``limits`` default to the settings'.
    """
    limits = limits or _configured_limits()
    key = PseudonymKey.of(pseudonym_key)

    outcomes: list[SurveyFileOutcome] = []
    shipped = [*(BUNDLED_FILES if include_bundled else ()), *extra_bundled]
    for bundled in shipped:
        if bundled.exists():
            outcomes.append(load_file(con, bundled, pseudonym_key=key, limits=IntakeLimits()))
    shipped_names = {text_name(bundled) for bundled in shipped}
    try:
        folders = unread_folders(survey_dir)
    except OSError as exc:  # a warning's look-up: it never stops the intake
        log.warning("the folders in %s were not looked into: %s", survey_dir, exc)
        folders = []
    for folder, count in folders:
        log.warning(
            "survey folder %s/ holds %d survey file(s), which are not read: only the files "
            "at the top of %s are; move them there",
            folder.name,
            count,
            survey_dir,
        )
    now = time.time()
    landed = landed_files(survey_dir)
    targets = link_targets(landed)
    record_dir = quarantine_dir / "surveys"
    died = died_reading(record_dir)
    if died is not None:
        # First, before any other file is read (and noted in its place).
        died_on = [path for path in landed if is_file_died_on(path, died)]
        for path in died_on:
            landed.remove(path)
            issues = [RowIssue(path.name, 0, "*", died_reading_reason(died))]
            outcomes.append(_quarantined(path, quarantine_dir, issues))
        if not died_on:
            log.warning(
                "a run died reading survey file %s, which is gone or changed since: "
                "it is read as any file",
                died.get("file"),
            )
        forget_reading(record_dir)
    for path in landed:
        sidecar = existing_sidecar(path)
        age = modified_within([path, *([sidecar] if sidecar else [])], settle_seconds, now)
        if age is not None:
            # In the log and on a local run's console (slw run): said, not only waited.
            step(f"survey file {left_to_settle(path, age, settle_seconds)}")
            continue
        try:
            if not is_survey_file(path):
                raise file_problem(path.name, unread_format_reason(path.name))
            if text_name(path) in shipped_names:
                # Its load would replace the shipped file's rows as its own earlier version,
                # and the shipped file, already in the ledger, would not come back.
                raise file_problem(
                    path.name,
                    "the name of a survey file the pipeline ships (and loads on every run): "
                    "give the file another name",
                )
            check_landed(path, survey_dir, targets.get(path))
            outcomes.append(
                load_file(con, path, pseudonym_key=key, limits=limits, note_dir=record_dir)
            )
            continue
        except SurveyValidationError as exc:
            issues = cap_issues(exc.issues, path.name)
        except MemoryError:
            # The file's doing, not the machine's: it is what took the memory (Python's
            # allocation failed under the worker's limit), and a retry, or the next run,
            # meets it again while the files after it wait. DuckDB's own out-of-memory
            # error is the warehouse's, and raises.
            issues = [RowIssue(path.name, 0, "*", _out_of_memory_reason(path))]
        except Exception as exc:
            if is_warehouse_fault(exc) or key.failed_with(exc):
                raise  # the installation's fault, never the file's
            # Anything else a parser raises is the file's doing (bad bytes, a broken archive).
            issues = [RowIssue(path.name, 0, "*", unreadable_reason(path, exc))]
        outcomes.append(_quarantined(path, quarantine_dir, issues))
    return outcomes


def _quarantined(path: Path, quarantine_dir: Path, issues: list[RowIssue]) -> SurveyFileOutcome:
    report = quarantine(path, quarantine_dir, issues, existing_sidecar(path))
    return SurveyFileOutcome(
        file=path.name, status="quarantined", issues=issues, report_path=str(report)
    )


def _out_of_memory_reason(path: Path) -> str:
    try:
        size = f" ({path.stat().st_size} bytes)"
    except OSError:
        size = ""
    return (
        f"the survey intake ran out of memory reading the file{size}: a table of published "
        "figures is some thousands of rows, and respondent data needs its sidecar declaring "
        'its questions (README "Surveys"); move the file back to the landing folder to read '
        "it again once the worker has more memory"
    )
