"""CTranslate2 vs Hugging Face `generate` on the same NLLB-architecture model.

Same model: one M2M100ForConditionalGeneration with random weights at the NLLB-200-distilled-600M
shape (d_model 1024, 12+12 layers, 16 heads, ffn 4096, vocab 256,206), converted in memory to
CTranslate2 (float32 on disk; int8 chosen at load time). Same inputs: token sequences whose
lengths follow real Alpaca translation units (the units `segment` makes from alpaca_5000, or
from the embedded sample without the shared data), at ~1.3 NLLB tokens per word plus the two
special tokens, in the same length-sorted batches for both engines. Greedy decoding, the target
language forced as the first token, and output lengths forced equal (CTranslate2
min_decoding_length = max_decoding_length; HF min_new_tokens = max_new_tokens), so both engines
produce exactly the same number of target tokens. Same threads (torch.set_num_threads =
intra_threads = the core count).

Reported: target tokens/s of CTranslate2 int8 (what users run on CPU), CTranslate2 float32 (the
like-for-like precision) and PyTorch float32, and both ratios. quick=True uses a smaller shape.
"""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.shared_data import SHARED_ALPACA

WORK = Path(__file__).resolve().parent / "work" / "translate"
QUICK_ARCH = {"d_model": 256, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
              "decoder_attention_heads": 4, "encoder_ffn_dim": 1024, "decoder_ffn_dim": 1024,
              "max_position_embeddings": 1024}
QUICK_VOCAB = 16_000
TOKENS_PER_WORD = 1.3  # NLLB's 256k SentencePiece vocabulary on English prose


def _unit_lengths(n: int, seed: int) -> list[int]:
    """Token lengths of n real translation units (sentences and fragments), seeded sample."""
    from dataset_builder.ingest import embedded_sample_path
    from dataset_builder.segment import segment

    path = SHARED_ALPACA if SHARED_ALPACA.exists() else embedded_sample_path()
    records = json.loads(path.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    units: list[str] = []
    for record in rng.sample(records, min(len(records), 4 * n)):
        for field in ("instruction", "input", "output"):
            units.extend(segment(record[field]).units)
    picked = rng.sample(units, n)
    return [min(200, max(3, round(len(u.split()) * TOKENS_PER_WORD) + 2)) for u in picked]


def _build(arch: dict[str, int], vocab: int, out: Path) -> Any:
    import torch
    from ctranslate2.converters.transformers import M2M100Loader
    from transformers import M2M100ForConditionalGeneration

    from benchmarks.random_weights import save_ct2
    from dataset_builder.models.smoke import nllb_config

    torch.manual_seed(0)
    model = M2M100ForConditionalGeneration(nllb_config(vocab, arch)).eval()
    save_ct2(M2M100Loader(), model, vocab, "float32", out)
    return model


def _batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _inputs(lengths: list[int], vocab: int, seed: int) -> list[list[int]]:
    """Random ids (the weights are random too) of the given lengths: [src_lang, ..., </s>]."""
    rng = random.Random(seed)
    lang = vocab - 100  # stands in for eng_Latn, a language code near the end of NLLB's vocabulary
    return [[lang, *(rng.randrange(4, vocab - 300) for _ in range(n - 2)), 2] for n in lengths]


def _ct2_run(model_dir: Path, compute_type: str, threads: int, inputs: list[list[int]],
             batches: list[list[int]], target_lang: int) -> tuple[float, float, int]:
    import ctranslate2

    translator = ctranslate2.Translator(str(model_dir), device="cpu", compute_type=compute_type,
                                        intra_threads=threads, inter_threads=1)
    tokens = [[f"t{i}" if i >= 4 else ("<s>", "<pad>", "</s>", "<unk>")[i] for i in ids] for ids in inputs]
    prefix = f"t{target_lang}"
    translator.translate_batch([tokens[batches[0][0]]], target_prefix=[[prefix]], max_decoding_length=4)  # warm
    produced = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for batch in batches:
        length = max(len(inputs[i]) for i in batch)  # output length = the batch's longest input
        results = translator.translate_batch(
            [tokens[i] for i in batch], target_prefix=[[prefix]] * len(batch), beam_size=1,
            min_decoding_length=length, max_decoding_length=length, max_input_length=0)
        for result in results:
            assert len(result.hypotheses[0]) == length, (len(result.hypotheses[0]), length)
            produced += length
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    del translator
    gc.collect()
    return seconds, cpu_seconds, produced


def _hf_run(model: Any, threads: int, inputs: list[list[int]], batches: list[list[int]], target_lang: int
            ) -> tuple[float, float, int]:
    import torch

    torch.set_num_threads(threads)
    produced = 0
    with torch.inference_mode():
        def generate(batch: list[int], length: int) -> Any:
            width = max(len(inputs[i]) for i in batch)
            ids = torch.full((len(batch), width), 1, dtype=torch.long)  # right padding with <pad>
            for row, i in enumerate(batch):
                ids[row, :len(inputs[i])] = torch.tensor(inputs[i])
            return model.generate(input_ids=ids, attention_mask=(ids != 1).long(), forced_bos_token_id=target_lang,
                                  do_sample=False, num_beams=1, min_new_tokens=length, max_new_tokens=length)

        generate(batches[0][:1], 4)  # warm-up
        started, cpu_started = time.perf_counter(), time.process_time()
        for batch in batches:
            length = max(len(inputs[i]) for i in batch)
            out = generate(batch, length)
            new = out.shape[1] - 1  # minus the decoder start token; the forced language token counts
            assert new == length, (new, length)
            produced += new * len(batch)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return seconds, cpu_seconds, produced


def run(quick: bool = False, threads: int | None = None) -> dict[str, Any]:
    """`threads` (default: the core count) is used by both engines alike."""
    import ctranslate2
    import torch

    from dataset_builder.devices import cpu_threads
    from dataset_builder.models.smoke import NLLB_600M_ARCH, NLLB_VOCAB_SIZE

    arch, vocab = (QUICK_ARCH, QUICK_VOCAB) if quick else (NLLB_600M_ARCH, NLLB_VOCAB_SIZE)
    # Full: 48 sentences in 3 batches keeps PyTorch (the slow side) to a few minutes on 2 cores.
    sentences, batch_size = (16, 8) if quick else (48, 16)
    threads = threads or cpu_threads()
    torch.set_num_threads(threads)
    model_dir = WORK / ("quick" if quick else "nllb-600m-shape")

    load_before = os.getloadavg()[0]  # other processes on the cores skew multi-threaded timings
    started = time.perf_counter()
    model = _build(arch, vocab, model_dir)
    build_seconds = time.perf_counter() - started
    lengths = _unit_lengths(sentences, seed=0)
    inputs = _inputs(lengths, vocab, seed=0)
    batches = _batches(lengths, batch_size)
    target_lang = vocab - 50  # stands in for fra_Latn

    ct2_int8_s, ct2_int8_cpu, ct2_int8_tokens = _ct2_run(model_dir, "int8", threads, inputs, batches, target_lang)
    ct2_fp32_s, ct2_fp32_cpu, ct2_fp32_tokens = _ct2_run(model_dir, "float32", threads, inputs, batches,
                                                         target_lang)
    hf_s, hf_cpu, hf_tokens = _hf_run(model, threads, inputs, batches, target_lang)
    assert ct2_int8_tokens == ct2_fp32_tokens == hf_tokens  # same work for every engine
    shutil.rmtree(model_dir, ignore_errors=True)  # ~2.4 GB at the full shape

    int8_rate, fp32_rate, hf_rate = ct2_int8_tokens / ct2_int8_s, ct2_fp32_tokens / ct2_fp32_s, hf_tokens / hf_s
    shape = (f"d{arch['d_model']} L{arch['encoder_layers']}+{arch['decoder_layers']} H{arch['encoder_attention_heads']}"
             f" ffn{arch['encoder_ffn_dim']} V{vocab}")
    return {
        "summary": {
            "ct2_int8_tok_s": round(int8_rate, 1),
            "ct2_fp32_tok_s": round(fp32_rate, 1),
            "hf_fp32_tok_s": round(hf_rate, 1),
            "ratio_ct2_int8_vs_hf": round(int8_rate / hf_rate, 2),
            "ratio_ct2_fp32_vs_hf": round(fp32_rate / hf_rate, 2),
            # CPU seconds per token: robust when other processes share the cores (exact at 1 thread;
            # with more threads it includes OpenMP spin-waiting).
            "cpu_ratio_int8_vs_hf": round(hf_cpu / ct2_int8_cpu, 2),
            "cpu_ratio_fp32_vs_hf": round(hf_cpu / ct2_fp32_cpu, 2),
            "shape": shape,
            "device": "cpu",
            "threads": threads,
        },
        "shape": {**arch, "vocab_size": vocab,
                  "parameters": sum(p.numel() for p in model.parameters())},
        "real_nllb_600m_shape": not quick,
        "sentences": sentences, "batch_size": batch_size, "batches": len(batches),
        "input_tokens": sum(lengths), "target_tokens": hf_tokens,
        "length_mix": {"min": min(lengths), "median": sorted(lengths)[len(lengths) // 2], "max": max(lengths)},
        "seconds": {"build_and_convert": round(build_seconds, 1), "ct2_int8": round(ct2_int8_s, 2),
                    "ct2_float32": round(ct2_fp32_s, 2), "hf_float32": round(hf_s, 2)},
        "cpu_seconds": {"ct2_int8": round(ct2_int8_cpu, 2), "ct2_float32": round(ct2_fp32_cpu, 2),
                        "hf_float32": round(hf_cpu, 2)},
        "versions": {"ctranslate2": ctranslate2.__version__, "torch": torch.__version__},
        "decoding": "greedy; output length forced = longest input of the batch, for both engines",
        "gpu": "not measured: no GPU in this session",
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
