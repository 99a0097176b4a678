"""`polyinstruct doctor` and the translate device choice. Here (no GPU) the doctor runs for real: a real
smoke translation on the CPU and a real training step, "no GPU" reported, exit 0. The GPU paths are
tested with the device calls (torch.cuda, ctranslate2's device count, the per-GPU translation) mocked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dataset_builder import devices, doctor
from dataset_builder.devices import CPU_UNIT_LIMIT, check_planned_work, resolve_device
from schemas.errors import PolyinstructError
from tests.conftest import run_cli


@pytest.mark.slow
def test_doctor_here_reports_no_gpu_and_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the no-GPU report does not apply")
    report_path = tmp_path / "doctor.json"
    code = run_cli(monkeypatch, "doctor", "--json", str(report_path))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "GPUs: no GPU" in out and "doctor: all checks passed; no GPU" in out
    assert "[ok] translate on cpu (smoke NLLB)" in out and "[ok] training step on cpu (fp32, smoke LM): loss" in out
    report = json.loads(report_path.read_text())
    assert report["torch_gpus"] == [] and report["ctranslate2_gpus"] == 0 and report["ok"] is True
    assert report["packages"]["torch"] and report["packages"]["ctranslate2"]


def _fake_gpus(monkeypatch: pytest.MonkeyPatch, torch_count: int, ct2_count: int) -> list[tuple[str, int]]:
    """torch and CTranslate2 device calls mocked; per-GPU translation and the training step recorded."""
    gpus = [{"index": i, "name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.1, "capability": "9.0",
             "bf16": True if i == 0 else None} for i in range(torch_count)]
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(doctor, "torch_gpus", lambda: gpus)
    monkeypatch.setattr(doctor, "cuda_device_count", lambda: ct2_count)

    def translate_once(model_dir: Path, dev: str, index: int = 0) -> str:
        calls.append((dev, index))
        return "Donnez trois conseils."

    def training_step(model_dir: Path, dev: str, bf16: bool) -> float:
        calls.append((f"train {dev} bf16={bf16}", 0))
        return 8.1

    monkeypatch.setattr(doctor, "translate_once", translate_once)
    monkeypatch.setattr(doctor, "training_step", training_step)
    return calls


@pytest.mark.slow
def test_doctor_checks_every_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_gpus(monkeypatch, torch_count=2, ct2_count=2)
    report = doctor.run_doctor(tmp_path)
    assert report.ok and report.summary() == "2 GPU(s) seen by torch, 2 by CTranslate2"
    assert calls == [("cpu", 0), ("cuda", 0), ("cuda", 1), ("train cuda:0 bf16=True", 0)]
    names = [c.name for c in report.checks]
    assert names[:2] == ["ctranslate2 sees the GPUs", "bf16"] and "translate on cuda:1 (smoke NLLB)" in names


@pytest.mark.slow
def test_doctor_fails_when_ctranslate2_misses_the_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_gpus(monkeypatch, torch_count=1, ct2_count=0)
    report = doctor.run_doctor(tmp_path, train=False)
    assert not report.ok and ("cuda", 0) not in calls
    failed = next(c for c in report.checks if not c.ok)
    assert "CTranslate2 0" in failed.detail and "CUDA 12" in failed.detail


def test_failed_device_call_is_a_failed_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> str:
        raise RuntimeError("CUDA failed with error out of memory\nmore")

    check = doctor._timed("translate on cuda:0", broken)
    assert not check.ok and check.detail == "RuntimeError: CUDA failed with error out of memory"


def test_auto_device_is_logged_every_time(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 0)
    assert resolve_device("auto") == "cpu"
    assert "translate: device cpu (auto: CTranslate2 sees no CUDA device" in capsys.readouterr().err
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 4)
    assert resolve_device("auto") == "cuda"
    assert "translate: device cuda (auto: CTranslate2 sees 4 CUDA device(s))" in capsys.readouterr().err
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 0)
    with pytest.raises(PolyinstructError, match="CTranslate2 sees no CUDA device"):
        resolve_device("cuda")


def test_large_cpu_work_needs_an_explicit_cpu() -> None:
    check_planned_work("auto", "cpu", CPU_UNIT_LIMIT)  # at the limit: runs
    check_planned_work("cpu", "cpu", 10 * CPU_UNIT_LIMIT)  # explicit: runs
    check_planned_work("auto", "cuda", 10 * CPU_UNIT_LIMIT)
    with pytest.raises(PolyinstructError, match="set translate.device: cpu") as err:
        check_planned_work("auto", "cpu", CPU_UNIT_LIMIT + 1)
    assert "\n" not in str(err.value) and "100,001 units" in str(err.value)


def test_engine_threads_follow_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    every_cpu = devices.available_cpus()
    assert every_cpu >= 1 and devices.cpu_threads() == every_cpu
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # e.g. one of two test workers on two cores
    assert devices.cpu_threads() == 1
    for ignored in ("0", "", "two", "-3"):
        monkeypatch.setenv("OMP_NUM_THREADS", ignored)
        assert devices.cpu_threads() == every_cpu, ignored
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert devices.available_cpus() == every_cpu  # worker processes (the segmentation pool) are not capped
