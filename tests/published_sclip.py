"""Independent reference implementation of SCLIP's published inference path.

Written for a parity test, from the official sources only (no SegLab code):

* wangf3014/SCLIP  clip_segmentor.py   (commit d84d4ab4)  CLIPForSegmentation,
                                        get_cls_idx
* wangf3014/SCLIP  clip/model.py       (commit 961a11a5)  VisionTransformer.forward,
                                        interpolate_pos_encoding, custom_attn
* wangf3014/SCLIP  pamr.py             (copy of visinf/1-stage-wseg
                                        models/mods/pamr.py)
* wangf3014/SCLIP  configs/cfg_*.py    test pipeline (Resize scale, keep_ratio)
                                        and per-dataset logit_scale / prob_thd /
                                        area_thd
* open-mmlab/mmcv  mmcv/transforms/processing.py  Resize._resize_img
                   mmcv/image/geometric.py        imrescale, rescale_size,
                                                  _scale_size, imresize
* open-mmlab/mmsegmentation mmseg/models/data_preprocessor.py
                                        SegDataPreProcessor.forward

Everything is plain torch / numpy / cv2, CPU, float32.  (The published runs
use clip.load(..., device='cuda') which converts the CLIP weights to fp16;
this reference computes in float32.)

The model argument is an open_clip ``CLIP`` (e.g.
``open_clip.create_model("ViT-B-16-quickgelu")``) whose ``visual`` tower has
the same parameters as OpenAI CLIP's VisionTransformer: conv1,
class_embedding, positional_embedding, ln_pre, transformer.resblocks[i].{ln_1,
attn (nn.MultiheadAttention), ln_2, mlp}, ln_post, proj.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Constants from the published code
# ---------------------------------------------------------------------------

# clip_segmentor.py, CLIPForSegmentation.__init__:
#   SegDataPreProcessor(mean=[122.771, 116.746, 104.094],
#                       std=[68.501, 66.632, 70.323], rgb_to_bgr=True)
# The values are CLIP's RGB mean/std * 255, i.e. they are in R, G, B order.
SCLIP_MEAN = (122.771, 116.746, 104.094)
SCLIP_STD = (68.501, 66.632, 70.323)

# configs/cfg_*.py: dict(type='Resize', scale=(2048, 336), keep_ratio=True)
# (cityscapes: (2048, 560); coco_stuff164k: (2048, 448)).
SCLIP_DEFAULT_SCALE = (2048, 336)

# Per-dataset model settings from configs/cfg_*.py (defaults from
# CLIPForSegmentation.__init__: logit_scale=40, prob_thd=0.0, area_thd=None,
# slide_stride=112, slide_crop=224, pamr_steps=0, pamr_stride=(8, 16)).
SCLIP_DATASET_SETTINGS = {
    "voc21": dict(scale=(2048, 336), logit_scale=65, prob_thd=0.1, area_thd=0.1),
    "voc20": dict(scale=(2048, 336), logit_scale=40, prob_thd=0.0, area_thd=None),
    "context60": dict(scale=(2048, 336), logit_scale=50, prob_thd=0.1, area_thd=None),
    "context59": dict(scale=(2048, 336), logit_scale=40, prob_thd=0.0, area_thd=None),
    "coco_object": dict(scale=(2048, 336), logit_scale=50, prob_thd=0.1, area_thd=None),
    "coco_stuff10k": dict(scale=(2048, 336), logit_scale=40, prob_thd=0.0, area_thd=None),
    "coco_stuff164k": dict(scale=(2048, 448), logit_scale=40, prob_thd=0.0, area_thd=None),
    "ade20k": dict(scale=(2048, 336), logit_scale=40, prob_thd=0.0, area_thd=None),
    "cityscapes": dict(scale=(2048, 560), logit_scale=40, prob_thd=0.0, area_thd=None),
}


# ---------------------------------------------------------------------------
# 1. mmcv keep-ratio rescale size
# ---------------------------------------------------------------------------

def mmcv_rescale_size(w: int, h: int, scale: Tuple[int, int] = SCLIP_DEFAULT_SCALE) -> Tuple[int, int]:
    """mmcv.image.geometric.rescale_size((w, h), scale) for a tuple scale.

    rescale_size:  max_long_edge = max(scale); max_short_edge = min(scale)
                   scale_factor = min(max_long_edge / max(h, w),
                                      max_short_edge / min(h, w))
    _scale_size:   (int(w * float(f) + 0.5), int(h * float(f) + 0.5))
    Python floats (double precision), int() truncation after +0.5.
    """
    max_long_edge = max(scale)
    max_short_edge = min(scale)
    factor = min(max_long_edge / max(h, w), max_short_edge / min(h, w))
    return int(w * float(factor) + 0.5), int(h * float(factor) + 0.5)


# ---------------------------------------------------------------------------
# 2. Resize as in SCLIP's test pipeline
# ---------------------------------------------------------------------------

def sclip_resize(image_rgb_uint8: np.ndarray, scale: Tuple[int, int] = SCLIP_DEFAULT_SCALE) -> np.ndarray:
    """SCLIP test pipeline: LoadImageFromFile (cv2 decode, BGR, uint8) then
    mmcv ``Resize(scale=scale, keep_ratio=True)``.

    mmcv/transforms/processing.py Resize._resize_img (keep_ratio=True):
        mmcv.imrescale(img, results['scale'], interpolation='bilinear',
                       backend='cv2')
    mmcv/image/geometric.py imrescale -> rescale_size -> imresize:
        cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    The resize is done on the uint8 BGR image; we flip RGB->BGR, resize, and
    flip back, so the returned array is the RGB view of what the pipeline
    holds.  (cv2 bilinear treats channels independently, so the channel order
    does not change the values.)  Note: mmcv always calls cv2.resize, even
    when the size is unchanged.
    """
    assert image_rgb_uint8.dtype == np.uint8 and image_rgb_uint8.ndim == 3
    h, w = image_rgb_uint8.shape[:2]
    new_w, new_h = mmcv_rescale_size(w, h, scale)
    bgr = np.ascontiguousarray(image_rgb_uint8[:, :, ::-1])
    resized_bgr = cv2.resize(bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized_bgr[:, :, ::-1])


# ---------------------------------------------------------------------------
# 3. Data preprocessor normalisation
# ---------------------------------------------------------------------------

def sclip_normalize(resized_uint8: np.ndarray) -> torch.Tensor:
    """SegDataPreProcessor.forward (mmseg/models/data_preprocessor.py) with
    SCLIP's mean/std and rgb_to_bgr=True.

    The packed input is the BGR uint8 tensor (3, h, w) (PackSegInputs
    transposes HWC->CHW).  The preprocessor then does, in this order:
        _input[[2, 1, 0], ...]          (channel flip -> RGB)
        _input.float()
        (_input - mean.view(-1,1,1)) / std.view(-1,1,1)
    With ``resized_uint8`` given in RGB order, the flip is already applied.
    Returns float32 (3, h, w); no padding at test time (test_cfg is None).
    """
    rgb = torch.from_numpy(np.ascontiguousarray(resized_uint8)).permute(2, 0, 1)  # RGB CHW uint8
    x = rgb.float()
    mean = torch.tensor(SCLIP_MEAN).view(-1, 1, 1)
    std = torch.tensor(SCLIP_STD).view(-1, 1, 1)
    return (x - mean) / std


# ---------------------------------------------------------------------------
# 4. Name file parsing
# ---------------------------------------------------------------------------

def sclip_name_file(path: str) -> Tuple[List[str], List[int]]:
    """clip_segmentor.py get_cls_idx(path), reproduced literally.

    * f.readlines(): every line is a class (an empty trailing line -- i.e. a
      file ending in "\\n\\n" -- would be a class with the name '').
    * synonyms are split on ', ' (comma + ONE space) only; 'a,b' stays one name.
    * only '\\n' is removed (item.replace('\\n', '')); no strip(): leading /
      trailing spaces, '\\r' and tabs are kept (e.g. 'wood ' in
      cls_context60.txt keeps its trailing space).
    * no special case for a one-line file: it is simply one class (index 0)
      whose synonyms are the ', '-separated parts.
    """
    with open(path, "r") as f:
        name_sets = f.readlines()
    num_cls = len(name_sets)
    class_names: List[str] = []
    class_indices: List[int] = []
    for idx in range(num_cls):
        names_i = name_sets[idx].split(", ")
        class_names += names_i
        class_indices += [idx for _ in range(len(names_i))]
    class_names = [item.replace("\n", "") for item in class_names]
    return class_names, class_indices


# ---------------------------------------------------------------------------
# 5. SCLIP image encoder (CSA in the last block)
# ---------------------------------------------------------------------------

def _layer_norm(ln: torch.nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    # clip/model.py LayerNorm: computes in float32 and casts back.
    return F.layer_norm(x.float(), ln.normalized_shape, ln.weight, ln.bias, ln.eps).to(x.dtype)


def _check_no_layer_scale(blk) -> None:
    # SCLIP's ResidualAttentionBlock has no layer scale; open_clip blocks carry
    # ls_1 / ls_2 which are Identity for ViT-B-16(-quickgelu).  Refuse others.
    for name in ("ls_1", "ls_2"):
        mod = getattr(blk, name, None)
        if mod is not None and not isinstance(mod, torch.nn.Identity):
            raise ValueError(f"block has a non-identity {name}; SCLIP's CLIP has no layer scale")


def _sclip_interpolate_pos_encoding(visual, n_tokens: int, w: int, h: int, patch_size: int) -> torch.Tensor:
    """clip/model.py VisionTransformer.interpolate_pos_encoding(x, w, h).

    Called with (w, h) = the INPUT image's (H, W) (``B, nc, w, h = x.shape``).
      npatch = n_tokens - 1; N = pos.shape[0] - 1
      if npatch == N and w == h: return pos
      w0 = w // patch + 0.1; h0 = h // patch + 0.1
      F.interpolate(patch_pos.reshape(1, int(sqrt N), int(sqrt N), dim)
                    .permute(0, 3, 1, 2),
                    scale_factor=(w0 / sqrt N, h0 / sqrt N), mode='bicubic')
      (align_corners default False, recompute_scale_factor default None:
       the given fractional scale factor is used for the sampling grid)
    Returns (1, 1 + npatch, dim).
    """
    pos = visual.positional_embedding
    npatch = n_tokens - 1
    N = pos.shape[0] - 1
    if npatch == N and w == h:
        return pos
    class_pos_embed = pos[[0]]
    patch_pos_embed = pos[1:]
    dim = pos.shape[-1]
    w0 = w // patch_size
    h0 = h // patch_size
    w0, h0 = w0 + 0.1, h0 + 0.1
    patch_pos_embed = F.interpolate(
        patch_pos_embed.reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2),
        scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)),
        mode="bicubic",
    )
    assert int(w0) == patch_pos_embed.shape[-2] and int(h0) == patch_pos_embed.shape[-1]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


def _block_attention(attn: torch.nn.MultiheadAttention, x_lnd: torch.Tensor) -> torch.Tensor:
    """Unmodified CLIP block attention, clip/model.py
    ResidualAttentionBlock.attention: self.attn(x, x, x, need_weights=False,
    attn_mask=None)[0] on the (L, B, D) sequence (the vision tower has no
    mask).  The nn.MultiheadAttention module itself is called, as SCLIP does;
    open_clip builds it with batch_first=True, so the layout is adapted."""
    if getattr(attn, "batch_first", False):
        x = x_lnd.transpose(0, 1)
        return attn(x, x, x, need_weights=False, attn_mask=None)[0].transpose(0, 1)
    return attn(x_lnd, x_lnd, x_lnd, need_weights=False, attn_mask=None)[0]


def _csa_attention(attn: torch.nn.MultiheadAttention, x_lnd: torch.Tensor) -> torch.Tensor:
    """clip/model.py VisionTransformer.custom_attn(attn_layer, x, csa=True).

      q, k, v = F.linear(x, in_proj_weight, in_proj_bias).chunk(3, -1)
      (L, B, D) -> (B*heads, L, head_dim)
      q_attn = bmm(q, q^T) * scale ; k_attn = bmm(k, k^T) * scale
      attn_weights = softmax(q_attn, -1) + softmax(k_attn, -1)   (sum, no /2)
      out = bmm(attn_weights, v) -> (L, B, D) -> attn_layer.out_proj
    scale = head_dim ** -0.5.
    """
    L, bsz, D = x_lnd.shape
    nh = attn.num_heads
    hd = D // nh
    scale = hd ** -0.5
    q, k, v = F.linear(x_lnd, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * nh, hd).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * nh, hd).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * nh, hd).transpose(0, 1)
    q_attn = torch.bmm(q, q.transpose(1, 2)) * scale
    k_attn = torch.bmm(k, k.transpose(1, 2)) * scale
    attn_weights = F.softmax(q_attn, dim=-1) + F.softmax(k_attn, dim=-1)
    out = torch.bmm(attn_weights, v)
    out = out.transpose(0, 1).contiguous().view(-1, bsz, D)
    return attn.out_proj(out)


def _patch_size(visual) -> int:
    ps = visual.conv1.kernel_size
    return int(ps[0] if isinstance(ps, (tuple, list)) else ps)


@torch.no_grad()
def sclip_encode_image_all(model, x: torch.Tensor) -> torch.Tensor:
    """clip/model.py VisionTransformer.forward(x, return_all=True, csa=True)
    (called by CLIP.encode_image(img, return_all=True, csa=True)).

    Returns ln_post(x) @ proj for ALL tokens, (B, 1 + n_patches, E),
    NOT L2-normalised (forward_feature normalises afterwards).

    Steps:
      conv1 -> (B, width, gh, gw) -> (B, gh*gw, width)
      prepend class_embedding
      + positional_embedding if token count matches, else
        interpolate_pos_encoding(x, H, W)  (the test is on token count only)
      ln_pre ; blocks[:-1] unchanged:
        x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))
      last block: residual and FFN are KEPT, only the attention is replaced:
        x = x + custom_attn(blk.attn, blk.ln_1(x), csa=True)
        x = x + blk.mlp(blk.ln_2(x))
      ln_post on every token, then @ proj.
    """
    visual = model.visual if hasattr(model, "visual") else model
    x = x.float()
    B, nc, w, h = x.shape  # as in SCLIP: w = height, h = width
    patch = _patch_size(visual)

    x = visual.conv1(x)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
    x = torch.cat([cls, x], dim=1)
    if x.shape[1] != visual.positional_embedding.shape[0]:
        x = x + _sclip_interpolate_pos_encoding(visual, x.shape[1], w, h, patch).to(x.dtype)
    else:
        x = x + visual.positional_embedding.to(x.dtype)
    x = _layer_norm(visual.ln_pre, x)

    x = x.permute(1, 0, 2)  # NLD -> LND
    blocks = list(visual.transformer.resblocks)
    for blk in blocks[:-1]:
        _check_no_layer_scale(blk)
        x = x + _block_attention(blk.attn, _layer_norm(blk.ln_1, x))
        x = x + blk.mlp(_layer_norm(blk.ln_2, x))
    last = blocks[-1]
    _check_no_layer_scale(last)
    x = x + _csa_attention(last.attn, _layer_norm(last.ln_1, x))
    x = x + last.mlp(_layer_norm(last.ln_2, x))
    x = x.permute(1, 0, 2)  # LND -> NLD

    return _layer_norm(visual.ln_post, x) @ visual.proj


@torch.no_grad()
def csa_last_block_features(model, crops: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """SCLIP image encoder on normalised crops (B, 3, H, W) -> patch features
    (B, N_patches, E), CLS token dropped (forward_feature: image_features[:, 1:]).

    Features are ln_post(.) @ proj, un-normalised by default; SCLIP
    (clip_segmentor.py forward_feature) L2-normalises every token over E
    right after encode_image (pass normalize=True for that).
    """
    feats = sclip_encode_image_all(model, crops)
    if normalize:
        feats = feats / feats.norm(dim=-1, keepdim=True)
    return feats[:, 1:]


# ---------------------------------------------------------------------------
# 6. Sliding-window logits
# ---------------------------------------------------------------------------

@torch.no_grad()
def sclip_forward_feature(model, img: torch.Tensor, text: torch.Tensor,
                          logit_size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """clip_segmentor.py CLIPForSegmentation.forward_feature(img, logit_size).

      feats = encode_image(img, return_all=True, csa=True)
      feats /= feats.norm(dim=-1, keepdim=True)     (all tokens)
      feats = feats[:, 1:]
      logits = feats @ query_features.T              (text used as given:
                                                      SCLIP's query features
                                                      are already unit norm)
      (B, n, K) -> permute(0,2,1).reshape(-1, K, H//p, W//p)
      F.interpolate(logits, size=img.shape[-2:] (or logit_size),
                    mode='bilinear')   (align_corners default -> False)
    """
    text = text.float()
    feats = sclip_encode_image_all(model, img)
    feats = feats / feats.norm(dim=-1, keepdim=True)
    feats = feats[:, 1:]
    logits = feats @ text.T
    visual = model.visual if hasattr(model, "visual") else model
    patch = _patch_size(visual)
    gh, gw = img[0].shape[-2] // patch, img[0].shape[-1] // patch
    out_dim = logits.shape[-1]
    logits = logits.permute(0, 2, 1).reshape(-1, out_dim, gh, gw)
    size = img.shape[-2:] if logit_size is None else logit_size
    return F.interpolate(logits, size=tuple(size), mode="bilinear")


def sclip_windows(h_img: int, w_img: int, crop: int = 224, stride: int = 112) -> List[Tuple[int, int, int, int]]:
    """Window coordinates (y1, y2, x1, x2) of forward_slide, in loop order.

      h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
      w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
      y1 = h_idx*h_stride; x1 = w_idx*w_stride
      y2 = min(y1 + h_crop, h_img); x2 = min(x1 + w_crop, w_img)
      y1 = max(y2 - h_crop, 0);     x1 = max(x2 - w_crop, 0)
    (the last window is shifted back to end at the border; a side smaller
    than the crop is used as-is, without padding.)
    """
    h_stride = w_stride = stride
    h_crop = w_crop = crop
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    out = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1 = h_idx * h_stride
            x1 = w_idx * w_stride
            y2 = min(y1 + h_crop, h_img)
            x2 = min(x1 + w_crop, w_img)
            y1 = max(y2 - h_crop, 0)
            x1 = max(x2 - w_crop, 0)
            out.append((y1, y2, x1, x2))
    return out


@torch.no_grad()
def sclip_slide_logits(model, img: torch.Tensor, text: torch.Tensor,
                       crop: int = 224, stride: int = 112) -> torch.Tensor:
    """clip_segmentor.py CLIPForSegmentation.forward_slide, up to (and
    including) ``preds = preds / count_mat``.  img: (1, 3, H, W) normalised.

    Each window is encoded on its own (batch 1, as SCLIP does), its patch
    logits bilinearly upsampled to the window size (forward_feature), added
    into preds via zero F.pad, count_mat[..., y1:y2, x1:x2] += 1, and
    preds / count_mat at the end.  Returns (K, H, W) at the resized size.
    """
    img = img.float()
    batch_size, _, h_img, w_img = img.shape
    assert batch_size == 1
    out_channels = text.shape[0]
    preds = img.new_zeros((batch_size, out_channels, h_img, w_img))
    count_mat = img.new_zeros((batch_size, 1, h_img, w_img))
    for (y1, y2, x1, x2) in sclip_windows(h_img, w_img, crop, stride):
        crop_img = img[:, :, y1:y2, x1:x2]
        crop_seg_logit = sclip_forward_feature(model, crop_img, text)
        preds += F.pad(crop_seg_logit, (int(x1), int(preds.shape[3] - x2), int(y1), int(preds.shape[2] - y2)))
        count_mat[:, :, y1:y2, x1:x2] += 1
    assert (count_mat == 0).sum() == 0
    preds = preds / count_mat
    return preds[0]


# ---------------------------------------------------------------------------
# 7. PAMR (visinf/1-stage-wseg models/mods/pamr.py, copied as SCLIP pamr.py)
# ---------------------------------------------------------------------------

# Kernel order of LocalAffinity / LocalAffinityCopy (3x3 positions, row-major,
# centre omitted) as (dy, dx) offsets in units of the dilation.
_PAMR_OFFSETS_8 = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
# LocalStDev: all 9 positions including the centre.
_PAMR_OFFSETS_9 = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0), (0, 1), (1, -1), (1, 0), (1, 1)]


def _pamr_shifted(x: torch.Tensor, dilations: Sequence[int], offsets) -> torch.Tensor:
    """Neighbour values with replicate padding: for each dilation d (in
    order) and each offset (dy, dx): x[..., clamp(i + dy*d), clamp(j + dx*d)].
    Equivalent to LocalAffinity.forward's F.pad(x, [d]*4, mode='replicate')
    followed by a dilated 3x3 conv with one-hot kernels.  x: (B, K, H, W) ->
    (B, K, P, H, W)."""
    B, K, H, W = x.shape
    outs = []
    for d in dilations:
        xp = F.pad(x.reshape(B * K, 1, H, W), [d] * 4, mode="replicate").reshape(B, K, H + 2 * d, W + 2 * d)
        for dy, dx in offsets:
            outs.append(xp[:, :, d + dy * d: d + dy * d + H, d + dx * d: d + dx * d + W])
    return torch.stack(outs, dim=2)


def _pamr_local_affinity_abs(x: torch.Tensor, dilations) -> torch.Tensor:
    # LocalAffinity kernel: centre +1, neighbour -1  -> x_centre - x_neighbour;
    # LocalAffinityAbs takes abs.
    return torch.abs(x.unsqueeze(2) - _pamr_shifted(x, dilations, _PAMR_OFFSETS_8))


def _pamr_local_stdev(x: torch.Tensor, dilations) -> torch.Tensor:
    # LocalStDev: the 9 (incl. centre) values per dilation, concatenated over
    # dilations, then torch.std over that axis (unbiased), keepdim.
    return _pamr_shifted(x, dilations, _PAMR_OFFSETS_9).std(2, keepdim=True)


@torch.no_grad()
def pamr_reference(image: torch.Tensor, mask: torch.Tensor, iters: int = 10,
                   dilations: Sequence[int] = (8, 16)) -> torch.Tensor:
    """PAMR.forward(x=image, mask) of 1-stage-wseg / SCLIP pamr.py.

      mask = F.interpolate(mask, size=x.shape[-2:], mode='bilinear',
                           align_corners=True)
      x_std = LocalStDev(x)                                   (B,K,1,H,W)
      x = -LocalAffinityAbs(x) / (1e-8 + 0.1 * x_std)        (B,K,P,H,W)
      x = x.mean(1, keepdim=True)         (mean over image channels)
      x = softmax(x, dim=2)               (over the P = 8*len(dil) neighbours)
      repeat num_iter: mask = (LocalAffinityCopy(mask) * x).sum(2)
    (The neighbour-copy kernel excludes the centre pixel.)
    SCLIP instantiates PAMR(pamr_steps, dilations=pamr_stride) with default
    pamr_stride=(8, 16); pamr_steps defaults to 0 (=PAMR off).
    """
    image = image.float()
    mask = mask.float()
    mask = F.interpolate(mask, size=image.shape[-2:], mode="bilinear", align_corners=True)
    x_std = _pamr_local_stdev(image, dilations)
    x = -_pamr_local_affinity_abs(image, dilations) / (1e-8 + 0.1 * x_std)
    x = x.mean(1, keepdim=True)
    x = F.softmax(x, 2)
    for _ in range(iters):
        m = _pamr_shifted(mask, dilations, _PAMR_OFFSETS_8)
        mask = (m * x).sum(2)
    return mask


# ---------------------------------------------------------------------------
# 8. Whole pipeline
# ---------------------------------------------------------------------------

def _sclip_postprocess(seg_logits: torch.Tensor, query_idx: Sequence[int], logit_scale: float,
                       prob_thd: float, area_thd: Optional[float]) -> Dict[str, torch.Tensor]:
    """clip_segmentor.py CLIPForSegmentation.postprocess_result for one image.

    seg_logits: (Q, H, W) logits at the original size.
      p = softmax(seg_logits * logit_scale, dim=0)               (over queries)
      if num_cls != num_queries: class prob = max over that class's synonyms
         (SCLIP: (p.unsqueeze(0) * one_hot(query_idx).T.view(C,Q,1,1)).max(1)[0];
          computed here per class -- identical values because p >= 0)
         else: p is used as is (no re-ordering by query_idx)
      if area_thd is not None:
         pred = argmax over classes; area_c = #pixels predicted c, c >= 1
         keep_c = area_c > area_thd * sum_{c>=1} area_c           (strict >)
         p[1:] *= keep  (class 0 never zeroed)
      seg_pred = argmax(p); seg_pred[max(p) < prob_thd] = 0      (strict <)
    """
    q_idx = torch.as_tensor(list(query_idx), dtype=torch.int64)
    num_cls, num_queries = int(q_idx.max()) + 1, len(q_idx)
    query_probs = (seg_logits * logit_scale).softmax(0)
    probs = query_probs
    if num_cls != num_queries:
        per_cls = []
        for c in range(num_cls):
            sel = (q_idx == c).nonzero().flatten()
            if len(sel) == 0:  # one_hot column of zeros -> max of zeros
                per_cls.append(torch.zeros_like(query_probs[0]))
            else:
                per_cls.append(query_probs[sel].max(0)[0])
        probs = torch.stack(per_cls, 0)
    seg = probs.clone()
    area_keep = None
    if area_thd is not None:
        predictions = F.one_hot(seg.argmax(0), num_cls).to(seg.dtype)  # (H, W, C)
        area_pred = predictions[:, :, 1:].sum((0, 1), keepdim=True)   # (1, 1, C-1)
        area_keep = (area_pred > area_thd * area_pred.sum()).to(seg.dtype)
        seg[1:] *= area_keep.transpose(0, -1)
        area_keep = area_keep.flatten()
    seg_pred = seg.argmax(0, keepdim=True)
    seg_pred[seg.max(0, keepdim=True)[0] < prob_thd] = 0
    return dict(query_probs=query_probs, probs=probs, seg_logits=seg, area_keep=area_keep,
                labels=seg_pred[0].to(torch.int64))


@torch.no_grad()
def sclip_predict(model, image_rgb_uint8: np.ndarray, text: torch.Tensor, query_idx: Sequence[int],
                  logit_scale: float = 40, prob_thd: float = 0.0, area_thd: Optional[float] = None,
                  pamr: bool = False, scale: Tuple[int, int] = SCLIP_DEFAULT_SCALE,
                  crop: int = 224, stride: int = 112, pamr_iters: int = 10,
                  pamr_dilations: Sequence[int] = (8, 16), return_all: bool = False):
    """Full SCLIP inference on one RGB uint8 image; labels (H, W) int64 at the
    ORIGINAL size.

    text: (num_queries, E) query features (SCLIP: per-name 80-template
    ensemble, each normalised, averaged, re-normalised); used as given.

    Path (clip_segmentor.py predict -> forward_slide -> postprocess_result):
      resize (mmcv keep_ratio, cv2 bilinear)  -> normalise (RGB mean/std)
      slide_crop > 0:
        preds/count at the resized size
        logits = F.interpolate(preds, size=ori_shape, mode='bilinear')
        if PAMR: img = F.interpolate(normalised resized img, size=ori_shape,
                                     mode='bilinear');  logits = PAMR(img, logits)
      slide_crop <= 0 (forward_feature on the whole image; PAMR NOT applied):
        logits = forward_feature(img, logit_size=ori_shape)
      postprocess (softmax with logit_scale, synonym max, area_thd, prob_thd).
    pamr=True corresponds to pamr_steps=pamr_iters (> 0) with
    pamr_stride=pamr_dilations.
    """
    H0, W0 = image_rgb_uint8.shape[:2]
    resized = sclip_resize(image_rgb_uint8, scale)
    img = sclip_normalize(resized).unsqueeze(0)
    text = text.float()
    logits_pre_pamr = None
    if crop > 0:
        preds = sclip_slide_logits(model, img, text, crop=crop, stride=stride)
        logits_resized = preds
        logits = F.interpolate(preds.unsqueeze(0), size=(H0, W0), mode="bilinear")
        guide = None
        if pamr:
            logits_pre_pamr = logits[0]
            guide = F.interpolate(img, size=(H0, W0), mode="bilinear")
            logits = pamr_reference(guide, logits, iters=pamr_iters, dilations=pamr_dilations)
    else:
        logits_resized = None
        guide = None
        logits = sclip_forward_feature(model, img, text, logit_size=(H0, W0))
    post = _sclip_postprocess(logits[0], query_idx, logit_scale, prob_thd, area_thd)
    labels = post["labels"]
    if not return_all:
        return labels
    return dict(
        resized=resized,                  # (h, w, 3) uint8 RGB
        normalized=img[0],                # (3, h, w) float32
        logits_resized=logits_resized,    # (Q, h, w) preds / count
        logits_pre_pamr=logits_pre_pamr,  # (Q, H0, W0) or None
        pamr_guide=None if guide is None else guide[0],  # (3, H0, W0)
        logits=logits[0],                 # (Q, H0, W0) after PAMR if used
        query_probs=post["query_probs"],  # (Q, H0, W0) softmax(logit_scale*logits)
        probs=post["probs"],              # (C, H0, W0) max over synonyms
        seg_logits=post["seg_logits"],    # (C, H0, W0) after area_thd zeroing
        area_keep=post["area_keep"],      # (C-1,) or None
        labels=labels,                    # (H0, W0) int64
    )


# ---------------------------------------------------------------------------

def _selfcheck() -> None:
    import open_clip
    from skimage import data

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-quickgelu")
    model.eval()
    image = data.coffee()
    E = model.visual.proj.shape[1]
    text = torch.randn(3, E)
    text = text / text.norm(dim=-1, keepdim=True)
    out = sclip_predict(model, image, text, [0, 1, 2], return_all=True)
    print("image", image.shape, "resized", out["resized"].shape)
    print("logits_resized", tuple(out["logits_resized"].shape), "logits", tuple(out["logits"].shape))
    print("probs", tuple(out["probs"].shape), "labels", tuple(out["labels"].shape), out["labels"].dtype,
          "label counts", torch.bincount(out["labels"].flatten(), minlength=3).tolist())
    crops = out["normalized"].unsqueeze(0)[:, :, :224, :224]
    print("csa features", tuple(csa_last_block_features(model, crops).shape))
    out2 = sclip_predict(model, image, text, [0, 0, 1], pamr=True, area_thd=0.1, prob_thd=0.1,
                         return_all=True)
    print("pamr+synonyms probs", tuple(out2["probs"].shape), "labels", tuple(out2["labels"].shape))


if __name__ == "__main__":
    _selfcheck()
