"""SCLIP dense prediction on open_clip ViT-B/16: correlative self-attention in the last block, 80-template
text embeddings, sliding-window inference; ResCLIP's RCS/SFR, PAMR and CRF as switches."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import BadInput
from core.openvocab.class_names import ClassList
from core.openvocab.text import text_embeddings
from core.models.openclip import OpenClip
from core.openvocab.attention import (csa_attention, interpolate_positions, naclip_attention, neighbourhood_window,
                                      patch_mode, sfr_affinity, vanilla_attention_map)


@dataclass(frozen=True)
class DenseConfig:
    method: str = "sclip"  # "sclip" (correlative self-attention) or "naclip" (neighbourhood attention, no residual)
    short_side: int = 336  # mmcv keep-ratio resize to scale (long_side, short_side): the smaller factor wins
    long_side: int = 2048
    crop: int = 224
    stride: int = 112
    logit_scale: float = 40.0
    prob_thd: float = 0.0  # pixels whose best class probability is lower become class 0 (background)
    area_thd: float | None = None  # classes 1.. whose share of the non-background pixels is not above it are dropped
    pamr: bool = False
    pamr_iters: int = 10
    pamr_dilations: tuple[int, ...] = (8, 16)
    naclip_std: float = 5.0  # NACLIP's Gaussian neighbourhood window, in patches
    rcs: bool = False
    rcs_layers: tuple[int, ...] = (6, 7, 8, 9)  # 1-based block numbers
    rcs_tau: float = 2.0
    rcs_lambda: float = 0.4
    sfr: bool = False  # ResCLIP's (tau, lambda, temp_thd) defaults: its COCO-Stuff / COCO-Object configuration
    sfr_tau: float = 1.8
    sfr_lambda: float = 0.7
    sfr_temp_thd: float = 0.11  # first-pass pixels less confident than this take name 0
    sfr_std: float = 5.0  # the 1-D Gaussian that smooths each affinity row
    crf: bool = False
    loftup: str | None = None  # a local LoftUp checkpoint; never downloaded
    batch_crops: int = 32


METHODS = {"sclip": "SCLIP (wangf3014/SCLIP): correlative self-attention in the last block",
           "naclip": "NACLIP (sinahmr/NACLIP): k·kᵀ attention plus a Gaussian neighbourhood window, last block "
                     "without residual and feed-forward"}


def variant_label(cfg: DenseConfig) -> str:
    """What ran, as the dashboard pairs it with published rows: 'NACLIP + ResCLIP (RCS, SFR)', 'SCLIP + PAMR'."""
    name = {"sclip": "SCLIP", "naclip": "NACLIP"}.get(cfg.method, cfg.method)
    resclip = [part for part, on in (("RCS", cfg.rcs), ("SFR", cfg.sfr)) if on]
    if resclip:
        name += f" + ResCLIP ({', '.join(resclip)})"
    return name + (" + PAMR" if cfg.pamr else "") + (" + DenseCRF" if cfg.crf else "")


@dataclass
class DenseResult:
    """labels at the image's size; probabilities and confidence at the working resolution (the resized image);
    `full` answers full-resolution questions band by band (class_probability) without a classes × H × W array."""

    labels: np.ndarray  # (H, W) int32 class index
    make_probs: object  # () -> (C, h, w) float32 per-class probability (best synonym), working resolution
    seconds: float
    ran: list[str] = field(default_factory=list)  # what ran, with the variant
    full: object = None  # FullResolution or TiledScores
    features: np.ndarray | None = None  # (gh, gw, E) dense patch features on the resized image's grid, when asked
    text: np.ndarray | None = None  # (C, E) unit class text embeddings (synonyms averaged), when asked
    _probs: np.ndarray | None = field(default=None, repr=False)

    @property
    def probs(self) -> np.ndarray:
        """(C, h, w) float32 per-class probability (best synonym) at the working resolution, computed when first
        asked (the labels never need it)."""
        if self._probs is None:
            self._probs = np.asarray(self.make_probs(), np.float32)
        return self._probs

    @property
    def confidence(self) -> np.ndarray:
        """(h, w) best class probability at the working resolution."""
        return self.probs.max(0)


class SCLIPPredictor:
    """Stage object over a loaded OpenClip; every forward of one image batches its crops."""

    def __init__(self, clip: OpenClip):
        self.c = clip
        self.model = clip.model

    def text_embeddings(self, names: list[str]) -> torch.Tensor:
        """(len(names), E) unit vectors: each name through the 80 OpenAI ImageNet templates (cached)."""
        return text_embeddings(self.c, names)

    # --- image --------------------------------------------------------------
    def encode_to_last_block(self, crops: torch.Tensor, cfg: DenseConfig):
        """(B, 3, h, w) normalised crops -> tokens before the last block (B, 1+N, D), ResCLIP's RCS map (the mean
        of the chosen blocks' softmax attention, per head, class token included) or None, and the grid."""
        v = self.model.visual
        x = v.conv1(crops.to(self.c.device, dtype=v.conv1.weight.dtype))
        gh, gw = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + interpolate_positions(v.positional_embedding, (gh, gw)).to(x.dtype)
        x = v.ln_pre(x)
        rcs_idx = {i - 1 for i in cfg.rcs_layers} if cfg.rcs else set()
        rcs_maps = []
        for i, blk in enumerate(v.transformer.resblocks[:-1]):
            if i in rcs_idx:
                rcs_maps.append(vanilla_attention_map(blk.attn, blk.ln_1(x)))
            x = blk(x)
        return x, (torch.stack(rcs_maps).mean(0) if rcs_maps else None), (gh, gw)

    def last_block_features(self, x: torch.Tensor, grid: tuple[int, int], cfg: DenseConfig,
                            rcs_map: torch.Tensor | None = None, sfr: torch.Tensor | None = None) -> torch.Tensor:
        """The method's last block on tokens x -> (B, gh, gw, E) L2-normalised patch features."""
        v = self.model.visual
        last = v.transformer.resblocks[-1]
        w = dict(rcs_map=rcs_map, rcs_tau=cfg.rcs_tau, rcs_lambda=cfg.rcs_lambda,
                 sfr_affinity=None if sfr is None else sfr.to(x), sfr_tau=cfg.sfr_tau, sfr_lambda=cfg.sfr_lambda)
        if cfg.method == "naclip":  # no residual, no feed-forward ('wo_resi' / 'reduced')
            x = naclip_attention(last.attn, last.ln_1(x), neighbourhood_window(*grid, cfg.naclip_std), **w)
        else:
            x = x + csa_attention(last.attn, last.ln_1(x), **w)
            x = x + last.mlp(last.ln_2(x))
        x = v.ln_post(x) @ v.proj
        return F.normalize(x[:, 1:].float(), dim=-1).reshape(x.shape[0], *grid, -1)

    def crop_features(self, crops: torch.Tensor, cfg: DenseConfig, text: torch.Tensor | None = None):
        """(B, 3, h, w) normalised crops -> (B, gh, gw, E) L2-normalised patch features and the patch size.

        With cfg.sfr (ResCLIP), a first pass per crop (RCS, no SFR) gives per-name logits, upsampled to the crop,
        refined by PAMR (10 iterations, dilations 8 and 16, guided by the crop), softmax × logit scale; pixels below
        sfr_temp_thd take name 0; each patch's most frequent name becomes its label, and the last block runs again
        with the affinity of those labels."""
        p = self.model.visual.conv1.kernel_size[0]
        x, rcs_map, grid = self.encode_to_last_block(crops, cfg)
        if not cfg.sfr:
            return self.last_block_features(x, grid, cfg, rcs_map), p
        from core.openvocab.refine import pamr

        first = (self.last_block_features(x, grid, cfg, rcs_map) @ text.T.to(x)).permute(0, 3, 1, 2).float().cpu()
        first = F.interpolate(first, size=crops.shape[-2:], mode="bilinear", align_corners=False)
        labels = []
        for crop, logits in zip(crops, first):
            probs = torch.softmax(pamr(crop[None].float(), logits[None], 10, (8, 16))[0] * cfg.logit_scale, 0)
            best, name = probs.max(0)
            labels.append(torch.where(best < cfg.sfr_temp_thd, 0, name))
        sfr = sfr_affinity(patch_mode(torch.stack(labels), p), cfg.sfr_std)
        return self.last_block_features(x, grid, cfg, rcs_map, sfr), p

    def preprocess(self, image: np.ndarray, cfg: DenseConfig) -> torch.Tensor:
        """SCLIP's test pipeline: mmcv keep-ratio resize (bilinear, no antialiasing), normalised (3, h, w)."""
        small = resize_keep_ratio(image, cfg.short_side, cfg.long_side)
        return normalise(small, self.c.mean, self.c.std)

    @staticmethod
    def windows(h: int, w: int, crop: int, stride: int) -> list[tuple[int, int, int, int]]:
        """SCLIP's sliding windows: full crops shifted back inside the image at the edges."""
        out = []
        nh = max(h - crop + stride - 1, 0) // stride + 1
        nw = max(w - crop + stride - 1, 0) // stride + 1
        for i in range(nh):
            for j in range(nw):
                y1, x1 = i * stride, j * stride
                y2, x2 = min(y1 + crop, h), min(x1 + crop, w)
                out.append((max(y2 - crop, 0), max(x2 - crop, 0), y2, x2))
        return out

    @torch.inference_mode()
    def slide_logits(self, img: torch.Tensor, text: torch.Tensor, cfg: DenseConfig,
                     features: list | None = None) -> torch.Tensor:
        """Cosine similarities (names, H, W) at the resized image's size, overlapping crops averaged. With a list
        given as `features`, it receives the patch features on the resized image's patch grid (gh, gw, E), each
        patch the normalised mean of the crops' features that fall on it (a crop placed at the patch nearest its
        corner)."""
        _, h, w = img.shape
        p = self.model.visual.conv1.kernel_size[0]
        grid, hits = None, torch.zeros(max(h // p, 1), max(w // p, 1), 1)
        wins = self.windows(h, w, cfg.crop, cfg.stride)
        acc = torch.zeros(text.shape[0], h, w)
        count = torch.zeros(1, h, w)
        by_shape: dict[tuple[int, int], list] = {}
        for win in wins:
            by_shape.setdefault((win[2] - win[0], win[3] - win[1]), []).append(win)
        for (ch, cw), group in by_shape.items():
            for i in range(0, len(group), cfg.batch_crops):
                part = group[i:i + cfg.batch_crops]
                crops = torch.stack([img[:, y1:y2, x1:x2] for y1, x1, y2, x2 in part])
                feats, _ = self.crop_features(crops, cfg, text)
                if features is not None:
                    grid = torch.zeros(*hits.shape[:2], feats.shape[-1]) if grid is None else grid
                    for (y1, x1, _, _), f in zip(part, feats.float().cpu()):
                        gy = min(round(y1 / p), grid.shape[0] - f.shape[0])
                        gx = min(round(x1 / p), grid.shape[1] - f.shape[1])
                        grid[gy:gy + f.shape[0], gx:gx + f.shape[1]] += f
                        hits[gy:gy + f.shape[0], gx:gx + f.shape[1]] += 1
                sims = (feats @ text.T.to(feats)).permute(0, 3, 1, 2).float().cpu()
                sims = F.interpolate(sims, size=(ch, cw), mode="bilinear", align_corners=False)
                for (y1, x1, y2, x2), s in zip(part, sims):
                    acc[:, y1:y2, x1:x2] += s
                    count[:, y1:y2, x1:x2] += 1
        if features is not None:
            features.append(F.normalize(grid / hits.clamp_min(1), dim=-1))
        return acc / count

    def predict(self, image: np.ndarray, classes: ClassList, cfg: DenseConfig = DenseConfig(),
                keep_features: bool = False) -> DenseResult:
        """Labels at the image's size and probabilities at the working resolution; with keep_features, the dense
        patch features (gh, gw, E) and the class text embeddings too (for MHQR's refinement and merging)."""
        from core.openvocab.full_resolution import FullResolution, TiledScores, published_labels
        from core.openvocab.refine import PAMR_TILE, check_loftup, crf_scores, pamr_tiles

        if cfg.method not in METHODS:
            raise BadInput(f"Unknown dense method '{cfg.method}' (choose {', '.join(METHODS)}).")
        check_loftup(cfg)
        t0 = time.perf_counter()
        ran = [cfg.method]
        text = self.text_embeddings(classes.names)
        small = resize_keep_ratio(image, cfg.short_side, cfg.long_side)
        img = normalise(small, self.c.mean, self.c.std)
        feats = [] if keep_features else None
        sims = self.slide_logits(img, text, cfg, feats)
        if cfg.rcs:
            ran.append(f"rcs(τ {cfg.rcs_tau}, λ {cfg.rcs_lambda}, blocks {list(cfg.rcs_layers)})")
        if cfg.sfr:
            ran.append(f"sfr(τ {cfg.sfr_tau}, λ {cfg.sfr_lambda}, temp_thd {cfg.sfr_temp_thd}, std {cfg.sfr_std}; "
                       "first pass per crop with PAMR)")
        scores = sims * cfg.logit_scale
        del sims
        owner = torch.tensor(classes.name_to_class)
        named = scores
        probs = lambda: names_to_classes(torch.softmax(named, 0), classes).numpy()
        size = image.shape[:2]
        if cfg.crf:
            scores, what = crf_scores(small, torch.from_numpy(probs()))
            owner = torch.arange(classes.n)
            ran.append(what)
        if cfg.pamr:
            full = TiledScores(pamr_tiles(img, scores, size, cfg.pamr_iters, cfg.pamr_dilations), owner, size,
                               PAMR_TILE)
            ran.append(f"pamr({cfg.pamr_iters} iters, dilations {list(cfg.pamr_dilations)}, full resolution)")
        else:
            full = FullResolution(scores, owner, size)
        labels = published_labels(full, classes.n, cfg.area_thd, cfg.prob_thd)
        res = DenseResult(labels.numpy().astype(np.int32), probs, time.perf_counter() - t0, ran, full)
        if keep_features:
            res.features = feats[0].numpy()
            of = torch.tensor(classes.name_to_class)
            res.text = F.normalize(torch.stack([text[of == c].mean(0) for c in range(classes.n)]), dim=-1).numpy()
        return res


def resize_keep_ratio(image: np.ndarray, short_side: int, long_side: int = 2048) -> np.ndarray:
    """mmcv's Resize(scale=(long_side, short_side), keep_ratio=True) as SCLIP's pipeline runs it: the factor
    min(long_side / long, short_side / short), sizes int(x · f + 0.5), cv2 bilinear on the uint8 image."""
    import cv2

    h, w = image.shape[:2]
    f = min(long_side / max(h, w), short_side / min(h, w))
    nw, nh = int(w * f + 0.5), int(h * f + 0.5)
    if min(nw, nh) < PATCH:
        raise BadInput(f"The image is {w}×{h}: resized to a long side of at most {long_side} its short side "
                       f"would be {min(nw, nh)} pixels, less than one {PATCH}-pixel patch. Crop it to a less "
                       "extreme shape.")
    return cv2.resize(np.ascontiguousarray(image), (nw, nh), interpolation=cv2.INTER_LINEAR)


def normalise(small: np.ndarray, mean, std) -> torch.Tensor:
    """(h, w, 3) uint8 -> (3, h, w) float32 with CLIP's mean and std on the 0-255 scale, to the three decimals
    SCLIP's data preprocessor uses (122.771, 116.746, 104.094 / 68.501, 66.632, 70.323)."""
    m = np.round(np.asarray(mean, np.float64) * 255, 3).astype(np.float32)
    sd = np.round(np.asarray(std, np.float64) * 255, 3).astype(np.float32)
    return torch.from_numpy(((small.astype(np.float32) - m) / sd).transpose(2, 0, 1).copy())


PATCH = 16


def names_to_classes(probs_names: torch.Tensor, classes: ClassList) -> torch.Tensor:
    """(names, H, W) -> (classes, H, W): the max over each class's synonyms."""
    if len(classes.names) == classes.n:
        return probs_names
    owner = torch.tensor(classes.name_to_class)[:, None].expand(-1, probs_names[0].numel())
    out = torch.full((classes.n, probs_names[0].numel()), -torch.inf, dtype=probs_names.dtype)
    return out.scatter_reduce_(0, owner, probs_names.reshape(len(owner), -1), "amax").reshape(classes.n,
                                                                                           *probs_names.shape[1:])
