"""The respond stage (Bactrian-X's recipe): translated records -> the same records with the output
generated in their language by an instruction-tuned LM.

Each record's translated instruction (and input) becomes one conversation: a system message asking
for an answer in the target language, then the user turn. The engine (dataset_builder.generate)
renders it with the model's own chat template; prompts the model's context cannot hold with
`max_new_tokens` to spare go to the rejects table (`prompt_too_long`), never cut. The distinct prompts
are looked up in the response memory; the rest are generated in shards of `responses.shard_prompts`
(sorted by length, batched by a token budget), each shard persisted before the next starts. So a
rerun generates nothing already done, and a SIGKILL loses at most the shard in flight.

A generation cut at max_new_tokens keeps its text and lists `output` in `truncated_fields` (the
filter's `truncated` reason); refusals and assistant chatter are the filter's too
(quality/response_checks.py). Kept + rejected == in, counted on each side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from dataset_builder.backends import get_backend, run_pending
from dataset_builder.generate import (
    LENGTH,
    TOO_LONG,
    Generation,
    GenerationEngine,
    GeneratorFactory,
    Messages,
    ResponseMemory,
    memory_key,
)
from dataset_builder.generate_http import OpenAICompatibleEngine
from dataset_builder.memory import pending_order
from dataset_builder.models.responder import resolve_responder, responder_identity
from dataset_builder.shard_work import EngineFactory, Prebuilt, RayOptions, ShardBackend
from schemas.artifacts import read_table, write_json, write_parquet
from schemas.errors import PolyinstructError
from schemas.languages import resolve
from schemas.ledger import check_conservation, rejects_table, write_rejects
from schemas.params import Params, ResponsesParams
from schemas.records import RESPONDED_SCHEMA, TRANSLATED_SCHEMA
from schemas.timings import split_timing, write_timing

STAGE = "respond"
SHARD_BACKENDS: dict[str, str] = {"local": "local", "ray": "ray", "openai": "local"}  # responses.backend -> where
# How this run went rather than what the data is (schemas/timings.py): what the memory served, and so
# what the engine did, depends on earlier runs.
RUN_KEYS: tuple[str, ...] = (
    "backend", "device", "prompts_generated", "cache_hits", "cache_hit_rate", "prompt_tokens", "output_tokens",
    "generate_seconds", "prompts_per_second", "output_tokens_per_second", "engine_batches", "memory",
    "memory_shards", "seconds")
# The system message in the language itself, where we have it (params may add or replace any).
SYSTEM_MESSAGES: dict[str, str] = {
    "eng_Latn": "You are a helpful assistant. Answer in English.",
    "fra_Latn": "Vous êtes un assistant serviable. Répondez en français.",
    "deu_Latn": "Du bist ein hilfreicher Assistent. Antworte auf Deutsch.",
    "spa_Latn": "Eres un asistente útil. Responde en español.",
    "por_Latn": "Você é um assistente prestativo. Responda em português.",
    "ita_Latn": "Sei un assistente disponibile. Rispondi in italiano.",
    "rus_Cyrl": "Вы полезный помощник. Отвечайте на русском языке.",
    "zho_Hans": "你是一个乐于助人的助手。请用简体中文回答。",
    "jpn_Jpan": "あなたは親切なアシスタントです。日本語で答えてください。",
    "kor_Hang": "당신은 도움이 되는 조수입니다. 한국어로 답하세요.",
}


@dataclass
class RespondResult:
    lang: str
    responded: int
    rejected: int
    metrics: dict[str, Any] = field(default_factory=dict)


def system_message(lang: str, params: Params) -> str:
    language = resolve(lang)
    custom = params.responses.system_prompt
    for key in (language.flores, language.iso639_1):
        if key and key in custom:
            return custom[key]
    return SYSTEM_MESSAGES.get(language.flores) or params.responses.system_prompt_default.format(
        language=language.name)


def conversation(system: str, instruction: str, input_text: str) -> Messages:
    user = f"{instruction}\n\n{input_text}" if input_text.strip() else instruction
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def shard_backend(settings: ResponsesParams) -> ShardBackend:
    """Where responses.backend's engine runs (dataset_builder.backends); the openai engine is an HTTP
    client, concurrent itself, run by the local shard backend."""
    return get_backend(SHARD_BACKENDS[settings.backend], RayOptions.of("responses", settings))


def open_engine(params: Params, model: str | None = None) -> tuple[EngineFactory, str]:
    """(engine factory, compute type) for responses.backend: the CTranslate2 Generator on `model`
    (default models.responder), in this process (local) or on Ray's workers (ray), or the
    OpenAI-compatible endpoint. `factory()` is the driver's engine (dataset_builder.backends)."""
    settings = params.responses
    if settings.backend == "openai":
        return Prebuilt(OpenAICompatibleEngine(settings.endpoint, settings.decoding)), "remote"
    device, compute_type = shard_backend(settings).devices(settings, STAGE)
    model_dir = resolve_responder(model or params.models.responder, params)
    fingerprint, smoke, context = responder_identity(model_dir)
    return GeneratorFactory(model_dir, fingerprint, smoke, context, settings.decoding, device, compute_type,
                            settings.max_batch_tokens), compute_type


def respond_file(translated: Path, lang: str, factory: EngineFactory, out: Path, metrics_out: Path | None,
                 rejects_out: Path, params: Params, compute_type: str, cache: Path | None = None) -> RespondResult:
    """Generate the output of every record of `translated` (TRANSLATED_SCHEMA Parquet) in `lang`, with
    the engine `factory` builds (`open_engine`) on responses.backend's shard backend."""
    started = time.perf_counter()
    settings = params.responses
    engine: GenerationEngine = factory()  # the driver's: renders and counts prompts (and generates, locally)
    target = resolve(lang).flores
    table = read_table(translated, required=TRANSLATED_SCHEMA.names)
    rows_in = table.select(TRANSLATED_SCHEMA.names).to_pylist()
    n_in = len(rows_in)
    other = sorted({r["lang"] for r in rows_in} - {target})
    if other:
        raise PolyinstructError(f"{translated}: holds rows in {', '.join(other)}, not only {target}; pass the file"
                                f" of one language with --lang")
    system = system_message(target, params)
    prompts = [engine.render(conversation(system, r["instruction"], r["input"])) for r in rows_in]

    rejects: list[dict[str, str]] = []
    counts = engine.prompt_tokens(prompts)
    keep = list(range(n_in))
    max_new = settings.decoding.max_new_tokens
    if counts is not None and engine.context_tokens:
        room = engine.context_tokens - max_new
        keep = [i for i in range(n_in) if counts[i] <= room]
        rejects += [{"id": rows_in[i]["id"], "lang": target, "stage": STAGE, "reason": "prompt_too_long",
                     "detail": f"prompt is {counts[i]} tokens; the model's context ({engine.context_tokens}) minus"
                               f" max_new_tokens ({max_new}) leaves {room}"}
                    for i in range(n_in) if counts[i] > room]

    memory_root = cache if cache is not None else Path(settings.cache)
    memory = ResponseMemory(memory_root, memory_key(engine.fingerprint, settings.decoding, compute_type))
    distinct = sorted({prompts[i] for i in keep})
    cached = memory.lookup(distinct)
    pending = pending_order(p for p in distinct if p not in cached)

    backend = shard_backend(settings)
    run = run_pending(backend, pending, factory, memory, settings.shard_prompts, f"respond {target}", "prompts")
    fresh: dict[str, Generation] = run.results
    generate_seconds = run.seconds
    results = {**cached, **fresh}

    rows: list[dict[str, Any]] = []
    for i in keep:
        gen = results[prompts[i]]
        row = rows_in[i]
        if gen.finish_reason == TOO_LONG:  # the backend refused the prompt (HTTP servers check themselves)
            rejects.append({"id": row["id"], "lang": target, "stage": STAGE, "reason": "prompt_too_long",
                            "detail": "the generation server refused the prompt as too long for its context"})
            continue
        truncated = [f for f in row["truncated_fields"] if f != "output"]
        if gen.finish_reason == LENGTH:
            truncated.append("output")
        rows.append({**row, "output": gen.text, "truncated_fields": truncated, "output_model": engine.fingerprint,
                     "smoke": bool(row["smoke"]) or engine.smoke})
    rejects.sort(key=lambda r: r["id"])
    check_conservation(STAGE, {target: n_in}, {target: len(rows)}, {target: len(rejects)})
    rows.sort(key=lambda r: r["id"])
    write_parquet(pa.Table.from_pylist(rows, schema=RESPONDED_SCHEMA), out, RESPONDED_SCHEMA)
    write_rejects(rejects_table(rejects), rejects_out)

    output_tokens = sum(g.output_tokens for g in fresh.values())
    by_reason: dict[str, int] = {}
    for r in rejects:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    metrics = {
        "lang": target, "model": engine.fingerprint, "smoke": engine.smoke, "backend": settings.backend,
        "device": getattr(engine, "device", "remote"), "compute_type": compute_type,
        "decoding": settings.decoding.model_dump(), "system_message": system,
        "records": n_in, "responded": len(rows), "rejected": len(rejects),
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "distinct_prompts": len(distinct), "prompts_generated": len(pending), "cache_hits": len(cached),
        "cache_hit_rate": round(len(cached) / len(distinct), 4) if distinct else 1.0,
        "truncated_outputs": sum("output" in r["truncated_fields"] for r in rows),
        "empty_outputs": sum(not r["output"] for r in rows),
        "prompt_tokens": sum(g.prompt_tokens for g in fresh.values()), "output_tokens": output_tokens,
        "generate_seconds": round(generate_seconds, 3),
        "prompts_per_second": round(len(pending) / generate_seconds, 2) if pending and generate_seconds > 0 else None,
        "output_tokens_per_second": round(output_tokens / generate_seconds, 1)
        if pending and generate_seconds > 0 else None,
        "engine_batches": run.batches,
        "memory": str(memory.directory), "memory_shards": len(memory.shards()),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if metrics_out:
        data_metrics, timing = split_timing(metrics, RUN_KEYS)
        write_json(data_metrics, metrics_out)
        write_timing(timing, metrics_out)
    return RespondResult(target, len(rows), len(rejects), metrics)
