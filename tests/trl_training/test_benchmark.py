"""`polyinstruct benchmark` through lm-evaluation-harness on a small local multiple-choice task (a task
YAML over a local JSON lines file): base and adapter accuracy, the adapter really applied, the result's
provenance fields, and one clear line for a Hub task without the Hub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.errors import PolyinstructError
from trl_training.benchmark import _dataset_paths, benchmark, language_of_task, task_manager

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")]

ITEMS = [  # (question, choices, gold): real French questions
    ("Quelle est la capitale de la France ?", ["Paris", "Berlin", "Madrid"], 0),
    ("Combien font deux plus deux ?", ["trois", "quatre", "cinq"], 1),
    ("De quelle couleur est le ciel par beau temps ?", ["vert", "bleu", "rouge"], 1),
    ("Quel animal aboie ?", ["le chat", "le chien", "le poisson"], 1),
    ("Quelle saison suit l'hiver ?", ["le printemps", "l'automne", "l'été"], 0),
    ("Combien de jours compte une semaine ?", ["cinq", "six", "sept"], 2),
]


def write_local_task(root: Path) -> Path:
    """lm-eval task YAML + JSONL in `root`; the task's name ends in its language (fra_Latn)."""
    data = root / "local_mc_fr.jsonl"
    data.write_text("".join(json.dumps({"question": q, "choices": c, "label": g}, ensure_ascii=False) + "\n"
                            for q, c, g in ITEMS), encoding="utf-8")
    (root / "local_mc.yaml").write_text(
        "task: local_mc_fra_Latn\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data))}\n"
        "output_type: multiple_choice\ntest_split: test\n"
        "doc_to_text: \"Question : {{question}}\\nRéponse :\"\ndoc_to_target: label\ndoc_to_choice: choices\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        "metadata:\n  version: 2.0\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def local_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local task's folder: every test here passes it as the include path, so the module builds one lm-eval
    task index (lm-eval's defaults plus this task; `task_manager` caches it per include path) instead of two."""
    return write_local_task(tmp_path_factory.mktemp("tasks"))


@pytest.fixture(scope="module")
def result(trained: dict[str, Any], smoke_lm: Path, local_tasks: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    benchmark(smoke_lm, trained["adapter"], ["local_mc_fra_Latn"], out, limit=5, include_path=local_tasks,
              smoke=True)
    return json.loads(out.read_text(encoding="utf-8"))


def test_base_and_adapter_accuracy(result: dict[str, Any]) -> None:
    (row,) = result["results"]
    assert row["task"] == "local_mc_fra_Latn" and row["lang"] == "fra_Latn" and row["samples"] == 5
    assert 0.0 <= row["base"] <= 1.0 and 0.0 <= row["adapter"] <= 1.0
    assert row["version"] == 2.0 and row["num_fewshot"] == 0
    assert result["chat_template_applied"] is False and result["smoke"]
    assert result["comparable_with_published"] is False and "not comparable" in result["note"]


def test_the_adapter_was_applied(result: dict[str, Any]) -> None:
    (row,) = result["results"]
    base, adapter = row["base_gold_loglikelihood"], row["adapter_gold_loglikelihood"]
    assert base is not None and adapter is not None and base < 0 and adapter < 0
    assert abs(base - adapter) > 1e-3  # the same model without the LoRA would give the same numbers


def test_task_names_and_hub_datasets(local_tasks: Path) -> None:
    assert language_of_task("xcopa_et") == "est_Latn" and language_of_task("belebele_fra_Latn") == "fra_Latn"
    assert language_of_task("local_mc") is None
    # What the offline error names: the Hub datasets behind the default task set, from the task index.
    index = task_manager(str(local_tasks))
    assert _dataset_paths(index, ["xcopa_et", "belebele"]) == ["cambridgeltl/xcopa", "facebook/belebele"]


def test_unknown_task_is_one_line(trained: dict[str, Any], smoke_lm: Path, local_tasks: Path, tmp_path: Path) -> None:
    with pytest.raises(PolyinstructError, match="unknown task.*no_such_task"):
        benchmark(smoke_lm, trained["adapter"], ["no_such_task"], tmp_path / "x.json", include_path=local_tasks)
