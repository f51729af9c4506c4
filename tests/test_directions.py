"""The direction matrix: the paper's file format and its golden outputs, our metadata, errors."""

import numpy as np
import pytest
import torch

from models.direction_matrix import Directions, DirectionsError, reenact
from tests.conftest import FIXTURES, needs_shared


@needs_shared
def test_papers_format_reproduces_golden_delta_w():
    d = Directions.load(FIXTURES / "paper_a_matrix_format.pt", require_ours=False)
    golden = np.load(FIXTURES / "paper_a_matrix_golden.npz")
    dw = d.shift(torch.from_numpy(golden["delta_p"]))
    assert dw.shape == (3, 8, 512)
    assert (dw - torch.from_numpy(golden["delta_w"])).abs().max() < 1e-5
    # With the paper's file the range is [-6, 6]: normalising is the identity.
    p = torch.randn(2, 15)
    assert torch.allclose(d.normalise_delta(p), p)


@needs_shared
def test_papers_file_needs_our_ranges_by_default():
    with pytest.raises(DirectionsError, match="without parameter ranges"):
        Directions.load(FIXTURES / "paper_a_matrix_format.pt")


def _ours():
    torch.manual_seed(0)
    return Directions(weight=torch.randn(4096, 15) * 0.01, bias=torch.zeros(4096),
                      param_range=torch.stack([-torch.arange(1, 16.0), torch.arange(1, 16.0)], 1),
                      generator_sha256="ab" * 32, fit_info={"samples": 10})


def test_roundtrip_keeps_the_papers_keys_readable(tmp_path):
    d = _ours()
    path = d.save(tmp_path / "A.pt")
    raw = torch.load(path, weights_only=True)
    assert {"learned_directions", "shift_scale", "w_plus", "num_layers_shift", "shift_dim", "A_matrix"} <= set(raw)
    assert raw["A_matrix"]["linear.weight"].shape == (4096, 15)
    back = Directions.load(path)
    assert torch.equal(back.weight, d.weight) and back.generator_sha256 == d.generator_sha256
    assert back.fit_info == {"samples": 10}


def test_reenact_normalises_by_range_and_is_zero_for_no_change():
    d = _ours()
    p = torch.randn(15)
    assert reenact(d, p, p).abs().max() == 0
    delta = torch.zeros(15)
    delta[0] = 1.0  # range [-1, 1] -> 12 normalised units for 1 raw unit
    dw = reenact(d, torch.zeros(15), delta)
    assert torch.allclose(dw.reshape(-1), d.weight[:, 0] * 6.0 * 2 / 2)


def test_apply_shifts_only_the_first_layers():
    d = _ours()
    w = torch.zeros(1, 12, 512)
    out = d.apply(w, torch.ones(1, 8, 512))
    assert out[:, :8].eq(1).all() and out[:, 8:].eq(0).all() and w.eq(0).all()


def test_bad_files(tmp_path):
    torch.save({"A_matrix": {}}, tmp_path / "partial.pt")
    with pytest.raises(DirectionsError, match="not a direction matrix"):
        Directions.load(tmp_path / "partial.pt")
    data = _ours().save(tmp_path / "A.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(DirectionsError, match="truncated"):
        Directions.load(tmp_path / "cut.pt")
    bad = _ours().to_file_dict()
    bad["A_matrix"]["linear.weight"] = torch.zeros(100, 15)
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(DirectionsError, match=r"linear.weight must be \[4096, 15\]"):
        Directions.load(tmp_path / "shape.pt")
    with pytest.raises(DirectionsError, match="fitted for generator abab"):
        _ours().check_generator("cd" * 32)
