"""A stage stopped by SIGTERM (`timeout`, a scheduler, a pod's shutdown) ends like one stopped by Ctrl-C: one
line, its own exit code, and its temporary files removed (the filter stage's DuckDB spill folder holds GBs at
10M rows; a killed run used to leave it in the temporary directory)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.kill_helpers import kill_when
from tests.quality.test_filters import base_rows, write_set

# The real CLI, paused (sleeping) once the filter stage has loaded its rows into DuckDB, so the signal arrives while
# the stage's temporary folder exists, every time. (A signal during one of the stage's DuckDB queries, which DuckDB
# turns into its own "Query interrupted" error, and one during language ID, with the fastText workers, were checked
# by hand at 500K rows with `timeout -s TERM|INT`: each run ended within 1.5 s, one line, nothing left behind.)
LAUNCHER = """
import sys, time
from pathlib import Path
import quality.stage as stage
from dataset_builder.cli.app import main

ready, loaded = Path(sys.argv[1]), stage._load
def load_then_pause(run, source, translated):
    missing = loaded(run, source, translated)
    ready.write_text("loaded")
    time.sleep(120)
    return missing
stage._load = load_then_pause
sys.argv = ["polyinstruct", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize(("signum", "code", "line"), [(signal.SIGTERM, 143, "error: terminated by SIGTERM"),
                                                      (signal.SIGINT, 130, "error: interrupted")])
def test_a_signal_during_the_filter_stage_removes_its_spill_folder_and_says_so(
        tmp_path: Path, signum: signal.Signals, code: int, line: str) -> None:
    source, target = base_rows(20)
    write_set(tmp_path, source, {"fra_Latn": target})
    (tmp_path / "launch.py").write_text(LAUNCHER, encoding="utf-8")
    temp = tmp_path / "tmp"
    temp.mkdir()
    ready = tmp_path / "ready"
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO_ROOT)}
    log = tmp_path / "log.txt"
    proc = kill_when([sys.executable, str(tmp_path / "launch.py"), str(ready), "filter",
                      "--source", str(tmp_path / "source.parquet"), "--translated", str(tmp_path / "translated"),
                      "--out", str(tmp_path / "filtered"), "--rejects", str(tmp_path / "rejects.parquet"),
                      "--metrics", str(tmp_path / "quality.json"), "--plots", str(tmp_path / "plots"),
                      "--no-lang-id"], REPO_ROOT, env, ready.exists, log, sig=signum)
    assert proc.returncode == code, log.read_text()
    assert log.read_text().strip().splitlines()[-1].startswith(line)
    assert "Traceback" not in log.read_text()
    assert not list(temp.glob("polyinstruct-filter-*"))  # the spill folder went with the stage
    assert not (tmp_path / "rejects.parquet").exists()  # nothing half-written
