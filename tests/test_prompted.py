import numpy as np
import pytest
import torch
from PIL import Image

from conftest import rgb
from core.errors import BadInput
from core.prompted.cleanup import Cleanup, clean_mask
from core.models.clipseg import ClipSegPredictor
from core.prompted.segmenter import PromptedRequest, PromptedSegmenter, write_masks
from core.prompted.prompts import LABEL_PROMPTS


def test_shared_encoding_equals_the_full_forward_per_prompt(segmenter, tiny_clipseg):
    image = rgb(90, 130)
    prompts = ["segment crack", "segment wall crack", "segment taping area"]
    pred = segmenter.predictor
    tiny_clipseg._text_cache.clear()  # the same text batch on both sides: only the image path differs
    logits = pred.decode(pred.encode(image, 352), prompts)
    tok = tiny_clipseg.processor.tokenizer(prompts, padding=True, return_tensors="pt")
    pv = pred.preprocess(image, 352).expand(len(prompts), -1, -1, -1)
    with torch.no_grad():
        full = tiny_clipseg.model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"], pixel_values=pv).logits
    torch.testing.assert_close(logits, full, rtol=1e-5, atol=1e-5)


def test_masks_are_binary_uint8_at_the_input_size(segmenter):
    image = rgb(77, 123)
    res = segmenter.run(PromptedRequest(image, "img", ["segment crack", "segment joint/tape"], threshold=0.5, size=352),
                        keep_probabilities=True)
    assert [m.prompt for m in res.masks] == ["segment crack", "segment joint/tape"]
    for m in res.masks:
        assert m.mask.shape == (77, 123) and m.mask.dtype == np.uint8
        assert set(np.unique(m.mask)) <= {0, 255}
        np.testing.assert_array_equal(m.mask == 255, m.probability >= 0.5)
        assert m.coverage == pytest.approx((m.mask == 255).mean())


class ConstantLogits:
    """A predictor whose logits are one value everywhere: logit 0 is probability sigmoid(0) = 0.5 exactly."""

    def __init__(self, value: float):
        self.value = value

    def encode(self, image, size):
        return size

    def decode(self, encoded, prompts):
        return torch.full((len(prompts), encoded, encoded), self.value)

    upsample_probabilities = staticmethod(ClipSegPredictor.upsample_probabilities)


def test_probability_exactly_at_the_threshold_is_foreground():
    # the published inference: probs = sigmoid(logits); preds = probs >= threshold
    seg = PromptedSegmenter(ConstantLogits(0.0))
    at = seg.run(PromptedRequest(rgb(30, 41), "i", ["segment crack"], threshold=0.5), keep_probabilities=True)
    assert (at.masks[0].probability == 0.5).all()
    assert (at.masks[0].mask == 255).all() and at.masks[0].coverage == 1.0
    above = seg.run(PromptedRequest(rgb(30, 41), "i", ["segment crack"], threshold=0.55))
    assert (above.masks[0].mask == 0).all()
    ens = seg.run(PromptedRequest(rgb(30, 41), "i", ["segment taping area"], threshold=0.5, ensemble=True))
    assert (ens.masks[0].mask == 255).all()  # the mean of four exact 0.5 maps is 0.5


def test_probabilities_at_the_model_size_are_the_sigmoid_of_the_logits(segmenter):
    image = rgb(70, 90, seed=6)
    pred = segmenter.predictor
    logits = pred.decode(pred.encode(image, 352), ["segment crack"])[0]
    _, maps = segmenter.probabilities(image, [["segment crack"]], 352, (352, 352))
    (_, prob, _), = list(maps)
    assert prob.shape == (352, 352)
    np.testing.assert_array_equal(prob, torch.sigmoid(logits).numpy())
    _, maps = segmenter.probabilities(image, [["segment crack"]], 352)
    assert list(maps)[0][1].shape == (70, 90)  # default: the image's own size


def test_threshold_moves_coverage_monotonically(segmenter):
    image = rgb(60, 60, seed=3)
    cov = [segmenter.run(PromptedRequest(image, "i", ["segment crack"], threshold=t)).masks[0].coverage
           for t in (0.1, 0.5, 0.9)]
    assert cov[0] >= cov[1] >= cov[2]


@pytest.mark.parametrize("size", [512, 1024])
def test_other_model_sizes(segmenter, size):
    res = segmenter.run(PromptedRequest(rgb(40, 50), "i", ["segment crack"], size=size))
    assert res.size == size and res.masks[0].mask.shape == (40, 50)


def test_ensemble_is_the_mean_probability_of_the_synonyms(segmenter):
    image = rgb(50, 70, seed=4)
    ens = segmenter.run(PromptedRequest(image, "i", ["segment taping area"], ensemble=True), keep_probabilities=True)
    singles = segmenter.run(PromptedRequest(image, "i", LABEL_PROMPTS["taping_area"]), keep_probabilities=True)
    mean = np.mean([m.probability for m in singles.masks], axis=0)
    np.testing.assert_allclose(ens.masks[0].probability, mean, atol=1e-6)


def test_bad_threshold_and_size(segmenter):
    with pytest.raises(BadInput, match="Threshold"):
        segmenter.run(PromptedRequest(rgb(), "i", ["x"], threshold=1.5))
    with pytest.raises(BadInput, match="size"):
        segmenter.run(PromptedRequest(rgb(), "i", ["x"], size=300))


def test_cleanup_removes_small_components_and_fills_holes():
    m = np.zeros((40, 40), bool)
    m[2, 2] = True  # speck
    m[10:30, 10:30] = True
    m[20, 20] = False  # hole
    out = clean_mask(m, Cleanup(close_radius=1, min_component_px=5))
    assert not out[2, 2] and out[20, 20] and out[15, 15]
    assert (clean_mask(m, Cleanup()) == m).all()


def test_write_masks_names_and_format(segmenter, tmp_path):
    res = segmenter.run(PromptedRequest(rgb(33, 44), "wall one", ["segment joint/tape", "segment joint tape", "../x"]))
    paths = write_masks(res, tmp_path)
    assert [p.name for p in paths] == ["wall_one__segment_joint_tape.png", "wall_one__segment_joint_tape-2.png",
                                       "wall_one___x.png"]
    for p in paths:
        assert p.parent == tmp_path.resolve()
        img = Image.open(p)
        assert img.mode == "L" and img.size == (44, 33)
        assert set(np.unique(np.asarray(img))) <= {0, 255}
