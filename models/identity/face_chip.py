"""dlib's face chips (get_face_chip_details + extract_image_chip), without dlib.

From 5 landmarks in the order of dlib's shape_predictor_5_face_landmarks (0, 1: outer and inner
corner of the eye on the image's right; 2, 3: outer and inner corner of the other eye; 4: below
the nose) the chip is the similarity transform (Umeyama least squares) that puts them nearest to
dlib's mean face, framed with `padding` (0.25 for the face descriptor). As dlib does it
(dlib/image_transforms/interpolation.h and image_pyramid.h, v20.0.1):

- the chip's rectangle is centred on tform(size/2, size/2), size * scale wide (dlib's drectangle:
  right - left = width - 1), rotated by the transform's angle; chip pixel (0, 0) falls on its
  top-left corner and (size - 1, 0) on its top-right one;
- when the rectangle is over twice the chip's size, the image is first reduced by
  pyramid_down<2> (5x5 [1 4 6 4 1]^2 / 256 filter, every other pixel, integer arithmetic, sums
  truncated) until one more halving would make it smaller than the chip; in a level,
  points map by p / 2 - (1.25, 0.75);
- bilinear sampling in double precision, truncated to uint8; a sample whose 2x2 neighbourhood
  leaves the image is black.

`extract_face_chip` (NumPy) repeats those steps exactly (identical chips on every shared face).
`extract_face_chips` (torch, batched, differentiable, on the images' device) takes the same steps
in float: the same pyramid levels with the same pixel phase (the image cropped to the parity of
dlib's region), the same sample points, bilinear by grid_sample; with quantize=True it truncates
where dlib does and gives dlib's chips up to float rounding (about 0.1 % of values one level off),
without it chips are half a level brighter on average (descriptor cosine to dlib's >= 0.99998).
`five_points_from_mesh` estimates dlib's 5 points from our 478-point face mesh.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# dlib's mean face for the 5-point model, in the unit square (get_face_chip_details)
MEAN_FACE_5 = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                        [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                        [0.4901123135679, 0.6277975316475]])
_DOWN_OFFSET = np.array([1.25, 0.75])   # pyramid_down<2>::point_down(p) = p / 2 - (1.25, 0.75)


def chip_geometry(points5: np.ndarray, size: int = 150, padding: float = 0.25) -> tuple[np.ndarray, float, float]:
    """(centre xy, angle, scale) of dlib's chip_details for 5 points [5, 2] in pixels."""
    src = (padding + MEAN_FACE_5) / (2 * padding + 1) * size
    dst = np.asarray(points5, np.float64).reshape(5, 2)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(s)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, -1.0 if np.linalg.det(cov) < 0 else 1.0])   # no reflections (sv sorted descending)
    var = (s ** 2).sum(1).mean()
    m = (np.trace(np.diag(sv) @ sign) / var if var else 1.0) * (u @ sign @ vt)
    t = md - m @ ms
    p = m @ np.array([1.0, 0.0])
    return m @ np.array([size / 2, size / 2]) + t, math.atan2(p[1], p[0]), float(np.hypot(*p))


def _corner_map(centre, angle: float, width: float, size: int) -> np.ndarray:
    """[2, 3] affine: chip (c, r, 1) -> image xy, corners on dlib's rotated chip rectangle."""
    half = (width - 1) / 2
    cos, sin = math.cos(angle), math.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    tl = centre + rot @ np.array([-half, -half])
    step = 2 * half / (size - 1)
    return np.column_stack([rot[:, 0] * step, rot[:, 1] * step, tl])


def pyramid_down2(image: np.ndarray) -> np.ndarray:
    """dlib's pyramid_down<2> on an RGB uint8 image [H, W, 3]: [(H-3)//2, (W-3)//2, 3]."""
    h, w = image.shape[:2]
    if h <= 8 or w <= 8:
        return np.zeros((0, 0, 3), np.uint8)
    x, hc, wc = image.astype(np.int32), (h - 3) // 2, (w - 3) // 2
    k = (1, 4, 6, 4, 1)
    t = sum(k[j] * x[:, j:j + 2 * wc:2] for j in range(5))
    d = sum(k[j] * t[j:j + 2 * hc:2] for j in range(5))
    return (d // 256).astype(np.uint8)


def _bilinear_dlib(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """interpolate_bilinear at points xy [..., 2], truncated to uint8; black where it leaves the image."""
    h, w = image.shape[:2]
    x, y = xy[..., 0], xy[..., 1]
    left, top = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    ok = (left >= 0) & (top >= 0) & (left + 1 < w) & (top + 1 < h)
    lc, tc = np.clip(left, 0, max(w - 2, 0)), np.clip(top, 0, max(h - 2, 0))
    fx, fy = (x - left)[..., None], (y - top)[..., None]
    img = image.astype(np.float64)
    tl, tr, bl, br = img[tc, lc], img[tc, lc + 1], img[tc + 1, lc], img[tc + 1, lc + 1]
    v = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
    return np.where(ok[..., None], v, 0).astype(np.uint8)


def _down_area(width: float) -> float:
    w = (width - 1) / 2 + 1
    return w * w


def _plan(centre, angle: float, width: float, size: int, h: int, w: int) -> tuple[int, int, int, int, int] | None:
    """dlib's choices for one chip: (pyramid level, -1 for none; x0, y0, x1, y1 of the image region
    the pyramid is built on), or None when the chip lies outside the image."""
    grow, wd = 2.0, (width - 1) / 2 + 1                 # extract_image_chips' depth loop sets the margin
    while wd * wd > size * size:
        wd, grow = (wd - 1) / 2 + 1, grow * 2 + 2
    cos, sin = math.cos(angle), math.sin(angle)
    half = (width - 1) / 2
    corners = np.asarray(centre, np.float64) + np.array([[-half, -half], [half, -half], [-half, half],
                                                         [half, half]]) @ np.array([[cos, sin], [-sin, cos]])
    lo = np.maximum(corners.min(0) - grow, 0)
    hi = np.minimum(corners.max(0) + grow, [w - 1, h - 1])
    if np.any(lo > hi):
        return None
    x0, y0, x1, y1 = (int(math.floor(v + 0.5)) for v in (*lo, *hi))   # std::lround of values >= 0
    level, wl = -1, width
    while _down_area(wl) > size * size:
        level, wl = level + 1, (wl - 1) / 2 + 1
    return level, x0, y0, x1, y1


def extract_face_chip(image: np.ndarray, points5: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """dlib.get_face_chip(image, shape, size, padding) without dlib: [size, size, 3] uint8."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    assert image.ndim == 3 and image.shape[2] == 3, f"image must be [H, W, 3] RGB, got {image.shape}"
    centre, angle, scale = chip_geometry(points5, size, padding)
    width = size * scale                                 # drectangle width (right - left + 1)
    plan = _plan(centre, angle, width, size, *image.shape[:2])
    if plan is None:
        return np.zeros((size, size, 3), np.uint8)
    level, x0, y0, x1, y1 = plan
    level_image = image[y0:y1 + 1, x0:x1 + 1]
    amap = _corner_map(centre - [x0, y0], angle, width, size)
    for _ in range(level + 1):
        level_image = pyramid_down2(level_image)
        amap = amap / 2
        amap[:, 2] -= _DOWN_OFFSET
    if min(level_image.shape[:2]) < 2:
        return np.zeros((size, size, 3), np.uint8)     # dlib's pyramid gives up below 9 pixels: all black
    rr, cc = np.mgrid[0:size, 0:size].astype(np.float64)
    xy = np.stack([amap[0, 0] * cc + amap[0, 1] * rr + amap[0, 2], amap[1, 0] * cc + amap[1, 1] * rr + amap[1, 2]], -1)
    return _bilinear_dlib(level_image, xy)


# ---- torch, batched ---------------------------------------------------------------------------

def chip_maps(points5: torch.Tensor, size: int = 150, padding: float = 0.25) -> tuple[torch.Tensor, ...]:
    """[N, 2, 3] affine maps chip (c, r, 1) -> image xy, and the [N, 2] centres, [N] angles and [N]
    widths of the chips' rectangles (image pixels); differentiable in the points (the least-squares
    similarity in closed form, float64)."""
    assert points5.ndim == 3 and tuple(points5.shape[1:]) == (5, 2), \
        f"points5 must be [N, 5, 2], got {list(points5.shape)}"
    dst = points5.to(torch.float64)
    src = torch.as_tensor((padding + MEAN_FACE_5) / (2 * padding + 1) * size, dtype=torch.float64, device=dst.device)
    s, d = src - src.mean(0), dst - dst.mean(1, keepdim=True)
    var = (s ** 2).sum()
    a = (d * s).sum((1, 2)) / var                                   # scale * cos
    b = (d[..., 1] * s[:, 0] - d[..., 0] * s[:, 1]).sum(1) / var    # scale * sin
    scale, angle = torch.hypot(a, b), torch.atan2(b, a)
    m = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], 1)   # [N, 2, 2]
    centre = dst.mean(1) + m @ (src.new_tensor([size / 2, size / 2]) - src.mean(0))
    width = size * scale
    half = (width - 1) / 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], 1)
    tl = centre - (rot @ torch.stack([half, half], -1)[..., None])[..., 0]
    step = (2 * half / (size - 1))[:, None, None]
    return torch.cat([rot * step, tl[..., None]], 2), centre, angle, width


def _pyramid_level(x: torch.Tensor) -> torch.Tensor:
    """pyramid_down<2> in float: the 5x5 binomial filter, every other pixel, no padding. Sums of
    slices, not a convolution: exact in fp32 for whole grey levels (a GPU's TF32 convolutions are not)."""
    h, w = x.shape[-2:]
    if h <= 8 or w <= 8:
        return x[..., :0, :0]
    hc, wc, k = (h - 3) // 2, (w - 3) // 2, (1, 4, 6, 4, 1)
    t = sum(k[j] * x[..., :, j:j + 2 * wc:2] for j in range(5))
    return sum(k[j] * t[..., j:j + 2 * hc:2, :] for j in range(5)) / 256


def _sample(image: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinear at pixel coordinates xy [N, S, S, 2]; black where the 2x2 neighbourhood leaves the image."""
    h, w = image.shape[-2:]
    grid = torch.stack([2 * xy[..., 0] / max(w - 1, 1) - 1, 2 * xy[..., 1] / max(h - 1, 1) - 1], -1)
    out = F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)
    fx, fy = torch.floor(xy[..., 0]), torch.floor(xy[..., 1])
    inside = (fx >= 0) & (fy >= 0) & (fx + 1 < w) & (fy + 1 < h)
    return out * inside[:, None].to(out.dtype)


def _floor_ste(x: torch.Tensor) -> torch.Tensor:
    """floor in the forward pass, identity in the backward one (a straight-through estimator)."""
    return x + (torch.floor(x + 1e-3) - x).detach()


def extract_face_chips(images: torch.Tensor, points5: torch.Tensor, size: int = 150,
                       padding: float = 0.25, quantize: bool = False) -> torch.Tensor:
    """dlib's face chips of a batch: images [N, C, H, W] float (0..255 for the descriptor), points5
    [N, 5, 2] in pixels -> [N, C, size, size] on the images' device, differentiable.
    quantize: truncate to integers where dlib does (pyramid levels, samples), gradients passing
    straight through; without it the chips are about half a grey level brighter than dlib's."""
    assert images.ndim == 4 and images.shape[0] == points5.shape[0], \
        f"images [N, C, H, W] and points5 [N, 5, 2] with the same N, got {list(images.shape)}, {list(points5.shape)}"
    amap, centres, angles, width = chip_maps(points5.to(images.device), size, padding)
    h, w = images.shape[-2:]
    groups: dict[tuple[int, int, int], list[int]] = {}   # (level, x0, y0 mod 2**(level+1)) -> samples
    for i, (centre, angle, wd) in enumerate(zip(centres.tolist(), angles.tolist(), width.tolist())):
        plan = _plan(centre, angle, wd, size, h, w)
        if plan is not None:
            period = 2 ** (plan[0] + 1)     # the pyramid's pixels fall where dlib's do when the crop's
            groups.setdefault((plan[0], plan[1] % period, plan[2] % period), []).append(i)   # phase matches
    rr, cc = torch.meshgrid(torch.arange(size, device=images.device, dtype=torch.float64),
                            torch.arange(size, device=images.device, dtype=torch.float64), indexing="ij")
    base = torch.stack([cc, rr, torch.ones_like(cc)], -1)          # [S, S, 3]
    out = images.new_zeros(images.shape[0], images.shape[1], size, size)
    for (level, sx, sy), idx in groups.items():
        sel = torch.tensor(idx, device=images.device)
        level_image = images[sel][..., sy:, sx:] if level >= 0 else images[sel]
        m = amap[sel] - amap.new_tensor([0.0, 0.0, 1.0]) * amap.new_tensor([sx, sy])[:, None] \
            if level >= 0 else amap[sel]
        for _ in range(level + 1):
            level_image = _pyramid_level(level_image)
            level_image = _floor_ste(level_image) if quantize else level_image
            m = m / 2 - m.new_tensor([0.0, 0.0, 1.0]) * m.new_tensor(_DOWN_OFFSET)[:, None]
        if min(level_image.shape[-2:]) < 2:
            continue
        chips = _sample(level_image, torch.einsum("sti,nji->nstj", base, m))
        out = out.index_copy(0, sel, _floor_ste(chips) if quantize else chips)
    return out


# ---- from our face mesh ------------------------------------------------------------------------

# Face-mesh landmarks (index, weight) whose weighted mean estimates each of dlib's 5 points, fitted
# on 257 faces (the shared portraits, about 40 frames of each shared clip, our tracker with its
# flip averaging) against shape_predictor_5: error / inter-ocular distance 2.2-2.5 % in sample,
# 2.3-3.0 % fitting without the source tested (one clip or the stills); about 2-3 px at 106 px
# between the eyes. Descriptors from these points: cosine to those from dlib's points median 0.9988.
MESH_TO_DLIB5: tuple[tuple[tuple[int, float], ...], ...] = (
    ((255, 0.35), (466, 0.65)),    # outer corner, eye on the image's right (the subject's left)
    ((398, 0.85), (452, 0.15)),    # its inner corner
    ((33, 1.0),),                  # outer corner of the other eye
    ((112, 0.6), (157, 0.4)),      # its inner corner
    ((141, 0.55), (164, 0.45)),    # below the nose
)


def five_points_from_mesh(landmarks: np.ndarray) -> np.ndarray:
    """dlib's 5 points [..., 5, 2] (pixels) estimated from face-mesh landmarks [..., 478, 2 or 3]."""
    lm = np.asarray(landmarks, np.float64)[..., :2]
    return np.stack([sum(w * lm[..., i, :] for i, w in point) for point in MESH_TO_DLIB5], -2)
