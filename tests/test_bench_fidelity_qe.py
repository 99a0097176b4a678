"""The fidelity benchmark's QE part without a model: it says what it did not measure and why; and the params it
runs the gate with. (The measurement itself needs real weights: `python -m benchmarks.run fidelity --qe-model DIR`.)"""

from __future__ import annotations

from pathlib import Path

from benchmarks.fidelity_qe import _quantile, measure, with_qe
from schemas.params import Params


def _never(*args: object) -> dict:
    raise AssertionError("no filter run without a model")


def test_without_a_model_nothing_is_measured_and_the_json_says_why(tmp_path: Path) -> None:
    result = measure(None, None, Params(), {}, tmp_path / "work", _never)
    assert result["measured"] is False and "--qe-model" in result["why"] and "downloaded" in result["why"]
    result = measure(tmp_path, None, Params(), {}, tmp_path / "work", _never)
    assert result["measured"] is False and "not a converted CTranslate2 model" in result["why"]


def test_gate_params_and_quantile() -> None:
    params = with_qe(Params(), Path("work/qe"), 0.15)
    assert params.quality.qe.enabled and params.quality.qe.dir == "work/qe"
    confidence = params.quality.filters.low_confidence
    assert confidence.enabled and confidence.percentile == 0.15 and confidence.min_rows == 1
    assert not with_qe(Params(), Path("q"), None).quality.filters.low_confidence.enabled
    assert _quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5 and _quantile([1.0, 2.0], 0.0) == 1.0
