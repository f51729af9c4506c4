"""Avatars: framing, e4e checkpoints, inversion and tuning, the me.pt container, the CLI."""

import json

import numpy as np
import pytest
import torch

from live.avatar import Avatar, AvatarError
from live.avatar.avatar_file import apply_tuning, tuning_delta
from live.cli import main
from models.checkpoint import CheckpointError, weights_hash
from models.e4e import Encoder4Editing, check_e4e_file, load_e4e
from models.framing import crop_transform
from tests.conftest import FIXTURES, SHARED, needs_shared


# -- framing --------------------------------------------------------------------------------------
def _square_landmarks(x0, y0, w, h, n=478):
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(x0, x0 + w, n), rng.uniform(y0, y0 + h, n), np.zeros(n)])
    pts[0, :2], pts[1, :2] = (x0, y0), (x0 + w, y0 + h)  # the box is exact
    return pts


def test_fixture_framing_geometry():
    t = crop_transform(_square_landmarks(100, 200, 80, 100), "fixture", 128)
    side = 1.9 * 100
    corners = t.corners_in_photo()
    assert np.allclose(corners[2] - corners[0], [side, side])
    centre = corners.mean(0)
    assert np.allclose(centre, [140, 250 - 0.08 * side])


def test_ffhq_framing_removes_roll():
    from models.face.landmarks import EYE_LEFT, EYE_RIGHT, MOUTH_LEFT, MOUTH_RIGHT
    pts = np.zeros((478, 3))
    pts[[EYE_RIGHT["outer"], EYE_RIGHT["inner"]], :2] = [[80, 100], [100, 100]]   # image left
    pts[[EYE_LEFT["outer"], EYE_LEFT["inner"]], :2] = [[160, 100], [140, 100]]    # image right
    pts[[MOUTH_RIGHT, MOUTH_LEFT], :2] = [[100, 170], [140, 170]]
    angle = np.deg2rad(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = pts.copy()
    rolled[:, :2] = (pts[:, :2] - 120) @ rot.T + 120
    a, b = crop_transform(pts, "ffhq", 256), crop_transform(rolled, "ffhq", 256)
    ang = lambda m: np.degrees(np.arctan2(m[1, 0], m[0, 0]))  # noqa: E731
    assert abs(ang(a.matrix)) < 0.5 and abs(ang(b.matrix) + 20) < 0.5
    eyes = lambda t, p: (np.c_[p[[EYE_RIGHT["outer"], EYE_LEFT["outer"]], :2], [1, 1]] @ t.matrix.T)  # noqa: E731
    assert np.allclose(eyes(a, pts), eyes(b, rolled), atol=0.5)


def test_unknown_framing():
    with pytest.raises(ValueError, match="unknown framing"):
        crop_transform(_square_landmarks(0, 0, 10, 10), "celeba", 64)


# -- e4e ------------------------------------------------------------------------------------------
@needs_shared
def test_e4e_network_has_the_papers_keys_and_shapes():
    spec = json.loads((FIXTURES / "e4e_ir_se50_256_keys.json").read_text())
    enc = Encoder4Editing(spec["n_styles"])
    state = enc.state_dict()
    assert list(state) == list(spec["state_dict"])
    assert all(list(state[k].shape) == v for k, v in spec["state_dict"].items())
    assert sum(v.numel() for v in state.values()) == 209_475_060


@pytest.mark.slow
def test_e4e_checkpoint_checks_every_key(tmp_path):
    enc = Encoder4Editing(10)  # a 128 px generator's 12 codes would be 12; any even count works
    state = enc.state_dict()
    good = tmp_path / "e4e.pt"
    torch.save({"e": state, "latent_avg": torch.zeros(512)}, good)
    loaded, avg = load_e4e(good, n_styles=10)
    assert avg is not None and "10 W+ codes" in check_e4e_file(good)
    with pytest.raises(CheckpointError, match="for 10 W\\+ codes, but the generator has 12"):
        load_e4e(good, n_styles=12)
    bad = dict(state)
    bad.pop("body.5.res_layer.1.weight")
    torch.save({"e": bad}, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="missing 1 tensors, e.g. body.5.res_layer.1.weight"):
        load_e4e(tmp_path / "missing.pt")
    bad = dict(state)
    bad["latlayer1.weight"] = torch.zeros(512, 255, 1, 1)
    torch.save({"e": bad}, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="wrong shape, e.g. latlayer1.weight: \\[512, 255, 1, 1\\]"):
        load_e4e(tmp_path / "shape.pt")
    torch.save({"g_ema": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an e4e checkpoint"):
        load_e4e(tmp_path / "foreign.pt")


# -- the avatar container -------------------------------------------------------------------------
def _avatar(G, tuned=None):
    return Avatar(w_s=G.w_avg.expand(G.n_latent, -1).clone(), p_s=torch.arange(15.0),
                  crop=np.zeros((G.resolution, G.resolution, 3), np.uint8), crop_matrix=np.eye(2, 3),
                  photo_size=(640, 480), framing="fixture", generator_sha256=weights_hash(G),
                  generator_hint="face128.pt", tuned=tuned or {}, photo_thumb=np.zeros((8, 8, 3), np.uint8),
                  reconstruction=np.zeros((G.resolution, G.resolution, 3), np.uint8), psnr_inversion=22.0)


@needs_shared
def test_avatar_file_round_trip_and_damage(face128, tmp_path):
    delta = {"synthesis.conv1.activate.bias": torch.full_like(face128.synthesis.conv1.activate.bias, 0.5)}
    path = _avatar(face128, delta).save(tmp_path / "me.pt")
    before = {k: v.clone() for k, v in face128.state_dict().items()}
    a = Avatar.load(path, face128)
    assert torch.equal(a.p_s, torch.arange(15.0)) and a.framing == "fixture"
    assert torch.allclose(a.generator.synthesis.conv1.activate.bias, face128.synthesis.conv1.activate.bias + 0.5)
    after = face128.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], v) for k, v in before.items()), \
        "loading the avatar changed the generator it was given"
    data = bytearray(path.read_bytes())
    # Tampered: change one byte of the stored code (inside the zip's data, not its directory).
    torch_data = torch.load(path, weights_only=True)
    torch_data["p_s"][3] = 99.0
    torch.save(torch_data, tmp_path / "tampered.pt")
    with pytest.raises(AvatarError, match="modified after it was written"):
        Avatar.read(tmp_path / "tampered.pt")
    (tmp_path / "trunc.pt").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(AvatarError, match="truncated"):
        Avatar.read(tmp_path / "trunc.pt")
    with pytest.raises(AvatarError, match="pickled Python objects.*live avatar"):
        Avatar.read(FIXTURES / "face128.pt")
    other = apply_tuning(face128, delta)
    with pytest.raises(AvatarError, match="made for generator"):
        Avatar.load(path, other)


@needs_shared
def test_tuning_delta_is_what_changed(face128):
    delta = {"synthesis.to_rgb1.bias": torch.full((1, 3, 1, 1), 0.25)}
    tuned = apply_tuning(face128, delta)
    got = tuning_delta(face128, tuned)
    assert list(got) == ["synthesis.to_rgb1.bias"] and got["synthesis.to_rgb1.bias"].dtype == torch.float16


# -- creation -------------------------------------------------------------------------------------
@pytest.mark.slow   # about 50 s on 2 cores: a full inversion and tuning through the CLI
@needs_shared
def test_avatar_create_show_and_edit(tmp_path, fixture_path, small_directions, capsys):
    out = tmp_path / "me.pt"
    assert main(["avatar", "create", str(SHARED / "media" / "vox_source.png"), "-g", str(fixture_path),
                 "-d", str(small_directions), "-o", str(out), "--framing", "fixture",
                 "--steps", "25", "--tune-steps", "6"]) == 0
    text = capsys.readouterr().out
    assert "inversion" in text and "tuned" in text
    a = Avatar.read(out)
    assert a.psnr_tuned > a.psnr_inversion > 15 and a.tuned and np.isfinite(a.p_s.numpy()).all()
    assert all(v.dtype == torch.float16 for v in a.tuned.values())
    from live.config import EngineConfig
    from live.engines import make_engine
    from live.engines.factory import resolve_engine_config
    cpu_engine = resolve_engine_config(EngineConfig(device="cpu"))
    if cpu_engine.backend in ("openvino", "onnxruntime"):
        # creation prepared the engine `live run` picks, for the tuned weights as the run rebuilds them
        assert "engine prepared for live run" in text
        from models.checkpoint import load_generator
        assert make_engine(Avatar.load(out, load_generator(fixture_path, "cpu")).generator, cpu_engine).cache_hit
    assert main(["avatar", "show", str(out), "--out", str(tmp_path / "show.png")]) == 0
    assert (tmp_path / "show.png").is_file()
    assert main(["edit", "-g", str(fixture_path), "-d", str(small_directions), "--avatar", str(out),
                 "--set", "pitch=5", "-o", str(tmp_path / "edit.png")]) == 0


@needs_shared
def test_no_face_and_bad_face_index(tmp_path, fixture_path):
    import cv2
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 128, np.uint8))
    assert main(["avatar", "create", str(blank), "-g", str(fixture_path), "-o", str(tmp_path / "x.pt"),
                 "--framing", "fixture", "--steps", "2", "--no-pti"]) == 2
    assert not (tmp_path / "x.pt").exists()
    assert main(["avatar", "create", str(SHARED / "media" / "vox_source.png"), "-g", str(fixture_path),
                 "-o", str(tmp_path / "x.pt"), "--framing", "fixture", "--face", "3", "--no-pti"]) == 2


@pytest.mark.slow
@needs_shared
def test_tuning_keeps_the_latent_space(face128):
    """The locality regulariser (on by default) holds other codes where they were: on average above
    25 dB, and every code closer to the untouched generator than tuning without it leaves it."""
    from live.avatar.invert import psnr
    from live.avatar.pti import TuningConfig, pivotal_tuning
    g = torch.Generator().manual_seed(1)
    pivot = face128.broadcast(face128.mapping(torch.randn(1, 512, generator=g), 0.7))[0]
    with torch.no_grad():  # another face as the "photo": tuning has to pull the pivot a long way
        other = face128.broadcast(face128.mapping(torch.randn(1, 512, generator=g), 0.7))
        target = face128.synthesize(other)
        w = face128.broadcast(face128.mapping(torch.randn(5, 512, generator=g), 0.7))
    kept = {}
    for weight in (TuningConfig().locality_weight, 0.0):
        tuned, hist = pivotal_tuning(face128, pivot, target, TuningConfig(steps=6, locality_weight=weight),
                                     progress=False)
        assert hist[-1] < hist[0]
        with torch.no_grad():
            kept[weight] = np.array([psnr(tuned.synthesize(w[i:i + 1]), face128.synthesize(w[i:i + 1]))
                                     for i in range(5)])
    with_locality, without = kept[TuningConfig().locality_weight], kept[0.0]
    assert with_locality.mean() > 25 and (with_locality > without).all()
