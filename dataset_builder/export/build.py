"""Export: data/filtered/{flores}.parquet -> a folder laid out as a Hugging Face dataset repository.

    {out}/README.md                                   dataset card (YAML metadata + body)
    {out}/{config}/{split}-{i:05d}-of-{n:05d}.parquet  columns id, lang, instruction, input, output, model

This layout is a contract (schemas/export_layout.py; the training stage reads it there). One config
per language, named `Language.config_name` (ISO 639-1 where one exists, FLORES-200 otherwise).
A record's split is a pure function of its id and `export.seed` (md5 of f"{seed}:{id}"), so the same
ids are held out in every language and a rerun writes identical bytes. The folder is built beside
the target and swapped in, so stale shards never survive a rebuild. `verify_export` loads every
config and split back with `datasets` and checks the counts the card states; `polyinstruct push` runs
it before any upload.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from dataset_builder.export.card import EXPORT_MARKER, build_card, data_params
from dataset_builder.export.licenses import LicenseComponent, combine_licenses, model_component, source_component
from dataset_builder.export.result import ConfigExport, ExportResult
from dataset_builder.export.splits import SPLIT_SQL, active_splits
from dataset_builder.lineage import LINEAGE_NAME, collect_lineage
from dataset_builder.responder_card import responder_provenance
from schemas.artifacts import parquet_files, read_table, umask_mode, write_json, write_parquet
from schemas.errors import PolyinstructError
from schemas.export_layout import CARD_NAME, EXPORT_COLUMNS, EXPORT_SCHEMA, SHARD_NAME
from schemas.languages import resolve
from schemas.models import SMOKE_MODEL_PREFIX
from schemas.params import ExportParams, Params
from schemas.records import TRANSLATED_SCHEMA, check_column_types

MB = 1_000_000  # decimal megabytes: a shard under N MB is also under N MiB


def read_validation(path: Path) -> dict[str, Any]:
    """The validate stage's result; refuses to export data that failed validation."""
    data = _read_json(path, "run `polyinstruct validate` (dvc repro validate) first")
    success = data.get("success")
    if not isinstance(success, bool):
        raise PolyinstructError(f"{path}: key 'success' must be true or false; rerun `polyinstruct validate`")
    if not success:
        failures = data.get("failures") or []
        first = failures[0] if failures and isinstance(failures[0], dict) else {}
        where = ", ".join(f"{k}={first[k]}" for k in ("expectation", "column", "lang") if first.get(k))
        raise PolyinstructError(
            f"{path}: validation failed ({len(failures)} failed expectation(s){': first ' + where if where else ''});"
            " refusing to export. Fix the data or the `validation:` thresholds in params.yaml, then `dvc repro`"
        )
    return data


def _read_json(path: Path, fix: str) -> dict[str, Any]:
    if not path.exists():
        raise PolyinstructError(f"{path}: not found; {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PolyinstructError(f"{path}: not valid JSON ({err}); {fix}") from None
    if not isinstance(data, dict):
        raise PolyinstructError(f"{path}: expected a JSON object at the top level; {fix}")
    return data


def _arrow_bytes(table: pa.Table) -> int:
    """Size of the string columns as Arrow holds them (data + 4-byte offsets); deterministic."""
    total = 0
    for column in table.columns:
        total += (pc.sum(pc.binary_length(column)).as_py() or 0) + 4 * (table.num_rows + 1)
    return total


def _write_shards(part: pa.Table, folder: Path, split: str, max_bytes: int) -> list[Path]:
    """Write `part` as the fewest equal row ranges whose Parquet files each stay under max_bytes."""
    n = max(1, math.ceil(_arrow_bytes(part) / (0.9 * max_bytes)))  # Arrow size bounds zstd Parquet size
    while True:
        n = min(n, max(1, part.num_rows))
        rows_per_shard = math.ceil(part.num_rows / n) if part.num_rows else 0
        paths = [
            write_parquet(part.slice(i * rows_per_shard, rows_per_shard),
                          folder / SHARD_NAME.format(split=split, i=i, n=n), EXPORT_SCHEMA)
            for i in range(n)
        ]
        if all(p.stat().st_size <= max_bytes for p in paths):
            return paths
        for p in paths:
            p.unlink()
        if n >= part.num_rows:
            raise PolyinstructError(
                f"export: a single {folder.name}/{split} record is larger than export.max_shard_mb"
                f" ({max_bytes / MB:g} MB); raise export.max_shard_mb in params.yaml"
            )
        n *= 2


def _first_row(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> tuple | None:
    rows = con.execute(sql, params or {}).fetchall()  # fetch to the end: the connection is reused
    return rows[0] if rows else None


def _export_language(con: duckdb.DuckDBPyConnection, path: Path, folder: Path, params: ExportParams) -> ConfigExport:
    try:
        language = resolve(path.stem)
    except PolyinstructError as err:
        raise PolyinstructError(f"{path}: file name must be a language code ({err})") from None
    table = read_table(path, required=(*EXPORT_COLUMNS, "smoke"))
    check_column_types(table.schema, TRANSLATED_SCHEMA, path)
    con.register("rows", table)
    try:
        wrong = _first_row(con, "SELECT coalesce(lang, 'NULL'), count(*) FROM rows WHERE lang IS DISTINCT FROM"
                           " $lang GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1", {"lang": language.flores})
        if wrong:
            raise PolyinstructError(f"{path}: {wrong[1]} row(s) have lang '{wrong[0]}' in the file for"
                                    f" {language.flores}; each filtered file holds one language")
        nulls = _first_row(con, "SELECT count(*) FROM rows WHERE " + " OR ".join(
            f"{c} IS NULL" for c in (*EXPORT_COLUMNS, "smoke")))
        if nulls and nulls[0]:
            raise PolyinstructError(f"{path}: {nulls[0]} row(s) have a null field; rerun `dvc repro filter`")
        duplicate = _first_row(con, "SELECT id, count(*) FROM rows GROUP BY id HAVING count(*) > 1"
                               " ORDER BY id LIMIT 1")
        if duplicate:
            raise PolyinstructError(f"{path}: id '{duplicate[0]}' appears {duplicate[1]} times; ids must be"
                                    " unique per language (rerun `dvc repro filter`)")
        split_params = {"seed": str(params.seed), "test": params.test_fraction,
                        "test_plus_validation": params.test_fraction + params.validation_fraction}
        assigned = con.sql(SPLIT_SQL, params=split_params).to_arrow_table()
        models = dict(con.execute("SELECT model, count(*) FROM rows GROUP BY 1 ORDER BY 1").fetchall())
        sources = dict(con.execute(
            "SELECT regexp_replace(id, '-[0-9]+$', ''), count(*) FROM rows GROUP BY 1 ORDER BY 1").fetchall())
        smoke_row = _first_row(
            con, f"SELECT coalesce(bool_or(smoke OR starts_with(model, '{SMOKE_MODEL_PREFIX}')), false) FROM rows")
        smoke = bool(smoke_row and smoke_row[0])
    finally:
        con.unregister("rows")

    config = language.config_name
    out_folder = folder / config
    counts: dict[str, int] = {}
    files: dict[str, list[str]] = {}
    num_bytes: dict[str, int] = {}
    download_size = 0
    for split in active_splits(params):
        part = assigned.filter(pc.equal(assigned["split"], split)).select(list(EXPORT_COLUMNS))
        if part.num_rows == 0:
            # `datasets` cannot read a 0-row Parquet file, so an empty split is left out of the config
            # (and of the card's counts); it only happens when a language kept very few records.
            continue
        shards = _write_shards(part, out_folder, split, int(params.max_shard_mb * MB))
        counts[split] = part.num_rows
        files[split] = [f"{config}/{p.name}" for p in shards]
        num_bytes[split] = _arrow_bytes(part)
        download_size += sum(p.stat().st_size for p in shards)
    return ConfigExport(config, language, counts, files, num_bytes, download_size, models, sources, smoke)


def _is_export_folder(path: Path) -> bool:
    if not path.is_dir():
        return False
    if not any(path.iterdir()):
        return True
    card = path / CARD_NAME
    return card.is_file() and EXPORT_MARKER in card.read_text(encoding="utf-8", errors="replace")


def _remove_leftovers(out: Path) -> None:
    """Build and trash folders an earlier, killed export left beside `out` (ours by their name)."""
    for pattern in (f".{out.name}.build-*", f".{out.name}.old-*"):
        for leftover in out.parent.glob(pattern):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(built: Path, out: Path) -> None:
    """Replace `out` by the freshly built folder; an existing `out` must be an earlier export."""
    if out.exists() and not _is_export_folder(out):
        raise PolyinstructError(f"{out}: exists and is not a polyinstruct export (no {CARD_NAME} written by"
                                " `polyinstruct export`); choose a new or empty --out folder")
    trash = None
    if out.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(trash / out.name)
    built.rename(out)
    if trash is not None:
        shutil.rmtree(trash)


def export_dataset(in_dir: Path, out: Path, params: Params, validation_path: Path | None = None,
                   quality_path: Path | None = None) -> ExportResult:
    """Build the Hub-layout export of `in_dir` (data/filtered) at `out`; see the module docstring."""
    validation = read_validation(validation_path) if validation_path is not None else None
    quality = _read_json(quality_path, "rerun `dvc repro filter`") if quality_path is not None else None
    files = parquet_files(in_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out)
    built = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    try:
        configs: list[ConfigExport] = []
        with duckdb.connect() as con:
            for path in files:
                config = _export_language(con, path, built, params.export)
                clash = next((c for c in configs if c.config == config.config), None)
                if clash:
                    raise PolyinstructError(f"{in_dir}: two files hold {config.language.flores}"
                                            f" ({clash.language.flores}); keep one file per language")
                configs.append(config)
        configs.sort(key=lambda c: c.config)
        empty = [c.language for c in configs if c.total == 0]  # every record rejected: no config
        configs = [c for c in configs if c.total > 0]
        if not configs:
            raise PolyinstructError(f"{in_dir}: no records in any language; nothing to export (see the"
                                    " rejects in data/rejects/)")
        result = _describe(out, configs, params)
        result.empty_languages = empty
        _add_responders(result, files, params)
        inputs = [p for p in (in_dir, validation_path, quality_path) if p is not None]
        lineage = collect_lineage(Path.cwd(), inputs, data_params(params),
                                  [m for c in configs for m in c.models if m != "source"])
        card = build_card(result, params, validation=validation, quality=quality, lineage=lineage)
        (built / CARD_NAME).write_text(card, encoding="utf-8")
        write_json(lineage, built / LINEAGE_NAME)
        built.chmod(umask_mode(0o777))  # mkdtemp made it private; the export is an ordinary folder
        _swap_in(built, out)
    finally:
        if built.exists():
            shutil.rmtree(built)
    return result


def _add_responders(result: ExportResult, files: list[Path], params: Params) -> None:
    """The responder of generated outputs (dataset_builder.responder_card) joins the licence components."""
    result.responders = responder_provenance(files)
    result.components += [LicenseComponent(*c) for c in result.responders.components(params.license_table)]
    result.license = combine_licenses([c.license for c in result.components if c.license])


def _describe(out: Path, configs: list[ConfigExport], params: Params) -> ExportResult:
    extra = params.license_table
    sources = sorted({s for c in configs for s in c.sources})
    models = sorted({m for c in configs for m in c.models if m != "source"})  # English rows: model="source"
    components = [source_component(s, extra)[0] for s in sources] + [model_component(m, extra) for m in models]
    license_id = combine_licenses([c.license for c in components if c.license])
    source_config = resolve(params.languages.source).config_name
    default = source_config if any(c.config == source_config for c in configs) else configs[0].config
    return ExportResult(out, configs, default, license_id, any(c.smoke for c in configs), components)
