"""MHQR and grid-vote behind the dense predictor's interface (`predict(image, classes, cfg)`), for
`evaluate-semantic --method mhqr|grid-vote` and the tab: the dense CLIP stage, SAM2 point masks, the map at the
image's size."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from core.openvocab.class_names import ClassList
from core.openvocab.mhqr.clip_dense import ClipDense
from core.openvocab.mhqr.grid_vote import GridVoteConfig, grid_vote
from core.openvocab.mhqr.masks import MaskGenerator
from core.openvocab.mhqr.pipeline import MHQRConfig, MHQRResult, run_mhqr
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


class MHQRPredictor:
    """Stage objects in, one call per image: dense CLIP (its method and switches from the DenseConfig given to
    predict) -> MHQR or grid-vote -> labels at the image's size (nearest from the working resolution)."""

    def __init__(self, dense: SCLIPPredictor, masks: MaskGenerator, method: str = "mhqr",
                 cfg: MHQRConfig = MHQRConfig(), grid: GridVoteConfig = GridVoteConfig()):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        self.dense, self.masks, self.method, self.cfg, self.grid = dense, masks, method, cfg, grid
        self.c = dense.c  # the device, for records

    def predict(self, image: np.ndarray, classes: ClassList, cfg: DenseConfig = DenseConfig()) -> MHQRPrediction:
        t0 = time.perf_counter()
        dense_in, dense_res = ClipDense(self.dense, cfg)(image, classes)
        t_dense = time.perf_counter() - t0
        t1 = time.perf_counter()
        self.masks.set_image(image)
        t_encode = time.perf_counter() - t1
        if self.method == "grid-vote":
            gv = grid_vote(dense_in, self.masks, self.grid)
            stages = {"dense": t_dense, "sam2_image": t_encode, "grid_vote": gv.seconds}
            labels, prompts, result = gv.labels, gv.prompts, None
            ran = dense_res.ran + [f"grid-vote({self.grid.grid}×{self.grid.grid} points)"]
        else:
            result = run_mhqr(dense_in, self.masks, self.cfg)
            stages = {"dense": t_dense, "sam2_image": t_encode, **result.seconds}
            labels, prompts = result.labels, result.prompts
            on = [s for s in ("queries", "masks", "refine", "merge", "semantic_map") if getattr(self.cfg, s)]
            ran = dense_res.ran + [f"mhqr({', '.join(on)})"]
        full = labels_at(labels, image.shape[:2]).astype(np.int32)
        return MHQRPrediction(full, time.perf_counter() - t0, ran, stages, int(prompts), result, dense_res)
