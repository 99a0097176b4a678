"""Planning the translate stage: segment every field into units (segment.py; in worker processes for
large inputs, cached per source file under `<memory>/segments/` so the next language reuses it), apply
the code and language-bound policies, and split units over the model's input limit."""

from __future__ import annotations

import hashlib
import inspect
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataset_builder.devices import available_cpus
from dataset_builder.segment import Piece, Segmented, fit_to_budget, is_mostly_code, segment
from schemas import language_bound
from schemas.artifacts import write_parquet
from schemas.params import Params
from schemas.records import TEXT_FIELDS
from schemas.spans import inline_spans

STAGE = "translate"


@dataclass
class Planned:
    """One record to translate: its segmented fields (by field name)."""

    index: int
    fields: dict[str, Segmented]


_KIND_CODES = {"unit": "u", "layout": "l", "span": "s"}
_CODE_KINDS = {v: k for k, v in _KIND_CODES.items()}
PARALLEL_MIN_RECORDS = 2000  # below this, starting worker processes costs more than it saves
Encoded = tuple[bool, str, list[tuple[str, list[str]]]]  # (mostly code, first empty field, pieces per field)


def _plan_chunk(rows: list[tuple[str, str, str]], lang: str = "en") -> list[Encoded]:
    """Segment records (a worker-process function: plain tuples in and out, cheap to pickle)."""
    out: list[Encoded] = []
    for values in rows:
        record = dict(zip(TEXT_FIELDS, values, strict=True))
        empty = next((f for f in ("instruction", "output") if not record[f].strip()), "")
        if empty:
            out.append((False, empty, []))
            continue
        fields = [segment(record[f], lang=lang).pieces for f in TEXT_FIELDS]
        out.append((is_mostly_code(record), "",
                    [("".join(_KIND_CODES[p.kind] for p in pieces), [p.text for p in pieces]) for pieces in fields]))
    return out


def _decode(encoded: list[tuple[str, list[str]]]) -> dict[str, Segmented]:
    return {f: Segmented(tuple(Piece(text, _CODE_KINDS[k]) for k, text in zip(kinds, texts, strict=True)))  # type: ignore[arg-type]
            for f, (kinds, texts) in zip(TEXT_FIELDS, encoded, strict=True)}


@cache
def segmenter_digest() -> str:
    """Changes whenever the segmentation code or the span contract does, so cached plans never outlive it."""
    code = b"".join(Path(inspect.getfile(f)).read_bytes() for f in (segment, inline_spans))
    return hashlib.sha256(code).hexdigest()[:16]


@dataclass
class SourcePlan:
    """Language- and model-independent segmentation of every source record."""

    mostly_code: list[bool]
    empty: list[str]  # "" or the first required field that is empty
    fields: list[dict[str, Segmented] | None]


def plan_source(source: Path, rows: list[tuple[str, str, str]], cache_root: Path | None,
                advance: Callable[[int], None] | None = None, lang: str = "en") -> SourcePlan:
    """Segment all records, in worker processes when there are many, and keep the result under
    `cache_root/segments/` keyed by the source file and the segmenter: the next language's run (DVC
    runs them one after another) reads it instead of segmenting again."""
    key = hashlib.sha256(f"{_file_sha256(source)}:{segmenter_digest()}:{lang}".encode()).hexdigest()[:20]
    segment_chunk = partial(_plan_chunk, lang=lang)
    cached = cache_root / "segments" / f"plan-{key}.parquet" if cache_root else None
    encoded: list[Encoded] | None = None
    if cached and cached.exists():
        table = pq.read_table(cached)
        if table.num_rows == len(rows):
            cols = table.to_pydict()
            encoded = [(code, empty, [(cols[f"{f}_kinds"][i], cols[f"{f}_texts"][i]) for f in TEXT_FIELDS]
                        if not empty else []) for i, (code, empty) in enumerate(
                            zip(cols["mostly_code"], cols["empty"], strict=True))]
            if advance:
                advance(len(rows))
    if encoded is None:
        encoded = []
        chunks = [rows[i:i + 500] for i in range(0, len(rows), 500)]
        workers = min(available_cpus(), 16, len(chunks))
        if len(rows) >= PARALLEL_MIN_RECORDS and workers > 1:
            # spawn, not fork: the parent has tokenizer and BLAS thread pools that a fork would copy.
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for chunk, done in zip(chunks, pool.map(segment_chunk, chunks), strict=True):
                    encoded.extend(done)
                    if advance:
                        advance(len(chunk))
        else:
            for chunk in chunks:
                encoded.extend(segment_chunk(chunk))
                if advance:
                    advance(len(chunk))
        if cached:
            table = pa.table({
                "mostly_code": [e[0] for e in encoded], "empty": [e[1] for e in encoded],
                **{f"{f}_kinds": [e[2][j][0] if e[2] else "" for e in encoded] for j, f in enumerate(TEXT_FIELDS)},
                **{f"{f}_texts": pa.array([e[2][j][1] if e[2] else [] for e in encoded], pa.list_(pa.string()))
                   for j, f in enumerate(TEXT_FIELDS)},
            })
            write_parquet(table, cached)
    return SourcePlan([e[0] for e in encoded], [e[1] for e in encoded],
                      [_decode(e[2]) if e[2] else None for e in encoded])


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def apply_policy(plan: SourcePlan, ids: list[str], policy: str, lang: str, language_bound: list[bool] | None = None
                  ) -> tuple[list[Planned], list[int], list[dict[str, str]]]:
    """Records to translate, records kept verbatim (code_policy keep), and rejects. `language_bound`: per
    record, whether its task depends on English form (translate.skip_language_bound)."""
    planned: list[Planned] = []
    verbatim: list[int] = []
    rejects: list[dict[str, str]] = []
    for i, rid in enumerate(ids):
        if plan.empty[i]:
            rejects.append({"id": rid, "lang": lang, "stage": STAGE, "reason": "empty_source",
                            "detail": f"field '{plan.empty[i]}' is empty; an instruction record needs an"
                                      " instruction and an output"})
        elif language_bound and language_bound[i]:
            rejects.append({"id": rid, "lang": lang, "stage": STAGE, "reason": "language_bound",
                            "detail": "the task depends on English form (schemas.language_bound); "
                                      "translate.skip_language_bound=true"})
        elif policy == "skip" and plan.mostly_code[i]:
            rejects.append({"id": rid, "lang": lang, "stage": STAGE, "reason": "code_skipped",
                            "detail": "mostly code; translate.code_policy=skip"})
        elif policy == "keep" and plan.mostly_code[i]:
            verbatim.append(i)
        else:
            planned.append(Planned(i, dict(plan.fields[i] or {})))
    return planned, verbatim, rejects


def language_bound_flags(table: pa.Table, params: Params) -> list[bool] | None:
    """Per record: skip it (translate.skip_language_bound) because quality would reject its task anyway
    (a family in quality.filters.language_bound.reject). One vectorised RE2 match over the instructions.
    Generate mode skips nothing: a response written in the language makes the task whole, so quality only
    flags it (quality/language_bound.py)."""
    families = params.quality.filters.language_bound.reject
    if not params.translate.skip_language_bound or not families or params.responses.mode == "generate":
        return None
    return pc.match_substring_regex(table.column("instruction"), language_bound.pattern(families)).to_pylist()


def fit_units(planned: list[Planned], budget: int, count: Callable[[Sequence[str]], list[int]]) -> int:
    """Split units over the model's input limit. One batched tokenizer call for every distinct unit,
    then only the over-long ones are cut further. Returns how many fields needed it."""
    distinct = sorted({u for p in planned for seg in p.fields.values() for u in seg.units})
    known = dict(zip(distinct, count(distinct), strict=True))
    split = 0
    for p in planned:
        for f, seg in p.fields.items():
            fitted = fit_to_budget(seg, budget, count, known)
            if fitted is not seg:
                split += 1
                p.fields[f] = fitted
    return split
