"""Each SQL filter rejects the row it should, for the reason it should, and nothing else; the first
failing reason wins and the others are named in the detail; switches and skipped checks are reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quality.registry import REASONS
from quality.stage import FilterResult, run_filter
from schemas.params import parse_params
from schemas.records import SOURCE_SCHEMA

FRENCH = [
    "Expliquez pourquoi le ciel est bleu pendant la journée et rouge au coucher du soleil.",
    "Donnez trois conseils pour rester en bonne santé pendant l'hiver.",
    "Décrivez une journée typique dans une grande ville européenne.",
    "Écrivez un court poème sur la mer et les bateaux de pêche.",
    "Quels sont les avantages et les inconvénients du travail à distance ?",
]
ENGLISH = [
    "Explain why the sky is blue during the day and red at sunset.",
    "Give three tips for staying healthy during the winter.",
    "Describe a typical day in a big European city.",
    "Write a short poem about the sea and fishing boats.",
    "What are the advantages and disadvantages of remote work?",
]


def write_set(root: Path, source: list[dict[str, str]], translated: dict[str, list[dict[str, Any]]]) -> Path:
    """source.parquet + translated/{lang}.parquet under `root`; translated rows carry whatever columns
    they are given (the minimal five, or with our translate stage's extras)."""
    pq.write_table(pa.Table.from_pylist([{"source": "test", **r} for r in source], schema=SOURCE_SCHEMA),
                   root / "source.parquet")
    (root / "translated").mkdir(exist_ok=True)
    for lang, rows in translated.items():
        pq.write_table(pa.Table.from_pylist([{"lang": lang, **r} for r in rows]),
                       root / "translated" / f"{lang}.parquet")
    return root


def run_small(root: Path, overrides: dict[str, Any] | None = None) -> tuple[FilterResult, dict[str, dict]]:
    """Run the stage on `root`; return the result and {(lang, id): reject row}."""
    params = parse_params({"quality": overrides or {}}, "test")
    result = run_filter(root / "source.parquet", root / "translated", root / "filtered",
                        root / "rejects.parquet", root / "quality.json", root / "plots", params)
    rejects = {(r["lang"], r["id"]): r for r in pq.read_table(root / "rejects.parquet").to_pylist()}
    return result, rejects


def base_rows(n: int = 30) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """n clean English/French pairs (5 sentences, varied by a numbered suffix so none are duplicates)."""
    source, target = [], []
    for i in range(n):
        k = i % 5
        source.append({"id": f"t-{i:03d}", "instruction": f"{ENGLISH[k]} Case {i} of {n}.", "input": "",
                       "output": f"Answer number {i}: {ENGLISH[(k + 1) % 5]}"})
        target.append({"id": f"t-{i:03d}", "instruction": f"{FRENCH[k]} Cas {i} sur {n}.", "input": "",
                       "output": f"Réponse numéro {i} : {FRENCH[(k + 1) % 5]}"})
    return source, target


@pytest.fixture(scope="module")
def defects(tmp_path_factory: pytest.TempPathFactory) -> tuple[FilterResult, dict, Path]:
    """One run over 30 clean pairs plus one planted defect per filter."""
    root = tmp_path_factory.mktemp("defects")
    source, target = base_rows(30)
    plant = {
        "t-000": {"output": ""},  # empty
        "t-001": {"output": "Réponse avec un caractère \ufffd cassé."},  # bad_chars
        "t-002": {"output": "Une réponse avec une cloche\x07 au milieu."},  # bad_chars (control)
        "t-003": {"truncated_fields": ["output"]},  # truncated
        "t-004": {"protected_spans_ok": False},  # placeholder
        "t-005": {"output": "Le ciel est bleu. " * 12},  # repetition: loop
        "t-006": {"output": "Alors " + "oui " * 9 + "et voilà enfin la réponse complète à votre question "
                            "sur le ciel bleu du matin."},  # repetition: token run
        "t-007": {"output": "Réponse " + "a" * 40 + " fin."},  # repetition: character run
        "t-008": {**{k: source[8][k] for k in ("instruction", "input", "output")}},  # untranslated
        "t-009": {"output": " ".join(f"partie{i}" for i in range(120))},  # length_ratio: 10x longer
        "t-010": {"output": "", "truncated_fields": ["output"]},  # empty first, truncated in detail
    }
    rows = []
    for row in target:
        row = {**row, "model": "m", "smoke": False, "truncated_fields": [], "protected_spans_ok": True,
               "kept_verbatim": False, **plant.get(row["id"], {})}
        rows.append(row)
    rows.append({**rows[11], "id": "orphan-1"})  # no source row with this id
    write_set(root, source, {"fra_Latn": rows})
    result, rejects = run_small(root, {"dedup": {"near": False}})
    return result, rejects, root


@pytest.mark.parametrize(("ident", "reason", "detail"), [
    ("t-000", "empty", "empty output"),
    ("t-001", "bad_chars", "output"),
    ("t-002", "bad_chars", "output"),
    ("t-003", "truncated", "output"),
    ("t-004", "placeholder_lost", "translate stage flag"),
    ("t-005", "repetition", "3-grams repeated in output"),
    ("t-006", "repetition", "one token 9 times"),
    ("t-007", "repetition", "one character 40 times"),
    ("t-008", "untranslated", "overlap with the source 1.00"),
    ("t-009", "length_ratio", "log length ratio"),
    ("t-010", "empty", "also failed: truncated"),
    ("orphan-1", "no_source", "no source row"),
])
def test_each_filter_rejects_its_defect(defects: tuple, ident: str, reason: str, detail: str) -> None:
    _, rejects, _ = defects
    row = rejects[("fra_Latn", ident)]
    assert row["reason"] == reason
    assert detail in row["detail"]
    assert row["stage"] == "filter"


def test_clean_rows_are_all_kept_and_conservation_holds(defects: tuple) -> None:
    result, rejects, root = defects
    assert {ident for lang, ident in rejects if lang == "fra_Latn"} == {f"t-{i:03d}" for i in range(11)} | {
        "orphan-1"}
    assert not [k for k in rejects if k[0] == "eng_Latn"]
    assert result.kept == {"eng_Latn": 30, "fra_Latn": 19}
    metrics = json.loads((root / "quality.json").read_text())
    fra = metrics["languages"]["fra_Latn"]
    assert (fra["in"], fra["kept"], fra["rejected"]) == (31, 19, 12)
    assert sum(fra["rejected_by_reason"].values()) == 12
    assert fra["rejected_by_reason"]["repetition"] == 3
    assert metrics["alignment"] == "independent"
    # Every evaluated reason is listed, zeros included.
    assert set(fra["rejected_by_reason"]) == set(REASONS) - {"near_duplicate", "parallel_alignment"}
    kept = pq.read_table(root / "filtered" / "fra_Latn.parquet")
    assert kept.column("id").to_pylist() == sorted(kept.column("id").to_pylist())


def test_switched_off_filters_keep_rows_and_are_reported(tmp_path: Path) -> None:
    source, target = base_rows(25)
    target[3]["output"] = "Le ciel est bleu. " * 12
    target[4]["output"] = ""
    write_set(tmp_path, source, {"fra_Latn": target})
    result, rejects = run_small(tmp_path, {"dedup": {"near": False}, "filters": {"repetition": {"enabled": False},
                                                       "length_ratio": {"enabled": False}}})
    assert ("fra_Latn", "t-003") not in rejects
    assert rejects[("fra_Latn", "t-004")]["reason"] == "empty"
    assert "disabled" in result.skipped_checks["repetition"]
    # Without the translate stage's columns the checks that need them are reported as skipped.
    assert "truncated_fields absent" in result.skipped_checks["truncated"]
    assert "quality.spans_check" in result.skipped_checks["placeholder"]
    kept = pq.read_table(tmp_path / "filtered" / "fra_Latn.parquet").to_pylist()
    assert {r["model"] for r in kept} == {"unknown"} and not any(r["smoke"] for r in kept)
    assert all(r["truncated_fields"] == [] and r["protected_spans_ok"] for r in kept)
    english = pq.read_table(tmp_path / "filtered" / "eng_Latn.parquet").to_pylist()
    assert len(english) == 25 and {r["model"] for r in english} == {"source"}


def test_markdown_rules_and_tables_are_not_loops(tmp_path: Path) -> None:
    source, target = base_rows(25)
    table = "| Avantages | Inconvénients |\n| " + "-" * 40 + " | " + "-" * 40 + " |\n| rapide | cher |"
    source[2]["output"] = table.replace("Avantages", "Advantages").replace("Inconvénients", "Drawbacks")
    target[2]["output"] = table
    write_set(tmp_path, source, {"fra_Latn": target})
    _, rejects = run_small(tmp_path, {"dedup": {"near": False}})
    assert ("fra_Latn", "t-002") not in rejects


def test_length_ratio_bound_is_per_language(tmp_path: Path) -> None:
    """Chinese is much shorter than English: its own median, not a global bound, decides."""
    source, target = base_rows(30)
    chinese = [{**row, "instruction": f"解释天空为什么是蓝色的。第{i}例，共30例。", "output": f"答案{i}。"}
               for i, row in enumerate(target)]
    write_set(tmp_path, source, {"fra_Latn": target, "zho_Hans": chinese})
    result, rejects = run_small(tmp_path, {"dedup": {"near": False}})  # the rows differ by a number only
    assert not any(reason["reason"] == "length_ratio" for reason in rejects.values())
    metrics = json.loads((tmp_path / "quality.json").read_text())
    assert metrics["log_length_ratio"]["zho_Hans"]["median"] < -1.0 < metrics["log_length_ratio"]["fra_Latn"][
        "median"]
    assert result.kept["zho_Hans"] == 30
    plot = (tmp_path / "plots" / "length_ratio.csv").read_text().splitlines()
    assert plot[0] == "lang,log_length_ratio,kept" and 2 < len(plot) <= 3001
    retention = (tmp_path / "plots" / "retention.csv").read_text().splitlines()
    assert retention[0] == "lang,retention,in,kept" and len(retention) == 4
