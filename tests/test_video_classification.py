"""Temporal classification against an independent formula, the last-frame vote, and the two-stage selection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.video.classification import ClassificationConfig, classify
from core.video.selection import SelectionConfig, select_tracks


def by_hand(logits, confs, temperature):
    """The DVIS-DAQ-style rule written out with math.exp, one number at a time."""
    C = len(logits[0]) - 1
    scores = []
    for z, m in zip(logits, confs):
        e = [math.exp(v) for v in z]
        p = [v / sum(e) for v in e]
        cls = sorted(p[:C], reverse=True)
        scores.append(m * (cls[0] - cls[1]))
    e = [math.exp(s / temperature) for s in scores]
    w = [v / sum(e) for v in e]
    agg = [sum(w[t] * logits[t][k] for t in range(len(logits))) for k in range(C + 1)]
    e = [math.exp(v) for v in agg]
    p = [v / sum(e) for v in e]
    best = max(range(C), key=lambda k: p[k])
    return best, p[best], w


LOGITS = [[2.0, 0.5, 0.1, 0.0],   # clear class 0
          [0.2, 1.9, 0.0, 0.5],   # clear class 1
          [1.0, 1.1, 0.2, 0.0],   # ambiguous between 0 and 1
          [3.0, 0.0, 0.0, 0.2],   # very clear class 0 but a weak mask
          [0.0, 0.0, 0.0, 2.5]]   # 'no object'
CONFS = [0.9, 0.8, 0.95, 0.2, 0.7]


@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_temporal_classification_equals_the_formula(temperature):
    cls, score, w = by_hand(LOGITS, CONFS, temperature)
    got = classify(np.array(LOGITS), np.array(CONFS), ClassificationConfig(temperature=temperature))
    assert got.cls == cls
    assert got.score == pytest.approx(score, rel=1e-9)
    assert got.weights == pytest.approx(w, rel=1e-9)
    assert got.probs.sum() == pytest.approx(1.0)


def test_weights_favour_confident_distinct_frames():
    got = classify(np.array(LOGITS), np.array(CONFS), ClassificationConfig(temperature=0.1))
    assert np.argmax(got.weights) == 0  # 0.9 × a wide margin
    assert got.weights[2] < got.weights[0] and got.weights[4] < got.weights[0]


def test_no_object_lowers_the_score_but_is_never_the_class():
    got = classify(np.array([[0.0, 0.1, 4.0], [0.1, 0.0, 4.0]]), np.array([0.9, 0.9]))
    assert got.cls in (0, 1) and got.score < 0.05


def test_last_frame_vote():
    got = classify(np.array(LOGITS[:3]), np.array(CONFS[:3]), ClassificationConfig(method="last-frame"))
    e = [math.exp(v) for v in LOGITS[2]]
    assert got.cls == 1 and got.score == pytest.approx(e[1] / sum(e))
    assert got.weights.tolist() == [0.0, 0.0, 1.0]


def test_one_class_uses_its_probability_as_the_margin():
    got = classify(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([1.0, 1.0]), ClassificationConfig(temperature=1.0))
    p1 = math.exp(2) / (math.exp(2) + 1)
    p2 = 1 / (math.exp(2) + 1)
    w1 = math.exp(p1) / (math.exp(p1) + math.exp(p2))
    assert got.weights[0] == pytest.approx(w1)


def test_two_stage_selection():
    first = {1: 0.9, 2: 0.8, 3: 0.7, 4: 0.1, 5: 0.7}
    final = {1: 0.2, 2: 0.9, 3: 0.5, 4: 0.99, 5: 0.65}
    seen = []

    def rescore(ids):
        seen.append(list(ids))
        return {i: final[i] for i in ids}

    sel = select_tracks(first, rescore, SelectionConfig(top_k=4, top_n=3, score_threshold=0.6))
    assert seen == [[1, 2, 3, 5]]  # ties by lower id; 4 is never re-scored despite its final score
    assert sel.first == [1, 2, 3, 5]
    assert sel.second == [2, 5, 3]
    assert sel.kept == [2, 5]
    assert select_tracks({}, rescore).kept == []
