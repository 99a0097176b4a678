"""params.yaml `mixtures` and `training`: the LoRA runs and their language mixes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from schemas.languages import resolve
from schemas.params.section import Section


class MixtureParams(Section):
    name: str
    recipe: Literal["monolingual", "multilingual", "downsampled", "temperature", "english-only"]
    lang: str | None = None
    budget: int | None = Field(default=None, ge=1)
    budget_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, gt=0)
    disjoint_ids: bool = False
    seed: int = 0  # same seed, same rows

    @model_validator(mode="after")
    def _recipe_args(self) -> MixtureParams:
        if self.recipe == "monolingual" and not self.lang:
            raise ValueError(f"mixture '{self.name}': recipe monolingual needs `lang`")
        if self.recipe == "temperature" and self.temperature is None:
            raise ValueError(f"mixture '{self.name}': recipe temperature needs `temperature`")
        if self.lang:
            resolve(self.lang)
        return self


class LoraParams(Section):
    r: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"


class TrainingBudget(Section):
    """How much each mixture trains: exactly one of epochs over its train split, tokens seen (prompt +
    completion, padding excluded), or optimisation steps. Equal epochs give a budget-matched comparison
    when the mixtures have equal sizes (Chen et al.'s downsampled vs monolingual); equal tokens give
    every mixture the same compute whatever its size."""

    epochs: float | None = Field(default=None, gt=0)
    tokens: int | None = Field(default=None, ge=1)
    steps: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> TrainingBudget:
        given = [k for k in ("epochs", "tokens", "steps") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of epochs, tokens or steps, e.g. budget: {epochs: 3}")
        return self

    @property
    def kind(self) -> str:
        return "epochs" if self.epochs is not None else "tokens" if self.tokens is not None else "steps"

    def describe(self) -> str:
        return f"{getattr(self, self.kind):g} {self.kind}"


class TrainingParams(Section):
    template: Literal["alpaca", "bactrian", "chat"] = "alpaca"
    budget: TrainingBudget = TrainingBudget(steps=30)
    max_steps: int | None = Field(default=None, ge=1)  # legacy alias of budget: {steps: N}
    packing: bool = False
    padding_free: bool = False  # without packing needs sft.max_length: null (TRL does not truncate then)
    gradient_checkpointing: bool = False  # trade compute for memory on large models
    max_eval_examples: int = Field(default=64, ge=1)  # of the mix's validation split, for eval loss
    lora: LoraParams = LoraParams()
    # Passed through to trl.SFTConfig as-is (learning_rate, per_device_train_batch_size, ...).
    sft: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _legacy_max_steps(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("max_steps") is not None:
            if data.get("budget") is not None:
                raise ValueError("give budget or max_steps (the old form of budget: {steps: N}), not both")
            data = {**data, "budget": {"steps": data["max_steps"]}}
        return data
