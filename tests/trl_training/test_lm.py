"""The smoke base LM and base-model preparation (directory, Hub id, smoke)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dataset_builder.models import lm, smoke
from schemas.errors import PolyinstructError
from schemas.models import is_smoke
from schemas.params import Params, parse_params


def test_smoke_lm_is_deterministic(smoke_lm: Path, tmp_path: Path) -> None:
    again = smoke.build_smoke_lm(tmp_path / "again", seed=0)
    other = smoke.build_smoke_lm(tmp_path / "other", seed=1)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (smoke_lm / name).read_bytes(), name
    assert (other / "model.safetensors").read_bytes() != (smoke_lm / "model.safetensors").read_bytes()
    manifest = json.loads((smoke_lm / "manifest.json").read_text())
    assert manifest["smoke"] is True and manifest["architecture"] == "LlamaForCausalLM"
    assert is_smoke(smoke_lm)


def test_smoke_tokenizer_encodes_every_script(smoke_lm: Path, shared_data: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smoke_lm)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<s>", "</s>", "<pad>")
    for iso in ("en", "bg", "es", "fr", "ru", "zh"):
        lines = (shared_data / "hplt-test" / f"test_{iso}.jsonl").read_text(encoding="utf-8").splitlines()
        prompts = [json.loads(line)["prompt"] for line in lines[:10]]
        for prompt, ids in zip(prompts, tokenizer(prompts)["input_ids"], strict=True):
            assert ids[0] == tokenizer.bos_token_id and tokenizer.unk_token_id not in ids
            assert tokenizer.decode(ids, skip_special_tokens=True) == prompt  # byte-level: lossless
    chat = [{"role": "user", "content": "Bonjour"}, {"role": "assistant", "content": "Salut"}]
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    prompt = tokenizer.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
    assert text.startswith(prompt) and text.endswith("Salut</s>")
    model = AutoModelForCausalLM.from_pretrained(smoke_lm)
    assert model.config.vocab_size == len(tokenizer) and model.config.eos_token_id == tokenizer.eos_token_id


def _params(tmp_path: Path) -> Params:
    return parse_params({"models": {"cache_dir": str(tmp_path / "cache")}})


def test_model_dir_without_tokenizer_is_a_clear_error(smoke_lm: Path, tmp_path: Path) -> None:
    broken = tmp_path / "no_tokenizer"
    shutil.copytree(smoke_lm, broken)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (broken / name).unlink()
    for call in (lambda: lm.prepare_base_lm(str(broken), tmp_path / "out", _params(tmp_path)),
                 lambda: lm.resolve_base_lm(broken, _params(tmp_path))):
        with pytest.raises(PolyinstructError, match="no tokenizer .* tokenizer.save_pretrained") as err:
            call()
        assert "\n" not in str(err.value)


def test_prepare_copies_a_directory_and_builds_smoke(smoke_lm: Path, tmp_path: Path) -> None:
    copied = lm.prepare_base_lm(str(smoke_lm), tmp_path / "base_lm", _params(tmp_path))
    assert (copied / "model.safetensors").read_bytes() == (smoke_lm / "model.safetensors").read_bytes()
    assert is_smoke(copied)  # the source's manifest travels with it
    built = lm.prepare_base_lm("smoke", tmp_path / "smoke", _params(tmp_path))
    assert (built / "model.safetensors").read_bytes() == (smoke_lm / "model.safetensors").read_bytes()
    with pytest.raises(PolyinstructError, match="not a directory and not a Hub id"):
        lm.prepare_base_lm("no such model", tmp_path / "x", _params(tmp_path))


def test_hub_download_failure_names_the_remedies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 smoke_lm: Path) -> None:
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(**kwargs: object) -> str:  # the network boundary: what the client raises when offline
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache and outgoing traffic "
                                      "has been disabled.\nTo enable hf.co look-ups, set HF_HUB_OFFLINE=0.")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(PolyinstructError) as err:
        lm.prepare_base_lm("meta-llama/Llama-3.2-1B", tmp_path / "out", _params(tmp_path))
    message = str(err.value)
    assert "\n" not in message and "meta-llama/Llama-3.2-1B" in message
    assert "LocalEntryNotFoundError" in message and "HF_HUB_OFFLINE" in message and "`smoke`" in message

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **kwargs: str(smoke_lm))
    out = lm.prepare_base_lm("org/tiny", tmp_path / "hub", _params(tmp_path))
    assert (out / "tokenizer.json").exists()
    assert json.loads((out / "manifest.json").read_text())["spec"] == "org/tiny"
