"""SCLIP dense prediction on open_clip ViT-B/16: correlative self-attention in the last block, 80-template
text embeddings, sliding-window inference; ResCLIP's RCS/SFR, PAMR and CRF as switches."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.openvocab.class_names import ClassList
from core.models.openclip import OpenClip
from core.openvocab.attention import csa_attention, interpolate_positions, sfr_affinity, vanilla_attention_map


@dataclass(frozen=True)
class DenseConfig:
    short_side: int = 336
    crop: int = 224
    stride: int = 112
    logit_scale: float = 40.0
    prob_thd: float = 0.0  # pixels whose best class probability is lower become class 0 (background)
    area_thd: float | None = None  # classes covering less than this fraction of the image are dropped
    pamr: bool = False
    pamr_iters: int = 10
    pamr_dilations: tuple[int, ...] = (8, 16)
    rcs: bool = False
    rcs_layers: tuple[int, ...] = (6, 7, 8, 9)  # 1-based block numbers
    rcs_tau: float = 2.0
    rcs_lambda: float = 0.4
    sfr: bool = False
    sfr_tau: float = 1.8
    sfr_lambda: float = 0.7
    crf: bool = False
    loftup: str | None = None  # a local LoftUp checkpoint; never downloaded
    batch_crops: int = 32


@dataclass
class DenseResult:
    labels: np.ndarray  # (H, W) int32 class index
    probs: np.ndarray  # (C, H, W) float32 per-class probability (max over synonyms)
    seconds: float
    ran: list[str] = field(default_factory=list)  # refinements that ran, with the variant


TEMPLATES_CHUNK = 256


class SCLIPPredictor:
    """Stage object over a loaded OpenClip; every forward of one image batches its crops."""

    def __init__(self, clip: OpenClip):
        self.c = clip
        self.model = clip.model

    # --- text ---------------------------------------------------------------
    @torch.inference_mode()
    def text_embeddings(self, names: list[str]) -> torch.Tensor:
        """(len(names), E): each name through the 80 OpenAI ImageNet templates, normalised, averaged, normalised."""
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES as T

        if not self.c.text_cache:
            self._load_disk_cache()
        missing = [n for n in dict.fromkeys(names) if n not in self.c.text_cache]
        if missing:
            prompts = [t(n) for n in missing for t in T]
            feats = []
            for i in range(0, len(prompts), TEMPLATES_CHUNK):
                tok = self.c.tokenizer(prompts[i:i + TEMPLATES_CHUNK]).to(self.c.device)
                feats.append(F.normalize(encode_text_trimmed(self.model, tok).float(), dim=-1))
            per_name = torch.cat(feats).reshape(len(missing), len(T), -1).mean(1)
            with self.c.text_lock:
                for n, e in zip(missing, F.normalize(per_name, dim=-1)):
                    self.c.text_cache[n] = e
                while len(self.c.text_cache) > 4096:
                    self.c.text_cache.popitem(last=False)
            self._save_disk_cache()
        return torch.stack([self.c.text_cache[n] for n in names])

    def _disk_cache_path(self):
        """One file per set of text weights, so a class name is encoded once per machine, not per process."""
        import hashlib

        from core.models import cache_dir

        proj = self.model.text_projection
        w = proj.weight if isinstance(proj, torch.nn.Linear) else proj
        digest = hashlib.sha1(w.detach().float().cpu().numpy().tobytes()).hexdigest()[:16]
        return cache_dir() / "text_embeddings" / f"{digest}.pt"

    def _load_disk_cache(self) -> None:
        path = self._disk_cache_path()
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else {}
        except Exception:  # a damaged cache file is rebuilt, never fatal
            stored = {}
        with self.c.text_lock:
            for n, e in stored.items():
                self.c.text_cache.setdefault(n, e.to(self.c.device))

    def _save_disk_cache(self) -> None:
        import os

        path = self._disk_cache_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            with self.c.text_lock:
                torch.save({n: e.cpu() for n, e in self.c.text_cache.items()}, tmp)
            os.replace(tmp, path)
        except OSError:  # a read-only disk only costs speed
            pass

    # --- image --------------------------------------------------------------
    def crop_features(self, crops: torch.Tensor, cfg: DenseConfig, patch_labels: torch.Tensor | None = None):
        """(B, 3, h, w) normalised crops -> (B, gh, gw, E) L2-normalised patch features."""
        v = self.model.visual
        p = v.conv1.kernel_size[0]
        x = v.conv1(crops.to(self.c.device, dtype=v.conv1.weight.dtype))
        gh, gw = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + interpolate_positions(v.positional_embedding, (gh, gw)).to(x.dtype)
        x = v.ln_pre(x)
        blocks = v.transformer.resblocks
        rcs_idx = {i - 1 for i in cfg.rcs_layers} if cfg.rcs else set()
        rcs_maps = []
        for i, blk in enumerate(blocks[:-1]):
            if i in rcs_idx:
                rcs_maps.append(vanilla_attention_map(blk.attn, blk.ln_1(x)))
            x = blk(x)
        last = blocks[-1]
        rcs_map = torch.stack(rcs_maps).mean(0) if rcs_maps else None
        aff = sfr_affinity(patch_labels).to(x) if patch_labels is not None else None
        x = x + csa_attention(last.attn, last.ln_1(x), rcs_map, cfg.rcs_tau, cfg.rcs_lambda, aff, cfg.sfr_tau,
                              cfg.sfr_lambda)
        x = x + last.mlp(last.ln_2(x))
        x = v.ln_post(x) @ v.proj
        feats = F.normalize(x[:, 1:].float(), dim=-1)
        return feats.reshape(x.shape[0], gh, gw, -1), p

    MAX_LONG_SIDE = 4096

    def preprocess(self, image: np.ndarray, short_side: int) -> torch.Tensor:
        from core.errors import BadInput

        h, w = image.shape[:2]
        scale = short_side / min(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        if max(size) > self.MAX_LONG_SIDE:
            raise BadInput(f"The image is {w}×{h}: at a short side of {short_side} its long side would be "
                           f"{max(size)} pixels (limit {self.MAX_LONG_SIDE}). Crop it to a less extreme shape.")
        arr = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC), np.float32) / 255.0
        arr = (arr - np.asarray(self.c.mean, np.float32)) / np.asarray(self.c.std, np.float32)
        return torch.from_numpy(arr.transpose(2, 0, 1).copy())

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
                     labels_hint: torch.Tensor | None = None) -> torch.Tensor:
        """Cosine similarities (names, H, W) at the resized image's size, overlapping crops averaged."""
        _, h, w = img.shape
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
                hint = None
                if labels_hint is not None:
                    p = self.model.visual.conv1.kernel_size[0]
                    hint = torch.stack([patch_majority(labels_hint[y1:y2, x1:x2], p) for y1, x1, y2, x2 in part])
                feats, _ = self.crop_features(crops, cfg, hint)
                sims = (feats @ text.T.to(feats)).permute(0, 3, 1, 2).float().cpu()
                sims = F.interpolate(sims, size=(ch, cw), mode="bilinear", align_corners=False)
                for (y1, x1, y2, x2), s in zip(part, sims):
                    acc[:, y1:y2, x1:x2] += s
                    count[:, y1:y2, x1:x2] += 1
        return acc / count

    def predict(self, image: np.ndarray, classes: ClassList, cfg: DenseConfig = DenseConfig()) -> DenseResult:
        from core.openvocab.refine import refine_logits, refine_probabilities

        t0 = time.perf_counter()
        ran = []
        text = self.text_embeddings(classes.names)
        img = self.preprocess(image, cfg.short_side)
        sims = self.slide_logits(img, text, cfg)
        if cfg.sfr:
            first = names_to_classes(torch.softmax(sims * cfg.logit_scale, 0), classes).argmax(0)
            sims = self.slide_logits(img, text, cfg, labels_hint=first)
            ran.append("sfr")
        if cfg.rcs:
            ran.append("rcs")
        h, w = image.shape[:2]
        logits = F.interpolate(sims[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        logits, more = refine_logits(image, logits, cfg)
        ran += more
        probs_names = torch.softmax(logits * cfg.logit_scale, 0)
        probs = names_to_classes(probs_names, classes)
        probs, more = refine_probabilities(image, probs, cfg)
        ran += more
        labels = probs.argmax(0)
        if cfg.area_thd is not None and classes.n > 1:
            area = torch.bincount(labels.ravel(), minlength=classes.n).float() / labels.numel()
            keep = area >= cfg.area_thd
            keep[0] = True
            labels = (probs * keep[:, None, None]).argmax(0)
        if cfg.prob_thd > 0:
            labels[probs.max(0).values < cfg.prob_thd] = 0
        return DenseResult(labels.numpy().astype(np.int32), probs.numpy().astype(np.float32),
                           time.perf_counter() - t0, ran)


def encode_text_trimmed(model, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's encode_text on only as many positions as the longest prompt uses.

    The text transformer is causal and pools at the end-of-text token, so the padding after it never reaches
    the output: cutting it gives the same features for a fraction of the work (templates are ~15 of 77 tokens)."""
    if getattr(model, "text_pool_type", "argmax") != "argmax" or getattr(model, "attn_mask", None) is None:
        return model.encode_text(tokens)
    n = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :n]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:n].to(cast)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    proj = model.text_projection
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


def names_to_classes(probs_names: torch.Tensor, classes: ClassList) -> torch.Tensor:
    """(names, H, W) -> (classes, H, W): the max over each class's synonyms."""
    owner = torch.tensor(classes.name_to_class)
    out = torch.full((classes.n, *probs_names.shape[1:]), -torch.inf)
    for c in range(classes.n):
        out[c] = probs_names[owner == c].max(0).values
    return out


def patch_majority(labels: torch.Tensor, patch: int) -> torch.Tensor:
    """(h, w) pixel labels -> (h // patch, w // patch) majority label of each patch's pixels."""
    gh, gw = labels.shape[0] // patch, labels.shape[1] // patch
    blocks = labels[: gh * patch, : gw * patch].reshape(gh, patch, gw, patch).permute(0, 2, 1, 3).reshape(gh, gw, -1)
    return torch.mode(blocks, dim=-1).values
