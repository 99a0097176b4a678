"""CTranslate2 Generator (int8) vs Hugging Face `generate` (float32) on the same causal LM, on the CPU.

Same model: one Qwen2ForCausalLM with random weights at Qwen2.5-0.5B-Instruct's layer sizes (hidden
896, 14 query / 2 key-value heads, MLP 4864, vocabulary 151,936, tied embeddings), with fewer layers
at the default size so that a run takes minutes on a shared 2-core machine (24 layers, the real depth,
with POLYINSTRUCT_BENCH_FULL=1; quick: 2 layers). It is converted in memory to CTranslate2 (int8
chosen at load time). Same inputs: random prompts of chat-like lengths, in the same batches for both
engines. Greedy decoding with output lengths forced equal (CTranslate2 min_length = max_length; HF
min_new_tokens = max_new_tokens), so both produce exactly the same number of tokens. Same threads.
Reported: generated tokens/s of each engine and their ratio, plus the CPU-seconds ratio (robust when
other processes share the cores).
"""

from __future__ import annotations

import copy
import gc
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

WORK = Path(__file__).resolve().parent / "work" / "respond"

QWEN25_05B: dict[str, Any] = {"hidden_size": 896, "num_attention_heads": 14, "num_key_value_heads": 2,
                              "intermediate_size": 4864, "vocab_size": 151_936, "max_position_embeddings": 32768,
                              "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True}
QWEN25_05B_LAYERS = 24


def _build(layers: int) -> tuple[Any, Path]:
    import torch
    from ctranslate2.converters.transformers import Qwen2Loader
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from benchmarks.random_weights import save_ct2

    torch.manual_seed(0)
    config = Qwen2Config(num_hidden_layers=layers, bos_token_id=0, pad_token_id=1, eos_token_id=2, **QWEN25_05B)
    model = Qwen2ForCausalLM(config).eval()
    # The loader takes modules apart as it converts them: give it a copy, keep the model for HF.
    return model, save_ct2(Qwen2Loader(), copy.deepcopy(model), config.vocab_size, "int8", WORK)


def _prompts(n: int, seed: int) -> list[list[int]]:
    """Chat-like prompt lengths: a system message and an instruction, 40-120 tokens."""
    rng = random.Random(seed)
    return [[0, *(rng.randrange(4, 150_000) for _ in range(rng.randint(40, 120)))] for _ in range(n)]


def _ct2_run(model_dir: Path, threads: int, prompts: list[list[int]], batch: int, new: int) -> tuple[float, float, int]:
    import ctranslate2

    generator = ctranslate2.Generator(str(model_dir), device="cpu", compute_type="int8", intra_threads=threads,
                                      inter_threads=1)
    tokens = [["<s>", *(f"t{i}" for i in p[1:])] for p in prompts]
    generator.generate_batch(tokens[:1], max_length=2, include_prompt_in_result=False)  # warm-up
    produced = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(tokens), batch):
        results = generator.generate_batch(tokens[start:start + batch], max_length=new, min_length=new,
                                           include_prompt_in_result=False, sampling_topk=1)
        for result in results:
            assert len(result.sequences_ids[0]) == new, len(result.sequences_ids[0])
            produced += new
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    del generator
    gc.collect()
    return seconds, cpu_seconds, produced


def _hf_run(model: Any, threads: int, prompts: list[list[int]], batch: int, new: int) -> tuple[float, float, int]:
    import torch

    torch.set_num_threads(threads)
    produced = 0

    def generate(rows: list[list[int]], length: int) -> Any:
        width = max(len(p) for p in rows)
        ids = torch.full((len(rows), width), 1, dtype=torch.long)  # left padding, as decoder-only models need
        mask = torch.zeros_like(ids)
        for r, p in enumerate(rows):
            ids[r, width - len(p):] = torch.tensor(p)
            mask[r, width - len(p):] = 1
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, num_beams=1,
                             min_new_tokens=length, max_new_tokens=length, pad_token_id=1, eos_token_id=2)
        return out.shape[1] - width

    with torch.inference_mode():
        generate(prompts[:1], 2)  # warm-up
        started, cpu_started = time.perf_counter(), time.process_time()
        for start in range(0, len(prompts), batch):
            rows = prompts[start:start + batch]
            made = generate(rows, new)
            assert made == new, made
            produced += made * len(rows)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return seconds, cpu_seconds, produced


def run(quick: bool = False, threads: int | None = None) -> dict[str, Any]:
    import ctranslate2
    import torch

    from dataset_builder.devices import cpu_threads

    full = os.environ.get("POLYINSTRUCT_BENCH_FULL") == "1"
    layers = QWEN25_05B_LAYERS if full else (2 if quick else 4)
    n_prompts, batch, new = (4, 4, 16) if quick else (8, 8, 32)
    threads = threads or cpu_threads()
    torch.set_num_threads(threads)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    model, model_dir = _build(layers)
    build_seconds = time.perf_counter() - started
    prompts = _prompts(n_prompts, seed=0)
    ct2_s, ct2_cpu, ct2_tokens = _ct2_run(model_dir, threads, prompts, batch, new)
    hf_s, hf_cpu, hf_tokens = _hf_run(model, threads, prompts, batch, new)
    shutil.rmtree(model_dir, ignore_errors=True)
    assert ct2_tokens == hf_tokens  # same work for both engines
    ct2_rate, hf_rate = ct2_tokens / ct2_s, hf_tokens / hf_s
    return {
        "summary": {
            "ct2_int8_tok_s": round(ct2_rate, 1),
            "hf_fp32_tok_s": round(hf_rate, 1),
            "ratio_ct2_int8_vs_hf": round(ct2_rate / hf_rate, 2),
            "cpu_ratio_int8_vs_hf": round(hf_cpu / ct2_cpu, 2),
            "shape": f"Qwen2.5-0.5B layer sizes, {layers} of {QWEN25_05B_LAYERS} layers",
            "device": "cpu",
            "threads": threads,
        },
        "shape": {**QWEN25_05B, "num_hidden_layers": layers,
                  "parameters": sum(p.numel() for p in model.parameters())},
        "prompts": n_prompts, "batch_size": batch, "new_tokens_per_prompt": new,
        "prompt_tokens": sum(len(p) for p in prompts), "generated_tokens": hf_tokens,
        "seconds": {"build_and_convert": round(build_seconds, 1), "ct2_int8": round(ct2_s, 2),
                    "hf_float32": round(hf_s, 2)},
        "cpu_seconds": {"ct2_int8": round(ct2_cpu, 2), "hf_float32": round(hf_cpu, 2)},
        "versions": {"ctranslate2": ctranslate2.__version__, "torch": torch.__version__},
        "decoding": f"greedy; output length forced equal ({new} new tokens per prompt) for both engines",
        "gpu": "not measured: no GPU in this session",
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
