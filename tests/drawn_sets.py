"""A drywall-like set the training tests draw: bright thin lines ('crack') and wide bands ('taping area')."""

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.prompted.manifest import prepare
from core.data.synthetic.coco_export import mask_polygons


def draw(kind: str, seed: int, size: int = 96):
    rng = np.random.default_rng(seed)
    img = rng.normal(90, 12, (size, size)).clip(0, 255)
    m = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(m)
    if kind == "crack":
        if rng.random() < 0.5:
            d.line([(rng.uniform(0, size), 0), (rng.uniform(0, size), size)], fill=255, width=int(rng.integers(4, 7)))
        else:
            d.line([(0, rng.uniform(0, size)), (size, rng.uniform(0, size))], fill=255, width=int(rng.integers(4, 7)))
    elif kind == "taping_area":
        c = rng.uniform(15, size - 15)
        d.rectangle([c - 12, 0, c + 12, size] if rng.random() < 0.5 else [0, c - 12, size, c + 12], fill=255)
    mask = np.asarray(m) > 0
    img[mask] = rng.normal(200 if kind == "crack" else 160, 10, mask.sum())
    return np.repeat(img[..., None], 3, 2).astype(np.uint8), mask


def write_set(root: Path, kind: str, n: int, seed: int, empty: bool = False) -> Path:
    folder = root / "train"
    folder.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        image, mask = draw(kind, seed * 1000 + i)
        if empty:
            mask = np.zeros_like(mask)
        Image.fromarray(image).save(folder / f"{kind}_{i}.png")
        images.append({"id": i, "file_name": f"{kind}_{i}.png", "height": image.shape[0], "width": image.shape[1]})
        if mask.any():
            anns.append({"id": i + 1, "image_id": i, "category_id": 1, "segmentation": mask_polygons(mask),
                         "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": float(mask.sum())})
    (folder / "_annotations.coco.json").write_text(json.dumps({"images": images, "annotations": anns}))
    return root


def drawn_manifest(root: Path, n: int = 40, empty_tape: bool = False) -> Path:
    write_set(root / "crack", "crack", n, 1)
    write_set(root / "tape", "taping_area", n, 2, empty=empty_tape)
    out = root / "manifest.csv"
    prepare([f"{root / 'crack'}=crack", f"{root / 'tape'}=taping_area"], out)
    return out
