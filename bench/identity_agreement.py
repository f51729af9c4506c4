"""dlib's face descriptor computed by our torch network against dlib itself, on real faces.

Faces: the shared portraits and frames of each shared clip, located by dlib (detector + 5-point shape
predictor). For each face: dlib's descriptor (compute_face_descriptor, no jitter), ours from dlib's own
150 px chip, ours from our chip extraction (models/identity/face_chip.py) of dlib's points, and ours from
the 5 points estimated from our face mesh (what runs where dlib is not installed). Reported: the lowest
and median cosine with dlib's descriptor, and whether every same/different-person decision (Euclidean
distance < 0.6) on all pairs of faces is dlib's.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from bench.records import append_json, default_json, machine
from live.cli.table import print_table

PORTRAITS = ("portrait_bouguereau.jpg", "portrait_einstein.jpg", "portrait_mona_lisa.jpg", "portrait_vermeer.jpg",
             "vox_source.png")
CLIPS = ("lp_d0.mp4", "lp_d3.mp4", "lp_d6.mp4", "lp_d10.mp4", "vox_driving.mp4")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--media", default="../shared/media", help="folder of the portraits and clips")
    p.add_argument("--frames-per-clip", type=int, default=4)
    p.add_argument("--weights", help="our network's weights (.safetensors, e.g. the fp16 file); default: from dlib's .dat")
    p.add_argument("--json", default=default_json())


def faces(media: Path, per_clip: int) -> list[tuple[str, np.ndarray]]:
    from live.io.sources import iter_video_rgb, read_image_rgb
    out = [(name, read_image_rgb(media / name)) for name in PORTRAITS if (media / name).is_file()]
    for clip in CLIPS:
        if (media / clip).is_file():
            frames = [(k, f) for k, _, f in iter_video_rgb(media / clip, max_frames=per_clip * 20)][::20][:per_clip]
            out += [(f"{clip}#{k}", f) for k, f in frames]
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def run(args: argparse.Namespace) -> dict:
    import dlib

    from live.avatar.face_reader import TrackerFaceReader
    from models.identity.dlib_resnet import descriptors
    from models.identity.embedding import SAME_PERSON_DISTANCE, DlibIdentity
    from models.identity.face_chip import extract_face_chip, five_points_from_mesh
    from models.identity.torch_identity import TorchDlibIdentity
    start = time.perf_counter()
    theirs, ours = DlibIdentity(), TorchDlibIdentity(weights=args.weights)
    reader = TrackerFaceReader()
    rows, ref, own = [], [], []
    for name, image in faces(Path(args.media), args.frames_per_clip):
        found = theirs.detector(image, 1)
        if not found:
            continue
        rect = max(found, key=lambda r: r.area())
        shape = theirs.shape(image, rect)
        points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float64)
        d = np.array(theirs.net.compute_face_descriptor(image, shape, 0))
        on_their_chip = descriptors(ours.net, dlib.get_face_chip(image, shape, 150, 0.25)[None])[0]
        on_our_chip = descriptors(ours.net, extract_face_chip(image, points)[None])[0]
        mesh = reader.find_faces(image)
        from_mesh = ours.embed_points([image], [five_points_from_mesh(mesh[0])])[0] if mesh else np.full(128, np.nan)
        ref.append(d)
        own.append(on_our_chip)
        rows.append({"face": name, "their_chip": float(cosine(on_their_chip, d)), "our_chip": float(cosine(on_our_chip, d)),
                     "mesh_points": float(cosine(from_mesh, d))})
    reader.close()
    ref, own = np.array(ref), np.array(own)
    pairs = list(itertools.combinations(range(len(ref)), 2))
    same_theirs = [np.linalg.norm(ref[i] - ref[j]) < SAME_PERSON_DISTANCE for i, j in pairs]
    same_ours = [np.linalg.norm(own[i] - own[j]) < SAME_PERSON_DISTANCE for i, j in pairs]
    summary = {k: {"lowest": round(min(r[k] for r in rows), 6), "median": round(float(np.median([r[k] for r in rows])), 6)}
               for k in ("their_chip", "our_chip", "mesh_points")}
    record = {"bench": "identity", "faces": len(rows), "pairs": len(pairs),
              "decisions_identical": int(sum(a == b for a, b in zip(same_theirs, same_ours))),
              "cosine_with_dlib": summary, "weights": args.weights or "dlib's .dat",
              "seconds": round(time.perf_counter() - start, 1), "machine": machine()}
    append_json(args.json, record)
    print_table(f"our network against dlib's descriptor, {len(rows)} real faces (cosine; 1 = the same)",
                [{"input": k, **v} for k, v in summary.items()],
                [("input", "our network on"), ("lowest", "lowest cosine"), ("median", "median cosine")])
    print(f"same/different-person decisions (distance < {SAME_PERSON_DISTANCE}) identical to dlib's on "
          f"{record['decisions_identical']} of {len(pairs)} pairs")
    return record
