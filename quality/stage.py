"""The `filter` stage: source + translated Parquet -> filtered Parquet per language, one rejects table,
metrics/quality.json and two plot CSVs.

DuckDB does the heavy work (normalisation, hashing, checks, joins, aggregates, dedup windows); Python
only feeds lingua (language ID) and rensa (MinHash) in bulk, and checks protected spans (quality.spans_check)
when the translated data lacks the translate stage's flag. Order of work, and so of reject reasons:
SQL checks (quality.filters.REASONS) -> exact dedup -> near dedup -> language ID (fastText, lingua for
confusable pairs; quality.langid) -> parallel alignment.
Every row leaves either into data/filtered or into the rejects table; conservation is asserted.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from quality import (
    confidence,
    dedup,
    filters,
    langid,
    language_bound,
    llm_failures,
    response_checks,
    round_trip,
    spans_check,
)
from schemas.artifacts import (
    claim_output_folder,
    parquet_files,
    parquet_rows,
    read_table,
    record_output_folder,
    write_csv_rows,
    write_json,
    write_parquet,
)
from schemas.errors import PolyinstructError
from schemas.languages import UnknownLanguageError, resolve
from schemas.ledger import check_conservation, refuse_empty_output, write_rejects
from schemas.models import SMOKE_MODEL_PREFIX
from schemas.params import Params
from schemas.progress import progress_bar
from schemas.records import (
    PARALLEL_REQUIRED_COLUMNS,
    REJECT_SCHEMA,
    SOURCE_SCHEMA,
    TEXT_FIELDS,
    TRANSLATED_SCHEMA,
    check_column_types,
)
from schemas.timings import write_timing

STAGE = "filter"
# Extra columns of our translate stage, with their Arrow types; absent ones are NULL and get defaults.
EXTRA_COLUMNS: dict[str, pa.DataType] = {
    "model": pa.string(), "smoke": pa.bool_(), "truncated_fields": pa.list_(pa.string()),
    "protected_spans_ok": pa.bool_(), "kept_verbatim": pa.bool_(), "output_model": pa.string(),
    "log_prob": pa.float64(),
}
PLOT_ROWS = 3000  # at most this many points in length_ratio.csv, spread evenly over languages


@dataclass
class FilterResult:
    counts_in: dict[str, int]
    kept: dict[str, int]
    rejected_by_reason: dict[str, dict[str, int]]
    skipped_checks: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)
    langid_rows: int = 0  # rows judged (script check, and lingua where needed)
    langid_texts: int = 0  # of which texts that reached a statistical model (fastText and/or lingua)
    langid_seconds: float = 0.0  # the whole step: SQL prose extraction + script check + lingua
    lingua_seconds: float = 0.0  # inside quality.langid.judge only (fastText and lingua)
    langid_model_texts: dict[str, int] = field(default_factory=dict)  # texts each model saw

    @property
    def rejected(self) -> dict[str, int]:
        return {lang: sum(reasons.values()) for lang, reasons in self.rejected_by_reason.items()}


@contextmanager
def _connection() -> Iterator[duckdb.DuckDBPyConnection]:
    with tempfile.TemporaryDirectory(prefix="polyinstruct-filter-") as spill:
        con = duckdb.connect(config={"threads": os.cpu_count() or 1, "preserve_insertion_order": False,
                                     "temp_directory": spill})
        try:
            yield con
        finally:
            con.close()


def _canonical_lang(column: pa.ChunkedArray, path: Path) -> pa.Array:
    """The lang column as FLORES-200 codes; unknown codes are a one-line error naming the file."""
    encoded = column.combine_chunks().dictionary_encode()
    codes = encoded.dictionary.to_pylist()
    canonical = []
    for code in codes:
        if code is None:
            raise PolyinstructError(f"{path}: column lang has empty values; every row needs a language code")
        try:
            canonical.append(resolve(code).flores)
        except UnknownLanguageError as err:
            raise PolyinstructError(f"{path}: lang {err}") from None
    return pa.DictionaryArray.from_arrays(encoded.indices, pa.array(canonical, pa.string())).cast(pa.string())


def _text_column(table: pa.Table, name: str, path: Path) -> pa.Array:
    column = table.column(name)
    try:
        column = column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise PolyinstructError(f"{path}: column {name} must hold text, not {column.type}") from None
    return pc.fill_null(column.combine_chunks(), "") if name != "id" else column.combine_chunks()


def _standard_table(table: pa.Table, path: Path, lang: pa.Array, is_source: bool) -> pa.Table:
    ids = _text_column(table, "id", path)
    if ids.null_count:
        raise PolyinstructError(f"{path}: column id has {ids.null_count} empty value(s); every row needs an id")
    columns: dict[str, pa.Array] = {"lang": lang, "id": ids}
    for name in TEXT_FIELDS:
        columns[name] = _text_column(table, name, path)
    for name, dtype in EXTRA_COLUMNS.items():
        if name in table.column_names and not is_source:
            try:
                columns[name] = table.column(name).cast(dtype).combine_chunks()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise PolyinstructError(f"{path}: column {name} must be {dtype}, not "
                                        f"{table.column(name).type}") from None
        else:
            columns[name] = pa.nulls(table.num_rows, dtype)
    columns["is_source"] = pa.array([is_source] * table.num_rows, pa.bool_())
    columns["file"] = pa.array([str(path)] * table.num_rows, pa.string()).dictionary_encode()
    return pa.table(columns)


def load_inputs(source: Path, translated: Path, source_lang: str) -> tuple[pa.Table, dict[str, list[str]]]:
    """All rows, source first, in one Arrow table, and which extra columns each file lacked."""
    missing_extras: dict[str, list[str]] = {name: [] for name in EXTRA_COLUMNS}
    src = read_table(source, required=("id", *TEXT_FIELDS))
    check_column_types(src.schema, SOURCE_SCHEMA, source)
    parts = [_standard_table(src, source, pa.array([source_lang] * src.num_rows, pa.string()), True)]
    for path in parquet_files(translated):
        table = read_table(path, required=PARALLEL_REQUIRED_COLUMNS)
        check_column_types(table.schema, TRANSLATED_SCHEMA, path)
        lang = _canonical_lang(table.column("lang"), path)
        if table.num_rows and pc.any(pc.equal(lang, source_lang)).as_py():
            raise PolyinstructError(f"{path}: holds rows in the source language {source_lang}; the source rows "
                                    f"come from --source, remove them from --translated")
        for name in EXTRA_COLUMNS:
            if name not in table.column_names:
                missing_extras[name].append(path.name)
        parts.append(_standard_table(table, path, lang, False))
    return pa.concat_tables(parts, promote_options="permissive"), missing_extras


def _check_unique_ids(con: duckdb.DuckDBPyConnection) -> None:
    dup = con.execute("SELECT lang, id, count(*) AS n, min(file) FROM rows GROUP BY lang, id HAVING n > 1 "
                      "ORDER BY lang, id LIMIT 1").fetchall()
    if dup:
        lang, ident, n, path = dup[0]
        raise PolyinstructError(f"{path}: id '{ident}' appears {n} times for {lang}; ids must be unique within a "
                                f"language (drop the repeated rows or give them distinct ids)")


@dataclass
class _LangIdRun:
    failures: pa.Table  # (rid, detail)
    rows: int = 0
    texts: int = 0
    seconds: float = 0.0
    judge_seconds: float = 0.0
    model_texts: dict[str, int] = field(default_factory=dict)  # texts each model saw (fasttext, lingua)


def _language_ids(con: duckdb.DuckDBPyConnection, params: Params, progress: Any) -> _LangIdRun:
    """Language ID of the surviving translated rows: prose + script fraction in SQL, lingua in Python,
    one language (one candidate set) at a time."""
    lid = params.quality.filters.lang_id
    config = langid.JudgeConfig(min_chars=lid.min_chars, min_confidence=lid.min_confidence,
                                min_script_fraction=lid.min_script_fraction, max_chars=lid.max_chars,
                                low_accuracy_min_chars=lid.low_accuracy_min_chars, identifier=lid.identifier,
                                thresholds=dict(lid.thresholds))
    started = time.perf_counter()
    langs = [r[0] for r in con.execute("SELECT lang, count(*) FROM judge_rows GROUP BY lang ORDER BY lang")
             .fetchall()]
    total = con.execute("SELECT count(*) FROM judge_rows").fetchall()[0][0]
    task = progress.add_task("filter: language ID", total=total, unit="texts")
    rids: list[int] = []
    details: list[str] = []
    model_counts: dict[str, int] = {}
    judge_seconds = 0.0
    prose = langid.prose_sql("r.instruction || chr(10) || r.output", config.max_chars)
    for lang in langs:
        script = resolve(lang).script
        table = con.sql(
            f"SELECT rid, prose, {langid.script_fraction_sql('prose', script)} AS fraction FROM ("
            f"SELECT r.rid, {prose} AS prose FROM rows r JOIN judge_rows j USING (rid) WHERE j.lang = $1)",
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
    return _LangIdRun(failures, total, model_counts.get("fasttext", 0) + model_counts.get("lingua", 0),
                      time.perf_counter() - started, judge_seconds, model_counts)


def _parallel_alignment(con: duckdb.DuckDBPyConnection) -> None:
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


def _metrics(con: duckdb.DuckDBPyConnection, params: Params, reasons: list[str], skipped: dict[str, str]) \
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


def _plots(con: duckdb.DuckDBPyConnection, metrics: dict[str, Any], plots: Path) -> None:
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


def _note_smoke_rows(con: duckdb.DuckDBPyConnection, enabled: bool, skipped: dict[str, str]) -> None:
    """Rows a smoke model wrote (random tokens in no language) skip language ID; say how many, and why."""
    if not enabled:
        return
    n = con.execute(f"SELECT count(*) FROM rows WHERE NOT is_source AND starts_with(coalesce(model, ''), "
                    f"'{SMOKE_MODEL_PREFIX}')").fetchall()[0][0]
    if n:
        skipped["lang_id"] = (f"{n} rows from a smoke model (model starts with '{SMOKE_MODEL_PREFIX}') skip "
                              "language ID: a random-weight model writes no language")


def run_filter(source: Path, translated: Path, out_dir: Path, rejects: Path, metrics_path: Path | None,
               plots: Path | None, params: Params) -> FilterResult:
    """Run the whole stage; see the module docstring."""
    quality = params.quality
    fparams = quality.filters
    source_lang = params.languages.source
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 3)
        clock = now

    claim_output_folder(out_dir, STAGE, inputs=(source, translated))
    table, missing_extras = load_inputs(Path(source), Path(translated), source_lang)
    skipped: dict[str, str] = {}
    with _connection() as con, progress_bar() as progress:
        con.register("input_rows", table)
        con.execute("CREATE TABLE rows AS SELECT row_number() OVER (ORDER BY lang, id) AS rid, * "
                    "FROM input_rows ORDER BY lang, id")
        con.unregister("input_rows")
        del table
        _check_unique_ids(con)
        lap("load")

        task = progress.add_task("filter: SQL checks", total=None, unit="steps")
        filters.install_macros(con, quality)
        con.execute(f"CREATE TABLE feat AS {filters.FEATURES_SQL}")
        has_truncated = len(missing_extras["truncated_fields"]) < len(parquet_files(translated))
        if missing_extras["truncated_fields"] and fparams.truncated.enabled:
            where = "checked in the other files" if has_truncated else "check skipped"
            skipped["truncated"] = (f"column truncated_fields absent in "
                                    f"{', '.join(missing_extras['truncated_fields'])}: {where}")
        spans_check.create_span_table(con, fparams.placeholder, skipped)
        compare = filters.COMPARE_SQL.format(min_source_chars=fparams.length_ratio.min_source_chars,
                                             buckets=fparams.length_ratio.buckets)
        con.execute(f"CREATE TABLE cmp AS SELECT c.*, s.span_reason, s.span_detail "
                    f"FROM ({compare}) c LEFT JOIN spans s USING (rid)")
        max_sim = fparams.untranslated.max_similarity if fparams.untranslated.enabled else 2
        con.execute(f"""CREATE TABLE lr AS SELECT lang, median(log_length_ratio) AS med,
            mad(log_length_ratio) AS mad, count(log_length_ratio) AS n FROM cmp
            WHERE log_length_ratio IS NOT NULL AND NOT empty_instruction AND NOT empty_output
              AND coalesce(source_similarity, 0) < {max_sim}
            GROUP BY lang""")
        con.execute(f"""CREATE TABLE lrb AS SELECT lang, length_bucket, median(log_length_ratio) AS med,
            mad(log_length_ratio) AS mad FROM cmp
            WHERE log_length_ratio IS NOT NULL AND NOT empty_instruction AND NOT empty_output
              AND coalesce(source_similarity, 0) < {max_sim}
            GROUP BY lang, length_bucket HAVING count(*) >= {fparams.length_ratio.min_rows}""")
        if fparams.length_ratio.enabled:
            few = [r[0] for r in con.execute(
                f"SELECT DISTINCT c.lang FROM cmp c LEFT JOIN lr USING (lang) WHERE NOT c.is_source "
                f"AND coalesce(lr.n, 0) < {fparams.length_ratio.min_rows} ORDER BY 1").fetchall()]
            if few:
                skipped["length_ratio"] = (f"fewer than {fparams.length_ratio.min_rows} rows with a source of >= "
                                           f"{fparams.length_ratio.min_source_chars} chars in: {', '.join(few)}")
        language_bound.create_table(con, fparams.language_bound)
        llm_failures.create_table(con, fparams.llm_failures)
        checks = filters.sql_checks(fparams, has_truncated)
        con.execute(f"CREATE TABLE response_flags AS {response_checks.flags_sql('rows', fparams)}")
        if con.execute("SELECT count(*) FROM response_flags").fetchall()[0][0]:  # generated outputs present
            checks += response_checks.checks(fparams)
        checks += confidence.checks(con, fparams.low_confidence, skipped)
        round_trip_audit, round_trip_checks = round_trip.checks(con, quality, skipped)
        checks += round_trip_checks
        con.execute(f"CREATE TABLE verdict AS {filters.verdict_sql(checks)}")
        progress.update(task, total=1, completed=1)
        lap("sql_checks")

        # Dedup among the rows that passed every SQL check: the kept copy is always a clean row.
        con.execute("CREATE TABLE surv AS SELECT c.rid, c.lang, c.id, c.dedup_key, f.token_hashes "
                    "FROM cmp c JOIN verdict v USING (rid) JOIN feat f USING (rid) WHERE v.reason IS NULL")
        con.execute("DROP TABLE feat")
        con.execute("CREATE TABLE dup (rid BIGINT, kept_id VARCHAR)")
        if quality.dedup.exact:
            con.execute(f"INSERT INTO dup {dedup.exact_duplicates_sql('surv')}")
        lap("exact_dedup")
        con.execute("CREATE TABLE surv2 AS SELECT * FROM surv ANTI JOIN dup USING (rid) ORDER BY lang, id")
        con.execute("DROP TABLE surv")
        near_table = dedup.NearDuplicates.none()
        if quality.dedup.near:
            langs_total = con.execute("SELECT count(DISTINCT lang) FROM surv2").fetchall()[0][0]
            near_task = progress.add_task("filter: near dedup", total=langs_total, unit="langs")
            near_table = dedup.near_duplicates(
                con, "surv2", quality.dedup.near_threshold, quality.dedup.num_perm, quality.dedup.shingle,
                on_language=lambda _lang, _n: progress.advance(near_task, 1))
        con.register("near_found", near_table.table())
        con.execute("CREATE TABLE near AS SELECT * FROM near_found")
        con.unregister("near_found")
        lap("near_dedup")

        con.execute(f"""CREATE TABLE judge_rows AS SELECT s.rid, s.lang FROM surv2 s
            JOIN cmp c USING (rid) JOIN rows r USING (rid) ANTI JOIN near n ON n.rid = s.rid
            WHERE NOT c.is_source AND NOT coalesce(c.kept_verbatim, false) AND {fparams.lang_id.enabled}
              AND NOT starts_with(coalesce(r.model, ''), '{SMOKE_MODEL_PREFIX}')""")
        _note_smoke_rows(con, fparams.lang_id.enabled, skipped)
        lid_run = _language_ids(con, params, progress)
        con.register("lid_found", lid_run.failures)
        con.execute("CREATE TABLE lid AS SELECT * FROM lid_found")
        con.unregister("lid_found")
        lap("lang_id")

        con.execute("""
CREATE TABLE decision AS
SELECT v.rid, v.lang, v.id,
  CASE WHEN v.reason IS NOT NULL THEN v.reason WHEN d.rid IS NOT NULL THEN 'duplicate'
       WHEN n.rid IS NOT NULL THEN 'near_duplicate' WHEN l.rid IS NOT NULL THEN 'lang_id' END AS reason,
  CASE WHEN v.reason IS NOT NULL THEN v.detail WHEN d.rid IS NOT NULL THEN 'duplicate of ' || d.kept_id
       WHEN n.rid IS NOT NULL THEN printf('near duplicate of %s (estimated Jaccard %.2f)', n.kept_id, n.similarity)
       WHEN l.rid IS NOT NULL THEN l.detail END AS detail
FROM verdict v LEFT JOIN dup d USING (rid) LEFT JOIN near n USING (rid) LEFT JOIN lid l USING (rid)
""")
        if quality.alignment == "parallel":
            _parallel_alignment(con)

        reasons = [c.name for c in checks]
        reasons += [r for r, on in (("duplicate", quality.dedup.exact), ("near_duplicate", quality.dedup.near),
                                    ("lang_id", fparams.lang_id.enabled),
                                    ("parallel_alignment", quality.alignment == "parallel")) if on]
        for name, switch in (("empty", fparams.empty), ("bad_chars", fparams.bad_chars),
                             ("truncated", fparams.truncated), ("placeholder", fparams.placeholder),
                             ("repetition", fparams.repetition), ("untranslated", fparams.untranslated),
                             ("length_ratio", fparams.length_ratio), ("lang_id", fparams.lang_id),
                             ("low_confidence", fparams.low_confidence), ("round_trip", fparams.round_trip),
                             ("refusal", fparams.refusal), ("assistant_chatter", fparams.assistant_chatter)):
            if not switch.enabled:
                skipped[name] = f"disabled in params (quality.filters.{name}.enabled: false)"
        metrics, counts_in, by_reason = _metrics(con, params, reasons, skipped)
        if fparams.language_bound.enabled and fparams.language_bound.flag:
            metrics["language_bound_flagged"] = language_bound.flagged_counts(con)
        if round_trip_audit:
            metrics["round_trip"] = round_trip_audit

        # Outputs: the rejects table first (it explains an empty result), then one file per language.
        rejected_table = con.sql(f"SELECT id, lang, '{STAGE}' AS stage, reason, detail FROM decision "
                                     "WHERE reason IS NOT NULL").to_arrow_table()
        write_rejects(rejected_table.cast(REJECT_SCHEMA), rejects)
        translated = [lang for lang in counts_in if lang != source_lang]
        refuse_empty_output(STAGE, sum(counts_in[lang] for lang in translated),
                            sum(metrics["languages"][lang]["kept"] for lang in translated),
                            {r: sum(by_reason[lang].get(r, 0) for lang in translated) for r in reasons}, rejects)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        kept: dict[str, int] = {}
        for lang in sorted(counts_in):
            kept_table = con.sql("""
SELECT r.id, r.lang, r.instruction, r.input, r.output,
  coalesce(r.model, CASE WHEN r.is_source THEN 'source' ELSE 'unknown' END) AS model,
  coalesce(r.smoke, false) AS smoke, coalesce(r.truncated_fields, []::VARCHAR[]) AS truncated_fields,
  coalesce(r.protected_spans_ok, true) AS protected_spans_ok, coalesce(r.kept_verbatim, false) AS kept_verbatim,
  r.log_prob
FROM rows r JOIN decision d USING (rid) WHERE d.reason IS NULL AND r.lang = $1 ORDER BY r.id""",
                                 params=[lang]).to_arrow_table()
            write_parquet(kept_table, out_dir / f"{lang}.parquet", TRANSLATED_SCHEMA)
            kept[lang] = parquet_rows(out_dir / f"{lang}.parquet")  # counted on the written side
            metrics["languages"][lang]["kept"] = kept[lang]
        record_output_folder(out_dir, STAGE, (f"{lang}.parquet" for lang in counts_in))
        rejected_counts = {lang: n for lang, n in con.execute(
            "SELECT lang, count(*) FROM read_parquet($1) GROUP BY lang", [str(rejects)]).fetchall()}
        check_conservation(STAGE, counts_in, kept, rejected_counts)
        if metrics_path is not None:
            write_json(metrics, metrics_path)
        if plots is not None:
            _plots(con, metrics, Path(plots))
        lap("write")
    if metrics_path is not None:
        write_timing({"seconds": seconds, "langid_rows": lid_run.rows, "langid_texts": lid_run.texts,
                      "langid_seconds": round(lid_run.seconds, 3), "lingua_seconds": round(lid_run.judge_seconds, 3)},
                     metrics_path)
    return FilterResult(counts_in=counts_in, kept=kept, rejected_by_reason=by_reason, skipped_checks=skipped,
                        seconds=seconds, langid_rows=lid_run.rows, langid_texts=lid_run.texts,
                        langid_seconds=round(lid_run.seconds, 3), lingua_seconds=round(lid_run.judge_seconds, 3),
                        langid_model_texts=lid_run.model_texts)
