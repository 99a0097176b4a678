"""The `low_confidence` filter: the translation model's own score of its output.

The translate stage stores CTranslate2's score of every unit in the translation memory and writes each
record's token-weighted mean as `log_prob` (schemas/records.py). A translated row is rejected when its
log_prob is below `min_log_prob` (absolute), or below its language's `percentile` quantile (per
language, once the language has `min_rows` scored rows). Rows without a score (kept verbatim, other
translators, memories migrated from format 1) are not judged.

With a smoke model (random weights) the scores mean nothing: only the mechanics can be tested; the real
test is a user's NLLB run. The stage says so in `skipped_checks` when smoke rows were scored.
"""

from __future__ import annotations

import duckdb

from quality.filters import Check
from schemas.params import LowConfidenceParams


def checks(con: duckdb.DuckDBPyConnection, params: LowConfidenceParams, skipped: dict[str, str]) -> list[Check]:
    """Table `low_conf` (rid, log_prob, bound, rule) of the rows below a bound, and the check that
    rejects them; no check when the filter is off."""
    if not params.enabled:
        return []
    absolute = "NULL::DOUBLE" if params.min_log_prob is None else f"{params.min_log_prob}::DOUBLE"
    quantile = ("NULL::DOUBLE" if params.percentile is None
                else f"quantile_cont(log_prob, {params.percentile})")
    share = f"{params.percentile:.4g}" if params.percentile is not None else ""
    con.execute(f"""
CREATE OR REPLACE TABLE low_conf AS
WITH scored AS (SELECT rid, lang, log_prob FROM rows WHERE NOT is_source AND log_prob IS NOT NULL),
bounds AS (SELECT lang, count(*) AS n, {quantile} AS q FROM scored GROUP BY lang)
SELECT s.rid, s.log_prob,
  CASE WHEN s.log_prob < {absolute} THEN {absolute} ELSE b.q END AS bound,
  CASE WHEN s.log_prob < {absolute} THEN 'quality.filters.low_confidence.min_log_prob'
       ELSE printf('the {share} quantile of %s, %d scored rows', s.lang, b.n) END AS rule
FROM scored s JOIN bounds b USING (lang)
WHERE coalesce(s.log_prob < {absolute}, false)
   OR (b.n >= {params.min_rows} AND coalesce(s.log_prob < b.q, false))
""")
    unscored, smoke, few = con.execute(f"""
SELECT count(*) FILTER (WHERE log_prob IS NULL AND NOT coalesce(kept_verbatim, false)),
       count(*) FILTER (WHERE log_prob IS NOT NULL AND coalesce(smoke, false)),
       (SELECT string_agg(lang, ', ' ORDER BY lang) FROM (
          SELECT lang FROM rows WHERE NOT is_source AND log_prob IS NOT NULL GROUP BY lang
          HAVING count(*) < {params.min_rows}))
FROM rows WHERE NOT is_source""").fetchall()[0]
    notes = []
    if unscored:
        notes.append(f"{unscored} translated rows have no score (not from our translate stage, or a memory "
                     "migrated from format 1): not judged")
    if smoke:
        notes.append(f"{smoke} scored rows come from a smoke model (random weights): the scores test the "
                     "mechanics only")
    if few and params.percentile is not None:
        notes.append(f"fewer than {params.min_rows} scored rows, percentile not applied in: {few}")
    if notes:
        skipped["low_confidence"] = "; ".join(notes)
    return [Check("low_confidence", "rid IN (SELECT rid FROM low_conf)",
                  "(SELECT printf('model log-prob %.3f below %.3f (%s)', l.log_prob, l.bound, l.rule) "
                  "FROM low_conf l WHERE l.rid = cmp.rid)")]
