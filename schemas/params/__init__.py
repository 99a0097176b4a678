"""Typed model of `params.yaml`. Every knob of the pipeline lives here; a bad key or value fails
before any work starts, with one line naming the key and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from schemas.errors import PolyinstructError
from schemas.params.data import PACKAGED_SAMPLE, DataParams, FormatName, LanguagesParams, ModelsParams, SourceParams
from schemas.params.evaluate import JUDGE_PAIRWISE, JUDGE_RUBRIC, EvaluateParams, JudgeParams, ReportParams
from schemas.params.export import ExportParams
from schemas.params.quality import (
    DedupParams,
    FiltersParams,
    FilterSwitch,
    LangIdParams,
    LanguageBoundParams,
    LengthRatioParams,
    LlmFailuresParams,
    LowConfidenceParams,
    PlaceholderParams,
    QualityParams,
    RepetitionParams,
    RoundTripFilterParams,
    RoundTripParams,
    UntranslatedParams,
    ValidationParams,
)
from schemas.params.responses import DecodingParams, EndpointParams, ResponsesParams
from schemas.params.section import Section
from schemas.params.training import LoraParams, MixtureParams, TrainingBudget, TrainingParams
from schemas.params.translate import TranslateParams


class Params(Section):
    data: DataParams = DataParams()
    languages: LanguagesParams = LanguagesParams()
    models: ModelsParams = ModelsParams()
    translate: TranslateParams = TranslateParams()
    responses: ResponsesParams = ResponsesParams()
    quality: QualityParams = QualityParams()
    validation: ValidationParams = ValidationParams()
    export: ExportParams = ExportParams()
    mixtures: list[MixtureParams] = Field(default_factory=list)
    training: TrainingParams = TrainingParams()
    evaluate: EvaluateParams = EvaluateParams()
    report: ReportParams = ReportParams()

    @property
    def license_table(self) -> dict[str, str]:
        """Source/model name -> license: each `data.sources` entry's license, then export.licenses."""
        return {**{s.name: s.license for s in self.data.sources if s.license}, **self.export.licenses}

    @model_validator(mode="after")
    def _responses_cover_targets(self) -> Params:
        if self.responses.mode == "generate" and set(self.responses.languages) != set(self.languages.targets):
            raise ValueError("responses.languages must list exactly languages.targets in generate mode (the"
                             " filter reads every target from data/responded)")
        return self

    @model_validator(mode="after")
    def _translate_layout_covers_targets(self) -> Params:
        """dvc.yaml's two translate stages: one writes data/translated/ whole, so they cannot share a run."""
        translate, targets = self.translate, self.languages.targets
        grouped = [lang for langs in translate.one_process.values() for lang in langs]
        per_language = translate.per_language if translate.per_language is not None else (
            [] if grouped else targets)
        if len(translate.one_process) > 1 or (grouped and per_language):
            raise ValueError("translate.one_process takes one group, {NAME: [every target]}, and then"
                             " translate.per_language: [] (the group's stage writes data/translated/ whole)")
        listed = per_language or grouped
        if sorted(listed) != sorted(set(targets)) or len(listed) != len(set(listed)):
            key = "translate.per_language" if per_language or not grouped else "translate.one_process"
            raise ValueError(f"{key} must list exactly languages.targets, each once (dvc.yaml runs the translate"
                             f" stage over it): it lists {listed}, the targets are {targets}")
        return self

    @property
    def all_languages(self) -> list[str]:
        """Source first, then targets: every language the dataset holds."""
        return [self.languages.source, *[t for t in self.languages.targets if t != self.languages.source]]


def _one_line(err: ValidationError, path: Path) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        parent_model: type[BaseModel] = Params
        for part in first["loc"][:-1]:
            if isinstance(part, int):
                continue
            annotation = parent_model.model_fields[str(part)].annotation
            listed = part in ("mixtures", "sources")  # list[Model]: the model is its argument
            parent_model = getattr(annotation, "__args__", [annotation])[0] if listed else annotation
        allowed = ", ".join(parent_model.model_fields)
        return f"{path}: unknown key '{key}'; allowed keys here: {allowed}"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{path}: bad value for '{key}': {msg}"


def parse_params(raw: dict[str, Any], path: Path | str = "params.yaml") -> Params:
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise PolyinstructError(_one_line(err, Path(path))) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise PolyinstructError(f"{path}: params file not found; run from the project root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", -1) + 1
        raise PolyinstructError(f"{path}:{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if raw is not None and not isinstance(raw, dict):
        raise PolyinstructError(f"{path}: top level must be a mapping of sections (data, languages, ...)")
    return parse_params(raw, path)


__all__ = [
    "DataParams",
    "DecodingParams",
    "DedupParams",
    "EndpointParams",
    "EvaluateParams",
    "ExportParams",
    "FilterSwitch",
    "FiltersParams",
    "FormatName",
    "JUDGE_PAIRWISE",
    "JUDGE_RUBRIC",
    "JudgeParams",
    "LangIdParams",
    "LanguageBoundParams",
    "LanguagesParams",
    "LengthRatioParams",
    "LlmFailuresParams",
    "LoraParams",
    "LowConfidenceParams",
    "MixtureParams",
    "ModelsParams",
    "PACKAGED_SAMPLE",
    "Params",
    "PlaceholderParams",
    "QualityParams",
    "RepetitionParams",
    "ReportParams",
    "ResponsesParams",
    "RoundTripFilterParams",
    "RoundTripParams",
    "Section",
    "SourceParams",
    "TrainingBudget",
    "TrainingParams",
    "TranslateParams",
    "UntranslatedParams",
    "ValidationParams",
    "load_params",
    "parse_params",
]
