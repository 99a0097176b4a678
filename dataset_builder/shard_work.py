"""The shared types of the shard backends (dataset_builder.backends): what a backend drives, how it
is built where the work runs, the Ray knobs, and what a run gives back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dataset_builder.memory import ShardMemory

OnBatch = Callable[[int, int], None]  # (items, output tokens) per finished batch (local) or shard (ray)


class Engine(Protocol):
    """What a backend drives: items in, one result per item out, in order."""

    on_batch: OnBatch | None

    def __call__(self, items: Sequence[str]) -> list[Any]: ...


class EngineFactory(Protocol):
    """Builds the engine where the work runs. Picklable (Ray ships it to every actor). The driver's
    engine (`__call__()` with no arguments) is built once and reused; a worker passes its own
    thread count and, on a GPU slice, its own device numbers (Ray numbers a GPU actor's from 0)."""

    model_dir: Path
    device: str
    compute_type: str

    def __call__(self, intra_threads: int | None = None, device_index: Sequence[int] | None = None) -> Engine: ...


@dataclass(frozen=True)
class RayOptions:
    """The Ray knobs of a stage's params section (`translate.ray_*`, `responses.ray_*`)."""

    section: str  # params section, for messages: translate | responses
    address: str | None
    num_workers: int
    cpus_per_worker: int
    gpus_per_worker: float

    @classmethod
    def of(cls, section: str, settings: Any) -> RayOptions:
        return cls(section, settings.ray_address, settings.ray_num_workers, settings.ray_cpus_per_worker,
                   settings.ray_gpus_per_worker)


@dataclass
class ShardRun:
    results: dict[str, Any]  # item -> result, for every pending item
    batches: int  # engine batches the run took (summed over workers)


class ShardBackend(Protocol):
    name: str

    def devices(self, settings: Any, stage: str) -> tuple[str, str]:
        """(device, compute type) the engines will run on, checked before any work. `settings`: the
        stage's params section (device, compute_type, ray_*)."""
        ...

    def check_work(self, requested: str, device: str, items: int) -> None:
        """Refuse, before any work, a job too large for where it would run."""
        ...

    def run(self, pending: Sequence[str], factory: EngineFactory, memory: ShardMemory, shard_size: int,
            on_batch: OnBatch | None = None) -> ShardRun: ...


def counting(on_batch: OnBatch | None) -> tuple[list[int], OnBatch]:
    """A batch callback that also counts the batches (the count is the list's one element)."""
    count = [0]

    def call(items: int, tokens: int) -> None:
        count[0] += 1
        if on_batch:
            on_batch(items, tokens)

    return count, call



@dataclass(frozen=True)
class Prebuilt:
    """An engine already built in this process, in a factory's place: an HTTP client, a test's stand-in.
    For the local backend only (it is not shipped to workers)."""

    engine: Any
    model_dir: Path = Path()
    device: str = "remote"
    compute_type: str = "remote"

    def __call__(self, intra_threads: int | None = None, device_index: Sequence[int] | None = None) -> Any:
        return self.engine


class DriverEngineCache:
    """For EngineFactory dataclasses: the driver's engine (no arguments) is built once and kept, never
    pickled; a worker's (its threads, its devices) is built fresh. Subclasses define `_build`."""

    def _build(self, intra_threads: int | None, device_index: Sequence[int] | None) -> Any:
        raise NotImplementedError

    def __call__(self, intra_threads: int | None = None, device_index: Sequence[int] | None = None) -> Any:
        if intra_threads is not None or device_index is not None:
            return self._build(intra_threads, device_index)
        if "_driver" not in self.__dict__:
            object.__setattr__(self, "_driver", self._build(None, None))  # frozen dataclasses too
        return self.__dict__["_driver"]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_driver"}  # a worker builds its own

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
