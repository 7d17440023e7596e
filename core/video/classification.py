"""Temporal classification of a track from its per-frame class evidence (DVIS-DAQ's idea, training-free).

Each frame t of a track has logits z_t over C classes plus a last 'no object' entry, and a mask confidence m_t (the
propagator's object score, or the detection's score on the frame the track was born). Its informativeness is
s_t = m_t × margin_t, margin_t = the gap between the two largest class probabilities of softmax(z_t), 'no object'
excluded from the pair (with one class, the largest alone); the frame weights are w = softmax_t(s / temperature); the
track's logits are sum_t w_t z_t; its class is the argmax of their softmax over the C classes and its score that
probability ('no object' still takes its share of the softmax, so a track that looks like nothing scores low).
`last-frame`: the alternative the benchmark compares with, the track's last frame decides (class and score).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import BadInput

METHODS = ("temporal", "last-frame")


@dataclass(frozen=True)
class ClassificationConfig:
    method: str = "temporal"
    temperature: float = 0.1  # of the softmax over frames; s_t lies in [0, 1]

    def __post_init__(self):
        if self.method not in METHODS:
            raise BadInput(f"Unknown classification '{self.method}' (one of {', '.join(METHODS)}).")
        if not self.temperature > 0:
            raise BadInput(f"The weight temperature must be positive (got {self.temperature}).")


@dataclass(frozen=True)
class TrackClass:
    cls: int  # -1 when the track has no evidence
    score: float  # probability of that class, 'no object' excluded from the max
    probs: np.ndarray  # (C + 1,) softmax of the track's logits
    weights: np.ndarray  # (T,) the frames' weights (sum 1)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def class_margin(logits: np.ndarray) -> np.ndarray:
    """(T,) the gap between the two largest class probabilities ('no object' excluded from the pair)."""
    probs = softmax(np.asarray(logits, np.float64))[:, :-1]
    if probs.shape[1] == 1:
        return probs[:, 0]
    top = np.sort(probs, axis=1)
    return top[:, -1] - top[:, -2]


def frame_weights(logits: np.ndarray, mask_conf: np.ndarray, temperature: float) -> np.ndarray:
    s = np.asarray(mask_conf, np.float64) * class_margin(logits)
    return softmax(s / temperature)


def _empty(num_classes: int) -> TrackClass:
    return TrackClass(-1, 0.0, np.zeros(num_classes + 1), np.zeros(0))


def _decide(agg: np.ndarray, weights: np.ndarray) -> TrackClass:
    probs = softmax(agg)
    cls = int(np.argmax(probs[:-1]))
    return TrackClass(cls, float(probs[cls]), probs, weights)


def classify(logits: np.ndarray, mask_conf: np.ndarray, cfg: ClassificationConfig = ClassificationConfig()
             ) -> TrackClass:
    """logits: (T, C + 1) per frame, 'no object' last; mask_conf: (T,) in [0, 1]."""
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (T, C + 1) with C >= 1, got {logits.shape}")
    if len(logits) == 0:
        return _empty(logits.shape[1] - 1)
    if cfg.method == "last-frame":
        w = np.zeros(len(logits))
        w[-1] = 1.0
        return _decide(logits[-1], w)
    w = frame_weights(logits, mask_conf, cfg.temperature)
    return _decide((w[:, None] * logits).sum(0), w)
