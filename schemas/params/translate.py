"""params.yaml `translate`: the NLLB-200 translate stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.params.section import Section


class TranslateParams(Section):
    backend: Literal["local", "ray"] = "local"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: Literal["auto", "int8", "int8_float16", "int8_float32", "int8_bfloat16", "float16",
                          "bfloat16", "float32"] = "auto"
    device_index: list[int] = Field(default_factory=lambda: [0])
    beam_size: int = Field(default=1, ge=1, le=16)
    max_batch_tokens: int = Field(default=4096, ge=64)
    max_input_tokens: int = Field(default=200, ge=8)
    # max_decoding_length = decoding_length_ratio * input tokens + decoding_length_extra
    decoding_length_ratio: float = Field(default=2.0, gt=0)
    decoding_length_extra: int = Field(default=16, ge=0)
    no_repeat_ngram_size: int = Field(default=4, ge=0)
    repetition_penalty: float = Field(default=1.1, ge=1.0)
    code_policy: Literal["keep", "skip", "translate"] = "translate"
    # Reject, before translating, records whose task quality would reject as language_bound (the families in
    # quality.filters.language_bound.reject): no GPU time on tasks that break in translation.
    skip_language_bound: bool = False
    shard_units: int = Field(default=2048, ge=1)
    cache: str = "data/translation_memory"
    ray_address: str | None = None
    ray_num_workers: int = Field(default=2, ge=1)
    ray_gpus_per_worker: float = Field(default=0.0, ge=0)
    # CPU workers: CTranslate2 threads per actor (and CPUs Ray reserves for it). GPU workers: ignored.
    ray_cpus_per_worker: int = Field(default=1, ge=1)
    # How dvc.yaml runs the stage (issue 14). per_language: the targets translated by one stage and process
    # each (`translate`); None: every target not in one_process. one_process: {NAME: [targets]}, one stage
    # and process for all of them (`translate_many`: the model, tokenizer and plan loaded once).
    per_language: list[str] | None = None
    one_process: dict[str, list[str]] = Field(default_factory=dict)
