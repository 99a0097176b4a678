"""The translation memory's on-disk format version, and the migration of older memories.

Format 1 (no `format.json`): unit, translation, source_tokens, target_tokens, truncated.
Format 2: adds `score`, CTranslate2's score of the unit's translation (`return_scores=True`: the
hypothesis log-probability, normalised by length as CTranslate2 does with length_penalty 1), null
where unknown. A format-1 memory is migrated in place on first use: each shard gets a null score
column (its units keep their translations; their score stays unknown until the memory is deleted and
rebuilt), then `format.json` is written. A memory from a newer polyinstruct is refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.artifacts import write_json, write_parquet
from schemas.errors import PolyinstructError

MEMORY_FORMAT = 2
FORMAT_FILE = "format.json"


def memory_format(directory: Path) -> int:
    """The format of the memory in `directory` (1 when it predates format files)."""
    path = directory / FORMAT_FILE
    if not path.exists():
        return 1
    try:
        return int(json.loads(path.read_text())["version"])
    except (ValueError, KeyError, TypeError):
        raise PolyinstructError(f"{path}: unreadable translation-memory format file; delete {directory} to "
                                "rebuild the memory") from None


def ensure_current(directory: Path, schema: pa.Schema) -> int:
    """Bring the memory in `directory` to MEMORY_FORMAT; returns how many shards were migrated.
    A missing directory is a new memory: it only gets the format file."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    version = memory_format(directory)
    if version == MEMORY_FORMAT:
        return 0
    if version > MEMORY_FORMAT:
        raise PolyinstructError(f"{directory}: translation memory format {version} is newer than this polyinstruct "
                                f"reads ({MEMORY_FORMAT}); upgrade polyinstruct or use another translate.cache")
    migrated = 0
    for shard in sorted(directory.glob("shard-*.parquet")):
        table = pq.read_table(shard)
        if "score" not in table.column_names:
            table = table.append_column("score", pa.nulls(table.num_rows, pa.float32()))
            write_parquet(table, shard, schema)  # atomic: a killed migration leaves whole shards
            migrated += 1
    write_json({"version": MEMORY_FORMAT}, directory / FORMAT_FILE)
    return migrated


def stamp(directory: Path) -> None:
    """Mark a new memory directory with the current format."""
    if not (Path(directory) / FORMAT_FILE).exists():
        write_json({"version": MEMORY_FORMAT}, Path(directory) / FORMAT_FILE)
