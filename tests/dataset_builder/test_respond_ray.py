"""The Ray backend of the respond stage (`responses.backend: ray`), through the same interface as
translate's (dataset_builder.backends): on one local Ray instance with 2 CPU workers and the smoke
responder, it cuts the very shards the local backend cuts (same files, same prompts), answers every
prompt once, and the local backend then resumes from the Ray run's memory, generating nothing.
(The smoke responder samples; a sample can differ with the engine's thread count, 2 locally and 1 per
Ray worker here, so texts are compared through the memory, not across backends. Greedy translations
are compared across backends in test_translate_ray.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dataset_builder.models.smoke import build_smoke_responder
from dataset_builder.respond import open_engine, respond_file
from dataset_builder.shard_work import RayOptions
from dataset_builder.translate_ray import ray_session
from schemas.errors import PolyinstructError
from schemas.params import Params, parse_params
from tests.conftest import metrics_with_timing
from tests.dataset_builder.respond_helpers import translated_file

N = 24
SHARD = 4  # six shards: both workers get several


@pytest.fixture(scope="module")
def responder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_smoke_responder(tmp_path_factory.mktemp("models") / "responder", seed=0)


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    pytest.importorskip("ray")
    with ray_session(RayOptions.of("responses", _params("ray").responses)) as ray:
        yield ray


def _params(backend: str, **extra: Any) -> Params:
    return parse_params({"responses": {"backend": backend, "shard_prompts": SHARD, "ray_num_workers": 2,
                                       "decoding": {"max_new_tokens": 12}, **extra}})


def _respond(responder: Path, src: Path, work: Path, params: Params, memory: Path) -> dict[str, Any]:
    factory, compute_type = open_engine(params, str(responder))
    respond_file(src, "fra_Latn", factory, work / "out.parquet", work / "metrics.json", work / "rejects.parquet",
                 params, compute_type, cache=memory)
    return metrics_with_timing(work / "metrics.json")


def test_ray_responds_as_local_does_and_reruns_from_memory(ray_instance: Any, responder: Path,
                                                            tmp_path: Path) -> None:
    src = translated_file(tmp_path / "fra_Latn.parquet", N)
    local = _respond(responder, src, tmp_path / "local", _params("local"), tmp_path / "memory-local")
    ray = _respond(responder, src, tmp_path / "ray", _params("ray"), tmp_path / "memory-ray")
    assert ray["backend"] == "ray" and local["backend"] == "local"
    assert ray["prompts_generated"] == local["prompts_generated"] == N and ray["cache_hits"] == 0
    assert ray["engine_batches"] >= N // SHARD and ray["output_tokens"] > 0  # the workers' totals reach the driver
    # The very same memory shards: one cut (files named by their prompts), one Arrow conversion, each prompt once.
    ray_shards = sorted(p.relative_to(tmp_path / "memory-ray") for p in (tmp_path / "memory-ray").rglob("shard-*"))
    local_shards = sorted(p.relative_to(tmp_path / "memory-local")
                          for p in (tmp_path / "memory-local").rglob("shard-*"))
    assert ray_shards == local_shards and len(ray_shards) == N // SHARD
    for shard in ray_shards:
        from_ray, from_local = pq.read_table(tmp_path / "memory-ray" / shard), pq.read_table(
            tmp_path / "memory-local" / shard)
        assert from_ray.schema == from_local.schema and from_ray["prompt"].equals(from_local["prompt"])
    rows = pq.read_table(tmp_path / "ray/out.parquet")
    assert rows["id"].equals(pq.read_table(tmp_path / "local/out.parquet")["id"])
    assert set(rows["output_model"].to_pylist()) == {local["model"]} and all(rows["smoke"].to_pylist())
    # Metrics hold the data's numbers only: the same for both backends (backend and seconds: the timing file).
    ray_metrics = {k: v for k, v in json.loads((tmp_path / "ray/metrics.json").read_text()).items()
                   if k not in ("truncated_outputs", "empty_outputs", "rejected", "responded", "rejected_by_reason")}
    assert ray_metrics == {k: v for k, v in json.loads((tmp_path / "local/metrics.json").read_text()).items()
                           if k in ray_metrics}
    # The local backend resumes the Ray run's memory: nothing left to generate, the Ray run's rows exactly.
    again = _respond(responder, src, tmp_path / "again", _params("local"), tmp_path / "memory-ray")
    assert again["cache_hit_rate"] == 1.0 and again["prompts_generated"] == 0
    assert pq.read_table(tmp_path / "again/out.parquet").equals(rows)


def test_a_ray_pool_larger_than_the_cluster_is_refused_before_any_work(ray_instance: Any, responder: Path,
                                                                       tmp_path: Path) -> None:
    src = translated_file(tmp_path / "fra_Latn.parquet", 16)  # four shards: a pool of three
    with pytest.raises(PolyinstructError, match=r"responses.backend=ray: 3 workers x 1 CPU need 3 CPUs"):
        _respond(responder, src, tmp_path / "w", _params("ray", ray_num_workers=3), tmp_path / "memory")
    assert not list((tmp_path / "memory").rglob("shard-*"))
