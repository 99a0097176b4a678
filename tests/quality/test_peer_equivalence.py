"""The filter stage keeps and rejects the same rows, for the same reasons, as the implementation before
issue 14 (bench_quality.PEER: one in-memory DuckDB over every language), on a small set of real shape with
planted defects and language ID on. bench_quality makes the same comparison on ~200K rows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from benchmarks import bench_quality, real_text
from benchmarks.synth import synthetic_parallel_set


@pytest.mark.slow
def test_same_kept_and_rejected_ids_as_the_peer(tmp_path: Path) -> None:
    if not real_text.available():
        pytest.skip(f"{real_text.SHARED_DATA} lacks the real text the benchmark set is built from (shared real data)")
    peer_tree = bench_quality.peer_tree(tmp_path / "peer")
    if peer_tree is None:
        pytest.skip(f"git cannot extract commit {bench_quality.PEER} here (a shallow clone or no git)")
    data = tmp_path / "data"
    synth = synthetic_parallel_set(data, records=150, languages=8, seed=0, real_text=True)
    assert sum(synth["planted"].values()) > 0
    new = bench_quality.run_stage(data, tmp_path / "new", bench_quality.REPO)
    peer = bench_quality.run_stage(data, tmp_path / "peer_out", peer_tree)
    # Language ID's rules changed on purpose since the peer (the script decides where only the language uses it;
    # lingua only where fastText ranks the expected language second): rows either run rejects for it are left out.
    same = bench_quality.equivalence(tmp_path / "new", tmp_path / "peer_out", ignore_reasons=frozenset({"lang_id"}))
    assert same["kept"] > 0 and same["rejected"] > 0
    assert same["identical_kept"] and same["identical_rejected"], same
    assert same["rows_with_another_reason"] == 0, same
    # Language ID runs beside near dedup now, so it also judges the translated near duplicates (their verdicts are
    # unused: near_duplicate is named first); the peer judged only the rows near dedup left.
    near = duckdb.execute("SELECT count(*) FROM read_parquet($1) WHERE reason = 'near_duplicate' AND lang <> $2",
                          [str(tmp_path / "new" / "rejects.parquet"), "eng_Latn"]).fetchall()[0][0]
    assert new["langid_rows"] == peer["langid_rows"] + near > near
