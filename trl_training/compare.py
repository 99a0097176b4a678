"""One comparison across mixtures, the question both papers ask: which tuning recipe makes the better
multilingual assistant?

Reads every `polyinstruct evaluate` result in a directory (one JSON per mixture), the mixtures'
manifests (training budget: examples and tokens, so Chen et al.'s downsampled mixtures are compared at
equal cost) and, when present, `polyinstruct benchmark` results. Writes a markdown report with one table
per language (rows: the base model and each mixture) and one CSV per metric for DVC's bar charts.
The base model's row comes from the evaluations themselves (adapter disabled, same settings)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from schemas.artifacts import write_csv_rows
from schemas.errors import PolyinstructError

BASE = "base"
# metric -> (column title, key of the adapter side in an evaluate row, key of the base side)
METRICS: dict[str, tuple[str, str, str | None]] = {
    "held_out_loss": ("held-out loss", "adapter_loss", "base_loss"),
    "fidelity": ("fidelity", "fidelity_adapter", "fidelity_base"),
    "judge_score": ("judge score", "judge_mean_score_adapter", "judge_mean_score_base"),
    "wrong_language": ("wrong language", "judge_wrong_language_adapter", "judge_wrong_language_base"),
    "win_rate_vs_base": ("win-rate vs base", "win_rate_adapter_vs_base", None),
    "benchmark_accuracy": ("benchmark accuracy", "benchmark_adapter", "benchmark_base"),
}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise PolyinstructError(f"{path}: unreadable ({err}); rerun the stage that writes it") from None
    if not isinstance(data, dict):
        raise PolyinstructError(f"{path}: expected a JSON object")
    return data


def _benchmark_by_language(path: Path) -> dict[str, dict[str, float]]:
    """lang -> mean accuracy over the benchmark's tasks in that language, base and adapter."""
    sums: dict[str, dict[str, list[float]]] = {}
    for row in _read(path).get("results", []):
        lang = row.get("lang") or "all"
        for side in ("base", "adapter"):
            if row.get(side) is not None:
                sums.setdefault(lang, {}).setdefault(side, []).append(float(row[side]))
    return {lang: {f"benchmark_{side}": sum(v) / len(v) for side, v in sides.items()}
            for lang, sides in sums.items()}


def collect(eval_dir: Path, mixes_dir: Path | None, benchmarks_dir: Path | None) -> dict[str, Any]:
    """{mixtures: {name: budget and flags}, rows: [{lang, mixture, metric...}]}; base first per language."""
    files = sorted(Path(eval_dir).glob("*.json"))
    if not files:
        raise PolyinstructError(f"{eval_dir}: no evaluation results (*.json); run `polyinstruct evaluate` first")
    mixtures: dict[str, dict[str, Any]] = {}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    notes: set[str] = set()
    for path in files:
        result = _read(path)
        if "languages" not in result:
            raise PolyinstructError(f"{path}: not a `polyinstruct evaluate` result (no `languages`)")
        name = result.get("mixture") or path.stem
        manifest_path = Path(mixes_dir) / name / "manifest.json" if mixes_dir else None
        manifest = _read(manifest_path) if manifest_path and manifest_path.exists() else {}
        bench_path = Path(benchmarks_dir) / f"{name}.json" if benchmarks_dir else None
        bench = _benchmark_by_language(bench_path) if bench_path and bench_path.exists() else {}
        mixtures[name] = {"recipe": manifest.get("recipe"), "examples": manifest.get("total_examples"),
                          "tokens": manifest.get("total_tokens"), "smoke": bool(result.get("smoke")),
                          "judge": (result.get("judge") or {}).get("model")}
        if result.get("note"):
            notes.add(result["note"])
        if result.get("judge"):
            notes.add(result["judge"]["note"])
        for lang, row in result["languages"].items():
            merged = {**row, **bench.get(lang, {})}
            adapter = {metric: merged.get(key) for metric, (_, key, _) in METRICS.items()}
            rows[(lang, name)] = {"lang": lang, "mixture": name, **adapter}
            # The base is the same model everywhere: the first evaluation that scored it gives its row.
            base = {metric: merged.get(key) for metric, (_, _, key) in METRICS.items() if key}
            current = rows.setdefault((lang, BASE), {"lang": lang, "mixture": BASE})
            for metric, value in base.items():
                if current.get(metric) is None:
                    current[metric] = value
    ordered = sorted(rows.values(), key=lambda r: (r["lang"], r["mixture"] != BASE, r["mixture"]))
    return {"mixtures": mixtures, "rows": ordered, "notes": sorted(notes)}


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def markdown(data: dict[str, Any]) -> str:
    lines = ["# Comparison of the tuning mixtures", ""]
    lines += [f"> **{note}**" for note in data["notes"]] + ([""] if data["notes"] else [])
    lines += ["## Training budget", "", "Chen et al. compare the downsampled multilingual mixture with the"
              " monolingual one at equal cost: compare at equal examples and tokens.", "",
              "| mixture | recipe | examples | tokens | judge |", "|---|---|---:|---:|---|"]
    for name, m in sorted(data["mixtures"].items()):
        lines.append(f"| {name} | {m['recipe'] or '–'} | {_fmt(m['examples'])} | {_fmt(m['tokens'])} |"
                     f" {m['judge'] or '–'} |")
    header = "| mixture | " + " | ".join(title for title, _, _ in METRICS.values()) + " |"
    for lang in sorted({r["lang"] for r in data["rows"]}):
        lines += ["", f"## {lang}", "", header, "|---|" + "---:|" * len(METRICS)]
        for row in (r for r in data["rows"] if r["lang"] == lang):
            lines.append(f"| {row['mixture']} | " + " | ".join(_fmt(row.get(m)) for m in METRICS) + " |")
    return "\n".join(lines) + "\n"


def compare(eval_dir: Path, out: Path, plots_dir: Path | None = None, mixes_dir: Path | None = None,
            benchmarks_dir: Path | None = None) -> dict[str, Any]:
    """Write the report `out` (markdown) and, with `plots_dir`, one CSV per metric (lang, mixture, value)."""
    data = collect(eval_dir, mixes_dir, benchmarks_dir)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(data), encoding="utf-8")
    if plots_dir is not None:
        for metric in METRICS:
            rows = [{"label": f"{r['lang']} · {r['mixture']}", "lang": r["lang"], "mixture": r["mixture"],
                     metric: r[metric]} for r in data["rows"] if r.get(metric) is not None]
            write_csv_rows(rows, ["label", "lang", "mixture", metric], Path(plots_dir) / f"{metric}.csv")
    return data
