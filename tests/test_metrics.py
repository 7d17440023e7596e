import numpy as np
import pytest
import torch
from torchmetrics.classification import BinaryF1Score, BinaryJaccardIndex

from core.metrics.binary import SWEEP, choose_threshold, iou_dice, sweep_counts


def test_hand_computed_cases():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert iou_dice(a, b) == (1.0, 1.0)  # both empty
    a[0, :2] = True  # 2 px
    assert iou_dice(a, b) == (0.0, 0.0)
    b[0, 1:4] = True  # 3 px, overlap 1
    iou, dice = iou_dice(a, b)
    assert iou == pytest.approx(1 / 4) and dice == pytest.approx(2 * 1 / 5)
    assert iou_dice(b, b) == (1.0, 1.0)


def test_against_torchmetrics():
    rng = np.random.default_rng(0)
    for _ in range(5):
        pred = rng.random((37, 53)) > 0.6
        gt = rng.random((37, 53)) > 0.7
        iou, dice = iou_dice(pred, gt)
        p, g = torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(gt.astype(np.int64))
        assert iou == pytest.approx(BinaryJaccardIndex()(p, g).item(), abs=1e-6)
        assert dice == pytest.approx(BinaryF1Score()(p, g).item(), abs=1e-6)


def test_sweep_matches_thresholding_one_by_one():
    rng = np.random.default_rng(1)
    prob = rng.random((40, 30)).astype(np.float32)
    prob[0, :9] = SWEEP  # values exactly at a threshold are not positive ('>')
    gt = rng.random((40, 30)) > 0.5
    counts = sweep_counts(prob, gt)
    for j, t in enumerate(SWEEP):
        iou, dice = iou_dice(prob > t, gt)
        assert counts.iou()[j] == pytest.approx(iou)
        assert counts.dice()[j] == pytest.approx(dice)
        assert counts.accuracy()[j] == pytest.approx(((prob > t) == gt).mean())


def test_choose_threshold_prefers_best_then_nearest_half():
    assert choose_threshold([0.3, 0.4, 0.5], [0.1, 0.3, 0.2]) == 0.4
    assert choose_threshold([0.2, 0.4, 0.7], [0.3, 0.3, 0.3]) == 0.4
