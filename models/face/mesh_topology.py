"""The face mesh's surface: triangles and the loops that bound it (face oval, mouth, eyes).

mediapipe ships the mesh's tessellation as edges; its triangles are the 3-cycles of those edges.
The surface has four holes, bounded by the edges that belong to one triangle only: the face oval,
the inner lips and the two eye openings. A warp fills the eyes with fans from the iris centres
(landmarks 468 and 473 of the refined mesh) and paints the mouth's inside itself.
"""

from __future__ import annotations

import collections
import functools
import itertools

import numpy as np

from models.face.landmarks import CHIN, EYE_LEFT, EYE_RIGHT, LIP_UPPER_INNER

IRIS_CENTRES = {"eye_right": 468, "eye_left": 473}


@functools.cache
def face_triangles() -> np.ndarray:
    """[T, 3] triangles of the 468-point tessellation (3-cycles of its edges)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION
    adj = collections.defaultdict(set)
    for a, b in FACEMESH_TESSELATION:
        adj[a].add(b)
        adj[b].add(a)
    tris = {tuple(sorted((a, b, c))) for a, b in FACEMESH_TESSELATION for c in adj[a] & adj[b]}
    return np.array(sorted(tris), np.int64)


def _loops(edges: list[tuple[int, int]]) -> list[list[int]]:
    """Closed vertex loops from a set of edges forming disjoint cycles."""
    adj = collections.defaultdict(list)
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    seen, loops = set(), []
    for start in sorted(adj):
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        seen.add(start)
        while True:
            nxt = next((n for n in adj[cur] if n != prev and (n not in seen or (n == start and len(loop) > 2))), None)
            if nxt is None or nxt == start:
                break
            loop.append(nxt)
            seen.add(nxt)
            prev, cur = cur, nxt
        loops.append(loop)
    return loops


@functools.cache
def boundary_loops() -> dict[str, np.ndarray]:
    """{'oval', 'mouth', 'eye_left', 'eye_right'}: each hole's vertex loop, in order around it."""
    count = collections.Counter(e for t in face_triangles() for e in itertools.combinations(t, 2))
    loops = _loops([e for e, n in count.items() if n == 1])
    named = {}
    for loop in loops:
        s = set(loop)
        if LIP_UPPER_INNER in s:
            named["mouth"] = loop
        elif EYE_LEFT["upper"] in s or EYE_LEFT["outer"] in s:
            named["eye_left"] = loop
        elif EYE_RIGHT["upper"] in s or EYE_RIGHT["outer"] in s:
            named["eye_right"] = loop
        elif CHIN in s:
            named["oval"] = loop
    missing = {"oval", "mouth", "eye_left", "eye_right"} - set(named)
    if missing:
        raise RuntimeError(f"the face mesh's tessellation lacks the {', '.join(sorted(missing))} loop(s)")
    return {k: np.array(v, np.int64) for k, v in named.items()}


def eye_fans() -> np.ndarray:
    """[T, 3] triangles filling each eye opening from its iris centre (the refined mesh's 468/473)."""
    loops = boundary_loops()
    fans = []
    for eye, centre in IRIS_CENTRES.items():
        loop = loops[eye]
        fans += [(centre, loop[i], loop[(i + 1) % len(loop)]) for i in range(len(loop))]
    return np.array(fans, np.int64)


def loop_arcs(loop, first: int, second: int) -> tuple[np.ndarray, np.ndarray]:
    """A closed loop split at two of its vertices into the two arcs between them, each with both ends."""
    loop = list(loop)
    i = loop.index(first)
    rolled = loop[i:] + loop[:i]
    k = rolled.index(second)
    return np.array(rolled[:k + 1]), np.array(rolled[k:] + rolled[:1])
