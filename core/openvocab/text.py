"""Text side of the dense methods: every class name through OpenAI's 80 ImageNet templates, each prompt's
embedding normalised, averaged per name and normalised again; cached per process and per machine."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.models.openclip import OpenClip

TEMPLATES_CHUNK = 256


@torch.inference_mode()
def text_embeddings(c: OpenClip, names: list[str]) -> torch.Tensor:
    """(len(names), E): each name through the 80 OpenAI ImageNet templates, normalised, averaged, normalised."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES as T

    if not c.text_cache:
        _load_disk_cache(c)
    missing = [n for n in dict.fromkeys(names) if n not in c.text_cache]
    if missing:
        prompts = [t(n) for n in missing for t in T]
        feats = []
        for i in range(0, len(prompts), TEMPLATES_CHUNK):
            tok = c.tokenizer(prompts[i:i + TEMPLATES_CHUNK]).to(c.device)
            feats.append(F.normalize(encode_text_trimmed(c.model, tok).float(), dim=-1))
        per_name = torch.cat(feats).reshape(len(missing), len(T), -1).mean(1)
        with c.text_lock:
            for n, e in zip(missing, F.normalize(per_name, dim=-1)):
                c.text_cache[n] = e
            while len(c.text_cache) > 4096:
                c.text_cache.popitem(last=False)
        _save_disk_cache(c)
    return torch.stack([c.text_cache[n] for n in names])


def _disk_cache_path(c: OpenClip):
    """One file per set of text weights, so a class name is encoded once per machine, not per process."""
    import hashlib

    from core.models import cache_dir

    proj = c.model.text_projection
    w = proj.weight if isinstance(proj, torch.nn.Linear) else proj
    digest = hashlib.sha1(w.detach().float().cpu().numpy().tobytes()).hexdigest()[:16]
    return cache_dir() / "text_embeddings" / f"{digest}.pt"


def _load_disk_cache(c: OpenClip) -> None:
    path = _disk_cache_path(c)
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else {}
    except Exception:  # a damaged cache file is rebuilt, never fatal
        stored = {}
    with c.text_lock:
        for n, e in stored.items():
            c.text_cache.setdefault(n, e.to(c.device))


def _save_disk_cache(c: OpenClip) -> None:
    import os

    path = _disk_cache_path(c)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with c.text_lock:
            torch.save({n: e.cpu() for n, e in c.text_cache.items()}, tmp)
        os.replace(tmp, path)
    except OSError:  # a read-only disk only costs speed
        pass


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
