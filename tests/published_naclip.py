"""Independent reference implementation of NACLIP's published dense features.

NACLIP: "Pay Attention to Your Neighbours: Training-Free Open-Vocabulary
Semantic Segmentation" (Hajimiri, Ben Ayed, Dolz; WACV 2025), official code
in the GitHub repository sinahmr/NACLIP.

This module is written from what the official code computes, in plain torch,
for parity tests.  It imports nothing from SegLab.  Every part names the
official file and function it mirrors.  Line numbers are those of the latest
stored revision of the official repository (naclip.py and clip/model.py at
commit defb7c94; configs/eval.py at 8865082 / cbb720d); see
/tmp/specs/naclip.md for the full list of published details.

Official model: OpenAI CLIP ViT-B/16 (``clip.load('ViT-B/16')``), i.e. the
open_clip architecture ``ViT-B-16-quickgelu``.  This module takes an
open_clip ``CLIP`` model and reads only its weights: model.visual.conv1,
class_embedding, positional_embedding, ln_pre, transformer.resblocks[*]
(.ln_1, .attn.in_proj_weight/in_proj_bias/out_proj, .ln_2, .mlp), ln_post,
proj.  open_clip's own forward (and its batch-first/sequence-first layout)
is never called for the vision tower, so the layout it uses does not matter.

CPU, float32.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "OPENAI_IMAGENET_TEMPLATES",
    "naclip_gaussian_window",
    "naclip_features",
    "naclip_settings",
    "naclip_text_embeddings",
    "naclip_pamr",
    "naclip_rescale_image",
    "naclip_predict",
]


# ---------------------------------------------------------------------------
# Text templates.  naclip.py L13: ``from prompts.imagenet_template import
# openai_imagenet_template``; NACLIP.__init__ (L32-41) uses every template.
# NACLIP's prompts/ folder is not in the stored index; its README says the
# code follows SCLIP, whose prompts/imagenet_template.py (wangf3014/SCLIP)
# holds these 80 templates in this order ("{}" is the class name).
# ---------------------------------------------------------------------------
OPENAI_IMAGENET_TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)

_ATTN_STRATEGIES = ("naclip", "nonly", "kk", "csa", "vanilla")
_ARCHS = ("reduced", "vanilla")


# ---------------------------------------------------------------------------
# 1. The neighbourhood addition (Gaussian window).
# ---------------------------------------------------------------------------
def _official_window(dim1: int, dim2: int, std: float) -> torch.Tensor:
    """The 2-D window itself, built exactly as clip/model.py
    VisionTransformer.gaussian_window (L153-165) builds it.

    Per axis: ``linspace(start*c, (start+dim-1)*c, dim)`` with
    ``start = -(dim-1)/2`` and ``c = 1/(std*sqrt(2))``; the window is
    ``exp(-(a^2 + b^2))`` over the 'ij' meshgrid.  So window[a, b] =
    exp(-((a-ca)^2 + (b-cb)^2) / (2 std^2)): an UNNORMALISED Gaussian whose
    peak (centre) is exp(0) = 1, not divided by 2*pi*std^2, not multiplied
    by any scale.  Built in float32 (dtype=torch.float in the official call).
    """
    constant = 1.0 / (std * math.sqrt(2))
    axes = []
    for dim in (dim1, dim2):
        start = -(dim - 1) / 2.0
        axes.append(
            torch.linspace(start * constant, (start + (dim - 1)) * constant, steps=dim, dtype=torch.float32)
        )
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return torch.exp(-(grid**2).sum(0))


def naclip_gaussian_window(gh: int, gw: int, std: float = 5.0) -> torch.Tensor:
    """NACLIP's neighbourhood addition ("omega") for a gh x gw patch grid,
    over patch tokens only: shape (gh*gw, gh*gw), float32.

    Mirrors clip/model.py VisionTransformer.custom_attn (L189-195): the window
    has size (2*gh-1, 2*gw-1) -- one odd side per grid axis, so non-square
    grids get a non-square window -- from gaussian_window(), then
    get_attention_addition() (L167-176) convolves (F.conv2d, padding='same')
    the window with a one-hot map of each query patch (i, j).  That conv
    (cross-correlation, padding gh-1 / gw-1) gives for query patch (i, j),
    key patch (k, l), patches flattened row-major (index = row*gw + col, as
    conv1's output is flattened):

        omega[(i,j),(k,l)] = window[i-k+gh-1, j-l+gw-1]
                           = exp(-((i-k)^2 + (j-l)^2) / (2*std^2))

    i.e. an unnormalised Gaussian of the patch-grid distance, 1 on the
    diagonal, with no truncation (the window covers every offset).  It is
    added to the (scaled) attention logits as is -- no further scaling for
    attn_strategy 'naclip'.  The official matrix additionally has a zero
    row and a zero column for the class token (adjust_for_cls=True,
    L173-175); naclip_features adds those.  Here the value is read from the
    window by index (exact) instead of through a convolution.
    """
    window = _official_window(2 * gh - 1, 2 * gw - 1, float(std))
    rows = torch.arange(gh)
    cols = torch.arange(gw)
    qi = rows.repeat_interleave(gw)  # query row for flat index row*gw+col
    qj = cols.repeat(gh)
    a = qi[:, None] - qi[None, :] + (gh - 1)  # [query, key]
    b = qj[:, None] - qj[None, :] + (gw - 1)
    return window[a, b].contiguous()


def _omega_with_cls(gh: int, gw: int, std: float) -> torch.Tensor:
    """get_attention_addition(adjust_for_cls=True), L173-175: the class token
    (index 0) gets a zero row and a zero column -> shape (N+1, N+1)."""
    n = gh * gw
    out = torch.zeros(n + 1, n + 1, dtype=torch.float32)
    out[1:, 1:] = naclip_gaussian_window(gh, gw, std)
    return out


# ---------------------------------------------------------------------------
# 2. The image encoder.
# ---------------------------------------------------------------------------
def _patch_size(visual) -> int:
    ks = visual.conv1.kernel_size
    return int(ks[0] if isinstance(ks, (tuple, list)) else ks)


def _positional_embedding(pos: torch.Tensor, n_tokens: int, H: int, W: int, patch: int) -> torch.Tensor:
    """clip/model.py VisionTransformer.forward L104-107 and
    interpolate_pos_encoding L134-151.

    * The learned table is used as is whenever the token count equals the
      table's length (197 for ViT-B/16), i.e. for every 224x224 crop -- and,
      as the official check compares only token counts, also for any other
      grid with 196 patches (e.g. 112x448: the 14x14 table is then laid
      row-major over the 7x28 grid without resampling).
    * Otherwise the 14x14 patch part is resampled with
      F.interpolate(mode='bicubic', align_corners=False,
      recompute_scale_factor=False) by the scale factors
      ((H//p + 0.1)/14, (W//p + 0.1)/14) -- the DINO "+0.1" trick; the output
      size is floor(14 * factor) = (H//p, W//p) (asserted), and the factor
      itself (not in/out size) drives the sampling grid.  The class-token
      row is kept unchanged and put first.
    Note the official names the first spatial dim ``w``: it is the height.
    """
    N = pos.shape[0] - 1
    if n_tokens == pos.shape[0]:
        return pos.unsqueeze(0)
    side = int(math.sqrt(N))
    dim = pos.shape[-1]
    h0 = H // patch + 0.1
    w0 = W // patch + 0.1
    grid = pos[1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid,
        mode="bicubic",
        scale_factor=(h0 / math.sqrt(N), w0 / math.sqrt(N)),
        align_corners=False,
        recompute_scale_factor=False,
    )
    assert int(h0) == grid.shape[-2] and int(w0) == grid.shape[-1], grid.shape
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat((pos[[0]].unsqueeze(0), grid), dim=1)


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    B, L, D = t.shape
    return t.reshape(B, L, heads, D // heads).transpose(1, 2)  # (B, h, L, hd)


def _merge_heads(t: torch.Tensor) -> torch.Tensor:
    B, h, L, hd = t.shape
    return t.transpose(1, 2).reshape(B, L, h * hd)


def _num_heads(attn) -> int:
    return int(attn.num_heads)


def _standard_attention(attn, y: torch.Tensor) -> torch.Tensor:
    """nn.MultiheadAttention(y, y, y) without mask, as the untouched blocks
    run it (clip/model.py ResidualAttentionBlock.attention, L42-44):
    softmax((q / sqrt(hd)) k^T) v, then out_proj.  y: (B, L, D)."""
    h = _num_heads(attn)
    q, k, v = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (_split_heads(t, h) for t in (q, k, v))
    scale = q.shape[-1] ** -0.5
    w = torch.softmax((q * scale) @ k.transpose(-2, -1), dim=-1)
    return attn.out_proj(_merge_heads(w @ v))


def _vanilla_block(blk, x: torch.Tensor) -> torch.Tensor:
    """clip/model.py ResidualAttentionBlock.forward (L46-49), unchanged:
    x + attn(ln_1(x)); then x + mlp(ln_2(x)).  open_clip's optional
    LayerScale (ls_1/ls_2, Identity for ViT-B-16) is honoured."""
    ls_1 = getattr(blk, "ls_1", None) or (lambda t: t)
    ls_2 = getattr(blk, "ls_2", None) or (lambda t: t)
    x = x + ls_1(_standard_attention(blk.attn, blk.ln_1(x)))
    x = x + ls_2(blk.mlp(blk.ln_2(x)))
    return x


def _custom_attention(
    attn, y: torch.Tensor, grid: tuple[int, int], attn_strategy: str, gaussian_std: float
) -> torch.Tensor:
    """clip/model.py VisionTransformer.custom_attn (L178-229), last block only.

    q, k, v = in_proj(y) split in three (L184-187), per head, scale =
    head_dim**-0.5 (L182).
      'naclip'  (L197-199, 206-207): softmax(k k^T * scale + omega), omega =
                the Gaussian addition with zero class-token row/column.
                Query-key term replaced by key-key; omega NOT scaled.
      'nonly'   (L200-202): softmax(0 + omega * s), s = scale *
                mean(|q_p| * |k_P|) over all heads/images/pairs (a scalar).
      'kk'      (L216-218): softmax(k k^T * scale), no omega.
      'csa'     (L209-212): softmax(q q^T s) + softmax(k k^T s) (SCLIP).
      'vanilla' (L213-215): softmax(q k^T s).
    Then weights @ v, heads merged, out_proj (L225-227).  y: (B, L, D).
    """
    h = _num_heads(attn)
    q, k, v = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (_split_heads(t, h) for t in (q, k, v))
    scale = q.shape[-1] ** -0.5
    if attn_strategy in ("naclip", "nonly"):
        omega = _omega_with_cls(grid[0], grid[1], gaussian_std).to(y.dtype)
        if attn_strategy == "naclip":
            logits = (k @ k.transpose(-2, -1)) * scale + omega
        else:
            # official: zeros((num_heads, L, L)) -- only shape-valid for one
            # image; here broadcast over the batch (same values per image).
            s = scale * (q.norm(dim=-1)[..., :, None] * k.norm(dim=-1)[..., None, :]).mean().item()
            logits = torch.zeros(q.shape[0], h, q.shape[2], q.shape[2], dtype=y.dtype) + omega * s
        weights = torch.softmax(logits, dim=-1)
    elif attn_strategy == "csa":
        weights = torch.softmax((q @ q.transpose(-2, -1)) * scale, dim=-1) + torch.softmax(
            (k @ k.transpose(-2, -1)) * scale, dim=-1
        )
    elif attn_strategy == "vanilla":
        weights = torch.softmax((q * scale) @ k.transpose(-2, -1), dim=-1)
    elif attn_strategy == "kk":
        weights = torch.softmax((k * scale) @ k.transpose(-2, -1), dim=-1)
    else:
        raise ValueError(f"attn_strategy {attn_strategy!r} not in {_ATTN_STRATEGIES}")
    return attn.out_proj(_merge_heads(weights @ v))


def _encode_tokens(
    model, crops: torch.Tensor, attn_strategy: str, arch: str, gaussian_std: float
) -> torch.Tensor:
    """clip/model.py VisionTransformer.forward(return_all=True) (L94-126):
    returns ln_post(x) @ proj for ALL tokens (class token first), (B, 1+N, E),
    not normalised."""
    # set_params asserts (L87-92)
    if arch not in _ARCHS:
        raise ValueError(f"arch {arch!r} not in {_ARCHS}")
    if attn_strategy not in _ATTN_STRATEGIES:
        raise ValueError(f"attn_strategy {attn_strategy!r} not in {_ATTN_STRATEGIES}")
    if attn_strategy == "csa" and arch != "vanilla":
        raise ValueError("NACLIP allows attn_strategy 'csa' only with arch 'vanilla'")
    if attn_strategy in ("naclip", "nonly") and not gaussian_std > 0:
        raise ValueError("gaussian_std must be > 0 for 'naclip'/'nonly'")

    visual = model.visual
    p = _patch_size(visual)
    B, _, H, W = crops.shape
    grid = (H // p, W // p)  # n_patches, L95-96

    x = visual.conv1(crops.to(visual.conv1.weight.dtype))  # (B, D, gh, gw)  L98
    x = x.reshape(B, x.shape[1], -1).permute(0, 2, 1)  # row-major patches  L99-100
    cls = visual.class_embedding.to(x.dtype) + torch.zeros(B, 1, x.shape[-1], dtype=x.dtype)
    x = torch.cat([cls, x], dim=1)  # class token first  L102
    x = x + _positional_embedding(visual.positional_embedding, x.shape[1], H, W, p).to(x.dtype)
    x = visual.ln_pre(x)  # L109

    blocks = list(visual.transformer.resblocks)
    for blk in blocks[:-1]:  # every block but the last: unchanged  L112-113
        x = _vanilla_block(blk, x)
    last = blocks[-1]
    if arch == "vanilla":  # L115-117: residual + FFN kept
        x = x + _custom_attention(last.attn, last.ln_1(x), grid, attn_strategy, gaussian_std)
        x = x + last.mlp(last.ln_2(x))
    else:  # 'reduced' L118-119: no residual, no FFN (ln_2/mlp unused)
        x = _custom_attention(last.attn, last.ln_1(x), grid, attn_strategy, gaussian_std)
    return visual.ln_post(x) @ visual.proj  # L125-126, ln_post on every token


@torch.no_grad()
def naclip_features(
    model,
    crops: torch.Tensor,
    attn_strategy: str = "naclip",
    arch: str = "reduced",
    gaussian_std: float = 5.0,
    normalize: bool = True,
) -> torch.Tensor:
    """NACLIP's dense patch features for crops (B, 3, H, W), already
    normalised with CLIP's mean/std, as (B, H//16, W//16, E).

    Mirrors clip/model.py VisionTransformer.forward(return_all=True) plus
    naclip.py NACLIP.forward_feature L58-60: the class token is dropped
    AFTER ln_post/proj (it takes part in every block, including NACLIP's
    last-block attention, where its omega row/column is zero), then each
    patch feature is L2-normalised (``image_features /= norm``).  The
    encoder output itself is not normalised: pass normalize=False for it.
    Patch order is row-major (forward_feature L65-67 reshapes to
    (gh, gw) with gh = H//p first).
    """
    tokens = _encode_tokens(model, crops, attn_strategy, arch, gaussian_std)
    feats = tokens[:, 1:]
    if normalize:
        feats = feats / feats.norm(dim=-1, keepdim=True)
    p = _patch_size(model.visual)
    B, _, H, W = crops.shape
    return feats.reshape(B, H // p, W // p, feats.shape[-1])


# ---------------------------------------------------------------------------
# 3. Published inference settings.
# ---------------------------------------------------------------------------
def naclip_settings() -> dict:
    """NACLIP's published inference settings, as data.

    Source: sinahmr/NACLIP naclip.py NACLIP.__init__ defaults (L20-22, L24),
    configs/base_config.py, configs/cfg_*.py (model dict and the test
    pipeline's Resize), eval.py (--pamr on -> 10 steps), test_all.sh and the
    README ("bash test_all.sh reduced naclip 5 on" reproduces the table).
    """
    short_side = {
        # configs/cfg_<name>.py: dict(type='Resize', scale=(2048, S), keep_ratio=True)
        "voc21": 336,
        "context60": 336,
        "coco_object": 336,
        "voc20": 336,
        "city_scapes": 560,
        "context59": 336,
        "ade20k": 336,
        "coco_stuff164k": 448,
    }
    prob_thd = {name: 0.0 for name in short_side}
    prob_thd.update({"voc21": 0.1, "context60": 0.1, "coco_object": 0.1})
    return {
        "source": "sinahmr/NACLIP naclip.py (defb7c94), configs/*.py, eval.py, test_all.sh, README.md",
        "clip_path": "ViT-B/16",  # base_config.py: OpenAI CLIP ViT-B/16 (open_clip 'ViT-B-16-quickgelu')
        "arch": "reduced",
        "attn_strategy": "naclip",
        "gaussian_std": 5.0,
        "patch_size": 16,
        "slide_crop": 224,
        "slide_stride": 112,
        "long_side": 2048,
        "short_side": short_side,
        "resize_rule": "mmcv imrescale, keep_ratio, bilinear (cv2), to fit (2048, short_side)",
        "mean": (122.771, 116.746, 104.094),  # RGB, 0-255 scale (SegDataPreProcessor)
        "std": (68.501, 66.632, 70.323),
        "logit_scale": 40.0,  # no config overrides it
        "prob_thd": prob_thd,
        "prob_thd_default": 0.0,
        # area_thd existed only in the first release (cbb720d: voc21 area_thd=0.1,
        # applied only with PAMR off); removed since (8865082 on).
        "area_thd": None,
        "pamr_steps": 10,  # NACLIP default and eval.py '--pamr on'; '--pamr off' -> 0
        "pamr_dilations": (8, 16),
        "pamr_default_on": True,
        "pamr_visualization": {"steps": 50, "dilations": (1, 2, 4, 8, 12, 24)},  # eval.py, --show-dir only
        "align_corners": False,
        "templates": OPENAI_IMAGENET_TEMPLATES,
        "text_embedding": "per name: normalise each template embedding, mean, normalise",
        "class_file_format": "one class per line, synonyms separated by ', '; class = max prob over its names",
        "background": "no special handling: class 0 of the class file; pixels with max prob < prob_thd -> 0",
        "readme_miou": {
            "voc21": 64.07, "context60": 34.99, "coco_object": 36.19, "voc20": 83.03,
            "city_scapes": 38.27, "context59": 38.35, "ade20k": 19.05, "coco_stuff164k": 25.69,
        },
    }


# ---------------------------------------------------------------------------
# Text embeddings (naclip.py NACLIP.__init__ L32-41), for convenience.
# ---------------------------------------------------------------------------
@torch.no_grad()
def naclip_text_embeddings(model, tokenizer, names: Sequence[str]) -> torch.Tensor:
    """(len(names), E): for each name, encode the 80 templates, L2-normalise
    each, average, L2-normalise the mean."""
    out = []
    for name in names:
        tokens = tokenizer([t.format(name) for t in OPENAI_IMAGENET_TEMPLATES])
        f = model.encode_text(tokens).float()
        f = f / f.norm(dim=-1, keepdim=True)
        f = f.mean(dim=0)
        out.append(f / f.norm())
    return torch.stack(out)


# ---------------------------------------------------------------------------
# 4. Postprocessing (PAMR + NACLIP's segmentor).
# ---------------------------------------------------------------------------
# pamr.py LocalAffinity._init_aff: the 8 neighbours of a 3x3 kernel, in this
# order (row, col); LocalStDev uses all 9 positions (centre included).
_NEIGHBOURS_8 = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2))
_POSITIONS_9 = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2))


def _shifted(x: torch.Tensor, dilations: Sequence[int], positions) -> torch.Tensor:
    """(B, K, H, W) -> (B, K, P, H, W): x at offset ((a-1)d, (b-1)d), with
    'replicate' padding of d (pamr.py LocalAffinity.forward: F.pad(...,
    [d]*4, mode='replicate') then a dilated 3x3 conv with one-hot kernels)."""
    B, K, H, W = x.shape
    flat = x.reshape(B * K, 1, H, W)
    outs = []
    for d in dilations:
        padded = F.pad(flat, [d] * 4, mode="replicate")
        for a, b in positions:
            outs.append(padded[:, :, a * d : a * d + H, b * d : b * d + W])
    return torch.cat(outs, dim=1).reshape(B, K, -1, H, W)


def naclip_pamr(image: torch.Tensor, mask: torch.Tensor, steps: int = 10, dilations=(8, 16)) -> torch.Tensor:
    """pamr.py PAMR.forward (from visinf/1-stage-wseg).

    image (B, 3, H, W) -- NACLIP passes the mean/std-normalised image --,
    mask (B, C, H', W') logits.  The mask is resized to the image size
    (bilinear, align_corners=True); affinities: |x_centre - x_neighbour| over
    8 neighbours per dilation, divided by (1e-8 + 0.1 * std), std being the
    unbiased std over the 9*len(dilations) local values (centre counted once
    per dilation), averaged over image channels, softmax over the
    8*len(dilations) neighbours; then ``steps`` times
    mask <- sum_n aff_n * mask_shifted_n.
    """
    mask = F.interpolate(mask, size=image.shape[-2:], mode="bilinear", align_corners=True)
    centre = image.unsqueeze(2)
    x_std = _shifted(image, dilations, _POSITIONS_9).std(2, keepdim=True)
    aff = -(centre - _shifted(image, dilations, _NEIGHBOURS_8)).abs() / (1e-8 + 0.1 * x_std)
    aff = torch.softmax(aff.mean(1, keepdim=True), dim=2)
    for _ in range(steps):
        mask = (_shifted(mask, dilations, _NEIGHBOURS_8) * aff).sum(2)
    return mask


def naclip_rescale_image(image_rgb_uint8: np.ndarray, short_side: int = 336, long_side: int = 2048) -> np.ndarray:
    """The configs' test pipeline ``dict(type='Resize', scale=(2048, S),
    keep_ratio=True)`` = mmcv.imrescale: factor = min(long/max(h,w),
    short/min(h,w)) (up- or down-scaling), new size int(w*f+0.5) x
    int(h*f+0.5), cv2 INTER_LINEAR on uint8.  cv2 is used when installed;
    otherwise a half-pixel bilinear (no antialias) rounded to uint8, which
    matches cv2 to about one grey level."""
    img = np.asarray(image_rgb_uint8)
    h, w = img.shape[:2]
    f = min(long_side / max(h, w), short_side / min(h, w))
    new_w, new_h = int(w * float(f) + 0.5), int(h * float(f) + 0.5)
    if (new_h, new_w) == (h, w):
        return img.copy()
    try:
        import cv2  # type: ignore

        return cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    except ImportError:
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
        t = F.interpolate(t, size=(new_h, new_w), mode="bilinear", align_corners=False)
        return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _slide_logits(model, img, text, crop, stride, attn_strategy, arch, gaussian_std):
    """naclip.py NACLIP.forward_slide (L71-108) with forward_feature (L54-69):
    cosine logits of each crop, bilinearly upsampled (align_corners=False)
    from the patch grid to the crop size, summed into place and divided by
    the per-pixel count."""
    B, _, H, W = img.shape
    C = text.shape[0]
    preds = img.new_zeros((B, C, H, W))
    count = img.new_zeros((B, 1, H, W))
    h_grids = max(H - crop + stride - 1, 0) // stride + 1
    w_grids = max(W - crop + stride - 1, 0) // stride + 1
    for hi in range(h_grids):
        for wi in range(w_grids):
            y1, x1 = hi * stride, wi * stride
            y2, x2 = min(y1 + crop, H), min(x1 + crop, W)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            preds[:, :, y1:y2, x1:x2] += _feature_logits(
                model, img[:, :, y1:y2, x1:x2], text, attn_strategy, arch, gaussian_std
            )
            count[:, :, y1:y2, x1:x2] += 1
    assert (count == 0).sum() == 0
    return preds / count


def _feature_logits(model, img, text, attn_strategy, arch, gaussian_std):
    """naclip.py NACLIP.forward_feature (L54-69)."""
    feats = naclip_features(model, img, attn_strategy, arch, gaussian_std, normalize=True)
    logits = (feats @ text.T).permute(0, 3, 1, 2)  # (B, C, gh, gw)
    return F.interpolate(logits, size=img.shape[-2:], mode="bilinear", align_corners=False)


@torch.no_grad()
def naclip_predict(
    model,
    image_rgb_uint8: np.ndarray,
    text: torch.Tensor,
    query_idx: Sequence[int],
    *,
    short_side: int = 336,
    long_side: int = 2048,
    resize: bool = True,
    slide_crop: int = 224,
    slide_stride: int = 112,
    logit_scale: float = 40.0,
    prob_thd: float = 0.0,
    pamr_steps: int = 10,
    pamr_dilations: Sequence[int] = (8, 16),
    attn_strategy: str = "naclip",
    arch: str = "reduced",
    gaussian_std: float = 5.0,
    return_probs: bool = False,
    dataset: str | None = None,
    **_ignored,
):
    """NACLIP's whole inference for one RGB uint8 image (H, W, 3) -> class
    labels (H, W) int64 at the ORIGINAL image size.

    text: (names, E) unit-norm name embeddings (naclip_text_embeddings);
    query_idx: class index of each name (naclip.py get_cls_idx: line i of
    the class file, synonyms split on ', ').
    ``**naclip_settings()`` may be passed with ``dataset=`` naming the
    benchmark: per-dataset dicts (short_side, prob_thd) are then looked up;
    keys this function does not use are ignored.  The mean/std are NACLIP's
    fixed SegDataPreProcessor values.

    Pipeline (latest naclip.py, defb7c94):
      1. Resize (config test pipeline; mmcv imrescale to (2048, short_side)).
      2. SegDataPreProcessor: RGB, (x - mean) / std with the 0-255 CLIP
         mean/std (L24).  No padding.
      3. slide_crop > 0: forward_slide (224 crops, stride 112); else one
         forward_feature of the whole image (L121-124).
      4. Logits bilinearly resized to the original size (ori_shape),
         align_corners=False (L126-127).
      5. PAMR (10 steps, dilations 8, 16) on the raw cosine logits, guided
         by the normalised resized image bilinearly resized to the original
         size (L129-132).
      6. postprocess_result (L139-153): softmax(logits * 40) over names;
         names of one class merged by max; argmax; pixels whose best class
         probability < prob_thd -> class 0; the probabilities are then
         renormalised to sum 1 (affects only the returned probs).
    Differs from SCLIP's segmentor (wangf3014/SCLIP clip_segmentor.py):
    PAMR on by default (SCLIP: off) and applied after upsampling in
    predict; logit_scale 40 everywhere (SCLIP: 65 on VOC21 and others); no
    area_thd; final probability renormalisation.
    """
    if isinstance(short_side, dict) or isinstance(prob_thd, dict):
        if dataset is None:
            raise ValueError("per-dataset settings given: pass dataset=")
        short_side = short_side[dataset] if isinstance(short_side, dict) else short_side
        prob_thd = prob_thd[dataset] if isinstance(prob_thd, dict) else prob_thd
    settings_mean = torch.tensor((122.771, 116.746, 104.094)).view(1, 3, 1, 1)
    settings_std = torch.tensor((68.501, 66.632, 70.323)).view(1, 3, 1, 1)
    image = np.asarray(image_rgb_uint8)
    ori_h, ori_w = image.shape[:2]
    resized = naclip_rescale_image(image, short_side, long_side) if resize else image
    inputs = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1)[None].float()
    inputs = (inputs - settings_mean) / settings_std

    text = text.float()
    if slide_crop > 0:
        logits = _slide_logits(model, inputs, text, slide_crop, slide_stride, attn_strategy, arch, gaussian_std)
    else:
        logits = _feature_logits(model, inputs, text, attn_strategy, arch, gaussian_std)
    logits = F.interpolate(logits, size=(ori_h, ori_w), mode="bilinear", align_corners=False)

    if pamr_steps > 0:
        guide = F.interpolate(inputs, size=(ori_h, ori_w), mode="bilinear", align_corners=False)
        logits = naclip_pamr(guide, logits, pamr_steps, tuple(pamr_dilations))

    probs = torch.softmax(logits[0] * logit_scale, dim=0)  # (names, H, W)
    qidx = torch.as_tensor(list(query_idx), dtype=torch.int64)
    num_cls, num_queries = int(qidx.max()) + 1, len(qidx)
    if num_cls != num_queries:
        one_hot = F.one_hot(qidx, num_cls).T.view(num_cls, num_queries, 1, 1).to(probs.dtype)
        probs = (probs.unsqueeze(0) * one_hot).max(1)[0]
    labels = probs.argmax(0)
    labels[probs.max(0)[0] < prob_thd] = 0
    if return_probs:
        return labels, probs / probs.sum(0, keepdim=True)
    return labels


# ---------------------------------------------------------------------------
if __name__ == "__main__":
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-quickgelu").eval()

    # the window equals the official conv2d construction (get_attention_addition)
    for gh, gw in ((14, 14), (14, 21), (3, 5)):
        win = _official_window(2 * gh - 1, 2 * gw - 1, 5.0)
        m = torch.einsum("ij,kl->ijkl", torch.eye(gh), torch.eye(gw)).permute(0, 3, 1, 2).contiguous()
        ref = F.conv2d(m.view(-1, gh, gw).unsqueeze(1), win[None, None], padding="same").view(gh * gw, gh * gw)
        mine = naclip_gaussian_window(gh, gw, 5.0)
        print(f"window {gh}x{gw}: {tuple(mine.shape)} max|diff| vs conv = {(mine - ref).abs().max().item():.2e}")

    a = naclip_features(model, torch.randn(2, 3, 224, 224))
    print("naclip_features (2,3,224,224) ->", tuple(a.shape), "norms", a.norm(dim=-1).mean().item())
    b = naclip_features(model, torch.randn(1, 3, 224, 336))
    print("naclip_features (1,3,224,336) ->", tuple(b.shape))

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(200, 300, 3), dtype=np.uint8)
    text = F.normalize(torch.randn(4, a.shape[-1]), dim=-1)
    s = naclip_settings()
    labels = naclip_predict(model, img, text, [0, 0, 1, 2], dataset="voc21", **s)
    print("naclip_predict (200,300,3) ->", tuple(labels.shape), "classes", labels.unique().tolist())
    print("settings:", {k: s[k] for k in ("slide_crop", "slide_stride", "logit_scale", "pamr_steps", "short_side")})
