"""reports/index.html: the run at a glance (validation verdict, retention per language, rejects per reason,
comparison across mixtures) with links to every report page.

Each section is a function of `RunOutputs` returning HTML, or None when its inputs do not exist; add a
section by appending to `SECTIONS` (e.g. a richer mixture comparison).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quality.report_pages import alert, bar_chart, chart, esc, page, table
from quality.report_rejects import RejectsSummary
from schemas.errors import PolyinstructError


@dataclass(frozen=True)
class RunOutputs:
    """What a run wrote that the index shows; paths are as given on the command line."""
    out: Path  # the reports folder
    validation: Path  # metrics/validation.json
    quality: Path  # metrics/quality.json
    eval_dir: Path  # metrics/eval: one {mixture}.json per evaluated adapter
    rejects: RejectsSummary
    pages: dict[str, Path]  # title -> page under `out`, for the links


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise PolyinstructError(f"{path}: not readable JSON ({err}); rerun the stage that writes it") from None


def link(run: RunOutputs, target: Path, text: str) -> str:
    rel = Path(os.path.relpath(Path(target).resolve(), run.out.resolve())).as_posix()
    return f'<a href="{esc(rel)}">{esc(text)}</a>'


def verdict_section(run: RunOutputs) -> str | None:
    result = read_json(run.validation)
    if result is None:
        return alert(f"No validation result at <code>{esc(run.validation)}</code>.", "secondary")
    ok = bool(result.get("success"))
    head = (f"<strong>Validation {'passed' if ok else 'FAILED'}</strong>: {result.get('successful_expectations')} of"
            f" {result.get('evaluated_expectations')} expectations met on {result.get('rows', 0):,} rows in"
            f" {len(result.get('languages') or [])} languages (Great Expectations).")
    docs = run.pages.get("Data Docs (Great Expectations)")
    if docs is not None:
        head += " " + link(run, docs, "Open the Data Docs") + "."
    parts = [f'<div id="verdict" data-success="{str(ok).lower()}">' + alert(head, "success" if ok else "danger")]
    failures = result.get("failures") or []
    if failures:
        parts.append(table(["suite", "check", "column", "language"],
                           [[f.get("suite"), f.get("check") or f.get("expectation"), f.get("column") or "-",
                             f.get("lang") or "-"] for f in failures[:30]], table_id="validation-failures"))
    return "\n".join(parts) + "</div>"


def retention_section(run: RunOutputs) -> str | None:
    quality = read_json(run.quality)
    if quality is None:
        return None
    langs = quality.get("languages") or {}
    values = [{"lang": lang, "retention": round(s["kept"] / s["in"], 4) if s.get("in") else 0.0,
               "kept": s.get("kept", 0), "in": s.get("in", 0)} for lang, s in sorted(langs.items())]
    return "\n".join([
        '<h2 class="mt-5">Retention per language</h2>',
        "<p>Share of each language's rows that passed the quality filters and deduplication"
        f" (<code>{esc(run.quality)}</code>).</p>",
        chart("retention-chart", bar_chart(values, x="retention", y="lang", title="Retention",
                                           x_title="kept / in", x_format=".0%")),
        table(["language", "in", "kept", "retention"],
              [[v["lang"], f"{v['in']:,}", f"{v['kept']:,}", f"{v['retention']:.1%}"] for v in values],
              table_id="retention-table"),
    ])


def rejects_section(run: RunOutputs) -> str | None:
    by_reason = run.rejects.by_reason()
    parts = ['<h2 class="mt-5">Rejects per reason</h2>']
    page_link = run.pages.get("Rejected records")
    where = f" Examples next to their source: {link(run, page_link, 'rejects report')}." if page_link else ""
    if not by_reason:
        return "\n".join(parts + [f"<p>No rows were rejected.{where}</p>"])
    parts.append(f"<p>{run.rejects.total:,} rows rejected over all stages.{where}</p>")
    values = [{"reason": r, "rows": n} for r, n in by_reason.items()]
    parts.append(chart("rejects-chart", bar_chart(values, x="rows", y="reason", title="Rejected rows per reason")))
    parts.append(table(["reason", "rows"], [[r, f"{n:,}"] for r, n in by_reason.items()], table_id="rejects-table"))
    return "\n".join(parts)


def comparison_section(run: RunOutputs) -> str | None:
    """Adapters per mixture, from `polyinstruct evaluate`'s JSON (absent when no mixture was evaluated)."""
    files = sorted(run.eval_dir.glob("*.json")) if run.eval_dir.is_dir() else []
    evals = [(f.stem, data) for f in files if (data := read_json(f)) and "languages" in data]
    if not evals:
        return None
    langs = sorted({lang for _, e in evals for lang in e["languages"]})
    rows, values = [], []
    for name, e in evals:
        overall = e.get("overall") or {}
        base, adapter = overall.get("base_loss"), overall.get("adapter_loss")
        delta = adapter - base if base is not None and adapter is not None else None
        cells = [name, _num(base), _num(adapter), _num(delta)]
        for lang in langs:
            stats = e["languages"].get(lang) or {}
            cells.append(_num(stats.get("adapter_loss")))
            if stats.get("adapter_loss") is not None:
                values.append({"mixture": name, "lang": lang, "adapter loss": round(stats["adapter_loss"], 4)})
        rows.append(cells)
    spec = bar_chart(values, x="adapter loss", y="lang", color="mixture", title="Adapter loss per language")
    spec["encoding"]["yOffset"] = {"field": "mixture"}  # grouped, not stacked
    notes = sorted({e.get("note") for _, e in evals if e.get("note")})
    parts = ['<h2 class="mt-5">Comparison across mixtures</h2>',
             *(alert(esc(n), "warning") for n in notes),
             "<p>Held-out loss of each mixture's adapter (lower is better) against the base model, from"
             f" <code>{esc(run.eval_dir)}/*.json</code>; per-mixture details in the <code>.md</code> next to each.</p>",
             chart("comparison-chart", spec),
             table(["mixture", "base loss", "adapter loss", "Δ loss", *(f"{lang} adapter loss" for lang in langs)],
                   rows, table_id="comparison-table")]
    comparison_md = run.out / "comparison.md"
    if comparison_md.exists():
        parts.append(f"<p>{link(run, comparison_md, 'Full comparison (comparison.md)')}</p>")
    return "\n".join(parts)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def links_section(run: RunOutputs) -> str | None:
    items = "".join(f"<li>{link(run, p, title)}</li>" for title, p in run.pages.items())
    return f'<h2 class="mt-5">Pages</h2><ul id="pages">{items}</ul>'


SECTIONS: list[Callable[[RunOutputs], str | None]] = [
    verdict_section, links_section, retention_section, rejects_section, comparison_section]


def render_index(run: RunOutputs) -> str:
    body = "\n".join(s for section in SECTIONS if (s := section(run)))
    return page("polyinstruct run report", body, "assets", tables=True, charts=True)
