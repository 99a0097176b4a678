"""Zero-shot multilingual benchmarks through lm-evaluation-harness, as Bactrian-X compared its LoRA
adapters with their base models (XCOPA, XStoryCloze, XWinograd, ...; Belebele by default, since it
covers most of the 52 languages).

lm-eval's Python API runs each task twice on its `hf` model: the base model alone, then with the
adapter loaded through its `peft=` model argument. Results are accuracy per task and language, base and
adapter side by side, with the task version, `num_fewshot`, whether the chat template was applied, and
whether `--limit` cut the task (then the numbers are not comparable with published ones).

Tasks are lm-eval's registry names, or local task YAMLs found through `include_path` (e.g. over
local JSON files with the `json` dataset loader). A Hub task without the Hub gives one line naming
the dataset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from schemas.artifacts import write_json
from schemas.errors import PolyinstructError
from schemas.languages import UnknownLanguageError, resolve

NOT_COMPARABLE = "--limit cut the tasks: these numbers are not comparable with published ones."
# Failures that mean "the dataset could not be fetched" (offline, no such Hub repo).
_FETCH_WORDS = ("couldn't reach", "connection", "offline", "hub", "not found on the hugging face",
                "doesn't exist on the hub", "localentrynotfound", "cannot find the requested files", "resolve")


def language_of_task(task: str) -> str | None:
    """FLORES-200 code from a task name's suffix (xcopa_et, belebele_fra_Latn), else None."""
    parts = task.split("_")
    for suffix in ("_".join(parts[-2:]) if len(parts) > 2 else None, parts[-1] if len(parts) > 1 else None):
        if suffix:
            try:
                return resolve(suffix).flores
            except UnknownLanguageError:
                continue
    return None


def _dataset_paths(tasks_index: Any, tasks: Sequence[str]) -> list[str]:
    """The datasets (`dataset_path`) the tasks, groups or tags read, from lm-eval's task index
    (parsed YAML, nothing loaded), for the offline error line."""
    index = tasks_index.task_index
    found: set[str] = set()
    seen: set[str] = set()

    def walk(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        entry = index.get(name)
        cfg = (entry.cfg or {}) if entry is not None else {}
        if cfg.get("dataset_path"):
            found.add(str(cfg["dataset_path"]))
        members = cfg.get("task") if isinstance(cfg.get("task"), list) else []
        members += [n for n, e in index.items() if name in (e.tags or set())]
        for member in members:
            walk(member if isinstance(member, str) else str(member.get("task", "")))

    for task in tasks:
        walk(task)
    return sorted(found)


@cache
def task_manager(include_path: str | None = None) -> Any:
    """lm-eval's task index (it parses every task YAML: build it once per process and include path)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path)


def _run(base_path: Path, adapter: Path | None, tasks: Sequence[str], limit: int | None, num_fewshot: int,
         batch_size: int, include_path: Path | None, apply_chat_template: bool) -> dict[str, Any]:
    import lm_eval
    import torch

    tasks_index = task_manager(str(include_path) if include_path else None)
    unknown = [t for t in tasks if not tasks_index.match_tasks([t])]
    if unknown:
        raise PolyinstructError(f"benchmark: unknown task(s) {', '.join(unknown)}; use lm-eval task names"
                                " (`lm_eval ls tasks`) or pass --include-path DIR with local task YAMLs")
    model_args: dict[str, Any] = {"pretrained": str(base_path), "dtype": "float32"}
    if adapter is not None:
        model_args["peft"] = str(adapter)
    try:
        results = lm_eval.simple_evaluate(
            model="hf", model_args=model_args, tasks=list(tasks), num_fewshot=num_fewshot, batch_size=batch_size,
            limit=limit, task_manager=tasks_index, device="cuda" if torch.cuda.is_available() else "cpu",
            apply_chat_template=apply_chat_template, log_samples=True,
            bootstrap_iters=0)
    except Exception as err:  # noqa: BLE001 - datasets/hub raise many types; name the dataset instead
        text = f"{type(err).__name__}: {err}".lower()
        if any(word in text for word in _FETCH_WORDS):
            datasets = _dataset_paths(tasks_index, tasks) or list(tasks)
            raise PolyinstructError(
                f"benchmark: cannot load the dataset(s) {', '.join(datasets)} (offline or not on the Hub); run"
                " where the Hub is reachable once (the datasets cache keeps them), or pass --include-path DIR"
                " with task YAMLs over local files") from None
        raise
    if results is None:
        raise PolyinstructError("benchmark: lm-eval returned no results (not the main process?)")
    return results


def _rows(results: dict[str, Any], side: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for task, metrics in results["results"].items():
        if "acc,none" not in metrics:
            continue  # a group's aggregate row is recomputed per language below
        samples = results.get("samples", {}).get(task, [])
        # Mean log-likelihood of the gold choice: shows the adapter changed the model even at equal accuracy.
        gold = [s["filtered_resps"][s["target"]][0] for s in samples
                if isinstance(s.get("target"), int) and s["target"] < len(s.get("filtered_resps", []))]
        rows[task] = {f"{side}": metrics["acc,none"], f"{side}_stderr": metrics.get("acc_stderr,none"),
                      f"{side}_gold_loglikelihood": sum(gold) / len(gold) if gold else None,
                      "samples": results.get("n-samples", {}).get(task, {}).get("effective"),
                      "version": results.get("versions", {}).get(task),
                      "num_fewshot": results.get("n-shot", {}).get(task)}
    return rows


def benchmark(base_path: Path, adapter: Path, tasks: Sequence[str], out: Path, limit: int | None = None,
              num_fewshot: int = 0, batch_size: int = 8, include_path: Path | None = None,
              apply_chat_template: bool = False, smoke: bool = False) -> dict[str, Any]:
    """Accuracy per task and language of the base model and of base + adapter; written to `out` (JSON)."""
    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").exists():
        raise PolyinstructError(f"{adapter}: no adapter_config.json; train it first (polyinstruct train)")
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    runs = {side: _rows(_run(base_path, path, tasks, limit, num_fewshot, batch_size, include_path,
                             apply_chat_template), side)
            for side, path in (("base", None), ("adapter", adapter))}
    rows = [{"task": task, "lang": language_of_task(task), "metric": "acc", **runs["base"][task],
             **runs["adapter"].get(task, {})} for task in sorted(runs["base"])]
    notes = [NOT_COMPARABLE] if limit is not None else []
    notes += ["SMOKE: the base model has random weights; these numbers test the pipeline."] if smoke else []
    result = {"base_model": str(base_path), "adapter": str(adapter), "tasks": list(tasks), "limit": limit,
              "comparable_with_published": limit is None, "num_fewshot": num_fewshot,
              "chat_template_applied": apply_chat_template, "smoke": smoke, "note": " ".join(notes),
              "results": rows}
    write_json(result, out)
    return result
