"""Refinements of dense predictions: PAMR on logits (at the image's size, tile by tile, as SCLIP applies it),
DenseCRF (or an edge-aware bilateral fallback) on probabilities at the working resolution. Each reports what
ran; none is skipped silently."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import BadInput

OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _neighbours(x: torch.Tensor, dilations) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, P, H, W): each pixel's 8 neighbours at every dilation (edges replicated)."""
    h, w = x.shape[-2:]
    out = []
    for d in dilations:
        pad = F.pad(x, (d, d, d, d), mode="replicate")
        for dy, dx in OFFSETS:
            out.append(pad[..., d + dy * d: d + dy * d + h, d + dx * d: d + dx * d + w])
    return torch.stack(out, dim=2)


def pamr(image: torch.Tensor, mask: torch.Tensor, iters: int = 10, dilations=(8, 16), chunk: int = 16) -> torch.Tensor:
    """Pixel-adaptive mask refinement (Araslanov & Roth, 2020; visinf/1-stage-wseg models/mods/pamr.py).

    image (1, 3, H, W), mask (1, K, H, W) at the same size. Affinities come from colour differences scaled
    by the local standard deviation (over each dilation's 3×3 window, the centre once per dilation: 18 values
    for two dilations); the mask is propagated `iters` times. Channels run in chunks."""
    nb = _neighbours(image, dilations)  # (1, 3, P, H, W)
    centre = image[:, :, None]
    std = torch.cat([nb] + [centre] * len(dilations), dim=2).std(dim=2, keepdim=True)
    aff = -(nb - centre).abs() / (1e-8 + 0.1 * std)
    aff = torch.softmax(aff.mean(1, keepdim=True), dim=2)  # (1, 1, P, H, W)
    out = []
    for i in range(0, mask.shape[1], chunk):
        m = mask[:, i:i + chunk]
        for _ in range(iters):
            m = (_neighbours(m, dilations) * aff).sum(2)
        out.append(m)
    return torch.cat(out, dim=1)


def dense_crf(image: np.ndarray, probs: np.ndarray, iters: int = 5) -> np.ndarray:
    import pydensecrf.densecrf as dcrf

    k, h, w = probs.shape
    d = dcrf.DenseCRF2D(w, h, k)
    d.setUnaryEnergy(np.ascontiguousarray(-np.log(np.clip(probs, 1e-8, 1.0)).reshape(k, -1), dtype=np.float32))
    d.addPairwiseGaussian(sxy=3, compat=3)
    d.addPairwiseBilateral(sxy=80, srgb=13, rgbim=np.ascontiguousarray(image), compat=10)
    return np.asarray(d.inference(iters), dtype=np.float32).reshape(k, h, w)


def bilateral(image: np.ndarray, probs: np.ndarray, sigma_color: float = 0.1, sigma_spatial: float = 3) -> np.ndarray:
    from skimage.restoration import denoise_bilateral

    guide = image.astype(np.float32).mean(-1) / 255.0
    out = np.stack([denoise_bilateral(p * 0.5 + guide * 0.5, sigma_color=sigma_color, sigma_spatial=sigma_spatial)
                    - guide * 0.5 for p in probs]) / 0.5
    out = np.clip(out, 0, None)
    return out / np.maximum(out.sum(0, keepdims=True), 1e-8)


def crf_available() -> bool:
    try:
        import pydensecrf.densecrf  # noqa: F401
        return True
    except ImportError:
        return False


PAMR_BUDGET = 64_000_000  # floats in PAMR's neighbour stack of one tile (256 MB)
PAMR_TILE = 512  # output pixels a side of one PAMR tile (each computed with its margin)


def pamr_tiles(guide: torch.Tensor, scores: torch.Tensor, size: tuple[int, int], iters: int, dilations):
    """A tile function for TiledScores: PAMR on the bilinear upsampling of scores (names, h, w) to `size`, guided
    by guide (3, h', w') upsampled the same way, computed on the tile plus a margin of iters × max(dilation)
    pixels, so every tile equals the same window of PAMR over the whole image."""
    from core.openvocab.full_resolution import upsample_region

    halo = iters * max(dilations)

    def tile(rows, cols):
        r0, r1 = max(rows[0] - halo, 0), min(rows[1] + halo, size[0])
        c0, c1 = max(cols[0] - halo, 0), min(cols[1] + halo, size[1])
        g = upsample_region(guide, size, (r0, r1), (c0, c1))[None]
        m = upsample_region(scores, size, (r0, r1), (c0, c1))[None]
        chunk = max(1, PAMR_BUDGET // (8 * len(dilations) * (r1 - r0) * (c1 - c0)))
        out = pamr(g, m, iters, dilations, chunk)[0]
        return out[:, rows[0] - r0: rows[1] - r0, cols[0] - c0: cols[1] - c0]

    return tile


def check_loftup(cfg) -> None:
    if cfg.loftup:
        raise BadInput("LoftUp needs its learned upsampler; SegLab does not implement LoftUp's network, so a "
                       "checkpoint cannot be used. Turn the LoftUp switch off.")


def crf_scores(image_small: np.ndarray, probs: torch.Tensor) -> tuple[torch.Tensor, str]:
    """DenseCRF on class probabilities (classes, h, w) at the working resolution, guided by the resized image
    (h, w, 3) uint8; returns log-probabilities, which are upsampled like any scores."""
    p = probs.numpy()
    p = p / np.maximum(p.sum(0, keepdims=True), 1e-8)
    if crf_available():
        out, ran = dense_crf(image_small, p), "crf(pydensecrf DenseCRF2D, 5 iters, working resolution)"
    else:
        out, ran = bilateral(image_small, p), "crf(fallback: edge-aware bilateral filter, working resolution)"
    return torch.from_numpy(np.log(np.clip(out, 1e-8, None))).float(), ran
