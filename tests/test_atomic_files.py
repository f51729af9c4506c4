"""Every file written for the user is whole or absent: models/atomic_files.py, and the writers that use it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from models.atomic_files import (
    atomic_path,
    clean_stale_partials,
    is_partial,
    save_npz_atomic,
    temporary_name,
    write_text_atomic,
)

ROOT = Path(__file__).resolve().parents[1]


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if is_partial(p)]


def test_a_write_lands_whole_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "deep" / "config.yaml"
    write_text_atomic(target, "a: 1\n")
    write_text_atomic(target, "a: 2\n")
    assert target.read_text() == "a: 2\n"
    assert _partials(target.parent) == []


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "avatar.pt"
    target.write_bytes(b"old and good")
    with pytest.raises(OSError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of the new")
            raise OSError(28, "disk full")
    assert target.read_bytes() == b"old and good"
    assert _partials(tmp_path) == []


def test_each_writer_has_its_own_temporary_name_keeping_the_suffix(tmp_path):
    a, b = temporary_name(tmp_path / "e.onnx"), temporary_name(tmp_path / "e.onnx")
    assert a != b and a.suffix == ".onnx" and is_partial(a) and str(os.getpid()) in a.name
    assert not is_partial(tmp_path / "e.onnx")


def test_companion_files_are_renamed_before_the_file_that_is_looked_for(tmp_path):
    xml = tmp_path / "synthesis.xml"
    with atomic_path(xml, companions=(".bin",)) as tmp:
        tmp.write_text("<xml/>")
        tmp.with_suffix(".bin").write_bytes(b"weights")
    assert xml.read_text() == "<xml/>" and xml.with_suffix(".bin").read_bytes() == b"weights"
    assert _partials(tmp_path) == []


def test_npz_is_written_under_its_exact_name(tmp_path):
    save_npz_atomic(tmp_path / "cache.npz", compressed=False, x=np.arange(3))
    save_npz_atomic(tmp_path / "profile.data", y=np.ones(2))       # numpy would have added .npz to a name
    assert np.load(tmp_path / "cache.npz")["x"].tolist() == [0, 1, 2]
    assert np.load(tmp_path / "profile.data")["y"].tolist() == [1, 1]


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from models.atomic_files import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"x" * 100000)
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
""")


def _start_writer(target: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def test_a_writer_killed_mid_write_leaves_no_file_under_the_name_and_its_leftover_is_cleaned(tmp_path):
    target = tmp_path / "directions.pt"
    proc = _start_writer(target)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not target.exists()
    leftovers = _partials(tmp_path)
    assert len(leftovers) == 1 and str(proc.pid) in leftovers[0].name
    # the next writer of the same target removes it (its writer is gone) and writes whole
    write_text_atomic(target, "whole")
    assert target.read_text() == "whole" and _partials(tmp_path) == []


def test_a_running_writer_s_temporary_file_is_never_cleaned(tmp_path):
    target = tmp_path / "engine.onnx"
    proc = _start_writer(target)
    try:
        assert clean_stale_partials(tmp_path) == []
        assert len(_partials(tmp_path)) == 1
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert len(clean_stale_partials(tmp_path)) == 1


def test_every_start_of_live_cleans_the_user_dirs(tmp_path):
    """`live` at start removes what killed writers left in its user dirs (here under $LIVE_HOME)."""
    cache = tmp_path / "cache" / "engines"
    proc = _start_writer(cache / "synthesis.onnx")
    proc.kill()
    proc.wait(timeout=30)
    assert len(_partials(cache)) == 1
    env = {**os.environ, "LIVE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "live", "config", "show"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _partials(cache) == []


def test_a_profile_name_is_checked_before_it_becomes_a_file_name(tmp_path):
    from calibration.profile import CalibrationProfile, ProfileError
    profile = CalibrationProfile(name="../../outside", neutral=np.zeros(15), spread=np.zeros(15),
                                 template=np.zeros((478, 3)), frames=1)
    with pytest.raises(ProfileError, match="cannot be a file name"):
        profile.save(tmp_path / "profiles")
    assert not (tmp_path / "outside.yaml").exists() and not any(tmp_path.rglob("*.yaml"))
    with pytest.raises(ProfileError, match="cannot be a file name"):
        CalibrationProfile.load(".hidden", tmp_path)
    profile.name = "office-2"
    path = profile.save(tmp_path / "profiles")
    assert CalibrationProfile.load("office-2", tmp_path / "profiles").frames == 1 and path.name == "office-2.yaml"


def test_a_damaged_benchmark_history_is_kept_aside_not_replaced(tmp_path, capsys):
    from bench.records import append_json
    history = tmp_path / "results.json"
    history.write_text('[{"bench": "pipeline", "fps": 30}, {"bench": "quality"')      # cut mid-record
    append_json(history, {"bench": "warp"})
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("results.json.damaged-")]
    assert len(kept) == 1 and kept[0].read_text().startswith('[{"bench": "pipeline"')
    assert [r["bench"] for r in json.loads(history.read_text())] == ["warp"]
    assert "kept it as" in capsys.readouterr().out
    append_json(history, {"bench": "faults"})                   # a good history is appended to
    assert [r["bench"] for r in json.loads(history.read_text())] == ["warp", "faults"]
