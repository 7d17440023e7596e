"""SCLIP as published (wangf3014/SCLIP, PAMR from visinf/1-stage-wseg) against SegLab's dense predictor, on the
same random ViT-B/16 weights and text vectors. The reference is tests/published_sclip.py, written from the
official code, never from SegLab's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

import published_sclip as ref
from parity import assert_labels_agree, install_text, random_vit_b16
from core.openvocab.class_names import CLASS_LIST_DIR, load_class_file, parse_classes, preset_names
from core.openvocab.refine import pamr
from core.openvocab.sclip import DenseConfig, SCLIPPredictor, normalise, resize_keep_ratio

PHOTOS = {"coffee": data.coffee(), "astronaut": data.astronaut(), "chelsea": data.chelsea()}


@pytest.mark.parametrize("name", sorted(PHOTOS))
@pytest.mark.parametrize("short_side", [336, 448])
def test_resize_is_mmcv_keep_ratio_bilinear(name, short_side):
    image = PHOTOS[name]
    ours = resize_keep_ratio(image, short_side)
    theirs = ref.sclip_resize(image, (2048, short_side))
    assert ours.shape == theirs.shape and ours.dtype == np.uint8
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("hw", [(400, 600), (333, 1000), (100, 3000), (3000, 4000), (7, 9), (1000, 130)])
def test_resize_sizes_and_long_side_cap(hw):
    image = np.zeros((*hw, 3), np.uint8)
    if min(ref.mmcv_rescale_size(hw[1], hw[0])) < 16:
        with pytest.raises(Exception, match="patch"):
            resize_keep_ratio(image, 336)
        return
    assert resize_keep_ratio(image, 336).shape[1::-1] == ref.mmcv_rescale_size(hw[1], hw[0])
    assert max(resize_keep_ratio(image, 336).shape[:2]) <= 2048


def test_normalisation_uses_sclips_constants():
    small = resize_keep_ratio(PHOTOS["coffee"], 336)
    from core.models.openclip import OPENAI_MEAN, OPENAI_STD
    assert torch.allclose(normalise(small, OPENAI_MEAN, OPENAI_STD), ref.sclip_normalize(small), atol=1e-6, rtol=0)


@pytest.mark.parametrize("preset", preset_names())
def test_class_files_read_like_sclips_name_files(preset):
    words, idx = ref.sclip_name_file(str(CLASS_LIST_DIR / f"{preset}.txt"))
    ours = load_class_file(preset)
    assert ours.names == words and ours.name_to_class == idx


def test_a_one_line_class_file_is_one_class_with_synonyms(tmp_path):
    f = tmp_path / "people.txt"
    f.write_text("person, man, woman\n")
    words, idx = ref.sclip_name_file(str(f))
    ours = load_class_file(str(f))
    assert (ours.n, ours.names, ours.name_to_class) == (1, words, idx) == (1, ["person", "man", "woman"], [0, 0, 0])
    assert parse_classes("person, man, woman").n == 3  # the tab's text box keeps the typing shortcut


def test_pamr_equals_the_official_module():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 70, 90, generator=g)
    mask = torch.randn(1, 5, 70, 90, generator=g)
    for dil in [(8, 16), (1, 2, 4)]:
        ours = pamr(image, mask, 10, dil)
        theirs = ref.pamr_reference(image, mask, 10, dil)
        assert torch.allclose(ours, theirs, atol=1e-5, rtol=0), (ours - theirs).abs().max()


@pytest.fixture(scope="module")
def vit_b16():
    return random_vit_b16()


def _agree(ours, out, prob_thd=0.0):
    assert_labels_agree(ours, out["labels"], out["seg_logits"], prob_thd)


@pytest.mark.parametrize("settings", [
    dict(),  # SCLIP's defaults: logit scale 40
    dict(logit_scale=65, prob_thd=0.1, area_thd=0.1, short_side=224),  # VOC21's config (smaller, for speed)
    dict(logit_scale=50, prob_thd=0.1, short_side=224),  # Context60 / COCO-Object
])
def test_dense_labels_equal_sclips(vit_b16, settings):
    classes, text = install_text(vit_b16, "background, sky\nwall\ncup, mug, coffee cup\nplate\nspoon", seed=1)
    image = PHOTOS["coffee"]
    theirs = {k: v for k, v in settings.items() if k != "short_side"}
    out = ref.sclip_predict(vit_b16.model, image, text, classes.name_to_class, return_all=True,
                            scale=(2048, settings.get("short_side", 336)), **theirs)
    res = SCLIPPredictor(vit_b16).predict(image, classes, DenseConfig(**settings))
    _agree(res.labels, out, settings.get("prob_thd", 0.0))
    if "area_thd" in settings:  # the controlled case where the share of non-background pixels matters
        assert out["area_keep"] is not None


@pytest.mark.parametrize("area_thd,kept", [(0.1, [True, True]), (0.3, [True, False])])
@pytest.mark.parametrize("prob_thd", [0.0, 0.5])
@pytest.mark.parametrize("path", ["whole map", "cell bounds"])
def test_area_threshold_is_a_share_of_the_non_background_pixels(area_thd, kept, prob_thd, path, monkeypatch):
    """A controlled map: background on about 80% of the image, class 1 on 15%, class 2 (two synonyms) on 5%.
    Of the non-background pixels class 2 holds about 25%: SCLIP keeps it at 0.1 (a share of the whole image would
    drop it) and drops it at 0.3, zeroing its probabilities before prob_thd."""
    import core.openvocab.full_resolution as full_resolution
    from core.openvocab.full_resolution import FullResolution, published_labels

    if path == "cell bounds":  # the path a photo of several megapixels takes
        monkeypatch.setattr(full_resolution, "DENSE_ELEMENTS", 0)
    h, w, size = 40, 60, (200, 300)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, h, w, generator=g) * 0.02
    logits[1] += 0.1 * ((xx > 42) & (yy < 26))
    logits[2] += 0.1 * ((xx > 42) & (yy >= 26) & (yy < 34))
    logits[3] += 0.08 * ((xx > 42) & (yy >= 26) & (yy < 34))
    logits[0] += 0.05
    query_idx = [0, 1, 2, 2]
    up = torch.nn.functional.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]
    theirs = ref._sclip_postprocess(up, query_idx, 40.0, prob_thd, area_thd)
    assert theirs["area_keep"].tolist() == kept
    ours = published_labels(FullResolution(logits * 40.0, torch.tensor(query_idx), size), 3, area_thd, prob_thd)
    assert_labels_agree(ours.numpy(), theirs["labels"], theirs["seg_logits"], prob_thd)
    share = (theirs["labels"] == 2).float().mean().item()
    assert (share > 0) == kept[1]  # the kept class is really there; the dropped one is gone


def test_pamr_path_equals_sclips_tile_by_tile(vit_b16, monkeypatch):
    """PAMR at the image's size, guided by the normalised network input upsampled back; SegLab computes it in
    tiles with a margin, which must not change a single value."""
    import core.openvocab.refine as refine

    monkeypatch.setattr(refine, "PAMR_TILE", 96)
    classes, text = install_text(vit_b16, "sky\nwall, background\ncup", seed=3)
    image = np.ascontiguousarray(PHOTOS["coffee"][100:340, 150:470])
    out = ref.sclip_predict(vit_b16.model, image, text, classes.name_to_class, return_all=True, pamr=True)
    res = SCLIPPredictor(vit_b16).predict(image, classes, DenseConfig(pamr=True))
    _agree(res.labels, out)
    tile = res.full.tile((0, 96), (96, 192)) / 40.0
    assert torch.allclose(tile, out["logits"][:, 0:96, 96:192], atol=2e-5, rtol=0)
