"""NACLIP as published (sinahmr/NACLIP) against SegLab's `method="naclip"`, on the same random ViT-B/16 weights
and text vectors. The reference is tests/published_naclip.py, written from the official code."""

from __future__ import annotations

import pytest
import torch
from skimage import data

import published_naclip as ref
from core.openvocab.attention import neighbourhood_window
from core.openvocab.sclip import DenseConfig, SCLIPPredictor
from parity import assert_labels_agree, install_text, random_vit_b16


@pytest.mark.parametrize("grid", [(14, 14), (14, 21), (3, 5)])
def test_neighbourhood_window_is_nacLIPs(grid):
    ours = neighbourhood_window(*grid, std=5.0)
    assert ours.shape == (grid[0] * grid[1] + 1,) * 2
    assert torch.equal(ours[0], torch.zeros(ours.shape[1])) and torch.equal(ours[:, 0], torch.zeros(ours.shape[0]))
    assert torch.allclose(ours[1:, 1:], ref.naclip_gaussian_window(*grid, std=5.0).float(), atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def vit_b16():
    return random_vit_b16()


@pytest.mark.parametrize("shape", [(2, 3, 224, 224), (1, 3, 224, 160)])
def test_crop_features_equal_naclips(vit_b16, shape):
    crops = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    ours, _ = SCLIPPredictor(vit_b16).crop_features(crops, DenseConfig(method="naclip"))
    theirs = ref.naclip_features(vit_b16.model, crops)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=2e-5, rtol=0), (ours - theirs).abs().max()


@pytest.mark.parametrize("settings", [dict(pamr=True), dict(prob_thd=0.1)])
def test_dense_labels_equal_naclips(vit_b16, settings):
    """NACLIP's published pipeline: PAMR (10 steps, dilations 8 and 16) on by default, logit scale 40."""
    classes, text = install_text(vit_b16, "background, sky\nwall\ncup, mug\nplate", seed=4)
    image = data.coffee()[60:300, 100:460]
    labels, probs = ref.naclip_predict(vit_b16.model, image, text, classes.name_to_class, short_side=224,
                                       pamr_steps=10 if settings.get("pamr") else 0,
                                       prob_thd=settings.get("prob_thd", 0.0), return_probs=True)
    res = SCLIPPredictor(vit_b16).predict(image, classes, DenseConfig(method="naclip", short_side=224, **settings))
    assert res.ran[0] == "naclip"
    assert_labels_agree(res.labels, labels, probs, settings.get("prob_thd", 0.0))
