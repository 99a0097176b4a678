"""The translation memory: unit -> UnitResult, in immutable Parquet shards per key (model fingerprint,
source and target language, decoding settings). A unit is translated once per target language, however
many records hold it and however often the stage reruns; a run killed with SIGKILL loses at most the
shard in flight (dataset_builder.memory)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from dataset_builder.memory import ShardMemory
from dataset_builder.memory_format import ensure_current, stamp
from schemas.params import TranslateParams

MEMORY_COLUMNS = pa.schema([
    pa.field("unit", pa.string(), nullable=False),
    pa.field("translation", pa.string(), nullable=False),
    pa.field("source_tokens", pa.int32(), nullable=False),
    pa.field("target_tokens", pa.int32(), nullable=False),
    pa.field("truncated", pa.bool_(), nullable=False),
    pa.field("score", pa.float32(), nullable=True),  # memory format 2 (dataset_builder.memory_format)
])


@dataclass(frozen=True)
class UnitResult:
    translation: str
    source_tokens: int
    target_tokens: int
    truncated: bool  # the output reached this unit's own max decoding length
    score: float | None = None  # CTranslate2's score (log-probability per token); None: unknown



def memory_key(model: str, src_lang: str, tgt_lang: str, settings: TranslateParams, compute_type: str
               ) -> dict[str, Any]:
    """What a cached translation depends on. Filter thresholds, batch sizes and devices do not."""
    return {
        "model": model, "src_lang": src_lang, "tgt_lang": tgt_lang, "compute_type": compute_type,
        "beam_size": settings.beam_size, "no_repeat_ngram_size": settings.no_repeat_ngram_size,
        "repetition_penalty": settings.repetition_penalty,
        "decoding_length_ratio": settings.decoding_length_ratio,
        "decoding_length_extra": settings.decoding_length_extra,
    }


class TranslationMemory(ShardMemory):
    """The translation memory: unit -> UnitResult, in immutable Parquet shards (dataset_builder.memory)."""

    def __init__(self, root: Path | str, key: dict[str, Any]) -> None:
        super().__init__(root, key, MEMORY_COLUMNS, "translation memory", UnitResult)
        self.migrated_shards = ensure_current(self.directory, MEMORY_COLUMNS)  # older formats, in place

    def lookup(self, units: Iterable[str]) -> dict[str, UnitResult]:
        """Cached results for those of `units` the memory holds."""
        return super().lookup(units)

    def write_shard(self, units: Sequence[str], results: Sequence[UnitResult]) -> Path:
        new = not self.directory.is_dir()
        path = super().write_shard(units, results)
        if new:
            stamp(self.directory)  # a new memory is born in the current format
        return path



def record_log_prob(units: Sequence[UnitResult]) -> float | None:
    """A record's confidence: its units' scores averaged with their target tokens (+1, the end token)
    as weights, so a long unit counts for more than a one-word one. None when any score is unknown."""
    if not units or any(u.score is None for u in units):
        return None
    weights = [u.target_tokens + 1 for u in units]
    return sum(w * float(u.score) for w, u in zip(weights, units, strict=True)) / sum(weights)  # type: ignore[arg-type]
