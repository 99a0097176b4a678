"""The export layout contract: a folder laid out as a Hugging Face dataset repository.

    {out}/README.md                                   dataset card (YAML metadata + body)
    {out}/{config}/{split}-{i:05d}-of-{n:05d}.parquet  columns id, lang, instruction, input, output, model

dataset_builder/export writes it; trl_training reads it through `export_split_files`."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from schemas.errors import PolyinstructError
from schemas.models import SMOKE_MODEL_PREFIX
from schemas.records import TEXT_FIELDS, TRANSLATED_SCHEMA

EXPORT_COLUMNS: tuple[str, ...] = ("id", "lang", *TEXT_FIELDS, "model")
EXPORT_SCHEMA: pa.Schema = pa.schema([TRANSLATED_SCHEMA.field(name) for name in EXPORT_COLUMNS])
SPLITS: tuple[str, ...] = ("train", "validation", "test")
CARD_NAME = "README.md"
SHARD_NAME = "{split}-{i:05d}-of-{n:05d}.parquet"
SHARD_GLOB = "*/{split}-*-of-*.parquet"  # every config's shards of one split


def is_smoke_model(model: str) -> bool:
    """A row's `model` fingerprint says a smoke (random-weight) model made it."""
    return model.startswith(SMOKE_MODEL_PREFIX)


def export_split_files(export_dir: Path, split: str, required: bool = True) -> list[Path]:
    """The shards of one split, all configs, in path order. The export leaves an empty split out of a
    config, so a split may have no shards at all."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise PolyinstructError(f"{export_dir}: export directory not found; run `polyinstruct export` (dvc repro"
                                " export) first")
    files = sorted(export_dir.glob(SHARD_GLOB.format(split=split)))
    if not files and required:
        raise PolyinstructError(f"{export_dir}: no {split} shards ({export_dir}/<config>/{split}-00000-of-00001"
                                ".parquet); point --in at the output of `polyinstruct export`")
    return files
