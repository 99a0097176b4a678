"""Where a stage's pending work runs: one small interface, two backends, chosen by name from `BACKENDS`.

A stage (translate, respond) plans on the driver: it looks its distinct items (units, prompts) up in its
memory (dataset_builder.memory) and lists what is still pending, in `pending_order`. A backend then
turns the pending items into results, shard by shard, and writes every finished shard to the memory at
once; the stage assembles rows from the memory's answers. The backend never knows which stage it serves:

- the engine comes from an `EngineFactory`, a small picklable description (model directory, device,
  decoding settings) that builds the engine where the work runs: in this process (`local`), or once
  per Ray actor on any node (`ray`, dataset_builder.translate_ray);
- results cross process boundaries as the memory's own Arrow columns (`ShardMemory.to_columns` /
  `from_columns`), the one conversion of a result to Arrow and back.

Adding a backend means one class with `run` and one entry in `BACKENDS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.progress import TextColumn

from dataset_builder.devices import check_planned_work, resolve_compute_type, resolve_device
from dataset_builder.memory import ShardMemory, run_in_shards
from dataset_builder.shard_work import EngineFactory, OnBatch, RayOptions, ShardBackend, ShardRun, counting
from dataset_builder.translate_ray import RayBackend  # Ray itself is imported lazily, by the backend's run
from schemas.progress import progress_bar


class LocalBackend:
    """This process: the driver's own engine, shard after shard (`memory.run_in_shards`)."""

    name = "local"

    def __init__(self, ray: RayOptions | None = None) -> None:
        del ray  # one process: no cluster knobs

    def devices(self, settings: Any, stage: str) -> tuple[str, str]:
        device = resolve_device(settings.device, stage=stage)
        return device, resolve_compute_type(settings.compute_type, device)

    def check_work(self, requested: str, device: str, items: int) -> None:
        check_planned_work(requested, device, items)

    def run(self, pending: Sequence[str], factory: EngineFactory, memory: ShardMemory, shard_size: int,
            on_batch: OnBatch | None = None) -> ShardRun:
        engine = factory()
        count, call = counting(on_batch)
        if hasattr(engine, "on_batch"):
            engine.on_batch = call
        results = run_in_shards(pending, engine, memory, shard_size)
        return ShardRun(results, count[0])


def _ray(ray: RayOptions | None) -> ShardBackend:
    if ray is None:
        raise ValueError("the ray backend needs RayOptions")
    return RayBackend(ray)


BACKENDS: dict[str, Callable[[RayOptions | None], ShardBackend]] = {"local": LocalBackend, "ray": _ray}


def get_backend(name: str, ray: RayOptions | None = None) -> ShardBackend:
    try:
        return BACKENDS[name](ray)
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; one of {', '.join(BACKENDS)}") from None


@dataclass
class PendingRun:
    results: dict[str, Any]
    batches: int
    seconds: float


def run_pending(backend: ShardBackend, pending: Sequence[str], factory: EngineFactory, memory: ShardMemory,
                shard_size: int, description: str, unit: str) -> PendingRun:
    """The stage loop shared by translate and respond: `backend` works through `pending` shard by shard
    under one progress bar (items/s, and output tokens/s in magenta), timed."""
    started = time.perf_counter()
    if not pending:
        return PendingRun({}, 0, 0.0)
    with progress_bar(TextColumn("[magenta]{task.fields[tok_rate]}")) as progress:
        task = progress.add_task(description, total=len(pending), unit=unit, tok_rate="- tok/s")
        tokens_done = 0

        def on_batch(items: int, tokens: int) -> None:
            nonlocal tokens_done
            tokens_done += tokens
            rate = tokens_done / max(time.perf_counter() - started, 1e-9)
            progress.update(task, advance=items, tok_rate=f"{rate:,.0f} tok/s")

        run = backend.run(pending, factory, memory, shard_size, on_batch)
        progress.update(task, completed=len(pending))  # engines that report no batches (stand-ins)
    return PendingRun(run.results, run.batches, time.perf_counter() - started)
