"""A semantic map tinted over its image: each class in its colour (draw.overlay.colour), the same colours as
the query points and legends. Numpy in, numpy out."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.draw.overlay import colour, downscale


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8: class k's colour in row k."""
    return np.array([colour(k) for k in range(n)], np.uint8).reshape(-1, 3)


def hex_colour(k: int) -> str:
    return "#%02x%02x%02x" % colour(k)


def label_map(image: np.ndarray, labels: np.ndarray, n_classes: int, alpha: float = 0.55,
              max_side: int = 1280) -> np.ndarray:
    """(H, W, 3) uint8 and (h, w) integer labels at any size -> the image (at most max_side) with every pixel
    tinted by its class; labels outside [0, n_classes) (e.g. 255, ignore) stay untinted."""
    base, _ = downscale(np.asarray(image), max_side)
    h, w = base.shape[:2]
    labels = np.asarray(labels)
    if labels.shape != (h, w):
        rows = np.minimum(((np.arange(h) + 0.5) * labels.shape[0] / h).astype(int), labels.shape[0] - 1)
        cols = np.minimum(((np.arange(w) + 0.5) * labels.shape[1] / w).astype(int), labels.shape[1] - 1)
        labels = labels[rows[:, None], cols[None]]
    valid = (labels >= 0) & (labels < n_classes)
    tint = palette(max(n_classes, 1))[np.where(valid, labels, 0)].astype(np.float32)
    out = base.astype(np.float32)
    out[valid] = (1 - alpha) * out[valid] + alpha * tint[valid]
    return out.clip(0, 255).astype(np.uint8)


def mask_tint(image: np.ndarray, mask: np.ndarray, rgb: tuple[int, int, int], alpha: float = 0.55,
              dim: float = 0.5) -> np.ndarray:
    """One mask (any size, nearest to the image's) in `rgb` over the image; outside it the image is dimmed."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    m = np.asarray(mask).astype(bool)
    if m.shape != (h, w):
        m = np.asarray(Image.fromarray(m).resize((w, h), Image.NEAREST))
    out = image.astype(np.float32)
    out[~m] = out[~m] * (1 - dim) + 255 * dim
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(rgb, np.float32)
    return out.clip(0, 255).astype(np.uint8)
