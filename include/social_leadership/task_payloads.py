"""What the DAG tasks return as XCom, as typed models.

XCom holds JSON, so a task returns ``Model(...).to_xcom()`` (plain JSON types, visible in
the Airflow UI), and a task that reads another's XCom validates it back with
``Model.from_xcom(data)``: a payload of the wrong shape fails there, naming the field.
The platform outcomes (``platform_metrics.ExtractOutcome``, ``platform_metrics.LoadOutcome``)
are dataclasses of their own module and travel the same way through :func:`to_xcom` /
:func:`from_xcom`.
"""

from __future__ import annotations

from typing import Annotated, Any, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, NonNegativeInt, TypeAdapter


def to_xcom(outcome: object, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A dataclass or model as plain JSON types (dates and paths as strings)."""
    data = TypeAdapter(type(outcome)).dump_python(outcome, mode="json")
    return {key: value for key, value in data.items() if key not in drop}


T = TypeVar("T")


def from_xcom(kind: type[T], data: Any) -> T:
    """``data`` (an XCom) validated into ``kind``; a wrong field raises naming it."""
    return TypeAdapter(kind).validate_python(data)


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_xcom(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_xcom(cls, data: Any) -> Self:
        return cls.model_validate(data)


class HistoryImportSummary(Payload):
    """``import_history``: the follower-history files imported in this run."""

    files: NonNegativeInt
    rows_loaded: NonNegativeInt
    rows_rejected: NonNegativeInt
    # Files refused whole (unreadable, a required column missing): moved to quarantine.
    files_quarantined: NonNegativeInt = 0


class PlatformRunCheck(Payload):
    """``check_platforms``: the run's verdict when no task failed."""

    failed: list[str]
    not_configured: list[str]


class SurveyIntakeSummary(Payload):
    """``ingest_surveys``: what the landed survey files became."""

    files_loaded: NonNegativeInt
    files_unchanged: NonNegativeInt
    files_quarantined: NonNegativeInt
    rows_loaded: NonNegativeInt
    published_rows_loaded: NonNegativeInt
    respondents_loaded: NonNegativeInt
    # Loaded (by this run or one before it) after the last build began: signalled again.
    files_unbuilt: NonNegativeInt = 0


class QualityGateSummary(Payload):
    """``quality_gate``: counts of the checks of the run (details in audit.quality_results)."""

    passed: NonNegativeInt
    failed: NonNegativeInt
    critical_failures: NonNegativeInt
    # Per daily fact, what was validated: "whole table: <why>", "from <day>: ...", or
    # "not rebuilt since the last gate".
    validated: dict[str, str] = {}


def encodable(text: str) -> str:
    """``text`` with its lone surrogates as ``\\xNN`` escapes: a file name with bytes of
    another encoding (``os.fsdecode`` keeps them as lone surrogates) cannot be sent as UTF-8
    JSON, which XCom is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that stands for no byte
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")
    return text


# Text that may name a landed file.
EncodableStr = Annotated[str, AfterValidator(encodable)]


class RosterLoadSummary(Payload):
    """``load_roster``: the roster file this run loaded, and the handles the extract tasks
    ask each platform for."""

    handles: dict[str, list[str]]
    rows_loaded: NonNegativeInt
    rows_rejected: NonNegativeInt
    # Executives with rows in the file but none loaded: absent from raw.roster_* this run.
    executives_skipped: list[EncodableStr]
    # Header cells that name no roster column.
    columns_ignored: list[EncodableStr]
    quarantine_path: EncodableStr | None = None
    # Why the roster file was refused (load_roster failed): ``handles`` are then the roster's
    # stored before, which the extract tasks fetch all the same.
    refused: EncodableStr | None = None


class Attention(Payload):
    """One thing in a task that needs a person's attention (alerts.report_attention): what
    it is, how many rows it kept out of the warehouse (None: not known) and where to look
    (``also_where``: a second place, such as a failed gate's Data Docs)."""

    task_id: str
    what: EncodableStr
    rows_kept_out: NonNegativeInt | None = None
    where: EncodableStr | None = None
    also_where: EncodableStr | None = None
