"""params.yaml `responses`: responses written by an LLM in each language (Bactrian-X mode)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.languages import resolve
from schemas.params.section import Section


class DecodingParams(Section):
    """Decoding of a generative LM (the responder; a judge later). Part of the response memory's key."""

    max_new_tokens: int = Field(default=256, ge=1)
    # The chat API defaults Bactrian-X generated with (gpt-3.5-turbo: temperature 1, top_p 1). 0: greedy.
    temperature: float = Field(default=1.0, ge=0)
    top_k: int = Field(default=0, ge=0)  # 0: no top-k cut when sampling
    top_p: float = Field(default=1.0, gt=0, le=1)
    repetition_penalty: float = Field(default=1.0, ge=1.0)
    no_repeat_ngram_size: int = Field(default=0, ge=0)
    seed: int = 0


class EndpointParams(Section):
    """An OpenAI-compatible server the user starts (vLLM, llama.cpp, TGI): /v1/completions."""

    url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    model: str | None = None  # the served model's name; also its fingerprint in the memory
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this environment variable, never printed
    concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=5, ge=0)
    timeout_s: float = Field(default=120.0, gt=0)
    context_tokens: int = Field(default=8192, ge=16)  # the served model's context, for the too-long check


class ResponsesParams(Section):
    """The recipe switch: `translate` (Chen et al.: every field translated) or `generate` (Bactrian-X:
    instruction and input translated, the output generated in each language by a local LM)."""

    mode: Literal["translate", "generate"] = "translate"
    # Languages whose outputs are generated; in generate mode all of languages.targets.
    languages: list[str] = Field(default_factory=list)
    # What the filter stage reads: data/translated (translate) or data/responded (generate).
    records: str = "data/translated"
    # local: the CTranslate2 Generator in this process; ray: one per Ray actor (the ray_* knobs, as translate's);
    # openai: the OpenAI-compatible server at `endpoint`.
    backend: Literal["local", "ray", "openai"] = "local"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: Literal["auto", "int8", "int8_float16", "int8_float32", "int8_bfloat16", "float16",
                          "bfloat16", "float32"] = "auto"
    max_batch_tokens: int = Field(default=8192, ge=64)
    shard_prompts: int = Field(default=256, ge=1)
    cache: str = "data/response_memory"
    # Per-language system message ({flores or iso: text}); else the built-in one in that language,
    # else `system_prompt_default` with {language} filled in.
    system_prompt: dict[str, str] = Field(default_factory=dict)
    system_prompt_default: str = "You are a helpful assistant. Answer in {language}, and only in {language}."
    decoding: DecodingParams = DecodingParams()
    endpoint: EndpointParams = EndpointParams()
    ray_address: str | None = None
    ray_num_workers: int = Field(default=2, ge=1)
    ray_gpus_per_worker: float = Field(default=0.0, ge=0)
    ray_cpus_per_worker: int = Field(default=1, ge=1)  # CPU workers: Generator threads per actor

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, codes: list[str]) -> list[str]:
        return [resolve(c).flores for c in codes]

    @model_validator(mode="after")
    def _recipe(self) -> ResponsesParams:
        if self.mode == "translate" and (self.languages or self.records != "data/translated"):
            raise ValueError("mode translate generates nothing: set languages: [] and records: data/translated")
        if self.mode == "generate" and (not self.languages or self.records != "data/responded"):
            raise ValueError("mode generate needs languages (the targets) and records: data/responded")
        if self.backend == "openai" and not (self.endpoint.url and self.endpoint.model):
            raise ValueError("backend openai needs endpoint.url and endpoint.model")
        return self
