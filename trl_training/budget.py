"""Training budgets: how many optimisation steps a mixture gets, from `training.budget` (epochs, tokens
or steps), planned on the trainer's own tokenised dataset and data loader so that the count is what the
Trainer will run. Also the one-line warnings for settings that suit only the smoke model."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from schemas.params import TrainingBudget

# Above this learning rate a LoRA run on a real base model usually diverges; the smoke demo uses 5e-3.
MAX_REAL_LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class BudgetPlan:
    """The budget and what it means for one mixture."""

    budget: TrainingBudget
    steps: int  # optimisation steps the Trainer runs
    steps_per_epoch: int
    tokens_per_epoch: int  # non-padding input tokens of one pass over the train split
    examples_per_step: int  # per_device batch x gradient accumulation x processes

    @property
    def epochs(self) -> float:
        return self.steps / self.steps_per_epoch if self.steps_per_epoch else 0.0

    @property
    def planned_tokens(self) -> int:
        return round(self.epochs * self.tokens_per_epoch)

    def as_metrics(self) -> dict[str, Any]:
        return {"budget": self.budget.model_dump(exclude_none=True), "planned_steps": self.steps,
                "planned_epochs": round(self.epochs, 4), "planned_tokens": self.planned_tokens,
                "steps_per_epoch": self.steps_per_epoch, "tokens_per_epoch": self.tokens_per_epoch,
                "examples_per_step": self.examples_per_step}


def sft_budget_kwargs(budget: TrainingBudget) -> dict[str, Any]:
    """SFTConfig fields for the budget. A token budget starts with one step and is planned once the
    trainer has tokenised the data (`apply_plan`)."""
    if budget.epochs is not None:
        return {"num_train_epochs": budget.epochs, "max_steps": -1}
    return {"max_steps": budget.steps if budget.steps is not None else 1}


def plan_budget(trainer: Any, budget: TrainingBudget) -> BudgetPlan:
    """Steps for the budget on this trainer's train dataset (after TRL's tokenisation, truncation and
    packing) and data loader (its batch size, gradient accumulation and process count)."""
    args = trainer.args
    accumulation = max(1, int(args.gradient_accumulation_steps))
    steps_per_epoch = max(1, math.ceil(len(trainer.get_train_dataloader()) / accumulation))
    lengths = trainer.train_dataset["input_ids"]
    tokens_per_epoch = int(sum(len(ids) for ids in lengths))
    examples_per_step = int(args.per_device_train_batch_size) * accumulation * int(args.world_size)
    if budget.steps is not None:
        steps = budget.steps
    elif budget.epochs is not None:
        steps = math.ceil(budget.epochs * steps_per_epoch)
    else:
        assert budget.tokens is not None  # exactly one is set (TrainingBudget)
        steps = max(1, math.ceil(budget.tokens * steps_per_epoch / max(1, tokens_per_epoch)))
    return BudgetPlan(budget=budget, steps=steps, steps_per_epoch=steps_per_epoch,
                      tokens_per_epoch=tokens_per_epoch, examples_per_step=examples_per_step)


def apply_plan(trainer: Any, plan: BudgetPlan) -> None:
    """Make the Trainer run exactly the planned steps (also for epochs: the same number it would derive)."""
    trainer.args.max_steps = plan.steps


def real_run_warnings(plan: BudgetPlan, learning_rate: float, base_model: str) -> list[str]:
    """One-line warnings for a non-smoke base model trained with the smoke demo's kind of settings."""
    found = []
    if learning_rate > MAX_REAL_LEARNING_RATE:
        found.append(f"training.sft.learning_rate {learning_rate:g} is above {MAX_REAL_LEARNING_RATE:g} for the real"
                     f" base model {base_model}; LoRA on a real model uses ~2e-4 (the presets use 3e-4)")
    if plan.epochs < 1:
        found.append(f"training.budget {plan.budget.describe()} is {plan.epochs:.2f} epoch(s) of this mixture"
                     f" ({plan.steps} of {plan.steps_per_epoch} steps per epoch) on the real base model"
                     f" {base_model}; set training.budget: {{epochs: N}} (the presets use 4-5)")
    return found


def warn(lines: list[str]) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)
