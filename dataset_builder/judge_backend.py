"""The judge's model: the respond stage's generate engine (local CTranslate2 Generator or an
OpenAI-compatible server) behind the `ChatBackend` interface of trl_training.judge, with a response
memory of its own, so re-judging an unchanged answer costs nothing.

The engine is built by `respond.open_engine` on the `evaluate.judge` settings (backend, decoding,
endpoint), so the judge and the responder share one engine, one memory format and one model resolver.
A judge model CTranslate2 cannot convert runs on transformers instead (dataset_builder.generate_hf;
one logged line says why), as does any judge with `evaluate.judge.backend: transformers`; its answers
are cached in the same judge memory, under a key of their own.
A prompt the judge model's context cannot hold is not cut: its reply is None (counted unparseable)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from dataset_builder.devices import resolve_device
from dataset_builder.generate import TOO_LONG, GenerationEngine, Messages, ResponseMemory, memory_key
from dataset_builder.generate_hf import TransformersGenerator
from dataset_builder.memory import pending_order, run_in_shards
from dataset_builder.models.convert import ConversionError
from dataset_builder.models.lm import resolve_base_lm
from dataset_builder.respond import open_engine
from schemas.params import Params

SHARD_PROMPTS = 256


class CachedJudgeBackend:
    def __init__(self, engine: GenerationEngine, memory: ResponseMemory, max_new_tokens: int) -> None:
        self.engine, self.memory, self.max_new_tokens = engine, memory, max_new_tokens
        self.fingerprint, self.smoke = engine.fingerprint, engine.smoke
        self.cache_hits = self.generated = self.too_long = 0

    def complete(self, conversations: Sequence[Messages]) -> list[str | None]:
        prompts = [self.engine.render(list(c)) for c in conversations]
        fits = set(prompts)
        counts = self.engine.prompt_tokens(prompts)
        if counts is not None and self.engine.context_tokens:
            room = self.engine.context_tokens - self.max_new_tokens
            fits = {p for p, n in zip(prompts, counts, strict=True) if n <= room}
        cached = self.memory.lookup(sorted(fits))
        pending = pending_order(p for p in fits if p not in cached)
        fresh = run_in_shards(pending, self.engine, self.memory, SHARD_PROMPTS) if pending else {}
        self.cache_hits += sum(p in cached for p in prompts)
        self.generated += len(pending)
        results = {**cached, **fresh}
        replies: list[str | None] = []
        for p in prompts:
            gen = results.get(p)
            if gen is None or gen.finish_reason == TOO_LONG:
                self.too_long += 1
                replies.append(None)
            else:
                replies.append(gen.text)
        return replies

    def stats(self) -> dict[str, int]:
        return {"cache_hits": self.cache_hits, "generated": self.generated, "too_long": self.too_long}


def open_judge(model: str, params: Params) -> CachedJudgeBackend:
    """The judge for `--judge MODEL` (`smoke`, a Hub id, an HF or CTranslate2 directory; with
    evaluate.judge.backend openai, the endpoint's model and MODEL only names it)."""
    judge = params.evaluate.judge
    responses = params.responses.model_copy(update={"backend": judge.backend, "decoding": judge.decoding,
                                                    "endpoint": judge.endpoint})
    engine: GenerationEngine
    if judge.backend == "transformers":
        engine = _transformers(resolve_base_lm(model, params), params)
    else:
        try:
            factory, _ = open_engine(params.model_copy(update={"responses": responses}), model)
            engine = factory()
        except ConversionError as err:
            print(f"judge: CTranslate2 cannot convert {model} ({err.reason}); judging on transformers instead",
                  file=sys.stderr)
            engine = _transformers(err.hf_dir, params)
    compute_type = str(getattr(engine, "compute_type", "remote"))
    memory = ResponseMemory(Path(judge.cache), memory_key(engine.fingerprint, judge.decoding, compute_type))
    return CachedJudgeBackend(engine, memory, judge.decoding.max_new_tokens)


def _transformers(model_dir: Path, params: Params) -> TransformersGenerator:
    judge = params.evaluate.judge
    device = resolve_device(params.responses.device, stage="judge")
    return TransformersGenerator(model_dir, judge.decoding, device, params.responses.max_batch_tokens)
