"""The responder: an instruction-tuned causal LM on CTranslate2's Generator (Bactrian-X's recipe).

`models.responder` is `smoke` (the smoke Llama of smoke.py, converted), a Hub id (downloaded, converted
and cached), an HF model directory (converted and cached) or a CTranslate2 directory (used as is).
Any architecture CTranslate2's TransformersConverter takes works: Llama, Qwen2/3, Gemma, Mistral, Phi-3.
A prepared directory holds model.bin, the HF tokenizer files (with the chat template) and a
manifest.json {kind: responder, fingerprint, smoke, context_tokens}; a smoke fingerprint starts with
`smoke:`, so its answers can never pass for real.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dataset_builder.models.convert import (
    content_digest,
    conversion_cache_dir,
    convert_generator,
    weights_quantization,
)
from dataset_builder.models.lm import _download
from dataset_builder.models.smoke import build_smoke_responder
from schemas.artifacts import write_json
from schemas.errors import PolyinstructError
from schemas.models import HUB_ID, MANIFEST, SMOKE, SMOKE_MODEL_PREFIX, read_manifest
from schemas.params import Params


def is_generator_dir(path: Path) -> bool:
    return path.is_dir() and (path / "model.bin").exists() and (path / "config.json").exists()


def _quantization(params: Params) -> str:
    return weights_quantization(params.responses.compute_type)


def _cached(hf_dir: Path, model_id: str, revision: str, smoke: bool, params: Params) -> Path:
    quantization = _quantization(params)
    cached = conversion_cache_dir(Path(params.models.cache_dir) / "responder", model_id, revision, quantization)
    if not is_generator_dir(cached) or not read_manifest(cached).get("fingerprint"):
        convert_generator(hf_dir, cached, quantization, model_id, revision, smoke)
    return cached


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
