"""Supervised fine-tuning of a LoRA adapter with TRL's SFTTrainer on one mixture.

Everything TRL already knows is passed through, not re-invented: `params.training.sft` goes to
`trl.SFTConfig` as-is (an unknown field is a one-line error naming it), `params.training.lora` to
`peft.LoraConfig`. Data is prompt-completion, so TRL masks the prompt and trains the completion and
its EOS. Runs are seeded; bf16 on a GPU that supports it, fp32 otherwise.

Multi-GPU: the same command runs under Accelerate (or torchrun), one process per GPU, e.g.
    accelerate launch --multi_gpu --num_processes 4 -m dataset_builder.cli train --mix data/mixes/NAME \\
        --base-model models/base_lm --out models/adapters/NAME --metrics metrics/train/NAME
per_device_train_batch_size is per process, so the global batch grows with the GPU count. Only the
main process writes the adapter and metrics; tokens/s counts the tokens of all processes."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from schemas.artifacts import read_table, write_csv_rows, write_json
from schemas.errors import PolyinstructError
from schemas.export_layout import EXPORT_COLUMNS
from schemas.models import is_smoke, read_manifest
from schemas.params import Params, TrainingBudget
from schemas.progress import progress_bar
from schemas.timings import split_timing, write_timing
from trl_training.base_model import ResolveBase, model_directory
from trl_training.budget import BudgetPlan, apply_plan, plan_budget, real_run_warnings, sft_budget_kwargs, warn
from trl_training.resume import complete_checkpoint, last_checkpoint_for, run_fingerprint
from trl_training.templates import check_template, to_prompt_completion

CHECKPOINTS = "checkpoints"
# How fast and where, not what was learnt: these go to train_metrics.timing.json (schemas/timings.py).
RUN_KEYS: tuple[str, ...] = ("tokens_per_s", "train_runtime_s", "device")
# SFTConfig fields this command sets from its own params/flags; setting them under training.sft too
# would make two places for one knob.
OWNED_FIELDS: dict[str, str] = {
    "output_dir": "--checkpoints (default OUT/checkpoints)",
    "max_steps": "training.budget (steps) or --max-steps",
    "num_train_epochs": "training.budget (epochs)",
    "packing": "training.packing or --packing",
    "padding_free": "training.padding_free",
    "gradient_checkpointing": "training.gradient_checkpointing",
    "activation_checkpointing": "training.gradient_checkpointing",
}
# Our defaults where TRL's do not suit a reproducible, offline, CPU-friendly run; params override them.
SFT_DEFAULTS: dict[str, Any] = {
    "report_to": "none",
    "logging_steps": 1,
    "seed": 0,
    "completion_only_loss": True,
    "save_total_limit": 1,
    "per_device_eval_batch_size": 8,
    "dataloader_num_workers": 0,
    # Counted by the Trainer and kept in checkpoints, so tokens/s stays right across --resume.
    "include_num_input_tokens_seen": "non_padding",
}


@dataclass
class TrainSetup:
    """A ready SFTTrainer and what the outputs must record about it."""

    trainer: Any  # trl.SFTTrainer
    base_path: Path
    base_spec: str
    smoke_base: bool  # random-weight base model
    smoke_data: bool  # mixture drawn from smoke-model translations
    mix_manifest: dict[str, Any]
    template: str
    precision: str
    device: str
    n_train: int
    n_eval: int
    plan: BudgetPlan


def _rich_progress_callback() -> Any:
    """Trainer progress on the project's progress bar (stderr), replacing the Trainer's own printer
    and tqdm bar, so that stdout carries only the command's one-line result."""
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.progress: Any = None
            self.task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                self.progress = progress_bar()
                self.progress.start()
                self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step,
                                                   unit="steps")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if self.progress is not None and logs and "loss" in logs:
                self.progress.update(self.task, description=f"train loss {float(logs['loss']):.4f}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.stop()
                self.progress = None

    return RichProgress()


def quiet_libraries() -> None:
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # transformers 5.23 renamed gradient -> activation checkpointing; PEFT still calls the old name.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def _bf16_capable() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def _check_sft_types(config_class: type, values: dict[str, Any]) -> dict[str, Any]:
    """Each params.training.sft value must fit its SFTConfig field's annotated type (SFTConfig itself
    does not check: `learning_rate: "fast"` would fail later as a TypeError inside the optimiser).
    A number YAML read as text (`2e-4`) becomes the number."""
    import typing

    from pydantic import TypeAdapter, ValidationError

    hints = typing.get_type_hints(config_class)
    checked = dict(values)
    for key, value in values.items():
        try:
            adapter = TypeAdapter(hints[key])
        except Exception:  # noqa: BLE001 - a field type pydantic cannot model: SFTConfig checks it itself
            continue
        try:
            parsed = adapter.validate_python(value)
        except ValidationError as err:
            expected = getattr(hints[key], "__name__", None) or str(hints[key]).replace("typing.", "")
            first = err.errors()[0]["msg"]
            raise PolyinstructError(f"params.training.sft.{key}: {value!r} is not a valid value ({first});"
                                    f" expected {expected}") from None
        if isinstance(value, str) and isinstance(parsed, int | float) and not isinstance(parsed, bool):
            checked[key] = parsed
    return checked


def _sort_target_modules(config: Path) -> None:
    """PEFT writes target_modules from a set, in hash order, which changes between processes: sorted, the
    adapter's bytes (and dvc.lock) are the same on every run."""
    data = json.loads(config.read_text(encoding="utf-8"))
    if isinstance(data.get("target_modules"), list):
        data["target_modules"] = sorted(data["target_modules"])
        config.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")


def sft_config_kwargs(params: Params, checkpoints: Path, budget: TrainingBudget, packing: bool, bf16: bool,
                      cuda: bool = False) -> dict[str, Any]:
    """The SFTConfig arguments: our defaults, then params.training.sft, then the fields we own."""
    from trl import SFTConfig

    training = params.training
    known = {f.name for f in dataclasses.fields(SFTConfig)}
    for key in training.sft:
        if key in OWNED_FIELDS:
            raise PolyinstructError(f"params.training.sft.{key}: set by {OWNED_FIELDS[key]}; remove it from sft")
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "see the trl.SFTConfig documentation"
            raise PolyinstructError(f"params.training.sft.{key}: not a field of trl.SFTConfig; {hint}")
    kwargs = {**SFT_DEFAULTS, **_check_sft_types(SFTConfig, training.sft)}
    if "bf16" not in training.sft and "fp16" not in training.sft:
        kwargs |= {"bf16": bf16, "fp16": False}  # TRL defaults to bf16=True even on CPU
    kwargs.setdefault("dataloader_pin_memory", cuda)  # pinning without a GPU only warns
    kwargs.setdefault("use_cpu", not cuda)  # also what makes a torchrun/MULTI_CPU launch distributed on CPUs
    kwargs |= {
        "output_dir": str(checkpoints),
        **sft_budget_kwargs(budget),
        "packing": packing,
        "padding_free": training.padding_free,
        "activation_checkpointing": training.gradient_checkpointing,
    }
    kwargs.setdefault("data_seed", kwargs["seed"])
    return kwargs


def _read_frame(path: Path) -> pl.DataFrame:
    frame = pl.from_arrow(read_table(path, required=EXPORT_COLUMNS))
    assert isinstance(frame, pl.DataFrame)  # a Table gives a DataFrame
    return frame


def _read_mix_manifest(mix_dir: Path) -> dict[str, Any]:
    return read_manifest(mix_dir) if (mix_dir / "manifest.json").exists() else {}


def _read_mix(mix_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    if not (mix_dir / "train.parquet").exists():
        raise PolyinstructError(f"{mix_dir}: no train.parquet; build the mixture first (polyinstruct mix ... --out"
                                f" {mix_dir})")
    train = _read_frame(mix_dir / "train.parquet")
    if train.is_empty():
        raise PolyinstructError(f"{mix_dir}/train.parquet: the mixture is empty; rebuild it with a larger budget")
    val_path = mix_dir / "validation.parquet"
    validation = _read_frame(val_path) if val_path.exists() else train.clear()
    return train, validation, read_manifest(mix_dir)



def prepare_training(mix_dir: Path, base_model: str | Path, out: Path, params: Params, *,
                     max_steps: int | None = None, template: str | None = None,
                     packing: bool | None = None, checkpoints: Path | None = None,
                     resolve_base: ResolveBase = model_directory) -> TrainSetup:
    """Load data, tokenizer and model, and build the SFTTrainer (nothing trained yet)."""
    import datasets
    import torch
    from accelerate import PartialState
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    quiet_libraries()
    mix_dir, out = Path(mix_dir), Path(out)
    training = params.training
    template = check_template(template or training.template)
    budget = TrainingBudget(steps=max_steps) if max_steps else training.budget
    use_packing = training.packing if packing is None else packing
    bf16 = _bf16_capable()

    train_frame, val_frame, mix_manifest = _read_mix(mix_dir)
    with PartialState(cpu=not torch.cuda.is_available()).main_process_first():  # build `smoke` once, not per rank
        base_path = resolve_base(base_model, params)
    tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    if template == "chat" and not tokenizer.chat_template:
        raise PolyinstructError(f"{base_path}: tokenizer has no chat template; use --template alpaca or bactrian")

    kwargs = sft_config_kwargs(params, checkpoints or out / CHECKPOINTS, budget, use_packing, bf16,
                               torch.cuda.is_available())
    try:
        config = SFTConfig(**kwargs)
    except (ValueError, TypeError) as err:
        raise PolyinstructError(f"params.training.sft: trl.SFTConfig rejected it: {str(err).splitlines()[0]}") \
            from None

    n_eval = min(len(val_frame), training.max_eval_examples)
    eval_frame = val_frame.sample(n_eval, seed=config.seed).sort("lang", "id") if n_eval else val_frame
    train_ds = datasets.Dataset.from_list(to_prompt_completion(train_frame, template))
    eval_ds = datasets.Dataset.from_list(to_prompt_completion(eval_frame, template)) if n_eval else None

    model = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=torch.bfloat16 if bf16 else torch.float32)
    lora = training.lora
    peft_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                             target_modules=lora.target_modules, bias="none", task_type="CAUSAL_LM")
    try:
        trainer = SFTTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, peft_config=peft_config)
    except ValueError as err:  # TRL's own checks (e.g. padding_free without packing needs max_length null)
        raise PolyinstructError(f"training setup rejected by TRL: {str(err).splitlines()[0]}") from None
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_rich_progress_callback())
    plan = plan_budget(trainer, budget)
    apply_plan(trainer, plan)
    if not is_smoke(base_path) and PartialState().is_main_process:
        warn(real_run_warnings(plan, float(config.learning_rate), str(base_model)))
    return TrainSetup(
        trainer=trainer, base_path=base_path, base_spec=str(base_model),
        smoke_base=is_smoke(base_path), smoke_data=bool(mix_manifest.get("smoke_data")), mix_manifest=mix_manifest,
        template=template, precision="bf16" if config.bf16 else "fp16" if config.fp16 else "fp32",
        device=str(config.device), n_train=len(train_ds), n_eval=n_eval, plan=plan,
    )


def _loss_curve(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"step": int(e["step"]), "loss": float(e["loss"])} for e in log_history
            if "loss" in e and "step" in e and math.isfinite(float(e["loss"]))]


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    # The saved config must be deterministic: no hub token, no timestamped logging dir.
    drop = {"hub_token", "logging_dir", "push_to_hub_token"}
    return {k: v for k, v in config.items() if k not in drop and not k.startswith("_")}


def train(mix_dir: Path, base_model: str | Path, out: Path, params: Params, *, metrics_dir: Path | None = None,
          max_steps: int | None = None, template: str | None = None, packing: bool | None = None,
          resume: bool = False, checkpoints: Path | None = None,
          resolve_base: ResolveBase = model_directory) -> dict[str, Any]:
    """Train one adapter; write it (with tokenizer and full config) to `out` and the loss curve and
    throughput to `metrics_dir` (default: `out`). Returns the train metrics. Checkpoints go to
    `checkpoints` (default OUT/checkpoints); with `resume`, a matching run's last checkpoint is resumed."""
    import peft
    import torch
    import transformers
    import trl
    from accelerate import PartialState

    out = Path(out)
    metrics_dir = Path(metrics_dir) if metrics_dir else out
    checkpoints = Path(checkpoints) if checkpoints else out / CHECKPOINTS
    # One process per GPU under `accelerate launch` (per CPU socket under a MULTI_CPU config); created
    # here, before the Trainer, so it must say CPU when there is no GPU or multi-CPU runs stay single.
    state = PartialState(cpu=not torch.cuda.is_available())
    base_identity = {"spec": str(base_model), "manifest": read_manifest(base_model) if Path(base_model).is_dir()
                     else {}}  # DVC always passes models/base_lm: its manifest tells models apart
    fingerprint = run_fingerprint(params, _read_mix_manifest(Path(mix_dir)), base_identity,
                                  check_template(template or params.training.template))
    last_checkpoint = last_checkpoint_for(checkpoints, fingerprint, resume) if state.is_main_process else None
    state.wait_for_everyone()
    if not state.is_main_process and resume:  # the main process kept or cleared them; follow its choice
        last_checkpoint = complete_checkpoint(checkpoints) if checkpoints.is_dir() else None
    start_step, tokens_before = 0, 0
    if last_checkpoint:  # read before training: save_total_limit may delete this checkpoint
        from transformers import TrainerState

        resumed = TrainerState.load_from_json(str(Path(last_checkpoint) / "trainer_state.json"))
        start_step, tokens_before = resumed.global_step, resumed.num_input_tokens_seen
    setup = prepare_training(mix_dir, base_model, out, params, max_steps=max_steps, template=template,
                             packing=packing, checkpoints=checkpoints, resolve_base=resolve_base)
    trainer = setup.trainer
    eval_before = trainer.evaluate()["eval_loss"] if setup.n_eval else None
    result = trainer.train(resume_from_checkpoint=last_checkpoint)
    eval_after = trainer.evaluate()["eval_loss"] if setup.n_eval else None

    history = trainer.state.log_history
    curve = _loss_curve(history)
    runtime = float(result.metrics.get("train_runtime", 0.0))
    train_tokens = int(trainer.state.num_input_tokens_seen - tokens_before)
    first, last = (curve[0]["loss"], curve[-1]["loss"]) if curve else (None, None)
    metrics: dict[str, Any] = {
        "mixture": setup.mix_manifest.get("name", Path(mix_dir).name),
        "smoke": setup.smoke_base or setup.smoke_data,
        "smoke_base_model": setup.smoke_base,
        "smoke_training_data": setup.smoke_data,
        "steps": int(trainer.state.global_step),
        "world_size": int(trainer.args.world_size),  # processes; tokens are summed over all of them
        "resumed_from_step": start_step if last_checkpoint else None,
        "first_loss": first,
        "last_loss": last,
        "loss_drop": (first - last) if curve else None,
        "eval_loss_before": eval_before,
        "eval_loss_after": eval_after,
        "tokens_per_s": train_tokens / runtime if runtime > 0 else None,
        "train_tokens": train_tokens,
        "tokens_seen": int(trainer.state.num_input_tokens_seen),  # the mixture's compute, resumed steps included
        "epochs": round(float(trainer.state.epoch or 0.0), 4),
        **setup.plan.as_metrics(),
        "train_runtime_s": runtime,
        "train_examples": setup.n_train,
        "eval_examples": setup.n_eval,
        "template": setup.template,
        "packing": bool(trainer.args.packing),
        "padding_free": bool(trainer.padding_free),
        "precision": setup.precision,
        "device": setup.device,
        "losses": curve,
    }
    notes = ["SMOKE: random-weight base model."] if setup.smoke_base else []
    notes += ["SMOKE: trained on smoke-model translations."] if setup.smoke_data else []
    if notes:
        metrics["note"] = " ".join([*notes, "These numbers test the pipeline, not the method."])
    trainer.save_model(str(out))  # adapter + adapter_config.json + tokenizer; every rank calls it (ZeRO-3)
    if not trainer.is_world_process_zero():
        return metrics
    _sort_target_modules(out / "adapter_config.json")
    lora = params.training.lora
    write_json({
        "sft_config": _jsonable(trainer.args.to_dict()),
        "lora": lora.model_dump(),
        "template": setup.template,
        "max_steps": trainer.args.max_steps,
        "budget": setup.plan.as_metrics(),
        "max_eval_examples": params.training.max_eval_examples,
        "base_model": setup.base_spec,
        "base_model_path": str(setup.base_path),
        "base_model_manifest": read_manifest(setup.base_path),
        "mixture": {k: setup.mix_manifest.get(k) for k in ("name", "recipe", "seed", "content_sha256",
                                                           "total_examples", "smoke_data")},
        "precision": setup.precision,
        "versions": {"trl": trl.__version__, "peft": peft.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__},
    }, out / "training_config.json")
    write_json(setup.mix_manifest, out / "mixture.json")  # for the model card (polyinstruct push --kind model)
    write_json({"kind": "lora_adapter", "smoke": metrics["smoke"], "template": setup.template,
                "base_model": setup.base_spec, "mixture": metrics["mixture"]}, out / "manifest.json")
    data_metrics, timing = split_timing(metrics, RUN_KEYS)
    write_json(data_metrics, metrics_dir / "train_metrics.json")
    write_timing(timing, metrics_dir / "train_metrics.json")
    write_csv_rows(curve, ["step", "loss"], metrics_dir / "loss.csv")
    if not checkpoints.resolve().is_relative_to(out.resolve()):
        shutil.rmtree(checkpoints, ignore_errors=True)  # kept only to resume a killed run; the adapter is in out
    return metrics
