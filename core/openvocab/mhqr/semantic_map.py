"""Stage 6: masks -> semantic map. Masks are painted over the dense labels in order of score (the best last, so
on top); pixels no mask covers keep the dense prediction, so the map is never less covered than the dense one."""

from __future__ import annotations

import numpy as np

from core.openvocab.mhqr.dense import resize_nearest
from core.openvocab.mhqr.masks import MaskSet


def paint_semantic_map(dense_labels: np.ndarray, ms: MaskSet) -> tuple[np.ndarray, np.ndarray]:
    """(h, w) labels and (h, w) bool: which pixels a mask decided."""
    labels = np.asarray(dense_labels).astype(np.int32, copy=True)
    covered = np.zeros(labels.shape, bool)
    for i in np.argsort(ms.scores, kind="stable"):
        labels[ms.masks[i]] = ms.classes[i]
        covered |= ms.masks[i]
    return labels, covered


def labels_at(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Working-resolution labels at another size (nearest, pixel centres), e.g. the image's for scoring."""
    return resize_nearest(labels, size)
