"""MHQR's first stage on the real dense predictor (tiny CLIP): SCLIP's output as MHQR's DenseInput."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from core.openvocab.class_names import parse_classes
from core.openvocab.mhqr.clip_dense import ClipDense
from core.openvocab.mhqr.pipeline import MHQRConfig, run_mhqr
from core.openvocab.mhqr.semantic_map import labels_at
from core.openvocab.sclip import DenseConfig, SCLIPPredictor


@pytest.fixture(scope="module")
def predictor():
    from core.models import registry

    return SCLIPPredictor(registry().get("openclip"))


@pytest.mark.parametrize("cfg", [DenseConfig(), DenseConfig(method="naclip", prob_thd=0.3), DenseConfig(pamr=True)])
def test_clip_dense_feeds_mhqr(predictor, cfg):
    image = data.coffee()[::2, ::2]  # 200×300
    classes = parse_classes("table\ncup, mug\nplate")
    dense, res = ClipDense(predictor, cfg)(image, classes)
    h, w = dense.working_size
    assert (h, w) == res.probs.shape[1:] and dense.image_size == (200, 300)
    assert dense.features.shape[:2] == (h // 16, w // 16) and dense.text.shape == (3, dense.features.shape[2])
    assert dense.labels.shape == (h, w) and dense.labels.max() < 3
    if not cfg.pamr:  # the working-size labels are the published labels of the same scores
        up = labels_at(dense.labels, image.shape[:2])
        assert (up == res.labels).mean() > 0.95
    out = run_mhqr(dense, None, MHQRConfig(masks=False))
    assert out.labels.shape == (h, w) and set(np.unique(out.labels)) <= {0, 1, 2}


@pytest.mark.parametrize("method", ["mhqr", "grid-vote"])
def test_the_predictor_announces_each_stage_in_order(predictor, method):
    """on_stage (the tab's progress bar) hears every stage as it starts, in the order they run."""
    from core.data.synthetic.shape_scenes import draw_shape_scene
    from core.openvocab.mhqr.grid_vote import GridVoteConfig
    from core.openvocab.mhqr.predictor import MHQRPredictor
    from core.openvocab.mhqr.standins import StandInMasks

    scene = draw_shape_scene(2, 96, 128)
    heard = []
    pred = MHQRPredictor(predictor, StandInMasks(scene, seed=2), method, grid=GridVoteConfig(grid=4)).predict(
        scene.image, parse_classes("sky\nperson\ncar"), on_stage=heard.append)
    expect = ["queries", "masks", "refine", "merge", "semantic_map"] if method == "mhqr" else ["grid_vote"]
    assert heard == ["dense", "sam2_image"] + expect and pred.labels.shape == (96, 128)
