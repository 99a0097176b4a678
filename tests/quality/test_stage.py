"""The filter stage on real human translations (hplt-test: bg, es, fr, ru, zh against en), on corrupted
copies of them, in parallel alignment, on bad input, through the CLI, and twice (same bytes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quality.filters import SPAN_REASONS
from quality.inputs import load_rows
from quality.stage import run_filter
from schemas.errors import PolyinstructError
from schemas.params import parse_params
from schemas.records import REJECT_SCHEMA, TRANSLATED_SCHEMA
from tests.conftest import SHARED_DATA
from tests.quality.test_filters import run_small, write_set

DATA = SHARED_DATA
HPLT = {"bg": "bul_Cyrl", "es": "spa_Latn", "fr": "fra_Latn", "ru": "rus_Cyrl", "zh": "zho_Hans"}
SWAP = {"es": "fr", "fr": "es", "bg": "ru", "ru": "bg"}  # same script: only language ID can tell
CODE = " Use `load_config()` as shown in https://example.com/docs/setup."
# Corruption -> the reasons that name it (a cut-off code span or URL: one of the span checks).
CORRUPTIONS = {"swap": ("lang_id",), "repeat": ("repetition",), "english": ("untranslated",), "cut": SPAN_REASONS}


def load_hplt() -> dict[str, dict[str, str]]:
    if not (DATA / "hplt-test").exists():
        pytest.skip(f"{DATA}/hplt-test not found (shared real data)")
    prompts = {}
    for code in ("en", *HPLT):
        rows = [json.loads(line) for line in (DATA / "hplt-test" / f"test_{code}.jsonl").read_text().splitlines()
                if line.strip()]
        prompts[code] = {r["id"]: r["prompt"] for r in rows}
    return prompts


def pairs(prompts: dict[str, dict[str, str]], code: str) -> dict[str, tuple[str, str]]:
    """hplt-test has prompts only: record i pairs prompt i (instruction) with prompt i+1 (output), in
    English id order, so that every field is a human translation and records are parallel by id."""
    order = sorted(prompts["en"])
    partner = dict(zip(order, order[1:] + order[:1], strict=True))
    have = prompts[code]
    return {i: (have[i], have[partner[i]]) for i in order if i in have and partner[i] in have}


def record(ident: str, texts: tuple[str, str]) -> dict[str, str]:
    return {"id": ident, "instruction": texts[0], "input": "", "output": texts[1]}


@pytest.fixture(scope="module")
def hplt() -> dict[str, dict[str, str]]:
    return load_hplt()


@pytest.fixture(scope="module")
def clean_run(hplt: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict, Path]:
    root = tmp_path_factory.mktemp("hplt")
    source = [record(i, t) for i, t in pairs(hplt, "en").items()]
    translated = {HPLT[c]: [record(i, t) for i, t in pairs(hplt, c).items()] for c in HPLT}
    write_set(root, source, translated)
    result, rejects = run_small(root)  # lang_id on (the code default), independent alignment
    return result, rejects, root


def test_human_translations_are_kept(clean_run: tuple, hplt: dict) -> None:
    result, rejects, _ = clean_run
    for code, flores in HPLT.items():
        assert result.counts_in[flores] == len(pairs(hplt, code)) >= 45
        retention = result.kept[flores] / result.counts_in[flores]
        assert retention >= 0.95, (code, retention, [r for k, r in rejects.items() if k[0] == flores])
    assert result.kept["eng_Latn"] >= 0.95 * result.counts_in["eng_Latn"]


def test_outputs_have_the_contracted_shape(clean_run: tuple) -> None:
    result, _, root = clean_run
    files = sorted(p.name for p in (root / "filtered").glob("*.parquet"))
    assert files == sorted(f"{f}.parquet" for f in [*HPLT.values(), "eng_Latn"])
    for name in files:
        table = pq.read_table(root / "filtered" / name)
        assert table.schema.equals(TRANSLATED_SCHEMA, check_metadata=False)
        ids = table.column("id").to_pylist()
        assert ids == sorted(ids)
    assert pq.read_table(root / "rejects.parquet").schema.equals(REJECT_SCHEMA, check_metadata=False)
    metrics = json.loads((root / "quality.json").read_text())
    assert set(metrics) >= {"alignment", "languages", "skipped_checks"}
    for flores, m in metrics["languages"].items():
        assert m["kept"] + m["rejected"] == m["in"] == result.counts_in[flores]
        assert sum(m["rejected_by_reason"].values()) == m["rejected"]
    # No translate-stage columns in this data: the checks that need them say so.
    assert set(metrics["skipped_checks"]) >= {"truncated", "placeholder"}


@pytest.fixture(scope="module")
def corrupted_run(hplt: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, set]]:
    """Ten ids per corruption (swap only where a same-script partner exists), ten clean."""
    root = tmp_path_factory.mktemp("hplt-corrupt")
    ids = sorted(hplt["en"])
    groups = {"swap": ids[0:10], "repeat": ids[10:20], "english": ids[20:30], "cut": ids[30:40]}
    english = pairs(hplt, "en")
    source = [{**record(i, t), "output": t[1] + (CODE if i in groups["cut"] else "")} for i, t in english.items()]
    translated: dict[str, list[dict]] = {}
    planted: dict[str, set] = {name: set() for name in CORRUPTIONS}
    for code, flores in HPLT.items():
        rows = []
        swapped = pairs(hplt, SWAP[code]) if code in SWAP else {}
        for ident, texts in pairs(hplt, code).items():
            row = record(ident, texts)
            if ident in groups["swap"] and ident in swapped:
                row = record(ident, swapped[ident])
                planted["swap"].add((flores, ident))
            elif ident in groups["repeat"]:
                row["output"] = ((texts[1] + ("" if code == "zh" else " ")) * 10).strip()
                planted["repeat"].add((flores, ident))
            elif ident in groups["english"]:
                row = record(ident, english[ident])
                planted["english"].add((flores, ident))
            elif ident in groups["cut"]:
                full = texts[1] + CODE  # the translation kept the code span; then it was cut in half
                row["output"] = full[: len(full) // 2]
                planted["cut"].add((flores, ident))
            rows.append(row)
        translated[flores] = rows
    write_set(root, source, translated)
    _, rejects = run_small(root)
    return rejects, planted


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupted_copies_are_rejected_for_the_right_reason(corrupted_run: tuple, corruption: str) -> None:
    rejects, planted = corrupted_run
    rows = planted[corruption]
    right = [key for key in rows if rejects.get(key, {}).get("reason") in CORRUPTIONS[corruption]]
    assert len(rows) >= 30
    assert len(right) / len(rows) >= 0.9, (corruption, [rejects.get(k) for k in rows if k not in right])


def test_parallel_alignment_drops_an_id_everywhere(tmp_path: Path) -> None:
    source = [{"id": f"p-{i}", "instruction": f"Explain topic number {i} in detail.", "input": "",
               "output": f"Topic {i} is explained here at some length."} for i in range(3)]
    fra = [{"id": f"p-{i}", "instruction": f"Expliquez le sujet numéro {i} en détail.", "input": "",
            "output": f"Le sujet {i} est expliqué ici assez longuement."} for i in range(3)]
    spa = [{"id": f"p-{i}", "instruction": f"Explique el tema número {i} en detalle.", "input": "",
            "output": f"El tema {i} se explica aquí con cierta extensión." if i else ""} for i in range(2)]
    write_set(tmp_path, source, {"fra_Latn": fra, "spa_Latn": spa})
    overrides = {"alignment": "parallel", "filters": {"lang_id": {"enabled": False},
                                                      "length_ratio": {"enabled": False}}}
    result, rejects = run_small(tmp_path, overrides)
    assert rejects[("spa_Latn", "p-0")]["reason"] == "empty"
    for lang in ("eng_Latn", "fra_Latn"):
        assert rejects[(lang, "p-0")]["reason"] == "parallel_alignment"
        assert rejects[(lang, "p-0")]["detail"] == "rejected in spa_Latn (empty)"
        assert rejects[(lang, "p-2")]["detail"] == "missing in spa_Latn"
    assert result.kept == {"eng_Latn": 1, "fra_Latn": 1, "spa_Latn": 1}
    assert json.loads((tmp_path / "quality.json").read_text())["alignment"] == "parallel"


def _minimal(root: Path, rows: list[dict], name: str = "fra_Latn.parquet") -> Path:
    source = [{"id": "a-1", "instruction": "Say hello.", "input": "", "output": "Hello."}]
    write_set(root, source, {})
    pq.write_table(pa.Table.from_pylist(rows), root / "translated" / name)
    return root


@pytest.mark.parametrize(("rows", "message"), [
    ([{"id": "a-1", "lang": "fra_Latn", "instruction": "Dis bonjour.", "output": "Bonjour."}],
     "missing column(s) input"),
    ([{"id": "a-1", "lang": "xx_Fake", "instruction": "Dis bonjour.", "input": "", "output": "Bonjour."}],
     "unknown language code 'xx_Fake'"),
    ([{"id": "a-1", "lang": "fra_Latn", "instruction": "Dis bonjour.", "input": "", "output": "Bonjour."}] * 2,
     "id 'a-1' appears 2 times for fra_Latn"),
    ([{"id": None, "lang": "fra_Latn", "instruction": "Dis bonjour.", "input": "", "output": "Bonjour."}],
     "column id has 1 empty value(s)"),
    ([{"id": "a-1", "lang": None, "instruction": "Dis bonjour.", "input": "", "output": "Bonjour."}],
     "column lang has empty values"),
    ([{"id": "a-1", "lang": "en", "instruction": "Say hello.", "input": "", "output": "Hello."}],
     "holds rows in the source language eng_Latn"),
    ([{"id": "a-1", "lang": "fra_Latn", "instruction": 7, "input": "", "output": "Bonjour."}],
     "column instruction has type int64"),
])
def test_bad_input_is_one_clear_line(tmp_path: Path, rows: list[dict], message: str) -> None:
    root = _minimal(tmp_path, rows)
    with pytest.raises(PolyinstructError) as err:
        run_small(root)
    assert message in str(err.value) and "fra_Latn.parquet" in str(err.value)
    assert "\n" not in str(err.value)


def test_rows_are_read_by_duckdb_with_defaults_and_stable_row_ids(tmp_path: Path) -> None:
    """A null-typed extra column counts as present but empty, NULL text is '', a file's rows keep their
    ids across runs (file index << 32 | row number), and files without an extra column are named."""
    source = [{"id": f"a-{i}", "instruction": f"Say hello {i}.", "input": "", "output": "Hello."} for i in range(2)]
    write_set(tmp_path, source, {})
    pq.write_table(pa.table({"id": ["a-1", "a-0"], "lang": ["fr", "fr"], "instruction": ["Salut 1.", None],
                             "input": ["", ""], "output": ["Bonjour.", "Bonjour."],
                             "model": pa.nulls(2, pa.null())}), tmp_path / "translated" / "fra_Latn.parquet")
    pq.write_table(pa.table({"id": ["a-0"], "lang": ["deu_Latn"], "instruction": ["Hallo."], "input": [""],
                             "output": ["Hallo."], "model": ["m"]}), tmp_path / "translated" / "deu_Latn.parquet")
    con = duckdb.connect()
    missing = load_rows(con, tmp_path / "source.parquet", tmp_path / "translated", "eng_Latn")
    rows = con.execute("SELECT rid, lang, id, instruction, model, is_source FROM rows ORDER BY rid").fetchall()
    assert rows == [(0, "eng_Latn", "a-0", "Say hello 0.", None, True),
                    (1, "eng_Latn", "a-1", "Say hello 1.", None, True),
                    (2**32, "deu_Latn", "a-0", "Hallo.", "m", False),
                    (2 * 2**32, "fra_Latn", "a-1", "Salut 1.", None, False),
                    (2 * 2**32 + 1, "fra_Latn", "a-0", "", None, False)]
    assert missing["model"] == [] and missing["smoke"] == ["deu_Latn.parquet", "fra_Latn.parquet"]


def test_empty_translated_directory(tmp_path: Path) -> None:
    write_set(tmp_path, [{"id": "a-1", "instruction": "Say hello.", "input": "", "output": "Hello."}], {})
    with pytest.raises(PolyinstructError, match="holds no .parquet files"):
        run_small(tmp_path)


def test_cli_runs_the_stage_twice_with_identical_outputs(tmp_path: Path) -> None:
    """Through the real CLI (as dvc repro calls it); a second run writes the same bytes."""
    source = [{"id": f"c-{i}", "instruction": f"Explain topic number {i}.", "input": "",
               "output": f"Topic {i} is explained here."} for i in range(4)]
    fra = [{"id": f"c-{i}", "instruction": f"Expliquez le sujet numéro {i}.", "input": "",
            "output": f"Le sujet {i} est expliqué ici."} for i in range(4)]
    write_set(tmp_path, source, {"fra_Latn": fra})
    cli = [sys.executable, "-c", "from dataset_builder.cli.app import main; main()", "filter",
           "--source", "source.parquet", "--translated", "translated", "--out", "filtered",
           "--rejects", "rejects/filter.parquet", "--metrics", "metrics/quality.json", "--plots", "plots",
           "--no-lang-id"]  # language ID has its own tests; here it would only load models twice
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    outputs = []
    for _ in range(2):
        done = subprocess.run(cli, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append({p.relative_to(tmp_path): p.read_bytes() for p in sorted(tmp_path.rglob("*"))
                        if p.is_file() and p.parts[-2] != "translated" and not p.name.endswith(".timing.json")})
    assert outputs[0] == outputs[1]  # the run's timings (metrics/quality.timing.json) are the only difference
    assert "seconds" in json.loads((tmp_path / "metrics/quality.timing.json").read_text())
    assert "filter: kept" in done.stdout
    bad = subprocess.run([*cli[:3], "filter", "--translated", "nowhere"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_stage_runs_with_default_params(tmp_path: Path) -> None:
    """Defaults from the params model: every filter on, both dedups, independent alignment."""
    params = parse_params({}, "test")
    source = [{"id": "d-1", "instruction": "Say hello to the world.", "input": "", "output": "Hello, world."}]
    write_set(tmp_path, source, {"fra_Latn": [{"id": "d-1", "instruction": "Dis bonjour au monde.",
                                               "input": "", "output": "Bonjour, le monde."}]})
    result = run_filter(tmp_path / "source.parquet", tmp_path / "translated", tmp_path / "out",
                        tmp_path / "rej.parquet", None, None, params)
    assert result.kept == {"eng_Latn": 1, "fra_Latn": 1}
