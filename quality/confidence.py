"""The `low_confidence` filter: the translation model's own score of a translation.

Two scores, each judged within its own population:
- `log_prob`: the translate stage stores CTranslate2's score of every unit in the translation memory and writes
  each record's token-weighted mean (schemas/records.py). Rejected below `min_log_prob`, or below its
  language's `percentile` quantile of log_prob rows (once the language has `min_rows` of them).
- `qe_score`: translations our translate stage did not produce (imported MT) have no log_prob; the score stage
  (dataset_builder/qe_score.py) gives them NLLB's forced-decoding score, in `quality.qe.dir`. A row without a
  log_prob is judged by its qe_score, if one was computed for exactly its text (sha256 of its fields): below
  `min_qe_score`, or below its language's `percentile` quantile of QE-scored rows.
Rows with neither (kept verbatim, a memory migrated from format 1, never scored) are not judged. Each
reject's detail names the score it used.

With a smoke model (random weights) the scores mean nothing: only the mechanics can be tested; the real
test is a user's NLLB run. The stage says so in `skipped_checks` when smoke rows were scored.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from quality.filters import Check
from schemas.errors import PolyinstructError
from schemas.languages import UnknownLanguageError, resolve
from schemas.params import QualityParams

QE_COLUMNS = ("id", "lang", "qe_score", "text_sha256", "smoke")
SCORE_NAMES = {"log_prob": "model log-prob", "qe": "QE score (forced decoding, score stage)"}


def _read_qe(directory: Path) -> pa.Table:
    """The score stage's files (one per language; other files ignored), lang as FLORES-200 codes."""
    parts = []
    for path in sorted(directory.glob("*.parquet")) if directory.is_dir() else []:
        try:
            lang = resolve(path.stem).flores
        except UnknownLanguageError:
            continue  # not a score file
        part = pq.read_table(path)
        missing = [c for c in QE_COLUMNS if c not in part.column_names]
        if missing:
            raise PolyinstructError(f"{path}: not a score file (no column {', '.join(missing)}); rerun "
                                    "`polyinstruct score` or remove it from quality.qe.dir")
        part = part.select(list(QE_COLUMNS))
        parts.append(part.set_column(1, "lang", pa.array([lang] * part.num_rows, pa.string())))
    empty = pa.table({"id": pa.array([], pa.string()), "lang": pa.array([], pa.string()),
                      "qe_score": pa.array([], pa.float64()), "text_sha256": pa.array([], pa.string()),
                      "smoke": pa.array([], pa.bool_())})
    return pa.concat_tables([empty, *parts], promote_options="permissive")


def checks(con: duckdb.DuckDBPyConnection, quality: QualityParams, skipped: dict[str, str]) -> list[Check]:
    """Table `low_conf` (rid, score, bound, rule, kind) of the rows below a bound, and the check that
    rejects them; no check when the filter is off."""
    params = quality.filters.low_confidence
    if not params.enabled:
        return []
    con.register("qe_files", _read_qe(Path(quality.qe.dir)))
    con.execute("""
CREATE OR REPLACE TEMP TABLE scored AS
WITH qe AS (
  SELECT r.rid, q.qe_score, q.smoke, q.text_sha256 = sha256(r.instruction || chr(10) || r.input || chr(10)
         || r.output) AS fresh
  FROM rows r JOIN qe_files q ON q.lang = r.lang AND q.id = r.id
  WHERE NOT r.is_source AND r.log_prob IS NULL AND q.qe_score IS NOT NULL)
SELECT r.rid, r.lang, coalesce(r.log_prob, q.qe_score) AS score,
       CASE WHEN r.log_prob IS NOT NULL THEN 'log_prob' ELSE 'qe' END AS kind,
       CASE WHEN r.log_prob IS NOT NULL THEN coalesce(r.smoke, false) ELSE q.smoke END AS smoke
FROM rows r LEFT JOIN (SELECT * FROM qe WHERE fresh) q USING (rid)
WHERE NOT r.is_source AND coalesce(r.log_prob, q.qe_score) IS NOT NULL""")
    stale = con.execute("""SELECT count(*) FROM rows r JOIN qe_files q ON q.lang = r.lang AND q.id = r.id
WHERE NOT r.is_source AND r.log_prob IS NULL AND q.qe_score IS NOT NULL
  AND q.text_sha256 <> sha256(r.instruction || chr(10) || r.input || chr(10) || r.output)""").fetchall()[0][0]
    con.unregister("qe_files")

    def floor(value: float | None) -> str:
        return "NULL::DOUBLE" if value is None else f"{value}::DOUBLE"

    absolute = f"CASE s.kind WHEN 'log_prob' THEN {floor(params.min_log_prob)} ELSE {floor(params.min_qe_score)} END"
    floor_rule = ("CASE s.kind WHEN 'log_prob' THEN 'quality.filters.low_confidence.min_log_prob' "
                  "ELSE 'quality.filters.low_confidence.min_qe_score' END")
    quantile = "NULL::DOUBLE" if params.percentile is None else f"quantile_cont(score, {params.percentile})"
    share = f"{params.percentile:.4g}" if params.percentile is not None else ""
    name = "CASE s.kind WHEN 'log_prob' THEN '{}' ELSE '{}' END".format(*SCORE_NAMES.values())
    con.execute(f"""
CREATE OR REPLACE TABLE low_conf AS
WITH bounds AS (SELECT lang, kind, count(*) AS n, {quantile} AS q FROM scored GROUP BY lang, kind)
SELECT s.rid, s.score, s.kind, {name} AS score_name,
  CASE WHEN s.score < {absolute} THEN {absolute} ELSE b.q END AS bound,
  CASE WHEN s.score < {absolute} THEN {floor_rule}
       ELSE printf('the {share} quantile of %s %s, %d scored rows', s.lang,
                   CASE s.kind WHEN 'log_prob' THEN 'log_prob' ELSE 'QE' END, b.n) END AS rule
FROM scored s JOIN bounds b USING (lang, kind)
WHERE coalesce(s.score < {absolute}, false)
   OR (b.n >= {params.min_rows} AND coalesce(s.score < b.q, false))
""")
    unscored, smoke, qe_rows, few = con.execute(f"""
SELECT (SELECT count(*) FROM rows r WHERE NOT r.is_source AND NOT coalesce(r.kept_verbatim, false)
          AND r.rid NOT IN (SELECT rid FROM scored)),
       count(*) FILTER (WHERE smoke), count(*) FILTER (WHERE kind = 'qe'),
       (SELECT string_agg(lang || CASE kind WHEN 'qe' THEN ' (QE)' ELSE '' END, ', ' ORDER BY lang, kind) FROM (
          SELECT lang, kind FROM scored GROUP BY lang, kind HAVING count(*) < {params.min_rows}))
FROM scored""").fetchall()[0]
    notes = []
    if qe_rows:
        notes.append(f"{qe_rows} translated rows without a log_prob judged by their QE score ({quality.qe.dir})")
    if unscored:
        notes.append(f"{unscored} translated rows have no score (not from our translate stage and not scored by "
                     "the score stage, or a memory migrated from format 1): not judged")
    if stale:
        notes.append(f"{stale} QE scores in {quality.qe.dir} are of a different text than the row now holds "
                     "(rerun the score stage): not used")
    if smoke:
        notes.append(f"{smoke} scored rows come from a smoke model (random weights): the scores test the "
                     "mechanics only")
    if few and params.percentile is not None:
        notes.append(f"fewer than {params.min_rows} scored rows, percentile not applied in: {few}")
    if notes:
        skipped["low_confidence"] = "; ".join(notes)
    return [Check("low_confidence", "rid IN (SELECT rid FROM low_conf)",
                  "(SELECT printf('%s %.3f below %.3f (%s)', l.score_name, l.score, l.bound, l.rule) "
                  "FROM low_conf l WHERE l.rid = cmp.rid)")]
