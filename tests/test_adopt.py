"""`live directions adopt`: another parameter space's matrix made drivable by live's tracker."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from live.directions.adopt import AdoptOptions, adopt
from models.direction_matrix import DECA_NAMES, Directions, DirectionsError
from models.face.landmarks import PARAM_NAMES
from tests.conftest import FIXTURES, needs_shared

pytestmark = needs_shared
P = len(PARAM_NAMES)
RANGE = np.array([[-6.0, 6.0]] * P)          # normalised units = raw units: the responses read directly


def _readout(G, seed=0):
    """A linear 'tracker' of the fixture's W (known answer): p = B w of the first W+ layer, and the matrix
    A = S B^T (B S B^T)^-1 whose edits it reads back exactly (S: W's covariance)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = G.mapping(torch.randn(4000, G.style_dim, generator=g)).double()
    S = torch.cov((w - w.mean(0)).T)
    B = torch.randn(P, G.style_dim, generator=g, dtype=torch.float64) / G.style_dim ** 0.5
    a = S @ B.T @ torch.linalg.inv(B @ S @ B.T)
    measure = lambda w_plus: (w_plus[:, 0].double() @ B.T).numpy()   # noqa: E731
    return measure, torch.tile(a, (8, 1)).float()


def _responses(G, directions, measure, seeds=range(5_000_000, 5_000_040), size=1.5):
    """R[i, k]: change of parameter i per unit of k requested, on held-out codes."""
    from live.directions.sampling import codes_for_seeds
    w_plus = G.broadcast(codes_for_seeds(G, seeds, 0.7))
    base = measure(w_plus)
    R = np.zeros((P, directions.n_params))
    for k in range(directions.n_params):
        delta = torch.zeros(len(w_plus), directions.n_params)
        delta[:, k] = size
        R[:, k] = ((measure(directions.apply(w_plus, directions.shift(delta))) - base) / size).mean(0)
    return R


def test_adoption_recovers_a_known_remixed_matrix(face128):
    """Our A, expressed in a random invertible re-mix of parameter space (a stand-in for DECA's), adopted
    back: every parameter's response within 10 % of the original's, on codes the fit never saw."""
    measure, weight = _readout(face128)
    original = Directions(weight=weight, bias=torch.zeros(weight.shape[0]), param_range=torch.from_numpy(RANGE).float(),
                          shift_dim=face128.style_dim)
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(P, P)))
    remix = q @ np.diag(rng.uniform(0.5, 2.0, P))                      # dq = remix @ dp
    other = Directions(weight=weight @ torch.from_numpy(np.linalg.inv(remix)).float(), bias=torch.zeros(weight.shape[0]),
                       param_range=torch.from_numpy(RANGE).float(), shift_dim=face128.style_dim, param_names=DECA_NAMES)
    assert not other.in_live_space
    adopted, info = adopt(face128, other, measure, AdoptOptions(samples=256), param_range=RANGE)
    assert adopted.in_live_space and min(info["fit_r2"].values()) > 0.99
    before, after = _responses(face128, original, measure), _responses(face128, adopted, measure)
    assert np.abs(np.diag(after) / np.diag(before) - 1).max() < 0.10
    assert np.abs(after - before).max() < 0.10


@pytest.mark.slow   # 23 s: in the slow step, to keep the default suite well under 10 minutes
def test_adopt_command_on_the_fixture_and_bad_matrices(tmp_path, fixture_path, small_directions, capsys):
    """Rendering and tracking for real: the command writes a matrix live runs with, and says what it reached."""
    from live.cli import main
    ours = Directions.load(small_directions)
    paper_like = tmp_path / "paper.pt"
    d = ours.to_file_dict()
    for key in ("param_names", "param_range", "generator_sha256", "face_model_sha256", "fit_info"):
        d.pop(key)                                                       # as the paper's own file: none of ours
    torch.save(d, paper_like)
    assert Directions.load(paper_like, require_ours=False).param_names == DECA_NAMES
    out = tmp_path / "adopted.pt"
    assert main(["directions", "adopt", "-g", str(fixture_path), "-d", str(paper_like), "-o", str(out),
                 "--samples", "32"]) == 0
    printed = capsys.readouterr().out
    assert "R^2 of each of our parameters" in printed and "jaw" in printed
    adopted = Directions.load(out)
    assert adopted.in_live_space and set(adopted.fit_info["fit_r2"]) == set(PARAM_NAMES)
    # live runs the adopted matrix, and refuses the paper-space one with the command that fixes it
    assert main(["run", "-g", str(fixture_path), "-d", str(out), "--frames", "2", "--sink", "null", "--size", "32x32"]) == 0
    assert main(["run", "-g", str(fixture_path), "-d", str(paper_like), "--frames", "2", "--sink", "null"]) == 2
    assert "live directions adopt" in capsys.readouterr().err
    assert main(["directions", "adopt", "-g", str(fixture_path), "-d", str(small_directions), "-o",
                 str(tmp_path / "x.pt")]) == 2                            # already ours
    with pytest.raises(DirectionsError, match="Adopt it for live.s parameters"):
        Directions.load(FIXTURES / "paper_a_matrix_format.pt", require_ours=False).check_live_space("A_matrix.pt")
