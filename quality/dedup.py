"""Deduplication within each language: exact (DuckDB window over a hash of the normalised text) and
near (MinHash with rensa in bulk, LSH banding, candidate pairs verified on the signatures).

Both keep the lowest id (string order, the same order as the output files) and name it in the reject
detail. Rows are identified by `rid`, the stage's row number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

SEED = 42  # MinHash permutations; fixed so that runs are reproducible


def exact_duplicates_sql(table: str) -> str:
    """SELECT (rid, kept_id) of rows whose normalised text (`dedup_key`) repeats a lower id's."""
    return f"""
SELECT rid, kept_id FROM (
  SELECT rid, id, first_value(id) OVER w AS kept_id, row_number() OVER w AS rank
  FROM {table} WINDOW w AS (PARTITION BY lang, dedup_key ORDER BY id)
) WHERE rank > 1
"""


def shingles_sql(table: str, shingle: int) -> str:
    """SELECT (rid, lang, id, shingles): hashes of `shingle`-token windows of the normalised record
    (one hash of all tokens when it is shorter). Rows without tokens are left out."""
    window = f"hash({', '.join(f'token_hashes[i + {k}]' for k in range(shingle))})"
    return f"""
SELECT rid, lang, id,
  CASE WHEN len(token_hashes) < {shingle} THEN [hash(token_hashes)]
       ELSE list_transform(range(1, len(token_hashes) - {shingle - 2}), lambda i: {window}) END AS shingles
FROM {table} WHERE len(token_hashes) > 0
ORDER BY lang, id
"""


def lsh_bands(threshold: float, num_perm: int) -> int:
    """Number of LSH bands (a divisor of num_perm) minimising false positives + false negatives around
    `threshold`, integrating the S-curve 1 - (1 - s^r)^b numerically (as datasketch does)."""
    grid = np.linspace(0.0, 1.0, 501)
    best, best_err = 1, np.inf
    for bands in (b for b in range(1, num_perm + 1) if num_perm % b == 0):
        rows = num_perm // bands
        prob = 1 - (1 - grid**rows) ** bands
        below, above = grid <= threshold, grid > threshold
        err = np.trapezoid(prob[below], grid[below]) + np.trapezoid(1 - prob[above], grid[above])
        if err < best_err:
            best, best_err = bands, err
    return best


@dataclass
class NearDuplicates:
    """Near-duplicate rows of one run: rid -> (kept id, estimated Jaccard with a cluster member)."""

    rids: np.ndarray
    kept_ids: list[str]
    similarity: np.ndarray
    candidates: int  # rows that shared an LSH band with another row
    pairs_checked: int

    @classmethod
    def none(cls) -> NearDuplicates:
        return cls(rids=np.empty(0, np.int64), kept_ids=[], similarity=np.empty(0), candidates=0, pairs_checked=0)

    def table(self) -> pa.Table:
        return pa.table({"rid": pa.array(self.rids, pa.int64()), "kept_id": pa.array(self.kept_ids, pa.string()),
                         "similarity": pa.array(self.similarity, pa.float64())})


def _flag_candidates(values: np.ndarray, offsets: np.ndarray, threshold: float, num_perm: int,
                     bands: int) -> np.ndarray:
    """Rows sharing at least one LSH band with another row, all in rensa (Rust)."""
    import rensa

    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(values, offsets, num_perm, SEED)
    lsh = rensa.RMinHashLSH(threshold, num_perm, bands)
    return np.asarray(lsh.insert_matrix_and_query_duplicate_flags(matrix), dtype=bool)


def _digest_rows(values: np.ndarray, offsets: np.ndarray, num_perm: int) -> np.ndarray:
    import rensa

    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(values, offsets, num_perm, SEED)
    return np.asarray(matrix.to_rows(), dtype=np.uint32).reshape(-1, num_perm)


def _band_pairs(signatures: np.ndarray, bands: int) -> np.ndarray:
    """Candidate pairs (i < j) of rows equal on at least one band, as an (n, 2) array."""
    rows = signatures.shape[1] // bands
    mix = np.random.default_rng(SEED).integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1)
    pairs: list[np.ndarray] = []
    for band in range(bands):
        block = signatures[:, band * rows:(band + 1) * rows].astype(np.uint64)
        keys = (block * mix).sum(axis=1)  # wrapping uint64 arithmetic: a hash of the band
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, len(keys)])
        for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
            members = np.sort(order[start:start + size])
            i, j = np.triu_indices(size, k=1)
            pairs.append(np.stack([members[i], members[j]], axis=1))
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(pairs), axis=0)


def _clusters(n: int, pairs: np.ndarray) -> np.ndarray:
    """The root (smallest index) of each row's cluster: connected components of the verified pairs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    roots = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(roots, labels, np.arange(n))
    return roots[labels]


def near_duplicates(con: duckdb.DuckDBPyConnection, table: str, threshold: float, num_perm: int,
                    shingle: int, on_language: Callable[[str, int], None] | None = None) -> NearDuplicates:
    """Near duplicates among the rows of `table` (needs rid, lang, id, token_hashes), per language.

    rensa computes the MinHash signatures and LSH flags in bulk from flat shingle-hash buffers; among the
    flagged rows (their signatures read back), band collisions give candidate pairs that are kept when the
    signatures agree on >= threshold of the permutations; scipy's connected components make the clusters.
    Each cluster keeps its lowest id."""
    bands = lsh_bands(threshold, num_perm)
    found_rids: list[np.ndarray] = []
    found_kept: list[str] = []
    found_sim: list[np.ndarray] = []
    candidates = pairs_checked = 0
    langs = [row[0] for row in con.execute(f"SELECT DISTINCT lang FROM {table} ORDER BY lang").fetchall()]
    for lang in langs:
        data = con.sql(shingles_sql(f"(SELECT * FROM {table} WHERE lang = $1)", shingle), params=[lang]) \
            .to_arrow_table()
        if on_language:
            on_language(lang, data.num_rows)
        if data.num_rows < 2:
            continue
        shingles = data.column("shingles").combine_chunks()
        values = np.asarray(shingles.values.to_numpy(zero_copy_only=False), dtype=np.uint64)
        offsets = np.asarray(shingles.offsets.to_numpy(), dtype=np.uint64)
        offsets = offsets - offsets[0]
        flagged = np.flatnonzero(_flag_candidates(values, offsets, threshold, num_perm, bands))
        candidates += len(flagged)
        if len(flagged) < 2:
            continue
        # rensa hands digests back only as Python lists (to_rows): digesting the few flagged rows again beats reading
        # every row's back (near dedup 3.9 s against 8.4 s on 204K rows, bench_quality). The pairs among them come
        # from the same bands here (rensa's pair query takes one RMinHash object per row).
        sub_values = np.concatenate([values[offsets[i]:offsets[i + 1]] for i in flagged])
        sub_offsets = np.r_[0, np.cumsum(offsets[flagged + 1] - offsets[flagged])].astype(np.uint64)
        signatures = _digest_rows(sub_values, sub_offsets, num_perm)
        pairs = _band_pairs(signatures, bands)
        pairs_checked += len(pairs)
        if not len(pairs):
            continue
        similarity = (signatures[pairs[:, 0]] == signatures[pairs[:, 1]]).mean(axis=1)
        good = similarity >= threshold
        pairs, similarity = pairs[good], similarity[good]
        if not len(pairs):
            continue
        # Flagged rows are in id order, so the smallest index of a cluster is its lowest id.
        root = _clusters(len(flagged), pairs)
        best = np.zeros(len(flagged))
        np.maximum.at(best, pairs[:, 0], similarity)
        np.maximum.at(best, pairs[:, 1], similarity)
        members = np.flatnonzero(root != np.arange(len(flagged)))
        ids = data.column("id").to_pylist()
        rids = data.column("rid").to_numpy()
        found_rids.append(rids[flagged[members]])
        found_kept += [ids[flagged[root[m]]] for m in members]
        found_sim.append(best[members])
    return NearDuplicates(
        rids=np.concatenate(found_rids) if found_rids else np.empty(0, np.int64),
        kept_ids=found_kept,
        similarity=np.concatenate(found_sim) if found_sim else np.empty(0),
        candidates=candidates, pairs_checked=pairs_checked,
    )
