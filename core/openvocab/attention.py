"""SCLIP's correlative self-attention in open_clip's ViT, with ResCLIP's RCS and SFR mixing.

Shapes: tokens (B, N, D) with the class token first; attention maps (B, H, N, N)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def heads_qkv(attn: torch.nn.MultiheadAttention, y: torch.Tensor):
    """q, k, v of an open_clip attention layer, split into heads: each (B, H, N, hd)."""
    b, n, d = y.shape
    h = attn.num_heads
    q, k, v = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    split = lambda t: t.reshape(b, n, h, d // h).transpose(1, 2)
    return split(q), split(k), split(v)


def merge_heads(attn: torch.nn.MultiheadAttention, out: torch.Tensor) -> torch.Tensor:
    b, h, n, hd = out.shape
    return F.linear(out.transpose(1, 2).reshape(b, n, h * hd), attn.out_proj.weight, attn.out_proj.bias)


def vanilla_attention_map(attn, y: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ s): the map the block itself uses."""
    q, k, _ = heads_qkv(attn, y)
    return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)


def vanilla_attention(attn, y: torch.Tensor) -> torch.Tensor:
    q, k, v = heads_qkv(attn, y)
    return merge_heads(attn, torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1) @ v)


def csa_attention(attn, y: torch.Tensor, rcs_map: torch.Tensor | None = None, rcs_tau: float = 2.0,
                  rcs_lambda: float = 0.4, sfr_affinity: torch.Tensor | None = None, sfr_tau: float = 1.8,
                  sfr_lambda: float = 0.7) -> torch.Tensor:
    """softmax(q qᵀ s) + softmax(k kᵀ s), applied to v, then the output projection.

    sfr_affinity (B, N, N), when given, is mixed into both logit maps before the softmax:
    τ·((1−λ)·logits + λ·S). rcs_map (B, H, N, N), when given, is mixed into the summed map after it:
    τ·((1−λ)·A + λ·A_rcs)."""
    q, k, v = heads_qkv(attn, y)
    s = q.shape[-1] ** -0.5
    qq, kk = q @ q.transpose(-2, -1) * s, k @ k.transpose(-2, -1) * s
    if sfr_affinity is not None:
        aff = sfr_affinity[:, None]
        qq = sfr_tau * ((1 - sfr_lambda) * qq + sfr_lambda * aff)
        kk = sfr_tau * ((1 - sfr_lambda) * kk + sfr_lambda * aff)
    a = torch.softmax(qq, dim=-1) + torch.softmax(kk, dim=-1)
    if rcs_map is not None:
        a = rcs_tau * ((1 - rcs_lambda) * a + rcs_lambda * rcs_map)
    return merge_heads(attn, a @ v)


def interpolate_positions(pos: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """Positional embeddings (1 + g², D) resized bicubically to a grid of (gh, gw) patches."""
    cls, patches = pos[:1], pos[1:]
    g = int(math.isqrt(patches.shape[0]))
    if (g, g) == tuple(grid_hw):
        return pos
    grid = patches.reshape(1, g, g, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=grid_hw, mode="bicubic", align_corners=False)
    return torch.cat([cls, grid.permute(0, 2, 3, 1).reshape(-1, pos.shape[-1])], dim=0)


def sfr_affinity(patch_labels: torch.Tensor, sigma: float = 1.0, unconnected_weight: float = 0.5) -> torch.Tensor:
    """ResCLIP's semantic feedback: (B, gh, gw) patch labels -> (B, 1+N, 1+N) affinity (class token row and
    column zero). Same-class patches attend to each other with a Gaussian-smoothed, ReLU'd, row-normalised
    weight, down-weighted where the two patches lie in different connected regions of their class."""
    from scipy import ndimage

    b, gh, gw = patch_labels.shape
    n = gh * gw
    out = torch.zeros(b, n + 1, n + 1)
    for i in range(b):
        labels = patch_labels[i].cpu().numpy()
        aff = torch.zeros(n, n)
        for c in set(labels.ravel().tolist()):
            mask = labels == c
            comps, _ = ndimage.label(mask)
            smooth = torch.from_numpy(ndimage.gaussian_filter(mask.astype("float32"), sigma)).clamp_min(0).ravel()
            members = torch.from_numpy(mask.ravel()).nonzero().ravel()
            comp = torch.from_numpy(comps.ravel())
            row = smooth * torch.from_numpy(mask.ravel()).float()
            for j in members.tolist():
                w = torch.where(comp == comp[j], 1.0, unconnected_weight)
                aff[j] = row * w
        aff = F.relu(aff)
        aff = aff / aff.sum(-1, keepdim=True).clamp_min(1e-6)
        out[i, 1:, 1:] = aff
    return out
