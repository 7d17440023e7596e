"""Overlays of masks on images, with a legend, for the UI and the CLI."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PALETTE = [
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40),
]


def colour(i: int) -> tuple[int, int, int]:
    if i < len(PALETTE):
        return PALETTE[i]
    rng = np.random.default_rng(i)
    return tuple(int(v) for v in rng.integers(40, 256, 3))


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR)), scale


def overlay(image: np.ndarray, masks: list[np.ndarray], labels: list[str], alpha: float = 0.5,
            max_side: int = 1600) -> np.ndarray:
    """Each mask tinted in its own colour over the image, a legend strip below; at most max_side wide/high."""
    base, scale = downscale(image, max_side)
    out = base.astype(np.float32)
    hw = base.shape[:2]
    for i, m in enumerate(masks):
        if scale != 1.0:
            m = np.asarray(Image.fromarray(m).resize((hw[1], hw[0]), Image.NEAREST))
        sel = m > 0
        out[sel] = (1 - alpha) * out[sel] + alpha * np.asarray(colour(i), np.float32)
    canvas = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    return np.asarray(_with_legend(canvas, labels))


def _with_legend(img: Image.Image, labels: list[str]) -> Image.Image:
    if not labels:
        return img
    font = ImageFont.load_default()
    row_h, pad = 18, 6
    height = pad * 2 + row_h * len(labels)
    legend = Image.new("RGB", (img.width, height), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    for i, label in enumerate(labels):
        y = pad + i * row_h
        draw.rectangle([pad, y + 2, pad + 14, y + 14], fill=colour(i))
        draw.text((pad + 22, y + 2), label[:120], fill=(0, 0, 0), font=font)
    out = Image.new("RGB", (img.width, img.height + height), (255, 255, 255))
    out.paste(img, (0, 0))
    out.paste(legend, (0, img.height))
    return out
