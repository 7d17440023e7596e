"""The model-backed stages of tracking, built from one typed configuration: what `python -m core track` and
`evaluate-video` (and a tab) hand core.video.tracker.track_clip.

Detector: MHQR over SCLIP/NACLIP with SAM2 point masks (core.video.mhqr_detector.MHQRDetector), or the dense map's
components without SAM2 (`detector="dense-components"`). Propagator: SAM2 video (core.video.sam2_propagator) at a
`sam2_frame` square frame (512 by default: about 0.9 s a frame with hiera-tiny on two CPU cores against about 7 s
at the released 1024); the detector's SAM2 image model runs on the same frame (at 512 its encoder and decoder are
about 5x faster than at 1024). Evidence: dense CLIP pooled in the masks (core.video.clip_evidence.ClipEvidence) every
`evidence_every` frames at a `evidence_short_side` short side. One open_clip model serves the detector and the
evidence; every model comes from the registry (core.models), loaded once per process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import BadInput
from core.video.class_prompts import BACKGROUND, dense_classes, parse_background

__all__ = ["DETECTORS", "ModelStagesConfig", "build_model_stages", "parse_background"]  # parse_background: '--background'

DETECTORS = ("mhqr", "dense-components")
DENSE_METHODS = ("sclip", "naclip")


@dataclass(frozen=True)
class ModelStagesConfig:
    detector: str = "mhqr"
    dense_method: str = "sclip"
    dense_short_side: int = 224  # the detector's dense stage, capped at the frame's short side (SCLIP's 336 is 3x
    # slower on a 512 frame: 8 sliding crops instead of 3; SAM2 draws the masks' edges, the dense map only the points)
    dense_single_crop: bool = True  # detector and evidence: the resized frame as one CLIP crop, not 224 windows
    sam2: str = "sam2"  # MHQR's SAM2 image model: a size (sam2, sam2-small, ...) or a save_pretrained folder
    sam2_video: str = "sam2-video"  # the propagator's: a size (sam2-video, sam2-video-small, ...) or a folder
    sam2_frame: int | None = 512  # SAM2's square frame (propagator and detector), a multiple of 32; None: 1024
    min_area: int = 16  # a detection's pixels at the processing size
    evidence_every: int = 5
    evidence_short_side: int = 224
    background: tuple[str, ...] = BACKGROUND  # the 'no object' prompts of detector and evidence; () for none

    def __post_init__(self):
        from core.models.sam2_video import FRAME_MULTIPLE

        if self.detector not in DETECTORS:
            raise BadInput(f"Unknown detector '{self.detector}' (one of {', '.join(DETECTORS)}).")
        if self.dense_method not in DENSE_METHODS:
            raise BadInput(f"Unknown dense method '{self.dense_method}' (one of {', '.join(DENSE_METHODS)}).")
        f = self.sam2_frame
        if f is not None and (f < 2 * FRAME_MULTIPLE or f % FRAME_MULTIPLE):
            raise BadInput(f"SAM2's video frame must be a multiple of {FRAME_MULTIPLE} of at least "
                           f"{2 * FRAME_MULTIPLE} pixels (got {f}); 512 is the measured trade-off on a CPU.")
        for name, value in (("dense short side", self.dense_short_side),
                            ("evidence short side", self.evidence_short_side)):
            if value < 16:
                raise BadInput(f"The {name} must be at least one 16-pixel patch (got {value}).")
        if self.evidence_every < 1:
            raise BadInput(f"The class evidence interval must be at least 1 frame (got {self.evidence_every}).")
        if self.min_area < 1:
            raise BadInput(f"The detections' minimum area must be at least 1 pixel (got {self.min_area}).")

    def describe(self) -> dict:
        return {**asdict(self), "background": list(self.background)}


def _load(name: str, family: str, to_name):
    from core.models import registry

    if Path(name).expanduser().exists():
        return registry().get(str(Path(name).expanduser()), family=family)
    try:
        key = to_name(name)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return registry().get(key)


def build_model_stages(class_names: list[str], cfg: ModelStagesConfig = ModelStagesConfig()) -> tuple:
    """(detector, propagator, evidence) for these classes. The class list is checked before any model loads."""
    from core.models import registry
    from core.models.sam2 import sam2_name
    from core.models.sam2_video import sam2_video_name
    from core.openvocab.mhqr.pipeline import MHQRConfig
    from core.openvocab.mhqr.sam2_masks import Sam2PointMasks
    from core.openvocab.sclip import DenseConfig, SCLIPPredictor
    from core.video.clip_evidence import ClipEvidence, EvidenceConfig
    from core.video.mhqr_detector import DenseComponentsDetector, DetectorConfig, MHQRDetector
    from core.video.sam2_propagator import Sam2Propagator

    dense_classes(list(class_names), cfg.background)  # refuses a bad list (e.g. a class named like the background)
    det_cfg = DetectorConfig(DenseConfig(method=cfg.dense_method, short_side=cfg.dense_short_side), MHQRConfig(),
                             cfg.background, cfg.min_area, single_crop=cfg.dense_single_crop)
    ev_cfg = EvidenceConfig(every=cfg.evidence_every, short_side=cfg.evidence_short_side,
                            single_crop=cfg.dense_single_crop, dense=DenseConfig(method=cfg.dense_method),
                            background=cfg.background)
    clip = SCLIPPredictor(registry().get("openclip"))
    if cfg.detector == "mhqr":
        sam2 = _load(cfg.sam2, "sam2", sam2_name).at_frame(cfg.sam2_frame)  # the propagator's frame
        detector = MHQRDetector(clip, Sam2PointMasks(sam2), class_names, det_cfg)
    else:
        detector = DenseComponentsDetector(clip, class_names, det_cfg)
    propagator = Sam2Propagator(_load(cfg.sam2_video, "sam2-video", sam2_video_name), frame=cfg.sam2_frame)
    return detector, propagator, ClipEvidence(clip, class_names, ev_cfg)
