"""What each query asked and what became of it, kept compact for inspection after a run (the tab's query table
and click-to-inspect): the point, its class and scale, SAM2's three masks with their predicted IoU, which one
it kept, and the region it ended in (kept alone, merged with other queries, relabelled, or dropped).

Masks are kept bit-packed at the working resolution (N × 3 × h × w bits, N <= max_queries), so a trace of 200
queries on a 336 × 448 map holds about 11 MB, whatever the image's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.openvocab.mhqr.pipeline import MHQRResult
from core.openvocab.mhqr.queries import negative_points

GRANULARITY_NAMES = ("coarse", "medium", "fine")
ROW_COLUMNS = ["#", "class", "scale", "confidence", "x", "y", "SAM2 IoU", "kept", "ended as"]


def _pack(a: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    return np.packbits(np.asarray(a, bool).ravel()), tuple(a.shape)


def _unpack(packed: tuple[np.ndarray, tuple[int, ...]], index: int) -> np.ndarray:
    bits, shape = packed
    per = int(np.prod(shape[1:]))
    start, stop = index * per, (index + 1) * per
    flat = np.unpackbits(bits[start // 8:-(-stop // 8)])  # only the bytes holding this entry
    off = start % 8
    return flat[off:off + per].reshape(shape[1:]).astype(bool)


@dataclass
class QueryTrace:
    points_xy: np.ndarray  # (N, 2) original image pixels
    classes: np.ndarray  # (N,) int
    scales: np.ndarray  # (N,) float
    negatives_xy: list[np.ndarray]  # per query, (M_i, 2) negative points sent with it (empty when off)
    rows: list[list]  # one per query, ROW_COLUMNS
    working_size: tuple[int, int]
    _three: dict  # query index -> (scale, row within that scale's masks)
    _chosen: dict  # query index -> kept granularity (0, 1, 2) or -1
    _region: dict  # query index -> region index in the merged masks
    _packed_three: dict  # scale -> packed (N_s, 3, h, w)
    _packed_regions: tuple | None  # packed (M, h, w)
    _region_names: list[str]

    def __len__(self) -> int:
        return len(self.points_xy)

    def nearest(self, x: float, y: float, radius: float) -> int | None:
        """The query nearest (x, y) in original pixels, if within radius."""
        if not len(self):
            return None
        d = np.hypot(self.points_xy[:, 0] - x, self.points_xy[:, 1] - y)
        i = int(np.argmin(d))
        return i if d[i] <= radius else None

    def sam_masks(self, i: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Query i's three SAM2 masks (3, h, w) coarse → fine and their predicted IoU (3,), or (None, None)."""
        if i not in self._three:
            return None, None
        scale, j = self._three[i]
        return _unpack(self._packed_three[scale][0], j), self._packed_three[scale][1][j]

    def kept(self, i: int) -> int:
        return self._chosen.get(i, -1)

    def region(self, i: int) -> tuple[np.ndarray | None, str]:
        """The mask query i ended in (h, w) and its caption, or (None, why not)."""
        k = self._region.get(i)
        if k is None or self._packed_regions is None:
            return None, self.rows[i][-1]
        return _unpack(self._packed_regions, k), self._region_names[k]


def _fate(qid: int, cls: int, merged, names: list[str], class_names: list[str],
          number: dict[int, int]) -> tuple[int | None, str]:
    for k, src in enumerate(merged.sources):
        if qid in src:
            label = names[k]
            others = [f"#{number.get(s, s + 1)}" for s in src if s != qid]
            text = f"{label}" if not others else f"{label}, merged with {', '.join(others[:6])}" + \
                (f" (+{len(others) - 6})" if len(others) > 6 else "")
            if int(merged.classes[k]) != cls:
                text += f", relabelled {class_names[int(merged.classes[k])]}"
            return k, text
    return None, "dropped (empty mask)"


def trace_queries(result: MHQRResult, class_names: list[str], image_size: tuple[int, int]) -> QueryTrace:
    """A QueryTrace of one MHQR run; image_size = (H, W) of the original image (for the negative radius)."""
    qs, cfg = result.queries, result.config
    n = len(qs.queries)
    size = tuple(result.labels.shape)
    points = qs.points()
    classes = np.array([q.cls for q in qs.queries], np.int64)
    scales = np.array([q.scale for q in qs.queries], np.float64)
    negatives = [np.zeros((0, 2))] * n
    if cfg.masks and cfg.negatives and n:
        negatives = negative_points(qs.queries, cfg.negative_radius * float(np.hypot(*image_size)), cfg.max_negatives)
    three, chosen, packed_three = {}, {}, {}
    number = {q.id: i + 1 for i, q in enumerate(qs.queries)}
    for scale, pm in result.point_masks.items():
        ids = [i for i, q in enumerate(qs.queries) if q.scale == scale]
        packed_three[scale] = (_pack(pm.masks), pm.scores.copy())
        for j, i in enumerate(ids):
            three[i] = (scale, j)
            chosen[i] = int(result.chosen[scale][j])
    merged = result.merged
    region_names = [f"region {k + 1} ({class_names[int(c)]})" for k, c in enumerate(merged.classes)]
    regions, rows = {}, []
    for i, q in enumerate(qs.queries):
        k, fate = _fate(q.id, q.cls, merged, region_names, class_names, number)
        if k is not None:
            regions[i] = k
        if not cfg.masks:
            fate = f"{fate} (its dense component: masks off)"
        iou = float(packed_three[three[i][0]][1][three[i][1], chosen[i]]) if i in three else float("nan")
        rows.append([i + 1, class_names[q.cls], q.scale, round(q.confidence, 3), round(q.x, 1), round(q.y, 1),
                     round(iou, 3), GRANULARITY_NAMES[chosen[i]] if i in chosen else "-", fate])
    return QueryTrace(points, classes, scales, list(negatives), rows, size, three, chosen, regions, packed_three,
                      _pack(merged.masks) if len(merged) else None, region_names)
