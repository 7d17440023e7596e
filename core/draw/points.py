"""Point queries drawn on an image: a marker per point, its colour by class, its shape by scale, its number
beside it; negative points as crosses; one point can be highlighted with a ring. Numpy in, numpy out."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.draw.overlay import colour, downscale

MARKERS = ("circle", "square", "diamond", "triangle")  # by scale rank: the coarsest scale first


def marker_for(scale: float, scales: list[float]) -> str:
    """The marker of a scale among all scales drawn (sorted ascending: 0.25 circle, 0.5 square, 1.0 diamond)."""
    ordered = sorted(set(float(s) for s in scales))
    return MARKERS[min(ordered.index(float(scale)), len(MARKERS) - 1)]


def _marker(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, shape: str, fill, outline) -> None:
    if shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=outline, width=2)
    elif shape == "square":
        draw.rectangle([x - r, y - r, x + r, y + r], fill=fill, outline=outline, width=2)
    elif shape == "diamond":
        draw.polygon([(x, y - 1.3 * r), (x + 1.3 * r, y), (x, y + 1.3 * r), (x - 1.3 * r, y)], fill=fill,
                     outline=outline, width=2)
    else:
        draw.polygon([(x, y - 1.3 * r), (x + 1.2 * r, y + r), (x - 1.2 * r, y + r)], fill=fill, outline=outline,
                     width=2)


def _cross(draw: ImageDraw.ImageDraw, x: float, y: float, r: float) -> None:
    for width, col in ((5, (255, 255, 255)), (2, (0, 0, 0))):
        draw.line([x - r, y - r, x + r, y + r], fill=col, width=width)
        draw.line([x - r, y + r, x + r, y - r], fill=col, width=width)


def query_points(image: np.ndarray, points_xy: np.ndarray, classes: np.ndarray, scales: np.ndarray,
                 numbers: list[int] | None = None, negatives_xy: np.ndarray | None = None,
                 highlight: int | None = None, max_side: int = 1280, dim: float = 0.35) -> np.ndarray:
    """(H, W, 3) uint8 and N points (x, y) in its pixels -> the image (at most max_side, dimmed by `dim` so the
    markers stand out) with every point drawn. classes (N,) pick the colour (draw.overlay.colour), scales (N,) the
    marker, numbers (N,) the label (default 1..N); negatives_xy (M, 2) are drawn as crosses; `highlight` (an index
    into the points) gets a ring."""
    base, f = downscale(np.asarray(image), max_side)
    out = (base.astype(np.float32) * (1 - dim) + 255 * dim).astype(np.uint8) if dim else base.copy()
    canvas = Image.fromarray(out)
    draw = ImageDraw.Draw(canvas)
    pts = np.asarray(points_xy, np.float64).reshape(-1, 2) * f
    classes = np.asarray(classes).reshape(-1)
    scales = np.asarray(scales, np.float64).reshape(-1)
    if not (len(pts) == len(classes) == len(scales)):
        raise ValueError("points, classes and scales must have the same length")
    numbers = list(range(1, len(pts) + 1)) if numbers is None else list(numbers)
    r = max(4.0, min(canvas.size) / 90)
    font = ImageFont.load_default(size=max(10, int(2.4 * r)))
    if negatives_xy is not None and len(negatives_xy):
        for x, y in np.asarray(negatives_xy, np.float64).reshape(-1, 2) * f:
            _cross(draw, x, y, 0.8 * r)
    all_scales = list(scales)
    for i, ((x, y), k, s, n) in enumerate(zip(pts, classes, scales, numbers)):
        _marker(draw, x, y, r, marker_for(s, all_scales), colour(int(k)), (255, 255, 255))
        draw.text((x + r + 2, y - r - 2), str(n), fill=(0, 0, 0), font=font, stroke_width=2,
                  stroke_fill=(255, 255, 255))
    if highlight is not None and 0 <= highlight < len(pts):
        x, y = pts[highlight]
        draw.ellipse([x - 3 * r, y - 3 * r, x + 3 * r, y + 3 * r], outline=(0, 0, 0), width=3)
        draw.ellipse([x - 3 * r - 3, y - 3 * r - 3, x + 3 * r + 3, y + 3 * r + 3], outline=(255, 255, 0), width=2)
    return np.asarray(canvas)
