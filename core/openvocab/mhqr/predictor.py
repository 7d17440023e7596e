"""MHQR and grid-vote behind the dense predictor's interface (`predict(image, classes, cfg)`), for
`evaluate-semantic --method mhqr|grid-vote` and the tab: the dense CLIP stage, SAM2 point masks, the map at the
image's size. `predict_variants` runs several MHQR configurations (an ablation) on one dense prediction and one
SAM2 image encoding."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from core.openvocab.class_names import ClassList
from core.openvocab.mhqr.clip_dense import ClipDense
from core.openvocab.mhqr.grid_vote import GridVoteConfig, grid_vote
from core.openvocab.mhqr.masks import MaskGenerator
from core.openvocab.mhqr.pipeline import STAGES, MHQRConfig, MHQRResult, describe, run_mhqr
from core.openvocab.mhqr.semantic_map import labels_at
from core.openvocab.sclip import DenseConfig, SCLIPPredictor

METHODS = ("mhqr", "grid-vote")


@dataclass
class MHQRPrediction:
    labels: np.ndarray  # (H, W) int32 at the image's size
    seconds: float
    ran: list[str]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    queries: int = 0  # prompts sent to SAM2
    result: MHQRResult | None = None  # MHQR's intermediates (None for grid-vote)
    dense: object = None  # the dense stage's DenseResult
    messages: list[str] = field(default_factory=list)  # MHQR's notes (e.g. no query placed: the dense map kept)

    @property
    def dense_kept(self) -> bool:
        """MHQR placed no query, so the map is the dense one (at the working resolution)."""
        return self.result is not None and not self.result.queries.queries


def ran_stages(cfg: MHQRConfig) -> str:
    """'mhqr(queries, masks, merge, semantic_map, negatives)': the stages on (negatives: with SAM2 masks only)."""
    on = [s for s in STAGES if getattr(cfg, s)] + (["negatives"] if cfg.masks and cfg.negatives else [])
    return f"mhqr({', '.join(on)})"


class MHQRPredictor:
    """Stage objects in, one call per image: dense CLIP (its method and switches from the DenseConfig given to
    predict) -> MHQR or grid-vote -> labels at the image's size (nearest from the working resolution). The image
    is encoded by SAM2 once per call (not at all when MHQR's masks are off)."""

    def __init__(self, dense: SCLIPPredictor, masks: MaskGenerator, method: str = "mhqr",
                 cfg: MHQRConfig = MHQRConfig(), grid: GridVoteConfig = GridVoteConfig()):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        self.dense, self.masks, self.method, self.cfg, self.grid = dense, masks, method, cfg, grid
        self.c = dense.c  # the device, for records

    def _shared(self, image: np.ndarray, classes: ClassList, cfg: DenseConfig, encode: bool, on_stage=None):
        """The dense stage and (when asked) SAM2's image encoding, with their seconds."""
        tick = on_stage or (lambda name: None)
        tick("dense")
        t0 = time.perf_counter()
        dense_in, dense_res = ClipDense(self.dense, cfg)(image, classes)
        t_dense = time.perf_counter() - t0
        t1 = time.perf_counter()
        if encode:
            tick("sam2_image")
            self.masks.set_image(image)
        return dense_in, dense_res, t_dense, time.perf_counter() - t1

    def _mhqr(self, dense_in, dense_res, image, cfg: MHQRConfig, t_dense: float, t_encode: float,
              on_stage=None) -> MHQRPrediction:
        t = time.perf_counter()
        result = run_mhqr(dense_in, self.masks, cfg, encoded=True, on_stage=on_stage)
        full = labels_at(result.labels, image.shape[:2]).astype(np.int32, copy=False)
        own = time.perf_counter() - t
        stages = {"dense": t_dense, "sam2_image": t_encode if cfg.masks else 0.0, **result.seconds}
        return MHQRPrediction(full, t_dense + stages["sam2_image"] + own, dense_res.ran + [ran_stages(cfg)], stages,
                              int(result.prompts), result, dense_res, list(result.messages))

    def predict(self, image: np.ndarray, classes: ClassList, cfg: DenseConfig = DenseConfig(),
                on_stage=None) -> MHQRPrediction:
        """on_stage(name): called as each stage starts (dense, sam2_image, then MHQR's stages or grid_vote)."""
        t0 = time.perf_counter()
        encode = self.method == "grid-vote" or self.cfg.masks
        dense_in, dense_res, t_dense, t_encode = self._shared(image, classes, cfg, encode, on_stage)
        if self.method == "mhqr":
            pred = self._mhqr(dense_in, dense_res, image, self.cfg, t_dense, t_encode, on_stage)
            pred.seconds = time.perf_counter() - t0
            return pred
        if on_stage:
            on_stage("grid_vote")
        gv = grid_vote(dense_in, self.masks, self.grid, encoded=True)
        stages = {"dense": t_dense, "sam2_image": t_encode, "grid_vote": gv.seconds}
        full = labels_at(gv.labels, image.shape[:2]).astype(np.int32, copy=False)
        ran = dense_res.ran + [f"grid-vote({self.grid.grid}×{self.grid.grid} points)"]
        return MHQRPrediction(full, time.perf_counter() - t0, ran, stages, int(gv.prompts), None, dense_res)

    def predict_variants(self, image: np.ndarray, classes: ClassList, cfg: DenseConfig,
                         variants: dict[str, MHQRConfig]) -> dict[str, MHQRPrediction]:
        """MHQR under each configuration, on one dense prediction and one SAM2 encoding of the image (skipped when
        no configuration uses SAM2 masks). Each prediction's stage_seconds carry the shared dense and sam2_image
        seconds (sam2_image 0 for a configuration without masks), and its seconds = those + its own stages, i.e.
        what it would cost alone."""
        if self.method != "mhqr":
            raise ValueError("predict_variants runs MHQR configurations; this predictor is grid-vote")
        encode = any(v.masks for v in variants.values())
        dense_in, dense_res, t_dense, t_encode = self._shared(image, classes, cfg, encode)
        return {name: self._mhqr(dense_in, dense_res, image, v, t_dense, t_encode) for name, v in variants.items()}

    def describe(self, cfg: MHQRConfig | None = None) -> tuple[dict, str]:
        """For a record: the switches (config.stages) and the name's suffix after the dense method's, e.g.
        ' + MHQR (SAM2)', ' + MHQR (SAM2) without merge; with refine', ' + grid-vote (SAM2)'."""
        if self.method == "grid-vote":
            return asdict(self.grid), " + grid-vote (SAM2)"
        cfg = cfg or self.cfg
        what = describe(cfg)
        return asdict(cfg), " + MHQR (SAM2)" + (f" {what}" if what else "")
