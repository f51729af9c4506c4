"""Run statistics in bounded memory: histogram quantiles against NumPy's, thinning memory traces."""

import numpy as np
import pytest

from live.pipeline.latency import LatencyHistogram, LatencyStats
from live.pipeline.run_report import FrameLog, RunReport, StageTimes


def test_histogram_quantiles_match_numpy_within_a_quarter_percent():
    rng = np.random.default_rng(0)
    samples = np.concatenate([rng.lognormal(np.log(130), 0.2, 50_000), rng.uniform(0.01, 5, 5_000), [900.0]])
    h = LatencyHistogram(recent=100)
    for x in samples:
        h.add(x)
    exact = LatencyStats.from_ms(samples)
    s = h.stats()
    assert s.n == exact.n and s.min_ms == exact.min_ms and s.max_ms == exact.max_ms
    assert s.mean_ms == pytest.approx(exact.mean_ms, rel=1e-9)
    assert s.median_ms == pytest.approx(exact.median_ms, rel=2.5e-3)
    assert s.p99_ms == pytest.approx(exact.p99_ms, rel=2.5e-3)
    assert len(h.recent) == 100 and list(h.recent)[-1] == 900.0


def test_histogram_memory_does_not_grow_and_bad_samples_are_skipped():
    h = LatencyHistogram()
    size = h.counts.nbytes
    for x in np.random.default_rng(1).exponential(20, 200_000):
        h.add(x)
    h.add(float("nan"))
    h.add(1e9)  # beyond the last bin: counted there, max stays exact
    assert h.counts.nbytes == size < 64_000 and len(h.recent) == 1000
    assert h.n == 200_001 and h.max == 1e9 and h.quantile(1.0) == pytest.approx(1e6, rel=5e-3)
    with pytest.raises(ValueError, match="no latency samples"):
        LatencyHistogram().stats()


def test_stage_times_summary_and_recent_median():
    times = StageTimes()
    for k in range(500):
        t = float(k)
        times.add({"capture": t, "track_start": t, "track": t + 0.01, "render_start": t + 0.01,
                   "render": t + 0.05, "sink_start": t + 0.05, "sink": t + 0.06 + k * 1e-5})
    s = times.summary()
    assert set(s) == {"track", "render", "sinks", "added"}
    assert s["track"]["median_ms"] == pytest.approx(10, rel=3e-3) and s["added"]["n"] == 500
    assert times.recent_median("added", 10) == pytest.approx(60 + 4.945, rel=1e-3)


def test_memory_trace_is_thinned_not_grown(monkeypatch):
    monkeypatch.setattr("live.pipeline.run_report.resident_mb", lambda: 800.0)
    report = RunReport()
    report.MEMORY_SAMPLES = 64
    for k in range(1, 100_001):
        report.written = k
        report.sample_memory(k / 60)
    times = np.array([t for t, *_ in report.memory])
    assert 32 <= len(report.memory) < 64 and report.memory_every == 100 * 2 ** 4  # 100 000 frames / 1600 = 63
    assert np.allclose(np.diff(times), 1600 / 60, atol=0.02)  # evenly spaced over the whole run
    assert times[0] == pytest.approx(1 / 60, abs=0.01) and times[-1] > 1400


def test_frame_log_round_trip():
    log = FrameLog()
    log.append(3, 0.5, 120.25, True)
    log.append(7, 0.9, 98.0, False)
    assert len(log) == 2 and log.rows() == [(3, 0.5, 120.25, True), (7, 0.9, 98.0, False)]
    assert RunReport(frame_log=log).per_frame == log.rows() and RunReport().per_frame == []


def test_memory_trace_tells_the_frame_log_from_the_loop(monkeypatch):
    """A benchmark's per-frame log grows by design (32 bytes a frame); the trace records its size beside the
    resident size, so an hour's run shows the loop's own growth."""
    monkeypatch.setattr("live.pipeline.run_report.resident_mb", lambda: 800.0)
    logged, bare = RunReport(frame_log=FrameLog()), RunReport()
    for k in range(1, 50_002):
        for report in (logged, bare):
            report.written = k
            if report.frame_log is not None:
                report.frame_log.append(k, k / 30, 20.0, True)
            report.sample_memory(k / 30)
    assert all(log_mb == 0 for *_, log_mb in bare.memory)
    t, rss, log_mb = logged.memory[-1]
    assert rss == 800.0 and 32 * 50_000 / 2**20 <= log_mb < 1.15 * 32 * 50_001 / 2**20
