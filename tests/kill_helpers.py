"""Run a real CLI process and SIGKILL it the moment a condition holds (the resume tests of the stages)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def kill_when(args: Sequence[str], cwd: Path, env: dict[str, str], ready: Callable[[], bool], log: Path,
              timeout: float = 120) -> subprocess.Popen[bytes]:
    """Start `args`, poll `ready` every 10 ms, SIGKILL the process once it holds; fails if the process
    ends first (its log's tail in the message) or `timeout` passes."""
    with log.open("w") as out:
        proc = subprocess.Popen(list(args), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc
