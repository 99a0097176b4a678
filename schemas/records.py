"""Record contracts exchanged between stages as Parquet: one pyarrow schema and one typed model each."""

from __future__ import annotations

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

TEXT_FIELDS: tuple[str, ...] = ("instruction", "input", "output")


class SourceRecord(BaseModel):
    """An English instruction record after ingest. `id` is `{source}-{index}` and stable across runs."""

    model_config = ConfigDict(extra="forbid")
    id: str
    source: str
    instruction: str
    input: str
    output: str


class TranslatedRecord(BaseModel):
    """A record in one target language, with the flags the quality stage needs."""

    model_config = ConfigDict(extra="forbid")
    id: str
    lang: str  # FLORES-200 code
    instruction: str
    input: str
    output: str
    model: str  # model fingerprint; starts with `smoke:` for a smoke model
    smoke: bool
    truncated_fields: list[str]  # fields where a unit hit max_decoding_length
    protected_spans_ok: bool  # every protected span (code, URL, number, placeholder) restored exactly once
    kept_verbatim: bool  # mostly-code record copied untranslated under translate.code_policy=keep
    # The model's confidence: its units' CTranslate2 scores (log-probability per token), averaged with
    # target tokens as weights. Null when unknown (kept verbatim, a memory migrated from format 1).
    log_prob: float | None


class Reject(BaseModel):
    """A row that left the pipeline, and why. Every stage writes these; nothing is dropped silently."""

    model_config = ConfigDict(extra="forbid")
    id: str
    lang: str
    stage: str
    reason: str
    detail: str


def _arrow_schema(model: type[BaseModel]) -> pa.Schema:
    types = {str: pa.string(), bool: pa.bool_(), list[str]: pa.list_(pa.string()), float | None: pa.float64()}
    return pa.schema([pa.field(name, types[field.annotation], nullable=field.annotation == float | None)
                      for name, field in model.model_fields.items()])


SOURCE_SCHEMA: pa.Schema = _arrow_schema(SourceRecord)
TRANSLATED_SCHEMA: pa.Schema = _arrow_schema(TranslatedRecord)
REJECT_SCHEMA: pa.Schema = _arrow_schema(Reject)
# What the quality stage needs at minimum from any parallel dataset (ours, or Bactrian-X itself).
PARALLEL_REQUIRED_COLUMNS: tuple[str, ...] = ("id", "lang", *TEXT_FIELDS)
