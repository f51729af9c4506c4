"""`live gan train`: the reference discriminator layout, the StyleGAN2 objective, augmentation, and a
few real training steps at 64 px on the CPU (checkpoints, resume, fine-tuning, several processes)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from live.cli import main
from live.gan.augment import diff_augment, parse_policy
from live.gan.image_folder import DatasetError, ImageFolder
from live.gan.losses import d_logistic, g_nonsaturating, path_length_penalty, r1_penalty
from live.gan.train import Trainer
from live.gan.train_config import TrainConfig
from models import load_generator
from models.checkpoint import (
    CheckpointError,
    random_generator,
    safe_torch_load,
    save_reference_checkpoint,
)
from models.discriminator import Discriminator
from models.stylegan2 import GeneratorArch

TINY = ["--channel-max", "32", "--style-dim", "64", "--n-mlp", "2", "--batch", "4", "--workers", "0"]


def write_images(folder: Path, n: int = 12, size: int = 64) -> Path:
    """Smooth random colour images (a face is not needed to test the mechanics)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)
        cv2.imwrite(str(folder / f"img_{i:03d}.png"), cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC))
    return folder


def test_discriminator_has_the_reference_layout():
    """Key names and shapes of the reference trainer's 256 px config-f discriminator."""
    D = Discriminator(GeneratorArch.standard(256, channel_multiplier=2))
    sd = D.state_dict()
    expect = {"convs.0.0.weight": (128, 3, 1, 1), "convs.0.1.bias": (128,),
              "convs.1.conv1.0.weight": (128, 128, 3, 3), "convs.1.conv2.0.kernel": (4, 4),
              "convs.1.conv2.1.weight": (256, 128, 3, 3), "convs.1.conv2.2.bias": (256,),
              "convs.1.skip.0.kernel": (4, 4), "convs.1.skip.1.weight": (256, 128, 1, 1),
              "convs.6.conv2.1.weight": (512, 512, 3, 3), "final_conv.0.weight": (512, 513, 3, 3),
              "final_conv.1.bias": (512,), "final_linear.0.weight": (512, 8192), "final_linear.1.weight": (1, 512),
              "final_linear.1.bias": (1,)}
    for k, shape in expect.items():
        assert tuple(sd[k].shape) == shape, k
    assert "convs.1.skip.1.bias" not in sd and "convs.7.conv1.0.weight" not in sd
    out = D(torch.randn(2, 3, 256, 256))
    assert out.shape == (2, 1) and torch.isfinite(out).all()


def test_losses_follow_the_formulas():
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    expect = (-torch.log(torch.sigmoid(real))).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    assert torch.allclose(d_logistic(real, fake), expect, atol=1e-6)
    assert torch.allclose(g_nonsaturating(fake), (-torch.log(torch.sigmoid(fake))).mean(), atol=1e-6)
    # R1 of a linear D, D(x) = <a, x>: the gradient is a for every sample.
    a = torch.randn(3, 8, 8)
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    assert torch.allclose(r1_penalty((x * a).sum([1, 2, 3])[:, None], x), a.square().sum(), rtol=1e-5)
    # Path length of a linear synthesis, image = M w: per sample |M^T y| with y the image noise.
    M = torch.randn(3 * 4 * 4, 5)
    w = torch.randn(64, 1, 5, requires_grad=True)
    images = (w[:, 0] @ M.T).view(-1, 3, 4, 4)
    torch.manual_seed(7)
    penalty, new_mean, length = path_length_penalty(images, w, torch.tensor(0.5), decay=0.1)
    torch.manual_seed(7)
    y = torch.randn(64, 3, 4, 4) / 4.0                         # 1 / sqrt(H W)
    lengths = (y.flatten(1) @ M).norm(dim=1)
    assert torch.allclose(length, lengths.mean(), rtol=1e-5)
    assert torch.allclose(new_mean, 0.5 + 0.1 * (lengths.mean() - 0.5), rtol=1e-5)
    assert torch.allclose(penalty, (lengths - new_mean).square().mean(), rtol=1e-4)


def test_diff_augment_keeps_shape_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 32, 32, requires_grad=True)
    y = diff_augment(x, parse_policy("color,translation,cutout"))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    cut = diff_augment(torch.ones(50, 3, 32, 32), ("cutout",))
    zero_fraction = (cut == 0).float().mean(dim=[1, 2, 3])
    assert torch.all(zero_fraction <= 0.25 + 1e-6) and zero_fraction.mean() > 0.1  # a 16x16 square, clipped at edges
    moved = diff_augment(torch.ones(20, 1, 16, 16), ("translation",))
    assert set(torch.unique(moved).tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="unknown augmentation"):
        parse_policy("color,blur")


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        ImageFolder(tmp_path / "nope", 64)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        ImageFolder(tmp_path / "empty", 64)
    bad = tmp_path / "bad"
    bad.mkdir()
    cv2.imwrite(str(bad / "wide.png"), np.zeros((64, 80, 3), np.uint8))
    with pytest.raises(DatasetError, match="not square"):
        ImageFolder(bad, 64)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "half.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DatasetError, match="half.png: not a readable image"):
        ImageFolder(broken, 64)
    data = ImageFolder(write_images(tmp_path / "ok", 3, 128), 64)   # resized on load
    assert data[0].shape == (3, 64, 64) and -1 <= float(data[0].min()) and float(data[0].max()) <= 1


def test_train_from_scratch_resume_and_fine_tune(tmp_path):
    data = write_images(tmp_path / "data")
    out = tmp_path / "run"
    args = ["gan", "train", "--data", str(data), "-o", str(out), "--snapshot-kimg", "0.012", *TINY]
    assert main(args + ["--kimg", "0.024"]) == 0
    ckpt = safe_torch_load(out / "last.pt")
    assert {"g", "d", "g_ema", "g_optim", "d_optim", "args", "latent_avg"} <= set(ckpt)
    assert ckpt["live_train"]["step"] == 6 and abs(ckpt["live_train"]["kimg"] - 0.024) < 1e-9
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 3, 6]          # the start, then every 0.012 kimg
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in log[1:])
    assert log[-1]["faces_in_grid"][1] == 16 and Path(log[-1]["grid"]).is_file()
    G1 = load_generator(log[-1]["checkpoint"])    # snapshots load where any generator does
    assert G1.resolution == 64 and G1.style_dim == 64
    assert cv2.imread(log[-1]["grid"]).shape == (256, 256, 3)

    # The same command with more kimg continues from last.pt: counters and weights carry on.
    assert main(args + ["--kimg", "0.036"]) == 0
    again = safe_torch_load(out / "last.pt")
    assert again["live_train"]["step"] == 9
    assert not torch.equal(again["g_ema"]["conv1.conv.weight"], ckpt["g_ema"]["conv1.conv.weight"])

    # Fine-tuning a generator file: G starts from it, D from scratch, G changes.
    G0 = random_generator(GeneratorArch(resolution=64, channels=(32,) * 5, style_dim=64, n_mlp=2, conv_clamp=256.0),
                          seed=3)   # a StyleGAN2-ADA-like generator: its clamp must survive training
    g_file = save_reference_checkpoint(G0, tmp_path / "g0.pt")
    tuned = tmp_path / "tuned"
    trainer = Trainer(TrainConfig(data=str(data), out=str(tuned), resume=str(g_file), kimg=0.012, batch=4,
                                  workers=0, snapshot_kimg=1.0, d_warmup_kimg=0.008))
    conv = trainer.G.synthesis.conv1.conv.weight
    d_before = trainer.D.final_linear[1].weight.detach().clone()
    assert torch.equal(conv.detach(), G0.synthesis.conv1.conv.weight)
    for _ in range(2):   # the new D warms up alone (0.008 kimg = 2 steps of 4)
        stats = trainer.step(next(trainer.batches))
    assert "g_loss" not in stats and torch.equal(conv.detach(), G0.synthesis.conv1.conv.weight)
    assert not torch.equal(trainer.D.final_linear[1].weight.detach(), d_before)
    report = trainer.run(progress=False)
    assert report.steps == 3 and Path(report.last_checkpoint).is_file()
    assert not torch.equal(conv.detach(), G0.synthesis.conv1.conv.weight)
    assert trainer.G.arch.conv_clamp == 256.0
    assert load_generator(sorted(tuned.glob("g_ema-*.pt"))[-1]).arch.conv_clamp == 256.0
    assert Trainer(TrainConfig(data=str(data), out=str(tuned), kimg=0.012, batch=4, workers=0)).G.arch.conv_clamp == 256.0

    # A full checkpoint resumed at another resolution: a clear error.
    with pytest.raises(ValueError, match="differs from the 64 px generator"):
        Trainer(TrainConfig(data=str(data), out=str(tmp_path / "x"), resume=str(out / "last.pt"), resolution=128,
                            batch=4, workers=0))


def test_training_checkpoint_with_a_foreign_discriminator(tmp_path):
    data = write_images(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["gan", "train", "--data", str(data), "-o", str(out), "--kimg", "0.004", "--snapshot-kimg", "1",
                 *TINY]) == 0
    ckpt = safe_torch_load(out / "last.pt")
    # Adam moments in another parameter order (another trainer's file): resumed with Adam afresh.
    shuffled = {**ckpt, "g_optim": {**ckpt["g_optim"], "state": dict(zip(
        list(ckpt["g_optim"]["state"]), reversed(list(ckpt["g_optim"]["state"].values()))))}}
    torch.save(shuffled, tmp_path / "shuffled.pt")
    t = Trainer(TrainConfig(data=str(data), out=str(tmp_path / "z"), resume=str(tmp_path / "shuffled.pt"), batch=4,
                            workers=0))
    assert not t.g_opt.state                          # fresh, not mismatched moments
    t.step(next(t.batches))
    ckpt["d"]["final_linear.1.weight"] = torch.zeros(1, 7)
    torch.save(ckpt, tmp_path / "broken.pt")
    for resume, message in ((tmp_path / "missing.pt", "no such file"), (data / "img_000.png", "unrecognised file")):
        with pytest.raises(CheckpointError, match=message):
            Trainer(TrainConfig(data=str(data), out=str(tmp_path / "w"), resume=str(resume), batch=4, workers=0))
    with pytest.raises(CheckpointError, match="discriminator does not fit"):
        Trainer(TrainConfig(data=str(data), out=str(tmp_path / "y"), resume=str(tmp_path / "broken.pt"), batch=4,
                            workers=0))


@pytest.mark.slow
def test_two_processes_average_their_gradients(tmp_path):
    """torchrun, two CPU processes (gloo): the same script; both ranks end with identical weights, and leave
    the group with its threads joined."""
    data = write_images(tmp_path / "data")
    script = tmp_path / "check.py"
    script.write_text(
        "import sys, torch, torch.distributed as dist\n"
        "from live.gan.train import TrainConfig, Trainer\n"
        f"t = Trainer(TrainConfig(data={str(data)!r}, out={str(tmp_path / 'run')!r}, kimg=0.008, batch=4,\n"
        "             workers=0, snapshot_kimg=1.0, channel_max=32, style_dim=64, n_mlp=2))\n"
        "assert t.local_batch == 2\n"
        "for _ in range(2):\n"
        "    t.step(next(t.batches))\n"
        "flat = torch.cat([p.detach().flatten() for p in t.G.parameters()])\n"
        "gathered = [torch.zeros_like(flat) for _ in range(2)]\n"
        "dist.all_gather(gathered, flat)\n"
        "assert torch.equal(gathered[0], gathered[1]), 'ranks diverged'\n"
        "print('rank', dist.get_rank(), 'in step')\n"
        "t.close()\n"
        # gloo's threads joined by close(): left running, they free the last collectives' tensors while the
        # interpreter shuts down, which now and then aborts the process (live/gan/distributed.py)
        "import os, torch.distributed.nn.functional as F\n"
        "held = [f for f in vars(F).values() if any(isinstance(d, dist.ProcessGroup) for d in\n"
        "                                           getattr(f, '__defaults__', None) or ())]\n"
        "assert not held, f'the group bound as a default argument: {held}'\n"
        "def thread_name(i):\n"
        "    try:\n"
        "        return open(f'/proc/self/task/{i}/comm').read().strip()\n"
        "    except FileNotFoundError:   # ended meanwhile\n"
        "        return ''\n"
        "if os.path.isdir('/proc/self/task'):\n"
        "    threads = [thread_name(i) for i in os.listdir('/proc/self/task')]\n"
        "    assert not [n for n in threads if 'gloo' in n], threads\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # --standalone: a free port of its own, so parallel runs on one machine do not collide.
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert r.stdout.count("in step") == 2


def test_each_torchrun_rank_trains_on_its_own_gpu(tmp_path, monkeypatch):
    """Under torchrun on CUDA, rank LOCAL_RANK takes cuda:LOCAL_RANK and makes it current before the group is
    made (NCCL refuses two ranks on one GPU); on the CPU, or alone, the device is left as it is."""
    from live.gan import train
    from live.gan.distributed import process_device
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    current = []
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    assert process_device(torch.device("cuda")) == torch.device("cuda", 1) and current == [torch.device("cuda", 1)]
    assert process_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert process_device(torch.device("cuda")) == torch.device("cuda") and len(current) == 1
    asked = []
    monkeypatch.setattr(train, "process_device", lambda device: asked.append(device) or device)
    Trainer(TrainConfig(data=str(write_images(tmp_path / "data")), out=str(tmp_path / "run"), batch=4, workers=0,
                        channel_max=32, style_dim=64, n_mlp=2))
    assert asked == [torch.device("cpu")]


def test_without_the_face_tracker_training_goes_on_without_a_face_count(monkeypatch, log_messages):
    """A GPU machine without MediaPipe (numpy 2): the sample grid's face count is skipped, saying so, and the
    snapshot does not fail (before: ImportError from inside the first snapshot)."""
    from live.gan import train
    from models.face import tracker

    class NoMediaPipe:
        def __init__(self, *args, **kwargs):
            raise ModuleNotFoundError("No module named 'mediapipe'")
    monkeypatch.setattr(tracker, "MediaPipeTracker", NoMediaPipe)
    assert train.count_faces(torch.zeros(2, 3, 16, 16)) is None
    assert any("face tracker cannot load" in m and "mediapipe" in m for m in log_messages)
