import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.openvocab.class_names import load_class_file, parse_classes, preset_names
from core.errors import BadInput
from core.openvocab.refine import pamr
from core.openvocab.sclip import DenseConfig, SCLIPPredictor, resize_keep_ratio
from core.openvocab.attention import csa_attention, vanilla_attention


@pytest.fixture(scope="module")
def vit_b16_block():
    """The last block of a randomly initialised, real-size ViT-B/16 (open_clip, QuickGELU)."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-quickgelu")
    return model.visual.transformer.resblocks[-1]


def independent_csa(attn, y):
    """The formula written out head by head from the raw projection weights."""
    d = y.shape[-1]
    h = attn.num_heads
    hd = d // h
    wq, wk, wv = attn.in_proj_weight[:d], attn.in_proj_weight[d:2 * d], attn.in_proj_weight[2 * d:]
    bq, bk, bv = attn.in_proj_bias[:d], attn.in_proj_bias[d:2 * d], attn.in_proj_bias[2 * d:]
    outs = []
    for i in range(h):
        sl = slice(i * hd, (i + 1) * hd)
        q = y @ wq[sl].T + bq[sl]
        k = y @ wk[sl].T + bk[sl]
        v = y @ wv[sl].T + bv[sl]
        s = hd ** -0.5
        a = torch.softmax(q @ q.transpose(-1, -2) * s, -1) + torch.softmax(k @ k.transpose(-1, -2) * s, -1)
        outs.append(a @ v)
    return torch.cat(outs, -1) @ attn.out_proj.weight.T + attn.out_proj.bias


def test_csa_matches_the_formula_on_vit_b16(vit_b16_block):
    y = torch.randn(2, 197, 768)
    with torch.no_grad():
        ours = csa_attention(vit_b16_block.attn, y)
        ref = independent_csa(vit_b16_block.attn, y)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_vanilla_path_matches_multihead_attention(vit_b16_block):
    y = torch.randn(2, 197, 768)
    with torch.no_grad():
        torch.testing.assert_close(vanilla_attention(vit_b16_block.attn, y),
                                   vit_b16_block.attn(y, y, y, need_weights=False)[0], rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def predictor():
    from core.models import registry

    return SCLIPPredictor(registry().get("openclip"))


def test_slide_on_224_equals_one_forward(predictor):
    img = torch.randn(3, 224, 224)
    text = predictor.text_embeddings(["cat", "dog"])
    cfg = DenseConfig(short_side=224)
    assert predictor.windows(224, 224, 224, 112) == [(0, 0, 224, 224)]
    with torch.no_grad():
        slid = predictor.slide_logits(img, text, cfg)
        feats, _ = predictor.crop_features(img[None], cfg)
        one = F.interpolate((feats @ text.T).permute(0, 3, 1, 2), size=(224, 224), mode="bilinear",
                            align_corners=False)[0]
    torch.testing.assert_close(slid, one, rtol=1e-5, atol=1e-5)


def test_overlapping_windows_are_averaged(predictor):
    assert predictor.windows(224, 336, 224, 112) == [(0, 0, 224, 224), (0, 112, 224, 336)]
    img = torch.randn(3, 224, 336)
    text = predictor.text_embeddings(["cat"])
    cfg = DenseConfig()
    with torch.no_grad():
        slid = predictor.slide_logits(img, text, cfg)
        parts = []
        for x1 in (0, 112):
            f, _ = predictor.crop_features(img[None, :, :, x1:x1 + 224], cfg)
            parts.append(F.interpolate((f @ text.T).permute(0, 3, 1, 2), size=(224, 224), mode="bilinear",
                                       align_corners=False)[0])
    torch.testing.assert_close(slid[:, :, :112], parts[0][:, :, :112], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(slid[:, :, 112:224], (parts[0][:, :, 112:] + parts[1][:, :, :112]) / 2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(slid[:, :, 224:], parts[1][:, :, 112:], rtol=1e-5, atol=1e-5)


def test_text_embeddings_are_unit_template_means(predictor):
    e = predictor.text_embeddings(["cat", "dog", "cat"])
    assert e.shape[0] == 3 and torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.equal(e[0], e[2])


def test_predict_shapes_synonyms_and_switches(predictor):
    image = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    classes = parse_classes("sky\nperson, person in shirt, human\ncar")
    r = predictor.predict(image, classes, DenseConfig())
    working = resize_keep_ratio(image, 336).shape[:2]
    assert working == (448, 336) and r.probs.shape == (3, *working) and r.confidence.shape == working
    assert r.labels.shape == (120, 90) and r.labels.max() < 3 and r.ran == ["sclip"]
    for cfg, tag in ((DenseConfig(pamr=True), "pamr"), (DenseConfig(rcs=True), "rcs"), (DenseConfig(sfr=True), "sfr"),
                     (DenseConfig(crf=True), "crf"), (DenseConfig(method="naclip", rcs=True, sfr=True), "naclip")):
        out = predictor.predict(image, classes, cfg)
        assert out.labels.shape == (120, 90) and any(t.startswith(tag) for t in out.ran)
    thr = predictor.predict(image, classes, DenseConfig(prob_thd=0.99))
    assert (thr.labels == 0).all()  # nothing is that confident among three random-weight classes
    with pytest.raises(BadInput, match="LoftUp"):
        predictor.predict(image, classes, DenseConfig(loftup="/nowhere/loftup.pth"))
    with pytest.raises(BadInput, match="Unknown dense method"):
        predictor.predict(image, classes, DenseConfig(method="maskclip"))


def test_full_resolution_probability_on_demand_equals_upsampling_everything(predictor):
    """One class's probability at the image's size, band by band, equals the softmax of the whole upsampled map
    (the published order: upsample the logits, softmax, best synonym)."""
    image = np.random.default_rng(1).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    classes = parse_classes("sky\nperson, human\ncar")
    r = predictor.predict(image, classes, DenseConfig())
    up = torch.nn.functional.interpolate(r.full.scores[None], size=(150, 200), mode="bilinear",
                                         align_corners=False)[0]
    prob = torch.softmax(up, 0)
    expected = torch.maximum(prob[1], prob[2])
    assert torch.allclose(r.full.class_probability(1), expected, atol=1e-5)
    assert torch.allclose(r.full.class_probability(1, (40, 90)), expected[40:90], atol=1e-5)
    names_best = up.argmax(0)
    assert (torch.tensor([0, 1, 1, 2])[names_best].numpy() == r.labels).mean() > 0.9999


def test_pamr_pulls_a_noisy_map_towards_the_image_regions():
    rng = np.random.default_rng(0)
    h, w = 64, 64
    gt = np.zeros((h, w), bool)
    gt[:, 32:] = True
    image = np.where(gt[..., None], [200, 60, 60], [40, 60, 200]).astype(np.float32) / 255
    noisy = np.clip(gt.astype(np.float32) * 0.6 + 0.2 + rng.normal(0, 0.25, (h, w)), 0, 1)
    mask = torch.from_numpy(np.stack([1 - noisy, noisy]))[None].float()
    img = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    out = pamr(img, mask, iters=10, dilations=(1, 2))[0]
    err_before = np.abs(noisy - gt).mean()
    err_after = np.abs(out[1].numpy() - gt).mean()
    assert ((out[1] > out[0]).numpy() == gt).mean() > ((noisy > 0.5) == gt).mean()
    assert err_after < err_before


@pytest.mark.parametrize("text,msg", [("", "at least one class"), (" \n , \n", "at least one class"),
                                      ("cat\ndog\ncat", "listed twice"), ("x" * 300, "characters")])
def test_bad_class_lists(text, msg):
    with pytest.raises(BadInput, match=msg):
        parse_classes(text)


def test_class_list_forms():
    assert parse_classes("cat, dog").classes == ["cat", "dog"]
    two = parse_classes("person, person in shirt\ncar")
    assert two.classes == ["person", "car"] and two.name_to_class == [0, 0, 1]
    assert parse_classes("猫\nchien é").classes == ["猫", "chien é"]
    assert parse_classes("cat").n == 1
    with pytest.raises(BadInput, match="300 classes"):
        parse_classes("\n".join(f"class {i}" for i in range(300)))
    assert {n: load_class_file(n).n for n in preset_names()} == {
        "ade20k": 150, "cityscapes": 19, "coco_stuff171": 171, "context60": 60, "voc21": 21}


def test_one_class_unicode_and_image_sizes(predictor):
    one = parse_classes("猫")
    r = predictor.predict(np.zeros((20, 30, 3), np.uint8), one, DenseConfig())
    assert r.labels.shape == (20, 30) and (r.labels == 0).all()
    big = predictor.predict(np.zeros((300, 1000, 3), np.uint8), parse_classes("a\nb"), DenseConfig())
    assert big.labels.shape == (300, 1000)


def test_trimmed_text_encoding_equals_open_clip():
    import open_clip

    from core.openvocab.text import encode_text_trimmed

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-quickgelu").eval()
    tok = open_clip.get_tokenizer("ViT-B-16-quickgelu")(["a photo of a cat.", "a bad photo of the traffic light."])
    with torch.no_grad():
        torch.testing.assert_close(encode_text_trimmed(model, tok), model.encode_text(tok), rtol=1e-4, atol=1e-4)


def test_text_embeddings_are_reused_from_disk(monkeypatch, tmp_path):
    import core.openvocab.text as text
    from core.models.openclip import load_openclip
    from core.models import registry

    monkeypatch.setenv("SEGLAB_CACHE", str(tmp_path))
    location = registry().get("openclip").location
    first = SCLIPPredictor(load_openclip(location, torch.device("cpu"), torch.float32, True))
    e1 = first.text_embeddings(["zebra", "giraffe"])
    assert list((tmp_path / "text_embeddings").glob("*.pt"))

    def no_encoding(*a, **k):
        raise AssertionError("encoded again")

    monkeypatch.setattr(text, "encode_text_trimmed", no_encoding)
    second = SCLIPPredictor(load_openclip(location, torch.device("cpu"), torch.float32, True))
    torch.testing.assert_close(second.text_embeddings(["giraffe", "zebra"]), e1.flip(0))


def test_kept_features_are_the_patch_features_on_the_resized_grid(predictor):
    """One 224×224 window: the kept grid is that crop's features; wider images average overlapping crops."""
    image = np.random.default_rng(2).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    classes = parse_classes("sky\nperson, human")
    cfg = DenseConfig(short_side=224)
    r = predictor.predict(image, classes, cfg, keep_features=True)
    img = predictor.preprocess(image, cfg)
    with torch.inference_mode():
        feats, _ = predictor.crop_features(img[None], cfg)
    assert r.features.shape == (14, 14, feats.shape[-1])
    assert np.allclose(r.features, feats[0].numpy(), atol=1e-5)
    text = predictor.text_embeddings(classes.names)
    assert np.allclose(r.text[1], torch.nn.functional.normalize(text[1:].mean(0), dim=0).numpy(), atol=1e-6)
    wide = predictor.predict(np.zeros((100, 300, 3), np.uint8), classes, DenseConfig(), keep_features=True)
    assert wide.features.shape == (336 // 16, 1008 // 16, feats.shape[-1])
    assert np.allclose(np.linalg.norm(wide.features, axis=-1), 1, atol=1e-5)
