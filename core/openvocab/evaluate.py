"""`evaluate-semantic`: a dense predictor over a folder of images and label PNGs, resumable, as a results record."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.openvocab.class_names import ClassList
from core.errors import BadInput
from core.results.checkpoint import Checkpoint
from core.data.images import load_image
from core.results.records import new_record, write_record
from core.openvocab.sclip import METHODS, DenseConfig, variant_label
from core.metrics.semantic import (BOUNDARY_TOLERANCE_PX, SMALL_OBJECT_PX, boundary_f1, confusion,
                                   iou_from_confusion, small_object_ious)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class SemanticSample:
    image: Path
    label: Path


def find_samples(root: Path, max_images: int | None = None) -> list[SemanticSample]:
    images, labels = Path(root) / "images", Path(root) / "labels"
    if not images.is_dir() or not labels.is_dir():
        raise BadInput(f"{root} needs an images/ and a labels/ folder (label PNGs named like the images).")
    out = []
    for p in sorted(images.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            lab = labels / (p.stem + ".png")
            if not lab.is_file():
                raise BadInput(f"No label PNG for {p.name} (expected {lab}).")
            out.append(SemanticSample(p, lab))
    if not out:
        raise BadInput(f"No image found in {images}.")
    return out[:max_images] if max_images else out


def read_label(path: Path, hw: tuple[int, int]) -> np.ndarray:
    lab = np.asarray(Image.open(path))
    if lab.ndim != 2:
        raise BadInput(f"{path} must be a one-channel PNG of class indices (255 = ignore).")
    if lab.shape != hw:
        raise BadInput(f"{path} is {lab.shape[1]}×{lab.shape[0]} but its image is {hw[1]}×{hw[0]}.")
    return lab


def evaluate_semantic(root: Path, classes: ClassList, predictor, cfg: DenseConfig, out: Path, command: str,
                      method: str | None = None, max_images: int | None = None, dataset_name: str | None = None) -> dict:
    if method is not None and method != cfg.method:
        raise BadInput(f"method '{method}' differs from the configuration's '{cfg.method}'.")
    samples = find_samples(root, max_images)
    n = classes.n
    pipeline = getattr(predictor, "method", None)  # "mhqr" or "grid-vote" on top of the dense method
    stages = asdict(predictor.cfg) if pipeline == "mhqr" else asdict(predictor.grid) if pipeline else None
    variant = variant_label(cfg) + (f" + {pipeline.upper() if pipeline == 'mhqr' else pipeline} (SAM2)"
                                    if pipeline else "")
    key = hashlib.sha1(json.dumps([str(root), classes.names, asdict(cfg), max_images, pipeline, stages],
                                  sort_keys=True, default=str).encode()).hexdigest()[:16]
    ckpt = Checkpoint(Path(str(out) + ".partial.jsonl"), key)
    t_start = time.perf_counter()
    cm = np.zeros((n, n), np.int64)
    bf1, small, seconds, ran, queries, stage_s = [], [], [], set(), [], {}
    with ckpt.running():
        for s in tqdm(samples, desc="images", unit="img", leave=False):
            item = ckpt.done.get(("semantic", s.image.name, ""))
            if item is None:
                image = load_image(s.image)
                gt = read_label(s.label, image.shape[:2])
                res = predictor.predict(image, classes, cfg)
                c = confusion(gt, res.labels, n)
                nz = np.nonzero(c)
                item = {"phase": "semantic", "image_id": s.image.name, "label": "", "seconds": res.seconds,
                        "cm": [[int(i), int(j), int(c[i, j])] for i, j in zip(*nz)],
                        "bf1": boundary_f1(gt, res.labels), "small": small_object_ious(gt, res.labels, n),
                        "ran": res.ran, "queries": getattr(res, "queries", None),
                        "stage_seconds": getattr(res, "stage_seconds", None)}
                ckpt.add(item)
            for i, j, v in item["cm"]:
                cm[i, j] += v
            if item["bf1"] is not None:
                bf1.append(item["bf1"])
            small += item["small"]
            seconds.append(item["seconds"])
            ran.update(item["ran"])
            if item.get("queries") is not None:
                queries.append(item["queries"])
            for k, v in (item.get("stage_seconds") or {}).items():
                stage_s.setdefault(k, []).append(v)
    ious = iou_from_confusion(cm)
    per_class = {name: {"iou": None if np.isnan(v) else float(v), "pixels": int(cm[i].sum())}
                 for i, (name, v) in enumerate(zip(classes.classes, ious))}
    overall = {"miou": float(np.nanmean(ious)) if np.isfinite(ious).any() else 0.0,
               "pixel_accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
               "boundary_f1": float(np.mean(bf1)) if bf1 else None,
               "small_object_iou": float(np.mean(small)) if small else None,
               "n": len(samples)}
    for k in [k for k, v in overall.items() if v is None]:
        del overall[k]
    record = new_record(
        "openvocab", out.stem, {"kind": "measured", "command": command},
        model={"name": variant, "source": f"open_clip ViT-B/16; {METHODS[cfg.method]}" + (
                   f"; SAM2 ({predictor.masks.sam2.location})" if pipeline and hasattr(predictor.masks, "sam2") else ""),
               "image_size": cfg.short_side},
        dataset={"name": dataset_name or Path(root).name, "split": "eval", "n": len(samples), "n_images": len(samples),
                 "classes": len(classes.classes)},
        config={"variant": variant, "pipeline": pipeline or "dense", "stages": stages, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
                "ran": sorted(ran), "boundary_tolerance_px": BOUNDARY_TOLERANCE_PX,
                "small_object_px": SMALL_OBJECT_PX, "max_images": max_images},
        metrics={"overall": overall, "per_class": per_class,
                 **({"queries_per_image": {"mean": float(np.mean(queries)), "min": int(min(queries)),
                                           "max": int(max(queries))}} if queries else {})},
        timing={"seconds_per_image": float(np.mean(seconds)), "device": str(predictor.c.device),
                "total_seconds": time.perf_counter() - t_start,
                **({"seconds_per_stage": {k: float(np.mean(v)) for k, v in stage_s.items()}} if stage_s else {})},
    )
    write_record(record, out)
    ckpt.close(remove=True)
    return record
