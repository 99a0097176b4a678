"""Reading and writing the files stages exchange. Writes are atomic (temp file, then rename) and
deterministic (stable column order, no timestamps), so a second `dvc repro` finds nothing changed."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.errors import PolyinstructError


def umask_mode(mode: int = 0o666) -> int:
    """`mode` as the user's umask lets it be: what `open()` would give a new file (0o777 for a folder)."""
    current = os.umask(0)
    os.umask(current)
    return mode & ~current


def _atomic_target(path: Path) -> tuple[Path, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, umask_mode())  # mkstemp makes 0600; a written file follows the umask like any other
    return path, Path(tmp)


def write_parquet(table: pa.Table, path: Path | str, schema: pa.Schema | None = None) -> Path:
    """Write a table (cast to `schema` when given) atomically with zstd compression."""
    path, tmp = _atomic_target(Path(path))
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    try:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


PARQUET_ROW_GROUP_ROWS = 1024 * 1024  # pyarrow's default (at most) for write_table


def write_parquet_batches(batches: Iterable[pa.RecordBatch], path: Path | str, schema: pa.Schema) -> Path:
    """Write record batches (each cast to `schema`) atomically, holding at most one row group in memory.
    The file is the one write_parquet writes for the same rows: row groups of PARQUET_ROW_GROUP_ROWS."""
    path, tmp = _atomic_target(Path(path))
    pending: list[pa.RecordBatch] = []
    rows, written = 0, False
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd", write_statistics=True) as writer:
            for batch in batches:
                pending.append(batch.select(schema.names).cast(schema))
                rows += batch.num_rows
                while rows >= PARQUET_ROW_GROUP_ROWS:
                    table = pa.Table.from_batches(pending, schema).combine_chunks()
                    writer.write_table(table.slice(0, PARQUET_ROW_GROUP_ROWS))
                    rest = table.slice(PARQUET_ROW_GROUP_ROWS)
                    pending, rows, written = rest.to_batches(), rest.num_rows, True
            if rows or not written:  # as write_table: the last, shorter row group, or an empty table's
                writer.write_table(pa.Table.from_batches(pending, schema).combine_chunks())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(obj: Any, path: Path | str) -> Path:
    path, tmp = _atomic_target(Path(path))
    try:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n",
                       encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_csv_rows(rows: Iterable[dict[str, Any]], columns: list[str], path: Path | str) -> Path:
    """Small CSVs for DVC plots."""
    import csv

    path, tmp = _atomic_target(Path(path))
    try:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def parquet_files(path: Path | str) -> list[Path]:
    """A Parquet file, or the sorted Parquet files of a directory; errors name the path and the fix."""
    path = Path(path)
    if not path.exists():
        raise PolyinstructError(f"{path}: not found; run the stage that writes it first (dvc repro)")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise PolyinstructError(f"{path}: directory holds no .parquet files")
    return files


def _parquet(read: Callable[[Path], Any], path: Path, required: Iterable[str]) -> Any:
    """`read(path)` (a table or a schema) with a one-line error for an unreadable file or missing columns."""
    try:
        found = read(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise PolyinstructError(f"{path}: not a readable Parquet file ({err})") from None
    names = found.column_names if isinstance(found, pa.Table) else found.names
    missing = [c for c in required if c not in names]
    if missing:
        raise PolyinstructError(f"{path}: missing column(s) {', '.join(missing)}; it has {', '.join(names)}")
    return found


def read_table(path: Path | str, required: Iterable[str] = ()) -> pa.Table:
    """Read one Parquet file and check it has the `required` columns."""
    return _parquet(pq.read_table, Path(path), required)


def read_schema(path: Path | str, required: Iterable[str] = ()) -> pa.Schema:
    """The schema of one Parquet file (its footer only), checked to have the `required` columns."""
    return _parquet(pq.read_schema, Path(path), required)


OUTPUT_MANIFEST = ".polyinstruct-outputs.json"  # the files a stage wrote into its output folder


def _manifest_names(folder: Path, stage: str) -> set[str]:
    manifest = folder / OUTPUT_MANIFEST
    try:
        written = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(written, dict) or written.get("stage") != stage:
        return set()
    return {str(name) for name in written.get("files", [])}


def claim_output_folder(folder: Path | str, stage: str, inputs: Iterable[Path | str] = ()) -> set[str]:
    """Check that `folder` may be (re)written by `stage`, before any work. Refused: a folder that is,
    or holds, one of the stage's `inputs`, and a folder holding files that `stage` did not write there
    (per its manifest). Returns the names the stage wrote last time (they may be replaced)."""
    folder = Path(folder)
    resolved = folder.resolve()
    for inp in inputs:
        path = Path(inp).resolve()
        if path == resolved or resolved in path.parents:
            raise PolyinstructError(f"{folder}: the output folder holds the input {inp}; write to another"
                                    " folder (the stage replaces the files in its output folder)")
    ours = _manifest_names(folder, stage)
    if not folder.is_dir():
        return ours
    foreign = sorted(p.name for p in folder.iterdir()
                     if p.name != OUTPUT_MANIFEST and p.name not in ours and not p.name.startswith("."))
    if foreign:
        raise PolyinstructError(f"{folder}: holds {len(foreign)} file(s) that `{stage}` did not write, e.g."
                                f" {foreign[0]}; choose an empty or new output folder")
    return ours


def record_output_folder(folder: Path | str, stage: str, names: Iterable[str]) -> None:
    """Write the manifest `claim_output_folder` reads, and remove files of ours no longer written."""
    folder = Path(folder)
    names = sorted(set(names))
    for stale in _manifest_names(folder, stage) - set(names):
        (folder / stale).unlink(missing_ok=True)
    write_json({"stage": stage, "files": names}, folder / OUTPUT_MANIFEST)


def parquet_rows(path: Path | str) -> int:
    """Rows of a written Parquet file, from its footer: a count taken on the written side."""
    return pq.read_metadata(path).num_rows
