"""Fitting directions: the closed forms recover known directions; sampling caches and resumes."""

import numpy as np
import pytest

from live.directions.fit import closed_form_fit, parameter_ranges
from live.directions.sampling import SampleSet, collect_samples
from tests.conftest import needs_shared


def _synthetic(n=3000, s_dim=64, seed=0):
    """W codes in which parameter k moves along a known direction, plus unrelated variation."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 15)) * np.linspace(1, 10, 15)
    dirs = rng.normal(size=(15, s_dim))
    w = p @ dirs / 10 + rng.normal(size=(n, s_dim)) * 0.3
    return SampleSet(np.arange(n), w.astype(np.float32), p, np.zeros((n, 2))), dirs


@pytest.mark.parametrize("method", ["w_on_p", "p_on_w"])
def test_closed_forms_recover_a_known_linear_map(method):
    samples, dirs = _synthetic()
    d, info = closed_form_fit(samples, layers=2, method=method, epsilon=1e-6)
    assert d.weight.shape == (2 * 64, 15) and info["held_out_r2"] > 0.5
    span = (d.param_range[:, 1] - d.param_range[:, 0]).numpy()
    # One normalised unit of p_k is span_k / 12 raw units -> W moves by dirs_k / 10 * span_k / 12.
    expected = dirs.T / 10 * span / 12
    got = d.weight[:64].numpy()
    cos = (got * expected).sum(0) / np.linalg.norm(got, axis=0) / np.linalg.norm(expected, axis=0)
    assert cos.min() > 0.95
    assert np.allclose(np.linalg.norm(got, axis=0), np.linalg.norm(expected, axis=0), rtol=0.15)


def test_ranges_and_too_few_faces():
    samples, _ = _synthetic(n=200)
    r = parameter_ranges(samples.params)
    assert r.shape == (15, 2) and (r[:, 1] > r[:, 0]).all()
    samples.params[5:] = np.nan
    with pytest.raises(ValueError, match="only 5 samples with a face"):
        closed_form_fit(samples)


@needs_shared
def test_sampling_tracks_generated_faces_and_resumes(tmp_path, face128):
    cache = tmp_path / "samples.npz"
    first = collect_samples(face128, 8, 0.7, cache, batch=4, progress=False)
    assert first.found.sum() >= 7  # the fixture's faces are found (16 of 16 in its README)
    more = collect_samples(face128, 12, 0.7, cache, batch=4, progress=False)
    assert np.array_equal(more.w[:8], first.w) and np.allclose(more.params[:8], first.params, equal_nan=True)
    assert len(SampleSet.load(cache).seeds) == 12


@needs_shared
def test_cli_fit_writes_a_loadable_matrix_for_this_generator(tmp_path, fixture_path, face128):
    from live.cli import main
    from models.checkpoint import weights_hash
    from models.direction_matrix import Directions
    out = tmp_path / "A.pt"
    assert main(["directions", "fit", "-g", str(fixture_path), "-o", str(out), "--samples", "24"]) == 0
    d = Directions.load(out)
    assert d.weight.shape == (8 * 512, 15) and d.generator_sha256 == weights_hash(face128)
    assert d.fit_info["method"] == "p_on_w" and d.fit_info["with_face"] >= 20
    d.check_generator(weights_hash(face128))
    assert main(["directions", "fit", "-g", str(fixture_path), "-o", str(out), "--layers", "13"]) == 2
