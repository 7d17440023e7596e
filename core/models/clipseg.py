"""CLIPSeg through transformers: loading, tiny models, and a predictor that
encodes an image once and decodes any number of prompts against it."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.models.model_registry import ModelSpec

HUB_ID = "CIDAS/clipseg-rd64-refined"
SIZES = (352, 512, 1024)
DEFAULT_SIZE = 352
DEFAULT_THRESHOLD = 0.5
METADATA_FILE = "seglab.json"


@dataclass
class ClipSeg:
    """A loaded CLIPSeg: model, processor and what SegLab stored beside them."""

    model: torch.nn.Module
    processor: object
    device: torch.device
    location: str
    metadata: dict = field(default_factory=dict)
    _text_cache: OrderedDict = field(default_factory=OrderedDict)
    _text_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def threshold(self) -> float:
        return float(self.metadata.get("threshold", DEFAULT_THRESHOLD))

    @property
    def size(self) -> int:
        return int(self.metadata.get("image_size", DEFAULT_SIZE))


def load_clipseg(location: str, device: torch.device, dtype: torch.dtype, local_only: bool) -> ClipSeg:
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    processor = CLIPSegProcessor.from_pretrained(location, local_files_only=local_only)
    model = CLIPSegForImageSegmentation.from_pretrained(location, local_files_only=local_only, dtype=dtype)
    model.to(device).eval()
    meta_path = Path(location) / METADATA_FILE
    metadata = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return ClipSeg(model=model, processor=processor, device=device, location=location, metadata=metadata)


def clipseg_config(tiny: bool):
    """rd64-refined's architecture; tiny shrinks widths and depths, keeps patch 16 and the real vocabulary."""
    from transformers import CLIPSegConfig

    if not tiny:
        return CLIPSegConfig(
            vision_config={"patch_size": 16, "image_size": 224},
            use_complex_transposed_convolution=True,
        )
    return CLIPSegConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
        vision_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 2,
            "patch_size": 16, "image_size": 224,
        },
        projection_dim=16, reduce_dim=16, extract_layers=[1, 2, 3],
        decoder_num_attention_heads=2, decoder_intermediate_size=32,
        use_complex_transposed_convolution=True,
    )


def build_random_clipseg(folder: Path, tiny: bool = True, seed: int = 0) -> Path:
    """Write a randomly initialised CLIPSeg (model + processor) in the save_pretrained format."""
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor, CLIPTokenizer, ViTImageProcessor

    from core.models.clip_vocab import write_clip_vocab

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = CLIPSegForImageSegmentation(clipseg_config(tiny))
    # transformers initialises the decoder's FiLM, reduce and convolution weights with std 1 (the published
    # checkpoints overwrite them); PyTorch's default fan-in init keeps a random model's logits near zero
    for module in model.decoder.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            module.reset_parameters()
    vocab, merges = write_clip_vocab(folder / "_vocab")
    tokenizer = CLIPTokenizer(str(vocab), str(merges))
    image_processor = ViTImageProcessor(
        do_resize=True, size={"height": DEFAULT_SIZE, "width": DEFAULT_SIZE}, resample=2,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    model.save_pretrained(folder)
    for p in (folder / "_vocab").iterdir():
        p.unlink()
    (folder / "_vocab").rmdir()
    return folder


CLIPSEG_SPEC = ModelSpec(
    name="clipseg",
    hub_id=HUB_ID,
    env_var="SEGLAB_CLIPSEG",
    description="CLIPSeg rd64-refined: text-prompted binary segmentation",
    loader=load_clipseg,
    tiny_builder=lambda folder: build_random_clipseg(folder, tiny=True),
    tiny_version="2",
)


def vision_activations(model, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    """The vision encoder up to the deepest layer the decoder reads (layer 9 of 12 for rd64): the layers
    after it only feed the pooled output, which text-conditioned decoding never uses. Differentiable."""
    vm = model.clip.vision_model
    h = vm.pre_layrnorm(vm.embeddings(pixel_values, interpolate_pos_encoding=True))
    wanted = set(model.extract_layers)
    acts = []
    for i, layer in enumerate(vm.encoder.layers[: max(wanted) + 1]):
        h = layer(h, None)
        if i in wanted:
            acts.append(h)
    return acts


def decode_logits(model, activations: list[torch.Tensor], conditional: torch.Tensor) -> torch.Tensor:
    """Decoder logits (K, size, size); the activations may be a batch of one shared by K conditions."""
    k = conditional.shape[0]
    acts = [a.expand(k, -1, -1) if a.shape[0] == 1 else a for a in activations]
    logits = model.decoder(acts, conditional).logits
    return logits[None] if logits.dim() == 2 else logits


@dataclass
class EncodedImage:
    """The vision encoder's activations for one image, reused by every prompt."""

    activations: list[torch.Tensor]
    size: int
    original_hw: tuple[int, int]


class ClipSegPredictor:
    """Stage object: encode(image) once, then logits(encoded, prompts) per batch of prompts."""

    TEXT_CACHE = 512

    def __init__(self, clipseg: ClipSeg):
        self.c = clipseg

    def preprocess(self, image: np.ndarray, size: int) -> torch.Tensor:
        ip = self.c.processor.image_processor
        resized = Image.fromarray(image).resize((size, size), Image.BILINEAR)
        arr = np.asarray(resized, dtype=np.float32) / 255.0
        arr = (arr - np.asarray(ip.image_mean, np.float32)) / np.asarray(ip.image_std, np.float32)
        tensor = torch.from_numpy(arr.transpose(2, 0, 1).copy())[None]
        return tensor.to(self.c.device, dtype=self.c.model.dtype)

    @torch.inference_mode()
    def encode(self, image: np.ndarray, size: int) -> EncodedImage:
        acts = vision_activations(self.c.model, self.preprocess(image, size))
        return EncodedImage(activations=acts, size=size, original_hw=image.shape[:2])

    @torch.inference_mode()
    def text_embeddings(self, prompts: list[str]) -> torch.Tensor:
        """Conditional embeddings, cached per prompt across requests."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self.c._text_cache]
        if missing:
            tok = self.c.processor.tokenizer(missing, padding=True, truncation=True, return_tensors="pt")
            tok = {k: v.to(self.c.device) for k, v in tok.items()}
            emb = self.c.model.clip.get_text_features(**tok).pooler_output
            with self.c._text_lock:
                for p, e in zip(missing, emb):
                    self.c._text_cache[p] = e
                while len(self.c._text_cache) > self.TEXT_CACHE:
                    self.c._text_cache.popitem(last=False)
        return torch.stack([self.c._text_cache[p] for p in prompts])

    @torch.inference_mode()
    def decode(self, encoded: EncodedImage, prompts: list[str]) -> torch.Tensor:
        """Logits at model resolution, shape (K, size, size), float32 on the CPU."""
        return decode_logits(self.c.model, encoded.activations, self.text_embeddings(prompts)).float().cpu()

    @staticmethod
    def upsample_probabilities(logits: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
        """One prompt's logits (size, size) to probabilities at the original (H, W)."""
        up = F.interpolate(logits[None, None], size=hw, mode="bilinear", align_corners=False)[0, 0]
        return torch.sigmoid(up).numpy()
