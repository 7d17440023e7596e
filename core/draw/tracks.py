"""Tracks over a video frame: each track's mask tinted in its id's colour, its label ("#id class score") in a box of
that colour at the mask's top-left. An id keeps its colour across frames (core.draw.overlay's palette)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.draw.label_map import label_map
from core.draw.overlay import colour

LABEL_HEIGHT = 11  # pixels above the mask's top for the default font's label box


def track_masks(image: np.ndarray, masks: list[tuple[int, np.ndarray, str]], alpha: float = 0.5) -> np.ndarray:
    """image (h, w, 3) uint8; masks: (track id, (h, w) bool, label). A new array; the input is untouched."""
    if not masks:
        return image.copy()
    top = max(i for i, _, _ in masks) + 1
    ids = np.full(image.shape[:2], -1, np.int32)
    for i, m, _ in masks:
        ids[m] = i
    out = Image.fromarray(label_map(image, ids, top, alpha=alpha, max_side=max(image.shape[:2])))
    draw, font = ImageDraw.Draw(out), ImageFont.load_default()
    for i, m, text in masks:
        ys, xs = np.nonzero(m)
        if len(ys):
            x, y = int(xs.min()), max(0, int(ys.min()) - LABEL_HEIGHT)
            draw.rectangle(draw.textbbox((x, y), text, font=font), fill=colour(i))
            draw.text((x, y), text, fill=(0, 0, 0), font=font)
    return np.asarray(out)
