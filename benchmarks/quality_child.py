"""One run of the filter stage in its own process, for bench_quality: `python benchmarks/quality_child.py DATA OUT`.

Run as a script (not -m) so that PYTHONPATH decides which implementation it imports: this tree's, or the
peer's (an older commit extracted by bench_quality). Prints one JSON line: wall and CPU seconds (this process
and its children), the stage's own step timings, and the language-ID counts. Only the standard library and
the stage itself are imported, so it runs against either tree."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from quality.stage import run_filter
from schemas.params import parse_params


def main(data: Path, out: Path) -> None:
    params = parse_params({"quality": {"filters": {"lang_id": {"enabled": True}}}}, "benchmark")
    started, cpu = time.perf_counter(), os.times()
    result = run_filter(data / "source.parquet", data / "translated", out / "filtered", out / "rejects.parquet",
                        out / "quality.json", out / "plots", params)
    end = os.times()
    print(json.dumps({
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(end.user + end.system + end.children_user + end.children_system
                       - cpu.user - cpu.system - cpu.children_user - cpu.children_system, 1),
        "maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "steps_s": result.seconds, "langid_rows": result.langid_rows, "langid_texts": result.langid_texts,
        "langid_step_s": result.langid_seconds, "kept": sum(result.kept.values()),
    }))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
