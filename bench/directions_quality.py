"""How well a direction matrix edits and reenacts, on held-out seeds (the #4 acceptance figures).

Editing: for each parameter k and requested raw changes v (fractions of its fitted range),
synthesise G(w + A e_k v), track, and regress the achieved change of k on v through the origin:
slope and R^2. Cross-talk: mean |change| of each other pose parameter / mean |v|, both in the
normalised units ([-6, 6] over each parameter's range), the largest reported.
Identity: CSIM (dlib face-identity embeddings, models/identity/embedding.py) between each edited render
and its unedited one: the median over all edits, and the share of edits that stay the same person
(dlib distance < 0.6).
Reenactment: random (source, target) pairs; the tracked pitch and jaw of
G(w_s + A (p_t - p_s)) vs the target's; improvement = 1 - mean|p_e - p_t| / mean|p_s - p_t|.
Identity floor: the same CSIM for real footage of one person, pairs of frames of one clip whose
pitch (or jaw) differs by 20-40 % of the fitted range: what the very same person moving that much
scores (the embedding is not perfectly pose-invariant).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bench.records import append_json, default_json, machine
from live.cli.table import print_table
from live.directions.sampling import codes_for_seeds, synthesize_batched
from models import load_generator
from models.direction_matrix import Directions, reenact
from models.face.landmarks import PARAM_NAMES
from models.face.params import ImageParams
from models.images import images_to_uint8

HELD_OUT = 2_000_000  # seeds from here on are never used for fitting
FLOOR_CLIPS = ("lp_d0.mp4", "lp_d3.mp4", "lp_d6.mp4", "lp_d10.mp4", "vox_driving.mp4")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", "-g", required=True)
    p.add_argument("--directions", "-d", required=True, nargs="+",
                   help="direction matrices; several are measured on the same held-out seeds and compared")
    p.add_argument("--seeds", type=int, default=50, help="held-out seeds for pitch, jaw and reenactment")
    p.add_argument("--other-seeds", type=int, default=20, help="held-out seeds for the other parameters")
    p.add_argument("--truncation", type=float, default=0.7)
    p.add_argument("--floor-clips", nargs="*", metavar="CLIP",
                   default=[str(Path("../shared/media") / c) for c in FLOOR_CLIPS],
                   help="real clips of one person each for the identity floor (none: skip it)")
    p.add_argument("--json", default=default_json())


def identity_floor(clips: list[str], span: np.ndarray, identity, params=("pitch", "jaw"), band=(0.2, 0.4),
                   every: int = 3, seed: int = 0) -> dict:
    """Median CSIM over frame pairs of one clip (every `every`th frame) whose parameter differs by `band`
    of its span; the median over clips. None where no clip has 20 such pairs."""
    from live.config import LiveConfig
    from live.io.sources import iter_video_rgb
    from live.tracking.estimator import make_estimator
    from models.identity.embedding import csim
    scores: dict[str, list] = {name: [] for name in params}
    for clip in clips:
        estimator = make_estimator(LiveConfig().tracking)
        p, frames, boxes = [], [], []
        for k, t, frame in iter_video_rgb(clip):
            if k % every:
                continue
            obs = estimator(frame, k, t)
            if obs.found:
                p.append(obs.params)
                frames.append(frame)
                lm = obs.landmarks
                boxes.append((lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()))
        estimator.close()
        if len(p) < 2:
            continue
        p, e = np.array(p), identity.embed(frames, boxes)
        i, j = np.triu_indices(len(p), 1)
        for name in params:
            k = PARAM_NAMES.index(name)
            diff = np.abs(p[i, k] - p[j, k]) / span[k]
            sel = (diff >= band[0]) & (diff <= band[1])
            if sel.sum() >= 20:
                scores[name].append(float(np.median(csim(e[i[sel]], e[j[sel]]))))
    return {name: (round(float(np.median(v)), 3) if v else None) for name, v in scores.items()}


def evaluate(G, d: Directions, seeds: int, other_seeds: int, truncation: float, floor_clips=(),
             error_range: torch.Tensor | None = None) -> dict:
    """error_range: the parameter ranges that normalise the reenactment error (default: d's own); matrices
    compared side by side share the first one's, so their errors are in the same units."""
    from models.identity.embedding import (
        SAME_PERSON_DISTANCE,
        csim,
        default_identity,
        distance,
    )
    tracker, identity = ImageParams(), default_identity()
    span = (d.param_range[:, 1] - d.param_range[:, 0]).numpy()
    to_norm = 2 * d.shift_scale / span
    all_seeds = np.arange(HELD_OUT, HELD_OUT + seeds)
    w = codes_for_seeds(G, all_seeds, truncation)
    base_images = images_to_uint8(synthesize_batched(G, G.broadcast(w)))
    base, _ = tracker(base_images)
    base_emb = identity.embed(list(base_images))
    rows, sims, dists = [], [], []
    for k, name in enumerate(PARAM_NAMES):
        n = seeds if name in ("pitch", "jaw") else other_seeds
        fractions = (-0.4, -0.2, 0.2, 0.4) if name in ("pitch", "jaw") else (-0.3, 0.3)
        req, got, cross, param_sims, param_dists = [], [], [], [], []
        for f in fractions:
            delta = torch.zeros(n, d.n_params)
            delta[:, k] = f * span[k] * to_norm[k]
            images = images_to_uint8(synthesize_batched(G, d.apply(G.broadcast(w[:n]), d.shift(delta))))
            p, _ = tracker(images)
            emb = identity.embed(list(images))
            param_sims.append(csim(emb, base_emb[:n]))
            param_dists.append(distance(emb, base_emb[:n]))
            ok = np.isfinite(p).all(1) & np.isfinite(base[:n]).all(1)
            change = p[ok] - base[:n][ok]
            req.append(np.full(ok.sum(), f * span[k]))
            got.append(change[:, k])
            others = [j for j in range(3) if j != k]
            cross.append(np.abs(change[:, others]) * to_norm[others])
        req, got = np.concatenate(req), np.concatenate(got)
        slope = float((req * got).sum() / (req**2).sum())
        r2 = float(1 - ((got - slope * req) ** 2).sum() / ((got - got.mean()) ** 2).sum())
        pearson = float(np.corrcoef(req, got)[0, 1]) if len(req) > 2 and got.std() > 0 else float("nan")
        cross_frac = float(np.concatenate(cross).mean(0).max() / (np.abs(req).mean() * to_norm[k]))
        ps, pd = np.concatenate(param_sims), np.concatenate(param_dists)
        sims.append(ps)
        dists.append(pd)
        seen = np.isfinite(ps)    # the trade-off per parameter: how far it moves against who it stays
        rows.append({"param": name, "seeds": n, "slope": round(slope, 3), "r2": round(r2, 3), "pearson": round(pearson, 3),
                     "max_other_pose": round(cross_frac, 3),
                     "csim": round(float(np.median(ps[seen])), 3) if seen.any() else None,
                     "same_person": round(float((pd[seen] < SAME_PERSON_DISTANCE).mean()), 3) if seen.any() else None})
    sims, dists = np.concatenate(sims), np.concatenate(dists)
    found = np.isfinite(sims)
    identity_csim = round(float(np.median(sims[found])), 3) if found.any() else None
    same_person = round(float((dists[found] < SAME_PERSON_DISTANCE).mean()), 3) if found.any() else None
    # Reenactment: pairs (i, i+1) of the held-out seeds.
    src, tgt = np.arange(seeds), np.roll(np.arange(seeds), 1)
    ok = np.isfinite(base[src]).all(1) & np.isfinite(base[tgt]).all(1)
    src, tgt = src[ok], tgt[ok]
    dw = reenact(d, torch.from_numpy(base[src]).float(), torch.from_numpy(base[tgt]).float())
    pe, _ = tracker(images_to_uint8(synthesize_batched(G, d.apply(G.broadcast(w[src]), dw))))
    good = np.isfinite(pe).all(1)
    reen = {}
    for name in ("pitch", "jaw", "yaw", "roll"):
        j = PARAM_NAMES.index(name)
        before = np.abs(base[src][good, j] - base[tgt][good, j]).mean()
        after = np.abs(pe[good, j] - base[tgt][good, j]).mean()
        reen[name] = round(float(1 - after / before), 3)
    # Reenactment error: how far the reenacted face's parameters stay from the target's, normalised units
    ranges = (error_range if error_range is not None else d.param_range).numpy()
    error = np.abs(pe[good] - base[tgt][good]) * 2 * d.shift_scale / (ranges[:, 1] - ranges[:, 0])
    for row, e in zip(rows, error.T):
        row["reenactment_error"] = round(float(e.mean()), 3)
    tracker.close()
    floor = identity_floor(list(floor_clips), span, identity) if floor_clips else None
    return {"editing": rows, "identity_csim_median": identity_csim, "identity_same_person_share": same_person,
            "reenactment_error_mean": round(float(error.mean()), 3) if len(error) else None,
            "identity_faces": f"{int(found.sum())}/{len(sims)}", "identity_floor_csim": floor,
            "reenactment_improvement": reen, "reenactment_pairs": int(good.sum())}


def run(args: argparse.Namespace) -> dict | list[dict]:
    G = load_generator(args.generator)
    missing = [c for c in args.floor_clips if not Path(c).is_file()]
    if missing:
        raise SystemExit(f"--floor-clips: no such file: {', '.join(missing)} (give other clips, or none to skip)")
    records, common_range = [], None
    for k, path in enumerate(args.directions):
        d = Directions.load(path)
        common_range = d.param_range if common_range is None else common_range   # the first matrix's units
        start = time.perf_counter()
        result = evaluate(G, d, args.seeds, args.other_seeds, args.truncation, args.floor_clips if k == 0 else (),
                          error_range=common_range)
        record = {"bench": "directions", "generator": args.generator, "directions": path, "fit_info": d.fit_info,
                  **result, "seconds": round(time.perf_counter() - start, 1), "machine": machine()}
        append_json(args.json, record)
        records.append(record)
        _print_one(record)
    if len(records) > 1:
        print_table("the matrices side by side, on the same held-out seeds", comparison_rows(records), [
            ("matrix", "matrix"), ("params", "parameters"), ("slope", "slope"), ("pearson", "Pearson"),
            ("csim", "CSIM with unedited"), ("same_person", "same person"), ("reenactment_error", "reenactment error")])
    return records[0] if len(records) == 1 else records


def comparison_rows(records: list[dict]) -> list[dict]:
    """Per matrix: pitch, jaw, and all 15 parameters (mean slope and Pearson, the matrix's overall identity
    figures, mean reenactment error in normalised units)."""
    rows = []
    for r in records:
        info = r["fit_info"]
        if info.get("method", "").startswith("trained"):     # its weights are loss weights: say them all
            label = (Path(r["directions"]).name + f" (trained {info.get('steps')} steps, lr {info.get('lr')}, "
                     f"weights {info.get('reenactment_weight')}/{info.get('identity_weight')}/"
                     f"{info.get('perceptual_weight')})")
        else:
            label = Path(r["directions"]).name + f" ({info.get('method', '?')}"
            label += f", identity weight {info['identity_weight']})" if info.get("identity_weight") else ")"
        by = {e["param"]: e for e in r["editing"]}
        for name in ("pitch", "jaw"):
            e = by[name]
            rows.append({"matrix": label, "params": name, **{k: e.get(k) for k in ("slope", "pearson", "csim",
                                                                              "same_person", "reenactment_error")}})
        rows.append({"matrix": label, "params": "all 15",
                     "slope": round(float(np.mean([e["slope"] for e in r["editing"]])), 3),
                     "pearson": _mean_of_finite([e["pearson"] for e in r["editing"]]),
                     "csim": r["identity_csim_median"], "same_person": r["identity_same_person_share"],
                     "reenactment_error": r["reenactment_error_mean"]})
    return rows


def _mean_of_finite(values: list) -> float | None:
    """Mean over the finite values, rounded; None when there are none (an edit that never moved its parameter)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return round(float(np.mean(finite)), 3) if finite else None


def _print_one(record: dict) -> None:
    result = record
    print(f"{record['directions']} ({record['fit_info'].get('method', '?')})")
    print_table("editing on held-out seeds (slope 1 = the requested change)", result["editing"],
                [("param", "parameter"), ("seeds", "seeds"), ("slope", "slope"), ("pearson", "Pearson"),
                 ("r2", "R^2"), ("max_other_pose", "other pose / requested"), ("csim", "CSIM with unedited"),
                 ("same_person", "same person"), ("reenactment_error", "reenactment error")])
    print(f"identity: median CSIM of an edit with its unedited render {result['identity_csim_median']}, the same "
          f"person (dlib distance < 0.6) in {result['identity_same_person_share']} of the edits "
          f"(faces in {result['identity_faces']})")
    if result["identity_floor_csim"]:
        print("identity floor, real footage of one person moving 20-40 % of the range, median CSIM: "
              + ", ".join(f"{k} {v}" for k, v in result["identity_floor_csim"].items()))
    print(f"reenactment ({result['reenactment_pairs']} pairs), improvement toward the target: "
          + ", ".join(f"{k} {v:+.2f}" for k, v in result["reenactment_improvement"].items())
          + f"; mean error {result['reenactment_error_mean']} (normalised units, [-6, 6] over each range)")
