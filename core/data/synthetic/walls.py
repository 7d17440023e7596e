"""Synthetic drywall images with exact ground truth: plaster texture, cracks, taped seams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage


@dataclass
class WallSample:
    image: np.ndarray  # (H, W, 3) uint8
    crack: np.ndarray  # (H, W) bool
    taping_area: np.ndarray  # (H, W) bool


def plaster(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.uniform(195, 225)
    noise = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 2.0) * 6 + rng.normal(0, 2.5, (h, w))
    shade = np.linspace(-8, 8, w)[None, :] * rng.uniform(-1, 1)
    gray = base + noise + shade
    tint = np.array([1.0, 0.985, 0.95])
    return np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8)


def draw_wall(h: int = 384, w: int = 512, n_cracks: int = 1, n_seams: int = 1, seed: int = 0) -> WallSample:
    """A wall with jagged dark cracks (thin) and lighter taped seams (wide bands with feathered edges)."""
    rng = np.random.default_rng(seed)
    img = plaster(h, w, rng).astype(np.float32)
    seam_mask = Image.new("L", (w, h), 0)
    for _ in range(n_seams):
        d = ImageDraw.Draw(seam_mask)
        width = int(rng.integers(max(8, w // 30), max(10, w // 14)))
        if rng.random() < 0.5:
            x = int(rng.integers(w // 5, 4 * w // 5))
            d.rectangle([x - width // 2, 0, x + width // 2, h], fill=255)
        else:
            y = int(rng.integers(h // 5, 4 * h // 5))
            d.rectangle([0, y - width // 2, w, y + width // 2], fill=255)
    seam = np.asarray(seam_mask) > 0
    soft = ndimage.gaussian_filter(seam.astype(np.float32), 2.0)
    img = img * (1 - 0.25 * soft[..., None]) + np.array([245, 242, 232], np.float32) * 0.25 * soft[..., None]
    crack_mask = Image.new("L", (w, h), 0)
    for _ in range(n_cracks):
        d = ImageDraw.Draw(crack_mask)
        x, y = float(rng.uniform(0.1, 0.9) * w), float(rng.uniform(0.1, 0.9) * h)
        angle = rng.uniform(0, 2 * np.pi)
        pts = [(x, y)]
        for _ in range(int(rng.integers(12, 30))):
            angle += rng.normal(0, 0.5)
            step = rng.uniform(6, 14)
            x, y = x + step * np.cos(angle), y + step * np.sin(angle)
            pts.append((x, y))
        d.line(pts, fill=255, width=int(rng.integers(2, 4)), joint="curve")
    crack = np.asarray(crack_mask) > 0
    img[crack] = img[crack] * 0.35
    return WallSample(image=np.clip(img, 0, 255).astype(np.uint8), crack=crack, taping_area=seam)
