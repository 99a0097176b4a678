"""Run benchmarks and record them: benchmarks/results/<name>.json plus the table in benchmarks/RESULTS.md.

Usage: python -m benchmarks.run [--quick] NAME [NAME ...]
Each result carries the command, the machine and the date, so figures are never quoted without context."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
# Environment variables that are benchmark knobs (recorded with the command).
KNOB_PREFIXES = ("BENCH_", "POLYINSTRUCT_")


def cpu_isa(flags: set[str]) -> str:
    """The widest of the vector instruction sets that change speed and int8 results here (oneDNN's int8 kernels
    differ with and without VNNI): machines that all say "AMD EPYC" are told apart by it."""
    for isa in ("avx512_vnni", "avx512f", "avx2"):
        if isa in flags:
            return isa
    return "older"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {"cpu": cpu, "isa": cpu_isa(flags) if flags else "unknown", "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "gpu": gpu, "python": platform.python_version(), "platform": platform.platform()}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _load_note(meta: dict[str, Any]) -> str:
    load = meta.get("load_average_1min")
    if not load:
        return "; load average not recorded (machine shared with other work: treat timings as approximate)"
    return f"; 1-min load average {load['start']} at start, {load['end']} at end (2 cores: above ~2 means contention)"


def write_results_md() -> None:
    lines = ["# Benchmark results", "",
             "Written by `make bench` (`python -m benchmarks.run`); each row is the latest run of that benchmark.",
             "Raw figures, with every detail, are in `benchmarks/results/<name>.json`.", ""]
    for path in sorted(RESULTS_DIR.glob("*.json")):
        result = json.loads(path.read_text())
        meta = result["meta"]
        lines += [f"## {path.stem}", "",
                  f"- command: `{meta['command']}`" + (" (quick mode)" if meta.get("quick") else ""),
                  f"- machine: {meta['machine']['cpu']}"
                  + (f" ({meta['machine']['isa']})" if "isa" in meta["machine"] else "")
                  + f", {meta['machine']['cores']} cores, "
                  f"{meta['machine']['memory_gib']} GiB, GPU: {meta['machine']['gpu']}",
                  f"- date: {meta['date']}; wall time {meta['wall_seconds']:.1f} s" + _load_note(meta), "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in result.get("summary", {}).items()]
        lines.append("")
    RESULTS_MD.write_text("\n".join(lines))


def _environment_knobs() -> list[str]:
    """The set environment variables that change what a benchmark measures (BENCH_TRANSLATE_MANY_FULL,
    POLYINSTRUCT_BENCH_FULL, POLYINSTRUCT_SHARED_DATA ...) as `NAME=value`: without them, `make
    bench-translate-many FULL=1` would be recorded as the default run it is not."""
    return [f"{key}={value}" for key, value in sorted(os.environ.items())
            if value and key.startswith(KNOB_PREFIXES)]


def run_one(name: str, quick: bool, rows: int | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """rows: the size of a benchmark that takes one (bench_quality); its result goes to <name>_<rows>.json.
    options: a benchmark's own flags (fidelity: qe_model, limit), passed when set."""
    module = importlib.import_module(f"benchmarks.bench_{name}")
    load_start = os.getloadavg()[0]  # other work on the machine skews timings: record it
    started = time.perf_counter()
    options = {k: v for k, v in (options or {}).items() if v is not None}
    result = module.run(quick=quick, rows=rows, **options) if rows else module.run(quick=quick, **options)
    command = f"make bench-{name}" if not quick else f"python -m benchmarks.run --quick {name}"
    if options:
        command = f"python -m benchmarks.run {'--quick ' if quick else ''}{name} " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in options.items())
    if rows:
        command = f"python -m benchmarks.run {name} --rows {rows}"
    result["meta"] = {
        "command": " ".join([*_environment_knobs(), command]),
        "quick": quick,
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "load_average_1min": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / (f"{name}_{rows}.json" if rows else f"{name}.json")
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="+")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a sanity check")
    parser.add_argument("--rows", type=int, help="size of the run, for benchmarks that take one (quality)")
    parser.add_argument("--qe-model", help="fidelity: a converted CTranslate2 NLLB directory; QE-scores the dev sets")
    parser.add_argument("--limit", type=int, help="fidelity with --qe-model: records of each dev set scored")
    args = parser.parse_args(argv)
    for name in args.names:
        print(f"== bench {name}", flush=True)
        result = run_one(name, args.quick, args.rows, {"qe_model": args.qe_model, "limit": args.limit})
        for key, value in result.get("summary", {}).items():
            print(f"   {key}: {_cell(value)}")
    write_results_md()
    print(f"results: {RESULTS_DIR}/, table: {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
