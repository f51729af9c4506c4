"""The backward map of a triangle-mesh warp: for every output pixel, where to read the source image.

    dst [V, 2], src [V, 2]   vertex positions in the output and in the source (pixels; pixel centres
                             at integer coordinates, as cv2.remap reads them)
    triangles [T, 3]         vertex indices, in drawing order: a later triangle covers an earlier one
                             (the caller sorts back to front, so the near cheek covers the far one)
    -> map_x, map_y [H, W]   float32 source coordinates per output pixel; -1 where no triangle covers it

A pixel inside a triangle of the output reads the point with the same barycentric coordinates in
the triangle's source. `ref` is NumPy (per triangle, vectorised over its bounding box: the
definition), `numba` the CPU twin the live loop uses. Both treat a pixel on a shared edge as inside
both triangles (tolerance 1e-6 of the area), so a mesh leaves no cracks.
"""

from __future__ import annotations

import functools

import numpy as np

from kernels.dispatch import resolve_impl

EDGE_TOLERANCE = 1e-6


def _check(dst, src, triangles, height: int, width: int):
    if dst.ndim != 2 or dst.shape[1] != 2 or src.shape != dst.shape:
        raise ValueError(f"dst and src must both be [V, 2], got {list(dst.shape)} and {list(src.shape)}")
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError(f"triangles must be [T, 3], got {list(triangles.shape)}")
    if triangles.size and (triangles.min() < 0 or triangles.max() >= len(dst)):
        raise ValueError(f"triangle indices must lie in [0, {len(dst)})")
    if height < 1 or width < 1:
        raise ValueError(f"output size must be positive, got {width}x{height}")


def _initial_maps(height: int, width: int, uncovered) -> tuple[np.ndarray, np.ndarray]:
    """What a pixel no triangle covers keeps: copies of `uncovered`, or -1."""
    if uncovered is None:
        return np.full((height, width), -1.0, np.float32), np.full((height, width), -1.0, np.float32)
    return uncovered[0].astype(np.float32, copy=True), uncovered[1].astype(np.float32, copy=True)


def triangle_map_ref(dst, src, triangles, height: int, width: int,
                     uncovered: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    map_x, map_y = _initial_maps(height, width, uncovered)
    for a, b, c in triangles:
        (ax, ay), (bx, by), (cx, cy) = dst[a], dst[b], dst[c]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-9:
            continue
        x0, x1 = max(int(np.floor(min(ax, bx, cx))), 0), min(int(np.ceil(max(ax, bx, cx))), width - 1)
        y0, y1 = max(int(np.floor(min(ay, by, cy))), 0), min(int(np.ceil(max(ay, by, cy))), height - 1)
        if x0 > x1 or y0 > y1:
            continue
        ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
        wa = ((bx - xs) * (cy - ys) - (by - ys) * (cx - xs)) / area
        wb = ((cx - xs) * (ay - ys) - (cy - ys) * (ax - xs)) / area
        wc = 1.0 - wa - wb
        inside = (wa >= -EDGE_TOLERANCE) & (wb >= -EDGE_TOLERANCE) & (wc >= -EDGE_TOLERANCE)
        sx = wa * src[a, 0] + wb * src[b, 0] + wc * src[c, 0]
        sy = wa * src[a, 1] + wb * src[b, 1] + wc * src[c, 1]
        map_x[y0:y1 + 1, x0:x1 + 1][inside] = sx[inside]
        map_y[y0:y1 + 1, x0:x1 + 1][inside] = sy[inside]
    return map_x, map_y


@functools.cache
def _numba_kernel():
    import numba

    # nogil: the loop's other threads (and `live serve`'s event loop) run while this one draws
    @numba.njit(cache=True, nogil=True)
    def fill(dst, src, triangles, map_x, map_y, tol):
        height, width = map_x.shape
        for t in range(triangles.shape[0]):
            a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
            ax, ay, bx, by, cx, cy = dst[a, 0], dst[a, 1], dst[b, 0], dst[b, 1], dst[c, 0], dst[c, 1]
            area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            if abs(area) < 1e-9:
                continue
            x0 = max(int(np.floor(min(ax, bx, cx))), 0)
            x1 = min(int(np.ceil(max(ax, bx, cx))), width - 1)
            y0 = max(int(np.floor(min(ay, by, cy))), 0)
            y1 = min(int(np.ceil(max(ay, by, cy))), height - 1)
            for y in range(y0, y1 + 1):
                # Along a row each weight is linear in x: the columns where all three can be >= -tol, widened by
                # two pixels either way, so the scan skips the bounding box's empty part (a sliver's, a large
                # background triangle's). The exact test below still decides each pixel, as the reference does.
                # Each weight is taken at x0 by the test's own formula, with its own slope (not as 1 minus the
                # others, nor at x = 0: a needle's weights far from the origin are huge, and their differences
                # lose every digit). A weight whose edge is level to within 1e-6 px narrows nothing: its slope is
                # too uncertain. (Not a helper function: Numba cannot cache a kernel that calls a function of the
                # enclosing scope, and would compile it again in every process.)
                lo, hi = float(x0), float(x1)
                for rise, w0 in ((by - cy, ((bx - x0) * (cy - y) - (by - y) * (cx - x0)) / area),
                                 (cy - ay, ((cx - x0) * (ay - y) - (cy - y) * (ax - x0)) / area),
                                 (ay - by, ((ax - x0) * (by - y) - (ay - y) * (bx - x0)) / area)):
                    if abs(rise) > 1e-6:
                        bound = x0 + (-tol - w0) * area / rise
                        lo, hi = (max(lo, bound), hi) if rise / area > 0 else (lo, min(hi, bound))
                lo, hi = min(lo, x1 + 2.0), max(hi, x0 - 2.0)       # (an empty row: kept in int range)
                seen = False          # a triangle is convex: once a row has left it, the rest of the row is out
                for x in range(max(x0, int(np.floor(lo)) - 2), min(x1, int(np.ceil(hi)) + 2) + 1):
                    wa = ((bx - x) * (cy - y) - (by - y) * (cx - x)) / area
                    wb = ((cx - x) * (ay - y) - (cy - y) * (ax - x)) / area
                    wc = 1.0 - wa - wb
                    if wa >= -tol and wb >= -tol and wc >= -tol:
                        map_x[y, x] = wa * src[a, 0] + wb * src[b, 0] + wc * src[c, 0]
                        map_y[y, x] = wa * src[a, 1] + wb * src[b, 1] + wc * src[c, 1]
                        seen = True
                    elif seen:
                        break
    return fill


def triangle_map(dst, src, triangles, height: int, width: int, impl: str = "auto",
                 uncovered: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(map_x, map_y) [height, width] float32 for cv2.remap. See the module doc. `uncovered`: the maps a pixel
    no triangle covers keeps (copied; default -1)."""
    dst = np.ascontiguousarray(dst, np.float64)
    src = np.ascontiguousarray(src, np.float64)
    triangles = np.ascontiguousarray(triangles, np.int64)
    _check(dst, src, triangles, height, width)
    impl = resolve_impl(impl, dst)
    if uncovered is not None and (uncovered[0].shape != (height, width) or uncovered[1].shape != (height, width)):
        raise ValueError(f"uncovered maps must be [{height}, {width}], got {list(uncovered[0].shape)}")
    if impl == "ref":
        return triangle_map_ref(dst, src, triangles, height, width, uncovered)
    if impl != "numba":
        raise ValueError(f"triangle_map runs on the CPU (ref or numba), not {impl!r}")
    map_x, map_y = _initial_maps(height, width, uncovered)
    _numba_kernel()(dst, src, triangles, map_x, map_y, EDGE_TOLERANCE)
    return map_x, map_y
