"""MHQR on bad inputs (issue 11), end to end through MHQRPredictor with the tiny random CLIP and SAM2: each case
gives a labels map at the image's size or a BadInput with a clear message (and, on the command line, exit code 2
and no traceback). The 6000×4000 case runs in its own process and measures its peak resident memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, rgb
from core.errors import BadInput
from core.openvocab.class_names import load_class_file, parse_classes
from core.openvocab.mhqr.pipeline import MHQRConfig
from core.openvocab.mhqr.predictor import MHQRPredictor
from core.openvocab.mhqr.queries import QueryConfig
from core.openvocab.mhqr.sam2_masks import Sam2PointMasks
from core.openvocab.mhqr.semantic_map import labels_at
from core.openvocab.sclip import DenseConfig, SCLIPPredictor

THREE = parse_classes("sky\ngrass\ncar")
STRIP_MESSAGE = "less than one 16-pixel patch"


class Counted(Sam2PointMasks):
    """The real SAM2 stage, counting image encodings and decoded prompts."""

    def __init__(self, sam2):
        super().__init__(sam2)
        self.encodes, self.prompts = 0, 0

    def set_image(self, image):
        self.encodes += 1
        super().set_image(image)

    def point_masks(self, points_xy, size, negatives_xy=None):
        self.prompts += len(np.asarray(points_xy).reshape(-1, 2))
        return super().point_masks(points_xy, size, negatives_xy)


@pytest.fixture(scope="module")
def parts():
    from core.models import registry

    return SCLIPPredictor(registry().get("openclip")), registry().get("sam2")


def mhqr(parts, cfg=MHQRConfig(), method="mhqr"):
    dense, sam2 = parts
    return MHQRPredictor(dense, Counted(sam2), method, cfg)


def check_map(pred, image, n_classes):
    assert pred.labels.shape == image.shape[:2] and pred.labels.dtype == np.int32
    assert 0 <= pred.labels.min() and pred.labels.max() < n_classes


def test_no_class_above_the_threshold_keeps_the_dense_map_and_says_so(parts):
    image = rgb(60, 90, seed=1)
    p = mhqr(parts)
    pred = p.predict(image, THREE, DenseConfig(logit_scale=0.0))  # every class 1/3 everywhere: below 1.5 × chance
    check_map(pred, image, 3)
    assert pred.dense_kept and pred.queries == 0 and p.masks.prompts == 0
    assert pred.result.queries.queries == [] and pred.result.masks.masks.shape[0] == 0
    assert any("no class reaches the query threshold 0.500" in m and "dense map is kept" in m for m in pred.messages)
    np.testing.assert_array_equal(pred.labels, labels_at(pred.result.dense_labels, image.shape[:2]))
    np.testing.assert_array_equal(pred.labels, pred.dense.labels)  # all class 0, as the dense method says


def test_one_class(parts):
    image = rgb(64, 80, seed=2)
    p = mhqr(parts)
    pred = p.predict(image, parse_classes("wall"))
    check_map(pred, image, 1)
    assert (pred.labels == 0).all() and not pred.dense_kept
    assert 10 <= pred.queries == p.masks.prompts <= 200  # spread inside the one component up to min_queries
    assert {q.cls for q in pred.result.queries.queries} == {0}


def test_171_classes(parts):
    image = rgb(64, 96, seed=3)
    classes = load_class_file("coco_stuff171")
    assert classes.n == 171
    p = mhqr(parts, replace(MHQRConfig(), query=replace(QueryConfig(), max_queries=24)))
    pred = p.predict(image, classes)
    check_map(pred, image, 171)
    qs = pred.result.queries.queries
    assert 10 <= len(qs) <= 24 and pred.queries == len(qs) == p.masks.prompts
    assert len({q.cls for q in qs}) > 1 and pred.result.merged.masks.shape[1:] == pred.result.labels.shape


@pytest.mark.parametrize("method", ["mhqr", "grid-vote"])
def test_a_one_pixel_image(parts, method):
    """The dense method scales a 1×1 image up to its working size (336 × 336) rather than refusing it; MHQR and
    grid-vote then answer at 1×1."""
    image = np.array([[[200, 30, 30]]], np.uint8)
    p = mhqr(parts, method=method)
    p.grid = replace(p.grid, grid=4)
    pred = p.predict(image, THREE)
    check_map(pred, image, 3)
    assert p.masks.encodes == 1 and pred.dense.labels.shape == (1, 1)
    if method == "mhqr":
        assert pred.result.labels.shape == (336, 336) and pred.queries >= 10
        assert all(-0.5 <= q.x <= 0.5 and -0.5 <= q.y <= 0.5 for q in pred.result.queries.queries)


@pytest.mark.parametrize("shape", [(4000, 20), (20, 4000)])
def test_a_4000_by_20_strip_is_refused_as_the_dense_method_refuses_it(parts, shape):
    image = np.zeros((*shape, 3), np.uint8)
    with pytest.raises(BadInput, match=STRIP_MESSAGE) as dense_error:
        parts[0].predict(image, THREE)
    p = mhqr(parts)
    with pytest.raises(BadInput, match=STRIP_MESSAGE) as mhqr_error:
        p.predict(image, THREE)
    assert str(mhqr_error.value) == str(dense_error.value) and "Crop it" in str(mhqr_error.value)
    assert "20×4000" in str(mhqr_error.value) or "4000×20" in str(mhqr_error.value)
    assert p.masks.encodes == 0  # refused before SAM2 ran


def test_a_thin_strip_the_dense_method_accepts(parts):
    image = rgb(4000, 40, seed=4)  # long side 4000 -> 2048: a 2048 × 20 working map
    p = mhqr(parts, replace(MHQRConfig(), query=replace(QueryConfig(), max_queries=16)))
    pred = p.predict(image, THREE)
    check_map(pred, image, 3)
    assert pred.result.labels.shape == (2048, 20) and 10 <= pred.queries <= 16
    assert all(0 <= q.x < 40 and 0 <= q.y < 4000 for q in pred.result.queries.queries)


def test_the_cli_refuses_a_strip_with_a_message_not_a_traceback(tmp_path):
    data = tmp_path / "strip"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    Image.fromarray(np.zeros((4000, 20, 3), np.uint8)).save(data / "images" / "strip.png")
    Image.fromarray(np.zeros((4000, 20), np.uint8)).save(data / "labels" / "strip.png")
    (data / "classes.txt").write_text("sky\ngrass\ncar\n")
    out = tmp_path / "runs" / "strip.json"
    r = subprocess.run([sys.executable, "-m", "core", "evaluate-semantic", "--models", "tiny", "--data", str(data),
                        "--classes", str(data / "classes.txt"), "--out", str(out), "--method", "mhqr"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert STRIP_MESSAGE in r.stderr and "error: The image is 20×4000" in r.stderr
    assert not out.exists()


BIG_SCRIPT = r"""
import json, sys, time
import numpy as np
from core.models import registry
from core.openvocab.class_names import parse_classes
from core.openvocab.mhqr.pipeline import MHQRConfig
from core.openvocab.mhqr.predictor import MHQRPredictor
from core.openvocab.mhqr.queries import QueryConfig
from core.openvocab.mhqr.sam2_masks import Sam2PointMasks
from core.openvocab.sclip import SCLIPPredictor

def vm(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)) / 1024

classes = parse_classes("\n".join(f"thing {i}" for i in range(20)))
cfg = MHQRConfig(query=QueryConfig(max_queries=30))
p = MHQRPredictor(SCLIPPredictor(registry().get("openclip")), Sam2PointMasks(registry().get("sam2")), "mhqr", cfg)
p.predict(np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8), classes)  # warm-up
image = np.random.default_rng(1).integers(0, 256, (4000, 6000, 3), dtype=np.uint8)
open("/proc/self/clear_refs", "w").write("5")  # peak RSS from here
before = vm("VmRSS:")
t = time.perf_counter()
pred = p.predict(image, classes)
print(json.dumps({"shape": list(pred.labels.shape), "max": int(pred.labels.max()), "queries": pred.queries,
                  "working": list(pred.result.labels.shape), "before_mb": before, "peak_mb": vm("VmHWM:"),
                  "seconds": time.perf_counter() - t, "stages": pred.stage_seconds}))
"""


def test_a_6000_by_4000_image_without_classes_or_queries_times_pixels(tmp_path):
    """20 classes × 6000 × 4000 float32 would be 1.9 GB, 30 queries × 3 masks × 6000 × 4000 bools 2.2 GB: the
    peak over the resident memory before the call (which already holds the 72 MB image) stays far under both."""
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak")
    r = subprocess.run([sys.executable, "-c", BIG_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["shape"] == [4000, 6000] and out["max"] < 20 and out["working"] == [336, 504]
    assert 10 <= out["queries"] <= 30
    growth = out["peak_mb"] - out["before_mb"]
    print(f"6000×4000, 20 classes, {out['queries']} queries: peak RSS {out['peak_mb']:.0f} MB, "
          f"{growth:.0f} MB over the {out['before_mb']:.0f} MB before the call; {out['seconds']:.1f} s")
    assert growth < 1200, out
