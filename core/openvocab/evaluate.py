"""`evaluate-semantic`: a dense predictor over a folder of images and label PNGs, resumable, as a results record;
`evaluate_ablation`: MHQR and its variants on the same images (the dense stage and SAM2's image encoding once per
image), one record each."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, fields
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


@dataclass
class Run:
    """One record to write: where, what ran (pipeline, its switches, the name shown), the resume key."""

    out: Path
    pipeline: str | None  # None (dense), "mhqr" or "grid-vote"
    stages: dict | None
    variant: str
    key: str = ""
    tally: "Tally" = None


@dataclass
class Tally:
    n: int
    cm: np.ndarray = None
    bf1: list = field(default_factory=list)
    small: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    ran: set = field(default_factory=set)
    queries: list = field(default_factory=list)
    stage_s: dict = field(default_factory=dict)
    dense_kept: int = 0

    def __post_init__(self):
        self.cm = np.zeros((self.n, self.n), np.int64)

    def add(self, item: dict) -> None:
        for i, j, v in item["cm"]:
            self.cm[i, j] += v
        if item["bf1"] is not None:
            self.bf1.append(item["bf1"])
        self.small += item["small"]
        self.seconds.append(item["seconds"])
        self.ran.update(item["ran"])
        if item.get("queries") is not None:
            self.queries.append(item["queries"])
        for k, v in (item.get("stage_seconds") or {}).items():
            self.stage_s.setdefault(k, []).append(v)
        self.dense_kept += bool(item.get("dense_kept"))


def score(image_id: str, gt: np.ndarray, res, n: int) -> dict:
    """One image's checkpoint row: its confusion entries, boundary F1, small-object IoUs, what ran, seconds."""
    c = confusion(gt, res.labels, n)
    nz = np.nonzero(c)
    return {"phase": "semantic", "image_id": image_id, "label": "", "seconds": res.seconds,
            "cm": [[int(i), int(j), int(c[i, j])] for i, j in zip(*nz)],
            "bf1": boundary_f1(gt, res.labels), "small": small_object_ious(gt, res.labels, n),
            "ran": res.ran, "queries": getattr(res, "queries", None),
            "stage_seconds": getattr(res, "stage_seconds", None), "dense_kept": getattr(res, "dense_kept", False)}


def describe_run(predictor, cfg: DenseConfig, out: Path, stages_cfg=None) -> Run:
    pipeline = getattr(predictor, "method", None)  # "mhqr" or "grid-vote" on top of the dense method
    stages, suffix = predictor.describe(stages_cfg) if pipeline else (None, "")
    return Run(Path(out), pipeline, stages, variant_label(cfg) + suffix)


def run_key(root: Path, classes: ClassList, cfg: DenseConfig, max_images, run: Run) -> str:
    return hashlib.sha1(json.dumps([str(root), classes.names, asdict(cfg), max_images, run.pipeline, run.stages],
                                   sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_all(root: Path, classes: ClassList, cfg: DenseConfig, runs: dict[str, Run], predict, max_images):
    """Every image once; `predict(image, names)` -> {name: prediction} for the runs not yet done on it (resumed
    from each run's .partial.jsonl beside its record)."""
    samples = find_samples(root, max_images)
    ckpts = {}
    for name, run in runs.items():
        run.key, run.tally = run_key(root, classes, cfg, max_images, run), Tally(classes.n)
        ckpts[name] = Checkpoint(Path(str(run.out) + ".partial.jsonl"), run.key)
    with contextlib.ExitStack() as stack:
        for ck in ckpts.values():
            stack.enter_context(ck.running())
        for s in tqdm(samples, desc="images", unit="img", leave=False):
            items = {name: ck.done.get(("semantic", s.image.name, "")) for name, ck in ckpts.items()}
            pending = [name for name, item in items.items() if item is None]
            if pending:
                image = load_image(s.image)
                gt = read_label(s.label, image.shape[:2])
                preds = predict(image, pending)
                for name in pending:
                    items[name] = score(s.image.name, gt, preds[name], classes.n)
                    ckpts[name].add(items[name])
            for name, item in items.items():
                runs[name].tally.add(item)
    return samples, ckpts


def build_record(run: Run, root: Path, classes: ClassList, cfg: DenseConfig, predictor, command: str, n: int,
                 max_images, dataset_name, total_seconds: float, config_extra=None, timing_extra=None) -> dict:
    t = run.tally
    ious = iou_from_confusion(t.cm)
    per_class = {name: {"iou": None if np.isnan(v) else float(v), "pixels": int(t.cm[i].sum())}
                 for i, (name, v) in enumerate(zip(classes.classes, ious))}
    overall = {"miou": float(np.nanmean(ious)) if np.isfinite(ious).any() else 0.0,
               "pixel_accuracy": float(np.trace(t.cm) / max(t.cm.sum(), 1)),
               "boundary_f1": float(np.mean(t.bf1)) if t.bf1 else None,
               "small_object_iou": float(np.mean(t.small)) if t.small else None, "n": n}
    for k in [k for k, v in overall.items() if v is None]:
        del overall[k]
    pipeline = run.pipeline
    sam2 = getattr(getattr(predictor, "masks", None), "sam2", None)
    return new_record(
        "openvocab", run.out.stem, {"kind": "measured", "command": command},
        model={"name": run.variant, "source": f"open_clip ViT-B/16; {METHODS[cfg.method]}" + (
                   f"; SAM2 ({sam2.location})" if pipeline and sam2 is not None else ""),
               "image_size": cfg.short_side},
        dataset={"name": dataset_name or Path(root).name, "split": "eval", "n": n, "n_images": n,
                 "classes": len(classes.classes)},
        config={"variant": run.variant, "pipeline": pipeline or "dense", "stages": run.stages,
                **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
                "ran": sorted(t.ran), "boundary_tolerance_px": BOUNDARY_TOLERANCE_PX,
                "small_object_px": SMALL_OBJECT_PX, "max_images": max_images,
                **({"sam2_frame": sam2.frame} if pipeline and sam2 is not None else {}), **(config_extra or {})},
        metrics={"overall": overall, "per_class": per_class,
                 **({"queries_per_image": {"mean": float(np.mean(t.queries)), "min": int(min(t.queries)),
                                           "max": int(max(t.queries))}} if t.queries else {}),
                 **({"images_dense_kept": t.dense_kept} if pipeline == "mhqr" else {})},
        timing={"seconds_per_image": float(np.mean(t.seconds)), "device": str(predictor.c.device),
                "total_seconds": total_seconds,
                **({"seconds_per_stage": {k: float(np.mean(v)) for k, v in t.stage_s.items()}} if t.stage_s else {}),
                **(timing_extra or {})},
    )


def evaluate_semantic(root: Path, classes: ClassList, predictor, cfg: DenseConfig, out: Path, command: str,
                      method: str | None = None, max_images: int | None = None, dataset_name: str | None = None) -> dict:
    if method is not None and method != cfg.method:
        raise BadInput(f"method '{method}' differs from the configuration's '{cfg.method}'.")
    t_start = time.perf_counter()
    run = describe_run(predictor, cfg, out)
    samples, ckpts = run_all(root, classes, cfg, {"run": run},
                             lambda image, _: {"run": predictor.predict(image, classes, cfg)}, max_images)
    record = build_record(run, root, classes, cfg, predictor, command, len(samples), max_images, dataset_name,
                          time.perf_counter() - t_start)
    write_record(record, run.out)
    ckpts["run"].close(remove=True)
    return record


def ablation_out(out: Path, name: str) -> Path:
    """NAME.json for 'mhqr', NAME-no-queries.json for 'mhqr-no-queries' (beside it)."""
    return out if name == "mhqr" else out.with_name(f"{out.stem}{name[len('mhqr'):]}{out.suffix or '.json'}")


def evaluate_ablation(root: Path, classes: ClassList, predictor, cfg: DenseConfig, variants: dict, out: Path,
                      command: str, max_images: int | None = None, dataset_name: str | None = None) -> dict[str, dict]:
    """variants: {name: MHQRConfig}, 'mhqr' (the full method) first, then e.g. 'mhqr-no-queries'. Per image, the
    dense stage and SAM2's image encoding run once and every variant reuses them (MHQRPredictor.predict_variants);
    each record says so in timing.shared. Returns {name: record}."""
    t_start = time.perf_counter()
    runs = {name: describe_run(predictor, cfg, ablation_out(Path(out), name), v) for name, v in variants.items()}
    for name, run in list(runs.items())[1:]:  # named for what ran, and as the ablation it belongs to
        run.variant += f" (ablation {name})"
    samples, ckpts = run_all(root, classes, cfg, runs, lambda image, names: predictor.predict_variants(
        image, classes, cfg, {n: variants[n] for n in names}), max_images)
    wall = time.perf_counter() - t_start
    base = variants[next(iter(variants))]
    switches = [f.name for f in fields(base) if isinstance(getattr(base, f.name), bool)]
    full, records = runs[next(iter(runs))].out.stem, {}
    for name, run in runs.items():
        off = [s for s in switches if getattr(base, s) and not getattr(variants[name], s)]
        ablation = {"name": name, "off": off, "of": full, "variants": list(variants),
                    "records": [r.out.name for r in runs.values()]}
        shared = {"stages": ["dense", "sam2_image"], "variants": len(runs),
                  "note": f"dense and sam2_image ran once per image and were reused by the {len(runs)} variants of "
                          "this ablation; each variant's seconds_per_image and total_seconds count them once (as if "
                          "it ran alone; sam2_image is 0 for a variant without SAM2 masks); ablation_wall_seconds "
                          "is the whole ablation's wall time"}
        records[name] = build_record(run, root, classes, cfg, predictor, command, len(samples), max_images,
                                     dataset_name, float(np.sum(run.tally.seconds)), {"ablation": ablation},
                                     {"shared": shared, "ablation_wall_seconds": wall})
        write_record(records[name], run.out)
    for ck in ckpts.values():
        ck.close(remove=True)
    return records
