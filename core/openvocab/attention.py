"""The last block's attention of the dense methods in open_clip's ViT: SCLIP's correlative self-attention,
NACLIP's neighbourhood attention, with ResCLIP's RCS and SFR mixing.

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


def neighbourhood_window(gh: int, gw: int, std: float = 5.0) -> torch.Tensor:
    """NACLIP's Gaussian addition to the attention logits, (1 + N, 1 + N) with N = gh·gw patches in row-major
    order: exp(−((i−k)² + (j−l)²) / (2·std²)) between patches (i, j) and (k, l), peak 1, not normalised nor
    truncated; zero in the class token's row and column."""
    i, j = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    pos = torch.stack([i.ravel(), j.ravel()], 1).double()
    d2 = torch.cdist(pos, pos).pow(2)
    out = torch.zeros(gh * gw + 1, gh * gw + 1)
    out[1:, 1:] = torch.exp(-d2 / (2 * std ** 2)).float()
    return out


def naclip_attention(attn, y: torch.Tensor, window: torch.Tensor, rcs_map: torch.Tensor | None = None,
                     rcs_tau: float = 2.0, rcs_lambda: float = 0.4, sfr_affinity: torch.Tensor | None = None,
                     sfr_tau: float = 1.8, sfr_lambda: float = 0.7) -> torch.Tensor:
    """NACLIP's attention, softmax(k·kᵀ·s + ω) applied to v, then the output projection. With ResCLIP's SFR
    the affinity is mixed into k·kᵀ·s before ω is added: τ·((1−λ)·logits + λ·S) + ω; with RCS the map is mixed
    in after the softmax: τ·((1−λ)·A + λ·A_rcs)."""
    _, k, v = heads_qkv(attn, y)
    a = k @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
    if sfr_affinity is not None:
        a = sfr_tau * ((1 - sfr_lambda) * a + sfr_lambda * sfr_affinity[:, None])
    a = torch.softmax(a + window.to(a), dim=-1)
    if rcs_map is not None:
        a = rcs_tau * ((1 - rcs_lambda) * a + rcs_lambda * rcs_map)
    return merge_heads(attn, a @ v)


def interpolate_positions(pos: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """Positional embeddings (1 + g², D) resized bicubically to a grid of (gh, gw) patches, as SCLIP's
    interpolate_pos_encoding does: scale factors ((gh + 0.1) / g, (gw + 0.1) / g), which also set where the
    bicubic kernel samples (not only the output size)."""
    cls, patches = pos[:1], pos[1:]
    g = int(math.isqrt(patches.shape[0]))
    if (g, g) == tuple(grid_hw):
        return pos
    grid = patches.reshape(1, g, g, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((grid_hw[0] + 0.1) / g, (grid_hw[1] + 0.1) / g), mode="bicubic",
                         align_corners=False)
    return torch.cat([cls, grid.permute(0, 2, 3, 1).reshape(-1, pos.shape[-1])], dim=0)


def sfr_affinity(patch_labels: torch.Tensor, std: float = 5.0, separate_entities: bool = True) -> torch.Tensor:
    """ResCLIP's semantic feedback (generate_attention_sfr): (B, gh, gw) patch labels -> (B, 1+N, 1+N), class
    token row and column zero, divided by its maximum.

    Per crop: 1 between patches of one label; with separate_entities, a pair whose straight path leaves the
    label is weighted exp(−steps / max steps) (Chebyshev steps; the path sampled at max steps + 1 points, only
    the first `steps` of them checked, as published); each row smoothed by a 1-D Gaussian along the flattened
    patch order (std `std`, zero padding); ReLU; rows normalised to sum 1."""
    b, gh, gw = patch_labels.shape
    n = gh * gw
    out = torch.zeros(b, n + 1, n + 1)
    r, c = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    pos = torch.stack([r.ravel(), c.ravel()], 1)  # (N, 2)
    steps = (pos[:, None] - pos[None]).abs().max(-1).values  # (N, N)
    top = int(steps.max())
    size = min(n, int(6 * std + 1))
    size += 1 - size % 2
    x = torch.arange(size, dtype=torch.float32) - size // 2
    kernel = torch.exp(-x ** 2 / (2 * std ** 2))
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    for i in range(b):
        lab = patch_labels[i].reshape(-1).cpu()
        same = (lab[:, None] == lab[None]).float()
        if separate_entities and top > 0:
            t = torch.linspace(0, 1, top + 1)
            start, end = pos[:, None, None].float(), pos[None, :, None].float()
            pts = torch.round(start * (1 - t[:, None]) + end * t[:, None]).long()  # (N, N, top + 1, 2)
            on_label = lab[pts[..., 0] * gw + pts[..., 1]] == lab[:, None, None]
            checked = torch.arange(top + 1) <= steps[..., None]
            joined = (on_label | ~checked).all(-1)
            same = torch.where(joined, same, same * torch.exp(-steps.float() / top))
        smooth = F.relu(F.conv1d(same[:, None], kernel, padding=size // 2)[:, 0])
        smooth = smooth / (smooth.sum(-1, keepdim=True) + 1e-8)
        out[i, 1:, 1:] = smooth
        out[i] = out[i] / out[i].max().clamp_min(1e-12)
    return out


def patch_mode(labels: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, h, w) pixel labels -> (B, h // patch, w // patch): each patch's most frequent label (ties: the
    smallest), the remainder rows and columns dropped."""
    b, h, w = labels.shape
    gh, gw = h // patch, w // patch
    blocks = labels[:, : gh * patch, : gw * patch].reshape(b, gh, patch, gw, patch).permute(0, 1, 3, 2, 4)
    return torch.mode(blocks.reshape(b, gh, gw, -1), dim=-1).values
