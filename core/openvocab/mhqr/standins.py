"""Stand-ins that measure MHQR's logic without weights, from a scene's exact ground truth.

`StandInDense` gives what a dense CLIP method gives: class scores on a coarse patch grid (noisy), upsampled, blurred,
softmaxed; features are the grid's noisy mixtures of class embeddings, text the class embeddings.
`StandInMasks` answers a point as SAM does: three masks (the part, the object, the region under it), boundaries
wobbled by a smooth random field, predicted IoUs that do not know which is right, outputs in random order.
A scene is any object with `image`, `label`, `instance`, `part` arrays, `class_names` and `region(obj)`
(core.data.synthetic.shape_scenes.ShapeScene).
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np
from scipy import ndimage

from core.openvocab.mhqr.dense import DenseInput
from core.openvocab.mhqr.masks import PointMasks, order_by_area


def class_embeddings(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 random unit vectors, the stand-in's text embeddings."""
    e = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


class StandInDense:
    """noise: std of the per-cell, per-class score noise (scores are class fractions in [0, 1]); blur: Gaussian
    sigma in working pixels after upsampling; patch: grid cell in pixels (SCLIP's is 16 at ~336 short side);
    sharpness: the logit scale of the softmax; feature_noise: std of the noise added to features."""

    def __init__(self, noise: float = 0.15, blur: float = 3.0, patch: int = 8, sharpness: float = 6.0,
                 feature_noise: float = 0.3, dim: int = 32, seed: int = 0, with_features: bool = True):
        self.noise, self.blur, self.patch, self.sharpness = noise, blur, patch, sharpness
        self.feature_noise, self.dim, self.seed, self.with_features = feature_noise, dim, seed, with_features

    def predict(self, scene, seed: int = 0) -> DenseInput:
        names = list(scene.class_names)
        C = len(names)
        H, W = scene.label.shape
        rng = np.random.default_rng([self.seed, seed])
        gh, gw = max(1, round(H / self.patch)), max(1, round(W / self.patch))
        onehot = (scene.label[None] == np.arange(C)[:, None, None]).astype(np.float32)
        grid = np.stack([cv2.resize(o, (gw, gh), interpolation=cv2.INTER_AREA) for o in onehot])
        grid = grid + rng.normal(0, self.noise, grid.shape).astype(np.float32)
        logits = np.stack([cv2.resize(g, (W, H), interpolation=cv2.INTER_LINEAR) for g in grid])
        if self.blur > 0:
            logits = ndimage.gaussian_filter(logits, (0, self.blur, self.blur))
        z = logits * self.sharpness
        z = np.exp(z - z.max(0, keepdims=True))
        probs = (z / z.sum(0, keepdims=True)).astype(np.float32)
        text = class_embeddings(C, self.dim, self.seed)
        feats = None
        if self.with_features:
            mix = np.exp(self.sharpness * (grid - grid.max(0, keepdims=True)))
            mix /= mix.sum(0, keepdims=True)
            feats = np.einsum("chw,ce->hwe", mix, text) + rng.normal(
                0, self.feature_noise / np.sqrt(self.dim), (gh, gw, self.dim))
            feats = (feats / np.linalg.norm(feats, axis=-1, keepdims=True)).astype(np.float32)
        return DenseInput(scene.image, probs, feats, text if self.with_features else None, names)


class StandInMasks:
    """A MaskGenerator over a scene's ground truth. boundary_noise: std in pixels of the smooth field added to
    each mask's signed distance; base_scores: the predicted IoU of (part, object, region) before score_noise.
    A negative point removes the object under it from all three masks (unless it is the query's own object).
    Masks of one segment are computed once (a point anywhere on it gets the same answer, as from SAM)."""

    def __init__(self, scene, boundary_noise: float = 1.0, score_noise: float = 0.06,
                 base_scores: tuple[float, float, float] = (0.86, 0.88, 0.86), seed: int = 0):
        self.scene, self.boundary_noise, self.score_noise = scene, boundary_noise, score_noise
        self.base_scores, self.seed = base_scores, seed
        self.cache: dict[tuple, tuple[np.ndarray, float]] = {}
        self.image = None
        self.prompts = 0

    def set_image(self, image: np.ndarray) -> None:
        if image.shape != self.scene.image.shape:
            raise ValueError("the stand-in answers for its own scene only")
        self.image = image

    def _segment(self, kind: int, key: int, removed: tuple[int, ...]) -> tuple[np.ndarray, float]:
        ck = (kind, key, removed)
        if ck not in self.cache:
            s = self.scene
            base = (s.part == key) if kind == 0 else (s.instance == key) if kind == 1 else s.region(key)
            if removed:
                base = base & ~np.isin(s.instance, removed)
            rng = np.random.default_rng([self.seed, kind, key, zlib.crc32(repr(removed).encode())])
            mask = base
            if self.boundary_noise > 0 and base.any():
                field = ndimage.gaussian_filter(rng.normal(size=base.shape), 3.0)
                field *= self.boundary_noise / max(field.std(), 1e-6)
                sd = ndimage.distance_transform_edt(base) - ndimage.distance_transform_edt(~base)
                mask = (sd + field) > 0.0
                if not mask.any():
                    mask = base
            score = float(np.clip(self.base_scores[kind] + rng.normal(0, self.score_noise), 0, 1))
            self.cache[ck] = (mask, score)
        return self.cache[ck]

    def point_masks(self, points_xy: np.ndarray, size: tuple[int, int],
                    negatives_xy: list[np.ndarray] | None = None) -> PointMasks:
        s = self.scene
        H, W = s.label.shape
        pts = np.asarray(points_xy, np.float64).reshape(-1, 2)
        self.prompts += len(pts)
        out = np.zeros((len(pts), 3, *size), bool)
        scores = np.zeros((len(pts), 3), np.float32)
        rng = np.random.default_rng([self.seed, len(pts), self.prompts])
        for i, (x, y) in enumerate(pts):
            r, c = int(np.clip(round(y), 0, H - 1)), int(np.clip(round(x), 0, W - 1))
            obj = int(s.instance[r, c])
            removed = ()
            if negatives_xy is not None and len(negatives_xy[i]):
                neg = np.asarray(negatives_xy[i], np.float64).reshape(-1, 2)
                nr = np.clip(np.round(neg[:, 1]).astype(int), 0, H - 1)
                nc = np.clip(np.round(neg[:, 0]).astype(int), 0, W - 1)
                removed = tuple(sorted({int(o) for o in s.instance[nr, nc]} - {obj}))
            keys = (int(s.part[r, c]), obj, obj)
            order = rng.permutation(3)  # SAM's outputs come in no particular order
            for j, kind in enumerate(order):
                m, sc = self._segment(int(kind), keys[kind], removed)
                out[i, j] = m if m.shape == tuple(size) else resize_mask(m, size)
                scores[i, j] = sc
        return order_by_area(out, scores)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask to (h, w): area-averaged when shrinking, bilinear when growing, then >= 0.5."""
    h, w = size
    shrink = h * w < mask.size
    m = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return m >= 0.5
