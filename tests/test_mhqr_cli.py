"""`evaluate-semantic --method mhqr` with MHQR's stage switches, and `--ablate` (issue 11), on tiny models: what the
flags put in MHQRConfig and the record, one record per variant, the dense stage and SAM2's encoding shared."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from conftest import rgb
from core.cli import main
from core.errors import BadInput
from core.openvocab.class_names import load_class_file, parse_classes
from core.openvocab.evaluate import evaluate_ablation
from core.openvocab.mhqr.pipeline import MHQRConfig
from core.openvocab.mhqr.predictor import MHQRPredictor
from core.openvocab.mhqr.queries import QueryConfig
from core.openvocab.mhqr.sam2_masks import Sam2PointMasks
from core.openvocab.sclip import DenseConfig, SCLIPPredictor
from core.results.leaderboard import leaderboard
from core.results.records import validate
from core.results.runs import load_runs
from core.data.synthetic.semantic_scenes import write_semantic_set


@pytest.fixture(scope="module")
def semantic_set(tmp_path_factory):
    return write_semantic_set(tmp_path_factory.mktemp("sem") / "set", n=3)


@pytest.fixture(scope="module")
def parts():
    from core.models import registry

    return SCLIPPredictor(registry().get("openclip")), registry().get("sam2")


def evaluate(semantic_set, out, *flags, images=1):
    return main(["evaluate-semantic", "--models", "tiny", "--data", str(semantic_set), "--classes",
                 str(semantic_set / "classes.txt"), "--out", str(out), "--short-side", "224",
                 "--max-images", str(images), *flags])


def test_stage_flags_reach_mhqr_and_the_record(semantic_set, tmp_path, capsys):
    out = tmp_path / "switches.json"
    assert evaluate(semantic_set, out, "--method", "mhqr", "--no-merge", "--refine", "--no-negatives", "--scales",
                    "1.0", "0.5", "--min-queries", "3", "--max-queries", "12", "--granularity", "iou") == 0
    rec = json.loads(out.read_text())
    s = rec["config"]["stages"]
    assert (s["queries"], s["masks"], s["refine"], s["merge"], s["semantic_map"], s["negatives"]) == (
        True, True, True, False, True, False)
    assert s["query"]["scales"] == [0.5, 1.0] and (s["query"]["min_queries"], s["query"]["max_queries"]) == (3, 12)
    assert s["granularity"] == "iou"
    assert rec["config"]["ran"] == ["mhqr(queries, masks, refine, semantic_map)", "sclip"]
    assert rec["config"]["variant"] == rec["model"]["name"] == (
        "SCLIP + MHQR (SAM2) without merge, negatives; with refine; granularity iou; scales 0.5, 1; 3-12 queries")
    assert 3 <= rec["metrics"]["queries_per_image"]["max"] <= 12 and rec["metrics"]["images_dense_kept"] == 0
    assert rec["timing"]["seconds_per_stage"]["merge"] == pytest.approx(0, abs=0.01)
    assert "wrote" in capsys.readouterr().out and rec["config"]["sam2_frame"] == 256  # the tiny model's own
    assert evaluate(semantic_set, out, "--method", "mhqr", "--sam2-frame", "128") == 0
    assert json.loads(out.read_text())["config"]["sam2_frame"] == 128


def test_masks_off_never_runs_sam2(semantic_set, tmp_path, monkeypatch):
    encodes = []
    real = Sam2PointMasks.set_image
    monkeypatch.setattr(Sam2PointMasks, "set_image", lambda self, image: encodes.append(1) or real(self, image))
    out = tmp_path / "nomasks.json"
    assert evaluate(semantic_set, out, "--method", "mhqr", "--no-masks", "--no-queries") == 0
    rec = json.loads(out.read_text())
    assert encodes == [] and rec["timing"]["seconds_per_stage"]["sam2_image"] == 0
    assert rec["metrics"]["queries_per_image"]["max"] == 0  # no prompt sent to SAM2
    assert not rec["config"]["stages"]["masks"] and not rec["config"]["stages"]["queries"]
    assert rec["config"]["ran"] == ["mhqr(merge, semantic_map)", "sclip"]


@pytest.mark.parametrize("flags, message", [
    (["--method", "sclip", "--no-merge"], "--no-merge switch MHQR's stages: use them with --method mhqr"),
    (["--method", "grid-vote", "--ablate"], "--ablate switch MHQR's stages"),
    (["--method", "mhqr", "--scales", "0.5", "0"], "--scales must lie in (0, 1]"),
    (["--method", "mhqr", "--scales", "2"], "got 2"),
    (["--method", "mhqr", "--min-queries", "20", "--max-queries", "5"], "got 20 and 5"),
    (["--method", "mhqr", "--max-queries", "0"], "Need 1 <= --min-queries <= --max-queries"),
    (["--method", "mhqr", "--sam2-frame", "500"], "--sam2-frame: SAM2 frame size must be a multiple of 32"),
])
def test_bad_stage_flags_are_refused_with_a_message(semantic_set, tmp_path, capsys, flags, message):
    out = tmp_path / "bad.json"
    assert evaluate(semantic_set, out, *flags) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and not out.exists()


def test_the_no_query_fallback_is_counted_and_said(semantic_set, tmp_path, capsys):
    out = tmp_path / "flat.json"
    assert evaluate(semantic_set, out, "--method", "mhqr", "--logit-scale", "0", images=2) == 0
    rec = json.loads(out.read_text())
    assert rec["metrics"]["images_dense_kept"] == 2 and rec["metrics"]["queries_per_image"]["max"] == 0
    assert "on 2 of 2 image(s) no class reached MHQR's query threshold" in capsys.readouterr().out


def test_ablate_writes_one_loadable_record_per_variant(semantic_set, tmp_path, capsys, monkeypatch):
    dense_calls, encodes = [], []
    real_predict, real_encode = SCLIPPredictor.predict, Sam2PointMasks.set_image
    monkeypatch.setattr(SCLIPPredictor, "predict", lambda self, *a, **k: dense_calls.append(1) or
                        real_predict(self, *a, **k))
    monkeypatch.setattr(Sam2PointMasks, "set_image", lambda self, image: encodes.append(1) or real_encode(self, image))
    out = tmp_path / "runs" / "abl.json"
    assert evaluate(semantic_set, out, "--method", "mhqr", "--ablate", "--max-queries", "20", images=2) == 0
    assert len(dense_calls) == 2 and len(encodes) == 2  # once per image for the five variants
    names = ["mhqr", "mhqr-no-queries", "mhqr-no-masks", "mhqr-no-merge", "mhqr-no-semantic-map"]
    files = ["abl.json", "abl-no-queries.json", "abl-no-masks.json", "abl-no-merge.json", "abl-no-semantic-map.json"]
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(files)  # no .partial.jsonl left
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines[:5]] == names and all("mIoU" in ln for ln in lines[:5])
    base = replace(MHQRConfig(), query=replace(QueryConfig(), max_queries=20))
    recs = {n: json.loads((out.parent / f).read_text()) for n, f in zip(names, files)}
    dense_s = {r["timing"]["seconds_per_stage"]["dense"] for r in recs.values()}
    assert len(dense_s) == 1  # the same measured seconds: one dense pass, shared
    for name, rec in recs.items():
        assert validate(rec) == [] and rec["dataset"]["n"] == 2
        a = rec["config"]["ablation"]
        assert a["name"] == name and a["of"] == "abl" and a["variants"] == names and a["records"] == files
        stage = name[len("mhqr-no-"):].replace("-", "_") if name != "mhqr" else None
        assert a["off"] == ([stage] if stage else [])
        assert rec["config"]["stages"] == json.loads(json.dumps(asdict(base.without(stage) if stage else base)))
        t = rec["timing"]
        assert t["shared"]["stages"] == ["dense", "sam2_image"] and t["shared"]["variants"] == 5
        assert "once per image" in t["shared"]["note"] and t["ablation_wall_seconds"] >= t["total_seconds"] > 0
        own = sum(t["seconds_per_stage"].values())
        assert t["seconds_per_image"] == pytest.approx(own, rel=0.2, abs=0.05)
    assert recs["mhqr-no-masks"]["timing"]["seconds_per_stage"]["sam2_image"] == 0
    assert recs["mhqr"]["timing"]["seconds_per_stage"]["sam2_image"] > 0
    assert recs["mhqr-no-masks"]["metrics"]["queries_per_image"]["max"] == 0
    assert recs["mhqr-no-queries"]["metrics"]["queries_per_image"]["min"] == 64  # the 8 × 8 fallback grid
    assert recs["mhqr"]["config"]["variant"] == "SCLIP + MHQR (SAM2) 10-20 queries"
    assert recs["mhqr-no-merge"]["config"]["variant"] == (
        "SCLIP + MHQR (SAM2) without merge; 10-20 queries (ablation mhqr-no-merge)")
    runs = load_runs(out.parent)  # the dashboard reads all five, each under its own name
    assert runs.problems == [] and len(runs.records) == 5
    table, _, _ = leaderboard(runs, "openvocab", "classes")
    assert len(table) == 5 and table["method"].nunique() == 5
    assert any("(ablation mhqr-no-queries)" in m for m in table["method"])


def test_shared_stages_give_the_same_maps_as_separate_runs(parts):
    dense, sam2 = parts
    image, classes = rgb(64, 80, seed=5), parse_classes("sky\ngrass\ncar")
    base = replace(MHQRConfig(), query=replace(QueryConfig(), max_queries=16))
    variants = {"mhqr": base, "mhqr-no-merge": base.without("merge"), "mhqr-no-masks": base.without("masks")}
    shared = MHQRPredictor(dense, Sam2PointMasks(sam2)).predict_variants(image, classes, DenseConfig(), variants)
    for name, cfg in variants.items():
        alone = MHQRPredictor(dense, Sam2PointMasks(sam2), "mhqr", cfg).predict(image, classes)
        np.testing.assert_array_equal(shared[name].labels, alone.labels)
        assert shared[name].queries == alone.queries and shared[name].ran == alone.ran
    assert shared["mhqr"].dense is shared["mhqr-no-merge"].dense  # one dense prediction behind all three
    with pytest.raises(ValueError, match="grid-vote"):
        MHQRPredictor(dense, Sam2PointMasks(sam2), "grid-vote").predict_variants(image, classes, DenseConfig(),
                                                                                  variants)


def test_an_interrupted_ablation_resumes_every_variant(semantic_set, parts, tmp_path, monkeypatch):
    dense, sam2 = parts
    classes = load_class_file(str(semantic_set / "classes.txt"))
    predictor = MHQRPredictor(dense, Sam2PointMasks(sam2))
    base = replace(MHQRConfig(), query=replace(QueryConfig(), max_queries=16))
    variants = {"mhqr": base, "mhqr-no-merge": base.without("merge")}
    cfg, out = DenseConfig(short_side=224), tmp_path / "r.json"
    real, calls = predictor.predict_variants, []

    def flaky(image, cl, c, vs):
        if len(calls) == 1:
            raise KeyboardInterrupt
        calls.append(sorted(vs))
        return real(image, cl, c, vs)

    monkeypatch.setattr(predictor, "predict_variants", flaky)
    with pytest.raises(BadInput, match="resume"):
        evaluate_ablation(semantic_set, classes, predictor, cfg, variants, out, "test", max_images=2)
    partials = sorted(p.name for p in tmp_path.iterdir())
    assert partials == ["r-no-merge.json.partial.jsonl", "r.json.partial.jsonl"]
    calls.clear()
    monkeypatch.setattr(predictor, "predict_variants", lambda *a: calls.append(sorted(a[3])) or real(*a))
    recs = evaluate_ablation(semantic_set, classes, predictor, cfg, variants, out, "test", max_images=2)
    assert calls == [["mhqr", "mhqr-no-merge"]]  # only the second image, for both variants
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-no-merge.json", "r.json"]
    assert all(r["dataset"]["n"] == 2 and r["metrics"]["queries_per_image"]["min"] > 0 for r in recs.values())
