"""params.yaml `data`, `languages` and `models`: what goes in, into which languages, with which models."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.languages import ENGLISH, resolve
from schemas.params.section import Section

FormatName = Literal["auto", "alpaca", "dolly", "json", "jsonl", "csv", "parquet", "hf"]


class SourceParams(Section):
    """One input of several (`data.sources`): its records get ids `{name}-{index}` and its license goes
    into the dataset card."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.]+$")  # the `{name}` in ids; no '-' (ids are `{name}-{index}`)
    source: str  # a file path, `embedded`, or hf:ORG/NAME
    format: FormatName = "auto"
    column_map: dict[str, str] = Field(default_factory=dict)
    revision: str | None = None  # hf: a commit sha, tag or branch (pin a sha for a reproducible run)
    config: str | None = None  # hf: the dataset's config (subset) name
    license: str | None = None  # Hub license id, e.g. cc-by-4.0; else a known source's or export.licenses
    limit: int | None = Field(default=None, ge=1)  # this source's first N records (else data.limit)


# The embedded sample as a path relative to the project root: the default `data.source` of params.yaml.
PACKAGED_SAMPLE = "dataset_builder/data/sample_alpaca.json"


class DataParams(Section):
    # `embedded` (the sample shipped in the package), a file path, or `hf:ORG/NAME`.
    source: str = "embedded"
    format: Literal["auto", "alpaca", "dolly", "json", "jsonl", "csv", "parquet", "hf"] = "auto"
    # Maps our field -> the input's column, for generic files (e.g. {output: response}).
    column_map: dict[str, str] = Field(default_factory=dict)
    source_name: str | None = None  # the `{source}` in ids; defaults to the file stem
    revision: str | None = None  # hf: sources: commit sha, tag or branch
    config: str | None = None  # hf: sources: the dataset's config name
    # Several inputs instead of `source`, e.g. Alpaca + Dolly (see SourceParams); limit/sample apply to each.
    sources: list[SourceParams] = Field(default_factory=list)
    limit: int | None = Field(default=None, ge=1)
    sample: int | None = Field(default=None, ge=1)
    seed: int = 0
    max_field_chars: int = Field(default=100_000, ge=1)

    @model_validator(mode="after")
    def _one_source_form(self) -> DataParams:
        # By value, not by fields set: params are dumped and re-validated with overrides (the CLI).
        # With several sources, `source` only anchors DVC's dependency (dvc.yaml hashes `${data.source}`):
        # the packaged sample (nothing to track), or the folder holding the sources' local files.
        anchor = self.source in ("embedded", PACKAGED_SAMPLE) or Path(self.source).is_dir()
        single = (not anchor or self.format != "auto" or self.column_map or self.source_name
                  or self.revision or self.config)
        if self.sources and single:
            raise ValueError("give data.source (one input) or data.sources (several), not both; with sources,"
                             " data.source may only name the folder holding their local files (for DVC)")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"data.sources: names must be distinct (they prefix the ids), got {', '.join(names)}")
        return self


class LanguagesParams(Section):
    source: str = ENGLISH.flores
    targets: list[str] = Field(default_factory=lambda: ["fra_Latn", "rus_Cyrl", "zho_Hans"])

    @field_validator("source")
    @classmethod
    def _known_source(cls, code: str) -> str:
        return resolve(code).flores

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, codes: list[str]) -> list[str]:
        if not codes:
            raise ValueError("list at least one target language")
        flores = [resolve(c).flores for c in codes]
        if len(set(flores)) != len(flores):
            raise ValueError("a target language is listed twice")
        return flores


class ModelsParams(Section):
    # `smoke`, a Hub id (facebook/nllb-200-distilled-600M), an HF directory or a CTranslate2 directory.
    translation: str = "smoke"
    # `smoke`, a Hub id (meta-llama/Llama-3.2-1B) or a model directory.
    base_lm: str = "smoke"
    # The instruction-tuned LM of the generate recipe: `smoke`, a Hub id (Qwen/Qwen2.5-7B-Instruct),
    # an HF directory or a CTranslate2 directory (converted to CTranslate2 once, cached).
    responder: str = "smoke"
    smoke_seed: int = 0
    cache_dir: str = "models/cache"
