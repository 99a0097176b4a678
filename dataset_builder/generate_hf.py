"""The transformers backend of the generate engine: a causal LM on `transformers`' `generate`.

The judge's fallback (issue 16): CTranslate2's converter takes Llama, Qwen, Gemma, Mistral, Phi and a
few more; a judge model of another architecture runs here instead (`evaluate.judge.backend:
transformers`, or `local` when the conversion fails). Same interface as `CTranslate2Generator`
(dataset_builder.generate.GenerationEngine): the model's own chat template, token-budget batches of
prompts sorted by length, seeded sampling, and finish reasons `stop` / `length`. It is slower than
CTranslate2 on a CPU (see `make bench-respond`), so it is the fallback, never the default.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dataset_builder.devices import length_batches
from dataset_builder.generate import (
    LENGTH,
    STOP,
    ChatEngine,
    Generation,
    GenerationStats,
    load_chat_tokenizer,
)
from dataset_builder.models.convert import content_digest, context_tokens_of
from schemas.models import SMOKE_MODEL_PREFIX, read_manifest
from schemas.params import DecodingParams

COMPUTE_TYPE = "transformers-float32"  # part of the memory key: never mixed with CTranslate2's answers


def transformers_identity(model_dir: Path) -> tuple[str, bool]:
    """(fingerprint, smoke) of an HF model directory; a smoke model's fingerprint starts with `smoke:`."""
    manifest = read_manifest(model_dir)
    smoke = bool(manifest.get("smoke", False))
    name = str(manifest.get("model_id") or manifest.get("spec") or Path(model_dir).resolve().name)
    digest = content_digest(Path(model_dir))[:16]
    return f"{SMOKE_MODEL_PREFIX if smoke else ''}{Path(name).name}@transformers:{digest}", smoke


class TransformersGenerator(ChatEngine):
    """A causal LM on transformers (float32 on the CPU, the model's dtype on a GPU)."""

    def __init__(self, model_dir: Path, decoding: DecodingParams, device: str = "cpu",
                 max_batch_tokens: int = 4096) -> None:
        self.model_dir = Path(model_dir)
        self.decoding, self.device, self.max_batch_tokens = decoding, device, max_batch_tokens
        self.compute_type = COMPUTE_TYPE
        self.fingerprint, self.smoke = transformers_identity(self.model_dir)
        self.context_tokens: int | None = context_tokens_of(self.model_dir)
        self.tokenizer = load_chat_tokenizer(self.model_dir)
        self.end_ids = sorted({i for i in (self.tokenizer.eos_token_id, *_generation_eos(self.model_dir))
                               if i is not None})
        self._model: Any = None
        self.stats = GenerationStats()
        self.on_batch: Callable[[int, int], None] | None = None

    @property
    def model(self) -> Any:
        """Loaded on first use: a fully cached rerun never loads the model."""
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM

            self._model = AutoModelForCausalLM.from_pretrained(str(self.model_dir), dtype=torch.float32
                                                               if self.device == "cpu" else "auto")
            self._model.to(self.device).eval()
        return self._model

    def load(self) -> None:
        _ = self.model

    def __call__(self, prompts: Sequence[str]) -> list[Generation]:
        import torch

        started = time.perf_counter()
        d = self.decoding
        encoded = self._encode(prompts)
        lengths = [len(ids) for ids in encoded]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.end_ids[0]
        torch.manual_seed(d.seed)  # same prompts, same batches: same samples
        results: list[Generation | None] = [None] * len(prompts)
        for batch in length_batches([n + d.max_new_tokens for n in lengths], self.max_batch_tokens):
            width = max(lengths[i] for i in batch)
            # Left padding: every prompt ends where generation starts.
            ids = torch.tensor([[pad] * (width - lengths[i]) + encoded[i] for i in batch], device=self.device)
            mask = torch.tensor([[0] * (width - lengths[i]) + [1] * lengths[i] for i in batch], device=self.device)
            sampling: dict[str, Any] = ({"do_sample": True, "temperature": d.temperature, "top_p": d.top_p,
                                         "top_k": d.top_k or None} if d.temperature else {"do_sample": False})
            with torch.no_grad():
                out = self.model.generate(
                    input_ids=ids, attention_mask=mask, max_new_tokens=d.max_new_tokens, eos_token_id=self.end_ids,
                    pad_token_id=pad, repetition_penalty=d.repetition_penalty,
                    no_repeat_ngram_size=d.no_repeat_ngram_size, **sampling)
            produced = 0
            for row, i in enumerate(batch):
                new = out[row, width:].tolist()
                end = next((k for k, token in enumerate(new) if token in self.end_ids), None)
                body = new if end is None else new[:end]
                text = self.tokenizer.decode(body, skip_special_tokens=True).strip()
                results[i] = Generation(text, lengths[i], len(body), LENGTH if end is None else STOP)
                produced += len(body)
            self._finished_batch(len(batch), sum(lengths[i] for i in batch), produced)
        self.stats.seconds += time.perf_counter() - started
        return [r for r in results if r is not None]


def _generation_eos(model_dir: Path) -> list[int]:
    """generation_config.json's eos_token_id (an int or a list: chat models end turns with their own)."""
    from transformers import GenerationConfig

    try:
        eos = GenerationConfig.from_pretrained(str(model_dir)).eos_token_id
    except OSError:  # no generation_config.json
        return []
    return list(eos) if isinstance(eos, list) else [eos] if eos is not None else []
