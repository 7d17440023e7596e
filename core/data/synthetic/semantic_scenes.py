"""A drawn semantic-segmentation set with exact labels: sky over grass, a few small objects, ignore borders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ["sky", "grass", "car, vehicle", "person"]
COLOURS = [(110, 160, 230), (70, 150, 60), (200, 40, 40), (240, 200, 150)]


def draw_scene(seed: int, h: int = 96, w: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = np.zeros((h, w), np.uint8)
    horizon = int(rng.integers(h // 3, 2 * h // 3))
    label[horizon:] = 1
    lab_img = Image.fromarray(label)
    d = ImageDraw.Draw(lab_img)
    for _ in range(int(rng.integers(1, 3))):
        x, y = int(rng.integers(5, w - 30)), int(rng.integers(horizon, h - 10))
        d.rectangle([x, y - 8, x + int(rng.integers(10, 25)), y], fill=2)
    for _ in range(int(rng.integers(0, 3))):
        x, y = int(rng.integers(5, w - 8)), int(rng.integers(horizon - 10, h - 12))
        d.ellipse([x, y, x + 4, y + 10], fill=3)
    label = np.asarray(lab_img).copy()
    image = np.asarray(COLOURS, np.float32)[label] + rng.normal(0, 8, (h, w, 3))
    label[:2, :] = 255  # a strip of ignore pixels, as real sets have
    return np.clip(image, 0, 255).astype(np.uint8), label


def write_semantic_set(root: Path, n: int = 6, seed: int = 0) -> Path:
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, label = draw_scene(seed * 1000 + i)
        Image.fromarray(image).save(root / "images" / f"scene_{i:03d}.png")
        Image.fromarray(label).save(root / "labels" / f"scene_{i:03d}.png")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root
