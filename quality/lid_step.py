"""The filter stage's language-ID step, one language at a time: the prose and its script fraction come out
of DuckDB, `quality.langid.judge` gives the verdicts (fastText batches spread over the cores by
`quality.lid_model.parallel`), and the failures go back as a table (rid, detail)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from quality import langid, lid_model
from schemas.languages import resolve
from schemas.params import LangIdParams


@dataclass
class LangIdRun:
    failures: pa.Table  # (rid, detail)
    rows: int = 0
    texts: int = 0
    seconds: float = 0.0
    judge_seconds: float = 0.0
    model_texts: dict[str, int] = field(default_factory=dict)  # texts each model saw (fasttext, lingua)


def language_ids(con: duckdb.DuckDBPyConnection, lid: LangIdParams, progress: Any) -> LangIdRun:
    """Language ID of the rows of table judge_rows (rid, lang): prose + script fraction in SQL, then
    quality.langid.judge (the script decides where it can; fastText, in parallel, and lingua where it cannot),
    one language at a time."""
    config = langid.JudgeConfig.of(lid)
    started = time.perf_counter()
    langs = [r[0] for r in con.execute("SELECT lang, count(*) FROM judge_rows GROUP BY lang ORDER BY lang")
             .fetchall()]
    total = con.execute("SELECT count(*) FROM judge_rows").fetchall()[0][0]
    task = progress.add_task("filter: language ID", total=total, unit="texts")
    rids: list[int] = []
    details: list[str] = []
    model_counts: dict[str, int] = {}
    judge_seconds = 0.0
    # An output copied verbatim from the source (code, or the answer to "translate into French") is no evidence of
    # the wrong language: only the instruction is judged then (a copied English prose output is english_left's).
    prose = langid.prose_sql("r.instruction || chr(10) || CASE WHEN r.output = s.output THEN '' ELSE r.output END",
                             config.max_chars)
    with lid_model.parallel(os.cpu_count() or 1):
        for lang in langs:
            script = resolve(lang).script
            table = con.sql(
                f"SELECT rid, prose, {langid.script_fraction_sql('prose', script)} AS fraction FROM ("
                f"SELECT r.rid, {prose} AS prose FROM rows r JOIN judge_rows j USING (rid) "
                f"LEFT JOIN rows s ON s.is_source AND s.id = r.id WHERE j.lang = $1)",
                params=[lang]).to_arrow_table()
            texts = table.column("prose").to_pylist()
            judge_started = time.perf_counter()
            verdicts, reasons = langid.judge(texts, table.column("fraction").to_pylist(), lang, config, model_counts)
            judge_seconds += time.perf_counter() - judge_started
            row_ids = table.column("rid").to_pylist()
            for rid, verdict, reason in zip(row_ids, verdicts, reasons, strict=True):
                if verdict is False:
                    rids.append(rid)
                    details.append(reason or "wrong language")
            progress.advance(task, table.num_rows)
    failures = pa.table({"rid": pa.array(rids, pa.int64()), "detail": pa.array(details, pa.string())})
    return LangIdRun(failures, total, model_counts.get("fasttext", 0) + model_counts.get("lingua", 0),
                      time.perf_counter() - started, judge_seconds, model_counts)
