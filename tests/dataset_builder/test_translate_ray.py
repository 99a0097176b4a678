"""The Ray backend (`translate.backend: ray`) against the local backend, on one local Ray instance
with 2 CPU workers and the smoke NLLB model: same dataset, same memory entries, a worker killed
mid-run loses nothing, a rerun takes what the memory holds, and a missing extra is one line."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dataset_builder.shard_work import RayOptions
from dataset_builder.translate import TranslateResult, translate_file
from dataset_builder.translate_engine import TranslatorFactory
from dataset_builder.translate_ray import (
    RAY_MISSING,
    RayBackend,
    _driver_has_cuda,
    _user_error,
    import_ray,
    ray_session,
    resolve_ray_device,
)
from dataset_builder.translation_memory import TranslationMemory, memory_key
from schemas.errors import PolyinstructError
from schemas.params import Params, parse_params
from tests.conftest import metrics_with_timing, run_cli

RECORDS = 240  # real Alpaca records: ~1,300 distinct units
SHARD_UNITS = 48  # a dozen shards in the first run: enough for two workers and a kill mid-run
RAY_SETTINGS: dict[str, Any] = {"backend": "ray", "ray_num_workers": 2, "shard_units": SHARD_UNITS}


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """One local Ray instance (2 CPUs) for the module; the Ray backend reuses it."""
    pytest.importorskip("ray")
    with ray_session(RayOptions.of("translate", parse_params({"translate": RAY_SETTINGS}).translate)) as ray:
        yield ray


def translate(source: Path, model: Path, work: Path, params: Params, memory: Path) -> TranslateResult:
    return translate_file(source, "fra_Latn", model, work / "out.parquet", work / "metrics.json",
                          work / "rejects.parquet", params, cache=memory)


def memory_entries(memory: Path) -> pa.Table:
    """Every row of every shard of a translation memory, in a stable order."""
    shards = sorted(memory.glob("*/shard-*.parquet"))
    assert shards, memory
    return pa.concat_tables(pq.read_table(s) for s in shards).sort_by([("unit", "ascending")])


def _cmdline(process: Any) -> str:
    import psutil

    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


class WorkerKiller:
    """SIGKILLs one Ray translator actor right after the driver writes the run's first shard.

    It wraps `TranslationMemory.write_shard`, so the kill happens in the driver's own thread while the pool is
    still running: no race with the end of the run, however loaded the machine is."""

    def __init__(self, memory: Path) -> None:
        self.memory = memory
        self.killed: int | None = None
        self.shards_at_kill = -1

    def wrap(self, write_shard: Any) -> Any:
        def write_then_kill(memory: TranslationMemory, units: Any, results: Any) -> Path:
            path = write_shard(memory, units, results)
            if self.killed is None:
                self._kill_one_actor()
            return path
        return write_then_kill

    def _kill_one_actor(self) -> None:
        import psutil

        # This test's own Ray instance: its processes descend from this one (another xdist worker may run Ray too).
        actors = [p.pid for p in psutil.Process().children(recursive=True) if "ShardWorker" in _cmdline(p)]
        for pid in actors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.killed, self.shards_at_kill = pid, len(list(self.memory.glob("*/shard-*.parquet")))
            return


def test_ray_gives_the_local_dataset_survives_a_killed_worker_and_resumes(
        ray_instance: Any, alpaca_source: Path, smoke_nllb: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    records = pq.read_table(alpaca_source).slice(0, RECORDS)
    source, half = tmp_path / "source.parquet", tmp_path / "half.parquet"
    pq.write_table(records, source)
    pq.write_table(records.slice(0, RECORDS // 2), half)
    local_params = parse_params({"translate": {"shard_units": SHARD_UNITS}})
    local = translate(source, smoke_nllb, tmp_path / "local", local_params, tmp_path / "memory-local")

    # Ray on the first half of the records, with one worker SIGKILLed after the first shard lands.
    ray_memory = tmp_path / "memory-ray"
    killer = WorkerKiller(ray_memory)
    with monkeypatch.context() as patch:
        patch.setattr(TranslationMemory, "write_shard", killer.wrap(TranslationMemory.write_shard))
        first = translate(half, smoke_nllb, tmp_path / "ray-half", parse_params({"translate": RAY_SETTINGS}),
                          ray_memory)
    total_shards = -(-first.metrics["units_translated"] // SHARD_UNITS)
    assert killer.killed is not None and 0 < killer.shards_at_kill < total_shards  # killed mid-run
    assert first.metrics["backend"] == "ray" and first.metrics["cache_hits"] == 0
    assert first.metrics["units_translated"] == first.metrics["distinct_units"]
    assert len(list(ray_memory.glob("*/shard-*.parquet"))) == total_shards  # every shard, once
    # From the same empty memory, both backends write the very same shard files.
    translate(half, smoke_nllb, tmp_path / "local-half", local_params, tmp_path / "memory-local-half")
    ray_shards = sorted(p.relative_to(ray_memory) for p in ray_memory.glob("*/shard-*.parquet"))
    local_half = tmp_path / "memory-local-half"
    assert ray_shards == sorted(p.relative_to(local_half) for p in local_half.glob("*/shard-*.parquet"))
    assert all(pq.read_table(ray_memory / s).equals(pq.read_table(local_half / s)) for s in ray_shards)

    # Ray on all records, through the CLI flags: the first half comes from the memory.
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"translate": {"shard_units": SHARD_UNITS}}), encoding="utf-8")
    work = tmp_path / "ray-all"
    assert run_cli(
        monkeypatch, "translate", "--in", str(source), "--lang", "fr", "--model", str(smoke_nllb),
        "--out", str(work / "out.parquet"), "--metrics", str(work / "metrics.json"),
        "--rejects", str(work / "rejects.parquet"), "--cache", str(ray_memory), "--params", str(params_file),
        "--backend", "ray", "--num-workers", "2", "--gpus-per-worker", "0",
    ) == 0
    second = metrics_with_timing(work / "metrics.json")
    assert second["backend"] == "ray" and second["cache_hits"] == first.metrics["distinct_units"]
    assert second["units_translated"] == second["distinct_units"] - second["cache_hits"] > 0
    assert second["engine_batches"] > 0 and second["target_tokens"] > 0  # workers' totals reach the driver

    # Same dataset as the local backend, row for row; same memory entries, none twice.
    assert pq.read_table(work / "out.parquet").equals(pq.read_table(tmp_path / "local" / "out.parquet"))
    assert local.metrics["distinct_units"] == second["distinct_units"]
    ray_entries, local_entries = memory_entries(ray_memory), memory_entries(tmp_path / "memory-local")
    assert ray_entries.equals(local_entries)
    assert len(set(ray_entries.column("unit").to_pylist())) == ray_entries.num_rows


def test_missing_ray_is_one_line(smoke_nllb: Path, embedded_source: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(PolyinstructError) as err:
        translate(embedded_source, smoke_nllb, tmp_path, parse_params({"translate": RAY_SETTINGS}), tmp_path / "m")
    assert str(err.value) == RAY_MISSING == ("translate.backend=ray needs the ray extra: pip install"
                                             " 'polyinstruct[ray]'")
    with pytest.raises(PolyinstructError, match="needs the ray extra"):
        import_ray()
    assert not (tmp_path / "out.parquet").exists()
    assert run_cli(monkeypatch, "translate", "--in", str(embedded_source), "--lang", "fr", "--model", str(smoke_nllb),
                   "--out", str(tmp_path / "cli.parquet"), "--backend", "ray") == 2
    assert capsys.readouterr().err.strip() == f"error: {RAY_MISSING}"


def test_gpu_settings_are_checked_before_any_work() -> None:
    pytest.importorskip("ray")

    cpu = parse_params({"translate": RAY_SETTINGS}).translate
    assert resolve_ray_device(cpu) == ("cpu", "int8")
    with pytest.raises(PolyinstructError, match="ray_gpus_per_worker"):
        resolve_ray_device(cpu.model_copy(update={"device": "cuda"}))
    gpu = cpu.model_copy(update={"ray_gpus_per_worker": 1.0})
    with pytest.raises(PolyinstructError, match="ray_gpus_per_worker"):
        resolve_ray_device(gpu.model_copy(update={"device": "cpu"}))
    if _driver_has_cuda():
        return  # the rest is about a driver without a GPU
    # This driver has no GPU: `auto` cannot be resolved here, an explicit type goes to the workers.
    with pytest.raises(PolyinstructError, match="compute_type"):
        resolve_ray_device(gpu)
    assert resolve_ray_device(gpu.model_copy(update={"compute_type": "int8_float16"})) == ("cuda", "int8_float16")


def test_a_worker_error_reaches_the_user_as_its_one_line() -> None:
    """An actor whose constructor raised dies with only the text of the error (ActorDiedError);
    a task error keeps the exception. Both come back as the worker's own one-line message."""
    died = RuntimeError("The actor died because of an error raised in its creation task\nTraceback (most recent"
                        " call last):\n  ...\nschemas.errors.PolyinstructError: /m: no such model directory on Ray"
                        " node n1; the model must be at the same path on every node\n")
    assert str(_user_error(died)) == ("/m: no such model directory on Ray node n1; the model must be at the same"
                                      " path on every node")
    try:
        try:
            raise PolyinstructError("compute type float16 is not supported on cuda\nsecond line")
        except PolyinstructError as inner:
            raise RuntimeError("task failed") from inner
    except RuntimeError as outer:
        assert str(_user_error(outer)) == "compute type float16 is not supported on cuda"
    assert _user_error(RuntimeError("out of memory")) is None


def test_a_pool_larger_than_the_cluster_is_refused(ray_instance: Any, smoke_nllb: Path, tmp_path: Path) -> None:
    settings = parse_params({"translate": {**RAY_SETTINGS, "ray_num_workers": 3, "shard_units": 1}}).translate
    factory = TranslatorFactory(smoke_nllb, "eng_Latn", "fra_Latn", settings, "cpu", "int8")
    memory = TranslationMemory(tmp_path, memory_key("m", "eng_Latn", "fra_Latn", settings, "int8"))
    with pytest.raises(PolyinstructError, match=r"3 workers x 1 CPU need 3 CPUs, the Ray cluster has 2"):
        RayBackend(RayOptions.of("translate", settings)).run(["One.", "Two.", "Three."], factory, memory, 1)
    assert not memory.shards()
