"""Deduplication within each language: exact (DuckDB window over a hash of the normalised text) and
near (MinHash with rensa in bulk, LSH banding, candidate pairs verified on the signatures).

Both keep the lowest id (string order, the same order as the output files) and name it in the reject
detail. Rows are identified by `rid`, the stage's row number. Both read ids and token hashes, never text.
Near dedup reads one language at a time, so its memory grows with the largest language only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEED = 42  # MinHash permutations; fixed so that runs are reproducible
# DuckDB's hash() of a UBIGINT (MurmurHash64's finaliser) and of several values (each folded into the
# previous one). tests/quality/test_dedup.py pins this against DuckDB's own hash().
_MURMUR = np.uint64(0xD6E8FEB86659FD93)
_SHIFT = np.uint64(32)
_BLOCK_VALUES = 1 << 22  # token hashes per block of shingle hashing: ~32 MiB a temporary array


def exact_duplicates_sql(rows: str) -> str:
    """SELECT (rid, kept_id) of rows whose normalised text (`dedup_key`) repeats a lower id's; `rows` is a
    table or subquery with rid, lang, id and dedup_key."""
    return f"""
SELECT rid, kept_id FROM (
  SELECT rid, id, first_value(id) OVER w AS kept_id, row_number() OVER w AS rank
  FROM {rows} WINDOW w AS (PARTITION BY lang, dedup_key ORDER BY id)
) WHERE rank > 1
"""


def _language_rows_sql(features: str, survivors: str, shingle: int) -> str:
    """SELECT (rid, id, token_hashes, whole) of the rows of language $1 in `survivors` (rid, lang), with
    their token hashes from `features` (rid, lang, id, token_hashes); `whole` hashes a record shorter than
    one shingle. Rows without tokens are left out; the order is DuckDB's (near dedup does not depend on it)."""
    return f"""
SELECT f.rid, f.id, f.token_hashes,
  CASE WHEN len(f.token_hashes) < {shingle} THEN hash(f.token_hashes) ELSE 0 END::UBIGINT AS whole
FROM {features} f SEMI JOIN (SELECT rid FROM {survivors} WHERE lang = $1) s USING (rid)
WHERE f.lang = $1 AND len(f.token_hashes) > 0
"""


def _duckdb_hash(values: np.ndarray) -> np.ndarray:
    """DuckDB's hash() of each UBIGINT, in place on a copy (no temporary arrays beyond one)."""
    hashed = values >> _SHIFT
    hashed ^= values
    hashed *= _MURMUR
    scratch = hashed >> _SHIFT
    hashed ^= scratch
    hashed *= _MURMUR
    np.right_shift(hashed, _SHIFT, out=scratch)
    hashed ^= scratch
    return hashed


def shingle_hashes(values: np.ndarray, offsets: np.ndarray, whole: np.ndarray, shingle: int,
                   block_values: int = _BLOCK_VALUES) -> tuple[np.ndarray, np.ndarray]:
    """The shingles of each row, as DuckDB's `hash(t[i], ..., t[i + shingle - 1])` over its token hashes
    (`values[offsets[r]:offsets[r + 1]]`, at least one), or `[whole[r]]` for a row shorter than one
    shingle; returns the flat shingle hashes and their row offsets (int64). Vectorised, over blocks of rows
    of about `block_values` token hashes, so that the temporary arrays stay small."""
    rows = len(offsets) - 1
    outs, counts = [np.empty(0, dtype=np.uint64)], [np.empty(0, dtype=np.int64)]
    start = 0
    while start < rows:
        stop = int(np.searchsorted(offsets, offsets[start] + block_values, side="right")) - 1
        stop = min(max(stop, start + 1), rows)
        out, block_offsets = _shingle_block(values[offsets[start]:offsets[stop]],
                                            offsets[start:stop + 1] - offsets[start], whole[start:stop], shingle)
        outs.append(out)
        counts.append(np.diff(block_offsets))
        start = stop
    new_offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=new_offsets[1:])
    return np.concatenate(outs), new_offsets


def _shingle_block(values: np.ndarray, offsets: np.ndarray, whole: np.ndarray, shingle: int) \
        -> tuple[np.ndarray, np.ndarray]:
    lengths = np.diff(offsets)
    long_rows = lengths >= shingle
    counts = np.where(long_rows, lengths - shingle + 1, 1)
    new_offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=new_offsets[1:])
    hashed = _duckdb_hash(values)
    # windows[p]: the shingle starting at flat position p (meaningful where it ends inside p's row); DuckDB
    # folds each value into the previous hash as (h ^ h >> 32) * M ^ next.
    windows = np.zeros(len(values), dtype=np.uint64)
    span = max(len(values) - shingle + 1, 0)
    window, scratch = windows[:span], np.empty(span, dtype=np.uint64)
    window[:] = hashed[:span]
    for k in range(1, shingle):
        np.right_shift(window, _SHIFT, out=scratch)
        window ^= scratch
        window *= _MURMUR
        window ^= hashed[k:span + k]
    del hashed, scratch
    # a window is a shingle when it ends in its row; a short row keeps its first position, for `whole`
    row_end = np.repeat(offsets[1:], lengths)
    keep = np.arange(shingle, len(values) + shingle, dtype=np.int64) <= row_end
    keep[offsets[:-1][~long_rows]] = True
    out = windows[keep]
    out[new_offsets[:-1][~long_rows]] = whole[~long_rows]
    return out, new_offsets


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
    """Rows sharing at least one LSH band with another row, all in rensa (Rust, on every core)."""
    import rensa

    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(values, offsets, num_perm, SEED)
    lsh = rensa.RMinHashLSH(threshold, num_perm, bands)
    return np.asarray(lsh.query_duplicate_flags_matrix_one_shot(matrix), dtype=bool)


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
        # every pair within each group of equal keys, without a loop over the groups: member k of a group
        # pairs with the members after it
        in_group = np.repeat(sizes, sizes)
        position = np.arange(len(keys)) - np.repeat(starts, sizes)
        after = in_group - position - 1
        first = np.repeat(np.arange(len(keys)), after)
        second = first + 1 + (np.arange(len(first)) - np.repeat(np.cumsum(after) - after, after))
        left, right = order[first], order[second]
        pairs.append(np.stack([np.minimum(left, right), np.maximum(left, right)], axis=1))
    found = np.concatenate(pairs)
    if not len(found):
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(found, axis=0)


def _clusters(n: int, pairs: np.ndarray) -> np.ndarray:
    """The root (smallest index) of each row's cluster: connected components of the verified pairs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    roots = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(roots, labels, np.arange(n))
    return roots[labels]


def _flat_lists(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A list<uint64> column as its flat values and row offsets (from 0)."""
    lists = column.combine_chunks()
    offsets = lists.offsets.to_numpy().astype(np.int64)
    values = lists.values.to_numpy()[offsets[0]:offsets[-1]]
    return np.ascontiguousarray(values, dtype=np.uint64), offsets - offsets[0]


@dataclass
class _LanguageFound:
    rids: np.ndarray
    kept_ids: list[str]
    similarity: np.ndarray
    candidates: int
    pairs_checked: int


def _near_in_language(values: np.ndarray, offsets: np.ndarray, rids: np.ndarray, ids: pa.ChunkedArray,
                      threshold: float, num_perm: int, bands: int) -> _LanguageFound:
    """Near duplicates among one language's rows, in any order: their shingle hashes
    (`values[offsets[r]:offsets[r + 1]]`), row ids and ids."""
    flagged = np.flatnonzero(_flag_candidates(values, offsets.astype(np.uint64), threshold, num_perm, bands))
    if len(flagged) < 2:
        return _LanguageFound(np.empty(0, np.int64), [], np.empty(0), len(flagged), 0)
    # The flagged rows in id order: the smallest index of a cluster is then its lowest id.
    flagged_ids = ids.take(pa.array(flagged))
    by_id = pc.sort_indices(flagged_ids).to_numpy()
    flagged, flagged_names = flagged[by_id], flagged_ids.take(pa.array(by_id)).to_pylist()
    # rensa hands digests back only as Python lists (to_rows): digesting the few flagged rows again beats reading
    # every row's back. The pairs among them come from the same bands here (rensa's pair query takes one
    # RMinHash object per row).
    sub_values = np.concatenate([values[offsets[i]:offsets[i + 1]] for i in flagged])
    sub_offsets = np.r_[0, np.cumsum(offsets[flagged + 1] - offsets[flagged])].astype(np.uint64)
    signatures = _digest_rows(sub_values, sub_offsets, num_perm)
    pairs = _band_pairs(signatures, bands)
    checked = len(pairs)
    similarity = (signatures[pairs[:, 0]] == signatures[pairs[:, 1]]).mean(axis=1)
    good = similarity >= threshold
    pairs, similarity = pairs[good], similarity[good]
    if not len(pairs):
        return _LanguageFound(np.empty(0, np.int64), [], np.empty(0), len(flagged), checked)
    root = _clusters(len(flagged), pairs)
    best = np.zeros(len(flagged))
    np.maximum.at(best, pairs[:, 0], similarity)
    np.maximum.at(best, pairs[:, 1], similarity)
    members = np.flatnonzero(root != np.arange(len(flagged)))
    return _LanguageFound(rids[flagged[members]], [flagged_names[root[m]] for m in members], best[members],
                          len(flagged), checked)


def near_duplicates(con: duckdb.DuckDBPyConnection, features: str, survivors: str, threshold: float,
                    num_perm: int, shingle: int, on_language: Callable[[str, int], None] | None = None) \
        -> NearDuplicates:
    """Near duplicates among the rows of `survivors` (rid, lang), per language, with their token hashes from
    `features` (rid, lang, id, token_hashes).

    The shingle hashes come from the token hashes in numpy; rensa computes the MinHash signatures and LSH
    flags in bulk from flat buffers; among the flagged rows (their signatures read back), band collisions
    give candidate pairs that are kept when the signatures agree on >= threshold of the permutations;
    scipy's connected components make the clusters. Each cluster keeps its lowest id."""
    bands = lsh_bands(threshold, num_perm)
    found: list[_LanguageFound] = []
    query = _language_rows_sql(features, survivors, shingle)
    langs = [row[0] for row in con.execute(f"SELECT DISTINCT lang FROM {survivors} ORDER BY lang").fetchall()]
    for lang in langs:
        data = con.sql(query, params=[lang]).to_arrow_table()
        if on_language:
            on_language(lang, data.num_rows)
        if data.num_rows < 2:
            continue
        token_values, token_offsets = _flat_lists(data.column("token_hashes"))
        values, offsets = shingle_hashes(token_values, token_offsets,
                                         data.column("whole").to_numpy().astype(np.uint64), shingle)
        rids, ids = data.column("rid").to_numpy(), data.column("id")
        del data, token_values, token_offsets  # the token lists: only the shingles are needed from here
        found.append(_near_in_language(values, offsets, rids, ids, threshold, num_perm, bands))
    return NearDuplicates(
        rids=np.concatenate([f.rids for f in found]) if found else np.empty(0, np.int64),
        kept_ids=[k for f in found for k in f.kept_ids],
        similarity=np.concatenate([f.similarity for f in found]) if found else np.empty(0),
        candidates=sum(f.candidates for f in found), pairs_checked=sum(f.pairs_checked for f in found),
    )
