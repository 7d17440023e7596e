"""COCO-format exports (Roboflow "COCO Segmentation"): polygons or RLE to masks via pycocotools."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from core.errors import BadInput

ANNOTATION_FILE = "_annotations.coco.json"


@lru_cache(maxsize=16)
def load_coco(path: str) -> dict:
    """The parsed annotation file, indexed: images by id, annotations by id."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise BadInput(f"COCO annotation file not found: {p}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"COCO annotation file {p} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise BadInput(f"{p} is not a COCO file: it needs 'images' and 'annotations'.")
    return {
        "images": {im["id"]: im for im in data["images"]},
        "annotations": {a["id"]: a for a in data["annotations"]},
        "by_image": _group(data["annotations"]),
    }


def _group(annotations: list[dict]) -> dict:
    out: dict = {}
    for a in annotations:
        out.setdefault(a["image_id"], []).append(a["id"])
    return out


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """One annotation's mask (bool, H×W): polygon list, uncompressed RLE or compressed RLE."""
    seg = ann.get("segmentation")
    if not seg:
        x, y, w, h = ann.get("bbox", (0, 0, 0, 0))  # detection-only annotation: fill its box
        m = np.zeros((height, width), bool)
        m[int(round(y)): int(round(y + h)), int(round(x)): int(round(x + w))] = True
        return m
    if isinstance(seg, list):
        polys = [p for p in seg if len(p) >= 6]
        if not polys:
            return np.zeros((height, width), bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        rle = seg
    return mask_utils.decode(rle).astype(bool)


def union_mask(coco_path: str, annotation_ids: list[int], height: int, width: int) -> np.ndarray:
    coco = load_coco(coco_path)
    m = np.zeros((height, width), bool)
    for aid in annotation_ids:
        m |= annotation_mask(coco["annotations"][aid], height, width)
    return m
