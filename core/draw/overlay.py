"""Overlays of masks on images, with a legend, for the UI and the CLI."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

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
    canvas = Image.fromarray(outlined(image, masks, alpha=alpha, outline=0, max_side=max_side))
    return np.asarray(_with_legend(canvas, labels))


def outline_width(hw: tuple[int, int]) -> int:
    """An outline that stays visible at any size: about 1/300 of the long side, at least 1 pixel."""
    return max(1, round(max(hw) / 300))


def outlined(image: np.ndarray, masks: list[np.ndarray], alpha: float = 0.5, outline: int | None = None,
             max_side: int = 1600) -> np.ndarray:
    """Mask i filled in colour(i) at opacity `alpha` and its boundary drawn opaque, `outline` pixels wide (None:
    outline_width; 0: none), over the image (at most max_side a side; masks of another size are resized nearest).
    The result has the image's (downscaled) size, so it lines up with the photo in a before/after slider."""
    base, _ = downscale(np.asarray(image), max_side)
    out = base.astype(np.float32)
    hw = base.shape[:2]
    width = outline_width(hw) if outline is None else int(outline)
    for i, m in enumerate(masks):
        m = np.asarray(m)
        if m.shape[:2] != hw:
            m = np.asarray(Image.fromarray(m.astype(np.uint8) * (255 if m.dtype == bool else 1)).resize(
                (hw[1], hw[0]), Image.NEAREST))
        sel = m > 0
        rgb = np.asarray(colour(i), np.float32)
        out[sel] = (1 - alpha) * out[sel] + alpha * rgb
        if width > 0 and sel.any():
            edge = sel & ~ndimage.binary_erosion(sel, iterations=width, border_value=1)
            out[edge] = rgb
    return out.clip(0, 255).astype(np.uint8)


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
