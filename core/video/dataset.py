"""A folder of clips with per-frame instance masks, the layout `python -m core evaluate-video --data DIR` reads:

    DIR/classes.txt                     one class a line
    DIR/clips/NAME.mp4                  any container FFmpeg reads (.mp4, .mkv, .webm, .avi, .mov)
    DIR/masks/NAME/00000.png ...        one PNG per decoded frame (8- or 16-bit), pixel = object id, 0 = background
    DIR/masks/NAME/instances.json       {"objects": {"<id>": class index, ...}}

core.data.synthetic.moving_shapes.write_eval_folder writes it. `FolderTruth` serves one clip's masks as ground
truth (one PNG read at a time) to the metrics and to the stand-ins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import BadInput

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")


@dataclass(frozen=True)
class ClipEntry:
    name: str
    video: Path
    masks: Path  # folder of per-frame PNGs
    objects: dict[int, int]  # object id -> class index
    n_masks: int


def read_classes(root: Path) -> list[str]:
    f = Path(root) / "classes.txt"
    if not f.is_file():
        raise BadInput(f"{root} has no classes.txt (one class a line).")
    names = [line.strip() for line in f.read_text().splitlines() if line.strip()]
    if not names:
        raise BadInput(f"{f} names no class.")
    return names


def list_clips(root: Path) -> tuple[list[str], list[ClipEntry]]:
    """(class names, clips) of an evaluation folder, checked; BadInput says what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"No such folder: {root}")
    classes = read_classes(root)
    videos = sorted(p for p in (root / "clips").glob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise BadInput(f"{root / 'clips'} holds no clip ({', '.join(VIDEO_SUFFIXES)}).")
    out = []
    for v in videos:
        masks = root / "masks" / v.stem
        meta = masks / "instances.json"
        if not meta.is_file():
            raise BadInput(f"Clip '{v.name}' has no {meta.relative_to(root)}.")
        objects = {int(k): int(c) for k, c in json.loads(meta.read_text()).get("objects", {}).items()}
        bad = {k: c for k, c in objects.items() if not 0 <= c < len(classes)}
        if bad:
            raise BadInput(f"{meta}: class indices {sorted(set(bad.values()))} are outside classes.txt "
                           f"({len(classes)} classes).")
        n = len(list(masks.glob("*.png")))
        if n == 0:
            raise BadInput(f"Clip '{v.name}' has no mask PNG in {masks.relative_to(root)}.")
        out.append(ClipEntry(v.stem, v, masks, objects, n))
    return classes, out


class FolderTruth:
    """One clip's ground truth from its mask folder: instances(t) reads frame t's PNG (the last one is cached)."""

    def __init__(self, entry: ClipEntry):
        self.entry = entry
        self.files = sorted(entry.masks.glob("*.png"))
        self._cache = (-1, None)
        self.size = self.instances(0).shape

    def _read(self, t: int) -> np.ndarray:
        return np.asarray(Image.open(self.files[t])).astype(np.int32)

    def __len__(self) -> int:
        return len(self.files)

    def object_classes(self) -> dict[int, int]:
        return dict(self.entry.objects)

    def instances(self, t: int) -> np.ndarray:
        if t >= len(self.files):
            raise BadInput(f"Clip '{self.entry.name}' has {len(self.files)} mask frames; frame {t} was decoded.")
        if self._cache[0] != t:
            inst = self._read(t)
            unknown = sorted(set(np.unique(inst).tolist()) - set(self.entry.objects) - {0})
            if unknown:
                raise BadInput(f"Clip '{self.entry.name}', mask {self.files[t].name}: object ids {unknown[:5]} are "
                               "not in instances.json.")
            self._cache = (t, inst)
        return self._cache[1]

    def position(self, obj: int, t: int) -> tuple[float, float] | None:
        """The centroid of the object's visible pixels (None when it is not visible)."""
        ys, xs = np.nonzero(self.instances(t) == obj)
        return (float(ys.mean()), float(xs.mean())) if len(ys) else None
