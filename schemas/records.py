"""Record contracts exchanged between stages as Parquet: one pyarrow schema and one typed model each."""

from __future__ import annotations

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from schemas.errors import PolyinstructError

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


class RespondedRecord(TranslatedRecord):
    """A translated record whose output was generated in its language (Bactrian-X's recipe)."""

    output_model: str  # the responder's fingerprint (`smoke:` prefix for a smoke model), or `translated`


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
RESPONDED_SCHEMA: pa.Schema = _arrow_schema(RespondedRecord)
REJECT_SCHEMA: pa.Schema = _arrow_schema(Reject)
# What the quality stage needs at minimum from any parallel dataset (ours, or Bactrian-X itself).
PARALLEL_REQUIRED_COLUMNS: tuple[str, ...] = ("id", "lang", *TEXT_FIELDS)


def _same_kind(found: pa.DataType, expected: pa.DataType) -> bool:
    """Equal types, counting the string and list encodings Arrow writers choose freely as one."""
    if found.equals(expected) or pa.types.is_null(found):  # a column of nulls holds no value of a wrong type
        return True
    if pa.types.is_dictionary(found):
        return _same_kind(found.value_type, expected)
    if pa.types.is_string(expected):
        return pa.types.is_string(found) or pa.types.is_large_string(found) or pa.types.is_string_view(found)
    if pa.types.is_list(expected):
        return (pa.types.is_list(found) or pa.types.is_large_list(found)) and _same_kind(found.value_type,
                                                                                           expected.value_type)
    return False


def check_column_types(schema: pa.Schema, contract: pa.Schema, path: object) -> None:
    """Types are checked, not cast: a column of the contract with another type is a one-line error
    naming the file, the column, the type found and the type expected. Absent columns are not checked."""
    for field in contract:
        index = schema.get_field_index(field.name)
        if index < 0:
            continue
        found = schema.field(index).type
        if not _same_kind(found, field.type):
            raise PolyinstructError(f"{path}: column {field.name} has type {found}, expected {field.type};"
                                    " write that column with the expected type")
