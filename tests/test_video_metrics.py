"""core.metrics.video on hand-made clips: perfect tracks, a swap, a miss, a false positive; class accuracy; video AP."""

from __future__ import annotations

import numpy as np
import pytest

from core.metrics.video import VideoScores, frame_ious, stack_frames, video_ap


def box(y0, x0, size=(30, 40), s=10):
    m = np.zeros(size, bool)
    m[y0:y0 + s, x0:x0 + s] = True
    return m


def two_objects(n=6):
    """Object 1 moves right along the top, object 2 along the bottom."""
    return [{1: box(2, 2 + 3 * t), 2: box(18, 2 + 3 * t)} for t in range(n)]


def score(gt, pred, gt_cls=None, pred_cls=None):
    s = VideoScores()
    s.add("clip", gt, pred, gt_cls, pred_cls)
    return s.summary()


def test_perfect_tracks_score_one():
    gt = two_objects()
    pred = [{10: f[1], 20: f[2]} for f in gt]
    r = score(gt, pred, {1: 0, 2: 1}, {10: 0, 20: 1})
    assert r["hota"] == pytest.approx(1.0) and r["idf1"] == pytest.approx(1.0) and r["mota"] == pytest.approx(1.0)
    assert r["id_switches"] == 0 and r["class_accuracy"] == 1.0 and r["class_paired"] == 1.0


def test_a_swap_counts_two_switches_and_lowers_idf1():
    gt = two_objects()
    pred = [{10: f[1], 20: f[2]} if t < 3 else {10: f[2], 20: f[1]} for t, f in enumerate(gt)]
    r = score(gt, pred)
    assert r["id_switches"] == 2
    assert r["mota"] == pytest.approx((12 - 2) / 12)
    assert r["idf1"] == pytest.approx(0.5)  # each id is right on 3 of its 6 frames
    assert r["hota"] < 0.8


def test_misses_and_false_positives_by_hand():
    gt = two_objects()
    pred = [{10: f[1]} | ({20: f[2]} if t % 2 else {}) for t, f in enumerate(gt)]  # object 2 missed on 3 frames
    pred[0][99] = box(15, 28)  # a false positive on frame 0
    r = score(gt, pred)
    assert r["misses"] == 3 and r["false_positives"] == 1
    assert r["mota"] == pytest.approx((9 - 1) / 12)


def test_class_accuracy_counts_paired_objects():
    gt = two_objects()
    pred = [{10: f[1], 20: f[2]} for f in gt]
    r = score(gt, pred, {1: 0, 2: 1}, {10: 0, 20: 0})
    assert r["class_accuracy"] == 0.5


def test_frame_ious_orientation():
    iou = frame_ious([box(0, 0)], [box(0, 0), box(0, 5), box(20, 20)])
    assert iou.shape == (1, 3) and iou[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])


def test_video_ap_on_stacked_frames():
    gt = two_objects(4)
    size = gt[0][1].shape
    g = [(0, stack_frames({t: f[1] for t, f in enumerate(gt)}, 4, size)),
         (1, stack_frames({t: f[2] for t, f in enumerate(gt)}, 4, size))]
    perfect = [(0, 0.9, g[0][1]), (1, 0.8, g[1][1])]
    assert video_ap([(g, perfect)])["ap"] == pytest.approx(1.0)
    # object 2's track only on half of its frames: spatio-temporal IoU 0.5, found at AP50 but not beyond
    half = stack_frames({t: gt[t][2] for t in range(2)}, 4, size)
    r = video_ap([(g, [(0, 0.9, g[0][1]), (1, 0.8, half)])])
    assert r["ap50"] == pytest.approx(1.0) and r["ap75"] < 1.0
    assert video_ap([(g, [])])["ap"] == 0.0
