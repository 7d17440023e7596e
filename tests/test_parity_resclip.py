"""ResCLIP's RCS and SFR as published (yvhangyang/ResCLIP) against SegLab's, on the same random ViT-B/16 weights
and text vectors, on both bases ResCLIP publishes (NACLIP, its headline, and SCLIP). The reference is
tests/published_resclip.py, written from the official code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

import published_resclip as ref
from core.openvocab.attention import patch_mode, sfr_affinity
from core.openvocab.sclip import DenseConfig, SCLIPPredictor, normalise, resize_keep_ratio
from parity import install_text, random_vit_b16


def blobs(gh: int, gw: int, seed: int, n: int = 4) -> torch.Tensor:
    """Smooth random label maps with several regions, some split in two pieces of one label."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=(n, gh, gw)), (0, 1.5, 1.5))
    return torch.from_numpy(field.argmax(0))


@pytest.mark.parametrize("grid,seed", [((14, 14), 0), ((14, 14), 1), ((7, 14), 2), ((14, 9), 3), ((3, 4), 4)])
@pytest.mark.parametrize("separate", [True, False])
def test_sfr_affinity_is_resclips(grid, seed, separate):
    labels = blobs(*grid, seed)
    ours = sfr_affinity(labels[None], 5.0, separate)[0]
    theirs = ref.sfr_affinity(labels, gaussian_std=5.0, delete_same_entity=separate, with_cls=True)
    theirs = theirs / theirs.max()
    assert ours.shape == theirs.shape == (grid[0] * grid[1] + 1,) * 2
    assert torch.allclose(ours, theirs.float(), atol=1e-6, rtol=0), (ours - theirs).abs().max()


def test_sfr_path_weighting_changes_the_affinity():
    """Two separate regions of one label: the pairs across them are down-weighted, so the switch matters."""
    labels = torch.zeros(6, 6, dtype=torch.long)
    labels[:, 2:4] = 1
    on, off = sfr_affinity(labels[None], 5.0, True)[0], sfr_affinity(labels[None], 5.0, False)[0]
    assert not torch.allclose(on, off)
    assert torch.allclose(on, ref.sfr_affinity(labels, delete_same_entity=True, with_cls=True).float() /
                          ref.sfr_affinity(labels, delete_same_entity=True, with_cls=True).max(), atol=1e-6)


def test_patch_mode_ties_go_to_the_smallest_label():
    labels = torch.tensor([[[3, 1, 2, 2], [1, 3, 2, 5]]])  # first patch: two 3s and two 1s
    assert patch_mode(labels, 2).tolist() == [[[1, 2]]]


@pytest.fixture(scope="module")
def vit_b16():
    return random_vit_b16()


@pytest.mark.parametrize("base", ["naclip", "sclip"])
@pytest.mark.parametrize("rcs,sfr", [(True, False), (True, True), (False, True)])
def test_crop_logits_equal_resclips(vit_b16, base, rcs, sfr):
    """One 224 crop of a photo through both passes: first-pass labels per name (PAMR, temp_thd), SFR affinity,
    second pass with RCS and SFR; compared as cosine logits at the crop's size."""
    from skimage import data

    classes, text = install_text(vit_b16, "sky, background\nwall\ncup, mug\nplate\ntable", seed=5)
    crop = normalise(resize_keep_ratio(data.coffee(), 224), vit_b16.mean, vit_b16.std)[:, :, 60:284][None]
    cfg = DenseConfig(method=base, rcs=rcs, sfr=sfr, rcs_tau=2.0, rcs_lambda=0.4, sfr_tau=1.8, sfr_lambda=0.7,
                      sfr_temp_thd=0.11)
    feats, _ = SCLIPPredictor(vit_b16).crop_features(crop, cfg, text)
    ours = F.interpolate((feats @ text.T).permute(0, 3, 1, 2), size=crop.shape[-2:], mode="bilinear",
                         align_corners=False)
    theirs, aux = ref.resclip_crop_logits(vit_b16.model, crop, text, base=base, rcs=rcs, sfr=sfr,
                                          rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7), temp_thd=0.11,
                                          sfr_fp16_cast=False, return_aux=True)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=5e-5, rtol=0), (ours - theirs).abs().max()
    if sfr:  # the first pass must give more than one label, or SFR is tested on a trivial map
        assert len(aux["patch_labels"].unique()) > 1
