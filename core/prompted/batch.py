"""Several files through the prompted segmenter: masks written, overlays made, a zip, a summary table.

Shared by the CLI and the web tab; a bad file is reported and the others still run."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import SegLabError
from core.data.images import load_image
from core.draw.overlay import downscale
from core.prompted.cleanup import Cleanup
from core.prompted.segmenter import PromptedRequest, PromptedSegmenter, write_masks
from core.prompted.prompts import image_id_safe

MAX_FILES = 16


@dataclass
class Preview:
    image_id: str
    image: np.ndarray  # at most PREVIEW_SIDE a side
    masks: list[np.ndarray]  # same size as `image`, uint8 {0,255}
    prompts: list[str]


PREVIEW_SIDE = 1600


@dataclass
class BatchResult:
    rows: list[dict] = field(default_factory=list)  # one per (image, prompt)
    errors: list[str] = field(default_factory=list)  # one per file that could not run
    previews: list["Preview"] = field(default_factory=list)  # downscaled image and masks, for display
    mask_paths: list[Path] = field(default_factory=list)
    zip_path: Path | None = None


def segment_files(seg: PromptedSegmenter, files: list[str], prompts: list[str], out_dir: Path,
                  threshold: float | None = None, size: int | None = None, cleanup: Cleanup = Cleanup(),
                  ensemble: bool = False, previews: bool = True, zip_name: str | None = None) -> BatchResult:
    out = BatchResult()
    if len(files) > MAX_FILES:
        out.errors.append(f"{len(files)} files given; the first {MAX_FILES} are processed.")
        files = files[:MAX_FILES]
    used_ids: set[str] = set()
    for f in files:
        name = Path(f).name
        try:
            image = load_image(f, name=name)
            image_id = image_id_safe(Path(name).stem)
            base, n = image_id, 2
            while image_id in used_ids:  # two uploads with the same stem keep both sets of masks
                image_id, n = f"{base}-{n}", n + 1
            used_ids.add(image_id)
            res = seg.run(PromptedRequest(image, image_id, prompts, threshold, size, cleanup, ensemble))
        except SegLabError as exc:
            out.errors.append(f"{name}: {exc}")
            continue
        paths = write_masks(res, out_dir)
        out.mask_paths += paths
        for m, p in zip(res.masks, paths):
            out.rows.append({
                "image": res.image_id, "prompt": m.prompt, "file": p.name, "coverage_%": round(100 * m.coverage, 3),
                "seconds": round(m.seconds, 4), "encode_s": round(res.encode_seconds, 4),
                "threshold": res.threshold, "size": res.size,
            })
        if previews:
            small, scale = downscale(image, PREVIEW_SIDE)
            wh = (small.shape[1], small.shape[0])
            masks = [m.mask if scale == 1.0 else np.asarray(Image.fromarray(m.mask).resize(wh, Image.NEAREST))
                     for m in res.masks]
            out.previews.append(Preview(res.image_id, small, masks, [m.prompt for m in res.masks]))
    if zip_name and out.mask_paths:
        out.zip_path = Path(out_dir) / zip_name
        with zipfile.ZipFile(out.zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for p in out.mask_paths:
                zf.write(p, arcname=p.name)
    return out
