"""The responder: an instruction-tuned causal LM on CTranslate2's Generator (Bactrian-X's recipe).

`models.responder` is `smoke` (the smoke Llama of lm.py, converted), a Hub id (downloaded, converted
and cached), an HF model directory (converted and cached) or a CTranslate2 directory (used as is).
Any architecture CTranslate2's TransformersConverter takes works: Llama, Qwen2/3, Gemma, Mistral, Phi-3.
A prepared directory holds model.bin, the HF tokenizer files (with the chat template) and a
manifest.json {kind: responder, fingerprint, smoke, context_tokens}; a smoke fingerprint starts with
`smoke:`, so its answers can never pass for real.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dataset_builder.models.lm import _download, build_smoke_lm, validate_model_dir
from dataset_builder.models.nllb import content_digest
from schemas.artifacts import write_json
from schemas.errors import PolyinstructError
from schemas.models import HUB_ID, MANIFEST, SMOKE_MODEL_PREFIX, read_manifest
from schemas.params import Params

SMOKE = "smoke"
# Tokenizer and chat-template files copied next to model.bin, when the source has them.
TOKENIZER_COPY: tuple[str, ...] = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                   "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                                   "chat_template.jinja", "chat_template.json", "generation_config.json")


class ConversionError(PolyinstructError):
    """CTranslate2 cannot convert the HF model at `hf_dir` (an architecture its converter lacks)."""

    def __init__(self, message: str, hf_dir: Path, reason: str) -> None:
        super().__init__(message)
        self.hf_dir, self.reason = hf_dir, reason


def is_generator_dir(path: Path) -> bool:
    return path.is_dir() and (path / "model.bin").exists() and (path / "config.json").exists()


def context_tokens_of(hf_dir: Path) -> int:
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    text = config.get("text_config", config)  # multimodal configs (Gemma 3) nest the LM's
    return int(text.get("max_position_embeddings") or text.get("n_positions") or 2048)


def _convert(hf_dir: Path, out: Path, quantization: str, model_id: str, revision: str, smoke: bool) -> Path:
    """Convert an HF causal LM into `out` atomically, tokenizer and manifest included."""
    from ctranslate2.converters import TransformersConverter

    validate_model_dir(hf_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.convert-", dir=out.parent))
    try:
        built = work / "ct2"
        copy = [name for name in TOKENIZER_COPY if (hf_dir / name).exists()]
        try:
            TransformersConverter(str(hf_dir), copy_files=copy).convert(str(built), quantization=quantization,
                                                                         force=True)
        except (ValueError, NotImplementedError, OSError, KeyError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConversionError(f"{hf_dir}: CTranslate2 cannot convert this model ({first[:200]}); pass a"
                                  " Llama, Qwen2/3, Gemma, Mistral or Phi-3 instruction model", hf_dir,
                                  first[:200]) from None
        import ctranslate2

        name = model_id if HUB_ID.match(model_id) and not smoke else Path(model_id).name
        write_json({
            "kind": "responder", "model_id": model_id, "revision": revision, "quantization": quantization,
            "converter_version": ctranslate2.__version__, "smoke": smoke, "context_tokens": context_tokens_of(hf_dir),
            "fingerprint": f"{SMOKE_MODEL_PREFIX if smoke else ''}{name}@{revision}:{quantization}:"
                           f"{content_digest(built)[:16]}",
        }, built / MANIFEST)
        if out.exists():
            shutil.rmtree(out)
        built.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _quantization(params: Params) -> str:
    """int8 weights serve both auto compute types (int8 on CPU, int8_float16 on GPU)."""
    compute = params.responses.compute_type
    return "int8" if compute == "auto" else compute


def _cached(hf_dir: Path, model_id: str, revision: str, smoke: bool, params: Params) -> Path:
    quantization = _quantization(params)
    key = hashlib.sha256(f"{model_id}\0{revision}\0{quantization}".encode()).hexdigest()[:16]
    cached = Path(params.models.cache_dir) / "responder" / key
    if not is_generator_dir(cached) or not read_manifest(cached).get("fingerprint"):
        _convert(hf_dir, cached, quantization, model_id, revision, smoke)
    return cached


# A random LM almost never samples EOS, so every smoke answer would run to max_new_tokens and be
# rejected as truncated. One hidden dimension is therefore wired to carry a constant (a fixed embedding
# component that no layer writes to), and lm_head reads it: the EOS row so that, sampled at temperature 1, EOS comes
# with probability ~0.1 per token (about ten tokens per answer; greedy decoding would stop at once), and
# the rows of byte-level tokens that are not whole UTF-8 characters so that they are never sampled
# (their bytes would decode to U+FFFD, which the filter rightly rejects as bad_chars).
SMOKE_STOP_EMBEDDING = 2.0
SMOKE_STOP_LOGIT = 5.0
SMOKE_BANNED_LOGIT = -30.0
BAD_CHAR = re.compile("[\ufffd\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what the filter's bad_chars check rejects


def _wire_smoke_behaviour(hf_dir: Path, seed: int) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(str(hf_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    eos = model.config.eos_token_id
    # Not whole characters, or control characters: random byte soup a real LM would not emit.
    partial = [i for i in range(len(tokenizer)) if BAD_CHAR.search(tokenizer.decode([i]))]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = SMOKE_STOP_EMBEDDING
        for layer in model.model.layers:  # nothing writes into dimension 0 of the residual stream
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        model.lm_head.weight[:, 0] = 0.0
        sample = torch.randint(16, model.config.vocab_size, (16, 32), generator=generator)
        carried = float(model.model(sample).last_hidden_state[..., 0].mean())
        model.lm_head.weight[eos, 0] = SMOKE_STOP_LOGIT / carried
        model.lm_head.weight[partial, 0] = SMOKE_BANNED_LOGIT / carried
    model.save_pretrained(str(hf_dir))


def build_smoke_responder(out: Path, seed: int = 0, quantization: str = "int8") -> Path:
    """The smoke Llama (random weights, a simple chat template, EOS wired to be sampled now and then)
    converted to CTranslate2 in `out`. Its answers are noise, and every row says smoke."""
    with tempfile.TemporaryDirectory(prefix="smoke-responder-") as tmp:
        hf_dir = build_smoke_lm(Path(tmp) / "hf", seed)
        _wire_smoke_behaviour(hf_dir, seed)
        return _convert(hf_dir, Path(out), quantization, f"smoke-llama-seed{seed}", f"seed-{seed}", True)


def resolve_responder(spec: str, params: Params) -> Path:
    """The CTranslate2 directory to generate with, for any `--model` / `models.responder` value."""
    path = Path(spec)
    if path.exists():
        if not path.is_dir():
            raise PolyinstructError(f"--model {spec}: is a file; pass a model directory, a Hub id or `smoke`")
        if is_generator_dir(path):
            return path
        upstream = read_manifest(path)
        revision = str(upstream.get("revision") or f"sha256-{content_digest(path)[:12]}")
        return _cached(path, str(upstream.get("model_id", path.resolve().name)), revision,
                       bool(upstream.get("smoke", False)), params)
    if spec == SMOKE:
        quantization = _quantization(params)
        cached = Path(params.models.cache_dir) / f"smoke-responder-seed{params.models.smoke_seed}-{quantization}"
        if not is_generator_dir(cached) or not read_manifest(cached).get("fingerprint"):
            build_smoke_responder(cached, params.models.smoke_seed, quantization)
        return cached
    if HUB_ID.match(spec):
        snapshot = _download(spec, Path(params.models.cache_dir) / "hub")
        return _cached(snapshot, spec, snapshot.name, False, params)
    raise PolyinstructError(f"--model {spec}: no such directory and not a Hub id (ORG/NAME); pass a CTranslate2 or"
                            " Hugging Face model directory, a Hub id such as Qwen/Qwen2.5-7B-Instruct, or `smoke`")


def prepare_responder(spec: str, out: Path, params: Params) -> Path:
    """`polyinstruct model prepare --responder-out`: a ready CTranslate2 responder at `out`."""
    source = resolve_responder(spec, params)
    if Path(out).resolve() != source.resolve():
        if Path(out).exists():
            shutil.rmtree(out)
        shutil.copytree(source, out)
    if not read_manifest(out).get("fingerprint"):  # a user's CTranslate2 dir without our manifest
        write_json({"kind": "responder", "smoke": False, "context_tokens": 4096,
                    "fingerprint": f"{Path(spec).resolve().name}@local:{content_digest(Path(out))[:16]}"},
                   Path(out) / MANIFEST)
    return Path(out)


def responder_identity(model_dir: Path) -> tuple[str, bool, int]:
    """(fingerprint, smoke, context tokens) of a prepared responder directory."""
    manifest: dict[str, Any] = read_manifest(model_dir)
    smoke = bool(manifest.get("smoke", False))
    fingerprint = str(manifest.get("fingerprint") or
                      f"{SMOKE_MODEL_PREFIX if smoke else ''}{model_dir.name}@local:{content_digest(model_dir)[:16]}")
    return fingerprint, smoke, int(manifest.get("context_tokens", 4096))
