"""Where the shared real data lies, for the benchmarks and the tests: `../shared/data` beside the checkout, or the
folder POLYINSTRUCT_SHARED_DATA names (CI sets it to /nonexistent to run as a fresh clone does). Read in place."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA_ENV = "POLYINSTRUCT_SHARED_DATA"
SHARED_DATA = Path(os.environ.get(SHARED_DATA_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data")
SHARED_ALPACA = SHARED_DATA / "alpaca_5000.json"
