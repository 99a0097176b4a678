"""A work memory: immutable Parquet shards of finished results, so a rerun redoes nothing done.

Used by the translate stage (units -> translations) and the generate engine (prompts -> responses).
The memory lives under `root/<digest of its key>/`, where the key is everything a result depends on
(model fingerprint, languages, decoding settings). A shard is named by the hash of the items it holds,
so writing the same work twice (a rerun, two workers) is harmless, and a run killed with SIGKILL loses
at most the shard in flight.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from schemas.artifacts import write_json, write_parquet
from schemas.errors import PolyinstructError

Result = TypeVar("Result")


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


class ShardMemory:
    """Rows of `schema` (its first column is the item, a string) in shards under `root/<key digest>/`.
    The other columns are the fields of `result_type`, a dataclass, in order: `to_columns` and
    `from_columns` are the one conversion between results and Arrow (shards, Ray's blocks)."""

    def __init__(self, root: Path | str, key: dict[str, Any], schema: pa.Schema, label: str,
                 result_type: type) -> None:
        self.key = key
        self.schema = schema
        self.label = label  # e.g. "translation memory", in error messages
        self.item = schema.names[0]
        self.result_type = result_type
        self.directory = Path(root) / key_digest(key)
        names = [f.name for f in dataclasses.fields(result_type)]
        if names != schema.names[1:]:
            raise TypeError(f"{label}: columns {schema.names[1:]} are not the fields {names} of {result_type}")

    def to_columns(self, results: Sequence[Any]) -> dict[str, pa.Array]:
        """Results -> the memory's columns (the item column aside), typed by the schema."""
        return {f.name: pa.array([getattr(r, f.name) for r in results], f.type) for f in list(self.schema)[1:]}

    def from_columns(self, columns: dict[str, Sequence[Any]]) -> list[Any]:
        """The memory's columns (lists or arrays, the item column aside) -> results, in row order."""
        values = [columns[name] for name in self.schema.names[1:]]
        values = [v.to_pylist() if isinstance(v, pa.Array | pa.ChunkedArray) else list(v) for v in values]
        return [self.result_type(*row) for row in zip(*values, strict=True)]

    def lookup(self, items: Iterable[str]) -> dict[str, Any]:
        """item -> result, for those of `items` the memory holds."""
        return {item: self.result_type(*row) for item, row in self.lookup_rows(items).items()}

    def write_shard(self, items: Sequence[str], results: Sequence[Any]) -> Path:
        return self.write_rows(items, self.to_columns(results))

    def shards(self) -> list[Path]:
        return sorted(self.directory.glob("shard-*.parquet")) if self.directory.is_dir() else []

    def lookup_rows(self, items: Iterable[str]) -> dict[str, tuple[Any, ...]]:
        """item -> the other columns, for those of `items` the memory holds (one DuckDB semi-join)."""
        files = self.shards()
        wanted = pa.table({"item": pa.array(list(items), pa.string())})
        if not files or not wanted.num_rows:
            return {}
        import duckdb

        columns = ", ".join(f'"{name}"' for name in self.schema.names)
        con = duckdb.connect()
        try:
            con.register("wanted", wanted)
            found = con.sql(
                f"""SELECT {columns} FROM (
                     SELECT *, row_number() OVER (PARTITION BY "{self.item}" ORDER BY filename) AS copy
                     FROM read_parquet($files, filename = true)
                     WHERE "{self.item}" IN (SELECT item FROM wanted)) WHERE copy = 1""",
                params={"files": [str(f) for f in files]},
            ).to_arrow_table()
        except duckdb.Error as err:
            raise PolyinstructError(f"{self.directory}: {self.label} unreadable ({str(err).splitlines()[0]});"
                                    " delete the directory to rebuild it") from None
        finally:
            con.close()
        cols = [found.column(name).to_pylist() for name in self.schema.names]
        return {row[0]: tuple(row[1:]) for row in zip(*cols, strict=True)}

    def write_rows(self, items: Sequence[str], columns: dict[str, Any]) -> Path:
        """One shard: `items` and the other columns of `schema`, written atomically."""
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            write_json(self.key, self.directory / "key.json")
        digest = hashlib.sha256("\0".join(items).encode()).hexdigest()[:20]
        table = pa.table({self.item: list(items), **columns})
        return write_parquet(table, self.directory / f"shard-{digest}.parquet", self.schema)


class ShardWriter(Protocol[Result]):
    def write_shard(self, items: Sequence[str], results: Sequence[Result]) -> Path: ...


def shard_cut(pending: Sequence[str], shard_size: int) -> list[list[str]]:
    """The one cut of pending items into shards (every backend's): a resumed run cuts the same shards."""
    return [list(pending[start:start + shard_size]) for start in range(0, len(pending), shard_size)]


def run_in_shards(pending: Sequence[str], work: Callable[[Sequence[str]], list[Result]],
                  memory: ShardWriter[Result], shard_size: int) -> dict[str, Result]:
    """Do `work` shard by shard, each shard persisted before the next starts. Pending items come in a
    fixed order (`pending_order`), so a resumed run cuts the same shards."""
    done: dict[str, Result] = {}
    for chunk in shard_cut(pending, shard_size):
        results = work(chunk)
        if len(results) != len(chunk):
            raise RuntimeError(f"engine returned {len(results)} results for {len(chunk)} items")
        memory.write_shard(chunk, results)
        done.update(zip(chunk, results, strict=True))
    return done


def pending_order(items: Iterable[str]) -> list[str]:
    return sorted(set(items), key=lambda u: (len(u), u))
