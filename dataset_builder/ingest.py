"""Ingest: read English instruction data from any common layout into `SourceRecord` Parquet.

Bad records never stop the run: each goes to the rejects ledger with its file, line (or element)
and reason. Whole-file problems (missing, empty, undecodable array) are one-line errors."""

from __future__ import annotations

import codecs
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from dataset_builder.ingest_frame import check_frame
from schemas.artifacts import parquet_rows, write_json, write_parquet
from schemas.errors import PolyinstructError
from schemas.languages import ENGLISH
from schemas.ledger import check_conservation, refuse_empty_output, rejects_table, write_rejects
from schemas.params import DataParams
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS
from schemas.timings import write_timing

STAGE = "ingest"
EMBEDDED = "embedded"
# Our field -> the column that holds it, per known layout.
LAYOUT_COLUMNS: dict[str, dict[str, str]] = {
    "alpaca": {"instruction": "instruction", "input": "input", "output": "output"},
    "dolly": {"instruction": "instruction", "input": "context", "output": "response"},
}


@dataclass
class RawBatch:
    """Records as read, before checks: each with its position and where it came from."""

    source_name: str
    records: list[tuple[int, str, Any]] = field(default_factory=list)  # (index, location, record)
    unreadable: list[tuple[int, str, str, str]] = field(default_factory=list)  # (index, location, reason, detail)
    n_read: int = 0  # records the reader saw (array elements, non-blank lines, rows), counted by the reader
    frame: pl.DataFrame | None = None  # CSV/Parquet: kept columnar, never turned into `records`
    locate: Callable[[int], str] | None = None  # where row i of `frame` is (file:line or file: row i)


def embedded_sample_path() -> Path:
    return Path(str(resources.files("dataset_builder") / "data" / "sample_alpaca.json"))


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise PolyinstructError(f"{path}: file not found; check data.source in params.yaml or --in")
    if path.is_dir():
        raise PolyinstructError(f"{path}: is a directory; point --in at a file")
    data = _as_utf8(path, path.read_bytes())
    if not data.strip():
        raise PolyinstructError(f"{path}: file is empty; it must hold at least one instruction record")
    return data


# UTF-32 first: its little-endian mark starts with UTF-16's.
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
              (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _as_utf8(path: Path, data: bytes) -> bytes:
    """UTF-8 without its BOM. UTF-16/32 with a byte-order mark is re-encoded; without one, it is named."""
    for bom, encoding in _WIDE_BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding).encode("utf-8")
            except UnicodeDecodeError as err:
                raise PolyinstructError(f"{path}: starts with a {encoding.upper()} byte-order mark but byte"
                                        f" {err.start} is not {encoding.upper()}; re-encode the file as UTF-8") \
                    from None
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):]
    head = data[:4096]
    if head.count(b"\x00") > len(head) // 4:
        raise PolyinstructError(f"{path}: looks like UTF-16 or UTF-32 without a byte-order mark (many NUL bytes);"
                                " re-encode the file as UTF-8")
    return data


def _read_json_array(path: Path, data: bytes, batch: RawBatch) -> None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise PolyinstructError(f"{path}:{line}: byte {err.start} is not UTF-8; re-encode the file as UTF-8") from None
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise PolyinstructError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); fix the file or use JSON lines") \
            from None
    if not isinstance(items, list):
        raise PolyinstructError(f"{path}: top level must be a JSON array of records, got {type(items).__name__}")
    batch.records.extend((i, f"{path}: element {i}", item) for i, item in enumerate(items))
    batch.n_read = len(items)


def _read_json_lines(path: Path, data: bytes, batch: RawBatch) -> None:
    index = 0
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as err:
            batch.unreadable.append((index, where, "not_utf8", f"{where}: byte {err.start} of the line is not UTF-8"))
        else:
            try:
                batch.records.append((index, where, json.loads(line)))
            except json.JSONDecodeError as err:
                batch.unreadable.append((index, where, "malformed_json", f"{where}: {err.msg} at column {err.colno}"))
        index += 1
    batch.n_read = sum(1 for raw in data.split(b"\n") if raw.strip())


def _read_frame(path: Path, fmt: str, batch: RawBatch) -> None:
    try:
        frame = (pl.read_csv(path, infer_schema=False) if fmt == "csv" else pl.read_parquet(path))
    except Exception as err:  # noqa: BLE001 - any reader failure becomes one line naming the file
        raise PolyinstructError(f"{path}: cannot read as {fmt} ({str(err).splitlines()[0]})") from None
    if frame.height == 0:
        raise PolyinstructError(f"{path}: file is empty; it must hold at least one instruction record")
    batch.frame = frame
    batch.locate = (lambda i: f"{path}:{i + 2}") if fmt == "csv" else (lambda i: f"{path}: row {i}")  # CSV: header=1
    batch.n_read = frame.height


def _read_hub(dataset_id: str, batch: RawBatch, revision: str | None = None, config: str | None = None) -> None:
    try:
        from datasets import load_dataset

        ds = load_dataset(dataset_id, config, split="train", revision=revision)
    except Exception as err:  # noqa: BLE001 - offline or missing dataset: say what to do
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PolyinstructError(
            f"hf:{dataset_id}: cannot load from the Hugging Face Hub ({first}); check the id and your network,"
            " or download it elsewhere and pass the file with --in"
        ) from None
    batch.records.extend((i, f"hf:{dataset_id}: row {i}", row) for i, row in enumerate(ds))
    batch.n_read = len(ds)


def detect_format(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet"):
        return suffix[1:]
    if suffix == ".jsonl":
        return "jsonl"
    return "json" if data.lstrip()[:1] == b"[" else "jsonl"


def read_raw(source: str, fmt: str = "auto", source_name: str | None = None, revision: str | None = None,
             config: str | None = None) -> tuple[RawBatch, str]:
    """Read every record of `source` (a path, `embedded`, or `hf:ID` at `revision`, subset `config`).
    Returns the batch and the layout."""
    if source.startswith("hf:") or fmt == "hf":  # format hf: the source is a Hub dataset id, prefix or not
        dataset_id = source.removeprefix("hf:")
        batch = RawBatch(source_name or dataset_id.rsplit("/", 1)[-1])
        _read_hub(dataset_id, batch, revision, config)
        return batch, fmt
    path = embedded_sample_path() if source == EMBEDDED else Path(source)
    batch = RawBatch(source_name or ("sample" if source == EMBEDDED else path.stem.split(".")[0]))
    if fmt in ("csv", "parquet") or (fmt == "auto" and path.suffix.lower() in (".csv", ".parquet")):
        if not path.exists():
            raise PolyinstructError(f"{path}: file not found; check data.source in params.yaml or --in")
        _read_frame(path, fmt if fmt != "auto" else path.suffix.lower()[1:], batch)
        return batch, fmt
    data = _read_bytes(path)
    physical = detect_format(path, data) if fmt in ("auto", "alpaca", "dolly") else fmt
    if physical == "json":
        _read_json_array(path, data, batch)
    else:
        _read_json_lines(path, data, batch)
    return batch, fmt


def _column_map(fmt: str, first_keys: set[str], overrides: dict[str, str]) -> dict[str, str]:
    unknown = set(overrides) - set(TEXT_FIELDS)
    if unknown:
        raise PolyinstructError(
            f"data.column_map: unknown field(s) {', '.join(sorted(unknown))}; map only {', '.join(TEXT_FIELDS)}"
        )
    if fmt in LAYOUT_COLUMNS:
        base = LAYOUT_COLUMNS[fmt]
    elif {"context", "response"} <= first_keys and "output" not in first_keys:
        base = LAYOUT_COLUMNS["dolly"]
    else:
        base = LAYOUT_COLUMNS["alpaca"]
    return {**base, **overrides}


def _check_mapped_columns(batch: RawBatch, overrides: dict[str, str]) -> None:
    """A column named in data.column_map (--map) that no record has is a one-line error before any work."""
    if not overrides:
        return
    columns: set[str] = set(batch.frame.columns) if batch.frame is not None else set()
    for _, _, rec in batch.records:
        if isinstance(rec, dict):
            columns.update(rec)
    for fld, col in sorted(overrides.items()):
        if col not in columns:
            shown = ", ".join(sorted(columns)[:8]) or "none"
            raise PolyinstructError(f"data.column_map: {fld}={col}: no record of {batch.source_name} has a column"
                                    f" '{col}' (columns found: {shown}); fix --map or data.column_map")


def _select_positions(n: int, limit: int | None, sample: int | None, seed: int) -> list[int]:
    positions = list(range(n))
    if sample is not None and sample < n:
        positions = sorted(random.Random(seed).sample(positions, sample))
    if limit is not None:
        positions = positions[:limit]
    return positions


def check_records(batch: RawBatch, fmt: str, params: DataParams) -> tuple[pa.Table, list[dict[str, str]]]:
    """Apply the per-record contract. Returns raw (unnormalised) good rows and reject rows (without
    `lang`: the caller knows the source language)."""
    objects = [r for _, _, r in batch.records if isinstance(r, dict)]
    first_keys = set(batch.frame.columns) if batch.frame is not None else set(objects[0]) if objects else set()
    mapping = _column_map(fmt, first_keys, params.column_map)
    _check_mapped_columns(batch, params.column_map)
    selected = _select_positions(batch.n_read, params.limit, params.sample, params.seed)
    if batch.frame is not None and batch.locate is not None:
        table, frame_rejects = check_frame(batch.frame, selected, mapping, params.max_field_chars,
                                           batch.source_name, batch.locate)
        return table, [{"id": rid, "stage": STAGE, "reason": reason, "detail": detail}
                       for rid, reason, detail in frame_rejects]
    by_index = {i: (where, rec) for i, where, rec in batch.records}
    bad_by_index = {i: (where, reason, detail) for i, where, reason, detail in batch.unreadable}

    good: dict[str, list[str]] = {"id": [], "source": [], **{f: [] for f in TEXT_FIELDS}}
    rejects: list[dict[str, str]] = []

    def reject(rid: str, reason: str, detail: str) -> None:
        rejects.append({"id": rid, "stage": STAGE, "reason": reason, "detail": detail})

    for index in selected:
        rid = f"{batch.source_name}-{index}"
        if index in bad_by_index:
            _, reason, detail = bad_by_index[index]
            reject(rid, reason, detail)
            continue
        if index not in by_index:
            continue  # not passed on by the reader: the conservation check against n_read reports it
        where, rec = by_index[index]
        if not isinstance(rec, dict):
            reject(rid, "not_an_object", f"{where}: expected a JSON object, got {type(rec).__name__}")
            continue
        values: dict[str, str] = {}
        problem: tuple[str, str] | None = None
        for fld in TEXT_FIELDS:
            col = mapping[fld]
            value = rec.get(col)
            if value is None:
                if fld == "input":
                    value = ""
                else:
                    problem = ("missing_field", f"{where}: missing field '{col}' (maps to {fld})")
                    break
            if not isinstance(value, str):
                problem = ("bad_type", f"{where}: field '{col}' must be a string, got {type(value).__name__}")
                break
            if len(value) > params.max_field_chars:
                problem = ("field_too_long", f"{where}: field '{col}' has {len(value):,} characters, over"
                           f" data.max_field_chars={params.max_field_chars:,}")
                break
            values[fld] = value
        if problem:
            reject(rid, *problem)
            continue
        good["id"].append(rid)
        good["source"].append(batch.source_name)
        for fld in TEXT_FIELDS:
            good[fld].append(values[fld])
    return pa.table(good, schema=SOURCE_SCHEMA), rejects


def normalise_text(frame: pl.DataFrame) -> pl.DataFrame:
    """NFC, CRLF -> LF, trimmed ends, vectorised over all text fields."""
    return frame.with_columns(
        pl.col(f).str.normalize("NFC").str.replace_all("\r\n", "\n", literal=True).str.replace_all("\r", "\n",
                                                                                                    literal=True)
        .str.strip_chars() for f in TEXT_FIELDS
    )


def split_exact_duplicates(frame: pl.DataFrame,
                           source_lang: str = ENGLISH.flores) -> tuple[pl.DataFrame, list[dict[str, str]]]:
    """Exact duplicate records (all three fields equal after normalisation): keep the first."""
    first = frame.select(pl.struct(TEXT_FIELDS).is_first_distinct()).to_series()
    keyed = frame.with_columns(pl.struct(TEXT_FIELDS).rank("dense").alias("_k"))
    firsts = keyed.filter(first).select("_k", pl.col("id").alias("_first"))
    dups = keyed.filter(~first).join(firsts, on="_k", how="left")
    rejects = [
        {"id": r["id"], "lang": source_lang, "stage": STAGE, "reason": "duplicate_source",
         "detail": f"same instruction, input and output as {r['_first']}"}
        for r in dups.select("id", "_first").iter_rows(named=True)
    ]
    return frame.filter(first), rejects


@dataclass
class IngestResult:
    kept: int
    rejected: int
    by_reason: dict[str, int]


def ingest(params: DataParams, out: Path, rejects_out: Path, metrics_out: Path | None = None,
           source_lang: str = ENGLISH.flores) -> IngestResult:
    """Read `params.source` into `out` (SOURCE_SCHEMA); bad records go to `rejects_out`, in language
    `source_lang` (languages.source)."""
    started = time.perf_counter()
    batch, fmt = read_raw(params.source, params.format, params.source_name, params.revision, params.config)
    if not batch.records and not batch.unreadable and batch.frame is None:
        raise PolyinstructError(f"{params.source}: holds no records")
    table, checked = check_records(batch, fmt, params)
    rejects = [r | {"lang": source_lang} for r in checked]
    frame = normalise_text(pl.from_arrow(table))
    frame, dup_rejects = split_exact_duplicates(frame, source_lang)
    rejects += dup_rejects
    # Records in: what the reader counted, cut by limit/sample; kept and rejected: what was written.
    n_in = len(_select_positions(batch.n_read, params.limit, params.sample, params.seed))
    by_reason: dict[str, int] = {}
    for r in rejects:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    write_rejects(rejects_table(rejects), rejects_out)
    refuse_empty_output(STAGE, n_in, frame.height, by_reason, rejects_out)
    write_parquet(frame.to_arrow(), out, SOURCE_SCHEMA)
    n_kept, n_rejected = parquet_rows(out), parquet_rows(rejects_out)
    check_conservation(STAGE, {source_lang: n_in}, {source_lang: n_kept}, {source_lang: n_rejected})
    result = IngestResult(kept=n_kept, rejected=n_rejected, by_reason=dict(sorted(by_reason.items())))
    if metrics_out:
        write_json({"source": params.source, "in": n_in, "kept": result.kept, "rejected": result.rejected,
                    "rejected_by_reason": result.by_reason}, metrics_out)
        write_timing({"seconds": round(time.perf_counter() - started, 3)}, metrics_out)
    return result
