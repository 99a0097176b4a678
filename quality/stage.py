"""The `filter` stage: source + translated Parquet -> filtered Parquet per language, one rejects table,
metrics/quality.json and two plot CSVs.

DuckDB does the heavy work (normalisation, hashing, checks, joins, aggregates, dedup windows) in an in-memory
database of its own, under `quality.memory_limit`, spilling to disk beyond it: DuckDB reads the inputs itself
(quality.inputs) and the outputs come out one language at a time, so memory grows with the largest language,
not with the number of languages. Python only feeds the language-ID models and rensa (MinHash), one language at a
time, and checks protected spans (quality.spans_check) when the translated data lacks the translate stage's
flag. The filters and the order of their reasons are declared once, in quality.registry: SQL checks ->
exact dedup -> near dedup -> language ID (quality.lid_step; near dedup runs beside it) -> parallel alignment.
Every row leaves either into data/filtered or into the rejects table; conservation is asserted.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from quality import dedup, filters, language_bound, lid_step, registry, spans_check, stage_outputs, token_stats
from quality.inputs import load_rows
from schemas.artifacts import claim_output_folder, parquet_files, record_output_folder, write_json
from schemas.errors import PolyinstructError
from schemas.models import SMOKE_MODEL_PREFIX
from schemas.params import Params
from schemas.progress import progress_bar
from schemas.timings import write_timing

STAGE = "filter"


@dataclass
class FilterResult:
    counts_in: dict[str, int]
    kept: dict[str, int]
    rejected_by_reason: dict[str, dict[str, int]]
    skipped_checks: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)
    langid_rows: int = 0  # rows judged (script check, and the models where needed)
    langid_texts: int = 0  # of which texts that reached a statistical model (fastText and/or lingua)
    langid_seconds: float = 0.0  # the whole step: SQL prose extraction + script check + models
    lingua_seconds: float = 0.0  # inside quality.langid.judge only (fastText and lingua)
    langid_model_texts: dict[str, int] = field(default_factory=dict)  # texts each model saw

    @property
    def rejected(self) -> dict[str, int]:
        return {lang: sum(reasons.values()) for lang, reasons in self.rejected_by_reason.items()}


@dataclass
class _Run:
    """One run's shared state: the connection, the params, the progress display, notes and step timings."""

    con: duckdb.DuckDBPyConnection
    params: Params
    progress: Any
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    clock: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.clock, 3)
        self.clock = now


@contextmanager
def _connection(memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory database that spills its tables and intermediates to a temporary folder beyond
    `memory_limit`. No database file: its compression, writes and checkpoints cost more CPU than the tables,
    which live for one run, are worth (the load alone took 2-3x the CPU). Nor automatic checkpoints: an
    in-memory database still checkpoints once its writes pass `checkpoint_threshold` (16 MB), compressing
    every table (4.1 CPU-s at 500K rows, after token_stats' batched inserts, mostly on feat's token lists,
    dropped soon after). Uncompressed tables hold more memory (+150-280 MB of peak RSS at 500K with language
    ID on), still capped by `memory_limit`, beyond which they spill."""
    with tempfile.TemporaryDirectory(prefix="polyinstruct-filter-") as work:
        con = duckdb.connect(":memory:", config={
            "threads": os.cpu_count() or 1, "preserve_insertion_order": False, "memory_limit": memory_limit,
            "temp_directory": str(Path(work) / "spill"), "checkpoint_threshold": "1TB"})
        try:
            yield con
        finally:
            con.close()


def _load(run: _Run, source: Path, translated: Path) -> dict[str, list[str]]:
    """Table rows: every input row with its row id (rid); returns, per extra column, the translated files that
    lacked it."""
    missing = load_rows(run.con, source, translated, run.params.languages.source)
    _check_unique_ids(run.con)
    return missing


def _check_unique_ids(con: duckdb.DuckDBPyConnection) -> None:
    # A bare existence test first: the named message's aggregate over file paths, and its sort, only run where
    # an id repeats.
    if not con.execute("SELECT 1 FROM rows GROUP BY lang, id HAVING count(*) > 1 LIMIT 1").fetchall():
        return
    dup = con.execute("SELECT lang, id, count(*) AS n, min(file) FROM rows GROUP BY lang, id HAVING n > 1 "
                      "ORDER BY lang, id LIMIT 1").fetchall()
    if dup:
        lang, ident, n, path = dup[0]
        raise PolyinstructError(f"{path}: id '{ident}' appears {n} times for {lang}; ids must be unique within a "
                                f"language (drop the repeated rows or give them distinct ids)")


def _features(run: _Run, missing: dict[str, list[str]], translated: Path) -> bool:
    """Tables feat (per-row features), spans, cmp (compared with the source row) and the per-language
    length-ratio statistics lr / lrb; returns whether any translated file carries truncated_fields."""
    con, fparams = run.con, run.params.quality.filters
    filters.install_macros(con, run.params.quality)
    con.execute(f"CREATE TABLE feat AS {filters.FEATURES_SQL}")
    token_stats.create_table(con)
    token_stats.create_overlap_table(con, filters.OVERLAP_CANDIDATES_SQL)
    has_truncated = len(missing["truncated_fields"]) < len(parquet_files(translated))
    if missing["truncated_fields"] and fparams.truncated.enabled:
        where = "checked in the other files" if has_truncated else "check skipped"
        run.skipped["truncated"] = (f"column truncated_fields absent in "
                                    f"{', '.join(missing['truncated_fields'])}: {where}")
    spans_check.create_span_table(con, fparams.placeholder, run.skipped)
    compare = filters.COMPARE_SQL.format(min_source_chars=fparams.length_ratio.min_source_chars,
                                         buckets=fparams.length_ratio.buckets)
    con.execute(f"CREATE TABLE cmp AS {compare}")
    _length_ratio_stats(run)
    return has_truncated


def _length_ratio_stats(run: _Run) -> None:
    con, fparams = run.con, run.params.quality.filters
    max_sim = fparams.untranslated.max_similarity if fparams.untranslated.enabled else 2
    usable = (f"log_length_ratio IS NOT NULL AND NOT empty_instruction AND NOT empty_output "
              f"AND coalesce(source_similarity, 0) < {max_sim}")
    con.execute(f"CREATE TABLE lr AS SELECT lang, median(log_length_ratio) AS med, mad(log_length_ratio) AS mad, "
                f"count(log_length_ratio) AS n FROM cmp WHERE {usable} GROUP BY lang")
    con.execute(f"CREATE TABLE lrb AS SELECT lang, length_bucket, median(log_length_ratio) AS med, "
                f"mad(log_length_ratio) AS mad FROM cmp WHERE {usable} "
                f"GROUP BY lang, length_bucket HAVING count(*) >= {fparams.length_ratio.min_rows}")
    if fparams.length_ratio.enabled:
        few = [r[0] for r in con.execute(
            f"SELECT DISTINCT c.lang FROM cmp c LEFT JOIN lr USING (lang) WHERE NOT c.is_source "
            f"AND coalesce(lr.n, 0) < {fparams.length_ratio.min_rows} ORDER BY 1").fetchall()]
        if few:
            run.skipped["length_ratio"] = (f"fewer than {fparams.length_ratio.min_rows} rows with a source of >= "
                                           f"{fparams.length_ratio.min_source_chars} chars in: {', '.join(few)}")


def _verdict(run: _Run, has_truncated: bool) -> tuple[list[filters.Check], dict[str, Any]]:
    """Table verdict: every registered SQL check in one pass; returns the checks and the round-trip audit."""
    ctx = registry.FilterContext(run.con, run.params.quality, has_truncated, run.skipped)
    checks = registry.sql_checks(ctx)
    run.con.execute(f"CREATE TABLE verdict AS {filters.verdict_sql(checks, registry.SOURCE_REASONS)}")
    return checks, ctx.round_trip_audit


def _exact_dedup(run: _Run) -> None:
    """Table dup (exact duplicates among the rows that passed every SQL check: the kept copy is a clean row, found
    by the clean rows' dedup_key) and table surv2 (rid, lang, id): the survivors."""
    con, quality = run.con, run.params.quality
    con.execute("CREATE TABLE dup (rid BIGINT, kept_id VARCHAR)")
    if quality.dedup.exact:
        clean = "(SELECT c.rid, c.lang, c.id, c.dedup_key FROM cmp c JOIN verdict v USING (rid) WHERE v.reason IS NULL)"
        con.execute(f"INSERT INTO dup {dedup.exact_duplicates_sql(clean)}")
    # In language order: near dedup reads one language at a time, and DuckDB's zone maps then skip the others.
    con.execute("CREATE TABLE surv2 AS SELECT v.rid, v.lang, v.id FROM verdict v ANTI JOIN dup USING (rid) "
                "WHERE v.reason IS NULL ORDER BY v.lang")
    run.lap("exact_dedup")


class _Stopped(Exception):
    """Near dedup abandoned because language ID, beside it, failed or was interrupted."""


def _near_dedup(run: _Run, con: duckdb.DuckDBPyConnection, stop: threading.Event) -> float:
    """Table near (rid, kept_id, similarity) among surv2, from each language's token hashes out of feat (dropped
    after), on its own connection `con`, unless `stop` is set (checked after each language); returns its seconds."""
    started, quality = time.perf_counter(), run.params.quality
    near_table = dedup.NearDuplicates.none()
    if quality.dedup.near:
        langs_total = con.execute("SELECT count(DISTINCT lang) FROM surv2").fetchall()[0][0]
        near_task = run.progress.add_task("filter: near dedup", total=langs_total, unit="langs")

        def next_language(_lang: str, _n: int) -> None:
            run.progress.advance(near_task, 1)
            if stop.is_set():
                raise _Stopped

        near_table = dedup.near_duplicates(
            con, "feat", "surv2", quality.dedup.near_threshold, quality.dedup.num_perm, quality.dedup.shingle,
            on_language=next_language)
    con.execute("DROP TABLE feat")
    con.register("near_found", near_table.table())
    con.execute("CREATE TABLE near AS SELECT * FROM near_found")
    con.unregister("near_found")
    return round(time.perf_counter() - started, 3)


def _near_dedup_and_language_ids(run: _Run) -> lid_step.LangIdRun:
    """Near dedup (a thread, on a second connection) while language ID runs here: language ID does not wait for it,
    and judges the near duplicates too (their verdicts unused: `_decide` names near_duplicate first). Near dedup is
    mostly one core (numpy; rensa and DuckDB release the GIL): language ID's workers fill the other. Steps
    near_dedup (its own seconds) and lang_id (until both are done) overlap."""
    near_con, stop = run.con.cursor(), threading.Event()
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="near-dedup") as pool:
            near_seconds = pool.submit(_near_dedup, run, near_con, stop)
            try:
                lid_run = _language_ids(run)
            except BaseException:  # an error, Ctrl-C or SIGTERM: near dedup stops now instead of finishing
                stop.set()
                near_con.interrupt()
                raise
            run.seconds["near_dedup"] = near_seconds.result()
    finally:
        near_con.close()
    run.lap("lang_id")
    return lid_run


def _language_ids(run: _Run) -> lid_step.LangIdRun:
    """Table lid (rid, detail) of the surviving translated rows in the wrong language."""
    con, fparams = run.con, run.params.quality.filters
    con.execute(f"""CREATE TABLE judge_rows AS SELECT s.rid, s.lang FROM surv2 s
        JOIN cmp c USING (rid) JOIN rows r USING (rid)
        WHERE NOT c.is_source AND NOT coalesce(c.kept_verbatim, false) AND {fparams.lang_id.enabled}
          AND NOT starts_with(coalesce(r.model, ''), '{SMOKE_MODEL_PREFIX}')""")
    _note_smoke_rows(con, fparams.lang_id.enabled, run.skipped)
    lid_run = lid_step.language_ids(con, fparams.lang_id, run.progress)
    con.register("lid_found", lid_run.failures)
    con.execute("CREATE TABLE lid AS SELECT * FROM lid_found")
    con.unregister("lid_found")
    return lid_run


def _note_smoke_rows(con: duckdb.DuckDBPyConnection, enabled: bool, skipped: dict[str, str]) -> None:
    """Rows a smoke model wrote (random tokens in no language) skip language ID; say how many, and why."""
    if not enabled:
        return
    n = con.execute(f"SELECT count(*) FROM rows WHERE NOT is_source AND starts_with(coalesce(model, ''), "
                    f"'{SMOKE_MODEL_PREFIX}')").fetchall()[0][0]
    if n:
        skipped["lang_id"] = (f"{n} rows from a smoke model (model starts with '{SMOKE_MODEL_PREFIX}') skip "
                              "language ID: a random-weight model writes no language")


def _decide(run: _Run) -> None:
    """Table decision (rid, lang, id, reason, detail): each row's first failure, or none."""
    run.con.execute("""
CREATE TABLE decision AS
SELECT v.rid, v.lang, v.id,
  CASE WHEN v.reason IS NOT NULL THEN v.reason WHEN d.rid IS NOT NULL THEN 'duplicate'
       WHEN n.rid IS NOT NULL THEN 'near_duplicate' WHEN l.rid IS NOT NULL THEN 'lang_id' END AS reason,
  CASE WHEN v.reason IS NOT NULL THEN v.detail WHEN d.rid IS NOT NULL THEN 'duplicate of ' || d.kept_id
       WHEN n.rid IS NOT NULL THEN printf('near duplicate of %s (estimated Jaccard %.2f)', n.kept_id, n.similarity)
       WHEN l.rid IS NOT NULL THEN l.detail END AS detail
FROM verdict v LEFT JOIN dup d USING (rid) LEFT JOIN near n USING (rid) LEFT JOIN lid l USING (rid)
""")
    if run.params.quality.alignment == "parallel":
        stage_outputs.parallel_alignment(run.con)


def run_filter(source: Path, translated: Path, out_dir: Path, rejects: Path, metrics_path: Path | None,
               plots: Path | None, params: Params) -> FilterResult:
    """Run the whole stage; see the module docstring."""
    claim_output_folder(out_dir, STAGE, inputs=(source, translated))
    quality = params.quality
    with _connection(quality.memory_limit) as con:
        run = _Run(con, params, progress=None)
        missing = _load(run, Path(source), Path(translated))  # bad input fails here, before any progress bar
        run.lap("load")
        with progress_bar() as progress:
            run.progress = progress
            task = progress.add_task("filter: SQL checks", total=None, unit="steps")
            has_truncated = _features(run, missing, Path(translated))
            checks, round_trip_audit = _verdict(run, has_truncated)
            progress.update(task, total=1, completed=1)
            run.lap("sql_checks")
            _exact_dedup(run)
            lid_run = _near_dedup_and_language_ids(run)
            _decide(run)

            reasons = [c.name for c in checks] + registry.later_reasons(quality)
            registry.note_disabled(quality, run.skipped)
            metrics, counts_in, by_reason = stage_outputs.metrics(con, params, reasons, run.skipped)
            if quality.filters.language_bound.enabled and quality.filters.language_bound.flag:
                metrics["language_bound_flagged"] = language_bound.flagged_counts(con)
            if round_trip_audit:
                metrics["round_trip"] = round_trip_audit
            kept = stage_outputs.write_outputs(con, STAGE, params, Path(out_dir), Path(rejects), metrics, counts_in,
                                               by_reason, reasons)
            record_output_folder(Path(out_dir), STAGE, (f"{lang}.parquet" for lang in counts_in))
            if metrics_path is not None:
                write_json(metrics, metrics_path)
            if plots is not None:
                stage_outputs.plots(con, metrics, Path(plots))
            run.lap("write")
    if metrics_path is not None:
        write_timing({"seconds": run.seconds, "langid_rows": lid_run.rows, "langid_texts": lid_run.texts,
                      "langid_seconds": round(lid_run.seconds, 3), "lingua_seconds": round(lid_run.judge_seconds, 3)},
                     metrics_path)
    return FilterResult(counts_in=counts_in, kept=kept, rejected_by_reason=by_reason, skipped_checks=run.skipped,
                        seconds=run.seconds, langid_rows=lid_run.rows, langid_texts=lid_run.texts,
                        langid_seconds=round(lid_run.seconds, 3), lingua_seconds=round(lid_run.judge_seconds, 3),
                        langid_model_texts=lid_run.model_texts)
