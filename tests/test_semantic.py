import json

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from core.openvocab.class_names import load_class_file
from core.errors import BadInput
from core.results.records import validate
from core.openvocab.sclip import DenseConfig, SCLIPPredictor
from core.openvocab.evaluate import evaluate_semantic
from core.metrics.semantic import boundary_f1, confusion, iou_from_confusion, small_object_ious
from core.data.synthetic.semantic_scenes import write_semantic_set


def test_miou_matches_torchmetrics_with_ignore_pixels():
    rng = np.random.default_rng(0)
    n = 5
    gt = rng.integers(0, n, (60, 70)).astype(np.uint8)
    gt[rng.random((60, 70)) < 0.1] = 255
    pred = np.where(rng.random((60, 70)) < 0.6, gt, rng.integers(0, n, (60, 70))).astype(np.uint8)
    pred[gt == 255] = rng.integers(0, n, (gt == 255).sum())
    ours = iou_from_confusion(confusion(gt, pred, n))
    tm = MulticlassJaccardIndex(num_classes=n, ignore_index=255, average="none")(
        torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(gt.astype(np.int64)))
    np.testing.assert_allclose(ours, tm.numpy(), atol=1e-6)
    assert np.nanmean(ours) == pytest.approx(MulticlassJaccardIndex(num_classes=n, ignore_index=255)(
        torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(gt.astype(np.int64))).item(), abs=1e-6)


def test_absent_classes_do_not_count():
    cm = confusion(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), 3)
    ious = iou_from_confusion(cm)
    assert ious[0] == 1.0 and np.isnan(ious[1:]).all()


def test_boundary_f1_hand_cases():
    gt = np.zeros((20, 20), np.uint8)
    gt[:, 10:] = 1
    assert boundary_f1(gt, gt) == 1.0
    shifted = np.zeros_like(gt)
    shifted[:, 11:] = 1  # one pixel off: within the 2 px tolerance
    assert boundary_f1(gt, shifted) == 1.0
    far = np.zeros_like(gt)
    far[:, 16:] = 1
    assert boundary_f1(gt, far) == 0.0
    assert boundary_f1(np.zeros_like(gt), np.zeros_like(gt)) is None


def test_small_object_iou():
    gt = np.zeros((50, 50), np.uint8)
    gt[10:14, 10:14] = 1  # 16 px
    gt[30:50, 0:50] = 2  # 1000 px: small too (< 1024)
    pred = np.zeros_like(gt)
    pred[10:14, 10:12] = 1  # half of the first object
    assert small_object_ious(gt, pred, 3) == [0.5, 0.0]
    assert small_object_ious(gt, pred, 3, max_area=100) == [0.5]


@pytest.fixture(scope="module")
def semantic_set(tmp_path_factory):
    return write_semantic_set(tmp_path_factory.mktemp("sem") / "set", n=5)


@pytest.fixture(scope="module")
def predictor():
    from core.models import registry

    return SCLIPPredictor(registry().get("openclip"))


def test_evaluate_semantic_record_and_resume(semantic_set, predictor, tmp_path, monkeypatch):
    classes = load_class_file(str(semantic_set / "classes.txt"))
    cfg = DenseConfig(pamr=True)
    full = evaluate_semantic(semantic_set, classes, predictor, cfg, tmp_path / "full.json", "test")
    assert validate(full) == [] and full["task"] == "openvocab"
    o = full["metrics"]["overall"]
    assert o["n"] == 5 and 0 <= o["miou"] <= 1 and 0 <= o["pixel_accuracy"] <= 1
    assert set(full["metrics"]["per_class"]) == {"sky", "grass", "car", "person"}
    assert full["config"]["pamr"] is True and full["config"]["ran"] == sorted(
        ["sclip", "pamr(10 iters, dilations [8, 16], full resolution)"])
    assert full["model"]["name"] == full["config"]["variant"] == "SCLIP + PAMR"
    calls = []
    real = predictor.predict

    def flaky(*a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(predictor, "predict", flaky)
    with pytest.raises(BadInput, match="resume"):
        evaluate_semantic(semantic_set, classes, predictor, cfg, tmp_path / "r.json", "test")
    again = []
    monkeypatch.setattr(predictor, "predict", lambda *a, **k: again.append(1) or real(*a, **k))
    resumed = evaluate_semantic(semantic_set, classes, predictor, cfg, tmp_path / "r.json", "test")
    assert len(again) == 3
    assert resumed["metrics"]["overall"]["miou"] == pytest.approx(o["miou"])
    assert resumed["metrics"]["per_class"] == full["metrics"]["per_class"]


def test_dataset_errors(tmp_path, predictor):
    classes = load_class_file("voc21")
    with pytest.raises(BadInput, match="images/ and a labels/"):
        evaluate_semantic(tmp_path, classes, predictor, DenseConfig(), tmp_path / "x.json", "t")
    s = write_semantic_set(tmp_path / "s", n=2)
    (s / "labels" / "scene_001.png").unlink()
    with pytest.raises(BadInput, match="No label PNG"):
        evaluate_semantic(s, classes, predictor, DenseConfig(), tmp_path / "x.json", "t")


def test_cli_evaluate_semantic(semantic_set, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    out = tmp_path / "runs" / "sclip_tiny.json"
    r = subprocess.run([sys.executable, "-m", "core", "evaluate-semantic", "--models", "tiny", "--data",
                        str(semantic_set), "--classes", str(semantic_set / "classes.txt"), "--out", str(out), "--rcs",
                        "--sfr", "--method", "naclip", "--sfr-weights", "2.1", "0.6", "--max-images", "3"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    assert rec["dataset"]["n"] == 3 and rec["config"]["rcs"] and rec["config"]["sfr"] and "mIoU" in r.stdout
    assert rec["config"]["method"] == "naclip" and (rec["config"]["sfr_tau"], rec["config"]["sfr_lambda"]) == (2.1, 0.6)
    # the published NACLIP + ResCLIP rows carry the same variant, so the dashboard pairs the two
    reported = json.loads((ROOT / "results/reported/openvocab/reported_openvocab_naclip_resclip_ade20k.json").read_text())
    assert reported["config"]["variant"] == rec["config"]["variant"] == rec["model"]["name"]
    assert {k: reported["config"][k] for k in ("method", "rcs", "sfr", "pamr")} == {
        k: rec["config"][k] for k in ("method", "rcs", "sfr", "pamr")}
    bad = subprocess.run([sys.executable, "-m", "core", "evaluate-semantic", "--models", "tiny", "--data",
                          str(semantic_set), "--classes", "no_such_preset", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "No class file" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("method", ["mhqr", "grid-vote"])
def test_cli_evaluate_semantic_mhqr_and_grid_vote(semantic_set, tmp_path, method):
    """Dense CLIP, SAM2 point masks and MHQR (or grid-vote) end to end on tiny models; the record carries the
    query count and the seconds of every stage."""
    import subprocess
    import sys

    from conftest import ROOT

    out = tmp_path / f"{method}.json"
    r = subprocess.run([sys.executable, "-m", "core", "evaluate-semantic", "--models", "tiny", "--data",
                        str(semantic_set), "--classes", str(semantic_set / "classes.txt"), "--out", str(out),
                        "--method", method, "--grid", "8", "--short-side", "224", "--max-images", "2"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    assert rec["config"]["pipeline"] == method and rec["dataset"]["n"] == 2
    assert rec["model"]["name"] == rec["config"]["variant"] == (
        "SCLIP + MHQR (SAM2)" if method == "mhqr" else "SCLIP + grid-vote (SAM2)")
    stages = rec["timing"]["seconds_per_stage"]
    assert {"dense", "sam2_image"} <= set(stages) and all(v >= 0 for v in stages.values())
    q = rec["metrics"]["queries_per_image"]
    assert q["min"] <= q["mean"] <= q["max"] and (q["max"] == 64 if method == "grid-vote" else q["max"] <= 200)
