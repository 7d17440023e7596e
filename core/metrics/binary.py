"""Binary mask metrics: IoU, Dice, pixel accuracy, and all sweep thresholds in one pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SWEEP = tuple(round(0.1 * i, 1) for i in range(1, 10))  # 0.1 ... 0.9
THRESHOLD_RULE = ">="  # foreground when the probability is at least the threshold, as the published report does


def foreground(prob: np.ndarray, threshold: float) -> np.ndarray:
    """The boolean mask of a probability map: `prob >= threshold`, compared in the map's float dtype (as torch
    compares a float32 tensor with a Python float, and as `sweep_counts` counts)."""
    if np.issubdtype(prob.dtype, np.floating):
        threshold = np.asarray(threshold, dtype=prob.dtype)
    return prob >= threshold


def iou_dice(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """IoU and Dice of two boolean masks; both empty counts as a perfect 1.0."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    inter = int(np.logical_and(pred, gt).sum())
    p, g = int(pred.sum()), int(gt.sum())
    union = p + g - inter
    if union == 0:
        return 1.0, 1.0
    return inter / union, 2 * inter / (p + g)


@dataclass
class SweepCounts:
    """Per threshold: true positives, predicted positives; plus ground-truth positives and pixel count."""

    thresholds: tuple[float, ...]
    tp: np.ndarray
    pred_pos: np.ndarray
    gt_pos: int
    pixels: int

    def iou(self) -> np.ndarray:
        union = self.pred_pos + self.gt_pos - self.tp
        return np.where(union == 0, 1.0, self.tp / np.maximum(union, 1))

    def dice(self) -> np.ndarray:
        denom = self.pred_pos + self.gt_pos
        return np.where(denom == 0, 1.0, 2 * self.tp / np.maximum(denom, 1))

    def accuracy(self) -> np.ndarray:
        fp = self.pred_pos - self.tp
        fn = self.gt_pos - self.tp
        return (self.pixels - fp - fn) / self.pixels


def sweep_counts(prob: np.ndarray, gt: np.ndarray, thresholds=SWEEP) -> SweepCounts:
    """Counts for 'prob >= t' at every threshold (increasing), from one histogram of the probabilities.

    A pixel is foreground when its probability is at least the threshold (`probs >= threshold`, the rule of
    the published drywall report), so 0.5 is foreground at threshold 0.5."""
    # thresholds in the probabilities' dtype, as `prob >= t` compares them (float32 against a Python float)
    thr = np.asarray(thresholds, dtype=prob.dtype if np.issubdtype(prob.dtype, np.floating) else np.float64)
    if thr.ndim != 1 or np.any(np.diff(thr) <= 0):
        raise ValueError(f"sweep thresholds must be strictly increasing; got {list(thresholds)}")
    # number of thresholds at or below each probability: positive at threshold j iff idx > j
    idx = np.searchsorted(thr, prob.ravel(), side="right")
    gt = gt.astype(bool).ravel()
    n = len(thr)
    hist_all = np.bincount(idx, minlength=n + 1)
    hist_gt = np.bincount(idx[gt], minlength=n + 1)
    above_all = np.cumsum(hist_all[::-1])[::-1]  # above_all[k] = #pixels with idx >= k
    above_gt = np.cumsum(hist_gt[::-1])[::-1]
    return SweepCounts(tuple(thresholds), above_gt[1:].astype(np.int64), above_all[1:].astype(np.int64),
                       int(gt.sum()), int(gt.size))


def choose_threshold(thresholds, mean_iou) -> float:
    """Best mean IoU; ties go to the threshold nearest 0.5."""
    best = max(mean_iou)
    cands = [t for t, v in zip(thresholds, mean_iou) if np.isclose(v, best, rtol=0, atol=1e-12)]
    return float(min(cands, key=lambda t: abs(t - 0.5)))
