"""Exact dedup catches case, width, punctuation and whitespace variants (lowest id kept, named in the
detail); near dedup catches variants above the configured threshold and keeps those well below it."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from quality.dedup import _band_pairs, _clusters, lsh_bands, shingle_hashes
from tests.quality.test_filters import run_small, write_set

FRENCH_ROW = {"id": "keep-0", "instruction": "Expliquez pourquoi le ciel est bleu.", "input": "",
              "output": "La lumière bleue est plus diffusée par l'air que la lumière rouge."}
ENGLISH_ROW = {"id": "keep-0", "instruction": "Explain why the sky is blue.", "input": "",
               "output": "Blue light is scattered by the air more than red light is."}


def shingles(words: list[str], k: int = 5) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: list[str], b: list[str]) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def test_exact_duplicates_of_case_width_punctuation_and_spacing(tmp_path: Path) -> None:
    text = "Name three primary colors, please."
    variants = {
        "dup-3": text,
        "dup-1": "NAME THREE PRIMARY COLORS PLEASE",
        "dup-2": "name   three\tprimary colors,\nplease!!",
        "dup-4": "Ｎａｍｅ three primary colors, please.",  # fullwidth: NFKC folds it
        "other": "Name four primary colors, please.",
    }
    source = [ENGLISH_ROW] + [{"id": i, "instruction": t, "input": "", "output": "Red, yellow and blue."}
                              for i, t in variants.items()]
    write_set(tmp_path, source, {"fra_Latn": [FRENCH_ROW]})
    result, rejects = run_small(tmp_path, {"filters": {"lang_id": {"enabled": False}}})
    found = {ident: row["detail"] for (lang, ident), row in rejects.items() if lang == "eng_Latn"}
    assert found == {"dup-2": "duplicate of dup-1", "dup-3": "duplicate of dup-1", "dup-4": "duplicate of dup-1"}
    assert result.kept["eng_Latn"] == 3  # keep-0, dup-1 (lowest id), other


@pytest.fixture(scope="module")
def near_set() -> tuple[list[dict[str, str]], dict[str, float]]:
    """Base texts of 300 distinct words and variants with a few words replaced; exact shingle Jaccard."""
    rng = random.Random(0)
    vocabulary = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "su", "ti") for b in range(400)]
    rows, similarity = [ENGLISH_ROW], {}
    for case, changes in enumerate((1, 4, 20, 40)):
        words = rng.sample(vocabulary, 300)
        variant = list(words)
        for pos in rng.sample(range(300), changes):
            variant[pos] = f"new{case}x{pos}"
        rows.append({"id": f"near-{case}-a", "instruction": "Continue the list.", "input": "",
                     "output": " ".join(words)})
        rows.append({"id": f"near-{case}-b", "instruction": "Continue the list.", "input": "",
                     "output": " ".join(variant)})
        similarity[f"near-{case}-b"] = jaccard(["continue", "the", "list", *words],
                                               ["continue", "the", "list", *variant])
    return rows, similarity


@pytest.mark.parametrize("threshold", [0.85, 0.6])
def test_near_duplicates_at_the_threshold(tmp_path: Path, near_set: tuple, threshold: float) -> None:
    rows, similarity = near_set
    write_set(tmp_path, rows, {"fra_Latn": [FRENCH_ROW]})
    _, rejects = run_small(tmp_path, {"dedup": {"near_threshold": threshold},
                                      "filters": {"lang_id": {"enabled": False}}})
    # Estimation noise of 128 permutations is ~0.03: judge only cases clearly on one side.
    clear_above = {i for i, s in similarity.items() if s >= threshold + 0.07}
    clear_below = {i for i, s in similarity.items() if s <= threshold - 0.12}
    assert clear_above and clear_below
    for ident in clear_above:
        row = rejects[("eng_Latn", ident)]
        assert row["reason"] == "near_duplicate"
        assert row["detail"].startswith(f"near duplicate of {ident[:-1]}a")
    for ident in clear_below:
        assert ("eng_Latn", ident) not in rejects
    assert not any(i.endswith("-a") for _, i in rejects)  # the lower id of each pair is kept


def test_lsh_bands_and_clusters() -> None:
    assert 128 % lsh_bands(0.85, 128) == 0
    assert lsh_bands(0.5, 128) > lsh_bands(0.85, 128)  # a lower threshold needs more, shorter bands
    roots = _clusters(5, np.array([[1, 2], [2, 4], [0, 3]]))
    assert roots.tolist() == [0, 1, 1, 0, 1]


@pytest.mark.parametrize(("shingle", "block_values"), [(1, 1 << 22), (2, 1 << 22), (5, 1 << 22), (5, 7), (3, 1)])
def test_shingle_hashes_are_duckdbs_hash(shingle: int, block_values: int) -> None:
    """The numpy shingles equal DuckDB's hash(t[i], ..., t[i + k - 1]) (and hash(t) for a short row), on which
    the MinHash digests and so the near-dedup decisions depend; a DuckDB that hashes otherwise fails here."""
    rng = np.random.default_rng(shingle)
    lists = [rng.integers(0, 2**64, size=n, dtype=np.uint64).tolist() for n in rng.integers(1, 12, size=400)]
    lists.append([0, 2**64 - 1, 1, 2, 3, 4])
    con = duckdb.connect()
    con.register("t", pa.table({"i": range(len(lists)), "h": pa.array(lists, pa.list_(pa.uint64()))}))
    window = f"hash({', '.join(f'h[i + {k}]' for k in range(shingle))})"
    expected = con.execute(f"""SELECT CASE WHEN len(h) < {shingle} THEN [hash(h)]
        ELSE list_transform(range(1, len(h) - {shingle - 2}), lambda i: {window}) END AS s,
        CASE WHEN len(h) < {shingle} THEN hash(h) ELSE 0 END::UBIGINT AS whole FROM t ORDER BY i""").fetchall()
    offsets = np.r_[0, np.cumsum([len(x) for x in lists])]
    values = np.array([v for x in lists for v in x], dtype=np.uint64)
    found, found_offsets = shingle_hashes(values, offsets, np.array([w for _, w in expected], np.uint64), shingle,
                                          block_values)
    assert [found[a:b].tolist() for a, b in zip(found_offsets[:-1], found_offsets[1:], strict=True)] == \
        [s for s, _ in expected]


def test_band_pairs_are_every_pair_sharing_a_band() -> None:
    rng = np.random.default_rng(0)
    signatures = rng.integers(0, 4, size=(60, 8), dtype=np.uint32)  # few values: many bands collide
    expected = {(i, j) for i in range(60) for j in range(i + 1, 60)
                if any((signatures[i, b:b + 2] == signatures[j, b:b + 2]).all() for b in range(0, 8, 2))}
    assert {tuple(p) for p in _band_pairs(signatures, 4).tolist()} == expected
