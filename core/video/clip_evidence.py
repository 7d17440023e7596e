"""Per-frame class evidence from dense CLIP (core.video.stages.ClassEvidence): mask-pooled patch features against the
class text embeddings, plus a 'no object' logit.

Per frame asked, the dense predictor (core.openvocab.sclip.SCLIPPredictor, SCLIP or NACLIP) runs once for all the
tracks' masks with keep_features: L2-normalised patch features F (gh, gw, E) on the resized frame's patch grid and
the classes' unit text embeddings (80 templates, synonyms averaged). A track's pooled feature is the mean of F over
its mask's pixels at the processing size, each pixel taking the patch its centre falls in (pixels past the grid's
last whole patch take the last one): every patch is weighted by the mask's area inside it. Its logits are
logit_scale × cosine(pooled, text_c) for each class c, then the 'no object' entry.

'No object': the cosine with a background prompt's embedding (core.video.class_prompts: "background" by default,
the name SCLIP's VOC class 0 uses, through the same templates), times the same logit scale, so 'no object' is one
more zero-shot class that wins where the mask looks like none of the user's classes; the detector uses the same
prompt to keep background regions out of its detections. With no background names, the entry is a fixed cosine
(`no_object_cosine` × logit_scale): an object must beat that cosine to outweigh 'no object'.

Cost (dense CLIP on every frame at full size is too slow on a CPU): the frame is resized to `short_side` (default
224, one CLIP input's side) and, with `single_crop`, the whole resized frame is one crop (its positional
embeddings interpolated) instead of 224-pixel windows at stride 112. `every`: the tracker asks for evidence on
frames t with t % every == 0 and on any frame where a live track has none yet (core.video.tracker); frames in
between carry no evidence and weigh 0 in the temporal classification.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from core.errors import BadInput
from core.openvocab.sclip import DenseConfig, SCLIPPredictor
from core.video.class_prompts import BACKGROUND, dense_classes

SINGLE_CROP = 2048  # a crop side no resized frame exceeds (the keep-ratio resize caps the long side at 2048)


@dataclass(frozen=True)
class EvidenceConfig:
    every: int = 1  # evidence on frames t % every == 0 (and wherever a track has none yet)
    short_side: int = 224  # the frame's short side for CLIP; never above the frame's own
    single_crop: bool = True  # the whole resized frame as one crop; else SCLIP's 224 windows at stride 112
    dense: DenseConfig = field(default_factory=DenseConfig)  # method (sclip, naclip) and switches; sizes set above
    logit_scale: float = 40.0  # SCLIP's: cosines are ~0.1-0.3 apart at most, the softmax needs them spread
    background: tuple[str, ...] = BACKGROUND  # the 'no object' prompt's names; () for the fixed cosine below
    no_object_cosine: float = 0.2  # only without background names

    def __post_init__(self):
        if self.every < 1:
            raise BadInput(f"The class evidence interval must be at least 1 frame (got {self.every}).")
        if self.short_side < 16:
            raise BadInput(f"The class evidence's short side must be at least one 16-pixel patch "
                           f"(got {self.short_side}).")
        if not self.logit_scale > 0:
            raise BadInput(f"The evidence's logit scale must be positive (got {self.logit_scale}).")


def cell_index(size: tuple[int, int], working: tuple[int, int], grid: tuple[int, int], patch: int) -> np.ndarray:
    """(h, w) int: for each pixel of a frame of `size`, the flat index of the patch its centre falls in, the frame
    resized to `working` and cut into `patch`-pixel patches, `grid` of them (the last partial patch dropped)."""
    h, w = size
    rows = np.minimum(((np.arange(h) + 0.5) * working[0] / h // patch).astype(np.int64), grid[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * working[1] / w // patch).astype(np.int64), grid[1] - 1)
    return rows[:, None] * grid[1] + cols[None, :]


def pool(features: np.ndarray, cells: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(E,) unit vector: the mean over the mask's pixels of the feature of the patch under each (zeros if empty)."""
    gh, gw, e = features.shape
    counts = np.bincount(cells[mask], minlength=gh * gw).astype(np.float64)
    v = counts @ features.reshape(gh * gw, e).astype(np.float64)
    n = np.linalg.norm(v)
    return (v / n if n > 0 else v).astype(np.float32)


class ClipEvidence:
    """ClassEvidence over a dense CLIP predictor; one dense pass per frame asked, for all the masks."""

    def __init__(self, predictor: SCLIPPredictor, class_names: list[str], cfg: EvidenceConfig = EvidenceConfig()):
        self.predictor, self.cfg = predictor, cfg
        self.classes = dense_classes(list(class_names), cfg.background)
        self.num_classes = len(class_names)
        self.every = cfg.every
        self.patch = int(predictor.model.visual.conv1.kernel_size[0])

    def dense_cfg(self, frame: np.ndarray) -> DenseConfig:
        short = min(self.cfg.short_side, min(frame.shape[:2]))
        crop = dict(crop=SINGLE_CROP, stride=SINGLE_CROP) if self.cfg.single_crop else {}
        return replace(self.cfg.dense, short_side=short, prob_thd=0.0, area_thd=None, pamr=False, crf=False, **crop)

    def features(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The frame's patch features (gh, gw, E), the text embeddings (C or C + 1 with the background, E) and the
        (h, w) patch index of each frame pixel."""
        res = self.predictor.predict(frame, self.classes, self.dense_cfg(frame), keep_features=True)
        feats = np.asarray(res.features, np.float32)
        working = tuple(res.probs.shape[1:])
        cells = cell_index(frame.shape[:2], working, feats.shape[:2], self.patch)
        return feats, np.asarray(res.text, np.float32), cells

    def scores(self, pooled: np.ndarray, text: np.ndarray) -> np.ndarray:
        """(C + 1,) logits of one pooled feature."""
        cos = text.astype(np.float64) @ pooled.astype(np.float64)
        if not self.cfg.background:
            cos = np.append(cos, self.cfg.no_object_cosine)
        return (self.cfg.logit_scale * cos).astype(np.float32)

    def logits(self, frame_idx: int, frame: np.ndarray, masks: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        if not masks:
            return {}
        frame = np.asarray(frame)
        feats, text, cells = self.features(frame)
        out = {}
        for tid, m in masks.items():
            m = np.asarray(m, bool)
            if m.shape != frame.shape[:2]:
                raise ValueError(f"mask of track {tid} is {m.shape}, the frame is {frame.shape[:2]}")
            out[tid] = self.scores(pool(feats, cells, m), text)
        return out
