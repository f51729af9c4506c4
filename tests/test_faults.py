"""Faults injected into the real loop mid-run (bench/fault_scenarios.py), and SIGKILLs while writing
(bench/kill_writes.py): the loop goes on or ends cleanly, nothing is lost but what the fault made
impossible, and the user is told once."""

from __future__ import annotations

import sys

import pytest

from bench import fault_scenarios as faults
from tests.conftest import SHARED, needs_shared

MEDIA = SHARED / "media"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the faults are injected with POSIX signals and limits")


@needs_shared
@pytest.mark.parametrize("raises", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["reads-fail", "read-raises"])
def test_a_lost_camera_keeps_the_output_alive_and_resumes_when_it_returns(raises):
    r = faults.camera_outage(MEDIA, outage_s=1.5, raise_on_read=raises, frames=150)
    report = r["report"]
    assert r["outage"]["ended"] and r["outage"]["frames"] > 0, r["outage"]
    assert r["during"].split()[0] != "0", "nothing reached the sinks while the camera was gone"
    after = int(r["after"].split()[0])
    faces_after = int(r["after"].split()[-1])
    assert after > 0 and faces_after > 0, "the loop did not resume tracking when the camera came back"
    assert r["reopen_attempts"] >= 2                       # it kept trying
    assert report.written == 150 and not report.cleanup_problems
    lost = [m for m in r["messages"] if "stopped delivering" in m]
    back = [m for m in r["messages"] if "is back after" in m]
    assert len(lost) == 1 and len(back) == 1, r["messages"]


@needs_shared
@pytest.mark.parametrize("started_ignoring_it", [False, True], ids=["sigint", "sigint-ignored-at-start"])
def test_ctrl_c_ends_the_run_promptly_while_the_camera_is_lost(started_ignoring_it):
    """Also where the process started with SIGINT ignored (a script's background job): before, the run never ended."""
    import faulthandler
    import signal
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if started_ignoring_it else None
    faulthandler.dump_traceback_later(120, exit=True)      # a run that never ends fails the suite, not hangs it
    try:
        r = faults.ctrl_c_during_outage(MEDIA, after_s=1.0)
    finally:
        faulthandler.cancel_dump_traceback_later()
        if started_ignoring_it:
            left = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, previous)
            assert left is signal.SIG_IGN, "the run leaves SIGINT as it found it"
    assert r["seconds_to_stop"] < 5.0, r["after"]
    assert not r["report"].cleanup_problems               # every thread stopped, every resource closed


@needs_shared
def test_a_disk_that_fills_stops_the_file_sink_only_and_keeps_what_was_written(tmp_path):
    r = faults.disk_fills(tmp_path / "cut.mp4", frames=150, limit_bytes=400_000)
    assert r["returncode"] == 0, r["messages"]
    assert r["stats"]["written"] == 150, "the other sink did not get every frame"
    failure = r["stats"]["sink_failures"]
    assert [f["sink"] for f in failure] == ["file"] and "failed after" in failure[0]["message"]
    assert 0 < r["playable"] <= failure[0]["after_frames"], "the part written before the fault does not play"
    assert sum("file sink failed" in line for line in r["messages"]) == 1, r["messages"]


@pytest.mark.slow
@needs_shared
def test_dev_full_is_one_clear_line_and_the_run_goes_on():
    r = faults.dev_full(frames=30)
    assert r["returncode"] == 0
    errors = [line for line in r["messages"] if " ERROR " in line]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "/dev/full" in errors[0], r["messages"]


@needs_shared
def test_a_sink_whose_device_goes_is_dropped_and_the_others_keep_running():
    r = faults.sink_raises(MEDIA, frames=60)
    report = r["report"]
    assert report.written == 60
    assert [f["sink"] for f in report.sink_failures] == ["vcam"] and report.sink_failures[0]["after_frames"] == 30
    assert r["vcam_closed"] == 1
    assert sum("vcam sink failed" in m for m in r["messages"]) == 1


@needs_shared
def test_every_resource_is_closed_once_even_when_a_sink_s_close_raises():
    r = faults.closes_in_order(MEDIA)
    report = r["report"]
    assert r["tracker_closes"] == 1 and not r["watch_running"] and report.identity.get("checks", 0) > 0
    assert any("closing the vcam sink raised: device busy" in p for p in report.cleanup_problems)


@needs_shared
def test_a_thread_that_does_not_stop_is_reported_and_its_tracker_is_not_closed_under_it():
    r = faults.tracker_hangs(MEDIA, join_timeout_s=1.0)
    assert any("motion thread did not stop" in p for p in r["problems"]), r["problems"]
    assert any("face tracker left open" in p for p in r["problems"]), r["problems"]
    assert r["tracker_closes"] == 0


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize("name", ["avatar create", "directions fit", "engine cache", "config init"])
def test_sigkill_at_20_random_moments_never_leaves_a_broken_file(name, tmp_path):
    from bench.kill_writes import kill_at_random, targets
    target = next(t for t in targets(MEDIA, SHARED / "fixtures" / "face128.pt") if t.name == name)
    r = kill_at_random(target, tmp_path, kills=20, seed=1)
    assert not r["broken_files"], r["broken_files"]
    assert not r["next_run_failed"], r["next_run_failed"]
    assert r["temporary_files_left"] == 0
