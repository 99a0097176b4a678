"""The HTML reports: vendored assets, the offline rewrite of Data Docs, the rejects report, and every page
of a real run opened in headless Chromium with the network blocked."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from quality.offline_html import localize_html, localize_site, remote_assets
from quality.report_rejects import collect_rejects, render_rejects_page
from quality.vendored_assets import ASSETS_DIR, packages, verify
from schemas.artifacts import write_parquet
from schemas.errors import PolyinstructError
from schemas.records import REJECT_SCHEMA, SOURCE_SCHEMA, TRANSLATED_SCHEMA
from tests.conftest import REPO_ROOT, run_cli
from tests.quality.chromium import Browser, find_chromium
from tests.quality.run_slice import TARGETS, build_run

SCREENSHOTS = REPO_ROOT / "reports" / "screenshots"
GE_HEAD = """<head>
<link rel="stylesheet" href="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css">
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js" integrity="sha384-x"
 crossorigin="anonymous"></script>
<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" integrity="sha384-y"
 crossorigin="anonymous"></script>
<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css">
<script src="./static/scripts/local.js"></script>
</head><body><a href="https://docs.greatexpectations.io/">docs</a></body>"""


def test_vendored_assets_are_the_bytes_the_manifest_lists() -> None:
    assert verify() == []
    total = sum((ASSETS_DIR / p.dir / f).stat().st_size for p in packages() for f in p.files)
    assert total < 4_000_000, f"vendored assets grew to {total:,} bytes"
    assert all(p.license and (ASSETS_DIR / p.dir / p.license_file).is_file() for p in packages())


def test_cdn_tags_are_rewritten_to_vendored_copies() -> None:
    assert len(remote_assets(GE_HEAD)) == 6  # the docs link is not an asset
    html = localize_html(GE_HEAD, "static/vendor")
    assert remote_assets(html) == []
    assert 'src="static/vendor/bootstrap/dist/js/bootstrap.bundle.min.js"' in html
    assert 'href="static/vendor/fontawesome-free/css/all.min.css"' in html
    assert "popper" not in re.sub(r"<!--.*?-->", "", html)  # Bootstrap's bundle carries Popper
    assert "integrity" not in html and "crossorigin" not in html
    assert 'src="./static/scripts/local.js"' in html and "https://docs.greatexpectations.io/" in html


def test_a_cdn_file_without_a_vendored_copy_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<script src="https://cdn.example.org/new-lib@1/new-lib.min.js"></script>')
    with pytest.raises(PolyinstructError, match=r"index.html: loads https://cdn.example.org/new-lib@1/new-lib"):
        localize_site(tmp_path)


def test_rejects_report_counts_every_reason_present(tmp_path: Path) -> None:
    source = [{"id": f"s-{i}", "source": "s", "instruction": f"Instruction {i}", "input": "",
               "output": f"Answer {i}"} for i in range(30)]
    write_parquet(pa.Table.from_pylist(source, schema=SOURCE_SCHEMA), tmp_path / "source.parquet")
    translated = [{"id": r["id"], "lang": "deu_Latn", "instruction": f"Anweisung {i}", "input": "",
                   "output": f"Antwort {i}", "model": "m", "smoke": False, "truncated_fields": [],
                   "protected_spans_ok": True, "kept_verbatim": False} for i, r in enumerate(source)]
    write_parquet(pa.Table.from_pylist(translated, schema=TRANSLATED_SCHEMA), tmp_path / "tr" / "deu_Latn.parquet")
    # A reason no code knows about (other stages add reasons): it must appear all the same.
    rejects = [{"id": f"s-{i}", "lang": "deu_Latn", "stage": "filter",
                "reason": "made_up_reason" if i < 7 else "empty", "detail": f"why {i}"} for i in range(10)]
    rejects.append({"id": "bad-1", "lang": "eng_Latn", "stage": "ingest", "reason": "not_an_object", "detail": "x"})
    write_parquet(pa.Table.from_pylist(rejects[:6], schema=REJECT_SCHEMA), tmp_path / "rej" / "filter.parquet")
    write_parquet(pa.Table.from_pylist(rejects[6:], schema=REJECT_SCHEMA), tmp_path / "rej" / "sub" / "x.parquet")
    summary = collect_rejects(tmp_path / "rej", tmp_path / "tr", tmp_path / "source.parquet", examples=5)
    expected = Counter((r["lang"], r["reason"]) for r in rejects)
    assert {(g.lang, g.reason): g.count for g in summary.groups} == expected
    made_up = next(g for g in summary.groups if g.reason == "made_up_reason")
    assert len(made_up.examples) == 5
    example = made_up.examples[0]
    number = example["id"].split("-")[1]
    assert example["src_instruction"] == f"Instruction {number}" and example["tgt_output"] == f"Antwort {number}"
    html = render_rejects_page(summary, "assets")
    assert "made_up_reason" in html and "not_an_object" in html and "Anweisung" in html
    assert remote_assets(html) == []


# ------------------------------------------------------------------------------------------- real browser


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed and could not be (`apt-get install -y chromium`; "
                    "`make test` and .ci/run try that first)")
    try:
        opened = Browser(binary)
    except (OSError, RuntimeError, TimeoutError, subprocess.SubprocessError) as err:
        pytest.skip(f"chromium at {binary} does not start headless here: {err}")
    yield opened
    opened.close()


def _rows(selector: str) -> str:
    return f"document.querySelectorAll('{selector}').length"


def _check_page(browser: Browser, page: Path, ready: str, name: str) -> None:
    assert page.exists(), page
    loaded = browser.open(page, ready)
    shot = browser.screenshot(SCREENSHOTS / f"{name}.png")
    assert shot.stat().st_size > 10_000, f"{shot}: an empty screenshot"
    assert loaded, f"{page}: the content did not appear with the network blocked (screenshot: {shot})"
    assert browser.remote_requests() == [], f"{page} asked the network for {browser.remote_requests()}"


def test_no_page_loads_a_remote_script_or_stylesheet(run: Path) -> None:
    pages = [p for p in (run / "reports").rglob("*.html") if "assets" not in p.relative_to(run / "reports").parts]
    assert len(pages) >= 10  # index, rejects, plots, Data Docs index + 3 validations + 3 suites
    assert {str(p): remote_assets(p.read_text()) for p in pages if remote_assets(p.read_text())} == {}


def test_data_docs_render_offline(run: Path, browser: Browser) -> None:
    docs = run / "reports" / "data_docs"
    suites = ("polyinstruct.rows", "polyinstruct.languages", "polyinstruct.source")
    runs_listed = " && ".join(f"rows.includes('{s}')" for s in suites)
    _check_page(browser, docs / "index.html",
                f"(rows => {runs_listed})(Array.from(document.querySelectorAll('table tbody tr'))"
                ".map(r => r.innerText).join(' '))", "data_docs_index")
    validation = next((docs / "validations").rglob("polyinstruct-rows.html"))
    icons = "document.fonts.check('900 16px \"Font Awesome 6 Free\"') && document.querySelector('.fas, .fa') !== null"
    styled = "getComputedStyle(document.querySelector('table.table')).borderCollapse === 'collapse'"
    _check_page(browser, validation, f"{_rows('table tbody tr')} > 5 && {icons} && {styled}", "data_docs_validation")
    _check_page(browser, docs / "expectations" / "polyinstruct" / "rows.html",
                f"{_rows('table tbody tr, li')} > 5 && {styled}", "data_docs_suite")


def test_report_index_rejects_and_plots_render_offline(run: Path, browser: Browser) -> None:
    reports = run / "reports"
    reasons = {"empty", "untranslated", "repetition"}
    _check_page(browser, reports / "index.html",
                " && ".join([_rows("#verdict .alert-success") + " === 1",  # charts: one drawn bar per value
                             _rows("#retention-chart .mark-rect path") + f" === {1 + len(TARGETS)}",
                             _rows("#rejects-chart .mark-rect path") + f" === {len(reasons)}",
                             _rows("#comparison-chart .mark-rect path") + f" === {2 * (1 + len(TARGETS))}",
                             _rows("#rejects-table tbody tr") + f" === {len(reasons)}",
                             _rows("#retention-table tbody tr") + f" === {1 + len(TARGETS)}",
                             _rows("#pages li") + " >= 3"]), "index")
    groups = len(TARGETS) * len(reasons)
    _check_page(browser, reports / "rejects.html",
                " && ".join([_rows("#rejects-by-reason .mark-rect path") + f" === {groups}",
                             _rows("#rejects-summary tbody tr") + f" === {groups}",
                             _rows(".pi-examples tbody tr") + f" === {groups * 5}"]), "rejects")
    # length_ratio.csv: every non-source row of the slice that has prose to measure (a record that is all
    # code has no prose length ratio); one drawn mark per row of the file
    rows_plotted = len((run / "metrics/plots/length_ratio.csv").read_text().strip().splitlines()) - 1
    assert 150 < rows_plotted <= 3 * 100 - 100
    _check_page(browser, reports / "plots" / "index.html",
                _rows("#metrics_plots_retention_csv .mark-rect path") + f" === {1 + len(TARGETS)} && "
                + _rows("#metrics_plots_length_ratio_csv .mark-rect path") + f" === {rows_plotted}", "dvc_plots")


def test_report_outside_a_dvc_repo_with_nothing_run_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli(monkeypatch, "report", "--out", "out") == 0
    index = (tmp_path / "out" / "index.html").read_text()
    assert "No validation result" in index and "No rows were rejected" in index
    assert "DVC plots" not in index and remote_assets(index) == []
    assert (tmp_path / "out" / "assets" / "manifest.json").exists()
