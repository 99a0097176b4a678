"""The smoke models: real architectures and tokenizer classes at a tiny size with random weights, built
locally (no Hub) for the demo, the tests and the benchmarks. Same seed, same bytes. Every manifest says
`smoke: true`, so nothing a smoke model produced can pass for real.

The smoke NLLB model has the real NLLB architecture (M2M100ForConditionalGeneration, pre-norm, scaled
embeddings, sinusoidal positions, tied output layer) at a tiny size, with random weights, and a
real `NllbTokenizer` whose BPE vocabulary is trained on the embedded sample plus every FLORES-200
code as a special token. Purely random weights never emit `</s>`, so every unit would run to
`max_decoding_length` and be flagged truncated, and the demo's quality stage would reject
everything. One cross-attention layer is therefore wired by hand (see `_wire_smoke_alignment`):
output token k attends to source token k, and the source `</s>` carries a signal that makes
the decoder emit `</s>`. So the smoke model stops near the source length, and the words it emits
are a deterministic token-by-token scramble of the source. It knows no language: its output is
gibberish, and says so in every row.

The smoke base LM has the real architecture (LlamaForCausalLM) with random weights and a byte-level
BPE tokenizer, so every script encodes and the whole training path runs on a laptop CPU. The smoke
responder is that Llama with EOS wired to be sampled now and then, converted to CTranslate2.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

from dataset_builder.ingest import embedded_sample_path
from dataset_builder.models.convert import building, convert_generator, convert_nllb, write_manifest
from schemas.artifacts import write_json
from schemas.languages import nllb_codes
from schemas.models import MANIFEST, SMOKE

# --- the smoke NLLB translation model -------------------------------------------------------------

# NLLB-200-distilled-600M layout at a size that builds in about a second.
NLLB_SMOKE_ARCH: dict[str, int] = {
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "max_position_embeddings": 1024,
}
NLLB_SMOKE_VOCAB_SIZE = 2000  # BPE pieces, before <mask> and the 202 language codes
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


def _smoke_tokenizer() -> Any:
    """A real NllbTokenizer with a BPE vocabulary trained on the embedded sample."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import NllbTokenizer

    records = json.loads(embedded_sample_path().read_text(encoding="utf-8"))
    # Lines, not whole fields: a unit never holds a line break, so the vocabulary needs no "\n" piece.
    corpus = [line for r in records for f in ("instruction", "input", "output") for line in r.get(f, "").split("\n")
              if line.strip()]
    bpe = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=NLLB_SMOKE_VOCAB_SIZE, min_frequency=2, show_progress=False,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],  # NLLB's ids 0-3
        initial_alphabet=sorted(set(string.printable) - set(string.whitespace)),
    )
    bpe.train_from_iterator(corpus, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = NllbTokenizer(vocab=model["vocab"], merges=merges, src_lang="eng_Latn",
                              extra_special_tokens=list(nllb_codes()))
    tokenizer.model_max_length = NLLB_SMOKE_ARCH["max_position_embeddings"]
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
    with building(out, "build") as built:
        tokenizer = _smoke_tokenizer()
        config = nllb_config(len(tokenizer), NLLB_SMOKE_ARCH)
        threads = torch.get_num_threads()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            torch.set_num_threads(1)  # one thread: the same float rounding on every run
            try:
                model = M2M100ForConditionalGeneration(config).eval()
                _wire_smoke_alignment(model, tokenizer)
            finally:
                torch.set_num_threads(threads)
        hf_dir = built.with_name("hf")
        model.save_pretrained(hf_dir)
        tokenizer.save_pretrained(hf_dir)
        about = {
            "seed": seed, "architecture": "M2M100ForConditionalGeneration", "vocab_size": len(tokenizer),
            **NLLB_SMOKE_ARCH, "parameters": sum(p.numel() for p in model.parameters()),
            "note": "smoke model: NLLB architecture, random weights, one hand-wired cross-attention layer;"
                    " its translations are gibberish",
            "tokenizer": "NllbTokenizer, BPE trained on the embedded sample + FLORES-200 codes",
        }
        model_id, revision = f"smoke-nllb-seed{seed}", f"seed-{seed}"
        # The HF copy says smoke too, so `model convert out/hf` can never produce a "real" model.
        write_manifest(hf_dir, "translation", model_id, revision, "float32", True, **about)
        convert_nllb(hf_dir, built, None)  # float32: tiny, and int8 is chosen at load time
        write_manifest(built, "translation", model_id, revision, "float32", True, **about)
        hf_dir.rename(built / "hf")
    return out



# --- the smoke base LM (Llama) ---------------------------------------------------------------------

# Small enough to train a few dozen steps per second on one CPU core, real enough to exercise
# rotary attention, GQA, RMSNorm and the SwiGLU MLP that full-size Llama models use.
LM_SMOKE_ARCH: dict[str, int] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 2048,
}
LM_SMOKE_VOCAB_SIZE = 2048
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
        vocab_size=LM_SMOKE_VOCAB_SIZE,
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
    tokenizer.model_max_length = LM_SMOKE_ARCH["max_position_embeddings"]
    tokenizer.save_pretrained(out)

    ids = {name.removesuffix("_token") + "_token_id": tokenizer.convert_tokens_to_ids(tok)
           for name, tok in SPECIAL_TOKENS.items() if name != "unk_token"}
    config = LlamaConfig(vocab_size=len(tokenizer), tie_word_embeddings=False, initializer_range=SMOKE_INIT_RANGE,
                         **LM_SMOKE_ARCH, **ids)
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
        **LM_SMOKE_ARCH,
        "initializer_range": SMOKE_INIT_RANGE,
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokenizer": "byte-level BPE trained on the embedded sample",
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }, out / MANIFEST)
    return out


# --- the smoke responder (the smoke Llama on CTranslate2) ----------------------------------------

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
        return convert_generator(hf_dir, Path(out), quantization, f"smoke-llama-seed{seed}", f"seed-{seed}", True)

