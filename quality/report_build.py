"""`polyinstruct report`: gather a run's pages into reports/, every one readable with no network.

Writes reports/assets (the vendored CSS/JS/fonts), reports/rejects.html, reports/plots/index.html
(`dvc plots show` with our local --html-template) and reports/index.html linking them all and the Data
Docs that the validate stage wrote. Then checks that no page loads a script or stylesheet over http(s).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from quality.offline_html import remote_assets
from quality.report_index import RunOutputs, render_index
from quality.report_rejects import RejectsSummary, collect_rejects, render_rejects_page
from quality.vendored_assets import copy_assets
from schemas.errors import PolyinstructError

DVC_PLOTS_TEMPLATE = Path(__file__).resolve().parent / "report_templates" / "dvc_plots.html"
ASSETS = "assets"
SKIP_DIRS = {ASSETS, "screenshots"}  # folders under reports/ that hold no pages of their own


@dataclass(frozen=True)
class ReportResult:
    index: Path
    pages: dict[str, Path]
    rejects: RejectsSummary
    notes: list[str]


def dvc_root(start: Path) -> Path | None:
    for folder in [start.resolve(), *start.resolve().parents]:
        if (folder / ".dvc").is_dir():
            return folder
    return None


def render_dvc_plots(out_dir: Path, repo: Path) -> Path:
    """`dvc plots show` through the local template (vendored Vega), of the declared plot files (all of them
    CSVs under metrics/) that hold data: a plot whose stage did not run, or that has no rows (benchmarks
    are opt-in), would be an empty frame."""
    targets = [str(path.relative_to(repo)) for path in sorted((repo / "metrics").rglob("*.csv"))
               if len(path.read_text(encoding="utf-8").strip().splitlines()) > 1]
    cmd = [sys.executable, "-m", "dvc", "plots", "show", "--html-template", str(DVC_PLOTS_TEMPLATE),
           "-o", str(out_dir.resolve()), *targets]
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    page = out_dir / "index.html"
    if done.returncode != 0 or not page.exists():
        why = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise PolyinstructError(f"dvc plots show failed in {repo}: {why}")
    return page


def _other_pages(out: Path, known: set[Path]) -> dict[str, Path]:
    """HTML pages other stages put under reports/ (top-level pages and folder/index.html), so the index
    links them too."""
    candidates = [*out.glob("*.html"), *out.glob("*/index.html")]
    return {p.relative_to(out).as_posix(): p for p in sorted(candidates)
            if p.resolve() not in known and p != out / "index.html" and p.parent.name not in SKIP_DIRS}


def offline_problems(out: Path) -> list[str]:
    """`page: url` for every http(s) script or stylesheet a page under `out` loads."""
    return [f"{page}: {url}" for page in sorted(out.rglob("*.html")) if page.relative_to(out).parts[0] != ASSETS
            for url in remote_assets(page.read_text(encoding="utf-8", errors="replace"))]


def build_reports(out: Path, *, validation: Path, quality: Path, eval_dir: Path, rejects: Path,
                  translated: Path, source: Path, docs: Path, examples: int, dvc_plots: bool) -> ReportResult:
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out / ASSETS)
    notes: list[str] = []
    summary = collect_rejects(rejects, translated, source, examples)
    rejects_page = out / "rejects.html"
    rejects_page.write_text(render_rejects_page(summary, ASSETS), encoding="utf-8")
    pages: dict[str, Path] = {}
    if (docs / "index.html").exists():
        pages["Data Docs (Great Expectations)"] = docs / "index.html"
    else:
        notes.append(f"no Data Docs at {docs}/index.html (run `polyinstruct validate`)")
    pages["Rejected records"] = rejects_page
    if dvc_plots:
        repo = dvc_root(Path.cwd())
        if repo is None:
            notes.append("DVC plots left out: not inside a DVC repository")
        else:
            pages["DVC plots"] = render_dvc_plots(out / "plots", repo)
    comparison_md = out / "comparison.md"
    if comparison_md.exists():
        pages["Comparison across mixtures (markdown)"] = comparison_md
    pages |= _other_pages(out, {p.resolve() for p in pages.values()})
    run = RunOutputs(out=out, validation=validation, quality=quality, eval_dir=eval_dir, rejects=summary,
                     pages=pages)
    index = out / "index.html"
    index.write_text(render_index(run), encoding="utf-8")
    problems = offline_problems(out)
    if problems:
        raise PolyinstructError(f"{problems[0]}: a report page loads this over the network"
                                f" ({len(problems)} such reference(s)); it must use the vendored assets")
    return ReportResult(index=index, pages=pages, rejects=summary, notes=notes)
