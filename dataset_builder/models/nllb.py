"""NLLB-200 translation models on CTranslate2: convert, prepare and resolve `--model`.

A prepared model directory is a CTranslate2 model (model.bin, config.json, shared_vocabulary.json)
plus the Hugging Face tokenizer files and a `manifest.json`:
{model_id, revision, quantization, converter_version, smoke, fingerprint}. The fingerprint is what
every translated row records in its `model` column and what keys the translation memory; for a
smoke model it starts with `smoke:`, so smoke output can never pass for real.

The smoke model (`smoke`) is built by smoke.py; conversion, download and manifests are shared with
the responder in convert.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dataset_builder.models.convert import (
    building,
    check_nllb_tokenizer,
    content_digest,
    conversion_cache_dir,
    convert_nllb,
    first_line,
    hub_download,
    replace_dir,
    weights_quantization,
    write_manifest,
)
from dataset_builder.models.smoke import build_smoke_nllb
from schemas.errors import PolyinstructError
from schemas.models import HUB_ID, SMOKE, SMOKE_MODEL_PREFIX, read_manifest
from schemas.params import Params

QUANTIZATIONS: tuple[str, ...] = ("int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16", "float16",
                                  "bfloat16", "float32")
CT2_FILES: tuple[str, ...] = ("model.bin", "config.json")


def is_ct2_dir(path: Path) -> bool:
    return path.is_dir() and all((path / f).exists() for f in CT2_FILES) and (path / "shared_vocabulary.json"
                                                                              ).exists()


def model_fingerprint(model_dir: Path) -> tuple[str, bool]:
    """(fingerprint, smoke) of a CTranslate2 model directory; hashed from its files if no manifest."""
    manifest = read_manifest(model_dir)
    if manifest.get("fingerprint"):
        return str(manifest["fingerprint"]), bool(manifest.get("smoke", False))
    smoke = bool(manifest.get("smoke", False))
    return f"{SMOKE_MODEL_PREFIX if smoke else ''}{model_dir.name}@local:{content_digest(model_dir)[:16]}", smoke


def _convert_to(source: Path, out: Path, quantization: str | None, model_id: str, revision: str | None,
                smoke: bool) -> Path:
    """Convert `source` (an HF model directory) into `out` atomically, manifest included."""
    with building(out, "convert") as built:
        convert_nllb(source, built, quantization)
        write_manifest(built, "translation", model_id, revision, quantization or "float32", smoke)
    return out


def _local_identity(source: Path) -> tuple[str, str, bool]:
    """(model_id, revision, smoke) of a local HF directory: from its manifest, else its content."""
    upstream = read_manifest(source)
    revision = upstream.get("revision") or f"sha256-{content_digest(source)[:12]}"
    return str(upstream.get("model_id", source.resolve().name)), str(revision), bool(upstream.get("smoke", False))


def convert_model(id_or_dir: str, out: Path, quantization: str = "int8") -> Path:
    """Convert a Hugging Face NLLB model (directory or Hub id) to CTranslate2 in `out`, with its
    tokenizer files and a manifest."""
    if quantization not in QUANTIZATIONS:
        raise PolyinstructError(f"--quantization {quantization}: choose one of {', '.join(QUANTIZATIONS)}")
    source = Path(id_or_dir)
    if source.is_dir():
        if not (source / "config.json").exists():
            raise PolyinstructError(f"{source}: no config.json; pass a Hugging Face model directory"
                                    " (save_pretrained output) or a Hub id such as facebook/nllb-200-distilled-600M")
        model_id, revision, smoke = _local_identity(source)
    elif HUB_ID.match(id_or_dir):
        source, revision = _snapshot(id_or_dir)
        model_id, smoke = id_or_dir, False
    else:
        raise PolyinstructError(f"{id_or_dir}: no such directory and not a Hub id (ORG/NAME); pass a Hugging Face"
                                " model directory or a Hub id such as facebook/nllb-200-distilled-600M")
    return _convert_to(source, Path(out), quantization, model_id, revision, smoke)


def _snapshot(hub_id: str, cache_dir: Path | None = None) -> tuple[Path, str]:
    """Download (or find in the HF cache) a Hub model; one-line error naming the remedies offline.
    Weights as safetensors when the repository has them, else pytorch_model.bin (never both)."""
    def fetch(weights: str) -> Path:
        return hub_download(
            hub_id, cache_dir, ["*.json", "*.model", "tokenizer*", weights],
            f"translation model '{hub_id}' is not a local directory and the Hugging Face Hub download failed",
            "; connect to the network (and unset HF_HUB_OFFLINE=1), or download it elsewhere and pass the local"
            " directory with --model DIR, or use --model smoke")

    path = fetch("*.safetensors")
    if not any(path.glob("*.safetensors")):
        path = fetch("pytorch_model*.bin")
    if not any(path.glob("*.safetensors")) and not any(path.glob("pytorch_model*.bin")):
        raise PolyinstructError(f"{hub_id}: the Hub snapshot at {path} holds no weights; check the model id")
    return path, path.name  # the snapshot folder is named by the commit hash


# --- --model resolution ---------------------------------------------------------------------------


def _materialise(source: Path, out: Path) -> Path:
    """Put a copy of a prepared model directory at `out` (hard links when possible: no extra disk)."""
    if out.exists() and out.resolve() == source.resolve():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.copy-", dir=out.parent))
    try:
        target = work / "model"

        def link_or_copy(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        shutil.copytree(source, target, copy_function=link_or_copy)
        replace_dir(target, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _cached_conversion(hf_dir: Path, model_id: str, revision: str, smoke: bool, params: Params) -> Path:
    """Convert once per (model, revision, quantization) into models.cache_dir; reuse afterwards."""
    quantization = weights_quantization(params.translate.compute_type)
    cached = conversion_cache_dir(Path(params.models.cache_dir) / "translation", model_id, revision, quantization)
    if not is_ct2_dir(cached) or not read_manifest(cached).get("fingerprint"):
        _convert_to(hf_dir, cached, quantization, model_id, revision, smoke)
    return cached


def resolve_translation_model(spec: str, params: Params) -> Path:
    """The CTranslate2 directory to translate with, for any `--model` value: a CTranslate2 dir as is;
    `smoke` built once into the cache; an HF dir or Hub id converted once into the cache."""
    path = Path(spec)
    if path.exists():
        if not path.is_dir():
            raise PolyinstructError(f"--model {spec}: is a file; pass a model directory, a Hub id or `smoke`")
        if is_ct2_dir(path):
            check_nllb_tokenizer(path)
            return path
        if not (path / "config.json").exists():
            raise PolyinstructError(f"--model {spec}: neither a CTranslate2 model (model.bin) nor a Hugging Face"
                                    " model (config.json); run `polyinstruct model prepare` or pass `smoke`")
        check_nllb_tokenizer(path)
        return _cached_conversion(path, *_local_identity(path), params)
    if spec == SMOKE:
        cached = Path(params.models.cache_dir) / f"smoke-nllb-seed{params.models.smoke_seed}"
        if read_manifest(cached).get("seed") != params.models.smoke_seed or not is_ct2_dir(cached):
            build_smoke_nllb(cached, params.models.smoke_seed)
        return cached
    if HUB_ID.match(spec):
        snapshot, revision = _snapshot(spec, Path(params.models.cache_dir) / "hub")
        check_nllb_tokenizer(snapshot)
        return _cached_conversion(snapshot, spec, revision, False, params)
    raise PolyinstructError(f"--model {spec}: no such directory and not a Hub id (ORG/NAME); pass a CTranslate2 or"
                            " Hugging Face model directory, a Hub id such as facebook/nllb-200-distilled-600M,"
                            " or `smoke`")


def prepare_translation_model(spec: str, out: Path, params: Params) -> Path:
    """Make `out` a ready CTranslate2 model directory (with tokenizer and manifest) from `spec`:
    `smoke`, a CTranslate2 dir, an HF model dir or a Hub id. Conversions are cached by content."""
    out = Path(out)
    if spec == SMOKE:
        return build_smoke_nllb(out, params.models.smoke_seed)
    source = resolve_translation_model(spec, params)
    _materialise(source, out)
    if not read_manifest(out).get("fingerprint"):  # a user's CTranslate2 dir without our manifest
        write_manifest(out, "translation", Path(spec).resolve().name, None, "unknown", False)
    return out


def load_tokenizer(model_dir: Path, src_lang: str) -> Any:
    """The NLLB tokenizer saved next to a CTranslate2 model, set to encode `src_lang`."""
    from transformers import NllbTokenizer

    check_nllb_tokenizer(model_dir)
    try:
        return NllbTokenizer.from_pretrained(str(model_dir), src_lang=src_lang)
    except Exception as err:  # noqa: BLE001 - corrupt or foreign tokenizer files: name the directory
        raise PolyinstructError(f"{model_dir}: cannot load its NLLB tokenizer ({first_line(err)[:200]}); re-run"
                                " `polyinstruct model convert` on the Hugging Face model") from None
