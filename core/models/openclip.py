"""open_clip ViT-B/16 with OpenAI weights (QuickGELU): loading through the registry, and tiny models."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.models.model_registry import ModelSpec

MODEL_NAME = "ViT-B-16-quickgelu"
PRETRAINED = "openai"
HUB_ID = "timm/vit_base_patch16_clip_224.openai"
CONFIG_FILE = "open_clip_config.json"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class OpenClip:
    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    location: str
    mean: tuple = OPENAI_MEAN
    std: tuple = OPENAI_STD
    text_cache: OrderedDict = field(default_factory=OrderedDict)
    text_lock: threading.Lock = field(default_factory=threading.Lock)


def load_openclip(location: str, device: torch.device, dtype: torch.dtype, local_only: bool) -> OpenClip:
    """A folder (open_clip_config.json + weights), a checkpoint file, or the hub release."""
    import open_clip

    path = Path(location).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            files = [f for f in WEIGHT_FILES if (path / f).is_file()] + sorted(p.name for p in path.glob("*.pt"))
            if not files:
                raise OSError(f"{path} holds neither {CONFIG_FILE} nor a checkpoint ({', '.join(WEIGHT_FILES)}, *.pt)")
            return load_openclip(str(path / files[0]), device, dtype, local_only)
        model = open_clip.create_model(f"local-dir:{path}", device=device)
        tokenizer = open_clip.get_tokenizer(f"local-dir:{path}")
    elif path.is_file():  # OpenAI's ViT-B-16.pt or an open_clip state dict
        model = open_clip.create_model(MODEL_NAME, pretrained=str(path), device=device)
        tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    else:
        weights = _cached_hub_weights() if local_only else None
        if local_only and weights is None:
            raise OSError(f"no copy of {location} in the hub cache")
        model = open_clip.create_model(MODEL_NAME, pretrained=weights or PRETRAINED, device=device)
        tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    model = model.to(device=device, dtype=dtype).eval()
    pre = getattr(model.visual, "preprocess_cfg", {}) or {}
    return OpenClip(model, tokenizer, device, str(location), tuple(pre.get("mean", OPENAI_MEAN)),
                    tuple(pre.get("std", OPENAI_STD)))


def _cached_hub_weights() -> str | None:
    from huggingface_hub import hf_hub_download

    for name in WEIGHT_FILES:
        try:
            return hf_hub_download(HUB_ID, name, local_files_only=True)
        except Exception:  # not cached (the exact class differs across huggingface_hub releases)
            continue
    return None


def tiny_config() -> dict:
    """ViT-B/16's shape shrunk: 12 blocks (ResCLIP reads layers 6-9), width 64, patch 16, the real vocabulary."""
    return {
        "embed_dim": 32, "quick_gelu": True,
        "vision_cfg": {"image_size": 224, "layers": 12, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }


def real_config() -> dict:
    import open_clip

    return open_clip.get_model_config(MODEL_NAME)


def build_random_openclip(folder: Path, tiny: bool = True, seed: int = 0) -> Path:
    """A randomly initialised CLIP in open_clip's local-dir format (config + state dict)."""
    from open_clip.model import CLIP

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cfg = tiny_config() if tiny else real_config()
    model = CLIP(**cfg)
    torch.save(model.state_dict(), folder / WEIGHT_FILES[1])
    (folder / CONFIG_FILE).write_text(json.dumps({
        "model_cfg": cfg,
        "preprocess_cfg": {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD), "interpolation": "bicubic",
                           "resize_mode": "shortest"},
    }, indent=2))
    return folder


OPENCLIP_SPEC = ModelSpec(
    name="openclip",
    hub_id=HUB_ID,
    env_var="SEGLAB_OPENCLIP",
    description="open_clip ViT-B/16, OpenAI weights: SCLIP dense predictions",
    loader=load_openclip,
    tiny_builder=lambda folder: build_random_openclip(folder, tiny=True),
    provide="OpenAI's ViT-B-16.pt file, an open_clip state dict (.pt, .bin or .safetensors), or a folder with "
            "open_clip_config.json and its weights (huggingface-cli download timm/vit_base_patch16_clip_224.openai)",
    probe_files=(CONFIG_FILE, *WEIGHT_FILES, "*.pt"),
)
