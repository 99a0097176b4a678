"""Round trip of an export: load every config and split back with `datasets` and check the counts the
card states; `polyinstruct push` runs it before any upload."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from schemas.errors import PolyinstructError
from schemas.export_layout import CARD_NAME, EXPORT_COLUMNS

STREAMING_VERIFY_BYTES = 1_000_000_000  # above this, verify by streaming instead of building an Arrow cache


def read_card_metadata(export_dir: Path) -> dict[str, Any]:
    from huggingface_hub import DatasetCard

    card_path = export_dir / CARD_NAME
    if not card_path.is_file():
        raise PolyinstructError(f"{card_path}: not found; build the folder with `polyinstruct export` first")
    try:
        return DatasetCard.load(card_path).data.to_dict()
    except Exception as err:  # noqa: BLE001 - any parse failure is one line naming the card
        raise PolyinstructError(f"{card_path}: unreadable card metadata ({err}); rerun `polyinstruct export`") \
            from None


def _expected_counts(meta: dict[str, Any], card_path: Path) -> tuple[dict[str, dict[str, int]], str | None]:
    configs = meta.get("configs")
    infos = meta.get("dataset_info")
    if not isinstance(configs, list) or not configs or not isinstance(infos, list):
        raise PolyinstructError(f"{card_path}: card has no `configs`/`dataset_info`; rerun `polyinstruct export`")
    info_by_config = {i.get("config_name"): i for i in infos if isinstance(i, dict)}
    expected: dict[str, dict[str, int]] = {}
    default = None
    for cfg in configs:
        name = cfg.get("config_name")
        info = info_by_config.get(name)
        if info is None:
            raise PolyinstructError(f"{card_path}: config '{name}' has no dataset_info entry with its counts")
        expected[name] = {s["name"]: int(s["num_examples"]) for s in info.get("splits", [])}
        if cfg.get("default"):
            default = name
    return expected, default


def _check_files(export_dir: Path, meta: dict[str, Any]) -> int:
    """Every shard on disk is named in the card and every named shard exists: nothing stale, nothing lost."""
    listed: set[str] = set()
    for cfg in meta["configs"]:
        for item in cfg.get("data_files", []):
            paths = item["path"] if isinstance(item["path"], list) else [item["path"]]
            listed.update(paths)
    on_disk = {p.relative_to(export_dir).as_posix() for p in export_dir.rglob("*.parquet")
               if not any(part.startswith(".") for part in p.relative_to(export_dir).parts)}
    missing = sorted(p for p in listed if not any(ch in p for ch in "*?[") and p not in on_disk)
    if missing:
        raise PolyinstructError(f"{export_dir}: the card lists {missing[0]} but the file is missing;"
                                " rerun `polyinstruct export`")
    unlisted = sorted(on_disk - listed)
    if unlisted:
        raise PolyinstructError(f"{export_dir}: {unlisted[0]} is not named in the card (a stale shard?);"
                                " rerun `polyinstruct export` to rebuild the folder cleanly")
    return len(on_disk)


def verify_export(export_dir: Path | str, streaming: bool | None = None) -> dict[str, Any]:
    """Load every config and split with `datasets.load_dataset(export_dir, name=cfg, split=split)` and check
    the counts against the card's `dataset_info`, the columns, and that no id is in two splits.

    `streaming=None` streams exports above 1 GB (no Arrow cache copy) and builds the cache otherwise, where
    `datasets` itself also checks the split sizes against the card. Returns {"configs": {cfg: {split: n}},
    "default": cfg, "rows": n, "files": n}."""
    import datasets
    import polars as pl

    export_dir = Path(export_dir)
    card_path = export_dir / CARD_NAME
    meta = read_card_metadata(export_dir)
    expected, default = _expected_counts(meta, card_path)
    n_files = _check_files(export_dir, meta)
    if streaming is None:
        streaming = sum(p.stat().st_size for p in export_dir.rglob("*.parquet")) > STREAMING_VERIFY_BYTES
    expected_features = datasets.Features({name: datasets.Value("string") for name in EXPORT_COLUMNS})

    loaded: dict[str, dict[str, int]] = {}
    id_splits: list[pl.DataFrame] = []
    bars_were_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # the check is quiet; the caller reports the result
    try:
        with tempfile.TemporaryDirectory(prefix="polyinstruct-verify-") as cache_dir:
            for cfg, splits in expected.items():
                loaded[cfg] = {}
                for split in splits:
                    ids = _load_ids(datasets, export_dir, cfg, split, streaming, cache_dir, expected_features)
                    loaded[cfg][split] = len(ids)
                    id_splits.append(pl.DataFrame({"id": ids, "split": [split] * len(ids)},
                                                  schema={"id": pl.String, "split": pl.String}))
    finally:
        if not bars_were_off:
            datasets.enable_progress_bars()

    for cfg, splits in expected.items():
        for split, n in splits.items():
            if loaded[cfg][split] != n:
                raise PolyinstructError(f"{card_path}: card says {cfg}/{split} has {n} rows but load_dataset"
                                        f" returns {loaded[cfg][split]}; rerun `polyinstruct export`")
    leaks = (pl.concat(id_splits).group_by("id").agg(pl.col("split").n_unique().alias("n"))
             .filter(pl.col("n") > 1).sort("id"))
    if leaks.height:
        raise PolyinstructError(f"{export_dir}: id '{leaks['id'][0]}' is in more than one split"
                                f" ({leaks.height} such ids); rerun `polyinstruct export`")
    total = sum(n for splits in loaded.values() for n in splits.values())
    return {"configs": loaded, "default": default, "rows": total, "files": n_files}


def _load_ids(datasets: Any, export_dir: Path, cfg: str, split: str, streaming: bool, cache_dir: str,
              expected_features: Any) -> list[str]:
    call = f"load_dataset({str(export_dir)!r}, name={cfg!r}, split={split!r})"
    try:
        ds = datasets.load_dataset(str(export_dir), name=cfg, split=split, cache_dir=cache_dir,
                                   streaming=streaming)
        if ds.features is not None and ds.features != expected_features:
            raise PolyinstructError(f"{call}: columns {list(ds.features)} differ from {list(EXPORT_COLUMNS)}")
        if streaming:
            ids: list[str] = []
            for batch in ds.with_format("arrow").iter(batch_size=65_536):
                ids.extend(batch.column("id").to_pylist())
            return ids
        return ds.data.column("id").to_pylist()
    except PolyinstructError:
        raise
    except Exception as err:  # noqa: BLE001 - any loader failure is one line naming the call
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolyinstructError(f"{call} failed: {type(err).__name__}: {first}; rerun `polyinstruct export`") \
            from None
