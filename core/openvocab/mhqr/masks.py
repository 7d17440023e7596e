"""The mask-generator interface of MHQR: points in, three masks per point out (coarse, medium, fine).

`MaskGenerator` is what stage 3 calls (SAM2 in `sam2_masks`, a ground-truth stand-in in `standins`).
`order_by_area` sorts each query's three masks by area, largest first: SAM's multimask outputs are not
ordered by size, so granularity is assigned by area, not by output index. `choose_granularity` keeps one of
the three per query; `MaskSet` (masks with a class and a score each) is what stages 3 to 6 pass on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class PointMasks:
    """Three masks per point query, ordered coarse, medium, fine (largest area first)."""

    masks: np.ndarray  # (N, 3, h, w) bool at the requested size
    scores: np.ndarray  # (N, 3) float32 predicted IoU of each mask, same order

    def __post_init__(self) -> None:
        if self.masks.ndim != 4 or self.masks.shape[1] != 3:
            raise ValueError(f"masks must be (N, 3, h, w), got {self.masks.shape}")
        if self.scores.shape != self.masks.shape[:2]:
            raise ValueError(f"scores must be {self.masks.shape[:2]}, got {self.scores.shape}")

    def __len__(self) -> int:
        return int(self.masks.shape[0])


class MaskGenerator(Protocol):
    def set_image(self, image: np.ndarray) -> None:
        """(H, W, 3) uint8; encoded once per request."""
        ...

    def point_masks(
        self,
        points_xy: np.ndarray,
        size: tuple[int, int],
        negatives_xy: list[np.ndarray] | None = None,
    ) -> PointMasks:
        """points_xy (N, 2) float in original image pixels (x, y); size = (h, w) of the returned masks;
        negatives_xy[i]: (M_i, 2) negative points for query i (may be empty)."""
        ...


def empty_point_masks(size: tuple[int, int]) -> PointMasks:
    h, w = size
    return PointMasks(np.zeros((0, 3, h, w), bool), np.zeros((0, 3), np.float32))


def order_by_area(masks: np.ndarray, scores: np.ndarray) -> PointMasks:
    """Sort each query's 3 masks by area, largest first (stable: equal areas keep their order)."""
    masks = np.asarray(masks).astype(bool, copy=False)
    scores = np.asarray(scores, dtype=np.float32)
    if masks.ndim != 4 or masks.shape[1] != 3:
        raise ValueError(f"masks must be (N, 3, h, w), got {masks.shape}")
    areas = masks.reshape(masks.shape[0], 3, -1).sum(-1)
    order = np.argsort(-areas, axis=1, kind="stable")  # (N, 3)
    rows = np.arange(masks.shape[0])[:, None]
    return PointMasks(masks[rows, order], scores.reshape(masks.shape[0], 3)[rows, order])


@dataclass
class MaskSet:
    """Masks with a class each, at the working resolution (what stages 3-5 pass on)."""

    masks: np.ndarray  # (N, h, w) bool
    classes: np.ndarray  # (N,) int64
    scores: np.ndarray  # (N,) float32, higher is painted later (on top)
    scales: np.ndarray  # (N,) float32, the query scale each mask came from
    sources: list[list[int]]  # the query ids behind each mask

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @staticmethod
    def empty(size: tuple[int, int]) -> "MaskSet":
        return MaskSet(np.zeros((0, *size), bool), np.zeros(0, np.int64), np.zeros(0, np.float32),
                       np.zeros(0, np.float32), [])

    def take(self, idx) -> "MaskSet":
        idx = np.asarray(idx, np.int64)
        return MaskSet(self.masks[idx], self.classes[idx], self.scores[idx], self.scales[idx],
                       [self.sources[i] for i in idx])

    @staticmethod
    def concat(sets: list["MaskSet"], size: tuple[int, int]) -> "MaskSet":
        sets = [s for s in sets if len(s)]
        if not sets:
            return MaskSet.empty(size)
        return MaskSet(np.concatenate([s.masks for s in sets]), np.concatenate([s.classes for s in sets]),
                       np.concatenate([s.scores for s in sets]), np.concatenate([s.scales for s in sets]),
                       [src for s in sets for src in s.sources])


GRANULARITY = {"coarse": 0, "medium": 1, "fine": 2}


def bbox(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice]:
    rows, cols = np.nonzero(mask.any(1)), np.nonzero(mask.any(0))
    if not len(rows[0]):
        return slice(0, 0), slice(0, 0)
    h, w = mask.shape
    return (slice(max(rows[0][0] - margin, 0), min(rows[0][-1] + 1 + margin, h)),
            slice(max(cols[0][0] - margin, 0), min(cols[0][-1] + 1 + margin, w)))


def choose_granularity(pm: PointMasks, classes: np.ndarray, probs: np.ndarray,
                       mode: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Which of each query's three masks to keep, and the kept mask's score.

    "auto": the highest predicted IoU × agreement, where agreement is the soft IoU between the mask and the
    dense probability of the query's class around the three masks (a part misses the rest of its object, a
    region spills into other classes); "iou": SAM's own choice; "coarse", "medium", "fine": fixed. The score is
    the predicted IoU × the class's mean probability inside the mask. probs: (C, h, w) at the masks' size."""
    n = len(pm)
    if mode not in {"auto", "iou", *GRANULARITY}:
        raise ValueError(f"unknown granularity '{mode}' (auto, iou, coarse, medium, fine)")
    pick = np.zeros(n, np.int64)
    score = np.zeros(n, np.float32)
    for i in range(n):
        p = probs[classes[i]]
        union = pm.masks[i].any(0)
        if not union.any():
            continue
        sl = bbox(union, margin=4)
        m = pm.masks[i][:, sl[0], sl[1]]
        pw = p[sl]
        inside = (m * pw).reshape(3, -1).sum(1)
        area = m.reshape(3, -1).sum(1)
        mean_p = inside / np.maximum(area, 1)
        if mode == "auto":
            agree = inside / np.maximum(np.maximum(m, pw[None]).reshape(3, -1).sum(1), 1e-6)
            pick[i] = int(np.argmax(pm.scores[i] * agree * (area > 0)))
        elif mode == "iou":
            pick[i] = int(np.argmax(pm.scores[i] * (area > 0)))
        else:
            pick[i] = GRANULARITY[mode]
        score[i] = pm.scores[i, pick[i]] * mean_p[pick[i]]
    return pick, score
