"""Survey ingestion: published aggregates and respondent microdata, with quarantine.

A file is validated as a whole. If anything is invalid, nothing from it is loaded: the file
(and its sidecar) moves to quarantine beside a JSON report naming file, row, column and
reason, and the other files still load. Loading is keyed by content (SHA-256 of the file and
its sidecar): the same file again is a no-op, and a new file for the same source and wave
replaces the earlier rows in one transaction.

Formats (:mod:`.formats`, one registry keyed by suffix): CSV (``,`` ``;`` or tab; UTF-8
with or without BOM, UTF-16, or Windows-1252; ``.csv.gz`` too), XLSX (the header row is
found below title rows) and Parquet. Problems are :class:`~social_leadership.intake.RowIssue`
records, as in every intake. Shapes:
published aggregates (:mod:`.published`) and respondent microdata with a sidecar
declaration (:mod:`.microdata`); :mod:`.ingest` says how the shape is chosen. Weighted
shares of microdata are computed in dbt (``int_survey_shares_weighted``), not here.
"""

from social_leadership.surveys.ingest import ingest_folder, load_file

__all__ = ["ingest_folder", "load_file"]
