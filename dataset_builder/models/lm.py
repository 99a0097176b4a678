"""Base language models for SFT: a tiny seeded "smoke" Llama for the demo and tests, a local model
directory, or a Hugging Face Hub id.

The smoke model has the real architecture (LlamaForCausalLM) with random weights and a byte-level
BPE tokenizer, so every script encodes and the whole training path runs on a laptop CPU. Its
manifest says `smoke: true`; everything trained or evaluated on it says so too."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from dataset_builder.ingest import embedded_sample_path
from schemas.artifacts import write_json
from schemas.errors import PolyinstructError
from schemas.models import HUB_ID, MANIFEST, SMOKE, TOKENIZER_FILES, read_manifest
from schemas.params import Params

WEIGHT_PATTERNS: tuple[str, ...] = ("*.safetensors", "*.bin")

# Small enough to train a few dozen steps per second on one CPU core, real enough to exercise
# rotary attention, GQA, RMSNorm and the SwiGLU MLP that full-size Llama models use.
SMOKE_ARCH: dict[str, int] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 2048,
}
SMOKE_VOCAB_SIZE = 2048
# LoRA ("all-linear") leaves lm_head frozen; with the usual 0.02 init its rows are so short that no
# hidden state can move the logits far from uniform, and the loss barely falls. 0.1 gives the frozen
# random head a usable logit range, as a pre-trained head has, so a few dozen steps show learning.
SMOKE_INIT_RANGE = 0.1
SPECIAL_TOKENS: dict[str, str] = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
CHAT_ROLE_TOKENS: tuple[str, ...] = ("<|system|>", "<|user|>", "<|assistant|>")
# Each turn is `<|role|>\n{content}</s>`; the assistant turn ends in EOS, so a prompt-completion
# chat dataset trains EOS, and the generation prompt is a prefix of the full conversation.
SMOKE_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def _train_tokenizer(corpus: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    # Byte-level: any UTF-8 text (Han, Cyrillic, emoji) maps to known byte tokens, nothing is <unk>.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=SMOKE_VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[*SPECIAL_TOKENS.values(), *CHAT_ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    bos = SPECIAL_TOKENS["bos_token"]
    # Like Llama: BOS is prepended by the tokenizer, EOS is part of the training text.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    return tok


def _sample_corpus() -> list[str]:
    records = json.loads(embedded_sample_path().read_text(encoding="utf-8"))
    return [str(r.get(field, "")) for r in records for field in ("instruction", "input", "output") if r.get(field)]


def build_smoke_lm(out: Path, seed: int = 0) -> Path:
    """Build the smoke base LM in `out` (overwritten): same seed, same bytes."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_train_tokenizer(_sample_corpus()), **SPECIAL_TOKENS)
    tokenizer.add_special_tokens({"additional_special_tokens": list(CHAT_ROLE_TOKENS)})
    tokenizer.chat_template = SMOKE_CHAT_TEMPLATE
    tokenizer.model_max_length = SMOKE_ARCH["max_position_embeddings"]
    tokenizer.save_pretrained(out)

    ids = {name.removesuffix("_token") + "_token_id": tokenizer.convert_tokens_to_ids(tok)
           for name, tok in SPECIAL_TOKENS.items() if name != "unk_token"}
    config = LlamaConfig(vocab_size=len(tokenizer), tie_word_embeddings=False, initializer_range=SMOKE_INIT_RANGE,
                         **SMOKE_ARCH, **ids)
    torch.manual_seed(seed)  # random weights, but the same ones for the same seed
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(**ids)
    model.save_pretrained(out)
    weights = (out / "model.safetensors").read_bytes()
    write_json({
        "kind": "base_lm",
        "smoke": True,
        "note": "smoke model: real Llama architecture with random weights; its outputs are noise",
        "spec": SMOKE,
        "seed": seed,
        "architecture": "LlamaForCausalLM",
        **SMOKE_ARCH,
        "initializer_range": SMOKE_INIT_RANGE,
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokenizer": "byte-level BPE trained on the embedded sample",
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }, out / MANIFEST)
    return out


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


def _download(hub_id: str, cache_dir: Path) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(
            repo_id=hub_id, cache_dir=str(cache_dir),
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"],
        ))
    except Exception as err:  # the Hub client raises many types: offline, 401/403 gated, 404, timeouts
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolyinstructError(
            f"base model '{hub_id}' is no local directory and the Hugging Face Hub download failed"
            f" ({type(err).__name__}: {reason[:160]});"
            " check the network and the id, log in (`hf auth login`) for gated models, unset HF_HUB_OFFLINE,"
            " or pass a local model directory or `smoke`"
        ) from None


def prepare_base_lm(spec: str, out: Path, params: Params) -> Path:
    """`smoke` builds the smoke model; a directory is validated and copied; a Hub id is downloaded.
    The result in `out` always holds a manifest.json saying where it came from and whether it is smoke."""
    out = Path(out)
    if spec == SMOKE:
        return build_smoke_lm(out, params.models.smoke_seed)
    source = Path(spec)
    if source.exists():
        if not source.is_dir():
            raise PolyinstructError(f"{source}: is a file; a base model is a directory, a Hub id or `smoke`")
        validate_model_dir(source)
        origin = read_manifest(source) or {"kind": "base_lm", "smoke": False, "spec": str(source)}
    elif HUB_ID.match(spec):
        source = _download(spec, Path(params.models.cache_dir))
        validate_model_dir(source)
        origin = {"kind": "base_lm", "smoke": False, "spec": spec, "source": "huggingface-hub"}
    else:
        raise PolyinstructError(f"base model '{spec}': not a directory and not a Hub id (ORG/NAME); pass a model"
                                " directory, a Hub id such as meta-llama/Llama-3.2-1B, or `smoke`")
    if source.resolve() != out.resolve():
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(source, out, symlinks=False)  # the Hub cache holds symlinks; copy real files
    write_json(origin, out / MANIFEST)
    return out


def resolve_base_lm(spec: str | Path, params: Params) -> Path:
    """The directory to load a base LM from, without copying: an existing directory as is, `smoke`
    built once into the cache (deterministic, so reuse is safe), a Hub id downloaded into the cache."""
    spec = str(spec)
    path = Path(spec)
    if path.exists():
        if not path.is_dir():
            raise PolyinstructError(f"{path}: is a file; a base model is a directory, a Hub id or `smoke`")
        validate_model_dir(path)
        return path
    if spec == SMOKE:
        cached = Path(params.models.cache_dir) / f"smoke-lm-seed{params.models.smoke_seed}"
        if read_manifest(cached).get("seed") != params.models.smoke_seed:
            build_smoke_lm(cached, params.models.smoke_seed)
        return cached
    if HUB_ID.match(spec) and not path.parent.is_dir():
        source = _download(spec, Path(params.models.cache_dir))
        validate_model_dir(source)
        return source
    if HUB_ID.match(spec):  # `models/base_lm` looks like ORG/NAME, but its parent is a local folder
        raise PolyinstructError(f"{path}: base model folder not found; make it with `polyinstruct model prepare`"
                                " (or `dvc repro models`), or pass a Hub id or `smoke`")
    raise PolyinstructError(f"base model '{spec}': no such directory and not a Hub id (ORG/NAME); run `polyinstruct"
                            " model prepare` (or dvc repro models), or pass a Hub id or `smoke`")
