"""Stage 2: confident regions of the dense map -> point queries, at several scales.

Per scale (the probability map area-resized by it) and per class: pixels whose best class is that class with a
probability at or above the threshold (the image's mean confidence × threshold_ratio, never under chance ×
chance_factor nor min_threshold) form connected components (8-neighbour); tiny ones are dropped; each gives one
query at a pixel inside it (the most confident, nudged inward, or the medoid). With dedupe_scales, a component
mostly inside a coarser scale's component of its class gives no second query. The count then adapts within
[min_queries, max_queries]: above it the best per class are kept first, then by confidence × √area; under it,
extra points are spread inside the largest components (farthest from the points already there). A map with no
confident pixel gives no query (the pipeline then keeps the dense map and says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from core.openvocab.mhqr.dense import image_xy, resize_nearest


@dataclass
class Query:
    id: int
    x: float  # original image pixels
    y: float
    cls: int
    scale: float
    confidence: float  # mean probability of its class over the component
    area: float  # component area in working-resolution pixels
    component: int = 0  # index into QuerySet.components[scale] (0: none)


@dataclass(frozen=True)
class QueryConfig:
    scales: tuple[float, ...] = (0.25, 0.5, 1.0)
    threshold_ratio: float = 0.5
    min_threshold: float = 0.0
    chance_factor: float = 1.5
    min_area: int = 6  # pixels at the query's scale
    min_queries: int = 10
    max_queries: int = 200
    point: str = "confident"  # "confident" or "medoid"
    dedupe_scales: bool = True
    dedupe_overlap: float = 0.8


@dataclass
class QuerySet:
    queries: list[Query]
    threshold: float
    components: dict[float, np.ndarray] = field(default_factory=dict)  # scale -> (hs, ws) int32, 0 = none
    message: str = ""

    def points(self) -> np.ndarray:
        return np.array([[q.x, q.y] for q in self.queries], np.float64).reshape(-1, 2)


def scale_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resize_probs(probs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if tuple(probs.shape[1:]) == tuple(size):
        return probs
    return F.interpolate(torch.from_numpy(np.ascontiguousarray(probs))[None], size=size, mode="area")[0].numpy()


def threshold_for(probs: np.ndarray, cfg: QueryConfig) -> float:
    conf = probs.max(0)
    thr = min(float(conf.mean()) * cfg.threshold_ratio, float(conf.max()))
    chance = cfg.chance_factor / probs.shape[0] if probs.shape[0] > 1 else 0.0
    return max(thr, chance, cfg.min_threshold)


def pick_point(comp: np.ndarray, prob: np.ndarray, how: str) -> tuple[int, int]:
    """(row, col) inside comp (a cropped bool mask): the most confident pixel, nudged inward, or the medoid."""
    rows, cols = np.nonzero(comp)
    if how == "medoid":
        take = np.linspace(0, len(rows) - 1, min(len(rows), 400)).astype(int)
        pts = np.stack([rows[take], cols[take]], 1).astype(np.float64)
        best = np.argmin(np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)).sum(1))
        return int(pts[best, 0]), int(pts[best, 1])
    if how != "confident":
        raise ValueError(f"unknown query point rule '{how}' (confident, medoid)")
    dt = ndimage.distance_transform_edt(np.pad(comp, 1))[1:-1, 1:-1][rows, cols]
    best = np.argmax(prob[rows, cols] * (0.5 + 0.5 * dt / dt.max()))
    return int(rows[best]), int(cols[best])


def no_query_message(probs: np.ndarray, thr: float, cfg: QueryConfig) -> str:
    """Why no query was placed: the threshold, what set it, and the best confidence the map has."""
    conf = probs.max(0)
    rule = [f"{cfg.threshold_ratio:g} × the mean confidence {float(conf.mean()):.3f}"]
    if probs.shape[0] > 1:
        rule.append(f"{cfg.chance_factor:g} × chance (1/{probs.shape[0]})")
    if cfg.min_threshold > 0:
        rule.append(f"{cfg.min_threshold:g}")
    return (f"no class reaches the query threshold {thr:.3f} (the largest of {', '.join(rule)}; the best pixel's "
            f"confidence is {float(conf.max()):.3f}) in a component of at least {cfg.min_area} pixels: "
            "no query was placed and the dense map is kept")


class QueryGenerator:
    def __init__(self, cfg: QueryConfig = QueryConfig()):
        if not 0 < cfg.min_queries <= cfg.max_queries:
            raise ValueError("need 0 < min_queries <= max_queries")
        self.cfg = cfg

    def generate(self, probs: np.ndarray, image_size: tuple[int, int]) -> QuerySet:
        cfg = self.cfg
        size = probs.shape[1:]
        thr = threshold_for(probs, cfg)
        cands, components = [], {}
        covered: dict[int, np.ndarray] = {}  # class -> coarser components, at the working resolution
        for scale in sorted(cfg.scales):
            hs, ws = scale_size(size, scale)
            ps = resize_probs(probs, (hs, ws))
            labels, conf = ps.argmax(0), ps.max(0)
            confident = conf >= thr
            comp_map = np.zeros((hs, ws), np.int32)
            k = 0
            for c in np.unique(labels[confident]):
                comps, n = ndimage.label(confident & (labels == c), structure=np.ones((3, 3)))
                prev = covered.get(int(c))
                prev_s = None if prev is None else resize_nearest(prev, (hs, ws))
                for i, sl in enumerate(ndimage.find_objects(comps), start=1):
                    comp = comps[sl] == i
                    area = int(comp.sum())
                    if area < cfg.min_area:
                        continue
                    seen = 0 if prev_s is None else int((prev_s[sl] & comp).sum())
                    if cfg.dedupe_scales and seen >= cfg.dedupe_overlap * area:
                        continue
                    k += 1
                    comp_map[sl][comp] = k
                    r, q = pick_point(comp, ps[c][sl], cfg.point)
                    cands.append(dict(r=r + sl[0].start, c=q + sl[1].start, cls=int(c), scale=scale, component=k,
                                      confidence=float(ps[c][sl][comp].mean()), grid=(hs, ws),
                                      area=area * size[0] * size[1] / (hs * ws)))
            components[scale] = comp_map
            for c in {d["cls"] for d in cands if d["scale"] == scale}:
                ids = [d["component"] for d in cands if d["scale"] == scale and d["cls"] == c]
                here = resize_nearest(np.isin(comp_map, ids), size)
                covered[c] = here if c not in covered else covered[c] | here
        if not cands:
            return QuerySet([], thr, components, no_query_message(probs, thr, cfg))
        cands = self._budget(cands)
        if len(cands) < cfg.min_queries:
            cands = self._spread(cands, components)
        queries = []
        for i, d in enumerate(cands):
            (x, y), = image_xy(np.array([d["r"]]), np.array([d["c"]]), d["grid"], image_size)
            queries.append(Query(i, float(x), float(y), d["cls"], d["scale"], d["confidence"], float(d["area"]),
                                 d["component"]))
        return QuerySet(queries, thr, components)

    def _budget(self, cands: list[dict]) -> list[dict]:
        if len(cands) <= self.cfg.max_queries:
            return cands
        order = sorted(range(len(cands)), key=lambda i: -cands[i]["confidence"] * np.sqrt(cands[i]["area"]))
        keep, seen = [], set()
        for i in order:  # the best of each class first
            if cands[i]["cls"] not in seen:
                seen.add(cands[i]["cls"])
                keep.append(i)
        rest = [i for i in order if i not in set(keep)]
        keep = (keep + rest)[: self.cfg.max_queries]
        return [cands[i] for i in sorted(keep)]

    def _spread(self, cands: list[dict], components: dict[float, np.ndarray]) -> list[dict]:
        """Adds points inside the largest components, each as far as possible from the points already there."""
        groups = {}
        for d in cands:
            groups.setdefault((d["scale"], d["component"]), []).append(d)
        exhausted = set()
        while len(cands) < self.cfg.min_queries and len(exhausted) < len(groups):
            key = max((k for k in groups if k not in exhausted),
                      key=lambda k: groups[k][0]["area"] / len(groups[k]))
            comp = components[key[0]] == key[1]
            seeds = np.ones(comp.shape, bool)
            for d in groups[key]:
                seeds[d["r"], d["c"]] = False
            inner = ndimage.distance_transform_edt(np.pad(comp, 1))[1:-1, 1:-1]
            room = np.minimum(ndimage.distance_transform_edt(seeds), inner)
            room[~comp] = 0
            if room.max() < 2:
                exhausted.add(key)
                continue
            r, c = np.unravel_index(int(np.argmax(room)), room.shape)
            d = dict(groups[key][0], r=int(r), c=int(c))
            groups[key].append(d)
            cands.append(d)
        return cands


def negative_points(queries: list[Query], radius: float, max_points: int = 3) -> list[np.ndarray]:
    """For each query, up to max_points queries of other classes within radius (original pixels), nearest first."""
    if not queries:
        return []
    xy = np.array([[q.x, q.y] for q in queries])
    cls = np.array([q.cls for q in queries])
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    out = []
    for i in range(len(queries)):
        near = np.nonzero((cls != cls[i]) & (d[i] <= radius))[0]
        out.append(xy[near[np.argsort(d[i, near])][:max_points]])
    return out


def grid_queries(labels: np.ndarray, probs: np.ndarray, image_size: tuple[int, int], n: int) -> QuerySet:
    """The query generator switched off: an n × n grid of points, each with the dense label under it; its
    component is the connected region of that label around it (at the working resolution)."""
    h, w = labels.shape
    rows = np.minimum(((np.arange(n) + 0.5) * h / n).astype(int), h - 1)
    cols = np.minimum(((np.arange(n) + 0.5) * w / n).astype(int), w - 1)
    comp_map = np.zeros((h, w), np.int32)
    queries, k = [], 0
    for r in rows:
        for c in cols:
            cls = int(labels[r, c])
            if comp_map[r, c] == 0:
                comps, _ = ndimage.label(labels == cls, structure=np.ones((3, 3)))
                k += 1
                comp_map[(comps == comps[r, c]) & (comp_map == 0)] = k
            (x, y), = image_xy(np.array([r]), np.array([c]), (h, w), image_size)
            area = float((comp_map == comp_map[r, c]).sum())
            queries.append(Query(len(queries), float(x), float(y), cls, 1.0, float(probs[cls, r, c]), area,
                                 int(comp_map[r, c])))
    return QuerySet(queries, 0.0, {1.0: comp_map}, "query generator off: a regular grid of points")
