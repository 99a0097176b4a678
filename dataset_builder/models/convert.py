"""What the translation model (nllb.py), the base LM (lm.py), the responder (responder.py) and the smoke
models (smoke.py) share: Hub download, model-directory checks, CTranslate2 conversion, its manifest and
its cache, and the atomic swap of a finished build into place."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from schemas.artifacts import write_json
from schemas.errors import PolyinstructError
from schemas.models import HUB_ID, MANIFEST, SMOKE_MODEL_PREFIX, TOKENIZER_FILES

WEIGHT_PATTERNS: tuple[str, ...] = ("*.safetensors", "*.bin")
# What a CTranslate2 NLLB directory needs to tokenize: a fast tokenizer or the NLLB sentencepiece model.
NLLB_TOKENIZER_FILES: tuple[str, ...] = ("tokenizer.json", "sentencepiece.bpe.model")
# Copied next to model.bin when the source has them: NLLB's tokenizer files, a generator's (with chat template).
NLLB_TOKENIZER_COPY: tuple[str, ...] = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "sentencepiece.bpe.model", "added_tokens.json", "generation_config.json")
GENERATOR_TOKENIZER_COPY: tuple[str, ...] = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                             "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                                             "chat_template.jinja", "chat_template.json", "generation_config.json")


class ConversionError(PolyinstructError):
    """CTranslate2 cannot convert the HF model at `hf_dir` (an architecture its converter lacks)."""

    def __init__(self, message: str, hf_dir: Path, reason: str) -> None:
        super().__init__(message)
        self.hf_dir, self.reason = hf_dir, reason


def first_line(err: BaseException) -> str:
    """An exception's first line, or its type name when it has no text."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def content_digest(directory: Path, names: list[str] | None = None) -> str:
    """sha256 over the names and contents of the top-level files of `directory` (or `names`)."""
    digest = hashlib.sha256()
    files = sorted(names if names is not None else
                   (p.name for p in directory.iterdir() if p.is_file() and p.name != MANIFEST))
    for name in files:
        path = directory / name
        if path.is_file():
            with path.open("rb") as fh:
                file_sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
            digest.update(name.encode() + b"\0" + file_sha256.encode() + b"\n")
    return digest.hexdigest()


def replace_dir(built: Path, out: Path) -> None:
    """Move a finished build into place, so a killed build never leaves half a model at `out`."""
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    built.rename(out)


@contextmanager
def building(out: Path, label: str) -> Iterator[Path]:
    """A fresh folder next to `out` to build in: moved to `out` when the block ends, removed if it fails."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.{label}-", dir=out.parent))
    try:
        yield work / "build"
        replace_dir(work / "build", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_nllb_tokenizer(model_dir: Path) -> None:
    if not any((model_dir / f).exists() for f in NLLB_TOKENIZER_FILES):
        raise PolyinstructError(
            f"{model_dir}: no tokenizer (expected {' or '.join(NLLB_TOKENIZER_FILES)}); convert the model with"
            " `polyinstruct model convert`, which copies the tokenizer files, or copy them from the Hugging Face"
            " model directory into this one"
        )


def validate_model_dir(model_dir: Path) -> None:
    """A base LM directory needs a config, weights and a tokenizer; say which is missing."""
    if not (model_dir / "config.json").exists():
        raise PolyinstructError(f"{model_dir}: no config.json; point --base-model at a Hugging Face model directory"
                                " (save_pretrained output), a Hub id, or `smoke`")
    if not any(next(model_dir.glob(p), None) for p in WEIGHT_PATTERNS):
        raise PolyinstructError(f"{model_dir}: no model weights (*.safetensors or *.bin); copy the complete model"
                                " directory")
    if not any((model_dir / f).exists() for f in TOKENIZER_FILES):
        raise PolyinstructError(f"{model_dir}: no tokenizer (expected one of {', '.join(TOKENIZER_FILES)}); save "
                                "the tokenizer with tokenizer.save_pretrained(DIR) into the model directory")


def hub_download(hub_id: str, cache_dir: Path | None, patterns: list[str], failed: str, remedy: str) -> Path:
    """Download (or find in the HF cache) the files of a Hub model matching `patterns`; on failure one
    line: `{failed} ({error type}: {reason}){remedy}`."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=hub_id, cache_dir=str(cache_dir) if cache_dir else None,
                                      allow_patterns=patterns))
    except Exception as err:  # the Hub client raises many types: offline, 401/403 gated, 404, timeouts
        raise PolyinstructError(f"{failed} ({type(err).__name__}: {first_line(err)[:160]}){remedy}") from None


def ct2_convert(hf_dir: Path, out: Path, quantization: str | None, copy_files: Sequence[str], remedy: str) -> None:
    """TransformersConverter into `out` with the tokenizer files of `copy_files` the source has; a model
    CTranslate2 cannot convert raises ConversionError (`{hf_dir}: CTranslate2 cannot convert ...; {remedy}`)."""
    from ctranslate2.converters import TransformersConverter

    copy = [name for name in copy_files if (hf_dir / name).exists()]
    try:
        TransformersConverter(str(hf_dir), copy_files=copy).convert(str(out), quantization=quantization, force=True)
    except (ValueError, NotImplementedError, OSError, KeyError) as err:
        reason = first_line(err)[:200]
        raise ConversionError(f"{hf_dir}: CTranslate2 cannot convert this model ({reason}); {remedy}", hf_dir,
                              reason) from None


def write_manifest(out: Path, kind: str, model_id: str, revision: str | None, quantization: str, smoke: bool,
                   **extra: Any) -> dict[str, Any]:
    """The manifest of a converted model; its fingerprint (what rows record as their model) starts with
    `smoke:` for a smoke model and ends with a hash of the directory's files."""
    import ctranslate2

    digest = content_digest(out)[:16]
    name = model_id if HUB_ID.match(model_id) and not smoke else Path(model_id).name
    manifest = {
        "kind": kind,
        "model_id": model_id,
        "revision": revision,
        "quantization": quantization,
        "converter_version": ctranslate2.__version__,
        "smoke": smoke,
        "fingerprint": f"{SMOKE_MODEL_PREFIX if smoke else ''}{name}@{revision or 'local'}:{quantization}:{digest}",
        **extra,
    }
    write_json(manifest, out / MANIFEST)
    return manifest


def weights_quantization(compute_type: str) -> str:
    """Weights on disk: int8 serves both auto compute types (int8 on CPU, int8_float16 on GPU)."""
    return "int8" if compute_type == "auto" else compute_type


def conversion_cache_dir(cache_root: Path, model_id: str, revision: str, quantization: str) -> Path:
    """Where a conversion of (model, revision, quantization) is kept under `cache_root`."""
    key = hashlib.sha256(f"{model_id}\0{revision}\0{quantization}".encode()).hexdigest()[:16]
    return cache_root / key


def convert_nllb(hf_dir: Path, out: Path, quantization: str | None) -> None:
    """An NLLB/M2M100 HF model to CTranslate2 in `out`, with its tokenizer files (no manifest)."""
    check_nllb_tokenizer(hf_dir)
    ct2_convert(hf_dir, out, quantization, NLLB_TOKENIZER_COPY,
                "pass an NLLB/M2M100 Hugging Face model directory or Hub id")


def context_tokens_of(hf_dir: Path) -> int:
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    text = config.get("text_config", config)  # multimodal configs (Gemma 3) nest the LM's
    return int(text.get("max_position_embeddings") or text.get("n_positions") or 2048)


def convert_generator(hf_dir: Path, out: Path, quantization: str, model_id: str, revision: str, smoke: bool) -> Path:
    """An HF causal LM to a CTranslate2 Generator in `out` atomically, tokenizer and manifest included."""
    validate_model_dir(hf_dir)
    with building(out, "convert") as built:
        ct2_convert(hf_dir, built, quantization, GENERATOR_TOKENIZER_COPY,
                    "pass a Llama, Qwen2/3, Gemma, Mistral or Phi-3 instruction model")
        write_manifest(built, "responder", model_id, revision, quantization, smoke,
                       context_tokens=context_tokens_of(hf_dir))
    return out
