"""The translate stage: source records -> records in one target language, with NLLB on CTranslate2.

The flow has three separable parts; the middle one runs on a shard backend (dataset_builder.backends:
`local` in this process, `ray` on a cluster), chosen by `translate.backend`:

1. plan: segment every field into units (segment.py; in worker processes for large inputs, and
   cached per source file under `<memory>/segments/`, so the next language reuses it), split units
   over the model's input limit, look the distinct units up in the translation memory, list what
   is still pending;
2. translate: `UnitTranslator` -- a callable from a list of unit texts to `UnitResult`s,
   `CTranslate2Engine`, built where the work runs by `TranslatorFactory`; pending units go to it in
   shards of `translate.shard_units`, and every finished shard is written to the memory at once
   (atomic Parquet file);
3. assemble: put translations back into the fields, flag truncation and span loss, write rows.

The translation memory is a directory of immutable Parquet shards per key (model fingerprint,
source and target language, decoding settings). A unit is translated once per target language,
however many records hold it and however often the stage reruns; a filter threshold or a new
language re-translates nothing already done. A run killed with SIGKILL loses at most the shard in
flight, and the rerun translates only what no finished shard holds.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import multiprocessing
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataset_builder.backends import LocalBackend, get_backend, run_pending
from dataset_builder.devices import cpu_threads, length_batches
from dataset_builder.memory import ShardMemory, pending_order
from dataset_builder.memory_format import ensure_current, stamp
from dataset_builder.models.nllb import load_tokenizer, model_fingerprint
from dataset_builder.segment import (
    Piece,
    Segmented,
    fit_to_budget,
    is_mostly_code,
    normalise_unit,
    reassemble,
    segment,
    spans_preserved,
)
from dataset_builder.shard_work import DriverEngineCache, Prebuilt, RayOptions, ShardBackend
from schemas import language_bound
from schemas.artifacts import parquet_rows, read_table, write_json, write_parquet
from schemas.errors import PolyinstructError
from schemas.languages import nllb_codes, resolve
from schemas.ledger import check_conservation, refuse_empty_output, rejects_table, write_rejects
from schemas.params import Params, TranslateParams
from schemas.progress import progress_bar
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS, TRANSLATED_SCHEMA
from schemas.spans import inline_spans
from schemas.timings import split_timing, write_timing

STAGE = "translate"
# Metrics of how this run went rather than of the data: they move to the timing file (schemas/timings.py).
# What the memory served, and so what the engine did, depends on earlier runs, not on the data.
RUN_KEYS: tuple[str, ...] = (
    "backend", "device", "units_translated", "cache_hits", "cache_hit_rate", "source_tokens", "target_tokens",
    "translate_seconds", "units_per_second", "target_tokens_per_second", "engine_batches", "memory",
    "memory_shards", "seconds",
    # The fixed costs, per language (issue 14): 0 where a multi-language run (translate_many) reused them.
    "model_load_seconds", "tokenizer_load_seconds", "plan_seconds", "fit_seconds", "engine_seconds",
    "setup_seconds")
MEMORY_COLUMNS = pa.schema([
    pa.field("unit", pa.string(), nullable=False),
    pa.field("translation", pa.string(), nullable=False),
    pa.field("source_tokens", pa.int32(), nullable=False),
    pa.field("target_tokens", pa.int32(), nullable=False),
    pa.field("truncated", pa.bool_(), nullable=False),
    pa.field("score", pa.float32(), nullable=True),  # memory format 2 (dataset_builder.memory_format)
])


@dataclass(frozen=True)
class UnitResult:
    translation: str
    source_tokens: int
    target_tokens: int
    truncated: bool  # the output reached this unit's own max decoding length
    score: float | None = None  # CTranslate2's score (log-probability per token); None: unknown


class UnitTranslator(Protocol):
    """Anything that translates a list of unit texts (already normalised) in order."""

    def __call__(self, units: Sequence[str]) -> list[UnitResult]: ...


# --- engine ----------------------------------------------------------------------------------------


@dataclass
class EngineStats:
    batches: int = 0
    units: int = 0
    source_tokens: int = 0
    target_tokens: int = 0
    seconds: float = 0.0
    engine_seconds: float = 0.0  # inside CTranslate2 (translate_batch and waiting on its results)
    model_load_seconds: float = 0.0
    tokenizer_load_seconds: float = 0.0


@dataclass
class LoadedOnce:
    """What a process translating several languages loads once and hands to each language's run
    (dataset_builder.translate_many): the tokenizer, the CTranslate2 Translator, the source plans and
    the token ids of source units. All are language-independent: the source language is fixed."""

    model_dir: Path
    tokenizer: Any = None
    translator: Any = None
    translator_key: tuple[str, str, int] | None = None  # (device, compute type, threads) it was loaded with
    model_loads: int = 0
    tokenizer_loads: int = 0
    plans: dict[tuple[str, str], SourcePlan] = field(default_factory=dict)  # (source file, lang) -> plan
    token_ids: dict[str, array[int]] = field(default_factory=dict)  # unit -> its model token ids, compact


class CTranslate2Engine:
    """NLLB on CTranslate2: greedy or beam search, token-budget batches of similar length, the
    target language forced with `target_prefix`, a decoding limit that scales with each input."""

    def __init__(self, model_dir: Path, src_lang: str, tgt_lang: str, settings: TranslateParams,
                 device: str, compute_type: str, intra_threads: int | None = None,
                 loaded: LoadedOnce | None = None) -> None:
        self.model_dir = Path(model_dir)
        if loaded is not None and loaded.model_dir != self.model_dir:
            raise PolyinstructError(f"{model_dir}: a multi-language run loaded {loaded.model_dir}; one model per run")
        self.loaded = loaded
        self.stats = EngineStats()
        self.settings = settings
        self.device = device
        self.compute_type = compute_type
        self.tgt_lang = tgt_lang
        # CPU threads of the one replica: every core by default; a worker of a pool passes its share.
        self.intra_threads = intra_threads or cpu_threads()
        if loaded is not None and loaded.tokenizer is not None:
            self.tokenizer = loaded.tokenizer
        else:
            started = time.perf_counter()
            self.tokenizer = load_tokenizer(self.model_dir, src_lang)
            self.stats.tokenizer_load_seconds = time.perf_counter() - started
            if loaded is not None:
                loaded.tokenizer, loaded.tokenizer_loads = self.tokenizer, loaded.tokenizer_loads + 1
        for code in (src_lang, tgt_lang):
            if self.tokenizer.convert_tokens_to_ids(code) == self.tokenizer.unk_token_id:
                raise PolyinstructError(f"{self.model_dir}: the model's tokenizer has no token for {code}; it is"
                                        " not an NLLB-200 model, or that language is not one it translates")
        self.special_tokens = len(self.tokenizer("")["input_ids"])  # e.g. [eng_Latn, </s>]
        self._translator: Any = None
        self.on_batch: Callable[[int, int], None] | None = None  # (units, target tokens) per finished batch

    @property
    def translator(self) -> Any:
        """Loaded on first use: a fully cached rerun never loads the model."""
        key = (self.device, self.compute_type, self.intra_threads)
        if self._translator is None and self.loaded is not None and self.loaded.translator_key == key:
            self._translator = self.loaded.translator
        if self._translator is None:
            import ctranslate2

            started = time.perf_counter()
            self._translator = ctranslate2.Translator(
                str(self.model_dir), device=self.device, device_index=list(self.settings.device_index),
                compute_type=self.compute_type,
                # CPU: one replica using every core. GPU: one replica per listed device (CTranslate2
                # makes inter_threads workers per device); asynchronous batches keep them all busy.
                inter_threads=1, intra_threads=self.intra_threads if self.device == "cpu" else 1,
            )
            self.stats.model_load_seconds += time.perf_counter() - started
            if self.loaded is not None:
                self.loaded.translator, self.loaded.translator_key = self._translator, key
                self.loaded.model_loads += 1
        return self._translator

    def load(self) -> None:
        """Load the model now (a Ray actor: a model that cannot load fails at startup, not mid-run)."""
        _ = self.translator

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens of each text, special tokens excluded (one batched tokenizer call)."""
        if not texts:
            return []
        return [len(ids) - self.special_tokens for ids in self.source_ids(texts)]

    def source_ids(self, texts: Sequence[str]) -> list[Sequence[int]]:
        """Token ids of each text (one batched tokenizer call); a multi-language run tokenises each once."""
        if self.loaded is None:
            return list(self.tokenizer(list(texts))["input_ids"]) if texts else []
        known = self.loaded.token_ids
        new = [t for t in dict.fromkeys(texts) if t not in known]
        if new:
            known.update(zip(new, (array("i", ids) for ids in self.tokenizer(new)["input_ids"]), strict=True))
        return [known[t] for t in texts]

    @property
    def input_budget(self) -> int:
        return self.settings.max_input_tokens - self.special_tokens

    def decoding_limit(self, source_tokens: int) -> int:
        return math.ceil(self.settings.decoding_length_ratio * source_tokens) + self.settings.decoding_length_extra

    def __call__(self, units: Sequence[str]) -> list[UnitResult]:
        started = time.perf_counter()
        tokenizer = self.tokenizer
        sources = [tokenizer.convert_ids_to_tokens(list(ids)) for ids in self.source_ids(units)]
        lengths = [len(tokens) for tokens in sources]
        limits = [self.decoding_limit(n) for n in lengths]
        eos = tokenizer.eos_token
        pending = []
        translator = self.translator  # loaded (the first time) before the engine's clock starts
        submit_started = time.perf_counter()
        for batch in length_batches(lengths, self.settings.max_batch_tokens):
            pending.append((batch, translator.translate_batch(
                [sources[i] for i in batch],
                target_prefix=[[self.tgt_lang]] * len(batch),
                # CTranslate2 takes one limit per call: the largest of the batch (+ prefix, + </s>).
                # Each unit is then judged against its own limit below. Batches hold similar lengths.
                max_decoding_length=max(limits[i] for i in batch) + 2,
                max_input_length=0,  # never let the engine cut an input; segmentation bounds them
                beam_size=self.settings.beam_size,
                no_repeat_ngram_size=self.settings.no_repeat_ngram_size,
                repetition_penalty=self.settings.repetition_penalty,
                return_end_token=True,
                return_scores=True,  # the model's confidence, kept in the memory (quality: low_confidence)
                max_batch_size=self.settings.max_batch_tokens, batch_type="tokens",
                asynchronous=True,  # several GPUs (device_index) work on several batches at once
            )))
        self.stats.engine_seconds += time.perf_counter() - submit_started
        results: list[UnitResult | None] = [None] * len(units)
        for batch, futures in pending:
            produced = 0
            for i, future in zip(batch, futures, strict=True):
                waited = time.perf_counter()
                result = future.result()
                self.stats.engine_seconds += time.perf_counter() - waited
                hypothesis = result.hypotheses[0]
                if hypothesis and hypothesis[0] == self.tgt_lang:
                    hypothesis = hypothesis[1:]
                ended = bool(hypothesis) and hypothesis[-1] == eos
                generated = hypothesis[:-1] if ended else hypothesis
                text = tokenizer.decode(tokenizer.convert_tokens_to_ids(generated), skip_special_tokens=True)
                # A unit never spans lines: a line break or space run in the output is model noise.
                results[i] = UnitResult(" ".join(text.split()), lengths[i], len(generated),
                                        truncated=not ended or len(generated) >= limits[i],
                                        score=float(result.scores[0]) if result.scores else None)
                produced += len(generated)
            self.stats.batches += 1
            self.stats.units += len(batch)
            self.stats.source_tokens += sum(lengths[i] for i in batch)
            self.stats.target_tokens += produced
            if self.on_batch:
                self.on_batch(len(batch), produced)
        self.stats.seconds += time.perf_counter() - started
        return [r for r in results if r is not None]


# --- translation memory ---------------------------------------------------------------------------


def memory_key(model: str, src_lang: str, tgt_lang: str, settings: TranslateParams, compute_type: str
               ) -> dict[str, Any]:
    """What a cached translation depends on. Filter thresholds, batch sizes and devices do not."""
    return {
        "model": model, "src_lang": src_lang, "tgt_lang": tgt_lang, "compute_type": compute_type,
        "beam_size": settings.beam_size, "no_repeat_ngram_size": settings.no_repeat_ngram_size,
        "repetition_penalty": settings.repetition_penalty,
        "decoding_length_ratio": settings.decoding_length_ratio,
        "decoding_length_extra": settings.decoding_length_extra,
    }


class TranslationMemory(ShardMemory):
    """The translation memory: unit -> UnitResult, in immutable Parquet shards (dataset_builder.memory)."""

    def __init__(self, root: Path | str, key: dict[str, Any]) -> None:
        super().__init__(root, key, MEMORY_COLUMNS, "translation memory", UnitResult)
        self.migrated_shards = ensure_current(self.directory, MEMORY_COLUMNS)  # older formats, in place

    def lookup(self, units: Iterable[str]) -> dict[str, UnitResult]:
        """Cached results for those of `units` the memory holds."""
        return super().lookup(units)

    def write_shard(self, units: Sequence[str], results: Sequence[UnitResult]) -> Path:
        new = not self.directory.is_dir()
        path = super().write_shard(units, results)
        if new:
            stamp(self.directory)  # a new memory is born in the current format
        return path


@dataclass(frozen=True)
class TranslatorFactory(DriverEngineCache):
    """Builds the CTranslate2 translator where the work runs (dataset_builder.backends.EngineFactory):
    small and picklable. The driver's engine is built once and kept (DriverEngineCache), so the local
    backend, the planner's tokenizer and a caller translating several languages share one model."""

    model_dir: Path
    src_lang: str
    tgt_lang: str
    settings: TranslateParams
    device: str
    compute_type: str
    loaded: LoadedOnce | None = None  # the driver's only (translate_many); never pickled to a worker

    def _build(self, intra_threads: int | None, device_index: Sequence[int] | None) -> CTranslate2Engine:
        settings = self.settings.model_copy(update={"device_index": list(device_index)}) if device_index \
            else self.settings
        driver = intra_threads is None and device_index is None
        return CTranslate2Engine(self.model_dir, self.src_lang, self.tgt_lang, settings, self.device,
                                 self.compute_type, intra_threads=intra_threads,
                                 loaded=self.loaded if driver else None)

    def __getstate__(self) -> dict[str, Any]:
        return super().__getstate__() | {"loaded": None}


def shard_backend(settings: TranslateParams) -> ShardBackend:
    """translate.backend's shard backend (dataset_builder.backends), with its Ray knobs."""
    return get_backend(settings.backend, RayOptions.of("translate", settings))


def open_translator(model_dir: Path, src_lang: str, target: str, settings: TranslateParams,
                    loaded: LoadedOnce | None = None) -> TranslatorFactory:
    """The one place translate_file builds its engine: device and compute type where the backend runs
    it (the Ray workers' own with backend ray: the driver only plans and writes), then the factory
    whose driver engine plans."""
    device, compute_type = shard_backend(settings).devices(settings, STAGE)
    return TranslatorFactory(Path(model_dir), src_lang, target, settings, device, compute_type, loaded)


def record_log_prob(units: Sequence[UnitResult]) -> float | None:
    """A record's confidence: its units' scores averaged with their target tokens (+1, the end token)
    as weights, so a long unit counts for more than a one-word one. None when any score is unknown."""
    if not units or any(u.score is None for u in units):
        return None
    weights = [u.target_tokens + 1 for u in units]
    return sum(w * float(u.score) for w, u in zip(weights, units, strict=True)) / sum(weights)  # type: ignore[arg-type]



# --- the stage ------------------------------------------------------------------------------------


@dataclass
class Planned:
    """One record to translate: its segmented fields (by field name)."""

    index: int
    fields: dict[str, Segmented]


@dataclass
class TranslateResult:
    lang: str
    translated: int
    kept_verbatim: int
    rejected: int
    metrics: dict[str, Any] = field(default_factory=dict)


# --- planning: segmentation, cached and parallel ---------------------------------------------------

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
        workers = min(cpu_threads(), 16, len(chunks))
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


def _apply_policy(plan: SourcePlan, ids: list[str], policy: str, lang: str, language_bound: list[bool] | None = None
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


def _language_bound(table: pa.Table, params: Params) -> list[bool] | None:
    """Per record: skip it (translate.skip_language_bound) because quality would reject its task anyway
    (a family in quality.filters.language_bound.reject). One vectorised RE2 match over the instructions.
    Generate mode skips nothing: a response written in the language makes the task whole, so quality only
    flags it (quality/language_bound.py)."""
    families = params.quality.filters.language_bound.reject
    if not params.translate.skip_language_bound or not families or params.responses.mode == "generate":
        return None
    return pc.match_substring_regex(table.column("instruction"), language_bound.pattern(families)).to_pylist()


def _fit_units(planned: list[Planned], budget: int, count: Callable[[Sequence[str]], list[int]]) -> int:
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


def translate_file(source: Path, lang: str, model_dir: Path, out: Path, metrics_out: Path | None,
                   rejects_out: Path, params: Params, cache: Path | None = None,
                   translator: UnitTranslator | None = None,
                   factory: TranslatorFactory | None = None, loaded: LoadedOnce | None = None,
                   plan_cache: Path | None = None) -> TranslateResult:
    """Translate `source` (SOURCE_SCHEMA Parquet) into `lang`; see the module docstring.
    `translator` replaces the CTranslate2 call (tests; run by the local backend); tokenization stays the
    model's. `factory`: an engine already opened for this language pair (`open_translator`), reused.
    `loaded`: the tokenizer, model, plan and token counts an earlier language of this process loaded
    (translate_many). `plan_cache`: its `segments/` caches the segmentation plan; default: the memory directory."""
    started = time.perf_counter()
    settings = params.translate
    target = resolve(lang).flores
    src_lang = params.languages.source
    if target not in nllb_codes():
        raise PolyinstructError(f"--lang {lang}: NLLB-200 does not translate into {target}")
    if target == src_lang:
        raise PolyinstructError(f"--lang {lang}: that is the source language; pick a target language")
    table = read_table(source, required=SOURCE_SCHEMA.names)
    columns: dict[str, list[str]] = {c: table.column(c).to_pylist() for c in ("id", *TEXT_FIELDS)}
    n_in = table.num_rows

    fingerprint, smoke = model_fingerprint(Path(model_dir))
    factory = factory or open_translator(Path(model_dir), src_lang, target, settings, loaded)
    device, compute_type = factory.device, factory.compute_type
    engine = factory()  # the driver's: tokenizes for planning; the local backend translates with it
    memory_root = cache if cache is not None else Path(settings.cache)
    memory = TranslationMemory(memory_root, memory_key(fingerprint, src_lang, target, settings, compute_type))
    if memory.migrated_shards:
        print(f"translation memory {memory.directory}: {memory.migrated_shards} shard(s) migrated to format 2; "
              "their units' scores are unknown (delete the directory to rebuild it with scores)", file=sys.stderr)

    plan_started = time.perf_counter()
    plan_key = (str(Path(source).resolve()), resolve(src_lang).iso639_1 or "en")
    plan = loaded.plans.get(plan_key) if loaded is not None else None
    if plan is None:
        with progress_bar() as progress:
            task = progress.add_task(f"segment {target}", total=n_in, unit="records")
            rows_in = list(zip(*(columns[f] for f in TEXT_FIELDS), strict=True))
            plan = plan_source(source, rows_in, plan_cache or memory_root, lambda k: progress.advance(task, k),
                               lang=plan_key[1])
        if loaded is not None:
            loaded.plans[plan_key] = plan
    plan_seconds = time.perf_counter() - plan_started
    planned, verbatim, rejects = _apply_policy(plan, columns["id"], settings.code_policy, target,
                                               _language_bound(table, params))
    fit_started = time.perf_counter()
    split_fields = _fit_units(planned, engine.input_budget, engine.count_tokens)
    fit_seconds = time.perf_counter() - fit_started
    occurrences = [normalise_unit(u) for p in planned for s in p.fields.values() for u in s.units]
    distinct = sorted(set(occurrences))
    cached = memory.lookup(distinct)
    pending = pending_order(u for u in distinct if u not in cached)
    # translate.backend picks where the work runs (backends.py); a caller's stand-in runs in this process.
    backend = shard_backend(settings) if translator is None else LocalBackend()
    if translator is None:
        backend.check_work(settings.device, device, len(pending))
    work = factory if translator is None else Prebuilt(translator, factory.model_dir, device, compute_type)
    translate_started = time.perf_counter()
    run = run_pending(backend, pending, work, memory, settings.shard_units, f"translate {target}", "units")
    fresh: dict[str, UnitResult] = run.results
    translate_seconds = run.seconds
    results = {**cached, **fresh}

    rows: list[dict[str, Any]] = []
    truncated_units = sum(results[u].truncated for u in distinct)
    spans_lost = 0
    for p in planned:
        row: dict[str, Any] = {"id": columns["id"][p.index], "lang": target, "model": fingerprint, "smoke": smoke,
                               "kept_verbatim": False}
        truncated: list[str] = []
        spans_ok = True
        record_units: list[UnitResult] = []
        for f, seg in p.fields.items():
            unit_results = [results[normalise_unit(u)] for u in seg.units]
            row[f] = reassemble(seg, [r.translation for r in unit_results])
            record_units.extend(unit_results)
            if any(r.truncated for r in unit_results):
                truncated.append(f)
            spans_ok = spans_ok and spans_preserved(columns[f][p.index], row[f], seg.spans)
        spans_lost += not spans_ok
        rows.append({**row, "truncated_fields": truncated, "protected_spans_ok": spans_ok,
                     "log_prob": record_log_prob(record_units)})
    for i in verbatim:
        rows.append({"id": columns["id"][i], "lang": target, **{f: columns[f][i] for f in TEXT_FIELDS},
                     "model": fingerprint, "smoke": smoke, "truncated_fields": [], "protected_spans_ok": True,
                     "kept_verbatim": True, "log_prob": None})

    rows.sort(key=lambda r: r["id"])
    write_rejects(rejects_table(rejects), rejects_out)
    refuse_empty_output(STAGE, n_in, len(rows), Counter(r["reason"] for r in rejects), rejects_out)
    write_parquet(pa.Table.from_pylist(rows, schema=TRANSLATED_SCHEMA), out, TRANSLATED_SCHEMA)
    # In: the rows of the source file; kept and rejected: the rows of the files written.
    check_conservation(STAGE, {target: n_in}, {target: parquet_rows(out)}, {target: parquet_rows(rejects_out)})

    by_reason: dict[str, int] = {}
    for r in rejects:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    sent = len(pending)
    metrics = {
        "lang": target, "model": fingerprint, "smoke": smoke, "backend": backend.name, "device": device,
        "compute_type": compute_type,
        "beam_size": settings.beam_size, "max_batch_tokens": settings.max_batch_tokens,
        "records": n_in, "translated": len(planned), "kept_verbatim": len(verbatim), "rejected": len(rejects),
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "units": len(occurrences), "distinct_units": len(distinct), "units_translated": sent,
        "cache_hits": len(cached), "cache_hit_rate": round(len(cached) / len(distinct), 4) if distinct else 1.0,
        "fields_split_for_length": split_fields, "truncated_units": truncated_units,
        "truncated_records": sum(bool(r["truncated_fields"]) for r in rows), "records_spans_not_preserved": spans_lost,
        "empty_unit_translations": sum(not results[u].translation for u in distinct),
        "source_tokens": sum(fresh[u].source_tokens for u in fresh),
        "target_tokens": sum(fresh[u].target_tokens for u in fresh),
        "translate_seconds": round(translate_seconds, 3),
        "units_per_second": round(sent / translate_seconds, 1) if sent and translate_seconds > 0 else None,
        "target_tokens_per_second": round(sum(fresh[u].target_tokens for u in fresh) / translate_seconds, 1)
        if sent and translate_seconds > 0 else None,
        "engine_batches": run.batches if translator is None else None,
        "memory": str(memory.directory), "memory_shards": len(memory.shards()),
        "memory_migrated_shards": memory.migrated_shards,
        "units_without_score": sum(results[u].score is None for u in distinct),
        "seconds": round(time.perf_counter() - started, 3),
        "model_load_seconds": round(engine.stats.model_load_seconds, 3),
        "tokenizer_load_seconds": round(engine.stats.tokenizer_load_seconds, 3),
        "plan_seconds": round(plan_seconds, 3), "fit_seconds": round(fit_seconds, 3),
        "engine_seconds": round(engine.stats.engine_seconds, 3) if translator is None else None,
        "setup_seconds": round(translate_started - started, 3),  # from the call to the first unit sent
    }
    if metrics_out:
        data_metrics, timing = split_timing(metrics, RUN_KEYS)
        write_json(data_metrics, metrics_out)
        write_timing(timing, metrics_out)
    return TranslateResult(target, len(planned), len(verbatim), len(rejects), metrics)
