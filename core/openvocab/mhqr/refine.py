"""Stage 4: training-free hierarchical refinement of the kept masks, coarse scale to fine.

Every mask pools the dense features inside it (its prototype) and in a ring of `ring_cells` feature cells around
it. Each feature cell of the mask and its ring cross-attends (a softmax over cosine similarities at temperature
T) to keys: with keys "ring", the mask's prototype and its ring's; with keys "queries", every mask's prototype and
this mask's ring (for "none of them"). The attention on the keys of the mask's class is the projected mask (0
beyond the ring). Masks covering fewer than min_cells cells are left as they are, and so (keys "ring") are masks
whose two prototypes are more alike than max_similarity: the features cannot tell them from their ring.
Scale by scale (the query scales, coarse first), each mask at that scale's size becomes (1 - α) · (mask + fusion ·
the coarser scale's refined evidence for its class, upsampled) + α · projection; the change is upsampled to the
working resolution and added to the original crisp mask, thresholded at 0.5, so SAM's boundary stays where the
features agree and moves where they clearly disagree.

Without dense features (features None) the class probabilities pooled to an 8-pixel grid stand in for them (each
cell's square-rooted probability vector, L2-normalised): the refinement then works in class space.
Measured on the stand-ins (bench/mhqr_synthetic.py) it did not help, so MHQRConfig leaves it off by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from core.openvocab.mhqr.masks import MaskSet
from core.openvocab.mhqr.queries import resize_probs, scale_size


@dataclass(frozen=True)
class RefineConfig:
    alpha: float = 0.6  # residual weight of the projection
    fusion: float = 0.3  # weight of the coarser scale's evidence
    temperature: float = 0.05
    ring_cells: int = 2
    threshold: float = 0.5
    min_cells: float = 4.0  # a mask covering fewer feature cells is left alone (its prototype would be mixed)
    max_similarity: float = 0.9  # ... and (keys "ring") one whose inside and ring prototypes are this alike
    keys: str = "ring"  # what each pixel attends to: "ring" (the mask's prototype and its ring's) or "queries"
    # (every mask's prototype, and the ring for "none of them")


def prob_features(probs: np.ndarray, cell: int = 8) -> np.ndarray:
    """(C, h, w) probabilities -> (gh, gw, C) unit vectors (square roots of the cell's mean probabilities)."""
    h, w = probs.shape[1:]
    g = resize_probs(probs, (max(1, round(h / cell)), max(1, round(w / cell))))
    f = np.sqrt(np.clip(g, 0, None)).transpose(1, 2, 0)
    return (f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-8)).astype(np.float32)


def resize_float(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if a.shape == tuple(size):
        return a.astype(np.float32, copy=False)
    shrink = size[0] * size[1] < a.size
    return cv2.resize(a.astype(np.float32), (size[1], size[0]),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class HierarchicalRefiner:
    def __init__(self, cfg: RefineConfig = RefineConfig()):
        self.cfg = cfg

    def projection(self, i: int, w_in: np.ndarray, protos: np.ndarray, classes: np.ndarray,
                   feats: np.ndarray) -> np.ndarray | None:
        """(gh, gw) attention of each feature cell near mask i on the prototypes of its class; None when the
        features cannot tell the mask from its ring. w_in: (N, gh, gw) cell coverage of every mask; protos (N, E)."""
        cfg = self.cfg
        if w_in[i].sum() < cfg.min_cells:
            return None
        near = ndimage.binary_dilation(w_in[i] > 0, iterations=cfg.ring_cells)
        w_out = (1 - w_in[i]) * near
        if w_out.sum() < 0.5:
            return None
        p_out = (w_out[..., None] * feats).sum((0, 1))
        p_out /= max(np.linalg.norm(p_out), 1e-8)
        if cfg.keys == "ring":
            if float(protos[i] @ p_out) > cfg.max_similarity:
                return None
            keys, mine = np.stack([protos[i], p_out]), np.array([True, False])
        else:  # every mask's prototype, and this one's ring for "none of them"
            keys, mine = np.concatenate([protos, p_out[None]]), np.append(classes == classes[i], False)
        logits = feats @ keys.T / cfg.temperature  # (gh, gw, K)
        att = np.exp(logits - logits.max(-1, keepdims=True))
        return (att[..., mine].sum(-1) / att.sum(-1) * near).astype(np.float32)

    def refine(self, per_scale: dict[float, MaskSet], features: np.ndarray | None, probs: np.ndarray) -> MaskSet:
        size = tuple(probs.shape[1:])
        feats = features if features is not None else prob_features(probs)
        cfg = self.cfg
        if cfg.keys not in {"ring", "queries"}:
            raise ValueError(f"unknown refinement keys '{cfg.keys}' (ring, queries)")
        every = MaskSet.concat([per_scale[s] for s in sorted(per_scale)], size)
        w_in = np.stack([resize_float(m, feats.shape[:2]) for m in every.masks]) if len(every) else None
        protos = np.zeros((len(every), feats.shape[2]), np.float32)
        for j in range(len(every)):
            v = (w_in[j][..., None] * feats).sum((0, 1))
            protos[j] = v / max(np.linalg.norm(v), 1e-8)
        out, evidence, offset = [], {}, 0
        for scale in sorted(per_scale):
            ms = per_scale[scale]
            r = scale_size(size, scale)
            prev = {c: resize_float(e, r) for c, e in evidence.items()}
            evidence = {}
            new = ms.masks.copy()
            for i in range(len(ms)):
                m_full = ms.masks[i]
                if not m_full.any():
                    continue
                c = int(ms.classes[i])
                m_r = resize_float(m_full, r)
                fused = np.clip(m_r + cfg.fusion * prev[c], 0, 1) if c in prev else m_r
                proj = self.projection(offset + i, w_in, protos, every.classes, feats)
                refined = fused if proj is None else (1 - cfg.alpha) * fused + cfg.alpha * resize_float(proj, r)
                evidence[c] = np.maximum(evidence[c], refined) if c in evidence else refined
                new[i] = (m_full + resize_float(refined - m_r, size)) > cfg.threshold
            offset += len(ms)
            out.append(MaskSet(new, ms.classes, ms.scores, ms.scales, ms.sources))
        return MaskSet.concat(out, size)
