"""Device and compute-type choice for every CTranslate2 engine (the translator and the generator):
`auto` picks CUDA when CTranslate2 sees a GPU, and int8 (CPU) or int8_float16 (GPU) weights. The choice is
logged every time, and a large job that `auto` would put on the CPU stops before any work instead of quietly
taking days. CTranslate2's PyPI wheels are built against CUDA 12: on a machine whose torch sees a GPU but whose
CTranslate2 does not, the CUDA 12 runtime libraries are missing (see README "GPU machines")."""

from __future__ import annotations

import os
import sys

from schemas.errors import PolyinstructError

# Distinct translation units (sentences) above which `auto` refuses to fall back to the CPU.
CPU_UNIT_LIMIT = 100_000


def cuda_device_count() -> int:
    """CUDA devices as CTranslate2 (not torch) sees them: that is what its engines can use."""
    import ctranslate2

    return int(ctranslate2.get_cuda_device_count())


def resolve_device(requested: str, stage: str = "translate") -> str:
    """The device for `requested` (auto|cpu|cuda); logs the choice on stderr, every time."""
    count = cuda_device_count()
    if requested == "cuda" and count == 0:
        raise PolyinstructError("--device cuda: CTranslate2 sees no CUDA device; use --device cpu or auto (run"
                                " `polyinstruct doctor` to see why)")
    device = ("cuda" if count > 0 else "cpu") if requested == "auto" else requested
    why = (f"CTranslate2 sees {count} CUDA device(s)" if count else
           "CTranslate2 sees no CUDA device; its wheels need CUDA 12, run `polyinstruct doctor`")
    print(f"{stage}: device {device} ({'auto: ' if requested == 'auto' else 'set: '}{why})", file=sys.stderr)
    return device


def check_planned_work(requested: str, device: str, units: int, limit: int = CPU_UNIT_LIMIT) -> None:
    """Stop a large job that `auto` put on the CPU; `device: cpu` set explicitly lets it run."""
    if requested == "auto" and device == "cpu" and units > limit:
        raise PolyinstructError(
            f"translate: {units:,} units to translate on the CPU (more than {limit:,}) because no GPU is visible"
            " to CTranslate2; run `polyinstruct doctor`, or set translate.device: cpu to run it on the CPU anyway")


def resolve_compute_type(requested: str, device: str) -> str:
    import ctranslate2

    compute = ("int8_float16" if device == "cuda" else "int8") if requested == "auto" else requested
    supported = sorted(ctranslate2.get_supported_compute_types(device))
    if compute not in supported:
        raise PolyinstructError(f"compute type {compute} is not supported on {device}; choose one of"
                                f" {', '.join(supported)} (translate.compute_type or --compute-type)")
    return compute


def available_cpus() -> int:
    """The CPUs this process may run on: how many worker processes are worth starting."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_threads() -> int:
    """CPU threads for one engine: OMP_NUM_THREADS when set (the usual cap for a process sharing the machine,
    e.g. one of several test workers), else every available CPU."""
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return int(limit) if limit.isdigit() and int(limit) > 0 else available_cpus()


def length_batches(lengths: list[int], max_batch_tokens: int) -> list[list[int]]:
    """Indexes sorted by length, cut so that each padded batch stays within max_batch_tokens."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and lengths[i] * (len(current) + 1) > max_batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
