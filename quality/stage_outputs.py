"""The filter stage's outputs: parallel alignment, the metrics, the plot CSVs, and the written files (the
rejects table, streamed out of DuckDB in order, then one Parquet file per language, read out of DuckDB one
language at a time while the previous one is written)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from schemas.artifacts import parquet_rows, write_csv_rows, write_parquet, write_parquet_batches
from schemas.ledger import check_conservation, refuse_empty_output
from schemas.params import Params
from schemas.records import REJECT_SCHEMA, TRANSLATED_SCHEMA

PLOT_ROWS = 3000  # at most this many points in length_ratio.csv, spread evenly over languages
_KEPT_ROWS = """
SELECT r.id, r.lang, r.instruction, r.input, r.output,
  coalesce(r.model, CASE WHEN r.is_source THEN 'source' ELSE 'unknown' END) AS model,
  coalesce(r.smoke, false) AS smoke, coalesce(r.truncated_fields, []::VARCHAR[]) AS truncated_fields,
  coalesce(r.protected_spans_ok, true) AS protected_spans_ok, coalesce(r.kept_verbatim, false) AS kept_verbatim,
  r.log_prob
FROM rows r SEMI JOIN (SELECT rid FROM kept_rids WHERE lang = $1) k USING (rid) WHERE r.lang = $1 ORDER BY r.id"""
# The rejects in the ledger's order (schemas.ledger.write_rejects: lang, id, reason), sorted by DuckDB.
_REJECT_ROWS = """SELECT id, lang, '{stage}' AS stage, reason, detail FROM decision WHERE reason IS NOT NULL
ORDER BY lang, id, reason"""
_BATCH_ROWS = 100_000


def parallel_alignment(con: duckdb.DuckDBPyConnection) -> None:
    """alignment=parallel: a row that passed is rejected when its id failed, or is missing, elsewhere."""
    con.execute("""
CREATE OR REPLACE TABLE decision AS
WITH langs AS (SELECT list(DISTINCT lang ORDER BY lang) AS all_langs FROM decision),
per_id AS (
  SELECT id, min(CASE WHEN reason IS NOT NULL THEN lang || ' (' || reason || ')' END) AS failed_in,
         list(lang) AS present
  FROM decision GROUP BY id
)
SELECT d.rid, d.lang, d.id,
  CASE WHEN d.reason IS NOT NULL THEN d.reason
       WHEN p.failed_in IS NOT NULL OR len(p.present) < len(l.all_langs) THEN 'parallel_alignment' END AS reason,
  CASE WHEN d.reason IS NOT NULL THEN d.detail
       WHEN p.failed_in IS NOT NULL THEN 'rejected in ' || p.failed_in
       WHEN len(p.present) < len(l.all_langs)
         THEN 'missing in ' || list_filter(l.all_langs, lambda x: NOT list_contains(p.present, x))[1] END AS detail
FROM decision d JOIN per_id p USING (id) CROSS JOIN langs l
""")


def metrics(con: duckdb.DuckDBPyConnection, params: Params, reasons: list[str], skipped: dict[str, str]) \
        -> tuple[dict[str, Any], dict[str, int], dict[str, dict[str, int]]]:
    counts_in = dict(con.execute("SELECT lang, count(*) FROM rows GROUP BY lang").fetchall())
    by_reason: dict[str, dict[str, int]] = {lang: {} for lang in counts_in}
    for lang, reason, n in con.execute("SELECT lang, reason, count(*) FROM decision WHERE reason IS NOT NULL "
                                       "GROUP BY lang, reason").fetchall():
        by_reason[lang][reason] = n
    languages = {}
    for lang in sorted(counts_in):
        rejected = sum(by_reason[lang].values())
        languages[lang] = {"in": counts_in[lang], "kept": counts_in[lang] - rejected, "rejected": rejected,
                           "rejected_by_reason": {r: by_reason[lang].get(r, 0) for r in reasons}}
    ratio = {lang: {"median": round(med, 4), "mad": round(mad, 4), "rows": n}
             for lang, med, mad, n in con.execute("SELECT lang, med, mad, n FROM lr ORDER BY lang").fetchall()
             if med is not None}
    metrics = {"alignment": params.quality.alignment, "languages": languages, "skipped_checks": skipped,
               "log_length_ratio": ratio}
    return metrics, counts_in, by_reason


def plots(con: duckdb.DuckDBPyConnection, metrics: dict[str, Any], plots: Path) -> None:
    rows = [{"lang": lang, "retention": round(m["kept"] / m["in"], 4) if m["in"] else 0.0, "in": m["in"],
             "kept": m["kept"]} for lang, m in metrics["languages"].items()]
    write_csv_rows(rows, ["lang", "retention", "in", "kept"], plots / "retention.csv")
    n_langs = con.execute("SELECT count(DISTINCT lang) FROM cmp WHERE log_length_ratio IS NOT NULL").fetchall()[0][0]
    per_lang = max(10, PLOT_ROWS // max(n_langs, 1))
    sample = con.execute(f"""
SELECT s.lang, round(s.log_length_ratio, 4) AS llr, (d.reason IS NULL)::INT AS kept FROM (
  SELECT c.rid, c.lang, c.log_length_ratio,
         row_number() OVER (PARTITION BY c.lang ORDER BY md5(c.id)) AS k
  FROM cmp c WHERE c.log_length_ratio IS NOT NULL
) s JOIN decision d USING (rid) WHERE k <= {per_lang} ORDER BY s.lang, llr, kept
""").fetchall()
    write_csv_rows([{"lang": r[0], "log_length_ratio": r[1], "kept": r[2]} for r in sample],
                   ["lang", "log_length_ratio", "kept"], plots / "length_ratio.csv")


def write_outputs(con: duckdb.DuckDBPyConnection, stage: str, params: Params, out_dir: Path, rejects: Path,
                  metrics: dict[str, Any], counts_in: dict[str, int], by_reason: dict[str, dict[str, int]],
                  reasons: list[str]) -> dict[str, int]:
    """The rejects table first (it explains an empty result), then one file per language; returns the kept
    counts, taken on the written side, and checks conservation against independent counts."""
    write_parquet_batches(con.sql(_REJECT_ROWS.format(stage=stage)).to_arrow_reader(_BATCH_ROWS), rejects,
                          REJECT_SCHEMA)
    translated = [lang for lang in counts_in if lang != params.languages.source]
    refuse_empty_output(stage, sum(counts_in[lang] for lang in translated),
                        sum(metrics["languages"][lang]["kept"] for lang in translated),
                        {r: sum(by_reason[lang].get(r, 0) for lang in translated) for r in reasons}, rejects)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The kept rows' ids, narrow and in language order: each language's read skips the others' row groups.
    con.execute("CREATE TABLE kept_rids AS SELECT rid, lang FROM decision WHERE reason IS NULL ORDER BY lang")
    kept: dict[str, int] = {}
    for lang, table in _kept_tables(con, sorted(counts_in)):
        write_parquet(table, out_dir / f"{lang}.parquet", TRANSLATED_SCHEMA)
        del table
        kept[lang] = parquet_rows(out_dir / f"{lang}.parquet")  # counted on the written side
        metrics["languages"][lang]["kept"] = kept[lang]
    rejected_counts = {lang: n for lang, n in con.execute(
        "SELECT lang, count(*) FROM read_parquet($1) GROUP BY lang", [str(rejects)]).fetchall()}
    check_conservation(stage, counts_in, kept, rejected_counts)
    return kept


def _kept_tables(con: duckdb.DuckDBPyConnection, langs: list[str]) -> Iterator[tuple[str, pa.Table]]:
    """Each language's kept rows in id order. The next language is read (on a cursor, in a thread: DuckDB
    and the Parquet writer both release the GIL) while the caller writes this one: two at most are held."""
    cursor = con.cursor()

    def read(lang: str) -> pa.Table:
        return cursor.sql(_KEPT_ROWS, params=[lang]).to_arrow_table()

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = [pool.submit(read, lang) for lang in langs[:1]]
            for index, lang in enumerate(langs):
                table = pending.pop().result()
                pending += [pool.submit(read, following) for following in langs[index + 1:index + 2]]
                yield lang, table
    finally:
        cursor.close()
