import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from pycocotools import mask as mask_utils

import core.prompted.evaluate as ev
from core.data.images import load_image
from core.errors import BadInput
from core.models.clipseg import ClipSegPredictor
from core.prompted.evaluate import EvalConfig, evaluate
from core.prompted.manifest import ManifestRow, read_manifest, write_manifest
from core.prompted.segmenter import PromptedSegmenter
from core.metrics.binary import SWEEP
from core.results.records import validate


def run(manifest, out, segmenter, **kw):
    cfg = EvalConfig(str(manifest), **kw)
    return evaluate(cfg, segmenter, out, "python -m core evaluate (test)", {"name": "clipseg", "source": "tiny"})


def test_record_with_tuned_threshold_and_breakdowns(synthetic_manifest, segmenter, tmp_path):
    out = tmp_path / "runs" / "tiny_eval.json"
    rec = run(synthetic_manifest, out, segmenter, split="test", tune_on="val", save_masks=str(tmp_path / "masks"))
    assert validate(json.loads(out.read_text())) == []
    assert not (tmp_path / "runs" / "tiny_eval.json.partial.jsonl").exists()
    test_rows = read_manifest(synthetic_manifest, "test")
    n_pairs = sum(2 if r.label == "crack" else 4 for r in test_rows)
    o = rec["metrics"]["overall"]
    assert o["n"] == n_pairs and 0 <= o["miou"] <= 1 and 0 <= o["dice"] <= 1 and 0 <= o["pixel_accuracy"] <= 1
    assert set(rec["metrics"]["per_label"]) == {"crack", "taping_area"}
    assert len(rec["metrics"]["per_prompt"]) == 6
    sweep = rec["threshold_sweep"]
    assert [p["threshold"] for p in sweep] == list(SWEEP) and {p["split"] for p in sweep} == {"val"}
    best = max(sweep, key=lambda p: p["miou"])["miou"]
    chosen = rec["config"]["threshold"]
    assert [p for p in sweep if p["threshold"] == chosen][0]["miou"] == best
    assert rec["provenance"] == {"kind": "measured", "command": "python -m core evaluate (test)"}
    assert rec["config"]["score_at"] == "full" and rec["config"]["threshold_rule"] == ">="
    assert len(list((tmp_path / "masks").glob("*.png"))) == n_pairs
    assert rec["timing"]["seconds_per_image"] > 0


def test_per_pair_metrics_match_direct_computation(synthetic_manifest, segmenter, tmp_path):
    import numpy as np

    from core.data.images import load_image
    from core.metrics.binary import iou_dice
    from core.prompted.segmenter import PromptedRequest

    rec = run(synthetic_manifest, tmp_path / "c.json", segmenter, split="val", prompts="canonical", threshold=0.5)
    ious, dices = [], []
    for row in read_manifest(synthetic_manifest, "val"):
        res = segmenter.run(PromptedRequest(load_image(row.image_path), row.image_id,
                                            ["segment crack" if row.label == "crack" else "segment taping area"], 0.5))
        i, d = iou_dice(res.masks[0].mask > 0, row.mask())
        ious.append(i)
        dices.append(d)
    assert rec["metrics"]["overall"]["miou"] == pytest.approx(np.mean(ious))
    assert rec["metrics"]["overall"]["dice"] == pytest.approx(np.mean(dices))
    assert rec["threshold_sweep"][0]["role"] == "sensitivity"


def test_interrupted_run_resumes_where_it_stopped(synthetic_manifest, segmenter, tmp_path, monkeypatch):
    full = run(synthetic_manifest, tmp_path / "full.json", segmenter, split="train")
    real_row = ev.evaluate_row
    calls = []

    def interrupting(*a, **k):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return real_row(*a, **k)

    monkeypatch.setattr(ev, "evaluate_row", interrupting)
    out = tmp_path / "resumed.json"
    with pytest.raises(BadInput, match="resume"):
        run(synthetic_manifest, out, segmenter, split="train")
    assert not out.exists() and (tmp_path / "resumed.json.partial.jsonl").exists()
    counted = []
    monkeypatch.setattr(ev, "evaluate_row", lambda *a, **k: counted.append(1) or real_row(*a, **k))
    rec = run(synthetic_manifest, out, segmenter, split="train")
    assert len(counted) == len(read_manifest(synthetic_manifest, "train")) - 3
    assert rec["metrics"] == full["metrics"]


def test_bad_evaluation_inputs(synthetic_manifest, segmenter, tmp_path):
    with pytest.raises(BadInput, match="other than"):
        run(synthetic_manifest, tmp_path / "x.json", segmenter, split="test", tune_on="test")
    lines = synthetic_manifest.read_text().splitlines()
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join([lines[0]] + [l.replace(".jpg", "_gone.jpg") for l in lines[1:]]) + "\n")
    with pytest.raises(BadInput, match="missing"):
        run(broken, tmp_path / "y.json", segmenter, split="test")


# --- scoring as the published report scores: prob >= t; 'model': at 352×352, ground truth resized nearest ---

class PatternLogits:
    """A stand-in predictor: logits 0.5 * (x // 44 - 4) + 0.5 * (y // 88 - 2) at size×size, so the probability is
    exactly sigmoid(0) = 0.5 on a diagonal band of blocks, and other multiples of 0.5 elsewhere."""

    @staticmethod
    def logits(size: int) -> torch.Tensor:
        y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        return 0.5 * (x // 44 - 4).float() + 0.5 * (y // 88 - 2).float()

    def encode(self, image, size):
        return size

    def decode(self, encoded, prompts):
        return self.logits(encoded)[None].repeat(len(prompts), 1, 1)

    upsample_probabilities = staticmethod(ClipSegPredictor.upsample_probabilities)


SHAPES = {  # (height, width): COCO polygons (x, y pairs); non-square so that PIL's (width, height) order matters
    (90, 128): [[10.0, 5.0, 120.0, 20.0, 60.0, 85.0]],
    (64, 200): [[0.0, 0.0, 90.5, 0.0, 90.5, 60.0, 0.0, 60.0], [150.0, 10.0, 190.0, 10.0, 170.0, 50.0]],
}


@pytest.fixture
def drawn_pairs(tmp_path):
    """Two images with polygon annotations, listed as the test split of a manifest."""
    folder = tmp_path / "export"
    folder.mkdir()
    images, anns, rows = [], [], []
    for i, ((h, w), polys) in enumerate(SHAPES.items()):
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(folder / f"img{i}.png")
        images.append({"id": i, "file_name": f"img{i}.png", "height": h, "width": w})
        anns.append({"id": i + 1, "image_id": i, "category_id": 1, "segmentation": polys, "iscrowd": 0})
    coco = folder / "_annotations.coco.json"
    coco.write_text(json.dumps({"images": images, "annotations": anns}))
    for i, (h, w) in enumerate(SHAPES):
        rows.append(ManifestRow(str(folder / f"img{i}.png"), f"drawn__img{i}", "crack", "test", "drawn", str(coco),
                                i, str(i + 1), h, w))
    write_manifest(rows, tmp_path / "manifest.csv")
    return tmp_path / "manifest.csv"


def published_gt(h: int, w: int, polys) -> np.ndarray:
    """The report's polygon_or_rle_to_mask, saved as a {0, 255} mask: pycocotools frPyObjects, merge, decode."""
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w))).astype(np.uint8) * 255


def pil_nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Which source row (or column) PIL's NEAREST resize reads for each output one: Pillow's ImagingScaleAffine
    starts at scale / 2 and adds scale = n_in / n_out per output pixel in double precision, truncating each sum.
    That is the pixel-centre rule (i + 0.5) * scale, except that an exact tie the running sum lands just below
    goes to the lower pixel (plain floor((i + 0.5) * scale) differs there; cv2's floor(i * scale) differs more)."""
    scale, pos, out = n_in / n_out, n_in / n_out * 0.5, []
    for _ in range(n_out):
        out.append(int(pos))
        pos += scale
    return np.asarray(out)


def nearest(mask: np.ndarray, size: int) -> np.ndarray:
    """size×size nearest-neighbour resize in numpy, as the report's `mask.resize((s, s), Image.NEAREST)`."""
    return mask[np.ix_(pil_nearest_index(mask.shape[0], size), pil_nearest_index(mask.shape[1], size))]


def published_iou(pred: np.ndarray, gt: np.ndarray, eps: float = 1e-6) -> float:
    inter = float(np.logical_and(pred, gt).sum())
    union = float(pred.sum()) + float(gt.sum()) - inter
    return (inter + eps) / (union + eps)


def test_score_at_model_equals_the_published_computation(drawn_pairs, tmp_path):
    seg = PromptedSegmenter(PatternLogits())
    rec = run(drawn_pairs, tmp_path / "model.json", seg, split="test", prompts="canonical", threshold=0.5,
              score_at="model", save_masks=str(tmp_path / "masks"))
    assert rec["config"]["score_at"] == "model" and rec["config"]["threshold_rule"] == ">="
    assert rec["config"]["scored_size"] == "352x352"
    prob = 1.0 / (1.0 + np.exp(-PatternLogits.logits(352).double().numpy()))  # 352×352, no resampling
    assert (prob == 0.5).sum() > 0
    gts = []
    for (h, w), polys in SHAPES.items():
        gt255 = published_gt(h, w, polys)
        small = nearest(gt255, 352)
        # the report resizes its mask PNG with PIL: mask.resize((image_size, image_size), resample=Image.NEAREST)
        np.testing.assert_array_equal(small, np.asarray(Image.fromarray(gt255).resize((352, 352), Image.NEAREST)))
        gts.append(small > 0)
    ties = np.floor((np.arange(352) + 0.5) * 128 / 352).astype(int) != pil_nearest_index(128, 352)
    assert ties.any()  # 128 -> 352 has exact ties, some of which PIL reads from the lower pixel
    for point in rec["threshold_sweep"]:
        t = point["threshold"]
        expected = np.mean([published_iou(prob >= t, gt) for gt in gts])
        assert point["miou"] == pytest.approx(expected, abs=1e-6), t
    expected = np.mean([published_iou(prob >= 0.5, gt) for gt in gts])
    assert rec["metrics"]["overall"]["miou"] == pytest.approx(expected, abs=1e-6)
    strict = np.mean([published_iou(prob > 0.5, gt) for gt in gts])
    assert abs(strict - expected) > 1e-3  # the exact-0.5 band decides: '>' would give another number
    masks = sorted((tmp_path / "masks").glob("*.png"))
    assert len(masks) == 2 and all(Image.open(p).size == (352, 352) for p in masks)
    np.testing.assert_array_equal(np.asarray(Image.open(masks[0])) == 255, prob >= 0.5)


def test_score_at_full_upsamples_the_logits_to_each_image(drawn_pairs, tmp_path):
    seg = PromptedSegmenter(PatternLogits())
    rec = run(drawn_pairs, tmp_path / "full.json", seg, split="test", prompts="canonical", threshold=0.5)
    assert rec["config"]["score_at"] == "full" and rec["config"]["scored_size"] == "image size"
    ious = []
    for (h, w), polys in SHAPES.items():  # the report's bilinear resize of the logits when sizes differ
        up = F.interpolate(PatternLogits.logits(352)[None, None], size=(h, w), mode="bilinear", align_corners=False)
        ious.append(published_iou(torch.sigmoid(up)[0, 0].numpy() >= 0.5, published_gt(h, w, polys) > 0))
    assert rec["metrics"]["overall"]["miou"] == pytest.approx(np.mean(ious), abs=1e-6)


def test_score_at_model_with_the_tiny_model(synthetic_manifest, segmenter, tmp_path):
    rec = run(synthetic_manifest, tmp_path / "m.json", segmenter, split="val", prompts="canonical", threshold=0.5,
              score_at="model")
    pred = segmenter.predictor
    ious = []
    for row in sorted(read_manifest(synthetic_manifest, "val"), key=lambda r: (r.image_id, r.label)):
        prompt = "segment crack" if row.label == "crack" else "segment taping area"
        logits = pred.decode(pred.encode(load_image(row.image_path), 352), [prompt])[0]
        prob = torch.sigmoid(logits).numpy()
        ious.append(published_iou(prob >= 0.5, nearest(row.mask().astype(np.uint8) * 255, 352) > 0))
    assert rec["dataset"]["n"] == len(ious)
    assert rec["metrics"]["overall"]["miou"] == pytest.approx(np.mean(ious), abs=1e-6)


def test_score_at_is_checked_and_on_the_command_line(synthetic_manifest, tmp_path, segmenter):
    with pytest.raises(BadInput, match="score-at"):
        run(synthetic_manifest, tmp_path / "bad.json", segmenter, split="val", score_at="half")
    from core.cli import build_parser, main

    assert build_parser().parse_args(["evaluate", "--manifest", "m", "--out", "o"]).score_at == "full"
    out = tmp_path / "cli.json"
    assert main(["evaluate", "--models", "tiny", "--manifest", str(synthetic_manifest), "--split", "val",
                 "--limit", "2", "--prompts", "canonical", "--score-at", "model", "--out", str(out)]) == 0
    cfg = json.loads(out.read_text())["config"]
    assert cfg["score_at"] == "model" and cfg["threshold_rule"] == ">=" and cfg["scored_size"] == "352x352"
