"""Refinements of dense predictions: PAMR on logits, DenseCRF (or an edge-aware bilateral fallback) on
probabilities. Each reports what ran; none is skipped silently."""

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
    """Pixel-adaptive mask refinement (Araslanov & Roth, 2020) as SCLIP applies it.

    image (1, 3, H, W), mask (1, K, H, W) at the same size. Affinities come from colour differences scaled
    by the local standard deviation; the mask is propagated `iters` times. Channels run in chunks."""
    nb = _neighbours(image, dilations)  # (1, 3, P, H, W)
    centre = image[:, :, None]
    std = torch.cat([nb, centre], dim=2).std(dim=2, keepdim=True)
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


def refine_logits(image: np.ndarray, logits: torch.Tensor, cfg) -> tuple[torch.Tensor, list[str]]:
    if cfg.loftup:
        raise BadInput("LoftUp needs its learned upsampler; SegLab does not implement LoftUp's network, so a "
                       "checkpoint cannot be used. Turn the LoftUp switch off.")
    if not cfg.pamr:
        return logits, []
    img = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0
    return pamr(img, logits[None], cfg.pamr_iters, cfg.pamr_dilations)[0], [f"pamr({cfg.pamr_iters} iters, dilations {list(cfg.pamr_dilations)})"]


def refine_probabilities(image: np.ndarray, probs: torch.Tensor, cfg) -> tuple[torch.Tensor, list[str]]:
    if not cfg.crf:
        return probs, []
    p = probs.numpy()
    p = p / np.maximum(p.sum(0, keepdims=True), 1e-8)
    if crf_available():
        return torch.from_numpy(dense_crf(image, p)), ["crf(pydensecrf DenseCRF2D, 5 iters)"]
    return torch.from_numpy(bilateral(image, p)), ["crf(fallback: edge-aware bilateral filter)"]
