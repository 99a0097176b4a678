"""NLLB-200 translation models on CTranslate2: convert, build the smoke model, prepare `--model`.

A prepared model directory is a CTranslate2 model (model.bin, config.json, shared_vocabulary.json)
plus the Hugging Face tokenizer files and a `manifest.json`:
{model_id, revision, quantization, converter_version, smoke, fingerprint}. The fingerprint is what
every translated row records in its `model` column and what keys the translation memory; for a
smoke model it starts with `smoke:`, so smoke output can never pass for real.

The smoke model has the real NLLB architecture (M2M100ForConditionalGeneration, pre-norm, scaled
embeddings, sinusoidal positions, tied output layer) at a tiny size, with random weights, and a
real `NllbTokenizer` whose BPE vocabulary is trained on the embedded sample plus every FLORES-200
code as a special token. Purely random weights never emit `</s>`, so every unit would run to
`max_decoding_length` and be flagged truncated, and the demo's quality stage would reject
everything. One cross-attention layer is therefore wired by hand (see `_wire_smoke_alignment`):
output token k attends to source token k, and the source `</s>` carries a signal that makes
the decoder emit `</s>`. So the smoke model stops near the source length, and the words it emits
are a deterministic token-by-token scramble of the source. It knows no language: its output is
gibberish, and says so in every row.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dataset_builder.ingest import embedded_sample_path
from schemas.artifacts import write_json
from schemas.errors import PolyinstructError
from schemas.languages import nllb_codes
from schemas.models import HUB_ID, MANIFEST, SMOKE_MODEL_PREFIX, read_manifest
from schemas.params import Params

SMOKE = "smoke"
QUANTIZATIONS: tuple[str, ...] = ("int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16", "float16",
                                  "bfloat16", "float32")
# What a CTranslate2 directory needs to tokenize: a fast tokenizer or the NLLB sentencepiece model.
TOKENIZER_FILES: tuple[str, ...] = ("tokenizer.json", "sentencepiece.bpe.model")
# Copied next to model.bin by `convert_model` when the source has them.
TOKENIZER_COPY: tuple[str, ...] = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                   "sentencepiece.bpe.model", "added_tokens.json", "generation_config.json")
CT2_FILES: tuple[str, ...] = ("model.bin", "config.json")

# NLLB-200-distilled-600M layout at a size that builds in about a second.
SMOKE_ARCH: dict[str, int] = {
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "max_position_embeddings": 1024,
}
SMOKE_VOCAB_SIZE = 2000  # BPE pieces, before <mask> and the 202 language codes
# Real NLLB shape, for the benchmark (facebook/nllb-200-distilled-600M config.json).
NLLB_600M_ARCH: dict[str, int] = {
    "d_model": 1024,
    "encoder_layers": 12,
    "decoder_layers": 12,
    "encoder_attention_heads": 16,
    "decoder_attention_heads": 16,
    "encoder_ffn_dim": 4096,
    "decoder_ffn_dim": 4096,
    "max_position_embeddings": 1024,
}
NLLB_VOCAB_SIZE = 256206

# Hand-wired smoke behaviour (see `_wire_smoke_alignment`).
_ALIGN_PAIRS = range(8)  # the 8 fastest sin/cos pairs of the positional encoding: a sharp, alias-free peak
_ALIGN_SHIFT = 0  # output token k reads source token k: the output is as long as the source
_ALIGN_SCALE = 10.0  # query/key gain: attention logit gap ~5 between the target position and its neighbours
_EOS_CHANNEL = 31  # slowest sin channel: ~0 for every position, free to carry the "end of source" signal
_ZERO_CHANNEL = 30  # next slowest sin channel, ~0 everywhere: absorbs LayerNorm's mean (see below)
_TOKEN_STD = 0.3  # per-channel scale of token embeddings: tokens, not positions, drive the output
_EOS_GAIN = 2.0  # </s> embedding along that channel: about the norm of an ordinary token embedding
_CROSS_GAIN = 20.0  # cross-attention output outweighs the previous token, so the output does not stutter


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


def is_ct2_dir(path: Path) -> bool:
    return path.is_dir() and all((path / f).exists() for f in CT2_FILES) and (path / "shared_vocabulary.json"
                                                                              ).exists()


def check_tokenizer(model_dir: Path) -> None:
    if not any((model_dir / f).exists() for f in TOKENIZER_FILES):
        raise PolyinstructError(
            f"{model_dir}: no tokenizer (expected {' or '.join(TOKENIZER_FILES)}); convert the model with"
            " `polyinstruct model convert`, which copies the tokenizer files, or copy them from the Hugging Face"
            " model directory into this one"
        )


def _write_manifest(out: Path, model_id: str, revision: str | None, quantization: str, smoke: bool,
                    **extra: Any) -> dict[str, Any]:
    import ctranslate2

    digest = content_digest(out)[:16]
    name = model_id if HUB_ID.match(model_id) and not smoke else Path(model_id).name
    manifest = {
        "kind": "translation",
        "model_id": model_id,
        "revision": revision,
        "quantization": quantization,
        "converter_version": ctranslate2.__version__,
        "smoke": smoke,
        # What rows record in `model`; `smoke:` prefix for smoke models, content hash for all.
        "fingerprint": f"{SMOKE_MODEL_PREFIX if smoke else ''}{name}@{revision or 'local'}:{quantization}:{digest}",
        **extra,
    }
    write_json(manifest, out / MANIFEST)
    return manifest


def model_fingerprint(model_dir: Path) -> tuple[str, bool]:
    """(fingerprint, smoke) of a CTranslate2 model directory; hashed from its files if no manifest."""
    manifest = read_manifest(model_dir)
    if manifest.get("fingerprint"):
        return str(manifest["fingerprint"]), bool(manifest.get("smoke", False))
    smoke = bool(manifest.get("smoke", False))
    return f"{SMOKE_MODEL_PREFIX if smoke else ''}{model_dir.name}@local:{content_digest(model_dir)[:16]}", smoke


def _replace_dir(built: Path, out: Path) -> None:
    """Move a finished build into place, so a killed build never leaves half a model at `out`."""
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    built.rename(out)


def _convert(hf_dir: Path, out: Path, quantization: str | None) -> None:
    from ctranslate2.converters import TransformersConverter

    check_tokenizer(hf_dir)
    copy = [name for name in TOKENIZER_COPY if (hf_dir / name).exists()]
    try:
        TransformersConverter(str(hf_dir), copy_files=copy).convert(str(out), quantization=quantization,
                                                                     force=True)
    except (ValueError, NotImplementedError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolyinstructError(f"{hf_dir}: CTranslate2 cannot convert this model ({first[:200]}); pass an NLLB/"
                                "M2M100 Hugging Face model directory or Hub id") from None


def _convert_to(source: Path, out: Path, quantization: str | None, model_id: str, revision: str | None,
                smoke: bool) -> Path:
    """Convert `source` (an HF model directory) into `out` atomically, manifest included."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.convert-", dir=out.parent))
    try:
        _convert(source, work / "ct2", quantization)
        _write_manifest(work / "ct2", model_id, revision, quantization or "float32", smoke)
        _replace_dir(work / "ct2", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
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
    from huggingface_hub import snapshot_download

    def fetch(weights: str) -> Path:
        return Path(snapshot_download(repo_id=hub_id, cache_dir=str(cache_dir) if cache_dir else None,
                                      allow_patterns=["*.json", "*.model", "tokenizer*", weights]))

    try:
        path = fetch("*.safetensors")
        if not any(path.glob("*.safetensors")):
            path = fetch("pytorch_model*.bin")
    except Exception as err:  # the Hub client raises many types: offline, 401/403 gated, 404, timeouts
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolyinstructError(
            f"translation model '{hub_id}' is not a local directory and the Hugging Face Hub download failed"
            f" ({type(err).__name__}: {reason[:160]}); connect to the network (and unset HF_HUB_OFFLINE=1), or"
            " download it elsewhere and pass the local directory with --model DIR, or use --model smoke"
        ) from None
    if not any(path.glob("*.safetensors")) and not any(path.glob("pytorch_model*.bin")):
        raise PolyinstructError(f"{hub_id}: the Hub snapshot at {path} holds no weights; check the model id")
    return path, path.name  # the snapshot folder is named by the commit hash


# --- the smoke model ------------------------------------------------------------------------------


def _smoke_tokenizer() -> Any:
    """A real NllbTokenizer with a BPE vocabulary trained on the embedded sample."""
    import json
    import string

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import NllbTokenizer

    records = json.loads(embedded_sample_path().read_text(encoding="utf-8"))
    # Lines, not whole fields: a unit never holds a line break, so the vocabulary needs no "\n" piece.
    corpus = [line for r in records for f in ("instruction", "input", "output") for line in r.get(f, "").split("\n")
              if line.strip()]
    bpe = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=SMOKE_VOCAB_SIZE, min_frequency=2, show_progress=False,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],  # NLLB's ids 0-3
        initial_alphabet=sorted(set(string.printable) - set(string.whitespace)),
    )
    bpe.train_from_iterator(corpus, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = NllbTokenizer(vocab=model["vocab"], merges=merges, src_lang="eng_Latn",
                              extra_special_tokens=list(nllb_codes()))
    tokenizer.model_max_length = SMOKE_ARCH["max_position_embeddings"]
    return tokenizer


def nllb_config(vocab_size: int, arch: dict[str, int]) -> Any:
    """An M2M100Config laid out like facebook/nllb-200-distilled-600M (ids, activation, norms)."""
    from transformers import M2M100Config

    return M2M100Config(
        vocab_size=vocab_size, activation_function="relu", scale_embedding=True, tie_word_embeddings=True,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
        dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, **arch,
    )


def _wire_smoke_alignment(model: Any, tokenizer: Any) -> None:
    """Make a random-weight model stop at the source length (see module docstring).

    Positions are sinusoids: dim j holds sin(p*f_j), dim 32+j cos(p*f_j). Rotating the query's
    sin/cos pairs by -shift makes q(t).k(s) = sum_j cos((t - shift - s) f_j), maximal at
    s = t - shift, so every head of the last decoder layer's cross-attention reads one source token.
    Its values pass through a random reflection Q (Q @ Q = I) of the token channels, and the
    embeddings are built in pairs with E[b] = Q E[a]: the tied output layer then emits the partner
    of each source token, a deterministic scramble. One channel is left out of Q; only the source
    `</s>` has it, and when the decoder reaches it, the output layer emits `</s>`.
    """
    import torch

    d = model.config.d_model
    half = d // 2
    align = [j for j in _ALIGN_PAIRS] + [half + j for j in _ALIGN_PAIRS]
    reserved = {*align, _EOS_CHANNEL, _ZERO_CHANNEL}
    free = torch.tensor([i for i in range(d) if i not in reserved])
    freqs = torch.exp(torch.arange(half, dtype=torch.float64) * -(torch.log(torch.tensor(10000.0,
                                                                                         dtype=torch.float64))
                                                                  / (half - 1)))
    # A random reflection of the free channels: symmetric and orthogonal, so it is its own inverse.
    basis, _ = torch.linalg.qr(torch.randn(len(free), len(free), dtype=torch.float64))
    signs = torch.where(torch.rand(len(free)) < 0.5, -1.0, 1.0).to(torch.float64)
    reflect = basis @ torch.diag(signs) @ basis.T

    vocab = model.config.vocab_size
    embeddings = torch.zeros(vocab, d, dtype=torch.float64)
    rows = torch.randn(vocab, len(free), dtype=torch.float64)
    rows *= _TOKEN_STD * len(free) ** 0.5 / rows.norm(dim=1, keepdim=True)  # equal norms: no hub tokens
    special = set(tokenizer.all_special_ids)
    ordinary = torch.tensor([i for i in range(vocab) if i not in special])
    ordinary = ordinary[torch.randperm(len(ordinary))]
    pairs = len(ordinary) // 2
    first, second = ordinary[:pairs], ordinary[pairs:2 * pairs]
    rows[second] = rows[first] @ reflect.T  # E[b] = Q E[a], and so E[a] = Q E[b]
    embeddings[:, free] = rows
    embeddings[tokenizer.eos_token_id] = 0.0
    embeddings[tokenizer.eos_token_id, _EOS_CHANNEL] = _EOS_GAIN
    embeddings[tokenizer.pad_token_id] = 0.0
    model.model.shared.weight.copy_(embeddings.float())

    cross = model.model.decoder.layers[-1].encoder_attn
    heads = model.config.decoder_attention_heads
    head_dim = d // heads
    if head_dim != len(align):
        raise ValueError(f"smoke alignment needs head_dim == {len(align)}, got {head_dim}")
    query = torch.zeros(head_dim, d, dtype=torch.float64)
    key = torch.zeros(head_dim, d, dtype=torch.float64)
    for row, j in enumerate(_ALIGN_PAIRS):  # query rotates (sin, cos) of pair j by -shift
        c, s = torch.cos(_ALIGN_SHIFT * freqs[j]), torch.sin(_ALIGN_SHIFT * freqs[j])
        query[row, j], query[row, half + j] = c, -s
        query[len(_ALIGN_PAIRS) + row, j], query[len(_ALIGN_PAIRS) + row, half + j] = s, c
        key[row, j] = 1.0
        key[len(_ALIGN_PAIRS) + row, half + j] = 1.0
    # LayerNorm subtracts each vector's mean from every channel; rows that sum to zero cancel it,
    # otherwise that random offset would swamp the position signal.
    query[:, _ZERO_CHANNEL] -= query.sum(dim=1)
    key[:, _ZERO_CHANNEL] -= key.sum(dim=1)
    cross.q_proj.weight.copy_((_ALIGN_SCALE * query).repeat(heads, 1).float())
    cross.k_proj.weight.copy_((_ALIGN_SCALE * key).repeat(heads, 1).float())
    value = torch.eye(d, dtype=torch.float64)
    value[free.unsqueeze(1), free] = reflect
    cross.v_proj.weight.copy_(value.float())
    cross.out_proj.weight.copy_(_CROSS_GAIN * torch.eye(d))
    for layer in (cross.q_proj, cross.k_proj, cross.v_proj, cross.out_proj):
        layer.bias.zero_()


def build_smoke_nllb(out: Path, seed: int = 0) -> Path:
    """Build the smoke NLLB model in `out` (replaced): the HF model in out/hf, the CTranslate2 model
    and tokenizer at the top, and a manifest with `smoke: true`. Same seed, same bytes."""
    import torch
    from transformers import M2M100ForConditionalGeneration

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    try:
        tokenizer = _smoke_tokenizer()
        config = nllb_config(len(tokenizer), SMOKE_ARCH)
        threads = torch.get_num_threads()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            torch.set_num_threads(1)  # one thread: the same float rounding on every run
            try:
                model = M2M100ForConditionalGeneration(config).eval()
                _wire_smoke_alignment(model, tokenizer)
            finally:
                torch.set_num_threads(threads)
        hf_dir = work / "hf"
        model.save_pretrained(hf_dir)
        tokenizer.save_pretrained(hf_dir)
        about = {
            "seed": seed, "architecture": "M2M100ForConditionalGeneration", "vocab_size": len(tokenizer),
            **SMOKE_ARCH, "parameters": sum(p.numel() for p in model.parameters()),
            "note": "smoke model: NLLB architecture, random weights, one hand-wired cross-attention layer;"
                    " its translations are gibberish",
            "tokenizer": "NllbTokenizer, BPE trained on the embedded sample + FLORES-200 codes",
        }
        model_id, revision = f"smoke-nllb-seed{seed}", f"seed-{seed}"
        # The HF copy says smoke too, so `model convert out/hf` can never produce a "real" model.
        _write_manifest(hf_dir, model_id, revision, "float32", True, **about)
        _convert(hf_dir, work / "ct2", None)  # float32: tiny, and int8 is chosen at load time
        _write_manifest(work / "ct2", model_id, revision, "float32", True, **about)
        hf_dir.rename(work / "ct2" / "hf")
        _replace_dir(work / "ct2", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


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
        _replace_dir(target, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _ct2_quantization(params: Params) -> str:
    """Weights on disk: int8 serves both auto compute types (int8 on CPU, int8_float16 on GPU)."""
    compute = params.translate.compute_type
    return "int8" if compute == "auto" else compute


def _cached_conversion(hf_dir: Path, model_id: str, revision: str, smoke: bool, params: Params) -> Path:
    """Convert once per (model, revision, quantization) into models.cache_dir; reuse afterwards."""
    quantization = _ct2_quantization(params)
    key = hashlib.sha256(f"{model_id}\0{revision}\0{quantization}".encode()).hexdigest()[:16]
    cached = Path(params.models.cache_dir) / "translation" / key
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
            check_tokenizer(path)
            return path
        if not (path / "config.json").exists():
            raise PolyinstructError(f"--model {spec}: neither a CTranslate2 model (model.bin) nor a Hugging Face"
                                    " model (config.json); run `polyinstruct model prepare` or pass `smoke`")
        check_tokenizer(path)
        return _cached_conversion(path, *_local_identity(path), params)
    if spec == SMOKE:
        cached = Path(params.models.cache_dir) / f"smoke-nllb-seed{params.models.smoke_seed}"
        if read_manifest(cached).get("seed") != params.models.smoke_seed or not is_ct2_dir(cached):
            build_smoke_nllb(cached, params.models.smoke_seed)
        return cached
    if HUB_ID.match(spec):
        snapshot, revision = _snapshot(spec, Path(params.models.cache_dir) / "hub")
        check_tokenizer(snapshot)
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
        _write_manifest(out, Path(spec).resolve().name, None, "unknown", False)
    return out


def load_tokenizer(model_dir: Path, src_lang: str) -> Any:
    """The NLLB tokenizer saved next to a CTranslate2 model, set to encode `src_lang`."""
    from transformers import NllbTokenizer

    check_tokenizer(model_dir)
    try:
        return NllbTokenizer.from_pretrained(str(model_dir), src_lang=src_lang)
    except Exception as err:  # noqa: BLE001 - corrupt or foreign tokenizer files: name the directory
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolyinstructError(f"{model_dir}: cannot load its NLLB tokenizer ({first[:200]}); re-run"
                                " `polyinstruct model convert` on the Hugging Face model") from None
