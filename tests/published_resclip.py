"""Independent plain-torch reference of ResCLIP (Yang et al., CVPR 2025) for parity tests.

Written from the official code, repo ``yvhangyang/ResCLIP`` (commit 6b082d99), NOT from SegLab:

* ``clip/model.py``            -- ``VisionTransformer.forward`` (L294-373), ``custom_attn`` (L451-604),
                                  ``create_logit_temp`` (L242-290), ``create_patch_matrix`` (L106-126),
                                  ``check_path`` (L130-148), ``generate_attention_sfr`` (L152-240),
                                  ``gaussian_window`` / ``get_attention_addition`` (L398-424, NACLIP's),
                                  ``interpolate_pos_encoding`` (L377-394)
* ``resclip_segmentor.py``     -- ``ResCLIPSegmentation.__init__`` defaults (L23-62), ``forward_feature``
                                  (L66-89), ``forward_slide`` (L91-131), ``postprocess_result`` (L164-194)
* ``configs/cfg_*.py``         -- per-dataset hyper-parameters; ``README.md`` / ``test_all.sh`` -- arch/attn/std
* PAMR: ``from pamr import PAMR`` (file not in the ResCLIP index; identical module shipped by NACLIP
  ``sinahmr/NACLIP:pamr.py`` and SCLIP), used with ``PAMR(10, dilations=(8, 16))`` in ``create_logit_temp``.

Line numbers refer to ``clip/model.py`` / ``resclip_segmentor.py`` at that commit.  The full spec with
every order-of-operations detail is in /tmp/specs/resclip.md.

Everything is CPU float32 (the official code runs the CLIP weights in fp16 on CUDA; the one explicit
dtype cast that is part of the algorithm -- ``attn_sfr.to(torch.float16)``, model.py L478 -- is mirrored
by ``sfr_fp16_cast=True``).  Input crops are assumed already CLIP-normalised (the official
``SegDataPreProcessor`` does mean/std normalisation, resclip_segmentor.py L28), and the same normalised
crop is what PAMR sees in the first pass (model.py L281).

Model: an open_clip ``CLIP`` (or its ``.visual``), e.g. ``open_clip.create_model("ViT-B-16-quickgelu")``.
Only raw sub-modules/weights are used: conv1, class_embedding, positional_embedding, ln_pre,
transformer.resblocks[i].{ln_1, attn.in_proj_weight/in_proj_bias/out_proj, ln_2, mlp}, ln_post, proj.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Published settings
# ---------------------------------------------------------------------------------------------

# base method -> (attn_strategy, arch) as the official code names them.
#   model.py L94-99 comments: 'wo_resi' = without residual (NACLIP, ClearCLIP); 'w_resi' = with residual
#   (CLIP, SCLIP); set_params asserts attn_strategy 'sclip' => arch 'w_resi' (L102).
#   README: "Values of `wo_resi` for {arch}, and `resclip` for {attn} represent our method"
#   (`bash test_all.sh wo_resi resclip 5 ...`).  'resclip' and 'naclip' branches of custom_attn are
#   byte-for-byte the same computation (L473-494 vs L496-517).
_BASES = {
    "naclip": ("resclip", "wo_resi"),
    "sclip": ("sclip", "w_resi"),
    "clearclip": ("clearclip", "wo_resi"),
    "vanilla": ("vanilla", "w_resi"),
}


def resclip_settings() -> dict:
    """Published ResCLIP hyper-parameters (official repo), with where each comes from.

    The repository publishes ONE set of (tau, lambda) per dataset; it has no separate SCLIP / NACLIP
    tables -- the base is switched only by the CLI flags ``--arch/--attn`` of eval.py/test_all.sh while the
    dataset config (and hence the weights) stays the same.
    """
    per_dataset = {
        # configs/cfg_<name>.py ; slide_crop/stride default 224/112 (resclip_segmentor.py L25-26) unless set.
        # attn_rcs_weights = [tau_rcs, lambda_rcs], attn_sfr_weights = [tau_sfr, lambda_sfr]
        "voc21": dict(temp_thd=0.50, rcs_weights=(2.0, 0.3), sfr_weights=(2.2, 0.7), prob_thd=0.1,
                      slide_crop=0, resize_short=336),
        "context60": dict(temp_thd=0.30, rcs_weights=(2.0, 0.3), sfr_weights=(1.8, 0.7), prob_thd=0.1,
                          slide_crop=224, resize_short=336),
        "coco_object": dict(temp_thd=0.11, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7), prob_thd=0.1,
                            slide_crop=224, resize_short=336),
        "voc20": dict(temp_thd=0.10, rcs_weights=(2.0, 0.6), sfr_weights=(2.1, 0.6), prob_thd=0.0,
                      slide_crop=0, resize_short=336),
        "city_scapes": dict(temp_thd=0.10, rcs_weights=(2.0, 0.2), sfr_weights=(2.1, 0.6), prob_thd=0.0,
                            slide_crop=224, resize_short=560),
        "context59": dict(temp_thd=0.25, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7), prob_thd=0.0,
                          slide_crop=224, resize_short=336),
        "ade20k": dict(temp_thd=0.25, rcs_weights=(2.0, 0.3), sfr_weights=(2.1, 0.7), prob_thd=0.0,
                       slide_crop=224, resize_short=336),
        "coco_stuff164k": dict(temp_thd=0.11, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7), prob_thd=0.0,
                               slide_crop=224, resize_short=336),
        # demo.py (open-vocabulary demo; also pamr_steps=10 for the final PAMR, prob_thd=0.35)
        "demo": dict(temp_thd=0.10, rcs_weights=(2.0, 0.6), sfr_weights=(2.1, 0.6), prob_thd=0.35,
                     slide_crop=224, final_pamr_steps=10),
    }
    common = dict(
        gaussian_std=5.0,            # README / test_all.sh: `test_all.sh wo_resi resclip 5`; __init__ default 5.
        #                              Used BOTH for NACLIP's 2-D neighbourhood window (custom_attn L463-471)
        #                              and SFR's 1-D smoothing kernel (generate_attention_sfr, via L344).
        rcs_layers=(5, 6, 7, 8),     # model.py L326-329: attn_map[5..8] = blocks 6,7,8,9 (1-based), mean.
        logit_scale=40.0,            # resclip_segmentor.py L25 default; used in first pass softmax (L285-288)
        #                              and in postprocess softmax (L167).
        first_pass_pamr_steps=10,    # model.py L279: PAMR(10, dilations=(8, 16)) -- hard-coded.
        first_pass_pamr_dilations=(8, 16),
        delete_same_entity=True,     # every cfg_*.py sets True (the __init__ default is False, L27).
        final_pamr_steps=0,          # __init__ default pamr_steps=0 -> no PAMR on the final logits (L55).
        slide_stride=112, slide_crop=224,  # __init__ defaults (L25-26).
        area_thd=None,
        sfr_fp16_cast=True,          # model.py L478: attn_sfr.to(torch.float16)
        use_rcs=True, use_sfr=True,  # base_config.py; note L61-62 store them as 1-tuples -> always truthy.
    )
    bases = {
        name: dict(attn_strategy=attn, arch=arch,
                   residual_and_ffn_in_last_block=(arch == "w_resi"),
                   rcs_source="mean over blocks 5..8 (0-based) of softmax(q*scale @ k^T), per head, with CLS",
                   last_block=_LAST_BLOCK_DOC[name])
        for name, (attn, arch) in _BASES.items()
    }
    return dict(common=common, datasets=per_dataset, bases=bases,
                note="Same per-dataset weights for every base; the repo has no per-base tau/lambda.")


_LAST_BLOCK_DOC = {
    "naclip": "A=tau_s*((1-l_s)*kk^T*s + l_s*SFR); A+=omega(gauss std 5); A=softmax(A); "
              "A=tau_r*((1-l_r)*A + l_r*RCS); x = out_proj(A@v)  (no residual, no FFN)",
    "sclip": "Aq=tau_s*((1-l_s)*qq^T*s + l_s*SFR); Ak=same with kk^T; A=softmax(Aq)+softmax(Ak); "
             "A=tau_r*((1-l_r)*A + l_r*RCS); x = x + out_proj(A@v); x = x + mlp(ln_2(x))",
    "clearclip": "A=tau_s*((1-l_s)*qq^T*s + l_s*SFR); A=softmax(A); A=tau_r*((1-l_r)*A + l_r*RCS); "
                 "x = out_proj(A@v) (no residual, no FFN)",
    "vanilla": "A=tau_s*((1-l_s)*(q*s)k^T + l_s*SFR); softmax; RCS mix; x = x + out_proj(A@v); x += mlp(ln_2(x))",
}

# Defaults used by the functions below when the caller gives nothing: demo.py / cfg_voc20.py values.
DEFAULT_RCS_WEIGHTS = (2.0, 0.6)
DEFAULT_SFR_WEIGHTS = (2.1, 0.6)
DEFAULT_TEMP_THD = 0.10


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def _visual(model):
    return model.visual if hasattr(model, "visual") else model


def _patch_size(visual) -> int:
    ks = visual.conv1.kernel_size
    return int(ks[0] if isinstance(ks, (tuple, list)) else ks)


def _identity(x):
    return x


def _qkv(attn, y):
    """y (B, L, D) -> q, k, v each (B, H, L, hd).  Mirrors custom_attn L453-461 (F.linear + chunk(3))."""
    B, L, D = y.shape
    H = attn.num_heads
    hd = D // H
    qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.chunk(3, dim=-1)

    def split(t):
        return t.reshape(B, L, H, hd).permute(0, 2, 1, 3)

    return split(q), split(k), split(v), hd ** -0.5


def _attn_out(attn, weights, v):
    """weights (B,H,L,L) @ v (B,H,L,hd) -> out_proj -> (B, L, D).  Mirrors custom_attn L597-599."""
    B, H, L, hd = v.shape
    o = (weights @ v).permute(0, 2, 1, 3).reshape(B, L, H * hd)
    return F.linear(o, attn.out_proj.weight, attn.out_proj.bias)


def _interpolate_pos_encoding(pos, n_rows, n_cols, patch_size, w_px, h_px):
    """model.py L377-394 (interpolate_pos_encoding): bicubic, scale_factor=(rows+0.1)/sqrt(N), align_corners
    False, recompute_scale_factor False; returns pos unchanged when the grid matches and w == h."""
    N = pos.shape[0] - 1
    if n_rows * n_cols == N and w_px == h_px:
        return pos.unsqueeze(0)
    side = int(math.sqrt(N))
    dim = pos.shape[-1]
    w0, h0 = w_px // patch_size + 0.1, h_px // patch_size + 0.1
    pp = F.interpolate(pos[1:].reshape(1, side, side, dim).permute(0, 3, 1, 2), mode="bicubic",
                       scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)), align_corners=False,
                       recompute_scale_factor=False)
    assert int(w0) == pp.shape[-2] and int(h0) == pp.shape[-1]
    pp = pp.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat((pos[[0]].unsqueeze(0), pp), dim=1)


def naclip_neighbourhood_addition(n_rows: int, n_cols: int, std: float = 5.0) -> torch.Tensor:
    """NACLIP's Gaussian neighbourhood term omega, (L, L) with L = n_rows*n_cols + 1, zero CLS row/col.

    Mirrors model.py ``gaussian_window`` (L399-410) and ``get_attention_addition`` (L415-424), called in
    custom_attn L463-471 with window size (2*rows-1, 2*cols-1) and std = gaussian_std (=5).
    omega[1+i, 1+j] = exp(-((r_i-r_j)^2 + (c_i-c_j)^2) / (2 std^2)).
    """
    c = 1.0 / (std * math.sqrt(2))
    ks = []
    for dim in (2 * n_rows - 1, 2 * n_cols - 1):
        start = -(dim - 1) / 2.0
        ks.append(torch.linspace(start * c, (start + (dim - 1)) * c, steps=dim, dtype=torch.float))
    window = torch.exp(-(torch.stack(torch.meshgrid(*ks, indexing="ij")) ** 2).sum(0))
    m = torch.einsum("ij,kl->ijkl", torch.eye(n_rows), torch.eye(n_cols)).permute(0, 3, 1, 2).contiguous()
    out = F.conv2d(m.view(-1, n_rows, n_cols).unsqueeze(1), window[None, None], padding="same").squeeze(1)
    out = out.view(n_rows * n_cols, n_rows * n_cols)
    out = torch.vstack([torch.zeros(1, n_rows * n_cols), out])
    return torch.hstack([torch.zeros(n_rows * n_cols + 1, 1), out])


# ---------------------------------------------------------------------------------------------
# 1. Encoder: layers 1..11 (with attention maps for RCS) and the modified last block
# ---------------------------------------------------------------------------------------------

def encode_until_last_block(model, crops: torch.Tensor):
    """Embed + run blocks 0..10 exactly as CLIP does, returning the residual stream before the last block
    and each block's post-softmax q-k attention map.

    Mirrors VisionTransformer.forward L297-323: every non-final block goes through
    ``custom_attn(..., with_attn=True)`` with use_custom_attn=False, i.e. the "C^2SA" branch L590-592:
    ``softmax(bmm(q * scale, k^T))`` on ln_1(x) -- the ordinary CLIP attention, q scaled BEFORE the
    product; then x = x + attn_out; x = x + mlp(ln_2(x)).  (open_clip's ls_1/ls_2 are Identity for this
    model and are applied for completeness.)

    Returns x (B, L, D), attn_maps: list of 11 tensors (B, H, L, L) (softmax rows, CLS included),
    (n_rows, n_cols).
    """
    vis = _visual(model)
    ps = _patch_size(vis)
    B, _, w_px, h_px = crops.shape
    n_rows, n_cols = w_px // ps, h_px // ps                                         # L297-298
    x = vis.conv1(crops.to(vis.conv1.weight.dtype))                                 # L300
    x = x.reshape(B, x.shape[1], -1).permute(0, 2, 1)                               # L301-302
    cls = vis.class_embedding.to(x.dtype) + torch.zeros(B, 1, x.shape[-1], dtype=x.dtype)
    x = torch.cat([cls, x], dim=1)                                                  # L305
    pos = vis.positional_embedding
    if x.shape[1] != pos.shape[0]:                                                  # L307-310
        x = x + _interpolate_pos_encoding(pos, n_rows, n_cols, ps, w_px, h_px).to(x.dtype)
    else:
        x = x + pos.to(x.dtype)
    x = vis.ln_pre(x)                                                               # L312
    attn_maps = []
    for blk in vis.transformer.resblocks[:-1]:                                       # L318-323
        q, k, v, s = _qkv(blk.attn, blk.ln_1(x))
        a = torch.softmax((q * s) @ k.transpose(-1, -2), dim=-1)                      # L591-592
        x = x + getattr(blk, "ls_1", _identity)(_attn_out(blk.attn, a, v))
        x = x + getattr(blk, "ls_2", _identity)(blk.mlp(blk.ln_2(x)))
        attn_maps.append(a)
    return x, attn_maps, (n_rows, n_cols)


def rcs_attention_map(attn_maps, layers=(5, 6, 7, 8)) -> torch.Tensor:
    """RCS source attention: mean over the chosen blocks' post-softmax q.k^T maps, per head (no head
    averaging), CLS row/col included.  model.py L326-329: ``torch.stack([attn_map[i] for i in
    range(5, 9)]).mean(dim=0)`` where attn_map[i] is block i (0-based) -> layers 6..9 (1-based)."""
    return torch.stack([attn_maps[i] for i in layers]).mean(dim=0)


def _prepare_sfr(sfr, B, L, fp16_cast):
    """Bring an SFR affinity to (B, 1, L, L) as custom_attn uses it.

    generate_attention_sfr returns (1, N+1, N+1) with a zero CLS row/col (L177-178, L237-238); custom_attn then does
    ``attn_sfr / torch.max(attn_sfr)`` (global max) and ``.to(torch.float16)`` (L477-478) before mixing.
    Accepts (N,N), (B,N,N), (N+1,N+1) or (B,N+1,N+1).  The max is taken per sample (the official code only
    supports batch 1 in the SFR path -- create_patch_matrix squeezes dim 0 -- where both coincide).
    """
    sfr = sfr.to(torch.float32)
    if sfr.dim() == 2:
        sfr = sfr.unsqueeze(0)
    if sfr.shape[-1] == L - 1:
        sfr = F.pad(sfr, (1, 0, 1, 0))                                                # zero CLS row/col
    assert sfr.shape[-1] == L and sfr.shape[-2] == L, sfr.shape
    sfr = sfr.expand(B, L, L) if sfr.shape[0] == 1 else sfr
    sfr = sfr / sfr.flatten(1).max(dim=1).values.view(-1, 1, 1)                         # L477
    if fp16_cast:
        sfr = sfr.to(torch.float16).to(torch.float32)                                   # L478
    return sfr.unsqueeze(1)                                                           # broadcast over heads


def last_block_attention(attn, y, base, n_patches, rcs_map=None, sfr=None,
                         rcs_weights=DEFAULT_RCS_WEIGHTS, sfr_weights=DEFAULT_SFR_WEIGHTS,
                         gaussian_std=5.0):
    """Attention weights (B, H, L, L) of the modified last block.  Mirrors custom_attn with
    use_custom_attn=True (L463-588); ``sfr`` is already prepared (B,1,L,L) (/max, fp16).

    naclip / 'resclip' (L473-494):  A = (k k^T) * scale
                                    if SFR: A = tau_s * ((1 - lam_s) * A + lam_s * SFR)     (pre-softmax)
                                    A = A + omega                                           (after SFR mix)
                                    A = softmax(A)
                                    if RCS: A = tau_r * ((1 - lam_r) * A + lam_r * RCS)     (post-softmax)
    sclip (L519-541):              Aq = (q q^T)*scale, Ak = (k k^T)*scale; SFR mixed into EACH of them
                                    (same formula); A = softmax(Aq) + softmax(Ak); RCS mix as above. No omega.
    clearclip (L543-563):          A = (q q^T)*scale; SFR mix; softmax; RCS mix.  No omega.
    vanilla (L565-585):            A = (q*scale) k^T; SFR mix; softmax; RCS mix.
    """
    attn_strategy, _ = _BASES[base]
    q, k, v, s = _qkv(attn, y)
    tau_s, lam_s = sfr_weights
    tau_r, lam_r = rcs_weights

    def mix_sfr(a):
        return a if sfr is None else tau_s * ((1 - lam_s) * a + lam_s * sfr)

    if attn_strategy == "resclip":
        a = mix_sfr((k @ k.transpose(-1, -2)) * s)
        a = a + naclip_neighbourhood_addition(*n_patches, std=gaussian_std).to(a.dtype)
        a = torch.softmax(a, dim=-1)
    elif attn_strategy == "sclip":
        qa = mix_sfr((q @ q.transpose(-1, -2)) * s)
        ka = mix_sfr((k @ k.transpose(-1, -2)) * s)
        a = torch.softmax(qa, dim=-1) + torch.softmax(ka, dim=-1)
    elif attn_strategy == "clearclip":
        a = torch.softmax(mix_sfr((q @ q.transpose(-1, -2)) * s), dim=-1)
    elif attn_strategy == "vanilla":
        a = torch.softmax(mix_sfr((q * s) @ k.transpose(-1, -2)), dim=-1)
    else:
        raise ValueError(base)
    if rcs_map is not None:
        a = tau_r * ((1 - lam_r) * a + lam_r * rcs_map)
    return a, v


def _last_block_tokens(model, x, attn_maps, n_patches, base, rcs, sfr_prepared, rcs_weights, sfr_weights,
                       gaussian_std, rcs_layers, arch=None):
    """Last block + ln_post + proj on all tokens -> (B, L, E).  Mirrors forward L349-367 and
    create_logit_temp L246-264 (identical except that the first pass passes no attn_sfr)."""
    vis = _visual(model)
    blk = vis.transformer.resblocks[-1]
    arch = arch or _BASES[base][1]
    rcs_map = rcs_attention_map(attn_maps, rcs_layers) if rcs else None
    a, v = last_block_attention(blk.attn, blk.ln_1(x), base, n_patches, rcs_map=rcs_map, sfr=sfr_prepared,
                                rcs_weights=rcs_weights, sfr_weights=sfr_weights, gaussian_std=gaussian_std)
    out = _attn_out(blk.attn, a, v)
    if arch == "w_resi":                                    # L350-355 / L247-250: residual + FFN kept (SCLIP / CLIP)
        x = x + getattr(blk, "ls_1", _identity)(out)
        x = x + getattr(blk, "ls_2", _identity)(blk.mlp(blk.ln_2(x)))
    elif arch == "wo_resi":                                 # L356-360 / L251-253: attention output only (NACLIP)
        x = out
    else:
        raise ValueError(arch)
    return vis.ln_post(x) @ vis.proj                        # L364-367 / L257-260 (return_all=True from the segmentor)


def resclip_features(model, crops: torch.Tensor, base: str = "naclip", rcs: bool = True, sfr_affinity=None,
                     rcs_weights=DEFAULT_RCS_WEIGHTS, sfr_weights=DEFAULT_SFR_WEIGHTS, gaussian_std: float = 5.0,
                     rcs_layers=(5, 6, 7, 8), arch: str | None = None, sfr_fp16_cast: bool = True,
                     normalize: bool = False, return_cls: bool = False) -> torch.Tensor:
    """ResCLIP image encoder for one pass -> patch features (B, gh, gw, E) = ln_post(x) @ proj, un-normalised
    (forward_feature normalises them afterwards, resclip_segmentor.py L77-78; set normalize=True for that).

    ``sfr_affinity``: None (first pass / no SFR) or the affinity from :func:`sfr_affinity` ((N,N) or with
    CLS (N+1,N+1), optionally batched); it is divided by its max and fp16-cast here, as custom_attn does.
    """
    x, attn_maps, (gh, gw) = encode_until_last_block(model, crops)
    B, L, _ = x.shape
    sfr = None if sfr_affinity is None else _prepare_sfr(sfr_affinity, B, L, sfr_fp16_cast)
    tokens = _last_block_tokens(model, x, attn_maps, (gh, gw), base, rcs, sfr, rcs_weights, sfr_weights,
                                gaussian_std, rcs_layers, arch)
    feats = tokens[:, 1:]
    if normalize:
        feats = feats / feats.norm(dim=-1, keepdim=True)
    feats = feats.reshape(B, gh, gw, -1)
    return (feats, tokens[:, 0]) if return_cls else feats


# ---------------------------------------------------------------------------------------------
# PAMR (NACLIP/SCLIP pamr.py, visinf/1-stage-wseg) -- used in the first pass
# ---------------------------------------------------------------------------------------------

_NEIGH8 = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]
_NEIGH9 = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]


def _shifts(x, dilations, offsets):
    """x (B, K, H, W) -> (B, K, P, H, W): value at (h + (a-1)d, w + (b-1)d) with replicate padding, for each
    dilation d (outer) and 3x3 offset (a, b) (inner) -- the order of LocalAffinity.forward."""
    B, K, H, W = x.shape
    out = []
    for d in dilations:
        xp = F.pad(x.reshape(B * K, 1, H, W), [d] * 4, mode="replicate")
        for a, b in offsets:
            out.append(xp[:, 0, a * d:a * d + H, b * d:b * d + W])
    return torch.stack(out, dim=1).reshape(B, K, -1, H, W)


def pamr(img: torch.Tensor, mask: torch.Tensor, num_iter: int = 10, dilations=(8, 16)) -> torch.Tensor:
    """PAMR(num_iter, dilations)(img, mask) of pamr.py:  mask resized (bilinear, align_corners=True) to img;
    affinity = softmax over the 8*len(d) neighbours of mean_K( -|x - x_n| / (1e-8 + 0.1 * std_9*len(d)) )
    (std unbiased over the 3x3 incl. centre, per dilation set); iterate mask = sum_n aff * mask_n."""
    mask = F.interpolate(mask, size=img.shape[-2:], mode="bilinear", align_corners=True)
    x = img.to(torch.float32)
    std = _shifts(x, dilations, _NEIGH9).std(2, keepdim=True)
    centre = x.unsqueeze(2)
    aff = -(centre - _shifts(x, dilations, _NEIGH8)).abs() / (1e-8 + 0.1 * std)
    aff = torch.softmax(aff.mean(1, keepdim=True), dim=2)
    for _ in range(num_iter):
        mask = (_shifts(mask, dilations, _NEIGH8) * aff).sum(2)
    return mask


# ---------------------------------------------------------------------------------------------
# 3. First pass -> patch labels
# ---------------------------------------------------------------------------------------------

def resclip_first_pass_probs(model, crop: torch.Tensor, text: torch.Tensor, base: str = "naclip",
                             rcs: bool = True, rcs_weights=DEFAULT_RCS_WEIGHTS, gaussian_std: float = 5.0,
                             rcs_layers=(5, 6, 7, 8), logit_scale: float = 40.0, pamr_steps: int = 10,
                             pamr_dilations=(8, 16), arch: str | None = None) -> torch.Tensor:
    """First-pass pixel probabilities (1, Q, H, W) over the Q text queries (names, incl. synonyms).

    Mirrors create_logit_temp (L242-290), run per crop (the crop that forward_feature receives):
      last block with RCS but WITHOUT SFR -> ln_post @ proj -> patch features L2-normalised (L267-268)
      -> cosine logits vs. text (L270, no scale) -> (1,Q,gh,gw) (L272-274) -> bilinear to crop size,
      align_corners=False (L275) -> PAMR(10, dilations=(8,16)) guided by the normalised crop (L279-284)
      -> softmax(logits * logit_scale, dim=queries) (L285-288).
    """
    feats = resclip_features(model, crop, base=base, rcs=rcs, sfr_affinity=None, rcs_weights=rcs_weights,
                             gaussian_std=gaussian_std, rcs_layers=rcs_layers, arch=arch, normalize=True)
    B, gh, gw, E = feats.shape
    logits = (feats.reshape(B, gh * gw, E) @ text.to(feats.dtype).T)
    logits = logits.permute(0, 2, 1).reshape(B, -1, gh, gw)
    logits = F.interpolate(logits, size=crop.shape[-2:], mode="bilinear", align_corners=False)
    if pamr_steps > 0:
        logits = pamr(crop, logits, num_iter=pamr_steps, dilations=pamr_dilations)
    return torch.softmax(logits * logit_scale, dim=1)


def patch_labels_from_probs(probs: torch.Tensor, temp_thd: float, patch_size: int = 16) -> torch.Tensor:
    """create_patch_matrix (L106-126): probs (1,Q,H,W) or (Q,H,W) ->
    pixel label = argmax over queries (L109); pixels whose max prob < temp_thd are set to label 0
    ("AdaThr", L111-115; i.e. merged into query 0, whatever query 0 is -- 'background' in voc21, the first
    class otherwise); then each non-overlapping patch_size x patch_size block (unfold, L119-122; remainder
    rows/cols dropped) gets ``torch.mode`` of its pixel labels (L124; on CPU ties -> smallest label).
    Labels are QUERY (name) indices -- synonyms of one class are different labels; no mapping to classes."""
    p = probs.squeeze(0) if probs.dim() == 4 else probs
    lab = p.argmax(0, keepdim=True)
    lab[p.max(0, keepdim=True)[0] < temp_thd] = 0
    lab = lab.squeeze(0)
    gh, gw = lab.shape[0] // patch_size, lab.shape[1] // patch_size
    blocks = lab.unfold(0, patch_size, patch_size).unfold(1, patch_size, patch_size).reshape(gh, gw, -1)
    return torch.mode(blocks, dim=-1)[0]


def resclip_first_pass_labels(model, crop: torch.Tensor, text: torch.Tensor, base: str = "naclip",
                              temp_thd: float = DEFAULT_TEMP_THD, **kw) -> torch.Tensor:
    """(gh, gw) long patch labels feeding SFR (first pass + create_patch_matrix)."""
    probs = resclip_first_pass_probs(model, crop, text, base=base, **kw)
    return patch_labels_from_probs(probs, temp_thd, _patch_size(_visual(model)))


# ---------------------------------------------------------------------------------------------
# 2. SFR affinity
# ---------------------------------------------------------------------------------------------

def sfr_valid_paths(patch_labels: torch.Tensor) -> torch.Tensor:
    """(N, N) bool, row i = start patch, col j = end patch; mirrors check_path (L130-148) exactly.

    steps(i,j) = Chebyshev distance max(|dr|, |dc|); M = max over ALL pairs (= max(gh, gw) - 1).
    Sample points use the GLOBAL M:  t_k = linspace(0, 1, M+1)[k],  p_k = round(start*(1-t_k) + end*t_k)
    (float32, round-half-to-even), for k = 0..steps(i,j) only.  So for a pair closer than M only the first
    steps/M fraction of the segment start->end is inspected (the end point itself is reached only when
    steps == M).  Valid iff label(p_k) == label(start) for all inspected k.
    """
    gh, gw = patch_labels.shape
    n = gh * gw
    idx = torch.arange(n)
    rows, cols = torch.div(idx, gw, rounding_mode="floor"), idx % gw
    start = torch.stack([rows, cols], -1).unsqueeze(1).expand(n, n, 2).reshape(-1, 2)   # i varies slowest
    end = torch.stack([rows, cols], -1).unsqueeze(0).expand(n, n, 2).reshape(-1, 2)
    steps = (end - start).abs().max(dim=1).values
    M = int(steps.max().item())
    t = torch.linspace(0, 1, steps=M + 1).view(1, -1, 1)
    pts = (start.unsqueeze(1) * (1 - t) + end.unsqueeze(1) * t).round().long()          # (P, M+1, 2)
    inspected = torch.arange(M + 1).unsqueeze(0) <= steps.unsqueeze(1)
    same = patch_labels[pts[..., 0], pts[..., 1]] == patch_labels[start[:, 0], start[:, 1]].unsqueeze(1)
    return (same | ~inspected).all(dim=1).view(n, n)


def sfr_affinity(patch_labels: torch.Tensor, gaussian_std: float = 5.0, delete_same_entity: bool = True,
                 with_cls: bool = False, max_normalize: bool = False) -> torch.Tensor:
    """ResCLIP's semantic-feedback affinity, generate_attention_sfr (L152-240), in its order:

    1. S[i,j] = 1 if label(i) == label(j) else 0 (row-major flattening, i = r*gw + c); diagonal = 1.
    2. if delete_same_entity: where NOT sfr_valid_paths(i,j):  S[i,j] *= exp(-steps(i,j) / M)
       (steps = Chebyshev distance, M = its max over all pairs).  (Applies to any pair, but only
       same-label pairs are non-zero.)
    3. 1-D Gaussian smoothing of EACH ROW along the flattened key index j (F.conv1d, zero padding):
       kernel_size = min(N, int(6*std + 1)) made odd (+1 if even) -> 31 for std 5;
       g[x] = exp(-x^2 / (2 std^2)), x = -(ks//2)..ks//2, normalised to sum 1.
    4. ReLU, then row normalisation S / (row_sum + 1e-8).
    5. (returned (1, N+1, N+1) with zero CLS row/col officially.)
    Later, in custom_attn (L477-478): divided by its GLOBAL max, cast to fp16 -- done by
    resclip_features, or here if max_normalize=True (no fp16 cast here).
    Returns (N, N) (or (N+1, N+1) with_cls).
    """
    gh, gw = patch_labels.shape
    n = gh * gw
    lab = patch_labels.reshape(-1)
    s = (lab.unsqueeze(1) == lab.unsqueeze(0)).to(torch.float32)                      # L172-173
    s.fill_diagonal_(1.0)                                                             # L176 (no-op here; CLS zeroed L177-178)
    if delete_same_entity:                                                            # L184-212
        valid = sfr_valid_paths(patch_labels)
        idx = torch.arange(n)
        r, c = torch.div(idx, gw, rounding_mode="floor"), idx % gw
        steps = torch.maximum((r.unsqueeze(1) - r.unsqueeze(0)).abs(), (c.unsqueeze(1) - c.unsqueeze(0)).abs())
        M = int(steps.max().item())
        s = torch.where(valid, s, s * torch.exp(-steps / M))
    ks = min(n, int(6 * gaussian_std + 1))                                            # L217-218
    ks = ks if ks % 2 == 1 else ks + 1
    xk = torch.arange(ks) - ks // 2                                                   # L220-222
    g = torch.exp(-(xk ** 2) / (2 * gaussian_std ** 2))
    g = g / g.sum()
    s = F.conv1d(s.unsqueeze(1), g.view(1, 1, -1), padding=ks // 2).squeeze(1)       # L225-230
    s = F.relu(s)                                                                     # L232
    s = s / (s.sum(dim=1, keepdim=True) + 1e-8)                                       # L233-234
    if with_cls:
        s = F.pad(s, (1, 0, 1, 0))                                                    # L237-238
    if max_normalize:
        s = s / s.max()
    return s


# ---------------------------------------------------------------------------------------------
# 5. Whole crop, both passes
# ---------------------------------------------------------------------------------------------

def resclip_crop_logits(model, crop: torch.Tensor, text: torch.Tensor, query_idx=None, base: str = "naclip",
                        rcs: bool = True, sfr: bool = True, rcs_weights=DEFAULT_RCS_WEIGHTS,
                        sfr_weights=DEFAULT_SFR_WEIGHTS, temp_thd: float = DEFAULT_TEMP_THD,
                        gaussian_std: float = 5.0, delete_same_entity: bool = True, logit_scale: float = 40.0,
                        rcs_layers=(5, 6, 7, 8), first_pass_pamr_steps: int = 10, pamr_dilations=(8, 16),
                        arch: str | None = None, sfr_fp16_cast: bool = True, upsample: bool = True,
                        return_aux: bool = False):
    """Per-crop output of ResCLIPSegmentation.forward_feature (resclip_segmentor.py L66-89): cosine logits
    (1, Q, H, W) per text query (NOT scaled, NOT softmaxed; bilinear-upsampled, align_corners=False), or
    (1, Q, gh, gw) with upsample=False.

    Pass 1 (create_logit_temp) -> patch labels (create_patch_matrix, L342) -> SFR affinity
    (generate_attention_sfr) -> pass 2: same encoder state x (blocks 0..10 are computed once, L318-323), last
    block with RCS + SFR.  ``query_idx`` (class of each query) is not used here: ResCLIP's crop logits and
    first-pass labels are per query/name; classes only appear in postprocess (see
    :func:`resclip_postprocess`).  crop: (1, 3, H, W) CLIP-normalised; text: (Q, E) unit rows.
    """
    vis = _visual(model)
    ps = _patch_size(vis)
    x, attn_maps, (gh, gw) = encode_until_last_block(model, crop)
    B, L, _ = x.shape
    aux = {}
    sfr_prep = None
    if sfr:
        # --- pass 1 (create_logit_temp): RCS but no SFR
        tok = _last_block_tokens(model, x, attn_maps, (gh, gw), base, rcs, None, rcs_weights, sfr_weights,
                                 gaussian_std, rcs_layers, arch)
        f = tok[:, 1:] / tok[:, 1:].norm(dim=-1, keepdim=True)
        lg = (f @ text.to(f.dtype).T).permute(0, 2, 1).reshape(B, -1, gh, gw)
        lg = F.interpolate(lg, size=crop.shape[-2:], mode="bilinear", align_corners=False)
        if first_pass_pamr_steps > 0:
            lg = pamr(crop, lg, num_iter=first_pass_pamr_steps, dilations=pamr_dilations)
        probs = torch.softmax(lg * logit_scale, dim=1)
        labels = patch_labels_from_probs(probs, temp_thd, ps)
        aff = sfr_affinity(labels, gaussian_std=gaussian_std, delete_same_entity=delete_same_entity)
        sfr_prep = _prepare_sfr(aff, B, L, sfr_fp16_cast)
        aux.update(first_pass_probs=probs, patch_labels=labels, sfr_affinity=aff)
    # --- pass 2 (forward L349-367) with RCS + SFR
    tok = _last_block_tokens(model, x, attn_maps, (gh, gw), base, rcs, sfr_prep, rcs_weights, sfr_weights,
                             gaussian_std, rcs_layers, arch)
    f = tok[:, 1:] / tok[:, 1:].norm(dim=-1, keepdim=True)                              # L77-78
    logits = (f @ text.to(f.dtype).T).permute(0, 2, 1).reshape(B, -1, gh, gw)          # L80-85
    if upsample:
        logits = F.interpolate(logits, size=crop.shape[-2:], mode="bilinear", align_corners=False)  # L87
    return (logits, aux) if return_aux else logits


def resclip_postprocess(seg_logits: torch.Tensor, query_idx, logit_scale: float = 40.0, prob_thd: float = 0.0):
    """postprocess_result (resclip_segmentor.py L164-194) for one image: seg_logits (Q, H, W) ->
    softmax(logits*logit_scale) over queries, per class max over its queries, argmax, pixels with max prob <
    prob_thd -> class 0.  Returns (pred (H, W) long, class probs (C, H, W) renormalised to sum 1)."""
    probs = torch.softmax(seg_logits * logit_scale, dim=0)
    qi = torch.as_tensor(query_idx, dtype=torch.long)
    n_cls = int(qi.max()) + 1
    if n_cls != len(qi):
        onehot = F.one_hot(qi).T.view(n_cls, len(qi), 1, 1).to(probs.dtype)
        probs = (probs.unsqueeze(0) * onehot).max(1)[0]
    pred = probs.argmax(0)
    pred[probs.max(0)[0] < prob_thd] = 0
    return pred, probs / probs.sum(0, keepdim=True)


if __name__ == "__main__":
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-quickgelu").eval()
    crop = torch.randn(1, 3, 224, 224)
    text = F.normalize(torch.randn(3, model.visual.output_dim), dim=-1)
    with torch.no_grad():
        x, maps, grid = encode_until_last_block(model, crop)
        print("residual before last block", tuple(x.shape), "attn maps", len(maps), tuple(maps[0].shape))
        print("rcs map", tuple(rcs_attention_map(maps).shape))
        for base in ("naclip", "sclip"):
            labels = resclip_first_pass_labels(model, crop, text, base=base, temp_thd=0.1)
            aff = sfr_affinity(labels)
            feats = resclip_features(model, crop, base=base, rcs=True, sfr_affinity=aff)
            logits, aux = resclip_crop_logits(model, crop, text, base=base, return_aux=True)
            print(base, "labels", tuple(labels.shape), labels.unique().tolist(), "sfr", tuple(aff.shape),
                  "rows sum", float(aff.sum(1).mean()), "features", tuple(feats.shape),
                  "crop logits", tuple(logits.shape))
        pred, probs = resclip_postprocess(logits[0], [0, 1, 2])
        print("postprocess", tuple(pred.shape), tuple(probs.shape))
        print("settings keys", list(resclip_settings()["datasets"]))
