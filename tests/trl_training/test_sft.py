"""TRL SFT with LoRA on the smoke model: real optimisation steps, completion-only labels, saved
adapter, resume, and config errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from schemas.errors import PolyinstructError
from tests.trl_training.conftest import smoke_params
from trl_training.sft import prepare_training, train
from trl_training.templates import encode_examples

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


def test_loss_falls_over_real_steps(trained: dict[str, Any]) -> None:
    metrics = trained["metrics"]
    losses = [point["loss"] for point in metrics["losses"]]
    assert metrics["steps"] == 16 and len(losses) == 16
    assert metrics["first_loss"] == losses[0] and metrics["last_loss"] == losses[-1]
    assert metrics["last_loss"] < metrics["first_loss"] - 1.0, losses  # memorising 16 examples
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"]
    assert metrics["tokens_per_s"] > 0 and metrics["train_tokens"] > 0
    assert metrics["smoke"] is True and metrics["precision"] == "fp32"


def test_outputs_on_disk(trained: dict[str, Any]) -> None:
    adapter, metrics_dir = trained["adapter"], trained["metrics_dir"]
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "training_config.json"):
        assert (adapter / name).exists(), name
    config = json.loads((adapter / "training_config.json").read_text())
    assert config["sft_config"]["learning_rate"] == 1e-2 and config["sft_config"]["completion_only_loss"] is True
    assert config["lora"]["target_modules"] == "all-linear" and config["template"] == "bactrian"
    assert config["base_model_manifest"]["smoke"] is True and config["mixture"]["name"] == "memorise"
    with (metrics_dir / "loss.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(1, 17))
    saved = json.loads((metrics_dir / "train_metrics.json").read_text())
    assert saved["last_loss"] == pytest.approx(float(rows[-1]["loss"]))


def test_adapter_loads_and_merges(trained: dict[str, Any], smoke_lm: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[0, 100, 200, 300, 400, 500]])
    base_logits = AutoModelForCausalLM.from_pretrained(smoke_lm)(input_ids=ids).logits
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smoke_lm), trained["adapter"])
    peft_logits = peft_model(input_ids=ids).logits
    merged = peft_model.merge_and_unload()
    assert not isinstance(merged, PeftModel)
    merged_logits = merged(input_ids=ids).logits
    assert torch.allclose(merged_logits, peft_logits, atol=1e-4)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-3)  # training changed the model


def _check_labels(setup: Any, frame: pl.DataFrame, template: str) -> int:
    """Every collated row: prompt tokens -100, completion tokens (incl. EOS) = input ids, padding -100."""
    tokenizer = setup.trainer.processing_class
    max_length = setup.trainer.args.max_length
    expected = {tuple(ids[:max_length]): prompt_len
                for ids, prompt_len in encode_examples(tokenizer, template, frame)}
    batch = next(iter(setup.trainer.get_train_dataloader()))
    checked = 0
    for input_ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True):
        n = int(mask.sum())
        ids, labs = input_ids[:n].tolist(), labels.tolist()
        prompt_len = expected[tuple(ids)]
        assert labs[:prompt_len] == [-100] * prompt_len
        assert labs[prompt_len:n] == ids[prompt_len:n] and n > prompt_len
        assert labs[n:] == [-100] * (len(labs) - n)
        if n < max_length:
            assert ids[-1] == tokenizer.eos_token_id and labs[n - 1] == tokenizer.eos_token_id
        checked += 1
    return checked


@pytest.mark.parametrize("template", ["alpaca", "chat"])
def test_prompt_tokens_are_masked(memorise_mix: Path, smoke_lm: Path, tmp_path: Path, template: str) -> None:
    # max_length 256: no prompt is truncated away, so all 16 examples reach the batch
    params = smoke_params(tmp_path / "cache", sft={"max_length": 256})
    setup = prepare_training(memorise_mix, smoke_lm, tmp_path / "out", params, template=template)
    frame = pl.read_parquet(memorise_mix / "train.parquet")
    assert _check_labels(setup, frame, template) == 16


def test_packing_keeps_the_prompt_mask(memorise_mix: Path, smoke_lm: Path, tmp_path: Path) -> None:
    setup = prepare_training(memorise_mix, smoke_lm, tmp_path / "out", smoke_params(tmp_path / "cache"),
                             packing=True)
    batch = next(iter(setup.trainer.get_train_dataloader()))
    assert "position_ids" in batch and "attention_mask" not in batch  # padding-free packed batch
    labels, positions = batch["labels"][0], batch["position_ids"][0]
    starts = (positions == 0).nonzero().flatten().tolist()
    assert len(starts) > 1  # several examples in one packed row
    for start in starts:
        assert labels[start] == -100  # each packed example starts with its (masked) prompt
    assert (labels != -100).sum() > 0


def test_resume_continues_from_the_checkpoint(memorise_mix: Path, smoke_lm: Path, tmp_path: Path) -> None:
    params = smoke_params(tmp_path / "cache", max_steps=2, max_eval_examples=1)
    first = train(memorise_mix, smoke_lm, tmp_path / "adapter", params)
    assert first["steps"] == 2 and (tmp_path / "adapter" / "checkpoints" / "checkpoint-2").is_dir()
    shutil.copy(tmp_path / "adapter" / "adapter_model.safetensors", tmp_path / "adapter_first.safetensors")
    # What a kill inside the next save leaves: a later checkpoint whose trainer state is empty.
    partial = tmp_path / "adapter" / "checkpoints" / "checkpoint-3"
    shutil.copytree(tmp_path / "adapter" / "checkpoints" / "checkpoint-2", partial)
    (partial / "trainer_state.json").write_text("")
    resumed = train(memorise_mix, smoke_lm, tmp_path / "adapter", params, max_steps=4, resume=True)
    assert resumed["resumed_from_step"] == 2 and resumed["steps"] == 4
    assert [p["step"] for p in resumed["losses"]] == [1, 2, 3, 4]
    assert resumed["losses"][:2] == first["losses"]  # history carried over, not re-run
    # Seeded: a second fresh run repeats the first exactly, down to the adapter weights.
    again = train(memorise_mix, smoke_lm, tmp_path / "again", params)
    assert again["losses"] == first["losses"]
    weights = "checkpoints/checkpoint-2/adapter_model.safetensors"
    assert (tmp_path / "again" / weights).read_bytes() == (tmp_path / "adapter_first.safetensors").read_bytes()


@pytest.mark.parametrize(("sft", "message"), [
    ({"learning_rat": 0.1}, "params.training.sft.learning_rat: not a field of trl.SFTConfig; did you mean"
                            " learning_rate"),
    ({"max_steps": 5}, "params.training.sft.max_steps: set by training.budget"),
    ({"lr_scheduler_type": "sideways"}, "params.training.sft: trl.SFTConfig rejected it"),
])
def test_bad_sft_config_is_one_line(memorise_mix: Path, smoke_lm: Path, tmp_path: Path, sft: dict,
                                    message: str) -> None:
    with pytest.raises(PolyinstructError, match=message) as err:
        prepare_training(memorise_mix, smoke_lm, tmp_path / "out", smoke_params(tmp_path / "cache", sft=sft))
    assert "\n" not in str(err.value)
