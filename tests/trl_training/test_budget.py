"""Training budgets (epochs, tokens, steps) give each mixture the compute they say, counted by the
Trainer itself; and a `train` process killed with SIGKILL resumes from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from schemas.errors import PolyinstructError
from schemas.params import MixtureParams, TrainingBudget, parse_params
from tests.conftest import REPO_ROOT
from tests.kill_helpers import kill_when
from tests.trl_training.conftest import smoke_params
from trl_training.budget import BudgetPlan, real_run_warnings
from trl_training.mixtures import build_mixture
from trl_training.sft import prepare_training, train


@pytest.fixture(scope="module")
def two_mixes(export_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two mixtures of different sizes: 8 and 24 training examples."""
    root = tmp_path_factory.mktemp("budget-mixes")
    mixes = {}
    for name, size in (("small", 8), ("large", 24)):
        build_mixture(export_dir, MixtureParams(name=name, recipe="downsampled", budget=size), root / name)
        mixes[name] = root / name
    return mixes


def _budget_params(cache: Path, budget: dict[str, float]) -> object:
    return smoke_params(cache, max_steps=None, budget=budget, max_eval_examples=1,
                        sft={"per_device_train_batch_size": 4})


@pytest.mark.slow
def test_epoch_budget_scales_with_mixture_size(two_mixes: dict[str, Path], smoke_lm: Path, tmp_path: Path) -> None:
    params = _budget_params(tmp_path / "cache", {"epochs": 1})
    small = train(two_mixes["small"], smoke_lm, tmp_path / "small", params)
    large = train(two_mixes["large"], smoke_lm, tmp_path / "large", params)
    # One epoch at batch 4: 2 and 6 steps; the Trainer's own token counter saw each train split once.
    assert (small["steps"], large["steps"]) == (2, 6)
    for run in (small, large):
        assert run["epochs"] == pytest.approx(1.0)
        assert run["tokens_seen"] == run["tokens_per_epoch"] > 0
    assert large["tokens_seen"] > 2 * small["tokens_seen"]


@pytest.mark.slow
def test_token_budget_gives_equal_compute(two_mixes: dict[str, Path], smoke_lm: Path, tmp_path: Path) -> None:
    probe = prepare_training(two_mixes["small"], smoke_lm, tmp_path / "probe",
                             _budget_params(tmp_path / "cache", {"epochs": 1}))
    budget = 2 * probe.plan.tokens_per_epoch  # two epochs of the small mixture, under one of the large
    params = _budget_params(tmp_path / "cache", {"tokens": budget})
    small = train(two_mixes["small"], smoke_lm, tmp_path / "small", params)
    large = train(two_mixes["large"], smoke_lm, tmp_path / "large", params)
    assert small["epochs"] == pytest.approx(2.0) and large["epochs"] < 1
    for run in (small, large):
        per_step = run["tokens_per_epoch"] / run["steps_per_epoch"]
        assert abs(run["tokens_seen"] - budget) <= per_step * 1.5, run  # within about a step of the budget
        assert run["budget"] == {"tokens": budget}


def test_budget_params_are_explicit() -> None:
    assert parse_params({"training": {"max_steps": 7}}).training.budget == TrainingBudget(steps=7)
    assert parse_params({"training": {"budget": {"epochs": 4}}}).training.budget.epochs == 4
    for training, message in (
        ({"max_steps": 7, "budget": {"epochs": 1}}, "give budget or max_steps"),
        ({"budget": {"epochs": 1, "steps": 3}}, "exactly one of epochs, tokens or steps"),
        ({"budget": {}}, "exactly one of epochs, tokens or steps"),
    ):
        with pytest.raises(PolyinstructError, match=message) as err:
            parse_params({"training": training})
        assert "\n" not in str(err.value)


def test_epochs_in_sft_is_not_a_second_budget(two_mixes: dict[str, Path], smoke_lm: Path, tmp_path: Path) -> None:
    params = smoke_params(tmp_path / "cache", sft={"num_train_epochs": 3})
    with pytest.raises(PolyinstructError, match="sft.num_train_epochs: set by training.budget"):
        prepare_training(two_mixes["small"], smoke_lm, tmp_path / "out", params)


def test_real_run_warnings_name_the_values() -> None:
    plan = BudgetPlan(budget=TrainingBudget(steps=30), steps=30, steps_per_epoch=400, tokens_per_epoch=10**6,
                      examples_per_step=128)
    lines = real_run_warnings(plan, 0.005, "meta-llama/Llama-3.1-8B")
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert "learning_rate 0.005" in lines[0] and "meta-llama/Llama-3.1-8B" in lines[0]
    assert "budget 30 steps is 0.07 epoch(s)" in lines[1]
    fine = BudgetPlan(budget=TrainingBudget(epochs=4), steps=1600, steps_per_epoch=400, tokens_per_epoch=10**6,
                      examples_per_step=128)
    assert real_run_warnings(fine, 3e-4, "meta-llama/Llama-3.1-8B") == []


def _saved_steps(checkpoints: Path) -> list[int]:
    """Global steps of the checkpoints whose trainer state parses (one being written may be empty)."""
    steps = []
    for state in checkpoints.glob("checkpoint-*/trainer_state.json"):
        try:
            steps.append(json.loads(state.read_text())["global_step"])
        except (OSError, ValueError, KeyError):
            continue
    return steps


@pytest.mark.slow
def test_killed_train_resumes_from_its_last_checkpoint(two_mixes: dict[str, Path], smoke_lm: Path,
                                                       tmp_path: Path) -> None:
    """A real `polyinstruct train` process, checkpointing outside its output as the DVC stage does, is
    killed with SIGKILL; the rerun resumes from the last checkpoint and finishes the budget."""
    raw = {"models": {"cache_dir": str(tmp_path / "cache")},
           "training": {"template": "bactrian", "budget": {"steps": 12}, "max_eval_examples": 1,
                        "sft": {"learning_rate": 1e-2, "per_device_train_batch_size": 4, "max_length": 96,
                                "save_steps": 2}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    adapter, checkpoints = tmp_path / "adapters" / "large", tmp_path / "checkpoints" / "large"
    args = [sys.executable, "-m", "dataset_builder.cli", "train", "--mix", str(two_mixes["large"]), "--base-model",
            str(smoke_lm), "--out", str(adapter), "--metrics", str(tmp_path / "metrics"), "--checkpoints",
            str(checkpoints), "--resume", "--params", str(tmp_path / "params.yaml")]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    # Killed once a checkpoint's state is fully written; the kill may land inside the next save, whose partial
    # state the rerun must pass over.
    proc = kill_when(args, tmp_path, env, lambda: bool(_saved_steps(checkpoints)), tmp_path / "killed.log",
                     timeout=300)
    assert proc.returncode == -signal.SIGKILL and not (tmp_path / "metrics" / "train_metrics.json").exists()
    saved = max(_saved_steps(checkpoints))
    assert 2 <= saved < 12

    rerun = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics" / "train_metrics.json").read_text())
    assert metrics["resumed_from_step"] >= saved and metrics["steps"] == 12
    assert [p["step"] for p in metrics["losses"]] == list(range(1, 13))  # history carried over, not re-run
    assert f"resumed from step {metrics['resumed_from_step']}" in rerun.stdout
    assert (adapter / "adapter_model.safetensors").exists() and not checkpoints.exists()


def test_chen_downsampled_mixture_gets_the_monolingual_budget(export_dir: Path, smoke_lm: Path,
                                                              tmp_path: Path) -> None:
    """The chen2024 preset's downsampled mixture has as many examples as its English monolingual one, so the
    same epochs budget plans the same number of steps for both."""
    from dataset_builder.recipes import load_recipe

    preset = parse_params(load_recipe("chen2024"))
    specs = {m.name: m for m in preset.mixtures if m.name in ("mono-eng", "downsampled")}
    params = _budget_params(tmp_path / "cache", {"epochs": preset.training.budget.epochs})
    plans = {}
    for name, spec in specs.items():
        result = build_mixture(export_dir, spec, tmp_path / name)
        plans[name] = (result.manifest["total_examples"],
                       prepare_training(tmp_path / name, smoke_lm, tmp_path / f"out-{name}", params).plan)
    (mono_n, mono), (down_n, down) = plans["mono-eng"], plans["downsampled"]
    assert mono_n == down_n > 0 and len(set(build_langs(tmp_path / "downsampled"))) == 4
    assert mono.steps == down.steps == 5 * mono.steps_per_epoch


def build_langs(mix_dir: Path) -> list[str]:
    import polars as pl

    return pl.read_parquet(mix_dir / "train.parquet")["lang"].to_list()
