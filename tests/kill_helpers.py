"""Run a real CLI process and signal it (SIGKILL unless told) the moment a condition holds (the resume tests of the
stages, the SIGTERM clean-up test)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def kill_when(args: Sequence[str], cwd: Path, env: dict[str, str], ready: Callable[[], bool], log: Path,
              timeout: float = 120, sig: signal.Signals = signal.SIGKILL) -> subprocess.Popen[bytes]:
    """Start `args`, poll `ready` every 10 ms, send `sig` to the process once it holds and wait for it to end;
    fails if the process ends first (its log's tail in the message) or `timeout` passes."""
    with log.open("w") as out:
        proc = subprocess.Popen(list(args), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, sig)
        proc.wait()
    return proc
