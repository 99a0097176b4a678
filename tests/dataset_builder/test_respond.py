"""The respond stage on the real smoke responder (a Llama converted to CTranslate2): generation,
the response memory, prompts over the context, truncation, a SIGKILL midway, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataset_builder.generate import LENGTH, STOP
from dataset_builder.models.smoke import build_smoke_responder
from dataset_builder.respond import open_engine, respond_file, system_message
from schemas.models import read_manifest
from schemas.params import Params, parse_params
from tests.conftest import REPO_ROOT, metrics_with_timing, run_cli
from tests.dataset_builder.respond_helpers import translated_file

N = 40


@pytest.fixture(scope="module")
def responder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_smoke_responder(tmp_path_factory.mktemp("models") / "responder", seed=0)


def _params(**decoding: object) -> Params:
    return parse_params({"responses": {"decoding": {"max_new_tokens": 24, **decoding}, "shard_prompts": 8}})


def _run(responder: Path, src: Path, work: Path, params: Params, cache: Path) -> dict:
    engine, compute_type = open_engine(params, str(responder))
    result = respond_file(src, "fra_Latn", engine, work / "out.parquet", work / "metrics.json",
                          work / "rejects.parquet", params, compute_type, cache=cache)
    return result.metrics


def test_generates_every_output_marked_smoke_and_rerun_is_all_memory(responder: Path, tmp_path: Path) -> None:
    src = translated_file(tmp_path / "fra_Latn.parquet", N)
    params = _params()
    first = _run(responder, src, tmp_path / "a", params, tmp_path / "memory")
    rows = pq.read_table(tmp_path / "a/out.parquet").to_pylist()
    rejects = pq.read_table(tmp_path / "a/rejects.parquet").num_rows
    assert len(rows) + rejects == pq.read_table(src).num_rows == N  # counted on each side
    fingerprint = read_manifest(responder)["fingerprint"]
    assert fingerprint.startswith("smoke:") and first["smoke"] is True
    source_outputs = {r["id"]: r["output"] for r in pq.read_table(src).to_pylist()}
    for row in rows:
        assert row["output_model"] == fingerprint and row["smoke"] is True and row["lang"] == "fra_Latn"
        assert row["output"] != source_outputs[row["id"]]  # generated, not the translated output
    assert first["prompts_generated"] == first["distinct_prompts"] == N and first["cache_hits"] == 0
    assert first["output_tokens"] > 0 and first["system_message"].startswith("Vous êtes")
    assert first["memory_shards"] == N // 8

    second = _run(responder, src, tmp_path / "b", params, tmp_path / "memory")
    assert second["cache_hit_rate"] == 1.0 and second["prompts_generated"] == 0 and second["engine_batches"] == 0
    assert (tmp_path / "a/out.parquet").read_bytes() == (tmp_path / "b/out.parquet").read_bytes()
    # What the memory served and the seconds are in the timing file: a rerun leaves the metrics file as it was.
    assert (tmp_path / "a/metrics.json").read_bytes() == (tmp_path / "b/metrics.json").read_bytes()
    assert metrics_with_timing(tmp_path / "b/metrics.json")["cache_hits"] == N

    other = _run(responder, src, tmp_path / "c", _params(seed=1), tmp_path / "memory")  # decoding in the key
    assert other["cache_hits"] == 0 and other["prompts_generated"] == N


def test_prompt_over_context_is_rejected_and_cut_outputs_are_flagged(responder: Path, tmp_path: Path) -> None:
    long = {"id": "sample-long", "instruction": "Summarise this text. " + "lorem ipsum dolor " * 900,
            "input": "", "output": "x"}
    src = translated_file(tmp_path / "fra_Latn.parquet", 20, extra=[long])
    metrics = _run(responder, src, tmp_path, _params(max_new_tokens=2), tmp_path / "memory")
    rejects = pq.read_table(tmp_path / "rejects.parquet").to_pylist()
    assert [(r["id"], r["reason"], r["stage"]) for r in rejects] == [("sample-long", "prompt_too_long", "respond")]
    assert "context (2048)" in rejects[0]["detail"]
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert len(rows) == 20 and metrics["rejected_by_reason"] == {"prompt_too_long": 1}
    cut = [r for r in rows if "output" in r["truncated_fields"]]
    assert cut and metrics["truncated_outputs"] == len(cut)  # 2 tokens: most answers are cut
    memory = list((tmp_path / "memory").glob("*/shard-*.parquet"))
    reasons = {r for f in memory for r in pq.read_table(f).column("finish_reason").to_pylist()}
    assert LENGTH in reasons and reasons <= {LENGTH, STOP}


def test_system_message_in_the_language_or_named(responder: Path) -> None:
    params = parse_params({"responses": {"system_prompt": {"de": "Antworte knapp auf Deutsch."}}})
    assert system_message("deu_Latn", params) == "Antworte knapp auf Deutsch."
    assert system_message("zho_Hans", params).startswith("你是")
    assert "Swahili" in system_message("swh_Latn", params)


def test_resume_after_kill_9(responder: Path, tmp_path: Path) -> None:
    """A real `polyinstruct respond` process is killed with SIGKILL after its first shards; the rerun
    loses and duplicates nothing, and generates only what no finished shard holds."""
    src = translated_file(tmp_path / "fra_Latn.parquet", 100)  # the whole embedded sample
    params_file = tmp_path / "params.yaml"
    params_file.write_text(json.dumps({"responses": {"shard_prompts": 4, "max_batch_tokens": 64,
                                                     "decoding": {"max_new_tokens": 48}}}))
    out, memory = tmp_path / "out.parquet", tmp_path / "memory"
    args = [sys.executable, "-m", "dataset_builder.cli", "respond", "--in", str(src), "--lang", "fra_Latn",
            "--model", str(responder), "--out", str(out), "--metrics", str(tmp_path / "m1.json"),
            "--rejects", str(tmp_path / "rejects.parquet"), "--cache", str(memory), "--params", str(params_file)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not len(list(memory.glob("*/shard-*.parquet"))) >= 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "no shard written"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not out.exists(), "the run finished before it was killed"
    done = sum(pq.read_table(f).num_rows for f in memory.glob("*/shard-*.parquet"))
    assert 0 < done < 100

    args[args.index(str(tmp_path / "m1.json"))] = str(tmp_path / "m2.json")
    assert subprocess.run(args, env=env, capture_output=True, text=True).returncode == 0
    metrics = metrics_with_timing(tmp_path / "m2.json")
    assert metrics["cache_hits"] == done and metrics["prompts_generated"] == metrics["distinct_prompts"] - done > 0
    ids = pq.read_table(out).column("id").to_pylist()
    assert sorted(ids) == sorted(set(ids)) == sorted(pq.read_table(src).column("id").to_pylist())


def test_cli_respond_and_bad_input_is_one_line(responder: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    src = translated_file(tmp_path / "fra_Latn.parquet", 6)
    monkeypatch.chdir(tmp_path)
    code = run_cli(monkeypatch, "respond", "--in", str(src), "--lang", "fr", "--model", str(responder))
    assert code == 0
    out = capsys.readouterr().out
    assert "respond fra_Latn: 6 responded" in out and "SMOKE MODEL" in out
    assert (tmp_path / "data/responded/fra_Latn.parquet").exists() and (tmp_path / "metrics/respond/fra_Latn.json"
                                                                        ).exists()
    code = run_cli(monkeypatch, "respond", "--in", str(src), "--lang", "rus_Cyrl", "--model", str(responder))
    err = capsys.readouterr().err
    # One error line; the only other line is the device choice, which every engine logs (issue 19).
    lines = [line for line in err.splitlines() if not line.startswith("respond: device ")]
    assert code == 2 and len(lines) == 1 and "holds rows in fra_Latn" in lines[0]


def test_offline_hub_responder_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataset_builder.models.responder import resolve_responder
    from schemas.errors import PolyinstructError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    params = parse_params({"models": {"cache_dir": str(tmp_path)}})
    with pytest.raises(PolyinstructError, match="Qwen/Qwen2.5-0.5B-Instruct") as err:
        resolve_responder("Qwen/Qwen2.5-0.5B-Instruct", params)
    assert "\n" not in str(err.value)


def test_recipe_params_are_checked_before_any_work() -> None:
    from schemas.errors import PolyinstructError

    with pytest.raises(PolyinstructError, match="mode generate needs languages"):
        parse_params({"responses": {"mode": "generate"}})
    with pytest.raises(PolyinstructError, match="exactly languages.targets"):
        parse_params({"responses": {"mode": "generate", "languages": ["fr"], "records": "data/responded"}})
    with pytest.raises(PolyinstructError, match="mode translate generates nothing"):
        parse_params({"responses": {"languages": ["fr"]}})
