"""The Ray backend of the translate stage (`translate.backend: ray`), for runs larger than one machine.

Only the middle part of translate.py's flow changes; planning (segmentation, memory lookup, the
pending list) and assembly stay on the driver, exactly as in the local backend:

- the pending units (what the translation memory lacks, in `pending_order`) are cut into the same
  shards of `translate.shard_units` as `translate_pending` cuts them, and become a Ray Dataset with
  one row (and one block) per shard;
- `map_batches` runs them through a fixed pool of actors, each holding ONE CTranslate2 translator
  (`CTranslate2Engine`): one per GPU slice with `ray_gpus_per_worker` > 0, else one per CPU worker
  using `ray_cpus_per_worker` threads;
- the driver streams finished shards back (`iter_batches`) and writes each into the translation
  memory with `TranslationMemory.write_shard` at once: the same immutable Parquet shards, named by
  their units, that the local backend writes. Cache, resume and conservation are therefore the local
  backend's: the memory ends up with the same entries, a killed run keeps every finished shard.

Fault tolerance is Ray's: the actors run with `max_restarts=-1` and `max_task_retries=-1`, so a killed
worker is restarted and its shard is translated again (should a shard come back twice, the driver
writes it once). If the driver itself dies, a rerun resumes from the memory.

Ray is an optional extra (`pip install 'polyinstruct[ray]'`): it is imported only here, lazily.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dataset_builder.devices import resolve_compute_type, resolve_device
from schemas.errors import PolyinstructError
from schemas.params import TranslateParams

if TYPE_CHECKING:
    from dataset_builder.translate import CTranslate2Engine, TranslationMemory, UnitResult

RAY_MISSING = "translate.backend=ray needs the ray extra: pip install 'polyinstruct[ray]'"
# A finished shard travels back as one row of list columns, so a shard is never split across blocks.
SHARD_RESULT_SCHEMA = pa.schema([
    pa.field("shard", pa.int64(), nullable=False),
    pa.field("translation", pa.list_(pa.string()), nullable=False),
    pa.field("source_tokens", pa.list_(pa.int32()), nullable=False),
    pa.field("target_tokens", pa.list_(pa.int32()), nullable=False),
    pa.field("truncated", pa.list_(pa.bool_()), nullable=False),
    pa.field("score", pa.list_(pa.float32()), nullable=False),
    pa.field("batches", pa.int64(), nullable=False),
    pa.field("seconds", pa.float64(), nullable=False),
])
# Shards queued per actor: one running, one prefetched. More would leave a long tail at the end
# (queued shards cannot move to an idle actor).
TASKS_IN_FLIGHT_PER_ACTOR = 2
_WORKER_ERROR = re.compile(r"PolyinstructError: ([^\n]+)")


def import_ray() -> Any:
    """`ray` with Ray Data, or the one-line error naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401 - `ray[data]`, not only ray core
    except ImportError:
        raise PolyinstructError(RAY_MISSING) from None
    return ray


def require_ray() -> None:
    """The one-line error when the extra is missing, without paying for importing Ray (seconds)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise PolyinstructError(RAY_MISSING)


def resolve_ray_device(settings: TranslateParams) -> tuple[str, str]:
    """(device, compute_type) of the Ray workers, checked before any work (Ray installed included).
    The device follows `ray_gpus_per_worker`, not the driver's hardware: the driver only plans and
    writes, and may well have no GPU."""
    require_ray()
    device = "cuda" if settings.ray_gpus_per_worker > 0 else "cpu"
    if settings.device not in ("auto", device):
        fix = ("set translate.ray_gpus_per_worker (--gpus-per-worker) to 1" if device == "cpu"
               else "set translate.ray_gpus_per_worker to 0 for CPU workers")
        raise PolyinstructError(f"translate.device={settings.device} with translate.backend=ray and"
                                f" ray_gpus_per_worker={settings.ray_gpus_per_worker:g}; {fix}")
    if device == "cpu" or _driver_has_cuda():
        return device, resolve_compute_type(settings.compute_type, device)
    # A CPU-only driver cannot ask CTranslate2 what its GPU workers support; each worker checks
    # on its own node at startup instead (`ShardTranslator`).
    if settings.compute_type == "auto":
        raise PolyinstructError("translate.compute_type=auto cannot be resolved on a driver without a GPU; set"
                                " translate.compute_type (--compute-type), e.g. int8_float16 (what auto picks on"
                                " a GPU)")
    return device, settings.compute_type


def _driver_has_cuda() -> bool:
    import ctranslate2

    try:
        return ctranslate2.get_cuda_device_count() > 0
    except RuntimeError:  # a CUDA runtime without a usable driver
        return False


@dataclass(frozen=True)
class WorkerSpec:
    """What an actor needs to build its engine: small and picklable, shipped to every node."""

    model_dir: str
    src_lang: str
    tgt_lang: str
    settings: TranslateParams
    device: str
    compute_type: str
    intra_threads: int


class ShardTranslator:
    """A Ray Data actor: one CTranslate2 translator, fed whole memory shards (one per call)."""

    def __init__(self, spec: WorkerSpec) -> None:
        from dataset_builder.translate import CTranslate2Engine

        model_dir = Path(spec.model_dir)
        if not model_dir.is_dir():
            raise PolyinstructError(f"{model_dir}: no such model directory on Ray node {socket.gethostname()}; the"
                                    " model must be at the same path on every node (shared filesystem or a copy)")
        if spec.device == "cuda":  # checked here, on the node that runs it (see resolve_ray_device)
            resolve_device("cuda")
            resolve_compute_type(spec.compute_type, "cuda")
        self.engine = CTranslate2Engine(model_dir, spec.src_lang, spec.tgt_lang, spec.settings, spec.device,
                                        spec.compute_type, intra_threads=spec.intra_threads)
        _ = self.engine.translator  # load now: a model that cannot load fails at startup, not mid-run

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows: list[dict[str, Any]] = []
        for shard, units in zip(batch.column("shard").to_pylist(), batch.column("units").to_pylist(), strict=True):
            started, batches_before = time.perf_counter(), self.engine.stats.batches
            results = self.engine(units)
            if len(results) != len(units):
                raise RuntimeError(f"translator returned {len(results)} results for {len(units)} units")
            rows.append({
                "shard": shard, "translation": [r.translation for r in results],
                "source_tokens": [r.source_tokens for r in results],
                "target_tokens": [r.target_tokens for r in results], "truncated": [r.truncated for r in results],
                "score": [r.score for r in results],
                "batches": self.engine.stats.batches - batches_before, "seconds": time.perf_counter() - started,
            })
        return pa.Table.from_pylist(rows, schema=SHARD_RESULT_SCHEMA)


def ray_address(settings: TranslateParams) -> str | None:
    """The cluster to join: translate.ray_address (--address), else $RAY_ADDRESS, else None (local)."""
    return settings.ray_address or os.environ.get("RAY_ADDRESS") or None


@contextmanager
def ray_session(settings: TranslateParams) -> Iterator[Any]:
    """Join the cluster at `ray_address`, or start a quiet local instance with one CPU per worker
    thread; reuse one already initialised in this process. Shuts down only what it started."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = ray_address(settings)
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(num_cpus=settings.ray_num_workers * settings.ray_cpus_per_worker, **common)
    except (ConnectionError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        hint = ("start it with `ray start --head` on the head node, or leave translate.ray_address unset for a local"
                " instance" if address else "check that no stale Ray processes hold the ports (`ray stop`)")
        raise PolyinstructError(f"cannot start or join {where} ({first[:200]}); {hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_capacity(ray: Any, settings: TranslateParams, workers: int) -> None:
    """A fixed pool that does not fit the cluster would wait forever: say so instead."""
    gpus = settings.ray_gpus_per_worker
    resource, per_worker, knob = (("GPU", gpus, "ray_gpus_per_worker (--gpus-per-worker)") if gpus
                                  else ("CPU", settings.ray_cpus_per_worker, "ray_cpus_per_worker"))
    have = float(ray.cluster_resources().get(resource, 0))
    if have < per_worker * workers:
        raise PolyinstructError(
            f"translate.backend=ray: {workers} workers x {per_worker:g} {resource} need {per_worker * workers:g}"
            f" {resource}s, the Ray cluster has {have:g}; lower translate.ray_num_workers (--num-workers) or"
            f" translate.{knob}, or add nodes")


def _quiet_ray_data(ray: Any) -> None:
    """Our progress bar replaces Ray Data's; its per-run banners are noise in a stage log."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def _user_error(err: BaseException) -> PolyinstructError | None:
    """The PolyinstructError a worker raised, wrapped somewhere in a Ray error: as an exception in
    the chain (task errors), or only as text (an actor whose constructor raised dies with a message)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [err]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, PolyinstructError):
            return PolyinstructError(str(current).strip().splitlines()[0])
        found = _WORKER_ERROR.search(str(current))
        if found:
            return PolyinstructError(found.group(1).strip())
        stack += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    return None


def translate_pending_ray(pending: Sequence[str], memory: TranslationMemory, engine: CTranslate2Engine,
                          src_lang: str) -> dict[str, UnitResult]:
    """Translate `pending` (in `pending_order`) on Ray; every finished shard is written to `memory`
    at once, as `translate_pending` does. `engine` is the driver's engine: its settings, model and
    decoding choices are what the actors rebuild; its `stats` receive the workers' totals and its
    `on_batch` callback is called once per finished shard (the progress bar's aggregate rate)."""
    from dataset_builder.translate import UnitResult

    settings = engine.settings
    import_ray()  # the one-line error before any work when the extra is missing
    # The same cut as translate_pending: a shard's file name is the hash of its units, so both
    # backends write identical shards and either can resume the other's run.
    shards = [list(pending[start:start + settings.shard_units])
              for start in range(0, len(pending), settings.shard_units)]
    if not shards:
        return {}
    gpus = settings.ray_gpus_per_worker
    spec = WorkerSpec(
        model_dir=str(Path(engine.model_dir).resolve()), src_lang=src_lang, tgt_lang=engine.tgt_lang,
        # Ray gives a GPU actor only its own devices (CUDA_VISIBLE_DEVICES), numbered from 0.
        settings=settings.model_copy(update={"device_index": list(range(max(1, int(gpus))))}) if gpus else settings,
        device=engine.device, compute_type=engine.compute_type, intra_threads=settings.ray_cpus_per_worker,
    )
    workers = min(settings.ray_num_workers, len(shards))  # an actor with no shard would only load a model
    done: dict[str, UnitResult] = {}
    written: set[int] = set()
    with ray_session(settings) as ray:
        _quiet_ray_data(ray)
        _check_capacity(ray, settings, workers)
        dataset = ray.data.from_items([{"shard": i, "units": units} for i, units in enumerate(shards)],
                                      override_num_blocks=len(shards))
        resources: dict[str, Any] = {"num_gpus": gpus} if gpus else {"num_cpus": settings.ray_cpus_per_worker}
        translated = dataset.map_batches(
            ShardTranslator, fn_constructor_args=(spec,), batch_size=1, batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=TASKS_IN_FLIGHT_PER_ACTOR),
            # Fault tolerance: Ray Data creates pool actors with max_restarts=-1 and max_task_retries=-1
            # (passing them here is deprecated), so a killed worker is restarted and its shard retried.
            **resources,
        )
        try:
            for block in translated.iter_batches(batch_size=None, batch_format="pyarrow"):
                for row in block.to_pylist():
                    if row["shard"] in written:
                        continue  # a retried shard that came back twice: already written
                    units = shards[row["shard"]]
                    results = [UnitResult(t, s, g, k, c) for t, s, g, k, c in zip(
                        row["translation"], row["source_tokens"], row["target_tokens"], row["truncated"],
                        row["score"], strict=True)]
                    if len(results) != len(units):
                        raise RuntimeError(f"shard {row['shard']}: {len(results)} results for {len(units)} units")
                    memory.write_shard(units, results)
                    done.update(zip(units, results, strict=True))
                    written.add(row["shard"])
                    _add_stats(engine, len(units), row)
        except Exception as err:
            user = _user_error(err)
            if user is not None:
                raise user from None
            if isinstance(err, ray.exceptions.RayError):
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise PolyinstructError(f"translate (ray): the Ray job failed ({first[:200]}); finished shards are"
                                        " in the translation memory, a rerun resumes from there") from None
            raise
    missing = len(pending) - len(done)
    if missing:  # never silent: every pending unit must come back
        raise RuntimeError(f"translate (ray): {missing} of {len(pending)} units came back from no worker")
    return done


def _add_stats(engine: CTranslate2Engine, units: int, row: dict[str, Any]) -> None:
    produced = sum(row["target_tokens"])
    stats = engine.stats
    stats.batches += row["batches"]
    stats.units += units
    stats.source_tokens += sum(row["source_tokens"])
    stats.target_tokens += produced
    stats.seconds += row["seconds"]  # busy seconds summed over workers
    if engine.on_batch:
        engine.on_batch(units, produced)
