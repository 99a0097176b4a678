"""The filter stage's language-ID step, one language at a time: the prose and its script fraction come out
of DuckDB, `quality.langid.judge` gives the verdicts (fastText batches spread over the cores by
`quality.lid_model.parallel`), and the failures go back as a table (rid, detail)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from quality import langid, lid_lingua, lid_model, lid_sql
from schemas.languages import resolve
from schemas.params import LangIdParams


@dataclass
class LangIdRun:
    failures: pa.Table  # (rid, detail)
    rows: int = 0
    texts: int = 0
    seconds: float = 0.0
    judge_seconds: float = 0.0
    # texts each model saw (fasttext, lingua), and those the script decided alone (script)
    model_texts: dict[str, int] = field(default_factory=dict)


@dataclass
class _Started:
    lang: str
    rids: np.ndarray
    judgement: langid.Judgement


def language_slice(con: duckdb.DuckDBPyConnection, lang: str) -> pa.Table:
    """One language's (rid, prose, fraction) out of table lid_prose, in rid order: the verdicts depend on the order
    (lid_prefix probes a language's first long texts), and a parallel scan of a large language returns its rows
    out of order even from a sorted table, so without the ORDER BY the same input could give other verdicts."""
    return con.sql(f"SELECT rid, prose, {lid_sql.script_fraction_sql('prose', resolve(lang).script)} AS fraction "
                   "FROM lid_prose WHERE lang = $1 ORDER BY rid", params=[lang]).to_arrow_table()


def language_ids(con: duckdb.DuckDBPyConnection, lid: LangIdParams, progress: Any) -> LangIdRun:
    """Language ID of the rows of table judge_rows (rid, lang): prose in one SQL pass over every language, then
    per language its script fraction (SQL) and quality.langid's judgement (the script decides where only the
    language uses it; fastText, in the workers, elsewhere; lingua where it can change fastText's verdict), started
    for the next language before it is finished for this one."""
    config = langid.JudgeConfig.of(lid)
    started = time.perf_counter()
    # An output copied verbatim from the source (code, or the answer to "translate into French") is no evidence of
    # the wrong language: only the instruction is judged then (a copied English prose output is english_left's).
    prose = lid_sql.prose_sql("r.instruction || chr(10) || CASE WHEN r.output = s.output THEN '' ELSE r.output END",
                             config.max_chars)
    # One pass, sorted by language: each language's slice is then read without scanning the rows table again.
    con.execute(f"""CREATE TEMP TABLE lid_prose AS SELECT j.lang, r.rid, {prose} AS prose FROM rows r
        JOIN judge_rows j USING (rid) LEFT JOIN rows s ON s.is_source AND s.id = r.id ORDER BY j.lang, r.rid""")
    # Languages sharing lingua's candidate set (a family) run one after another, so its models load once and are
    # released when the set changes (but for those the next family shares: English): lingua's memory does not grow
    # with the number of languages.
    counts = sorted(con.execute("SELECT lang, count(*) FROM lid_prose GROUP BY lang").fetchall(),
                    key=lambda found: (sorted(langid.candidates_for(found[0])), found[0]))
    total = sum(n for _, n in counts)
    task = progress.add_task("filter: language ID", total=total, unit="texts")
    rid_parts: list[np.ndarray] = []
    details: list[str] = []
    model_counts: dict[str, int] = {}
    judge_seconds = 0.0
    family: list[str] = []

    def finish(pending: _Started) -> None:
        """The verdicts of a language whose fastText reading was started (lingua runs here meanwhile)."""
        nonlocal family, judge_seconds
        candidates = sorted(langid.candidates_for(pending.lang))
        if candidates != family:
            lid_lingua.release_models(keep={lid_lingua.prefix(c) for c in candidates})
            family = candidates
        judge_started = time.perf_counter()
        verdicts, reasons = pending.judgement.finish()
        judge_seconds += time.perf_counter() - judge_started
        for name, n in pending.judgement.counts.items():
            model_counts[name] = model_counts.get(name, 0) + n
        wrong = np.flatnonzero(verdicts == langid.WRONG)
        rid_parts.append(pending.rids[wrong])
        details.extend(reasons.get(i) or "wrong language" for i in wrong.tolist())
        progress.advance(task, len(verdicts))

    with lid_model.parallel(os.cpu_count() or 1):
        # A pipeline two languages deep: the workers read the next language while this process finishes the one
        # before (lingua, the verdicts) and slices the one after from DuckDB. Verdicts are those of one at a time.
        before: _Started | None = None
        for lang, _ in counts:
            table = language_slice(con, lang)
            judge_started = time.perf_counter()
            judgement = langid.start_judgement(table.column("prose").to_pylist(), table.column("fraction").to_numpy(),
                                               lang, config, {}, measured=True)
            judge_seconds += time.perf_counter() - judge_started
            if before is not None:
                finish(before)
            before = _Started(lang, table.column("rid").to_numpy(), judgement)
        if before is not None:
            finish(before)
        lid_lingua.release_models()
    con.execute("DROP TABLE lid_prose")
    rids = np.concatenate(rid_parts) if rid_parts else np.empty(0, np.int64)
    failures = pa.table({"rid": pa.array(rids, pa.int64()), "detail": pa.array(details, pa.string())})
    return LangIdRun(failures, total, model_counts.get("fasttext", 0) + model_counts.get("lingua", 0),
                     time.perf_counter() - started, judge_seconds, model_counts)
