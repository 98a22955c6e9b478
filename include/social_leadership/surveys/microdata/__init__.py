"""Respondent microdata into ``raw.survey_questions`` and ``raw.survey_respondent_answers``
(one row per respondent: pseudonym, country, wave, weight and the answers as a list in
declared question order, ``raw.survey_questions.question_position``).

A microdata file (CSV, XLSX or Parquet: one row per respondent) needs a sidecar
``<stem>.survey.json`` beside it, declaring the source, the columns and, per question, the
answer scale and which answers count as agreeing::

    {
      "shape": "microdata",
      "source_id": "acme_trust",
      "source_name": "Acme Trust Survey",
      "citation": "Acme Research, respondent export of 2024-11-30",
      "is_synthetic": false,
      "wave": 2024,
      "columns": {"respondent_id": "resp", "country": "land", "wave": "welle",
                  "weight": "gewicht"},
      "questions": [
        {"question_id": "ceo_take_stand", "column": "q1",
         "text": "CEOs should take the lead on change", "scale": [1, 9], "agree": [6, 9],
         "missing": [99]}
      ]
    }

``columns`` is optional (defaults: ``respondent_id``, ``country``, ``wave``, ``weight``);
``"weight": null`` means an unweighted survey (every weight 1); ``wave`` is either a
column or the top-level constant. ``agree`` is the inclusive range of agreeing answers
(``[6, 9]``: the top four boxes of a 9-point scale, as the Edelman Trust Barometer counts
trust); ``missing`` lists "don't know"/refused codes, which, like an empty cell, leave the
respondent out of that question's base. Only the declared columns are ever read: free-text
and every other column never reach the warehouse. Respondent ids are stored only as keyed
pseudonyms (see ``pseudonym.py``).

Nothing runs in a Python row loop: rows are read by the file's format
(:mod:`social_leadership.surveys.formats`: pyarrow's CSV reader for every CSV file, both
paths alike, openpyxl, pyarrow's Parquet reader), checked by vectorised SQL, and
pseudonymised a column chunk at a time (``pseudonym.py``). The parts:

* :mod:`.declaration`: the sidecar, checked field by field, and the declared questions;
* :mod:`.rules`: every check of a respondent row, written once, and the one statement
  that inserts respondents, which both paths run;
* :mod:`.fast`: a UTF-8 CSV file is first loaded in one pass (:func:`insert_fast`), the
  rules enforced as DuckDB inserts; anything wrong raises, the transaction rolls back, and
  the file takes
* :mod:`.staged`: read once into a typed, pseudonymised temporary table, the rules counted
  by one aggregate scan (and, for a rule that fails, per-row queries naming file, row and
  column), then inserted. Other formats and encodings always take this path.

Both paths read a CSV file with the same parser and options and check the same rules, so
they agree on every file (tests/include/test_survey_fast_path.py).
"""

from social_leadership.surveys.microdata.declaration import (
    MicrodataDeclaration,
    insert_questions,
    parse_declaration,
)
from social_leadership.surveys.microdata.fast import FastPathDeclined, insert_fast
from social_leadership.surveys.microdata.staged import cleanup, insert, prepare, staged_waves

__all__ = [
    "FastPathDeclined",
    "MicrodataDeclaration",
    "cleanup",
    "insert",
    "insert_fast",
    "insert_questions",
    "parse_declaration",
    "prepare",
    "staged_waves",
]
