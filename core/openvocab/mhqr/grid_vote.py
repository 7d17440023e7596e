"""The baseline MHQR is measured against: CorrCLIP's last step ("grid-vote").

Class-agnostic masks from a regular grid × grid of points (each point keeps the mask SAM scores best, or all
three), duplicates removed by mask NMS (IoU above nms_iou keeps the higher predicted IoU); each mask takes the
class whose dense probability, averaged inside it, is highest; masks are painted largest first (so small ones
stay on top), and pixels no mask covers keep the dense label. Masks are kept as crops of their bounding boxes and
the points are sent in chunks, so memory grows with the masks' areas, not points × pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from core.openvocab.mhqr.dense import DenseInput, image_xy
from core.openvocab.mhqr.masks import MaskGenerator, bbox


@dataclass(frozen=True)
class GridVoteConfig:
    grid: int = 32
    chunk: int = 64
    keep: str = "all"  # "all": each point's three masks (as SAM's automatic mask generator); "best": its top one
    min_score: float = 0.0
    nms_iou: float = 0.7


@dataclass
class GridVoteResult:
    labels: np.ndarray  # (h, w) int32 at the working resolution
    covered: np.ndarray  # (h, w) bool, pixels a mask decided
    masks: int  # masks kept after NMS
    prompts: int
    seconds: float


def grid_points(n: int, image_size: tuple[int, int]) -> np.ndarray:
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return image_xy(rows.ravel(), cols.ravel(), (n, n), image_size)


def _iou(a: list, b: list) -> float:
    """IoU of two masks kept as [bounding-box slices, crop, score, area]: the intersection is counted on the
    overlap of the two boxes only, the union from the areas."""
    (sa, ma, _, aa), (sb, mb, _, ab) = a[:4], b[:4]
    y0, y1 = max(sa[0].start, sb[0].start), min(sa[0].stop, sb[0].stop)
    x0, x1 = max(sa[1].start, sb[1].start), min(sa[1].stop, sb[1].stop)
    if y0 >= y1 or x0 >= x1:
        return 0.0
    inter = np.count_nonzero(ma[y0 - sa[0].start:y1 - sa[0].start, x0 - sa[1].start:x1 - sa[1].start]
                             & mb[y0 - sb[0].start:y1 - sb[0].start, x0 - sb[1].start:x1 - sb[1].start])
    return float(inter / max(aa + ab - inter, 1))


def _boxes_overlap(boxes: np.ndarray, sl: tuple[slice, slice]) -> np.ndarray:
    """Indices of the (K, 4) [y0, y1, x0, x1] boxes that overlap sl's box."""
    if not len(boxes):
        return np.zeros(0, np.int64)
    hit = (np.maximum(boxes[:, 0], sl[0].start) < np.minimum(boxes[:, 1], sl[0].stop)) & \
          (np.maximum(boxes[:, 2], sl[1].start) < np.minimum(boxes[:, 3], sl[1].stop))
    return np.nonzero(hit)[0]


def grid_vote(dense: DenseInput, generator: MaskGenerator, cfg: GridVoteConfig = GridVoteConfig(),
              encoded: bool = False) -> GridVoteResult:
    """encoded: the generator already holds dense.image (its set_image ran), so it is not encoded again."""
    t0 = time.perf_counter()
    size = dense.working_size
    if not encoded:
        generator.set_image(dense.image)
    points = grid_points(cfg.grid, dense.image_size)
    kept: list[list] = []  # [slices, crop, score, area]
    boxes = np.zeros((0, 4), np.int64)  # kept masks' [y0, y1, x0, x1], in kept's order
    for start in range(0, len(points), cfg.chunk):
        pm = generator.point_masks(points[start:start + cfg.chunk], size)
        for i in range(len(pm)):
            which = [int(np.argmax(pm.scores[i]))] if cfg.keep == "best" else [0, 1, 2]
            for k in which:
                score = float(pm.scores[i, k])
                if score < cfg.min_score or not pm.masks[i, k].any():
                    continue
                sl = bbox(pm.masks[i, k])
                crop = pm.masks[i, k][sl].copy()
                new = [sl, crop, score, int(np.count_nonzero(crop))]
                clash = [int(j) for j in _boxes_overlap(boxes, sl) if _iou(kept[j], new) > cfg.nms_iou]
                if clash and not all(kept[j][2] < score for j in clash):
                    continue
                for j in sorted(clash, reverse=True):
                    kept.pop(j)
                boxes = np.delete(boxes, clash, axis=0)
                kept.append(new)
                boxes = np.vstack([boxes, [[sl[0].start, sl[0].stop, sl[1].start, sl[1].stop]]])
    labels = dense.labels.astype(np.int32, copy=True)
    covered = np.zeros(size, bool)
    for sl, crop, _, _ in sorted(kept, key=lambda k: -k[3]):
        cls = int(np.argmax(dense.probs[:, sl[0], sl[1]][:, crop].mean(1)))
        labels[sl][crop] = cls
        covered[sl][crop] = True
    return GridVoteResult(labels, covered, len(kept), len(points), time.perf_counter() - t0)
