"""The judge's transformers backend (issue 16): a real tiny random-weight GPT-Neo, an architecture
CTranslate2's converter lacks, judged through `open_judge` with real `generate` calls. The fallback
is chosen with one logged line, the answers are cached in the judge memory, the smoke marking holds,
and an explicit `backend: transformers` gives the very tokens of transformers' own greedy decoding."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dataset_builder.judge_backend import open_judge
from dataset_builder.models.smoke import MANIFEST, build_smoke_lm
from schemas.params import Params, parse_params
from trl_training.judge import judge_pointwise

CONVERSATIONS = [[{"role": "user", "content": f"Rate this answer: {text}"}]
                 for text in ("Paris is the capital of France.", "The sea is blue.", "Sleep eight hours.")]


@pytest.fixture(scope="module")
def gpt_neo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-Neo with random weights and the smoke tokenizer (its chat template), marked smoke."""
    import torch
    from transformers import GenerationConfig, GPTNeoConfig, GPTNeoForCausalLM

    root = tmp_path_factory.mktemp("judge-models")
    llama = build_smoke_lm(root / "llama", seed=0)
    out = root / "gpt-neo"
    out.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (llama / name).exists():
            shutil.copy(llama / name, out / name)
    vocab = json.loads((llama / "config.json").read_text())["vocab_size"]
    eos = json.loads((llama / "config.json").read_text())["eos_token_id"]
    torch.manual_seed(0)
    config = GPTNeoConfig(vocab_size=vocab, hidden_size=32, num_layers=2, num_heads=2,
                          attention_types=[[["global", "local"], 1]], max_position_embeddings=256, window_size=64,
                          bos_token_id=1, eos_token_id=eos, pad_token_id=eos)
    model = GPTNeoForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=eos)
    model.save_pretrained(out)
    (out / MANIFEST).write_text(json.dumps({"kind": "base_lm", "smoke": True, "spec": "smoke-gpt-neo"}))
    return out


def _params(tmp_path: Path, backend: str = "local") -> Params:
    return parse_params({"models": {"cache_dir": str(tmp_path / "models")}, "evaluate": {"judge": {
        "backend": backend, "cache": str(tmp_path / "judge_memory"),
        "decoding": {"max_new_tokens": 6, "temperature": 0.0}}}})


def test_unconvertible_judge_falls_back_to_transformers_and_is_cached(
        gpt_neo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = _params(tmp_path)
    judge = open_judge(str(gpt_neo), params)
    logged = [line for line in capsys.readouterr().err.splitlines() if "cannot convert" in line]
    assert len(logged) == 1 and logged[0].startswith("judge: CTranslate2 cannot convert")
    assert logged[0].endswith("judging on transformers instead")
    assert "GPTNeo" in logged[0]  # the converter's own reason
    assert judge.fingerprint.startswith("smoke:") and "@transformers:" in judge.fingerprint and judge.smoke
    replies = judge.complete(CONVERSATIONS)
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    assert judge.stats() == {"cache_hits": 0, "generated": 3, "too_long": 0}
    graded = judge_pointwise(judge, params.evaluate.judge, "fra_Latn", ["Quelle est la capitale ?"], ["Paris."],
                             [True])
    # A random judge's verdict: parsed, or counted unparseable, never guessed.
    assert len(graded.scores) == 1 and (graded.scores[0] is None) == (graded.unparseable == 1)

    again = open_judge(str(gpt_neo), params)
    assert again.complete(CONVERSATIONS) == replies
    assert again.stats() == {"cache_hits": 3, "generated": 0, "too_long": 0}  # the judge memory answers


def test_explicit_transformers_backend_is_transformers_greedy_decoding(gpt_neo: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    judge = open_judge(str(gpt_neo), _params(tmp_path, "transformers"))
    engine = judge.engine
    prompt = engine.render(CONVERSATIONS[1])
    [generation] = engine([prompt])
    tokenizer = AutoTokenizer.from_pretrained(str(gpt_neo))
    model = AutoModelForCausalLM.from_pretrained(str(gpt_neo)).eval()
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    new = out[0, ids.shape[1]:].tolist()
    body = new[:new.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in new else new
    assert generation.output_tokens == len(body) and generation.prompt_tokens == ids.shape[1]
    assert generation.text == tokenizer.decode(body, skip_special_tokens=True).strip()
    assert generation.finish_reason == ("stop" if len(body) < len(new) else "length")
