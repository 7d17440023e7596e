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


def _iou(a: tuple, b: tuple) -> float:
    (sa, ma), (sb, mb) = a, b
    y0, y1 = min(sa[0].start, sb[0].start), max(sa[0].stop, sb[0].stop)
    x0, x1 = min(sa[1].start, sb[1].start), max(sa[1].stop, sb[1].stop)
    if max(sa[0].start, sb[0].start) >= min(sa[0].stop, sb[0].stop) or \
            max(sa[1].start, sb[1].start) >= min(sa[1].stop, sb[1].stop):
        return 0.0
    ca = np.zeros((y1 - y0, x1 - x0), bool)
    cb = np.zeros_like(ca)
    ca[sa[0].start - y0:sa[0].stop - y0, sa[1].start - x0:sa[1].stop - x0] = ma
    cb[sb[0].start - y0:sb[0].stop - y0, sb[1].start - x0:sb[1].stop - x0] = mb
    return float((ca & cb).sum() / max((ca | cb).sum(), 1))


def grid_vote(dense: DenseInput, generator: MaskGenerator, cfg: GridVoteConfig = GridVoteConfig(),
              encoded: bool = False) -> GridVoteResult:
    """encoded: the generator already holds dense.image (its set_image ran), so it is not encoded again."""
    t0 = time.perf_counter()
    size = dense.working_size
    if not encoded:
        generator.set_image(dense.image)
    points = grid_points(cfg.grid, dense.image_size)
    kept: list[list] = []  # [slices, crop, score]
    for start in range(0, len(points), cfg.chunk):
        pm = generator.point_masks(points[start:start + cfg.chunk], size)
        for i in range(len(pm)):
            which = [int(np.argmax(pm.scores[i]))] if cfg.keep == "best" else [0, 1, 2]
            for k in which:
                score = float(pm.scores[i, k])
                if score < cfg.min_score or not pm.masks[i, k].any():
                    continue
                sl = bbox(pm.masks[i, k])
                new = [sl, pm.masks[i, k][sl].copy(), score]
                clash = [j for j, old in enumerate(kept) if _iou(old[:2], new[:2]) > cfg.nms_iou]
                if not clash:
                    kept.append(new)
                elif all(kept[j][2] < score for j in clash):
                    for j in sorted(clash, reverse=True):
                        kept.pop(j)
                    kept.append(new)
    labels = dense.labels.astype(np.int32, copy=True)
    covered = np.zeros(size, bool)
    for sl, crop, _ in sorted(kept, key=lambda k: -int(k[1].sum())):
        cls = int(np.argmax(dense.probs[:, sl[0], sl[1]][:, crop].mean(1)))
        labels[sl][crop] = cls
        covered[sl][crop] = True
    return GridVoteResult(labels, covered, len(kept), len(points), time.perf_counter() - t0)
