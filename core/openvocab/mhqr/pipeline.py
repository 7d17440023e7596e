"""MHQR end to end: a dense prediction (DenseInput) -> queries -> SAM masks -> refinement -> merging -> map.

Each stage is an object passed in (a QueryGenerator, a MaskGenerator, a HierarchicalRefiner, a SemanticMerger;
defaults are built from the config). Each can be switched off in MHQRConfig: queries off puts a regular grid of
points with the dense label under each; masks off uses each query's dense component as its mask; refine and
merge off pass masks through; semantic_map off returns the dense map. The result keeps every intermediate and
the seconds each stage took; everything is at the dense map's working resolution (memory: the generator's
(N, 3, h, w) bool masks per scale, N <= max_queries, plus the (C, h, w) probabilities; never C × H × W).
Defaults were chosen on stand-in scenes 1000-1019 (bench/mhqr_synthetic.py reports seeds 0..N-1): refinement
off (it did not help), negative points on, query threshold 0.5 × the mean confidence.
The masks stage encodes the image (set_image) unless the caller already did (`encoded=True`: MHQRPredictor
times the encoding as its own stage and shares it between the configurations of an ablation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from core.openvocab.mhqr.dense import DenseInput, resize_nearest
from core.openvocab.mhqr.masks import MaskGenerator, MaskSet, PointMasks, choose_granularity
from core.openvocab.mhqr.merge import MergeConfig, SemanticMerger
from core.openvocab.mhqr.queries import QueryConfig, QueryGenerator, QuerySet, grid_queries, negative_points
from core.openvocab.mhqr.refine import HierarchicalRefiner, RefineConfig
from core.openvocab.mhqr.semantic_map import paint_semantic_map

STAGES = ("queries", "masks", "refine", "merge", "semantic_map")


@dataclass(frozen=True)
class MHQRConfig:
    queries: bool = True
    masks: bool = True
    refine: bool = False  # measured on the stand-ins, it did not help (bench/mhqr_synthetic.py): off by default
    merge: bool = True
    semantic_map: bool = True
    granularity: str = "auto"  # which of SAM's three masks a query keeps: auto, iou, coarse, medium, fine
    negatives: bool = True  # other classes' nearby queries as negative points
    negative_radius: float = 0.15  # as a fraction of the image's diagonal
    max_negatives: int = 3
    fallback_grid: int = 8  # queries off: fallback_grid × fallback_grid points
    query: QueryConfig = field(default_factory=QueryConfig)
    refinement: RefineConfig = field(default_factory=RefineConfig)
    merging: MergeConfig = field(default_factory=MergeConfig)

    def without(self, stage: str) -> "MHQRConfig":
        if stage not in STAGES:
            raise ValueError(f"unknown stage '{stage}' ({', '.join(STAGES)})")
        return replace(self, **{stage: False})


@dataclass
class MHQRResult:
    dense_labels: np.ndarray  # (h, w) int32
    queries: QuerySet
    point_masks: dict[float, PointMasks]  # per query scale: every query's three masks (coarse, medium, fine)
    chosen: dict[float, np.ndarray]  # per query scale: which of the three each query kept
    masks: MaskSet  # one per query, as kept (or its dense component with masks off)
    refined: MaskSet
    merged: MaskSet
    labels: np.ndarray  # (h, w) int32, the final map at the working resolution
    covered: np.ndarray  # (h, w) bool, pixels a mask decided
    seconds: dict[str, float]
    messages: list[str]
    prompts: int  # points sent to the mask generator
    config: MHQRConfig


def component_masks(qs: QuerySet, size: tuple[int, int]) -> dict[float, MaskSet]:
    """Masks off: each query's dense component, at the working resolution."""
    out = {}
    for scale in sorted({q.scale for q in qs.queries}):
        qq = [q for q in qs.queries if q.scale == scale]
        comp = resize_nearest(qs.components[scale], size)
        out[scale] = MaskSet(np.stack([comp == q.component for q in qq]), np.array([q.cls for q in qq], np.int64),
                             np.array([q.confidence for q in qq], np.float32),
                             np.full(len(qq), scale, np.float32), [[q.id] for q in qq])
    return out


class MHQR:
    def __init__(self, mask_generator: MaskGenerator | None, cfg: MHQRConfig = MHQRConfig(),
                 query_generator: QueryGenerator | None = None, refiner: HierarchicalRefiner | None = None,
                 merger: SemanticMerger | None = None):
        if cfg.masks and mask_generator is None:
            raise ValueError("MHQR needs a mask generator (or masks switched off)")
        self.cfg = cfg
        self.mask_generator = mask_generator
        self.query_generator = query_generator or QueryGenerator(cfg.query)
        self.refiner = refiner or HierarchicalRefiner(cfg.refinement)
        self.merger = merger or SemanticMerger(cfg.merging)

    def sam_masks(self, dense: DenseInput, qs: QuerySet,
                  encoded: bool = False) -> tuple[dict, dict, dict[float, MaskSet]]:
        """encoded: the caller already gave the mask generator dense.image (set_image), so it is not encoded again."""
        cfg, size = self.cfg, dense.working_size
        if not encoded:
            self.mask_generator.set_image(dense.image)
        negatives = None
        if cfg.negatives:
            H, W = dense.image_size
            negatives = negative_points(qs.queries, cfg.negative_radius * float(np.hypot(H, W)),
                                        cfg.max_negatives)
        point_masks, chosen, per_scale = {}, {}, {}
        for scale in sorted({q.scale for q in qs.queries}):
            idx = [i for i, q in enumerate(qs.queries) if q.scale == scale]
            qq = [qs.queries[i] for i in idx]
            pts = np.array([[q.x, q.y] for q in qq], np.float64)
            pm = self.mask_generator.point_masks(pts, size, None if negatives is None else [negatives[i] for i in idx])
            classes = np.array([q.cls for q in qq], np.int64)
            pick, score = choose_granularity(pm, classes, dense.probs, cfg.granularity)
            point_masks[scale], chosen[scale] = pm, pick
            per_scale[scale] = MaskSet(pm.masks[np.arange(len(qq)), pick], classes, score,
                                       np.full(len(qq), scale, np.float32), [[q.id] for q in qq])
        return point_masks, chosen, per_scale

    def run(self, dense: DenseInput, encoded: bool = False, on_stage=None) -> MHQRResult:
        """encoded: the mask generator already holds dense.image (its set_image ran), e.g. shared by ablations.
        on_stage(name): called as each stage starts (a progress bar)."""
        tick = on_stage or (lambda name: None)
        cfg, size = self.cfg, dense.working_size
        seconds = {s: 0.0 for s in STAGES}
        messages: list[str] = []
        tick("queries")
        t = time.perf_counter()
        if cfg.queries:
            qs = self.query_generator.generate(dense.probs, dense.image_size)
        else:
            qs = grid_queries(dense.labels, dense.probs, dense.image_size, cfg.fallback_grid)
        seconds["queries"] = time.perf_counter() - t
        if qs.message:
            messages.append(qs.message)
        empty = MaskSet.empty(size)
        result = MHQRResult(dense.labels.astype(np.int32), qs, {}, {}, empty, empty, empty,
                            dense.labels.astype(np.int32), np.zeros(size, bool), seconds, messages, 0, cfg)
        if not qs.queries:
            return result
        tick("masks")
        t = time.perf_counter()
        if cfg.masks:
            result.point_masks, result.chosen, per_scale = self.sam_masks(dense, qs, encoded)
            result.prompts = len(qs.queries)
        else:
            per_scale = component_masks(qs, size)
        result.masks = MaskSet.concat([per_scale[s] for s in sorted(per_scale)], size)
        seconds["masks"] = time.perf_counter() - t
        tick("refine")
        t = time.perf_counter()
        result.refined = self.refiner.refine(per_scale, dense.features, dense.probs) if cfg.refine else result.masks
        seconds["refine"] = time.perf_counter() - t
        tick("merge")
        t = time.perf_counter()
        result.merged = self.merger.merge(result.refined, dense.probs, dense.features, dense.text) if cfg.merge \
            else result.refined
        seconds["merge"] = time.perf_counter() - t
        tick("semantic_map")
        t = time.perf_counter()
        if cfg.semantic_map:
            result.labels, result.covered = paint_semantic_map(dense.labels, result.merged)
        else:
            messages.append("semantic map off: the dense map is kept")
        seconds["semantic_map"] = time.perf_counter() - t
        return result


def run_mhqr(dense: DenseInput, mask_generator: MaskGenerator | None, cfg: MHQRConfig = MHQRConfig(),
             query_generator: QueryGenerator | None = None, refiner: HierarchicalRefiner | None = None,
             merger: SemanticMerger | None = None, encoded: bool = False, on_stage=None) -> MHQRResult:
    return MHQR(mask_generator, cfg, query_generator, refiner, merger).run(dense, encoded, on_stage)


def describe(cfg: MHQRConfig) -> str:
    """What differs from the defaults, in words for a run's name: '' for the defaults, else e.g.
    'without merge, negatives; with refine; scales 0.5, 1; 5-50 queries'."""
    base, parts = MHQRConfig(), []
    off = [s.replace("_", " ") for s in STAGES if getattr(base, s) and not getattr(cfg, s)]
    on = [s.replace("_", " ") for s in STAGES if not getattr(base, s) and getattr(cfg, s)]
    if not cfg.negatives and base.negatives:
        off.append("negatives")
    if off:
        parts.append("without " + ", ".join(off))
    if on:
        parts.append("with " + ", ".join(on))
    if cfg.granularity != base.granularity:
        parts.append(f"granularity {cfg.granularity}")
    if tuple(cfg.query.scales) != tuple(base.query.scales):
        parts.append("scales " + ", ".join(f"{s:g}" for s in cfg.query.scales))
    if (cfg.query.min_queries, cfg.query.max_queries) != (base.query.min_queries, base.query.max_queries):
        parts.append(f"{cfg.query.min_queries}-{cfg.query.max_queries} queries")
    return "; ".join(parts)
