"""Images side by side with a caption above each, on a white strip (e.g. a query's three SAM2 masks and the mask
it ended as). Numpy in, numpy out."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def panels(images: list[np.ndarray], captions: list[str], gap: int = 8, caption_h: int = 26,
           columns: int | None = None) -> np.ndarray:
    """Equal-height (H, W, 3) uint8 images in a grid (`columns` per row, default all in one row) with their
    captions above them."""
    if not images:
        raise ValueError("no images to lay out")
    if len(captions) != len(images):
        raise ValueError("one caption per image")
    h = max(im.shape[0] for im in images)
    w = max(im.shape[1] for im in images)
    cols = columns or len(images)
    rows = -(-len(images) // cols)
    canvas = Image.new("RGB", (cols * w + (cols - 1) * gap, rows * (h + caption_h) + (rows - 1) * gap), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=17)
    for i, (im, cap) in enumerate(zip(images, captions)):
        r, c = divmod(i, cols)
        x, y = c * (w + gap), r * (h + caption_h + gap)
        draw.text((x + 2, y + 3), cap[:80], fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(np.asarray(im, np.uint8)), (x, y + caption_h))
    return np.asarray(canvas)
