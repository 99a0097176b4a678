"""The Ray backend (`translate.backend: ray`, `responses.backend: ray`), for runs larger than one machine.

It implements dataset_builder.backends' one interface, for any stage: planning (the memory lookup,
the pending list) and assembly stay on the driver, exactly as with the local backend; only the work
on the pending items moves:

- the pending items (what the memory lacks, in `pending_order`) are cut into the same shards of
  `shard_size` as `memory.run_in_shards` cuts them (`memory.shard_cut`), and become a Ray Dataset with
  one row (and one block) per shard;
- `map_batches` runs them through a fixed pool of actors (`ShardWorker`), each holding ONE engine built
  by the stage's `EngineFactory`: one per GPU slice with `ray_gpus_per_worker` > 0, else one per CPU
  worker using `ray_cpus_per_worker` threads;
- a finished shard comes back as the memory's own columns (`ShardMemory.to_columns`, as lists), and
  the driver writes it into the memory at once with `write_shard`: the same immutable Parquet shards,
  named by their items, that the local backend writes. Cache, resume and conservation are therefore
  the local backend's: the memory ends up with the same entries, a killed run keeps every finished shard.

Fault tolerance is Ray's: the actors run with `max_restarts=-1` and `max_task_retries=-1`, so a killed
worker is restarted and its shard is done again (should a shard come back twice, the driver writes it
once). If the driver itself dies, a rerun resumes from the memory.

Ray is an optional extra (`pip install 'polyinstruct[ray]'`): it is imported only here, lazily. This
module imports the memory and the shared types only; the engine arrives as its factory.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from dataset_builder.devices import resolve_compute_type, resolve_device
from dataset_builder.memory import ShardMemory, shard_cut
from dataset_builder.shard_work import EngineFactory, OnBatch, RayOptions, ShardRun
from schemas.errors import PolyinstructError

RAY_MISSING = "translate.backend=ray needs the ray extra: pip install 'polyinstruct[ray]'"
# Shards queued per actor: one running, one prefetched. More would leave a long tail at the end
# (queued shards cannot move to an idle actor).
TASKS_IN_FLIGHT_PER_ACTOR = 2
_WORKER_ERROR = re.compile(r"PolyinstructError: ([^\n]+)")


def ray_missing(section: str = "translate") -> str:
    return RAY_MISSING.replace("translate.", f"{section}.", 1)


def import_ray(section: str = "translate") -> Any:
    """`ray` with Ray Data, or the one-line error naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401 - `ray[data]`, not only ray core
    except ImportError:
        raise PolyinstructError(ray_missing(section)) from None
    return ray


def require_ray(section: str = "translate") -> None:
    """The one-line error when the extra is missing, without paying for importing Ray (seconds)."""
    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise PolyinstructError(ray_missing(section))


def resolve_ray_device(settings: Any, section: str = "translate") -> tuple[str, str]:
    """(device, compute_type) of the Ray workers, checked before any work (Ray installed included).
    The device follows `ray_gpus_per_worker`, not the driver's hardware: the driver only plans and
    writes, and may well have no GPU. `settings`: a params section with device, compute_type and ray_*."""
    require_ray(section)
    device = "cuda" if settings.ray_gpus_per_worker > 0 else "cpu"
    if settings.device not in ("auto", device):
        fix = (f"set {section}.ray_gpus_per_worker (--gpus-per-worker) to 1" if device == "cpu"
               else f"set {section}.ray_gpus_per_worker to 0 for CPU workers")
        raise PolyinstructError(f"{section}.device={settings.device} with {section}.backend=ray and"
                                f" ray_gpus_per_worker={settings.ray_gpus_per_worker:g}; {fix}")
    if device == "cpu" or _driver_has_cuda():
        return device, resolve_compute_type(settings.compute_type, device)
    # A CPU-only driver cannot ask CTranslate2 what its GPU workers support; each worker checks
    # on its own node at startup instead (`ShardWorker`).
    if settings.compute_type == "auto":
        raise PolyinstructError(f"{section}.compute_type=auto cannot be resolved on a driver without a GPU; set"
                                f" {section}.compute_type (--compute-type), e.g. int8_float16 (what auto picks"
                                " on a GPU)")
    return device, settings.compute_type


def _driver_has_cuda() -> bool:
    import ctranslate2

    try:
        return ctranslate2.get_cuda_device_count() > 0
    except RuntimeError:  # a CUDA runtime without a usable driver
        return False


def shard_result_schema(memory_schema: pa.Schema) -> pa.Schema:
    """A finished shard travels back as one row of list columns (the memory's, item column aside), so
    a shard is never split across blocks; plus the worker's batches, output tokens and busy seconds."""
    return pa.schema([pa.field("shard", pa.int64(), nullable=False),
                      *[pa.field(f.name, pa.list_(f.type), nullable=False) for f in list(memory_schema)[1:]],
                      pa.field("batches", pa.int64(), nullable=False), pa.field("tokens", pa.int64(), nullable=False),
                      pa.field("seconds", pa.float64(), nullable=False)])


class ShardWorker:
    """A Ray Data actor: one engine (built by the stage's factory), fed whole memory shards (one per call)."""

    def __init__(self, factory: EngineFactory, memory: ShardMemory, intra_threads: int, gpus: float) -> None:
        model_dir = Path(factory.model_dir)
        if not model_dir.is_dir():
            raise PolyinstructError(f"{model_dir}: no such model directory on Ray node {socket.gethostname()}; the"
                                    " model must be at the same path on every node (shared filesystem or a copy)")
        if factory.device == "cuda":  # checked here, on the node that runs it (see resolve_ray_device)
            resolve_device("cuda")
            resolve_compute_type(factory.compute_type, "cuda")
        # Ray gives a GPU actor only its own devices (CUDA_VISIBLE_DEVICES), numbered from 0.
        self.engine = factory(intra_threads, list(range(max(1, int(gpus)))) if gpus else None)
        self.memory = memory
        self.schema = shard_result_schema(memory.schema)
        self.batches, self.tokens = 0, 0
        self.engine.on_batch = self._count
        load = getattr(self.engine, "load", None)
        if load:
            load()  # a model that cannot load fails at startup, not mid-run

    def _count(self, items: int, tokens: int) -> None:
        self.batches += 1
        self.tokens += tokens

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows: list[dict[str, Any]] = []
        for shard, items in zip(batch.column("shard").to_pylist(), batch.column("items").to_pylist(), strict=True):
            started, batches, tokens = time.perf_counter(), self.batches, self.tokens
            results = self.engine(items)
            if len(results) != len(items):
                raise RuntimeError(f"engine returned {len(results)} results for {len(items)} items")
            columns = {name: values.to_pylist() for name, values in self.memory.to_columns(results).items()}
            rows.append({"shard": shard, **columns, "batches": self.batches - batches,
                         "tokens": self.tokens - tokens, "seconds": time.perf_counter() - started})
        return pa.Table.from_pylist(rows, schema=self.schema)


def ray_address(options: RayOptions) -> str | None:
    """The cluster to join: <section>.ray_address (--address), else $RAY_ADDRESS, else None (local)."""
    return options.address or os.environ.get("RAY_ADDRESS") or None


@contextmanager
def ray_session(options: RayOptions) -> Iterator[Any]:
    """Join the cluster at `ray_address`, or start a quiet local instance with one CPU per worker
    thread; reuse one already initialised in this process. Shuts down only what it started."""
    ray = import_ray(options.section)
    if ray.is_initialized():
        yield ray
        return
    address = ray_address(options)
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(num_cpus=options.num_workers * options.cpus_per_worker, **common)
    except (ConnectionError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        hint = (f"start it with `ray start --head` on the head node, or leave {options.section}.ray_address unset"
                " for a local instance" if address else "check that no stale Ray processes hold the ports (`ray stop`)")
        raise PolyinstructError(f"cannot start or join {where} ({first[:200]}); {hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_capacity(ray: Any, options: RayOptions, workers: int) -> None:
    """A fixed pool that does not fit the cluster would wait forever: say so instead."""
    gpus = options.gpus_per_worker
    resource, per_worker, knob = (("GPU", gpus, "ray_gpus_per_worker (--gpus-per-worker)") if gpus
                                  else ("CPU", options.cpus_per_worker, "ray_cpus_per_worker"))
    have = float(ray.cluster_resources().get(resource, 0))
    if have < per_worker * workers:
        raise PolyinstructError(
            f"{options.section}.backend=ray: {workers} workers x {per_worker:g} {resource} need"
            f" {per_worker * workers:g} {resource}s, the Ray cluster has {have:g}; lower"
            f" {options.section}.ray_num_workers (--num-workers) or {options.section}.{knob}, or add nodes")


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




class RayBackend:
    """dataset_builder.backends' `ray`: the pending shards on a fixed pool of Ray actors."""

    name = "ray"

    def __init__(self, options: RayOptions) -> None:
        self.options = options

    def devices(self, settings: Any, stage: str) -> tuple[str, str]:
        """The workers' device, not the driver's; fails early without the extra."""
        device, compute_type = resolve_ray_device(settings, self.options.section)
        print(f"{stage}: device {device} (ray workers, ray_gpus_per_worker={self.options.gpus_per_worker:g})",
              file=sys.stderr)
        return device, compute_type

    def check_work(self, requested: str, device: str, items: int) -> None:
        del requested, device, items  # the cluster was sized for the job: ray_num_workers, ray_gpus_per_worker

    def run(self, pending: Sequence[str], factory: EngineFactory, memory: ShardMemory, shard_size: int,
            on_batch: OnBatch | None = None) -> ShardRun:
        """Every finished shard is written to `memory` at once, as the local backend does; `on_batch` is
        called once per finished shard (the progress bar's aggregate rate)."""
        options = self.options
        import_ray(options.section)  # the one-line error before any work when the extra is missing
        # The local backend's cut: a shard's file name is the hash of its items, so both backends write
        # identical shards and either can resume the other's run.
        shards = shard_cut(pending, shard_size)
        if not shards:
            return ShardRun({}, 0)
        workers = min(options.num_workers, len(shards))  # an actor with no shard would only load a model
        done: dict[str, Any] = {}
        written: set[int] = set()
        batches = 0
        with ray_session(options) as ray:
            _quiet_ray_data(ray)
            _check_capacity(ray, options, workers)
            dataset = ray.data.from_items([{"shard": i, "items": items} for i, items in enumerate(shards)],
                                          override_num_blocks=len(shards))
            gpus = options.gpus_per_worker
            resources: dict[str, Any] = {"num_gpus": gpus} if gpus else {"num_cpus": options.cpus_per_worker}
            finished = dataset.map_batches(
                ShardWorker, fn_constructor_args=(factory, memory, options.cpus_per_worker, gpus), batch_size=1,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=workers,
                                                   max_tasks_in_flight_per_actor=TASKS_IN_FLIGHT_PER_ACTOR),
                # Fault tolerance: Ray Data creates pool actors with max_restarts=-1 and max_task_retries=-1
                # (passing them here is deprecated), so a killed worker is restarted and its shard retried.
                **resources,
            )
            try:
                for block in finished.iter_batches(batch_size=None, batch_format="pyarrow"):
                    for row in block.to_pylist():
                        if row["shard"] in written:
                            continue  # a retried shard that came back twice: already written
                        items = shards[row["shard"]]
                        results = memory.from_columns(row)
                        if len(results) != len(items):
                            raise RuntimeError(f"shard {row['shard']}: {len(results)} results for {len(items)} items")
                        memory.write_shard(items, results)
                        done.update(zip(items, results, strict=True))
                        written.add(row["shard"])
                        batches += row["batches"]
                        if on_batch:
                            on_batch(len(items), row["tokens"])
            except Exception as err:
                user = _user_error(err)
                if user is not None:
                    raise user from None
                if isinstance(err, ray.exceptions.RayError):
                    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                    raise PolyinstructError(f"{options.section} (ray): the Ray job failed ({first[:200]}); finished"
                                            f" shards are in the {memory.label}, a rerun resumes from there") from None
                raise
        missing = len(pending) - len(done)
        if missing:  # never silent: every pending item must come back
            raise RuntimeError(f"{options.section} (ray): {missing} of {len(pending)} items came back from no worker")
        return ShardRun(done, batches)
