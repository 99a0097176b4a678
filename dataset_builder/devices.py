"""Device and compute-type choice for every CTranslate2 engine (the translator and the generator):
`auto` picks CUDA when CTranslate2 sees a GPU, and int8 (CPU) or int8_float16 (GPU) weights."""

from __future__ import annotations

import os

from schemas.errors import PolyinstructError


def resolve_device(requested: str) -> str:
    import ctranslate2

    cuda = ctranslate2.get_cuda_device_count()
    if requested == "auto":
        return "cuda" if cuda > 0 else "cpu"
    if requested == "cuda" and cuda == 0:
        raise PolyinstructError("--device cuda: CTranslate2 sees no CUDA device; use --device cpu or auto")
    return requested


def resolve_compute_type(requested: str, device: str) -> str:
    import ctranslate2

    compute = ("int8_float16" if device == "cuda" else "int8") if requested == "auto" else requested
    supported = sorted(ctranslate2.get_supported_compute_types(device))
    if compute not in supported:
        raise PolyinstructError(f"compute type {compute} is not supported on {device}; choose one of"
                                f" {', '.join(supported)} (translate.compute_type or --compute-type)")
    return compute


def cpu_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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
