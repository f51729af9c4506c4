"""The benchmark runs, times and records (no timing assertions: targets live in bench/RESULTS.md)."""

import json

import pytest
import torch

from bench.__main__ import main
from tests.conftest import SHARED, needs_shared


@needs_shared
def test_bench_synth_records_json_and_table(tmp_path, fixture_path, capsys):
    out = tmp_path / "results.json"
    args = ["synth", "--generator", str(fixture_path), "--backend", "eager", "--precision", "fp32",
            "--iters", "5", "--warmup", "1", "--json", str(out)]
    assert main(args) == 0
    assert main(args[:2] + ["fixture128"] + args[3:]) == 0
    records = json.loads(out.read_text())
    assert len(records) == 2
    r = records[0]
    assert r["resolution"] == 128 and r["backend"] == "eager" and r["timer"] == "wall-clock"
    assert r["cuda_graph"] is False     # eager never replays a CUDA graph (it once said True here)
    assert 0 < r["min_ms"] <= r["median_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert r["images_per_s"] > 0 and r["machine"]["cores"] >= 1
    assert r["psnr_vs_eager_fp32_db"] is None and r["x_slower_than_fastest"] == 1
    assert records[1]["generator"] == "fixture128 (random weights)"
    assert "median ms" in capsys.readouterr().out


@pytest.mark.slow
@needs_shared
def test_bench_synth_compares_backends_in_one_run(tmp_path, fixture_path, capsys):
    from live.engines.factory import installed
    if not (installed("openvino") and installed("onnxruntime")):
        pytest.skip("needs the openvino and onnx extras")
    out = tmp_path / "results.json"
    assert main(["synth", "--generator", str(fixture_path), "--backend", "eager:fp32,openvino:fp32,onnxruntime",
                 "--iters", "10", "--warmup", "1", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [(r["backend"], r["precision"]) for r in records] == [("eager", "fp32"), ("openvino", "fp32"),
                                                                 ("onnxruntime", "fp32")]
    assert all(r["alternating_with"] == 3 and r["iters"] == 10 for r in records)
    assert min(r["x_slower_than_fastest"] for r in records) == 1
    assert records[1]["psnr_vs_eager_fp32_db"] > 100 and records[2]["psnr_vs_eager_fp32_db"] > 100
    assert records[1]["from_cache"] is False and records[1]["runtime_device"] == "CPU"
    assert "speed-up vs eager fp32" in capsys.readouterr().out


@needs_shared
def test_bench_pipeline_compares_backends_side_by_side(tmp_path, capsys):
    from live.engines.factory import installed
    if not installed("openvino"):
        pytest.skip("needs the openvino extra")
    out = tmp_path / "r.json"
    records = main(["pipeline", "--arch", "fixture128", "--source", str(SHARED / "media" / "lp_d0.mp4"),
                    "--frames", "4", "--size", "64x64", "--backend", "eager,openvino", "--threads", "1",
                    "--plot", str(tmp_path / "p.png"), "--json", str(out)])
    assert records == 0
    runs = json.loads(out.read_text())
    assert [r["backend"] for r in runs] == ["eager", "openvino"] and all(r["written"] == 4 for r in runs)
    assert "openvino engine on CPU" in runs[1]["engine"] and "1 thread," in runs[1]["engine"]
    assert "side by side" in capsys.readouterr().out


@pytest.mark.slow       # ~25 s quiet: in the slow step, to keep the default suite near 10 minutes
@needs_shared
def test_bench_directions_reports_every_parameter(tmp_path, fixture_path, small_directions, capsys):
    from models.direction_matrix import Directions
    a = small_directions
    still = Directions.load(a)                      # a matrix that moves nothing: slope 0, the same person
    still.weight, still.bias = still.weight * 0, still.bias * 0
    still.save(tmp_path / "still.pt")
    out = tmp_path / "results.json"
    assert main(["directions", "-g", str(fixture_path), "-d", str(a), str(tmp_path / "still.pt"), "--seeds", "3",
                 "--other-seeds", "1", "--floor-clips", str(SHARED / "media" / "lp_d0.mp4"), "--json", str(out)]) == 0
    r, s = json.loads(out.read_text())
    assert "side by side" in capsys.readouterr().out
    assert all(abs(row["slope"]) < 0.05 for row in s["editing"]) and s["identity_same_person_share"] == 1.0
    assert r["reenactment_error_mean"] > 0 and all("pearson" in row for row in r["editing"])
    # lp_d0 talks: jaw pairs 20-40 % of the range apart exist; one person, so CSIM stays near the top
    assert 0.9 < r["identity_floor_csim"]["jaw"] <= 1
    assert 0.5 < r["identity_csim_median"] <= 1 and 0 <= r["identity_same_person_share"] <= 1
    jaw = next(row for row in r["editing"] if row["param"] == "jaw")     # the trade-off, per parameter
    assert 0.5 < jaw["csim"] <= 1 and 0 <= jaw["same_person"] <= 1
    assert [row["param"] for row in r["editing"]][:4] == ["yaw", "pitch", "roll", "jaw"]
    assert len(r["editing"]) == 15 and r["reenactment_pairs"] >= 2
    assert set(r["reenactment_improvement"]) == {"pitch", "jaw", "yaw", "roll"}


@needs_shared
def test_bench_pipeline_table_json_and_plot(tmp_path, capsys):
    out = tmp_path / "r.json"
    plot = tmp_path / "lat.png"
    assert main(["pipeline", "--arch", "fixture128", "--source", str(SHARED / "media" / "lp_d0.mp4"),
                       "--frames", "6", "--size", "64x64", "--plot", str(plot), "--json", str(out)]) == 0
    record = json.loads(out.read_text())[-1]
    assert record["bench"] == "pipeline" and record["written"] == 6
    assert record["frames_in"] == record["written"] + record["dropped"]
    assert {"track", "render", "added"} <= set(record["stages"])
    import cv2
    assert cv2.imread(str(plot)).shape == (360, 900, 3)
    assert "added latency" in capsys.readouterr().out


@needs_shared
def test_bench_track_times_the_tracker_and_records(tmp_path, capsys):
    """It imported a module that no longer existed (live.face_params) and failed at once."""
    out = tmp_path / "r.json"
    assert main(["track", "--media", str(SHARED / "media"), "--clips", "lp_d6.mp4", "--frames", "12",
                 "--warmup", "2", "--json", str(out)]) == 0
    record = json.loads(out.read_text())[-1]
    assert record["bench"] == "track" and record["clips"][0]["frames"] == 12
    assert record["clips"][0]["found"] == 12 and record["median_ms"] > 0
    assert "tracking + parameters per frame" in capsys.readouterr().out


@needs_shared
def test_bench_identity_matches_dlib_on_the_portraits(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["identity", "--media", str(SHARED / "media"), "--frames-per-clip", "0", "--json", str(out)]) == 0
    r = json.loads(out.read_text())[-1]
    assert r["faces"] == 5 and r["decisions_identical"] == r["pairs"] == 10
    assert r["cosine_with_dlib"]["our_chip"]["lowest"] > 0.9999 and r["cosine_with_dlib"]["mesh_points"]["lowest"] > 0.98
    assert "identical to dlib's on 10 of 10 pairs" in capsys.readouterr().out


@pytest.mark.slow       # ~25 s quiet: in the slow step, to keep the default suite near 10 minutes
@needs_shared
def test_bench_avatar_reports_psnr_and_time(tmp_path, fixture_path, capsys):
    out = tmp_path / "r.json"
    assert main(["avatar", "-g", str(fixture_path), "--media", str(SHARED / "media"), "--photos", "lp_d0.mp4",
                 "--steps", "25", "--tune-steps", "6", "--codes", "2", "--json", str(out)]) == 0
    row = json.loads(out.read_text())[-1]["rows"][0]
    # The generator's mean face scores 10.2 dB on this photo; 25 inversion steps reach 15.9 dB and 6 tuning
    # steps 17.2 dB here (the full defaults reach 25-29 dB in 13 min, bench/RESULTS.md).
    assert row["photo"] == "lp_d0.mp4" and row["psnr_inversion"] > 14
    assert row["psnr_tuned"] > row["psnr_inversion"] + 0.5
    assert row["keep_min"] > 20 and row["seconds"] > 0
    assert "PSNR tuned" in capsys.readouterr().out


@needs_shared
@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU, python -m bench gpu runs the real items (minutes)")
def test_bench_gpu_without_a_gpu_skips_every_gpu_item_and_dry_runs_them(tmp_path):
    """Acceptance: exits 0; each GPU item skipped with its reason; the CPU dry run of every item passed, on a
    small carry set it made itself (the tracker runs here). CI also runs it in a GPU-like venv (.ci)."""
    from tests.conftest import FIXTURES
    out = tmp_path / "r"
    assert main(["gpu", "--out", str(out), "--carry", str(tmp_path / "no-carry"), "--media", str(SHARED / "media"),
                 "--fixtures", str(FIXTURES)]) == 0
    report = json.loads((out / "report.json").read_text())
    items = {r["item"]: r for r in report["items"]}
    for name in ("gpu tests", "synthesis", "avatar creation", "live loop", "gan training"):
        assert items[name]["status"] == "skipped" and "no CUDA device" in items[name]["reason"]
        assert items[f"cpu dry run: {name}"]["status"] == "passed", items[f"cpu dry run: {name}"]
    assert items["cpu dry run"]["status"] == "passed" and report["gpu"] is None
    assert items["cpu dry run: gpu tests"]["figures"]["tests"] >= 8      # every CUDA-only test was collected
    assert items["cpu dry run: live loop"]["figures"]["fixture avatar"]["written"] == 60
    assert items["cpu dry run: avatar creation"]["figures"]["fixture avatar"]["identity_limits"] is not None
    assert (out / "carry" / "MANIFEST.json").is_file() and (out / "avatar.pt").is_file()
    assert "no GPU figure produced" in (out / "report.md").read_text()


def test_directions_comparison_names_a_trained_matrix_by_its_loss_weights():
    """Two trained matrices differ by their loss weights: the side-by-side table must tell them apart (their
    identity_weight is a loss weight, not the closed-form fit's identity term)."""
    from bench.directions_quality import comparison_rows
    editing = [{"param": p, "slope": 0.1, "pearson": float("nan") if p == "yaw" else 0.2, "csim": 0.9,
                "same_person": 0.5, "reenactment_error": 1.0} for p in ("yaw", "pitch", "jaw")]
    base = {"editing": editing, "identity_csim_median": 0.9, "identity_same_person_share": 0.5,
            "reenactment_error_mean": 1.0}
    trained = {"method": "trained (reenactment, identity, perceptual)", "steps": 120, "lr": 0.002,
               "reenactment_weight": 1.0, "perceptual_weight": 0.5}
    rows = comparison_rows([{**base, "directions": "a.pt", "fit_info": {**trained, "identity_weight": 1.0}},
                            {**base, "directions": "b.pt", "fit_info": {**trained, "identity_weight": 0.0}},
                            {**base, "directions": "c.pt", "fit_info": {"method": "p_on_w", "identity_weight": 10.0}}])
    labels = sorted({r["matrix"] for r in rows})
    assert labels == ["a.pt (trained 120 steps, lr 0.002, weights 1.0/1.0/0.5)",
                      "b.pt (trained 120 steps, lr 0.002, weights 1.0/0.0/0.5)", "c.pt (p_on_w, identity weight 10.0)"]
    assert [r["pearson"] for r in rows if r["params"] == "all 15"] == [0.2] * 3     # NaN (never moved) left out


@needs_shared
def test_bench_warp_sheet_shows_each_moment_before_and_now(tmp_path, capsys):
    """A driver row of the clip's five moments, then per portrait the saved cells of an earlier run above this
    run's; the cells are the portrait driven to those moments (not the photo repeated)."""
    import cv2
    import numpy as np
    media = SHARED / "media"
    common = ["--media", str(media), "--portraits", "portrait_einstein.jpg", "--clips", "lp_d0.mp4"]
    first, cells = tmp_path / "first.jpg", tmp_path / "cells.npz"
    main(["warp-sheet", *common, "-o", str(first), "--save-cells", str(cells)])
    saved = np.load(cells)["portrait_einstein.jpg"]
    assert saved.shape == (5, 160, 160, 3)
    assert max(np.abs(saved[i].astype(int) - saved[0]).mean() for i in range(1, 5)) > 2     # the face moves
    sheet = tmp_path / "sheet.jpg"
    main(["warp-sheet", *common, "-o", str(sheet), "--before", str(cells)])
    image = cv2.imread(str(sheet))
    assert image.shape == (3 * 160, 5 * 160, 3)                        # driver, before, now
    before_row = cv2.cvtColor(image[160:320], cv2.COLOR_BGR2RGB).astype(int)
    below_label = slice(20, 160)
    assert np.abs(before_row[below_label, :160] - saved[0][below_label]).mean() < 6   # (JPEG) the saved cell
    assert "before from" in capsys.readouterr().out


def _write_before(path, kind):
    """A --before file that is not usable cells."""
    import numpy as np
    cells = np.zeros((5, 160, 160, 3), np.uint8)
    if kind == "text":
        path.write_bytes(b"not an npz")
    elif kind == "truncated":
        with open(path, "wb") as f:
            np.savez_compressed(f, **{"portrait_einstein.jpg": cells + 7})
        path.write_bytes(path.read_bytes()[:-200])
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, cells)
    elif kind == "pickled":
        np.savez(path, **{"portrait_einstein.jpg": np.array([{"a": 1}], dtype=object)})
    elif kind == "floats":
        np.savez(path, **{"portrait_einstein.jpg": cells.astype(np.float32)})
    elif kind == "smaller":
        np.savez(path, **{"portrait_einstein.jpg": cells[:, :128, :128]})
    elif kind == "other portrait":
        np.savez(path, **{"portrait_vermeer.jpg": cells})
    elif kind == "folder":
        path.mkdir()


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such file"), ("folder", "not a file"), ("text", "not cells saved by warp-sheet"),
    ("truncated", "not cells saved by warp-sheet"), ("npy", "not cells saved by warp-sheet"),
    ("pickled", "not cells saved by warp-sheet"), ("floats", r"float32 \(5, 160, 160, 3\)"),
    ("smaller", r"\(5, 128, 128, 3\), this run's uint8 \(5, 160, 160, 3\)"),
    ("other portrait", "none of --portraits")])
def test_bench_warp_sheet_refuses_other_before_files_at_once(tmp_path, monkeypatch, kind, message):
    """--before with a missing, damaged or foreign file, or cells another run could not show: a clear error before
    any clip is driven."""
    from bench import warp_sheet
    bad = tmp_path / "cells.npz"
    _write_before(bad, kind)

    def drive(clip):
        raise AssertionError(f"{clip} driven before --before was checked")
    monkeypatch.setattr(warp_sheet, "driver_moments", drive)
    with pytest.raises(SystemExit, match=message):
        main(["warp-sheet", "--media", str(SHARED / "media"), "--portraits", "portrait_einstein.jpg",
              "--clips", "lp_d0.mp4", "-o", str(tmp_path / "sheet.jpg"), "--before", str(bad)])
