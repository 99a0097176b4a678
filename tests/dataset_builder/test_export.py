"""Export to the Hugging Face layout: round trip through `datasets`, split leakage, card metadata,
determinism, sharding, licenses, and the refusals."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dataset_builder.export.build import export_dataset
from dataset_builder.export.card import OWNED_CARD_KEYS, PIPELINE_SECTIONS, REPO_ID_PLACEHOLDER, size_category
from dataset_builder.export.licenses import LICENSE_TERMS, combine_licenses
from dataset_builder.export.result import ExportResult
from dataset_builder.export.splits import split_for_id
from dataset_builder.export.verify import verify_export
from schemas.artifacts import write_parquet
from schemas.errors import PolyinstructError
from schemas.export_layout import CARD_NAME, EXPORT_COLUMNS
from schemas.params import Params, parse_params
from schemas.records import TRANSLATED_SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE_MODEL = "smoke:nllb-200@seed0"
LANGS = ("eng_Latn", "fra_Latn", "rus_Cyrl", "zho_Hans")
# Rows the (pretend) quality stage dropped, per language: configs differ in size, ids stay aligned.
DROPPED = {"fra_Latn": {3, 7}, "rus_Cyrl": {5}}


def make_filtered(root: Path, n_ids: int = 40, langs: Iterable[str] = LANGS, model: str = SMOKE_MODEL,
                  sources: tuple[str, ...] = ("sample",), output_chars: int = 0) -> Path:
    """data/filtered/{flores}.parquet as the filter stage writes it (English rows: model=source)."""
    folder = root / "filtered"
    for lang in langs:
        english = lang == "eng_Latn"
        rows = []
        for i in range(n_ids):
            if i in DROPPED.get(lang, set()):
                continue
            source = sources[i % len(sources)]
            filler = hashlib.sha256(f"{lang}{i}".encode()).hexdigest() * (output_chars // 64 + 1)
            rows.append({
                "id": f"{source}-{i}", "lang": lang, "instruction": f"[{lang}] instruction {i}",
                "input": "" if i % 3 else f"[{lang}] input {i}",
                "output": f"[{lang}] output {i} " + filler[:output_chars],
                "model": "source" if english else model, "smoke": (not english) and model.startswith("smoke:"),
                "truncated_fields": [], "protected_spans_ok": True, "kept_verbatim": False,
            })
        write_parquet(pa.Table.from_pylist(rows, schema=TRANSLATED_SCHEMA), folder / f"{lang}.parquet")
    return folder


def write_metrics(root: Path, success: bool = True) -> tuple[Path, Path]:
    validation = root / "validation.json"
    failures = [] if success else [{"expectation": "expect_column_values_to_not_be_null", "column": "output",
                                    "lang": "fra_Latn", "observed": 3, "kwargs": {}}]
    validation.write_text(json.dumps({"success": success, "evaluated_expectations": 12,
                                      "successful_expectations": 12 - len(failures), "failures": failures}))
    quality = root / "quality.json"
    languages = {lang: {"in": 40, "kept": 40 - len(DROPPED.get(lang, ())), "rejected": len(DROPPED.get(lang, ())),
                        "rejected_by_reason": {"repetition": len(DROPPED[lang])} if lang in DROPPED else {}}
                 for lang in LANGS}
    quality.write_text(json.dumps({"alignment": "independent", "languages": languages,
                                   "skipped_checks": {"lang_id": "disabled in params"}}))
    return validation, quality


def demo_params(**export: object) -> Params:
    return parse_params({"export": {"validation_fraction": 0.15, "test_fraction": 0.15, **export}}, "test")


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def read_split_ids(folder: Path) -> dict[tuple[str, str], list[str]]:
    """(config, split) -> ids, straight from the shards."""
    out: dict[tuple[str, str], list[str]] = {}
    for shard in sorted(folder.glob("*/*.parquet")):
        split = shard.name.split("-", 1)[0]
        out.setdefault((shard.parent.name, split), []).extend(pq.read_table(shard, columns=["id"])["id"].to_pylist())
    return out


def card_meta(folder: Path) -> dict:
    from huggingface_hub import DatasetCard

    return DatasetCard.load(folder / CARD_NAME).data.to_dict()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExportResult, dict, Path]:
    root = tmp_path_factory.mktemp("export")
    filtered = make_filtered(root)
    validation, quality = write_metrics(root)
    out = root / "export"
    result = export_dataset(filtered, out, demo_params(), validation_path=validation, quality_path=quality)
    return out, result, verify_export(out), root


def test_layout_is_the_hub_contract(demo: tuple[Path, ExportResult, dict, Path]) -> None:
    out, result, _, _ = demo
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    expected = sorted(["README.md", "lineage.json"] + [f"{cfg}/{split}-00000-of-00001.parquet"
                       for cfg in ("en", "fr", "ru", "zh") for split in ("test", "train", "validation")])
    assert files == expected
    for shard in out.glob("*/*.parquet"):
        schema = pq.read_schema(shard)
        assert schema.names == list(EXPORT_COLUMNS)
        lang = pq.read_table(shard, columns=["lang"])["lang"].unique().to_pylist()
        flores = {"en": "eng_Latn", "fr": "fra_Latn", "ru": "rus_Cyrl", "zh": "zho_Hans"}[shard.parent.name]
        assert lang == [flores]
    assert result.default_config == "en"
    assert sum(result.counts["fr"].values()) == 38 and sum(result.counts["ru"].values()) == 39


def test_round_trip_loads_every_config_and_split_with_the_card_counts(
        demo: tuple[Path, ExportResult, dict, Path]) -> None:
    out, result, verified, _ = demo
    meta = card_meta(out)
    card_counts = {info["config_name"]: {s["name"]: s["num_examples"] for s in info["splits"]}
                   for info in meta["dataset_info"]}
    assert verified["configs"] == card_counts == result.counts
    assert verified["rows"] == 40 + 38 + 39 + 40
    assert verified["default"] == "en"
    for counts in card_counts.values():
        assert set(counts) == {"train", "validation", "test"} and all(n > 0 for n in counts.values())
    # The body's table states the same numbers.
    body = (out / CARD_NAME).read_text()
    for cfg, counts in card_counts.items():
        row = re.search(rf"^\| {cfg} \| [^|]+ \| [^|]+ \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$", body, re.M)
        assert row, cfg
        assert [int(g) for g in row.groups()] == [counts["train"], counts["validation"], counts["test"],
                                                  sum(counts.values())]
    # And `load_dataset` returns the real rows, in the id order of the shard.
    import datasets

    ds = datasets.load_dataset(str(out), name="fr", split="test", cache_dir=str(out.parent / "hf-cache"))
    shard = pq.read_table(out / "fr" / "test-00000-of-00001.parquet")
    assert ds.to_list() == shard.to_pylist()
    assert all(r["instruction"].startswith("[fra_Latn]") and r["model"] == SMOKE_MODEL for r in ds)


def test_no_id_is_in_two_splits_across_configs(demo: tuple[Path, ExportResult, dict, Path]) -> None:
    out, _, _, _ = demo
    split_of: dict[str, set[str]] = {}
    for (_, split), ids in read_split_ids(out).items():
        assert len(ids) == len(set(ids))
        for record_id in ids:
            split_of.setdefault(record_id, set()).add(split)
    assert len(split_of) == 40
    assert all(len(splits) == 1 for splits in split_of.values()), {k: v for k, v in split_of.items() if len(v) > 1}
    # The vectorised DuckDB split equals the documented md5 definition (stable across processes/versions).
    assert {k: next(iter(v)) for k, v in split_of.items()} == {
        f"sample-{i}": split_for_id(f"sample-{i}", 0, 0.15, 0.15) for i in range(40)}


def test_card_metadata_validates(demo: tuple[Path, ExportResult, dict, Path]) -> None:
    import datasets
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    out, _, _, _ = demo
    card = DatasetCard.load(out / CARD_NAME)
    meta = card.data.to_dict()
    DatasetCardData(**meta, ignore_metadata_errors=False)  # huggingface_hub's own parser accepts it
    assert set(OWNED_CARD_KEYS) <= set(meta)
    # The vocabularies the Hub validates against, as shipped (offline) with `datasets`.
    resources = Path(datasets.__file__).parent / "utils" / "resources"
    known_languages = json.loads((resources / "languages.json").read_text())
    assert meta["language"] == ["en", "fr", "ru", "zh"] and all(code in known_languages for code in meta["language"])
    size_vocabulary = json.loads((resources / "size_categories.json").read_text())
    assert meta["size_categories"] == ["n<1K"]
    assert all(size_category(n) in size_vocabulary for n in (0, 999, 1000, 67_000 * 52, 10**12, 10**13))
    creators = json.loads((resources / "creators.json").read_text())
    assert meta["annotations_creators"] == ["machine-generated"]
    assert set(meta["annotations_creators"]) <= set(creators["annotations"])
    assert set(meta["language_creators"]) <= set(creators["language"])
    assert set(meta["multilinguality"]) <= set(json.loads((resources / "multilingualities.json").read_text()))
    assert meta["license"] == "cc-by-nc-4.0"  # Alpaca sample + a smoke model (random weights, no terms)
    assert meta["source_datasets"] == ["extended|tatsu-lab/alpaca"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["pretty_name"] == demo_params().export.pretty_name
    # `datasets` reads the configs and infos the way load_dataset(repo) will.
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert list(configs) == ["en", "fr", "ru", "zh"] and configs.get_default_config_name() == "en"
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    assert infos["ru"].splits["train"].num_examples == demo[1].counts["ru"]["train"]
    assert list(infos["en"].features) == list(EXPORT_COLUMNS)
    assert "*id0" not in (out / CARD_NAME).read_text()  # no YAML anchors


def test_card_body_warns_about_smoke_first_and_states_filters_model_params(
        demo: tuple[Path, ExportResult, dict, Path]) -> None:
    from huggingface_hub import DatasetCard

    out, _, _, _ = demo
    body = DatasetCard.load(out / CARD_NAME).text.lstrip("\n")
    assert body.splitlines()[0].startswith("> **WARNING: smoke-model output.**")
    assert f"`{SMOKE_MODEL}`" in body
    assert "| fr | 40 | 38 | 2 | repetition: 2 |" in body  # reject counts from quality.json
    assert "`lang_id`: disabled in params" in body
    assert f'load_dataset("{REPO_ID_PLACEHOLDER}", "en", split="train")' in body
    params_block = body.split("## Pipeline parameters", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(params_block) == demo_params().model_dump(mode="json", include=set(PIPELINE_SECTIONS))


def test_rerun_is_byte_identical_across_processes_and_removes_stale_files(
        demo: tuple[Path, ExportResult, dict, Path]) -> None:
    out, _, _, root = demo
    before = tree_digest(out)
    rerun = root / "rerun"
    shutil.copytree(out, rerun)
    (rerun / "fr" / "train-00001-of-00002.parquet").write_bytes(b"stale")
    (rerun / "xx").mkdir()
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(demo_params().model_dump(mode="json")))
    # A fresh process (new interpreter, new hash seeds) through the real CLI.
    proc = subprocess.run(
        [sys.executable, "-m", "dataset_builder.cli", "export", "--in", str(root / "filtered"), "--out", str(rerun),
         "--validation", str(root / "validation.json"), "--quality", str(root / "quality.json"),
         "--params", str(params_file)],
        capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONHASHSEED": "123"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "export: fr (fra_Latn): train" in proc.stdout and "smoke-model output" in proc.stderr
    assert tree_digest(rerun) == before


def test_shards_stay_under_the_limit_and_round_trip(tmp_path: Path) -> None:
    filtered = make_filtered(tmp_path, n_ids=40, langs=("eng_Latn", "fra_Latn"), output_chars=1500)
    out = tmp_path / "export"
    result = export_dataset(filtered, out, demo_params(max_shard_mb=0.02))
    shards = sorted(out.glob("*/train-*.parquet"))
    assert len(shards) > 2
    assert all(p.stat().st_size <= 20_000 for p in out.glob("*/*.parquet"))
    n = len(list(out.glob("en/train-*.parquet")))
    assert sorted(p.name for p in out.glob("en/train-*.parquet")) == [f"train-{i:05d}-of-{n:05d}.parquet"
                                                                      for i in range(n)]
    assert verify_export(out)["configs"] == result.counts
    # Sharding does not change which ids are where, nor their order.
    ids = read_split_ids(out)
    assert ids[("en", "train")] == sorted(ids[("en", "train")], key=lambda s: int(s.rsplit("-", 1)[1]))


def test_licenses_mix_to_the_most_restrictive_and_unknown_sources_are_refused(tmp_path: Path) -> None:
    assert combine_licenses(["cc-by-nc-4.0"]) == "cc-by-nc-4.0"
    assert combine_licenses(["cc-by-nc-4.0", "cc-by-sa-3.0"]) == "cc-by-nc-sa-4.0"
    assert combine_licenses(["cc-by-sa-3.0", "mit"]) == "cc-by-sa-4.0"
    assert combine_licenses(["mit", "apache-2.0"]) == ["apache-2.0", "mit"]
    assert combine_licenses(["cc-by-nc-4.0", "llama3"]) == "other"
    assert set(LICENSE_TERMS) >= {"cc-by-nc-4.0", "cc-by-sa-3.0"}

    # A real (non-smoke) NLLB export mixing Alpaca and Dolly: NC from both NLLB and Alpaca, SA from Dolly.
    filtered = make_filtered(tmp_path, n_ids=12, langs=("eng_Latn", "fra_Latn"),
                             model="facebook/nllb-200-distilled-600M", sources=("alpaca_5000", "dolly"))
    out = tmp_path / "export"
    export_dataset(filtered, out, demo_params())
    meta = card_meta(out)
    assert meta["license"] == "cc-by-nc-sa-4.0"
    assert meta["source_datasets"] == ["extended|databricks/databricks-dolly-15k", "extended|tatsu-lab/alpaca"]
    assert "smoke-model-output" not in meta["tags"]
    assert "WARNING" not in (out / CARD_NAME).read_text()

    unknown = make_filtered(tmp_path / "unknown", n_ids=5, langs=("fra_Latn",), sources=("mydata",))
    with pytest.raises(PolyinstructError, match=r"data source 'mydata'.*export\.licenses"):
        export_dataset(unknown, tmp_path / "unknown-export", demo_params())
    assert not (tmp_path / "unknown-export").exists()
    export_dataset(unknown, tmp_path / "unknown-export", demo_params(licenses={"mydata": "cc-by-4.0"}))
    assert card_meta(tmp_path / "unknown-export")["license"] == "cc-by-4.0"


def test_languages_without_iso_639_1_use_the_flores_config_and_an_iso_639_3_card_code(tmp_path: Path) -> None:
    filtered = make_filtered(tmp_path, n_ids=10, langs=("eng_Latn", "ace_Arab"))
    out = tmp_path / "export"
    result = export_dataset(filtered, out, demo_params())
    assert [c.config for c in result.configs] == ["ace_Arab", "en"]
    assert card_meta(out)["language"] == ["ace", "en"]
    assert verify_export(out)["configs"]["ace_Arab"] == result.counts["ace_Arab"]


def test_refuses_failed_validation_and_foreign_output_folders(tmp_path: Path) -> None:
    filtered = make_filtered(tmp_path, n_ids=5, langs=("fra_Latn",))
    validation, _ = write_metrics(tmp_path, success=False)
    with pytest.raises(PolyinstructError, match=r"validation\.json: validation failed \(1 failed expectation.*"
                                                r"column=output, lang=fra_Latn.*refusing to export"):
        export_dataset(filtered, tmp_path / "export", demo_params(), validation_path=validation)
    assert not (tmp_path / "export").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(PolyinstructError, match="is not a polyinstruct export"):
        export_dataset(filtered, foreign, demo_params())
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no build folder left behind


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    filtered = make_filtered(tmp_path, n_ids=5, langs=("fra_Latn",))
    shutil.copy(filtered / "fra_Latn.parquet", filtered / "rus_Cyrl.parquet")
    with pytest.raises(PolyinstructError, match=r"rus_Cyrl\.parquet: 4 row\(s\) have lang 'fra_Latn'"):
        export_dataset(filtered, tmp_path / "export", demo_params())
    (filtered / "rus_Cyrl.parquet").unlink()
    table = pq.read_table(filtered / "fra_Latn.parquet")
    pq.write_table(pa.concat_tables([table, table.slice(0, 1)]), filtered / "fra_Latn.parquet")
    with pytest.raises(PolyinstructError, match=r"id 'sample-0' appears 2 times"):
        export_dataset(filtered, tmp_path / "export", demo_params())
    with pytest.raises(PolyinstructError, match="not found"):
        export_dataset(tmp_path / "nowhere", tmp_path / "export", demo_params())


def test_verify_export_catches_broken_folders(demo: tuple[Path, ExportResult, dict, Path], tmp_path: Path) -> None:
    out, _, _, _ = demo
    missing = tmp_path / "missing"
    shutil.copytree(out, missing)
    (missing / "ru" / "test-00000-of-00001.parquet").unlink()
    with pytest.raises(PolyinstructError, match=r"lists ru/test-00000-of-00001\.parquet but the file is missing"):
        verify_export(missing)

    stale = tmp_path / "stale"
    shutil.copytree(out, stale)
    shutil.copy(stale / "fr" / "train-00000-of-00001.parquet", stale / "fr" / "train-00000-of-00002.parquet")
    with pytest.raises(PolyinstructError, match=r"fr/train-00000-of-00002\.parquet is not named in the card"):
        verify_export(stale)

    wrong = tmp_path / "wrong"
    shutil.copytree(out, wrong)
    card = (wrong / CARD_NAME).read_text()
    n = demo[1].counts["zh"]["validation"]
    block = card.split("- config_name: zh\n  features:", 1)
    block[1] = re.sub(rf"(- name: validation\n    num_bytes: \d+\n    num_examples: ){n}\b", rf"\g<1>{n + 5}",
                      block[1], count=1)
    (wrong / CARD_NAME).write_text("- config_name: zh\n  features:".join(block))
    # `datasets` itself checks the split sizes against the card while building the config.
    with pytest.raises(PolyinstructError, match=r"name='zh', split='\w+'\) failed: NonMatchingSplitsSizesError"):
        verify_export(wrong)


def test_empty_languages_and_splits_are_left_out_so_everything_still_loads(tmp_path: Path) -> None:
    filtered = make_filtered(tmp_path, n_ids=10, langs=("eng_Latn",))
    write_parquet(TRANSLATED_SCHEMA.empty_table(), filtered / "fra_Latn.parquet")  # every record rejected
    one_row = pq.read_table(filtered / "eng_Latn.parquet").slice(0, 1)
    write_parquet(one_row.set_column(1, "lang", pa.array(["rus_Cyrl"])), filtered / "rus_Cyrl.parquet",
                  TRANSLATED_SCHEMA)
    out = tmp_path / "export"
    result = export_dataset(filtered, out, demo_params())
    assert [c.config for c in result.configs] == ["en", "ru"]
    assert [lang.flores for lang in result.empty_languages] == ["fra_Latn"]
    assert result.counts["ru"] == {split_for_id("sample-0", 0, 0.15, 0.15): 1}
    assert verify_export(out)["configs"] == result.counts
    body = (out / CARD_NAME).read_text()
    assert "No record survived the filters for French (fra_Latn)" in body
    assert not (out / "fr").exists()
