"""`python -m bench gpu`'s own machinery, on the CPU: budgets that kill whole process groups, a deadline that
still reports, key GPU tests that must not be skipped where a GPU is, and a report for every kind of result."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench import gpu_check, gpu_items, gpu_live_loop
from tests.conftest import SHARED, needs_shared


def test_an_item_over_its_budget_is_killed_with_everything_it_started(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    script = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
              f"time.sleep(300)']); open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(300)")
    start = time.perf_counter()
    assert gpu_check.run_process_group([sys.executable, "-c", script], 3.0, tmp_path / "log") is None
    assert time.perf_counter() - start < 60
    grandchild = int(pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the item's own child process outlived the budget")
    assert gpu_check.run_process_group([sys.executable, "-c", "print('ok')"], 60, tmp_path / "log") == 0
    assert (tmp_path / "log").read_text().strip() == "ok"


def test_past_the_deadline_items_are_reported_not_run(tmp_path):
    args = gpu_check.argparse.Namespace(deadline=5.0, out=str(tmp_path))
    result = gpu_check._timed(gpu_check.ITEMS[0], args, False, time.perf_counter() - 10)
    assert result["status"] == "failed" and "deadline of 5 s was reached" in result["traceback"]


def test_the_report_is_written_for_every_kind_of_result(tmp_path):
    """A failed item without a traceback crashed the report writer (IndexError), so no report.md was left."""
    report = {"gpu": "NVIDIA Test", "machine": {"cpu": "x", "torch": "2.11", "cuda": "13.0"}, "deadline_s": 470,
              "items": [{"item": "a", "status": "passed", "seconds": 1.0, "figures": {"fps": 30}},
                        {"item": "b", "status": "failed", "seconds": 2.0},
                        {"item": "c", "status": "failed", "seconds": 2.0, "traceback": "",
                         "figures": {"fps": 3}},
                        {"item": "d", "status": "skipped", "seconds": 0.0, "reason": "no | pipes"}]}
    gpu_check.write_report(tmp_path, report, time.perf_counter())
    md = (tmp_path / "report.md").read_text()
    assert "| b | failed | 2.0 | failed, no reason recorded |" in md and "## c: failed" in md
    assert "Figures before the failure" in md and "no / pipes" in md
    assert json.loads((tmp_path / "report.json").read_text())["items"][1]["item"] == "b"


def _junit(path: Path, cases: list[tuple[str, str]]) -> None:
    rows = []
    for name, status in cases:
        module, test = name.split("::")
        inner = {"skipped": '<skipped message="needs CuPy and a CUDA GPU"/>', "failed": "<failure>boom</failure>",
                 "passed": ""}[status]
        rows.append(f'<testcase classname="tests.{module[:-3]}" name="{test}">{inner}</testcase>')
    path.write_text(f'<testsuites><testsuite>{"".join(rows)}</testsuite></testsuites>')


@pytest.mark.parametrize("gpu, skipped, fails", [(True, [], False), (True, [4], True), (False, [4], False)])
def test_on_a_gpu_the_key_tests_must_pass_not_skip(tmp_path, monkeypatch, gpu, skipped, fails):
    """With a GPU, a key test that skips (CuPy or a fixture missing there) fails the item: before, 8 skipped
    tests were reported as passed."""
    import subprocess

    import torch
    keys = list(gpu_items.KEY_TESTS)
    cases = [(k, "skipped" if i in skipped else "passed") for i, k in enumerate(keys)]

    def fake_pytest(cmd, **kwargs):
        assert "--continue-on-collection-errors" in cmd and all(f.endswith(".py") for f in cmd[-4:])
        xml = next(a for a in cmd if a.startswith("--junitxml=")).split("=", 1)[1]
        _junit(Path(xml), cases)
        return subprocess.CompletedProcess(cmd, 0, "", "")
    monkeypatch.setattr(gpu_items.subprocess, "run", fake_pytest)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    ctx = gpu_check.argparse.Namespace(out=str(tmp_path))
    if fails:
        with pytest.raises(gpu_items.ItemFailed, match="key GPU tests did not run.*test_cupy_equals_reference"):
            gpu_items.gpu_tests(ctx)
    else:
        assert gpu_items.gpu_tests(ctx)["tests"] == len(keys)


@needs_shared
def test_the_frame_check_reports_blank_noise_and_another_face():
    """The live-loop item's content check (bench/gpu_items.py) fails what a broken GPU path delivers: each sampled
    frame is compared with what a reference draws for the change it was rendered with."""
    import cv2

    from live.pipeline.run_report import FrameSamples

    def portrait(name: str) -> np.ndarray:
        image = cv2.cvtColor(cv2.imread(str(SHARED / "media" / name)), cv2.COLOR_BGR2RGB)
        return cv2.resize(image, (128, 96), interpolation=cv2.INTER_AREA)
    drawn = {0.0: portrait("portrait_vermeer.jpg"), 1.0: portrait("portrait_mona_lisa.jpg")}

    def reference(delta):
        return drawn[float(delta[0])]

    def samples(*frames):
        s = FrameSamples(every=1)
        for n, (frame, change) in enumerate(frames, start=1):
            s.offer(n, frame, np.full(15, change, np.float32))
        return s
    good = samples((drawn[0.0], 0.0), (drawn[1.0], 1.0))
    assert gpu_live_loop.frame_problems(good, reference, 2, 2) == []
    noisy = np.clip(drawn[1.0].astype(int) + np.random.default_rng(0).integers(-3, 4, drawn[1.0].shape), 0, 255)
    assert gpu_live_loop.frame_problems(samples((noisy.astype(np.uint8), 1.0)), reference, 1, 1) == []   # rounding noise
    black = np.zeros_like(drawn[0.0])
    noise = np.random.default_rng(0).integers(0, 256, drawn[0.0].shape).astype(np.uint8)
    assert "blank" in gpu_live_loop.frame_problems(samples((black, 0.0)), reference, 1, 1)[0]
    assert "from what the CPU draws" in gpu_live_loop.frame_problems(samples((noise, 0.0)), reference, 1, 1)[0]
    stale = gpu_live_loop.frame_problems(samples((drawn[0.0], 0.0), (drawn[0.0], 1.0)), reference, 2, 2)
    assert len(stale) == 1 and stale[0].startswith("frame 2 is")          # the picture did not follow the change
    assert "2 frames delivered of 3" in gpu_live_loop.frame_problems(good, reference, 2, 3)[0]


def test_a_synthesis_variant_under_its_psnr_bound_fails_the_item():
    records = [{"backend": "eager", "precision": "fp32", "psnr_vs_eager_fp32_db": None},
               {"backend": "compiled", "precision": "fp16", "psnr_vs_eager_fp32_db": 38.0},
               {"backend": "compiled", "precision": "bf16", "psnr_vs_eager_fp32_db": 52.0}]
    problems = gpu_items.psnr_problems("fixture", records)
    assert problems == ["fixture compiled fp16: PSNR 38.0 dB against eager fp32, under its bound of 40.0 dB"]
    assert gpu_items.psnr_problems("vox256", records) == []      # random weights: recorded, not bounded
