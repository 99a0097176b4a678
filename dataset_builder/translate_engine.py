"""The translate stage's engine: NLLB-200 on CTranslate2 (`CTranslate2Engine`), what a multi-language
process loads once (`LoadedOnce`), and the small picklable factory that builds the engine where the
work runs (`TranslatorFactory`, opened by `open_translator` on translate.backend's shard backend)."""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dataset_builder.backends import get_backend
from dataset_builder.devices import cpu_threads, length_batches
from dataset_builder.models.nllb import load_tokenizer
from dataset_builder.shard_work import DriverEngineCache, RayOptions, ShardBackend
from dataset_builder.translate_plan import STAGE, SourcePlan
from dataset_builder.translation_memory import UnitResult
from schemas.errors import PolyinstructError
from schemas.params import TranslateParams


class UnitTranslator(Protocol):
    """Anything that translates a list of unit texts (already normalised) in order."""

    def __call__(self, units: Sequence[str]) -> list[UnitResult]: ...


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

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[UnitResult]:
        """Forced decoding (CTranslate2 `score_batch`): the model's score of a given translation of each
        unit, for translations it did not produce (dataset_builder.qe_score). The target is forced after
        the target-language token, which is not scored (offset=1); the score is the mean log-probability
        of the target tokens and `</s>`, as translate's `return_scores` gives per token."""
        if not pairs:
            return []
        started = time.perf_counter()
        tokenizer = self.tokenizer
        sources = [tokenizer.convert_ids_to_tokens(list(ids)) for ids in self.source_ids([s for s, _ in pairs])]
        target_ids = tokenizer([t for _, t in pairs], add_special_tokens=False)["input_ids"]
        targets = [[self.tgt_lang, *tokenizer.convert_ids_to_tokens(ids)] for ids in target_ids]
        translator = self.translator
        submit_started = time.perf_counter()
        scored = translator.score_batch(sources, targets, max_batch_size=self.settings.max_batch_tokens,
                                        batch_type="tokens", max_input_length=0, offset=1)
        self.stats.engine_seconds += time.perf_counter() - submit_started
        results = [UnitResult(target, len(source) - self.special_tokens, len(tokens) - 1, truncated=False,
                              score=sum(r.log_probs) / len(r.log_probs) if r.log_probs else None)
                   for (_, target), source, tokens, r in zip(pairs, sources, targets, scored, strict=True)]
        self.stats.batches += 1
        self.stats.units += len(pairs)
        self.stats.source_tokens += sum(r.source_tokens for r in results)
        self.stats.target_tokens += sum(r.target_tokens for r in results)
        if self.on_batch:
            self.on_batch(len(pairs), sum(r.target_tokens for r in results))
        self.stats.seconds += time.perf_counter() - started
        return results


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
