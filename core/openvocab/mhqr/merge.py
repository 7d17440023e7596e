"""Stage 5: semantic merging of overlapping masks, then contested pixels to the likelier class.

Two masks merge (transitively) when their IoU is above `iou` and their classes mean the same: the same class, or
class text embeddings with a cosine above `text_similarity`, or mask-pooled dense features with a cosine above
`feature_similarity`. A merged mask is the score-weighted vote of its members (a pixel is in when members holding
at least half the weight have it), takes the class with the largest total score among its members, and the best
member's score. Then every pixel still claimed by masks of different classes goes to the class with the higher
dense probability there (the others lose it).

Without text embeddings (text None) only the same class counts as the same meaning; without features (None) the
feature criterion is skipped. Overlaps are measured on a strided copy of the masks of at most `max_pixels`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.openvocab.mhqr.masks import MaskSet, bbox
from core.openvocab.mhqr.refine import resize_float


@dataclass(frozen=True)
class MergeConfig:
    iou: float = 0.5
    text_similarity: float = 0.8
    feature_similarity: float = 0.9
    max_pixels: int = 65536
    contest: str = "pixel"  # "pixel": each contested pixel to its likelier class; "region": the whole overlap


def overlaps(masks: np.ndarray, max_pixels: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """(N, N) intersection and (N,) areas, in pixels of a strided copy (so comparable with each other)."""
    n, h, w = masks.shape
    step = max(1, int(np.ceil(np.sqrt(h * w / max_pixels))))
    flat = torch.from_numpy(np.ascontiguousarray(masks[:, ::step, ::step]).reshape(n, -1).astype(np.float32))
    inter = (flat @ flat.T).numpy()  # torch's matmul: numpy's a @ a.T runs a slow path on this machine's OpenBLAS
    return inter, np.diag(inter).copy()


def pooled_features(masks: np.ndarray, features: np.ndarray) -> np.ndarray:
    gh, gw, _ = features.shape
    out = np.zeros((len(masks), features.shape[2]), np.float32)
    for i, m in enumerate(masks):
        v = (resize_float(m, (gh, gw))[..., None] * features).sum((0, 1))
        out[i] = v / max(np.linalg.norm(v), 1e-8)
    return out


def resolve_contests(masks: np.ndarray, classes: np.ndarray, probs: np.ndarray, how: str = "pixel") -> np.ndarray:
    """Each pixel claimed by masks of different classes stays only in the masks of the likelier class: at that
    pixel ("pixel"), or over the two masks' whole overlap ("region", the mean probability there)."""
    if how not in {"pixel", "region"}:
        raise ValueError(f"unknown contest rule '{how}' (pixel, region)")
    masks = masks.copy()
    boxes = [bbox(m) for m in masks]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            if classes[i] == classes[j]:
                continue
            a, b = boxes[i], boxes[j]
            sl = (slice(max(a[0].start, b[0].start), min(a[0].stop, b[0].stop)),
                  slice(max(a[1].start, b[1].start), min(a[1].stop, b[1].stop)))
            if sl[0].start >= sl[0].stop or sl[1].start >= sl[1].stop:
                continue
            both = masks[i][sl] & masks[j][sl]
            if not both.any():
                continue
            i_wins = probs[classes[i]][sl] >= probs[classes[j]][sl]
            if how == "region":
                i_wins = np.full(both.shape, probs[classes[i]][sl][both].mean() >= probs[classes[j]][sl][both].mean())
            masks[i][sl] &= ~(both & ~i_wins)
            masks[j][sl] &= ~(both & i_wins)
    return masks


class SemanticMerger:
    def __init__(self, cfg: MergeConfig = MergeConfig()):
        self.cfg = cfg

    def groups(self, ms: MaskSet, features: np.ndarray | None, text: np.ndarray | None) -> list[list[int]]:
        n = len(ms)
        inter, area = overlaps(ms.masks, self.cfg.max_pixels)
        iou = inter / np.maximum(area[:, None] + area[None] - inter, 1e-6)
        same = ms.classes[:, None] == ms.classes[None]
        if text is not None:
            t = text[ms.classes]
            same |= (t @ t.T) > self.cfg.text_similarity
        if features is not None:
            f = pooled_features(ms.masks, features)
            same |= (f @ f.T) > self.cfg.feature_similarity
        parent = list(range(n))

        def root(a):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for i, j in zip(*np.nonzero(np.triu((iou > self.cfg.iou) & same, 1))):
            parent[root(i)] = root(j)
        out: dict[int, list[int]] = {}
        for i in range(n):
            out.setdefault(root(i), []).append(i)
        return list(out.values())

    def merge(self, ms: MaskSet, probs: np.ndarray, features: np.ndarray | None = None,
              text: np.ndarray | None = None) -> MaskSet:
        ms = ms.take(np.nonzero(ms.masks.reshape(len(ms), -1).any(1))[0])
        if not len(ms):
            return ms
        masks, classes, scores, scales, sources = [], [], [], [], []
        for g in self.groups(ms, features, text):
            w = np.maximum(ms.scores[g], 1e-6)
            if len(g) == 1:
                masks.append(ms.masks[g[0]])
            else:
                votes = np.tensordot(w, ms.masks[g].astype(np.float32), axes=1)
                masks.append(votes >= 0.5 * w.sum())
            totals: dict[int, float] = {}
            for k, s in zip(ms.classes[g], w):
                totals[int(k)] = totals.get(int(k), 0.0) + float(s)
            classes.append(max(totals, key=totals.get))
            scores.append(float(ms.scores[g].max()))
            scales.append(float(ms.scales[g].min()))
            sources.append(sorted(q for i in g for q in ms.sources[i]))
        masks = resolve_contests(np.stack(masks), np.array(classes, np.int64), probs, self.cfg.contest)
        return MaskSet(masks, np.array(classes, np.int64), np.array(scores, np.float32),
                       np.array(scales, np.float32), sources)
