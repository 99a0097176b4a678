"""The papers' presets: each is a complete, valid params file with the papers' hyper-parameters, and its
shrunken smoke version runs end to end under `dvc repro`."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from dataset_builder.ingest import embedded_sample_path
from dataset_builder.recipes import load_recipe, recipe_names, shrink
from schemas.errors import PolyinstructError
from schemas.languages import language_set
from schemas.params import parse_params
from tests.conftest import metrics_with_timing, run_cli
from tests.demo_repo import PACKAGES, REPO_ROOT, UP_TO_DATE, sh


def test_presets_validate_with_the_papers_settings() -> None:
    assert recipe_names() == ["bactrian-x", "chen2024"]
    bx = parse_params(load_recipe("bactrian-x"))
    assert set(bx.all_languages) == {lang.flores for lang in language_set("bactrian-x")} and len(bx.all_languages) == 52
    assert [(s.name, s.license) for s in bx.data.sources] == [("alpaca", "cc-by-nc-4.0"), ("dolly", "cc-by-sa-3.0")]
    assert bx.responses.mode == "generate"
    lora, sft = bx.training.lora, bx.training.sft
    assert (lora.r, lora.alpha, lora.target_modules) == (64, 16, ["q_proj", "v_proj"])
    assert bx.training.budget.epochs == 4 and sft["learning_rate"] == 3e-4 and sft["max_length"] == 768
    assert sft["per_device_train_batch_size"] * sft["gradient_accumulation_steps"] == 128
    assert {m.lang for m in bx.mixtures if m.recipe == "monolingual"} == set(bx.all_languages)

    chen = parse_params(load_recipe("chen2024"))
    assert {lang.flores for lang in language_set("chen2024")} == set(chen.all_languages)
    assert {lang.split("_")[0] for lang in chen.all_languages} == {"eng", "bul", "ces", "deu", "spa", "fin", "fra",
                                                                  "por", "rus", "zho"}
    assert chen.responses.mode == "translate" and chen.data.sources[0].source == "hf:yahma/alpaca-cleaned"
    lora, sft = chen.training.lora, chen.training.sft
    assert (lora.r, lora.alpha, lora.dropout) == (8, 16, 0.05)
    assert chen.training.budget.epochs == 5 and sft["learning_rate"] == 3e-4 and sft["max_length"] == 512
    assert sft["completion_only_loss"] is False  # train_on_inputs
    assert sft["per_device_train_batch_size"] * sft["gradient_accumulation_steps"] == 128
    recipes = {m.recipe for m in chen.mixtures}
    assert recipes == {"monolingual", "multilingual", "downsampled"}
    down = next(m for m in chen.mixtures if m.recipe == "downsampled")
    assert down.lang == "eng_Latn" and down.budget is None  # as many examples as the English monolingual mix


def _param_keys_dvc_reads() -> set[str]:
    """Every params key dvc.yaml interpolates (`${a.b}`) or lists under a stage's `params`."""
    text = (REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8")
    keys = set(re.findall(r"\$\{([a-z_.]+)\}", text))
    for stage in yaml.safe_load(text)["stages"].values():
        keys |= {p for p in stage.get("do", stage).get("params", []) if isinstance(p, str)}
    return {k for k in keys if not k.startswith("item") and k != "key"}  # foreach: ${item}, ${key}


@pytest.mark.parametrize("name", ["bactrian-x", "chen2024"])
def test_presets_hold_every_key_dvc_reads(name: str) -> None:
    """A preset is a complete params.yaml: DVC fails on a key it interpolates or tracks that is missing."""
    preset = load_recipe(name)

    def has(key: str) -> bool:
        node: Any = preset
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    assert [k for k in sorted(_param_keys_dvc_reads()) if not has(k)] == []


def test_recipe_command_writes_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "params.yaml"
    assert run_cli(monkeypatch, "recipe", "chen2024", "--out", str(out)) == 0
    assert "chen2024 -> " in capsys.readouterr().out and "loraft/README.md" in out.read_text()  # comments kept
    assert run_cli(monkeypatch, "recipe", "chen2024", "--out", str(out)) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert run_cli(monkeypatch, "recipe", "bactrian-x", "--smoke", "--out", str(out), "--force") == 0
    smoke = parse_params(yaml.safe_load(out.read_text()))
    assert smoke.models.base_lm == "smoke" and smoke.data.limit == 20 and smoke.training.budget.steps == 2
    with pytest.raises(PolyinstructError, match="recipe 'nope': no such preset"):
        load_recipe("nope")


def _source_files(root: Path) -> dict[str, str]:
    """Local stand-ins for the Hub sources, in their real layouts: Alpaca records as Alpaca JSON, and
    other Alpaca records in Dolly's JSONL layout (instruction/context/response)."""
    records = json.loads(embedded_sample_path().read_text(encoding="utf-8"))
    root = root / "raw"  # one folder of local sources: the ingest stage's DVC dependency (data.source)
    root.mkdir()
    alpaca, dolly = root / "alpaca_data.json", root / "dolly.jsonl"
    alpaca.write_text(json.dumps(records[:50]), encoding="utf-8")
    dolly.write_text("".join(json.dumps({"instruction": r["instruction"], "context": r["input"],
                                         "response": r["output"], "category": "open_qa"}) + "\n"
                             for r in records[50:]), encoding="utf-8")
    return {"alpaca": str(alpaca), "dolly": str(dolly), "alpaca_cleaned": str(alpaca)}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bactrian-x", "chen2024"])
def test_shrunken_preset_runs_under_dvc_repro(name: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, work / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "dvc.yaml", work / "dvc.yaml")
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    preset = load_recipe(name)
    per_source = 20 // len(preset["data"]["sources"])  # about 20 records in all
    raw: dict[str, Any] = shrink(preset, limit=per_source, languages=1, mixtures=1, steps=2,
                                 sources=_source_files(tmp_path))
    if raw["responses"]["mode"] == "generate" and "respond" not in stages:
        raw["responses"]["mode"] = "translate"  # this checkout has no respond stage yet
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    sh(work, "dvc", "init", "--no-scm", "-q")
    proc = sh(work, "dvc", "repro", check=False)
    assert "budget 2 steps" not in proc.stderr  # the shrunken budget is smoke: no real-run warning
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ingest = json.loads((work / "metrics/ingest.json").read_text())
    n_sources = len(raw["data"]["sources"])
    assert len(ingest["sources"]) == n_sources and ingest["kept"] + ingest["rejected"] == per_source * n_sources
    card = (work / "data/export/README.md").read_text()
    for source in raw["data"]["sources"]:
        assert source["license"] in card
    for mixture in raw["mixtures"]:
        metrics = json.loads((work / f"metrics/train/{mixture['name']}/train_metrics.json").read_text())
        assert metrics["steps"] == 2 and metrics["budget"] == {"steps": 2} and metrics["tokens_seen"] > 0
        assert (work / f"models/adapters/{mixture['name']}/adapter_config.json").exists()
        assert not (work / f"models/checkpoints/{mixture['name']}").exists()  # removed after success
        assert (work / f"metrics/eval/{mixture['name']}.json").exists()
    if raw["responses"]["mode"] == "generate":  # Bactrian-X's recipe: responses generated in each language
        check_generated_responses(work, raw)


def check_generated_responses(work: Path, raw: dict[str, Any]) -> None:
    """Every kept record carries the output the smoke responder generated for its translated prompt, nothing is
    lost between the translated and responded files, and a second repro does nothing."""
    langs = raw["responses"]["languages"]
    assert langs and set(langs) <= set(raw["languages"]["targets"])
    responder = None
    for lang in langs:
        metrics = metrics_with_timing(work / f"metrics/respond/{lang}.json")
        assert metrics["smoke"] and metrics["prompts_generated"] > 0
        responder = metrics["model"]
        responded = pq.read_table(work / f"data/responded/{lang}.parquet").to_pylist()
        translated = {r["id"]: r for r in pq.read_table(work / f"data/translated/{lang}.parquet").to_pylist()}
        rejected = pq.read_table(work / f"data/rejects/respond/{lang}.parquet").num_rows
        assert len(responded) + rejected == len(translated)
        for row in responded:
            assert row["output_model"] == responder and row["smoke"]
            assert row["instruction"] == translated[row["id"]]["instruction"]  # translated prompts kept
        kept = pq.read_table(work / f"data/filtered/{lang}.parquet").to_pylist()
        by_id = {r["id"]: r for r in responded}
        assert kept, lang
        for row in kept:  # every kept record carries its generated output, marked smoke
            assert row["output"] == by_id[row["id"]]["output"] and row["smoke"]
    assert responder and responder.startswith("smoke:")
    quality = json.loads((work / "metrics/quality.json").read_text())["languages"]
    for lang in langs:
        assert quality[lang]["kept"] + quality[lang]["rejected"] == quality[lang]["in"]
    assert json.loads((work / "metrics/validation.json").read_text())["success"] is True
    second = sh(work, "dvc", "repro", check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    assert UP_TO_DATE in second.stdout, second.stdout[-2000:]


def test_switching_to_generated_responses_reruns_no_translation() -> None:
    """Bactrian-X's recipe is the demo's with `responses.mode: generate`: the stages before the responses read
    none of the `responses` params, so DVC reruns no translation when a run switches to it."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    for name in ("ingest", "models", "translate", "translate_many", "round_trip", "qe_score"):
        stage = stages[name].get("do", stages[name])
        assert not [p for p in stage.get("params", []) if str(p).split(".")[0] == "responses"], (name, stage)
    assert "responses" in stages["respond"]["do"]["params"]
