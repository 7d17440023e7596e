"""SAM2 (MHQR stage 3): the registry family and Sam2PointMasks, on a tiny random Sam2Model saved with save_pretrained."""

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import rgb
from core.errors import ModelUnavailable
from core.models import ModelRegistry, registry
from core.models.sam2 import HUB_ID, SAM2_SIZES, SAM2_SPEC, SAM2_SPECS, sam2_config, sam2_name
from core.openvocab.mhqr.masks import order_by_area
from core.openvocab.mhqr.sam2_masks import Sam2PointMasks

IMAGE = rgb(72, 100, seed=3)  # larger than the tiny model's 64 × 64 low-resolution masks on both sides
POINTS = np.array([[10.0, 20.0], [50.5, 30.0], [99.0, 71.0], [0.0, 0.0], [70.0, 8.0], [33.0, 60.0], [80.0, 40.0]])
NEGATIVES = [np.zeros((0, 2)), np.array([[5.0, 5.0]]), np.zeros((0, 2)), np.array([[60.0, 60.0], [20.0, 50.0]]),
             np.array([[90.0, 10.0]]), np.zeros((0, 2)), np.array([[1.0, 70.0], [40.0, 40.0]])]


@pytest.fixture(scope="session")
def tiny_sam2():
    return registry().get("sam2")


@pytest.fixture(scope="session")
def generator(tiny_sam2):
    g = Sam2PointMasks(tiny_sam2, group="single")
    g.set_image(IMAGE)
    return g


def logits_with(generator, group, points=POINTS, size=(36, 50), negatives=None):
    generator.group = group
    return generator.point_logits(points, size, negatives)


def test_tiny_sam2_is_a_real_sam2_saved_and_loaded_through_the_registry(tiny_sam2):
    folder = Path(tiny_sam2.location)
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert (folder / "processor_config.json").is_file()
    assert type(tiny_sam2.model).__name__ == "Sam2Model"
    assert type(tiny_sam2.processor).__name__ == "Sam2Processor"
    assert tiny_sam2.frame == tiny_sam2.processor.image_processor.size["height"] == 256
    assert registry().get("sam2") is tiny_sam2  # loaded once


def test_sizes_are_named_by_hub_id_and_registered():
    assert sam2_name(HUB_ID) == sam2_name("tiny") == "sam2" == SAM2_SPEC.name and SAM2_SPEC.env_var == "SEGLAB_SAM2"
    assert sam2_name("facebook/sam2.1-hiera-large") == sam2_name("large") == "sam2-large"
    assert {s.hub_id for s in SAM2_SPECS} == set(SAM2_SIZES)
    assert {sam2_name(h) for h in SAM2_SIZES} <= set(registry().names())
    assert registry().spec("sam2-base-plus").env_var == "SEGLAB_SAM2_BASE_PLUS"
    with pytest.raises(ValueError, match="unknown SAM2 size"):
        sam2_name("huge")
    real = sam2_config(HUB_ID)  # the released tiny: Hiera 96 wide, 1-2-7-2 blocks, 1024 frame, 256-wide decoder
    assert real.vision_config.backbone_config.blocks_per_stage == [1, 2, 7, 2]
    assert real.vision_config.backbone_channel_list == [768, 384, 192, 96]
    assert real.prompt_encoder_config.image_size == 1024 and real.mask_decoder_config.hidden_size == 256


def test_grouped_calls_give_the_same_masks_and_scores_as_one_call_per_point(generator):
    single, s_scores = logits_with(generator, "single", negatives=NEGATIVES)
    for group in [3, "batch"]:
        grouped, g_scores = logits_with(generator, group, negatives=NEGATIVES)
        np.testing.assert_allclose(g_scores, s_scores, atol=1e-5)
        np.testing.assert_allclose(grouped, single, atol=1e-4)
        sure = np.abs(single) > 1e-3  # a mask pixel can only flip where the logit is ~0
        assert np.array_equal((grouped > 0)[sure], (single > 0)[sure])
    generator.group = "single"
    a = generator.point_masks(POINTS, (36, 50), NEGATIVES)
    generator.group = 4
    b = generator.point_masks(POINTS, (36, 50), NEGATIVES)
    assert (a.masks != b.masks).mean() < 1e-3 and np.allclose(a.scores, b.scores, atol=1e-5)


def test_masks_come_back_at_the_requested_size_ordered_by_area(generator):
    generator.group = 2
    for size in [(36, 50), (90, 120)]:
        pm = generator.point_masks(POINTS, size)
        assert pm.masks.shape == (len(POINTS), 3, *size) and pm.masks.dtype == bool
        assert pm.scores.shape == (len(POINTS), 3) and pm.scores.dtype == np.float32
        areas = pm.masks.sum((2, 3))
        assert (np.diff(areas, axis=1) <= 0).all()
        logits, scores = generator.point_logits(POINTS, size)
        expected = order_by_area(logits > 0, scores)
        assert np.array_equal(pm.masks, expected.masks) and np.array_equal(pm.scores, expected.scores)
    empty = generator.point_masks(np.zeros((0, 2)), (36, 50))
    assert empty.masks.shape == (0, 3, 36, 50) and empty.scores.shape == (0, 3)


def test_negatives_are_accepted_and_change_only_their_query(generator):
    plain, plain_scores = logits_with(generator, 4)
    with_neg, neg_scores = logits_with(generator, 4, negatives=NEGATIVES)
    none_given = [i for i, m in enumerate(NEGATIVES) if len(m) == 0]
    given = [i for i, m in enumerate(NEGATIVES) if len(m)]
    np.testing.assert_allclose(with_neg[none_given], plain[none_given], atol=1e-4)
    np.testing.assert_allclose(neg_scores[none_given], plain_scores[none_given], atol=1e-5)
    assert all(np.abs(with_neg[i] - plain[i]).max() > 1e-3 for i in given)
    with pytest.raises(ValueError, match="negatives_xy"):
        generator.point_masks(POINTS, (36, 50), NEGATIVES[:2])


def test_points_and_masks_follow_the_processor_geometry(tiny_sam2, generator):
    """Stretch to the square frame (no padding); logits resized over the whole frame: as transformers does it."""
    proc, model = tiny_sam2.processor, tiny_sam2.model
    pts = POINTS[:3]
    inputs = proc(images=IMAGE, input_points=[[[list(p)] for p in pts]], return_tensors="pt")
    np.testing.assert_allclose(generator.frame_points(pts), inputs["input_points"][0, :, 0].numpy(), rtol=1e-6)
    with torch.inference_mode():
        out = model(pixel_values=inputs["pixel_values"], input_points=inputs["input_points"], multimask_output=True)
    reference = proc.post_process_masks(out.pred_masks, inputs["original_sizes"], binarize=False)[0].numpy()
    mine, scores = logits_with(generator, "batch", points=pts, size=IMAGE.shape[:2])
    np.testing.assert_allclose(mine, reference, atol=1e-4)
    np.testing.assert_allclose(scores, out.iou_scores[0].numpy(), atol=1e-5)


def test_another_frame_shares_the_weights_and_matches_a_model_loaded_at_that_frame(tiny_sam2):
    """at_frame(128): the same tensors, and the same masks as transformers' own model loaded with a 128 config."""
    import copy

    from transformers import Sam2Model

    small = tiny_sam2.at_frame(128)
    assert small is tiny_sam2.at_frame(128) and tiny_sam2.at_frame() is tiny_sam2 and tiny_sam2.frame == 256
    assert small.frame == small.processor.image_processor.size["height"] == small.processor.target_size == 128
    ours, theirs = dict(small.model.named_parameters()), dict(tiny_sam2.model.named_parameters())
    assert ours.keys() == theirs.keys() and all(ours[k].data_ptr() == theirs[k].data_ptr() for k in ours)
    config = copy.deepcopy(tiny_sam2.model.config)
    config.vision_config.backbone_feature_sizes = [[32, 32], [16, 16], [8, 8]]
    config.vision_config.backbone_config.image_size = [128, 128]
    config.prompt_encoder_config.image_size = 128
    reference = Sam2Model.from_pretrained(tiny_sam2.location, config=config).eval()
    proc = copy.deepcopy(tiny_sam2.processor)
    proc.image_processor.size, proc.image_processor.mask_size = {"height": 128, "width": 128}, {"height": 32, "width": 32}
    proc.target_size = 128
    pts = POINTS[:3]
    inputs = proc(images=IMAGE, input_points=[[[list(p)] for p in pts]], return_tensors="pt")
    assert inputs["pixel_values"].shape[-2:] == (128, 128)
    with torch.inference_mode():
        out = reference(pixel_values=inputs["pixel_values"], input_points=inputs["input_points"], multimask_output=True)
    expected = proc.post_process_masks(out.pred_masks, inputs["original_sizes"], binarize=False)[0].numpy()
    g = Sam2PointMasks(small, group="batch")
    g.set_image(IMAGE)
    np.testing.assert_allclose(g.point_logits(pts, IMAGE.shape[:2])[0], expected, atol=1e-4)
    at_native = Sam2PointMasks(tiny_sam2, group="batch")
    at_native.set_image(IMAGE)
    assert np.abs(at_native.point_logits(pts, IMAGE.shape[:2])[0] - expected).max() > 1e-2  # the frame matters
    for bad in (100, 32):
        with pytest.raises(ValueError, match="multiple of 32"):
            tiny_sam2.at_frame(bad)


def test_bad_groups_and_a_missing_image_are_refused(tiny_sam2):
    for bad in ["some", 0, -2, 1.5, True]:
        with pytest.raises(ValueError, match="group"):
            Sam2PointMasks(tiny_sam2, group=bad)
    with pytest.raises(RuntimeError, match="set_image"):
        Sam2PointMasks(tiny_sam2).point_masks(POINTS, (10, 10))


def test_missing_weights_say_which_model_and_which_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGLAB_MODELS", "real")
    monkeypatch.delenv("SEGLAB_SAM2", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    reg = ModelRegistry(device=torch.device("cpu"))
    reg.register(SAM2_SPEC)
    t0 = time.monotonic()
    with pytest.raises(ModelUnavailable) as err:
        reg.get("sam2")
    assert time.monotonic() - t0 < 20
    msg = str(err.value)
    assert "'sam2'" in msg and "facebook/sam2.1-hiera-tiny" in msg and "SEGLAB_SAM2" in msg
    assert "SEGLAB_MODELS=tiny" in msg
    monkeypatch.setenv("SEGLAB_SAM2", str(tmp_path / "nowhere"))
    fresh = ModelRegistry(device=torch.device("cpu"))
    fresh.register(SAM2_SPEC)
    with pytest.raises(ModelUnavailable) as err:
        fresh.get("sam2")
    assert "SEGLAB_SAM2" in str(err.value) and "nowhere" in str(err.value)
