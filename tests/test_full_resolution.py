"""Labels at the image's size from working-resolution scores, by cell bounds, equal those of upsampling the whole
map with PyTorch (what the published code does), for few and many classes, with synonyms and thresholds."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import core.openvocab.full_resolution as full_resolution
from core.openvocab.full_resolution import FullResolution, TiledScores, published_labels, upsample_region


def smooth_scores(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.randn(1, n, h, w, generator=g) * 3, 3, 1, 1)[0] * 5


CASES = [(5, 21, 34, (200, 301), False), (30, 40, 37, (403, 260), True), (171, 30, 40, (300, 400), True),
         (8, 50, 60, (30, 45), False)]  # the last one shrinks: an image smaller than the working size


@pytest.fixture(autouse=True)
def bounds_path(monkeypatch):
    monkeypatch.setattr(full_resolution, "DENSE_ELEMENTS", 0)


def reference(s, owner, size):
    up = F.interpolate(s[None], size=size, mode="bilinear", align_corners=False)[0]
    prob = torch.softmax(up, 0)
    n_cls = int(owner.max()) + 1
    cls = torch.full((n_cls, *size), -1.0).scatter_reduce(0, owner[:, None, None].expand(-1, *size), prob, "amax")
    return up, cls


@pytest.mark.parametrize("n,h,w,size,synonyms", CASES)
def test_labels_and_thresholds_equal_upsampling_everything(n, h, w, size, synonyms):
    s = smooth_scores(n, h, w, seed=n)
    owner = torch.arange(n) // 2 if synonyms else torch.arange(n)
    full = FullResolution(s, owner, size)
    up, cls = reference(s, owner, size)
    assert torch.equal(full.labels(), owner[up.argmax(0)])
    for thd in (0.3, 0.6):
        agree = (full.best_probability_below(thd) == (cls.max(0).values < thd)).float().mean()
        assert agree > 0.9999
    region = upsample_region(s, size, (3, 20), (5, 30))
    assert torch.allclose(region, up[:, 3:20, 5:30], atol=1e-5)


@pytest.mark.parametrize("n,h,w,size,synonyms", CASES[:3])
@pytest.mark.parametrize("area_thd", [0.05, 0.2])
def test_published_post_processing_and_tiles(n, h, w, size, synonyms, area_thd):
    s = smooth_scores(n, h, w, seed=n + 1)
    owner = torch.arange(n) // 2 if synonyms else torch.arange(n)
    _, cls = reference(s, owner, size)
    first = cls.argmax(0)
    fg = torch.bincount(first.ravel(), minlength=cls.shape[0])[1:]
    keep = torch.cat([torch.ones(1), (fg > area_thd * fg.sum()).float()])
    kept = cls * keep[:, None, None]
    expected = kept.argmax(0)
    expected[kept.max(0).values < 0.3] = 0
    ours = published_labels(FullResolution(s, owner, size), cls.shape[0], area_thd, 0.3)
    assert (ours == expected).float().mean() > 0.9999
    tiles = TiledScores(lambda r, c: upsample_region(s, size, r, c), owner, size, tile_size=128)
    assert (published_labels(tiles, cls.shape[0], area_thd, 0.3) == expected).float().mean() > 0.9999


def test_one_class_probability_band_by_band():
    s = smooth_scores(6, 20, 30, seed=3)
    owner = torch.tensor([0, 0, 1, 2, 2, 3])
    full = FullResolution(s, owner, (100, 150))
    _, cls = reference(s, owner, (100, 150))
    assert torch.allclose(full.class_probability(2), cls[2], atol=1e-5)
    assert torch.allclose(full.class_probability(0, (10, 40)), cls[0, 10:40], atol=1e-5)
