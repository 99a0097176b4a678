"""The round-trip audit and the optional `round_trip` filter: back-translations scored against the source.

The round_trip stage (dataset_builder/round_trip.py) writes, per language, the records' original text
and its translation translated back with the same model. Here sacrebleu scores them: chrF++ (chrF with
word bigrams, sacrebleu's CHRF(word_order=2)) and BLEU, per language over the sample (corpus scores,
reported in metrics/quality.json and on the dataset card next to Bactrian-X's published audit), and per
record (sentence chrF++) for the filter, which rejects a record below its language's threshold.
With a smoke model the back-translations are random text: the figures test the mechanics only, and
every figure carries `smoke: true` and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quality.filters import Check
from schemas.errors import PolyinstructError
from schemas.languages import UnknownLanguageError, resolve
from schemas.params import QualityParams

# Bactrian-X (Li et al. 2023) audited its translations by round trip: chrF++ 68.1 on average.
BACTRIAN_X_CHRF_PP = 68.1
ROUND_TRIP_COLUMNS = ("id", "lang", "source_text", "back_text", "smoke")
SMOKE_NOTE = "smoke model (random weights): these figures test the mechanics only, not translation quality"


def score(sources: list[str], backs: list[str], per_record: bool) -> dict[str, Any]:
    """Corpus chrF++ and BLEU of back-translations against their sources, and per-record chrF++."""
    from sacrebleu.metrics import BLEU, CHRF

    chrf = CHRF(word_order=2)
    result: dict[str, Any] = {
        "chrf_pp": round(chrf.corpus_score(backs, [sources]).score, 2) if backs else None,
        "bleu": round(BLEU().corpus_score(backs, [sources]).score, 2) if backs else None,
    }
    if per_record:
        result["sentence_chrf_pp"] = [chrf.sentence_score(b, [s]).score for s, b in zip(sources, backs, strict=True)]
    return result


def _read(directory: Path) -> pa.Table | None:
    parts = []
    for path in sorted(directory.glob("*.parquet")) if directory.is_dir() else []:
        try:
            resolve(path.stem)
        except UnknownLanguageError:
            continue  # not a round-trip file
        part = pq.read_table(path)
        missing = [c for c in ROUND_TRIP_COLUMNS if c not in part.column_names]
        if missing:
            raise PolyinstructError(f"{path}: not a round-trip file (no column {', '.join(missing)}); rerun the "
                                    "round_trip stage or remove it from quality.round_trip.dir")
        parts.append(part.select(list(ROUND_TRIP_COLUMNS)))
    return pa.concat_tables(parts, promote_options="permissive") if parts else None


def checks(con: duckdb.DuckDBPyConnection, quality: QualityParams, skipped: dict[str, str]
           ) -> tuple[dict[str, Any], list[Check]]:
    """The audit for metrics (empty when there are no round-trip files), and the filter's check when on."""
    settings = quality.filters.round_trip
    directory = Path(quality.round_trip.dir)
    table = _read(directory)
    if table is not None:  # only back-translations of rows in this run count (a stale file's ids do not)
        con.register("rt_all", table)
        table = con.sql("SELECT f.* FROM rt_all f SEMI JOIN rows r ON r.lang = f.lang AND r.id = f.id "
                        "AND NOT r.is_source ORDER BY f.lang, f.id").to_arrow_table()
        con.unregister("rt_all")
    if table is None or not table.num_rows:
        if settings.enabled:
            raise PolyinstructError(f"quality.filters.round_trip is on but {directory} holds no back-translation of "
                                    "these rows; run the round_trip stage first (polyinstruct round-trip --lang ...)")
        return {}, []
    audit: dict[str, Any] = {"reference": {"bactrian_x_chrf_pp_mean": BACTRIAN_X_CHRF_PP,
                                           "what": "Bactrian-X's published round-trip audit (chrF++ mean)"},
                             "languages": {}}
    scored_ids: list[str] = []
    scored_langs: list[str] = []
    scored_chrf: list[float] = []
    for lang in sorted(set(table.column("lang").to_pylist())):
        part = table.filter(pc.equal(table.column("lang"), lang))
        sources, backs = part.column("source_text").to_pylist(), part.column("back_text").to_pylist()
        figures = score(sources, backs, per_record=settings.enabled)
        smoke = bool(pc.any(part.column("smoke")).as_py())
        audit["languages"][resolve(lang).flores] = {
            "records": part.num_rows, "chrf_pp": figures["chrf_pp"], "bleu": figures["bleu"], "smoke": smoke,
            **({"note": SMOKE_NOTE} if smoke else {})}
        if settings.enabled:
            scored_ids += part.column("id").to_pylist()
            scored_langs += [resolve(lang).flores] * part.num_rows
            scored_chrf += figures["sentence_chrf_pp"]
    if not settings.enabled:
        return audit, []
    con.register("rt_found", pa.table({"lang": scored_langs, "id": scored_ids, "chrf": scored_chrf}))
    bounds = " ".join(f"WHEN '{lang}' THEN {value}" for lang, value in settings.thresholds.items())
    bound = f"CASE f.lang {bounds} ELSE {settings.min_chrf} END" if bounds else f"{settings.min_chrf}"
    con.execute(f"CREATE OR REPLACE TABLE rt_low AS SELECT r.rid, f.chrf, {bound} AS bound FROM rows r "
                f"JOIN rt_found f ON f.lang = r.lang AND f.id = r.id WHERE NOT r.is_source AND f.chrf < {bound}")
    missing = con.execute("SELECT count(*) FROM rows r ANTI JOIN rt_found f ON f.lang = r.lang AND f.id = r.id "
                          "WHERE NOT r.is_source").fetchall()[0][0]
    con.unregister("rt_found")
    if missing:
        skipped["round_trip"] = f"{missing} translated rows have no back-translation in {directory}: not judged"
    if any(lang.get("smoke") for lang in audit["languages"].values()):
        skipped["round_trip"] = "; ".join(filter(None, [skipped.get("round_trip"), SMOKE_NOTE]))
    return audit, [Check("round_trip", "rid IN (SELECT rid FROM rt_low)",
                         "(SELECT printf('round-trip chrF++ %.1f below %.1f', l.chrf, l.bound) "
                         "FROM rt_low l WHERE l.rid = cmp.rid)")]
