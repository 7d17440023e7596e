"""Semantic-segmentation metrics: confusion matrix, per-class IoU, boundary F1, small-object IoU."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

IGNORE = 255
BOUNDARY_TOLERANCE_PX = 2
SMALL_OBJECT_PX = 32 * 32


def confusion(gt: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts, rows ground truth, columns prediction; ignore pixels (255) and labels >= n left out."""
    valid = (gt != IGNORE) & (gt < n)
    return np.bincount(n * gt[valid].astype(np.int64) + pred[valid].astype(np.int64), minlength=n * n).reshape(n, n)


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU; NaN for a class absent from both ground truth and prediction."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def boundaries(labels: np.ndarray) -> np.ndarray:
    b = np.zeros(labels.shape, bool)
    b[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    b[1:, :] |= labels[1:, :] != labels[:-1, :]
    return b


def boundary_f1(gt: np.ndarray, pred: np.ndarray, tol: int = BOUNDARY_TOLERANCE_PX) -> float | None:
    """F1 of class-boundary pixels matched within `tol` pixels; ignore regions count for neither side.

    None when neither map has a boundary (nothing to score)."""
    valid = gt != IGNORE
    bg = boundaries(np.where(valid, gt, -1)) & valid & ndimage.binary_erosion(valid, iterations=1, border_value=1)
    bp = boundaries(pred) & valid
    if not bg.any() and not bp.any():
        return None
    if not bg.any() or not bp.any():
        return 0.0
    dist_to_gt = ndimage.distance_transform_edt(~bg)
    dist_to_pred = ndimage.distance_transform_edt(~bp)
    precision = (dist_to_gt[bp] <= tol).mean()
    recall = (dist_to_pred[bg] <= tol).mean()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def small_object_ious(gt: np.ndarray, pred: np.ndarray, n: int, max_area: int = SMALL_OBJECT_PX) -> list[float]:
    """One IoU per ground-truth segment (connected, 8-neighbour) smaller than `max_area` pixels: the segment
    against the predicted regions of its class that touch it."""
    out = []
    for c in np.unique(gt):
        if c == IGNORE or c >= n:
            continue
        segs, k = ndimage.label(gt == c, structure=np.ones((3, 3)))
        if k == 0:
            continue
        areas = np.bincount(segs.ravel())
        pred_c = pred == c
        pred_regions, _ = ndimage.label(pred_c, structure=np.ones((3, 3)))
        for s in np.nonzero((areas > 0) & (areas < max_area))[0]:
            if s == 0:
                continue
            seg = segs == s
            touching = np.unique(pred_regions[seg & pred_c])
            touching = touching[touching > 0]
            region = np.isin(pred_regions, touching) if len(touching) else np.zeros_like(seg)
            inter = (seg & region).sum()
            out.append(float(inter / (seg | region).sum()))
    return out
