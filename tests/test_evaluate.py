import json

import pytest

import core.prompted.evaluate as ev
from core.errors import BadInput
from core.prompted.evaluate import EvalConfig, evaluate
from core.prompted.manifest import read_manifest
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
