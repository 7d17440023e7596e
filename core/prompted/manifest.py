"""Manifests: COCO exports -> one CSV of (image, label) rows, re-split label-aware by image_id."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from core.data.coco import ANNOTATION_FILE, load_coco, union_mask
from core.errors import BadInput
from core.prompted.prompts import LABEL_PROMPTS

SPLITS = ("train", "val", "test")
EXPORT_LABELS = (  # first match on the export's folder name wins
    (re.compile(r"crack", re.I), "crack"),
    (re.compile(r"join|seam|tap(e|ing)|drywall", re.I), "taping_area"),
)


@dataclass
class ManifestRow:
    image_path: str
    image_id: str
    label: str
    split: str
    source: str
    coco_file: str
    coco_image_id: int
    annotation_ids: str  # ';'-joined; empty: no annotation for this label (empty mask)
    height: int
    width: int

    def ann_ids(self) -> list[int]:
        return [int(a) for a in self.annotation_ids.split(";") if a]

    def mask(self) -> np.ndarray:
        return union_mask(self.coco_file, self.ann_ids(), self.height, self.width)


def label_for_export(name: str) -> str:
    for pattern, label in EXPORT_LABELS:
        if pattern.search(name):
            return label
    raise BadInput(f"Cannot tell the label of export '{name}'; give it as PATH=LABEL ({', '.join(LABEL_PROMPTS)}).")


def read_export(root: Path, label: str) -> list[ManifestRow]:
    """Every image of every annotation file below `root` (Roboflow: train/, valid/, test/)."""
    files = sorted(root.rglob(ANNOTATION_FILE))
    if not files:
        raise BadInput(f"No {ANNOTATION_FILE} found under {root}: is this a COCO Segmentation export?")
    source = re.sub(r"[^a-z0-9_-]+", "-", root.name.lower()).strip("-") or "export"
    rows = []
    for f in files:
        coco = load_coco(str(f.resolve()))
        for img_id, im in coco["images"].items():
            path = f.parent / im["file_name"]
            stem = Path(im["file_name"]).stem
            rows.append(ManifestRow(
                image_path=str(path.resolve()), image_id=f"{source}__{stem}", label=label, split="",
                source=source, coco_file=str(f.resolve()), coco_image_id=int(img_id),
                annotation_ids=";".join(str(a) for a in coco["by_image"].get(img_id, [])),
                height=int(im["height"]), width=int(im["width"]),
            ))
    return rows


def resplit(rows: list[ManifestRow], seed: int = 42, ratios=(0.7, 0.15, 0.15)) -> list[ManifestRow]:
    """Assign splits by image_id, stratified by each image's set of labels, deterministic for a seed."""
    labels_of: dict[str, set] = {}
    for r in rows:
        labels_of.setdefault(r.image_id, set()).add(r.label)
    strata: dict[tuple, list[str]] = {}
    for image_id, labs in labels_of.items():
        strata.setdefault(tuple(sorted(labs)), []).append(image_id)
    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    for key in sorted(strata):
        ids = sorted(strata[key])
        rng.shuffle(ids)
        n = len(ids)
        n_val = max(1, round(ratios[1] * n)) if n >= 3 else 0
        n_test = max(1, round(ratios[2] * n)) if n >= 3 else 0
        n_train = n - n_val - n_test
        for i, image_id in enumerate(ids):
            split_of[image_id] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    out = [ManifestRow(**{**asdict(r), "split": split_of[r.image_id]}) for r in rows]
    for label in sorted({r.label for r in rows}):
        missing = [s for s in SPLITS if not any(r.label == label and r.split == s for r in out)]
        if missing:
            raise BadInput(f"Label '{label}' has too few images to appear in every split (missing: {', '.join(missing)}).")
    return out


def write_manifest(rows: list[ManifestRow], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[f.name for f in fields(ManifestRow)])
        w.writeheader()
        for r in rows:  # paths relative to the manifest, so a dataset folder can move as a whole
            d = asdict(r)
            for key in ("image_path", "coco_file"):
                d[key] = os.path.relpath(d[key], path.parent.resolve())
            w.writerow(d)
    tmp.replace(path)


def read_manifest(path: Path, split: str | None = None) -> list[ManifestRow]:
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"Manifest not found: {path}")
    names = [f.name for f in fields(ManifestRow)]
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(names) - set(reader.fieldnames or [])
        if missing:
            raise BadInput(f"{path} is not a SegLab manifest (missing columns: {', '.join(sorted(missing))}).")
        rows = []
        for r in reader:
            try:
                rows.append(ManifestRow(**{
                    **{k: r[k] for k in names},
                    "image_path": str((path.parent / r["image_path"]).resolve()),
                    "coco_file": str((path.parent / r["coco_file"]).resolve()),
                    "coco_image_id": int(r["coco_image_id"]), "height": int(r["height"]), "width": int(r["width"]),
                }))
            except (TypeError, ValueError) as exc:
                raise BadInput(f"{path}, line {reader.line_num}: {exc}") from None
    if split is not None:
        if split not in SPLITS:
            raise BadInput(f"Unknown split '{split}'; use one of {', '.join(SPLITS)}.")
        rows = [r for r in rows if r.split == split]
    return rows


def prepare(exports: list[str], out: Path, seed: int = 42) -> list[ManifestRow]:
    """`exports` items are 'PATH' (label from the folder name) or 'PATH=LABEL'."""
    rows: list[ManifestRow] = []
    for item in exports:
        path_s, _, label = item.partition("=")
        root = Path(path_s)
        if not root.is_dir():
            raise BadInput(f"Export folder not found: {root}")
        label = label or label_for_export(root.name)
        if label not in LABEL_PROMPTS:
            raise BadInput(f"Unknown label '{label}'; known labels: {', '.join(LABEL_PROMPTS)}.")
        rows += read_export(root, label)
    rows = resplit(rows, seed=seed)
    write_manifest(rows, Path(out))
    return rows
