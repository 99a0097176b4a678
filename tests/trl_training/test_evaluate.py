"""Evaluation of the trained smoke adapter: held-out loss per language, generations on the real HPLT
prompt files, language fidelity, the markdown table and the smoke flag."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from quality.langid import matches_language
from schemas.errors import PolyinstructError
from trl_training.evaluate import completion_nll, evaluate, read_prompt_file
from trl_training.mixtures import read_export_split
from trl_training.templates import encode_examples

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


@pytest.fixture(scope="module")
def report(trained: dict[str, Any], smoke_lm: Path, export_dir: Path, shared_data: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    params = trained["params"].model_copy(update={"evaluate": trained["params"].evaluate.model_copy(
        update={"max_eval_examples": 3, "max_generation_prompts": 3, "max_new_tokens": 8})})
    out = tmp_path_factory.mktemp("eval") / "memorise.json"
    prompts = [shared_data / "hplt-test" / "test_fr.jsonl", shared_data / "hplt-test" / "test_bg.jsonl"]
    result = evaluate(smoke_lm, trained["adapter"], export_dir, out, params, prompt_files=prompts,
                      language_check=matches_language)
    return {"result": result, "out": out, "params": params}


def test_held_out_loss_per_language(report: dict[str, Any], export_dir: Path) -> None:
    result = report["result"]
    assert json.loads(report["out"].read_text()) == result
    test_langs = {"eng_Latn", "fra_Latn", "rus_Cyrl", "zho_Hans"}
    assert set(result["languages"]) == test_langs | {"bul_Cyrl"}  # bg: prompts only, no test split
    for lang in test_langs:
        row = result["languages"][lang]
        assert row["test_examples"] == 3 and row["test_tokens"] > 0
        for side in ("base", "adapter"):
            assert row[f"{side}_perplexity"] == pytest.approx(math.exp(row[f"{side}_loss"]))
        assert row["loss_delta"] == pytest.approx(row["adapter_loss"] - row["base_loss"])
        assert abs(row["loss_delta"]) > 1e-3  # the adapter is really applied, and really disabled for base
    assert result["languages"]["bul_Cyrl"]["base_loss"] is None
    assert result["overall"]["adapter_loss"] < result["overall"]["base_loss"]  # memorised, still helps


def test_base_numbers_are_the_plain_base_model(report: dict[str, Any], smoke_lm: Path, export_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smoke_lm)
    model = AutoModelForCausalLM.from_pretrained(smoke_lm).eval()
    french = read_export_split(export_dir, "test").filter(lang="fra_Latn").head(3)
    sums, counts = completion_nll(model, encode_examples(tokenizer, "bactrian", french), tokenizer.pad_token_id,
                                  batch_size=2, max_length=128)
    assert sum(sums) / sum(counts) == pytest.approx(report["result"]["languages"]["fra_Latn"]["base_loss"],
                                                    rel=1e-4)


def test_generations_and_fidelity(report: dict[str, Any]) -> None:
    result = report["result"]
    french = result["languages"]["fra_Latn"]
    assert french["prompts"] == 3 and french["prompt_source"].endswith("test_fr.jsonl")
    generations = result["generations"]["fra_Latn"]
    assert [g["id"] for g in generations] == [json.loads(line)["id"] for line in
                                              Path(french["prompt_source"]).read_text().splitlines()[:3]]
    for side in ("base", "adapter"):
        judged, share = french[f"judged_{side}"], french[f"fidelity_{side}"]
        assert 0 <= judged <= 3 and (share is None if judged == 0 else 0.0 <= share <= 1.0)
    # random-weight output is no language: when judged, it is not French
    assert all(g["adapter_in_language"] in (None, False) for g in generations)
    assert result["languages"]["eng_Latn"]["prompts"] == 0  # prompt files given: only their languages


def test_markdown_and_smoke_flag(report: dict[str, Any]) -> None:
    result = report["result"]
    assert result["smoke"] is True and "SMOKE" in result["note"]
    table = report["out"].with_suffix(".md").read_text()
    assert "SMOKE" in table.splitlines()[2]
    for lang in result["languages"]:
        assert f"| {lang} |" in table


def test_fidelity_judges_human_translations(shared_data: Path) -> None:
    from trl_training.evaluate import fidelity

    french = read_prompt_file(shared_data / "hplt-test" / "test_fr.jsonl")
    english = read_prompt_file(shared_data / "hplt-test" / "test_en.jsonl")
    lines = (shared_data / "hplt-test" / "test_fr.jsonl").read_text(encoding="utf-8").splitlines()
    assert french.lang == "fra_Latn" and len(french.ids) == sum(1 for line in lines if line.strip())
    share, judged, _ = fidelity(french.instructions, "fra_Latn", 20, matches_language)
    assert judged > 40 and share is not None and share > 0.95
    share, _, _ = fidelity(english.instructions, "fra_Latn", 20, matches_language)
    assert share is not None and share < 0.05


def test_bad_prompt_files(tmp_path: Path) -> None:
    unnamed = tmp_path / "prompts.jsonl"
    unnamed.write_text('{"id": 1, "prompt": "Bonjour"}\n')
    with pytest.raises(PolyinstructError, match="name the file like test_fr.jsonl"):
        read_prompt_file(unnamed)
    broken = tmp_path / "test_fr.jsonl"  # a malformed line is quarantined with its number; reading goes on
    broken.write_text('{"id": 1, "prompt": "Bonjour"}\n{"id": 2,\n{"id": 3, "prompt": 7}\n')
    prompts = read_prompt_file(broken)
    assert prompts.instructions == ["Bonjour"]
    assert [(q.line, q.reason.split(" (")[0]) for q in prompts.quarantined] == [
        (2, "not valid JSON"), (3, "expected an object with a string `prompt`")]
    nothing = tmp_path / "prompts_fra_Latn.jsonl"  # a FLORES-200 suffix names the language too
    nothing.write_text('{"id": 2,\n')
    with pytest.raises(PolyinstructError, match="prompts_fra_Latn.jsonl: no usable prompts"):
        read_prompt_file(nothing)
