"""Prompted segmentation: image + prompts -> binary masks, one encoder pass per image."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.models.clipseg import SIZES, ClipSegPredictor
from core.errors import BadInput
from core.metrics.binary import foreground
from core.prompted.cleanup import Cleanup, clean_mask
from core.prompted.prompts import LABEL_PROMPTS, image_id_safe, mask_filename, unique_slugs


@dataclass
class PromptedRequest:
    image: np.ndarray  # (H, W, 3) uint8
    image_id: str
    prompts: list[str]
    threshold: float | None = None  # None: the model's stored threshold
    size: int | None = None  # None: the model's stored size
    cleanup: Cleanup = field(default_factory=Cleanup)
    ensemble: bool = False  # replace each label's canonical prompt by the mean over its synonyms


@dataclass
class PromptMask:
    prompt: str
    slug: str
    mask: np.ndarray  # (H, W) uint8 in {0, 255}
    coverage: float  # fraction of pixels set
    seconds: float  # decode + upsample + threshold for this prompt
    probability: np.ndarray | None = None  # (H, W) float32, kept only when asked


@dataclass
class PromptedResult:
    image_id: str
    masks: list[PromptMask]
    threshold: float
    size: int
    encode_seconds: float
    total_seconds: float


def check_threshold(t: float) -> float:
    t = float(t)
    if not 0.0 < t < 1.0:
        raise BadInput(f"Threshold must be between 0 and 1 (exclusive); got {t}.")
    return t


def check_size(size: int) -> int:
    if int(size) not in SIZES:
        raise BadInput(f"Model size must be one of {', '.join(map(str, SIZES))}; got {size}.")
    return int(size)


def ensemble_groups(prompts: list[str]) -> list[list[str]]:
    """With ensembling, a label's canonical prompt stands for all of its synonyms."""
    groups = []
    for p in prompts:
        label = next((lab for lab, ps in LABEL_PROMPTS.items() if ps[0] == p), None)
        groups.append(LABEL_PROMPTS[label] if label else [p])
    return groups


def probability_map(predictor, logits, hw: tuple[int, int]) -> np.ndarray:
    """One prompt's logits (S, S) to probabilities at `hw`: bilinear upsampling of the logits, then sigmoid;
    at the logits' own size, the sigmoid alone (as the published evaluation only resizes when sizes differ)."""
    if tuple(logits.shape[-2:]) == tuple(hw):
        return torch.sigmoid(logits.float()).numpy()
    return predictor.upsample_probabilities(logits, hw)


class PromptedSegmenter:
    """Runs requests against one predictor (any object with encode/decode/upsample_probabilities)."""

    def __init__(self, predictor: ClipSegPredictor, default_threshold: float = 0.5, default_size: int = 352):
        self.predictor = predictor
        self.default_threshold = default_threshold
        self.default_size = default_size

    def probabilities(self, image: np.ndarray, groups: list[list[str]], size: int,
                      hw: tuple[int, int] | None = None):
        """Encodes the image once; returns (encode seconds, iterator of (group index, probability map at
        `hw`, seconds for that group)). `hw` None: the image's size; (size, size): the model's own map, not
        resampled. Maps are made one at a time to bound memory."""
        t0 = time.perf_counter()
        encoded = self.predictor.encode(image, size)
        return time.perf_counter() - t0, self._decode_groups(encoded, tuple(hw or image.shape[:2]), groups)

    def _decode_groups(self, encoded, hw: tuple[int, int], groups: list[list[str]]):
        uniq = list(dict.fromkeys(p for g in groups for p in g))
        t0 = time.perf_counter()
        logits = self.predictor.decode(encoded, uniq)
        decode_each = (time.perf_counter() - t0) / len(uniq)
        index = {p: i for i, p in enumerate(uniq)}
        for gi, group in enumerate(groups):
            t1 = time.perf_counter()
            prob = probability_map(self.predictor, logits[index[group[0]]], hw)
            for p in group[1:]:
                prob += probability_map(self.predictor, logits[index[p]], hw)
            if len(group) > 1:
                prob /= len(group)
            yield gi, prob.astype(np.float32, copy=False), decode_each * len(group) + time.perf_counter() - t1

    def run(self, req: PromptedRequest, keep_probabilities: bool = False) -> PromptedResult:
        t_start = time.perf_counter()
        threshold = check_threshold(self.default_threshold if req.threshold is None else req.threshold)
        size = check_size(self.default_size if req.size is None else req.size)
        if req.image.ndim != 3 or req.image.shape[2] != 3 or req.image.dtype != np.uint8:
            raise BadInput("The image must be an RGB uint8 array (H, W, 3).")
        groups = ensemble_groups(req.prompts) if req.ensemble else [[p] for p in req.prompts]
        slugs = unique_slugs(req.prompts)
        masks: list[PromptMask] = []
        encode_seconds, decoded = self.probabilities(req.image, groups, size)
        for gi, prob, secs in decoded:
            t1 = time.perf_counter()
            binary = foreground(prob, threshold)  # prob >= threshold
            if req.cleanup.active:
                binary = clean_mask(binary, req.cleanup)
            mask = binary.astype(np.uint8) * 255
            masks.append(PromptMask(
                prompt=req.prompts[gi], slug=slugs[gi], mask=mask, coverage=float(binary.mean()),
                seconds=secs + time.perf_counter() - t1, probability=prob if keep_probabilities else None,
            ))
        return PromptedResult(
            image_id=image_id_safe(req.image_id), masks=masks, threshold=threshold, size=size,
            encode_seconds=encode_seconds, total_seconds=time.perf_counter() - t_start,
        )


def write_masks(result: PromptedResult, out_dir: Path) -> list[Path]:
    """One PNG per prompt, `{image_id}__{slug}.png`, one channel uint8 {0,255}; never outside out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()
    paths = []
    for m in result.masks:
        path = (out_dir / mask_filename(result.image_id, m.slug)).resolve()
        if path.parent != root:
            raise BadInput(f"Refusing to write outside {root}: {path}")
        tmp = path.with_name(path.name + ".tmp")
        Image.fromarray(m.mask, mode="L").save(tmp, format="PNG")
        tmp.replace(path)
        paths.append(path)
    return paths


def load_segmenter(model: str = "clipseg") -> PromptedSegmenter:
    """A segmenter on a registered name or a fine-tuned folder, with that model's stored defaults."""
    from core.models import registry

    clipseg = registry().get(model, family="clipseg")
    return PromptedSegmenter(ClipSegPredictor(clipseg), clipseg.threshold, clipseg.size)


def models_dir() -> Path:
    """Where fine-tuned folders live: SEGLAB_MODELS_DIR, else models/ in the repository."""
    import os

    from core.results.records import REPO_ROOT

    return Path(os.environ.get("SEGLAB_MODELS_DIR") or REPO_ROOT / "models")


def available_models(folder: Path | None = None) -> list[str]:
    """'clipseg' first, then every folder under models/ (or `folder`) that holds a saved CLIPSeg."""
    root = Path(folder) if folder is not None else models_dir()
    found = []
    if root.is_dir():
        for sub in sorted(root.iterdir()):
            if (sub / "config.json").is_file() and '"clipseg"' in (sub / "config.json").read_text():
                found.append(str(sub))
    return ["clipseg"] + found


def model_defaults(model: str) -> tuple[float, int]:
    """(threshold, size) stored with a fine-tuned folder, without loading it; hub defaults otherwise."""
    import json

    from core.models.clipseg import DEFAULT_SIZE, DEFAULT_THRESHOLD, METADATA_FILE

    meta = Path(model) / METADATA_FILE
    if model != "clipseg" and meta.is_file():
        try:
            d = json.loads(meta.read_text())
            return float(d.get("threshold", DEFAULT_THRESHOLD)), int(d.get("image_size", DEFAULT_SIZE))
        except (ValueError, TypeError):
            pass
    return DEFAULT_THRESHOLD, DEFAULT_SIZE
