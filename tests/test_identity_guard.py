"""Keeping the avatar the avatar: identity limits, the guard in the loop, the identity term of the fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from live.avatar.identity_limits import MAX_NORM, identity_limits, soft_limit
from live.directions.fit import closed_form_fit
from live.directions.sampling import SampleSet
from models.direction_matrix import Directions
from tests.conftest import SHARED, needs_shared


def test_soft_limit_eases_into_the_limit():
    limits = np.array([[-2.0, 1.0], [0.0, 3.0], [-1.0, 1.0]])
    small = soft_limit(np.array([0.1, 0.1, -0.1]), limits)
    assert np.allclose(small, [0.1, 0.1, -0.1], rtol=0.01)            # small changes pass
    large = soft_limit(np.array([50.0, -50.0, -50.0]), limits)
    assert np.allclose(large, [1.0, 0.0, -1.0], atol=1e-6)              # large ones level off; a 0 limit holds
    mid = soft_limit(np.array([1.0, 0.0, 0.0]), limits)[0]
    assert 0.7 < mid < 1.0                                               # eased, not cut


def test_identity_term_turns_directions_away_from_what_changes_the_face():
    """Synthetic samples: p and the identity embedding are linear in W, and overlap. With the identity
    term, the fitted directions still move p (slope near 1) but change the embedding much less."""
    rng = np.random.default_rng(0)
    n, S, P, D = 3000, 24, 15, 8
    w = rng.normal(size=(n, S))
    B = rng.normal(size=(P, S))
    E = 0.5 * B[:D] + rng.normal(size=(D, S))                        # identity shares directions with p
    params = w @ B.T + 0.01 * rng.normal(size=(n, P))
    emb = w @ E.T
    samples = SampleSet(np.arange(n), w.astype(np.float32), params, np.zeros((n, 1)))
    plain, _ = closed_form_fit(samples, layers=1)
    kept, info = closed_form_fit(samples, layers=1, embeddings=emb, identity_weight=10.0)
    span = np.percentile(params, 99, 0) - np.percentile(params, 1, 0)

    def response(d):  # achieved change of p (normalised units) and of the embedding per unit requested
        a = d.weight.numpy().astype(np.float64)
        return (B @ a) * (2 * 6.0 / span)[:, None], E @ a
    p_plain, e_plain = response(plain)
    p_kept, e_kept = response(kept)
    assert np.abs(np.diag(p_plain) - 1).max() < 0.1 and np.abs(np.diag(p_kept) - 1).max() < 0.25
    assert np.linalg.norm(e_kept) < 0.5 * np.linalg.norm(e_plain)


@pytest.mark.slow   # about 30 s on 2 cores: measures each direction's identity limit on the generator
@needs_shared
def test_limits_follow_how_far_a_direction_can_go(face128, fixture_path):
    """A direction that does nothing may go all the way; a violent one only a step or two."""
    P = 15
    w_s = face128.broadcast(face128.mapping(torch.randn(1, face128.style_dim, generator=torch.Generator().manual_seed(3)),
                                            0.7))[0]
    weight = torch.zeros(8 * face128.style_dim, P)
    g = torch.Generator().manual_seed(0)
    weight[:, 1] = torch.randn(8 * face128.style_dim, generator=g) * 0.6     # pitch: a violent random direction
    d = Directions(weight=weight, bias=torch.zeros(weight.shape[0]), param_range=torch.tensor([[-6.0, 6.0]] * P),
                   shift_dim=face128.style_dim)
    limits = identity_limits(face128, w_s, d)
    assert limits.shape == (P, 2) and (limits[:, 0] <= 0).all() and (limits[:, 1] >= 0).all()
    assert limits[0, 0] == -MAX_NORM and limits[0, 1] == MAX_NORM              # yaw's direction is zero
    assert -3.0 <= limits[1, 0] and limits[1, 1] <= 3.0                         # pitch turns it into noise fast


def _write_exact_track(path, params: np.ndarray, fps: float = 25.0):
    """A face-parameter track (`live track`'s CSV) with every value written in full: a rounded one would move a
    parameter the avatar may not move at all (a 0 limit) by 1e-4, and the guard would rightly hold that back."""
    from live.tracking.track_file import CSV_COLUMNS
    rows = [[str(k), repr(k / fps), "1", "1.0"] + [repr(float(v)) for v in row] for k, row in enumerate(params)]
    path.write_text("\n".join(",".join(r) for r in [list(CSV_COLUMNS)] + rows) + "\n")
    return path


@needs_shared
@pytest.mark.slow   # ~55 s on 2 cores: CI's slow step runs it
def test_avatar_carries_its_limits_and_the_loop_eases_into_them(tmp_path, fixture_path, small_directions, capsys):
    from live.avatar import Avatar
    from live.cli import main
    me = tmp_path / "me.pt"
    assert main(["avatar", "create", str(SHARED / "media" / "vox_source.png"), "-g", str(fixture_path),
                 "-d", str(small_directions), "-o", str(me), "--framing", "fixture", "--steps", "10",
                 "--no-pti"]) == 0
    limits = Avatar.read(me).identity_limits
    assert limits is not None and limits.shape == (15, 2)
    # A recorded driver replayed in absolute mode: the change the guard sees is exactly the one written (no tracker,
    # no neutral pose). 10 frames at the avatar's own pose, 10 within a fifth of every limit (tanh eases them by
    # 1 %), 10 at three times every limit (held back by two thirds): the guard must hold back those 10 and only those.
    p_s = Avatar.read(me).p_s.numpy().astype(np.float64)
    to_norm = Directions.load(small_directions, require_ours=False).space.to_norm
    within, beyond = 0.2 * limits[:, 1], 3.0 * limits[:, 1]
    changes = np.concatenate([np.zeros((10, 15)), np.tile(within, (10, 1)), np.tile(beyond, (10, 1))])
    track = _write_exact_track(tmp_path / "driver.csv", p_s + changes / to_norm)
    stats = tmp_path / "s.json"
    run = ["run", "-a", str(me), "-d", str(small_directions), "--source", str(track), "--absolute", "--fast",
           "--sink", "null", "--size", "64x64", "--stats", str(stats)]
    assert main(run) == 0
    report = json.loads(stats.read_text())
    assert report["written"] == 30
    assert report["identity_guard"] == {"frames_limited": 10, "share": round(10 / 30, 3)}
    assert main(run + ["--no-identity-guard"]) == 0
    assert json.loads(stats.read_text())["identity_guard"] == {}
    # an avatar file without limits (written before they existed): measured on load, and said so
    d = torch.load(me, weights_only=True)
    plain = Avatar.read(me)
    plain.identity_limits = None
    plain.save(tmp_path / "old.pt")
    assert "identity_limits" not in torch.load(tmp_path / "old.pt", weights_only=True) and "identity_limits" in d
    capsys.readouterr()
    assert main(["run", "-a", str(tmp_path / "old.pt"), "-d", str(small_directions), "--source", str(track),
                 "--fast", "--sink", "null", "--size", "64x64", "--frames", "3"]) == 0
    assert "holds no identity limits" in capsys.readouterr().err
