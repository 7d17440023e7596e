import numpy as np
import pytest
import torch
from torchmetrics.classification import BinaryF1Score, BinaryJaccardIndex

from core.metrics.binary import SWEEP, THRESHOLD_RULE, choose_threshold, foreground, iou_dice, sweep_counts


def published_iou_dice(prob: np.ndarray, gt: np.ndarray, threshold: float, eps: float = 1e-6):
    """The published report's src/utils/metrics.py `batch_iou_dice_from_logits`, from the sigmoid on:
    preds = (probs >= threshold).float(); iou = (inter + eps) / (union + eps); dice likewise."""
    probs = torch.from_numpy(prob)[None]
    preds = (probs >= threshold).float().reshape(1, -1)
    targets = torch.from_numpy(gt.astype(np.float32)).reshape(1, -1)
    inter = (preds * targets).sum(dim=1)
    union = preds.sum(dim=1) + targets.sum(dim=1) - inter
    iou = (inter + eps) / (union + eps)
    dice = (2 * inter + eps) / (preds.sum(dim=1) + targets.sum(dim=1) + eps)
    return float(iou), float(dice)


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
    prob[0, :9] = SWEEP  # values exactly at a threshold are positive ('>=')
    gt = rng.random((40, 30)) > 0.5
    counts = sweep_counts(prob, gt)
    for j, t in enumerate(SWEEP):
        iou, dice = iou_dice(prob >= t, gt)
        assert counts.iou()[j] == pytest.approx(iou)
        assert counts.dice()[j] == pytest.approx(dice)
        assert counts.accuracy()[j] == pytest.approx(((prob >= t) == gt).mean())
        assert counts.pred_pos[j] == int((prob >= t).sum())


def test_probability_exactly_at_the_threshold_is_foreground():
    # the report thresholds `probs >= threshold`: sigmoid(0) = 0.5 is foreground at 0.5
    assert THRESHOLD_RULE == ">="
    prob = np.full((3, 4), 0.5, np.float32)
    gt = np.ones((3, 4), bool)
    c = sweep_counts(prob, gt)
    j = SWEEP.index(0.5)
    assert c.pred_pos[j] == 12 and c.tp[j] == 12
    assert c.iou()[j] == 1.0 and c.dice()[j] == 1.0
    assert published_iou_dice(prob, gt, 0.5) == (1.0, 1.0)
    assert c.pred_pos[j + 1] == 0 and c.iou()[j + 1] == 0.0  # 0.6: background everywhere
    assert foreground(prob, 0.5).all() and not foreground(prob, 0.6).any()


def test_sweep_equals_the_published_formula_at_every_threshold():
    rng = np.random.default_rng(7)
    prob = rng.random((33, 47)).astype(np.float32)
    prob[0, :9] = np.asarray(SWEEP, np.float32)  # float32 values exactly at each threshold
    prob[1, :9] = np.nextafter(np.asarray(SWEEP, np.float32), np.float32(0))  # one float32 step below
    gt = rng.random((33, 47)) > 0.6
    c = sweep_counts(prob, gt)
    for j, t in enumerate(SWEEP):
        iou, dice = published_iou_dice(prob, gt, t)
        assert c.iou()[j] == pytest.approx(iou, abs=1e-6) and c.dice()[j] == pytest.approx(dice, abs=1e-6)
        # torch compares a float32 tensor with a Python float in float32; so do foreground and sweep_counts
        torch_mask = (torch.from_numpy(prob) >= t).numpy()
        np.testing.assert_array_equal(foreground(prob, t), torch_mask)
        assert c.pred_pos[j] == int(torch_mask.sum()) and c.tp[j] == int((torch_mask & gt).sum())
        assert torch_mask[0, j] and not torch_mask[1, j]


def test_sweep_needs_increasing_thresholds():
    prob = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="increasing"):
        sweep_counts(prob, prob > 0, (0.5, 0.3))
    with pytest.raises(ValueError, match="increasing"):
        sweep_counts(prob, prob > 0, (0.5, 0.5))


def test_choose_threshold_prefers_best_then_nearest_half():
    assert choose_threshold([0.3, 0.4, 0.5], [0.1, 0.3, 0.2]) == 0.4
    assert choose_threshold([0.2, 0.4, 0.7], [0.3, 0.3, 0.3]) == 0.4
