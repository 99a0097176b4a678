"""`polyinstruct doctor`: what this machine can run, checked for real before a long job starts.

Python and package versions; CUDA devices as torch sees them (name, memory, bf16); whether CTranslate2
sees them too (its wheels need CUDA 12); one real translation with the smoke NLLB model on the CPU and
on each GPU; one real LoRA training step with the smoke base LM (on GPU 0 when present, with bf16 when
the GPU supports it). A machine without a GPU is not an error: it is reported as "no GPU"."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder.devices import cuda_device_count
from dataset_builder.models.nllb import load_tokenizer
from dataset_builder.models.smoke import build_smoke_lm, build_smoke_nllb

PACKAGES = ("torch", "ctranslate2", "transformers", "tokenizers", "trl", "peft", "accelerate", "datasets",
            "polars", "pyarrow", "duckdb", "great-expectations", "dvc", "ray")
SMOKE_SENTENCE = "Give three tips for staying healthy."


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DoctorReport:
    python: str
    packages: dict[str, str | None]
    torch_gpus: list[dict[str, Any]]
    ct2_gpus: int
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def summary(self) -> str:
        if not self.torch_gpus:
            return "no GPU: torch sees no CUDA device; translation and training run on the CPU"
        return f"{len(self.torch_gpus)} GPU(s) seen by torch, {self.ct2_gpus} by CTranslate2"

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "summary": self.summary(), "python": self.python, "packages": self.packages,
                "torch_gpus": self.torch_gpus, "ctranslate2_gpus": self.ct2_gpus,
                "checks": [vars(c) for c in self.checks]}


def package_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def torch_gpus() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append({"index": index, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                     "capability": f"{props.major}.{props.minor}",
                     "bf16": bool(torch.cuda.is_bf16_supported()) if index == 0 else None})
    return gpus


def translate_once(model_dir: Path, device: str, index: int = 0) -> str:
    """One real CTranslate2 translation (eng_Latn -> fra_Latn) on `device`:`index`."""
    import ctranslate2

    tokenizer = load_tokenizer(model_dir, "eng_Latn")
    translator = ctranslate2.Translator(str(model_dir), device=device, device_index=index,
                                        compute_type="int8_float16" if device == "cuda" else "int8")
    source = tokenizer.convert_ids_to_tokens(tokenizer(SMOKE_SENTENCE)["input_ids"])
    result = translator.translate_batch([source], target_prefix=[["fra_Latn"]], max_decoding_length=16)
    tokens = result[0].hypotheses[0]
    return tokenizer.decode(tokenizer.convert_tokens_to_ids(tokens), skip_special_tokens=True)


def training_step(model_dir: Path, device: str, bf16: bool) -> float:
    """One real LoRA optimisation step of the smoke base LM on `device`; returns the loss."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    dtype = torch.bfloat16 if bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype).to(device)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    batch = tokenizer([f"### Instruction:\n{SMOKE_SENTENCE}\n### Response:\nSleep, eat well, move."],
                      return_tensors="pt").to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    optimizer.step()
    if not torch.isfinite(loss.detach().float()):
        raise RuntimeError(f"training step loss is {loss.item()}")
    return float(loss.item())


def _timed(name: str, what: Any, *args: Any) -> Check:
    started = time.perf_counter()
    try:
        result = what(*args)
    except Exception as err:  # noqa: BLE001 - a failed check is reported, not raised
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return Check(name, False, f"{type(err).__name__}: {first[:300]}")
    shown = f"{result!r:.60}" if isinstance(result, str) else f"loss {result:.4f}"
    return Check(name, True, f"{shown} ({time.perf_counter() - started:.1f}s)")


def run_doctor(work_dir: Path | None = None, translate: bool = True, train: bool = True) -> DoctorReport:
    """Run every check; nothing raises (a failed check is in the report)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    gpus = torch_gpus()
    report = DoctorReport(python=f"{platform.python_version()} ({sys.executable})", packages=package_versions(),
                          torch_gpus=gpus, ct2_gpus=cuda_device_count())
    if gpus and report.ct2_gpus < len(gpus):
        report.checks.append(Check(
            "ctranslate2 sees the GPUs", False,
            f"torch sees {len(gpus)} GPU(s), CTranslate2 {report.ct2_gpus}: CTranslate2's wheels need the CUDA 12"
            " runtime (pip install '.[gpu]' -c constraints-gpu.txt; see README 'GPU machines')"))
    elif gpus:
        report.checks.append(Check("ctranslate2 sees the GPUs", True, f"{report.ct2_gpus} device(s)"))
    if gpus:
        bf16 = bool(gpus[0]["bf16"])
        report.checks.append(Check("bf16", True, "supported on GPU 0" if bf16 else "not supported: fp32 training"))
    with tempfile.TemporaryDirectory(prefix="polyinstruct-doctor-", dir=work_dir) as tmp:
        if translate:
            nllb = build_smoke_nllb(Path(tmp) / "nllb")
            report.checks.append(_timed("translate on cpu (smoke NLLB)", translate_once, nllb, "cpu", 0))
            for index in range(min(len(gpus), report.ct2_gpus)):
                report.checks.append(_timed(f"translate on cuda:{index} (smoke NLLB)", translate_once, nllb, "cuda",
                                            index))
        if train:
            lm = build_smoke_lm(Path(tmp) / "lm")
            device, bf16 = ("cuda:0", bool(gpus[0]["bf16"])) if gpus else ("cpu", False)
            precision = "bf16" if bf16 else "fp32"
            report.checks.append(_timed(f"training step on {device} ({precision}, smoke LM)", training_step, lm,
                                        device, bf16))
    return report
