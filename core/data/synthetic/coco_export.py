"""A synthetic Roboflow-style COCO Segmentation export of drawn walls, with exact polygons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from skimage import measure

from core.data.synthetic.walls import draw_wall


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a mask as COCO polygons (x, y pairs)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    polys = []
    for contour in measure.find_contours(padded, 0.5):
        contour = contour - 1  # undo the padding
        if len(contour) >= 3:
            polys.append([float(v) for yx in contour for v in (yx[1], yx[0])])
    return polys


def write_export(root: Path, label: str, n_images: int, seed: int = 0, size=(192, 256), rle: bool = False,
                 empty_every: int = 0) -> Path:
    """root/{train,valid,test}/_annotations.coco.json with images; `label` is 'crack' or 'taping_area'.

    Every `empty_every`-th image has no annotation (its mask for the label is empty)."""
    root = Path(root)
    splits = {"train": range(0, n_images * 7 // 10), "valid": range(n_images * 7 // 10, n_images * 85 // 100),
              "test": range(n_images * 85 // 100, n_images)}
    ann_id = 1
    for split, idxs in splits.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        for i in idxs:
            sample = draw_wall(*size, n_cracks=int(label == "crack"), n_seams=int(label == "taping_area"),
                               seed=seed * 10_000 + i)
            empty = empty_every and i % empty_every == 0
            if empty:
                sample = draw_wall(*size, n_cracks=0, n_seams=0, seed=seed * 10_000 + i)
            name = f"wall_{i:04d}.jpg"
            Image.fromarray(sample.image).save(folder / name, quality=95)
            images.append({"id": i, "file_name": name, "height": size[0], "width": size[1]})
            mask = getattr(sample, label)
            if empty or not mask.any():
                continue
            if rle:
                enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                seg = {"size": enc["size"], "counts": enc["counts"].decode("ascii")}
            else:
                seg = mask_polygons(mask)
            ys, xs = np.nonzero(mask)
            anns.append({"id": ann_id, "image_id": i, "category_id": 1, "segmentation": seg, "iscrowd": int(rle),
                         "area": float(mask.sum()), "bbox": [float(xs.min()), float(ys.min()),
                                                             float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]})
            ann_id += 1
        coco = {"images": images, "annotations": anns,
                "categories": [{"id": 0, "name": label, "supercategory": "none"},
                               {"id": 1, "name": label, "supercategory": label}]}
        (folder / "_annotations.coco.json").write_text(json.dumps(coco))
    return root
