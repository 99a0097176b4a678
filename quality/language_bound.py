"""The `language_bound` check: translated records whose English task depends on English form
(rules: `schemas.language_bound`, shared with translate's `skip_language_bound`).

Vectorised DuckDB regexes over the source instructions (one per id, not per language). Rows whose rule family
is in `quality.filters.language_bound.reject` are rejected; those in `flag` are kept and counted per language
in the metrics (`language_bound_flagged`). A row whose output was generated in its language (`output_model`
names a responder, Bactrian-X's recipe) is only flagged whatever its family: the task is regenerable (a rhyme
written in German rhymes in German); what breaks is a translated *answer* to an English-form task.
"""

from __future__ import annotations

import duckdb

from schemas.language_bound import sql_family, sql_match
from schemas.params import LanguageBoundParams


def create_table(con: duckdb.DuckDBPyConnection, params: LanguageBoundParams) -> None:
    """Table `lb_flags` (rid, lb_family, lb_match, lb_reject): translated rows whose source instruction
    matches a rule of a rejected or flagged family."""
    families = [*params.reject, *params.flag] if params.enabled else []
    reject = ", ".join(f"'{f}'" for f in params.reject) or "NULL"
    con.execute(f"""
CREATE OR REPLACE TABLE lb_flags AS
SELECT t.rid, m.lb_family, m.lb_match,
  m.lb_family IN ({reject}) AND coalesce(t.output_model, 'translated') = 'translated' AS lb_reject FROM rows t JOIN (
  SELECT id, {sql_family('instruction', families)} AS lb_family, {sql_match('instruction', families)} AS lb_match
  FROM rows WHERE is_source
) m USING (id)
WHERE NOT t.is_source AND m.lb_family IS NOT NULL
""")


def flagged_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Per language: kept rows whose task is language-bound in a flagged family."""
    return dict(con.execute("SELECT d.lang, count(*) FROM decision d JOIN lb_flags USING (rid) "
                            "WHERE d.reason IS NULL AND NOT lb_reject GROUP BY d.lang ORDER BY d.lang").fetchall())
