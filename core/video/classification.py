"""Temporal classification of a track from its per-frame class evidence (DVIS-DAQ's idea, training-free).

Each frame t of a track has logits z_t over C classes plus a last 'no object' entry, and a mask confidence m_t (the
propagator's object score, or the detection's score on the frame the track was born). Its informativeness is
s_t = m_t × margin_t, margin_t = the gap between the two largest class probabilities of softmax(z_t), 'no object'
excluded from the pair (with one class, the largest alone); the frame weights are w = softmax_t(s / temperature); the
track's logits are sum_t w_t z_t; its class is the argmax of their softmax over the C classes and its score that
probability ('no object' still takes its share of the softmax, so a track that looks like nothing scores low).
`last-frame`: the alternative the benchmark compares with, the track's last frame decides (class and score).
A frame without evidence (a row of NaN: the evidence stage was not asked on that frame, see core.video.tracker)
takes no part: its weight is 0, the softmax over frames runs over the frames with evidence, and `last-frame` takes
the last frame with evidence; a track with none has no class (-1, score 0).
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
    weights: np.ndarray  # (T,) the frames' weights (sum 1; 0 on frames without evidence)


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


def _empty(num_classes: int, frames: int = 0) -> TrackClass:
    return TrackClass(-1, 0.0, np.zeros(num_classes + 1), np.zeros(frames))


def _decide(agg: np.ndarray, weights: np.ndarray) -> TrackClass:
    probs = softmax(agg)
    cls = int(np.argmax(probs[:-1]))
    return TrackClass(cls, float(probs[cls]), probs, weights)


def classify(logits: np.ndarray, mask_conf: np.ndarray, cfg: ClassificationConfig = ClassificationConfig()
             ) -> TrackClass:
    """logits: (T, C + 1) per frame, 'no object' last, a row of NaN where the frame has no evidence;
    mask_conf: (T,) in [0, 1]."""
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (T, C + 1) with C >= 1, got {logits.shape}")
    seen = np.nonzero(~np.isnan(logits).any(1))[0]
    if len(seen) == 0:
        return _empty(logits.shape[1] - 1, len(logits))
    w = np.zeros(len(logits))
    if cfg.method == "last-frame":
        w[seen[-1]] = 1.0
        return _decide(logits[seen[-1]], w)
    w[seen] = frame_weights(logits[seen], np.asarray(mask_conf, np.float64)[seen], cfg.temperature)
    return _decide((w[seen, None] * logits[seen]).sum(0), w)
