"""Keyframe detectors on the open-vocabulary models (core.video.stages.Detector): MHQR, or the dense map's components.

`MHQRDetector`: the frame through the dense CLIP stage (core.openvocab.mhqr.clip_dense.ClipDense over an
SCLIPPredictor), then MHQR (queries -> SAM2 point masks -> merging; core.openvocab.mhqr.pipeline.run_mhqr with a
mask generator such as core.openvocab.mhqr.sam2_masks.Sam2PointMasks, which encodes the frame once). MHQR's merged
masks (`result.merged`: a mask, a class and a score each) become the Detections: score = MHQR's own, SAM2's predicted
IoU × the class's mean dense probability inside the mask, in [0, 1]. `DenseComponentsDetector` (MHQR off, no SAM2):
each class's connected components (8-neighbour, scipy.ndimage.label) of the dense label map; score = the class's
mean dense probability over the component.

Both score the user's classes plus the 'no object' class (core.video.class_prompts): masks of that class are not
detections. Sizes: the frame is already at the tracker's processing size (h, w). The dense stage resizes it to its
working resolution (mmcv keep-ratio to `short_side`), capped at the frame's own short side (upscaling a frame adds
patches, not detail; the tracker's default is 224, core.video.model_stages), in SCLIP's 224 windows at stride 112
or, with `single_crop` (the tracker's default), as one crop; masks at the working resolution are brought to (h, w)
by nearest pixel centres. A detection keeps at least `min_area` pixels at (h, w). Detections come
best first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from core.errors import BadInput
from core.openvocab.mhqr.clip_dense import ClipDense
from core.openvocab.mhqr.dense import DenseInput, resize_nearest
from core.openvocab.mhqr.masks import MaskGenerator, MaskSet
from core.openvocab.mhqr.pipeline import MHQRConfig, run_mhqr
from core.openvocab.sclip import DenseConfig, SCLIPPredictor
from core.video.class_prompts import BACKGROUND, dense_classes
from core.video.clip_evidence import SINGLE_CROP
from core.video.stages import Detection

EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


@dataclass(frozen=True)
class DetectorConfig:
    dense: DenseConfig = field(default_factory=DenseConfig)  # the dense method; short_side is capped per frame
    mhqr: MHQRConfig = field(default_factory=MHQRConfig)
    background: tuple[str, ...] = BACKGROUND  # the 'no object' class's names; () for none
    min_area: int = 16  # pixels at the processing size
    single_crop: bool = False  # the whole resized frame as one CLIP crop; False: SCLIP's 224 windows at stride 112

    def __post_init__(self):
        if self.min_area < 1:
            raise BadInput(f"The detections' minimum area must be at least 1 pixel (got {self.min_area}).")
        if self.dense.short_side < 16:
            raise BadInput(f"The dense stage's short side must be at least one 16-pixel patch "
                           f"(got {self.dense.short_side}).")
        if self.dense.prob_thd > 0 or self.dense.area_thd is not None:
            raise BadInput("The dense stage's prob_thd and area_thd send pixels to class 0, a class to track here "
                           "(the 'no object' class is the last): leave them off for tracking.")


class _DenseStage:
    """The dense CLIP stage shared by both detectors: the frame -> DenseInput at the working resolution."""

    def __init__(self, predictor: SCLIPPredictor, class_names: list[str], cfg: DetectorConfig = DetectorConfig()):
        self.predictor, self.cfg = predictor, cfg
        self.class_names = list(class_names)
        self.classes = dense_classes(self.class_names, cfg.background)
        self.num_classes = len(self.class_names)  # the user's; a class index >= this is 'no object'

    def dense_cfg(self, frame: np.ndarray) -> DenseConfig:
        short = min(self.cfg.dense.short_side, min(frame.shape[:2]))
        crop = dict(crop=SINGLE_CROP, stride=SINGLE_CROP) if self.cfg.single_crop else {}
        return replace(self.cfg.dense, short_side=short, **crop)

    def dense(self, frame: np.ndarray) -> DenseInput:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a frame must be (h, w, 3) uint8, got {frame.shape} {frame.dtype}")
        dense_in, _ = ClipDense(self.predictor, self.dense_cfg(frame))(frame, self.classes)
        return dense_in

    def detection(self, mask: np.ndarray, cls: int, score: float, size: tuple[int, int]) -> Detection | None:
        """A working-resolution mask as a Detection at `size`, or None ('no object' class, or under min_area)."""
        if cls >= self.num_classes:
            return None
        full = resize_nearest(np.asarray(mask, bool), size)
        if int(full.sum()) < self.cfg.min_area:
            return None
        return Detection(np.ascontiguousarray(full), int(cls), float(score))


def _best_first(dets: list[Detection | None]) -> list[Detection]:
    return sorted((d for d in dets if d is not None), key=lambda d: -d.score)


class MHQRDetector(_DenseStage):
    """Detector: dense CLIP -> MHQR (with the mask generator given, e.g. Sam2PointMasks) -> merged masks."""

    def __init__(self, predictor: SCLIPPredictor, masks: MaskGenerator | None, class_names: list[str],
                 cfg: DetectorConfig = DetectorConfig()):
        super().__init__(predictor, class_names, cfg)
        if cfg.mhqr.masks and masks is None:
            raise ValueError("MHQR's masks stage needs a mask generator (or MHQRConfig(masks=False))")
        self.masks = masks
        # the last keyframe's merged masks at the working resolution and MHQR's notes, for inspection (MHQR's other
        # intermediates, e.g. three masks per query, are not kept between keyframes)
        self.last_merged: MaskSet | None = None
        self.messages: list[str] = []

    def detect(self, frame_idx: int, frame: np.ndarray) -> list[Detection]:
        size = tuple(np.asarray(frame).shape[:2])
        result = run_mhqr(self.dense(frame), self.masks, self.cfg.mhqr)
        merged = self.last_merged = result.merged
        self.messages = list(result.messages)
        return _best_first([self.detection(m, int(c), float(s), size)
                            for m, c, s in zip(merged.masks, merged.classes, merged.scores)])


class DenseComponentsDetector(_DenseStage):
    """Detector without SAM2: each class's connected components of the dense label map (at the working resolution)."""

    def detect(self, frame_idx: int, frame: np.ndarray) -> list[Detection]:
        size = tuple(np.asarray(frame).shape[:2])
        dense = self.dense(frame)
        out = []
        for c in range(self.num_classes):
            comps, n = ndimage.label(dense.labels == c, structure=EIGHT_NEIGHBOURS)
            if n == 0:
                continue
            area = np.bincount(comps.ravel(), minlength=n + 1)
            prob = np.bincount(comps.ravel(), weights=dense.probs[c].ravel(), minlength=n + 1)
            scale = size[0] * size[1] / comps.size  # frame pixels per working pixel
            for k in range(1, n + 1):
                if area[k] * scale < self.cfg.min_area / 4:  # far too small at any rounding: skip the resize
                    continue
                out.append(self.detection(comps == k, c, float(prob[k] / area[k]), size))
        return _best_first(out)
