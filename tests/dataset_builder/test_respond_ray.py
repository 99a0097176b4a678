"""The Ray backend of the respond stage (`responses.backend: ray`), through the same interface as
translate's (dataset_builder.backends): on one local Ray instance with 2 CPU workers and the smoke
responder, it writes the very shards the local backend writes, gives the same rows, and a rerun on
either backend takes everything from the memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dataset_builder.models.responder import build_smoke_responder
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
    # Sampling is seeded per engine call, and both backends call the engine once per shard with the same
    # shards, so they can be compared row for row.
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
    assert ray["engine_batches"] >= N // SHARD and ray["output_tokens"] == local["output_tokens"] > 0
    # The same dataset, row for row, and the very same memory shards (one cut, one Arrow conversion).
    assert pq.read_table(tmp_path / "ray/out.parquet").equals(pq.read_table(tmp_path / "local/out.parquet"))
    assert (tmp_path / "ray/metrics.json").read_bytes() == (tmp_path / "local/metrics.json").read_bytes()
    ray_shards = sorted(p.relative_to(tmp_path / "memory-ray") for p in (tmp_path / "memory-ray").rglob("shard-*"))
    local_shards = sorted(p.relative_to(tmp_path / "memory-local")
                          for p in (tmp_path / "memory-local").rglob("shard-*"))
    assert ray_shards == local_shards and len(ray_shards) == N // SHARD
    assert all(pq.read_table(tmp_path / "memory-ray" / s).equals(pq.read_table(tmp_path / "memory-local" / s))
               for s in ray_shards)
    # The local backend resumes the Ray run's memory: nothing left to generate.
    again = _respond(responder, src, tmp_path / "again", _params("local"), tmp_path / "memory-ray")
    assert again["cache_hit_rate"] == 1.0 and again["prompts_generated"] == 0


def test_a_ray_pool_larger_than_the_cluster_is_refused_before_any_work(ray_instance: Any, responder: Path,
                                                                       tmp_path: Path) -> None:
    src = translated_file(tmp_path / "fra_Latn.parquet", 16)  # four shards: a pool of three
    with pytest.raises(PolyinstructError, match=r"responses.backend=ray: 3 workers x 1 CPU need 3 CPUs"):
        _respond(responder, src, tmp_path / "w", _params("ray", ray_num_workers=3), tmp_path / "memory")
    assert not list((tmp_path / "memory").rglob("shard-*"))
