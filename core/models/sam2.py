"""SAM 2.1 through transformers (Sam2Model, Sam2Processor): the four Hiera sizes, loading, tiny models.

Registry names: `sam2` (hiera-tiny, SEGLAB_SAM2), `sam2-small`, `sam2-base-plus`, `sam2-large` (SEGLAB_SAM2_SMALL,
...); `sam2_name()` maps a size or a hub id to its registry name. Every folder is a save_pretrained copy (model and
processor). SAM2 stretches the image to a square frame (1024 for the released sizes; no padding, aspect not kept);
the mask decoder's low-resolution logits cover that whole frame (256 × 256 for the released sizes).
`Sam2.at_frame(512)`: the same weights (no copy) on a smaller square frame, about 5× faster on a CPU (hiera-tiny,
one thread: encoder 0.61 s against 3.18 s, decoder 19 ms a prompt against 96 ms); the masks are coarser.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.models.model_registry import ModelSpec

HUB_ID = "facebook/sam2.1-hiera-tiny"

# The Hiera trunk of each released size (SAM 2.1's sam2.1_hiera_{t,s,b+,l}.yaml, in transformers' names). The FPN
# neck, prompt encoder and mask decoder are the same for all four (width 256, 1024 frame).
_TINY_TRUNK = {
    "hidden_size": 96, "num_attention_heads": 1, "blocks_per_stage": [1, 2, 7, 2],
    "embed_dim_per_stage": [96, 192, 384, 768], "num_attention_heads_per_stage": [1, 2, 4, 8],
    "window_size_per_stage": [8, 4, 14, 7], "global_attention_blocks": [5, 7, 9],
    "window_positional_embedding_background_size": [7, 7],
}
SAM2_SIZES: dict[str, dict] = {
    "facebook/sam2.1-hiera-tiny": _TINY_TRUNK,
    "facebook/sam2.1-hiera-small": {**_TINY_TRUNK, "blocks_per_stage": [1, 2, 11, 2],
                                    "global_attention_blocks": [7, 10, 13]},
    "facebook/sam2.1-hiera-base-plus": {
        "hidden_size": 112, "num_attention_heads": 2, "blocks_per_stage": [2, 3, 16, 3],
        "embed_dim_per_stage": [112, 224, 448, 896], "num_attention_heads_per_stage": [2, 4, 8, 16],
        "window_size_per_stage": [8, 4, 14, 7], "global_attention_blocks": [12, 16, 20],
        "window_positional_embedding_background_size": [14, 14],
    },
    "facebook/sam2.1-hiera-large": {
        "hidden_size": 144, "num_attention_heads": 2, "blocks_per_stage": [2, 6, 36, 4],
        "embed_dim_per_stage": [144, 288, 576, 1152], "num_attention_heads_per_stage": [2, 4, 8, 16],
        "window_size_per_stage": [8, 4, 16, 8], "global_attention_blocks": [23, 33, 43],
        "window_positional_embedding_background_size": [7, 7],
    },
}
_SIZE_NAMES = {"facebook/sam2.1-hiera-tiny": "sam2", "facebook/sam2.1-hiera-small": "sam2-small",
               "facebook/sam2.1-hiera-base-plus": "sam2-base-plus", "facebook/sam2.1-hiera-large": "sam2-large"}
TINY_FRAME = 256  # the tiny random model's square frame (the released sizes use 1024)
FRAME_MULTIPLE = 32  # Hiera tiles its 8 × 8 window embedding over the F/4 grid and pools three times


@dataclass
class Sam2:
    """A loaded SAM2: model, processor, and where they came from."""

    model: torch.nn.Module  # transformers.Sam2Model
    processor: object  # transformers.Sam2Processor
    device: torch.device
    location: str
    _by_frame: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def frame(self) -> int:
        """The square side the image is stretched to (and point coordinates are scaled to)."""
        size = self.model.config.prompt_encoder_config.image_size
        return int(size[0] if isinstance(size, (list, tuple)) else size)

    def at_frame(self, frame: int | None = None) -> "Sam2":
        """This SAM2 on a `frame` × `frame` input, sharing its weights; built once per size. None: the native frame."""
        frame = self.frame if frame is None else int(frame)
        if frame == self.frame:
            return self
        check_frame(frame)
        with self._lock:
            if frame not in self._by_frame:
                self._by_frame[frame] = Sam2(_model_at_frame(self.model, frame),
                                             _processor_at_frame(self.processor, frame), self.device, self.location)
            return self._by_frame[frame]


def check_frame(frame: int) -> None:
    if frame < 2 * FRAME_MULTIPLE or frame % FRAME_MULTIPLE:
        raise ValueError(f"SAM2 frame size must be a multiple of {FRAME_MULTIPLE} (at least "
                         f"{2 * FRAME_MULTIPLE}), got {frame}")


def _model_at_frame(model: torch.nn.Module, frame: int) -> torch.nn.Module:
    """Only the config's sizes depend on the frame (the FPN feature sizes F/4, F/8, F/16, Hiera's image size, the
    prompt encoder's image size); Hiera's position embedding is interpolated to the feature size."""
    from transformers import Sam2Model

    config = copy.deepcopy(model.config)
    config.vision_config.backbone_feature_sizes = [[frame // 4] * 2, [frame // 8] * 2, [frame // 16] * 2]
    config.vision_config.backbone_config.image_size = [frame, frame]
    config.prompt_encoder_config.image_size = frame
    with torch.device("meta"):  # no random init: every tensor is taken from `model`
        resized = Sam2Model(config)
    resized.load_state_dict(model.state_dict(), strict=True, assign=True)
    left = [n for n, b in resized.named_buffers() if b.is_meta]
    if left:
        raise RuntimeError(f"buffers left uninitialised at frame {frame}: {left}")
    return resized.to(model.device).eval()


def _processor_at_frame(processor, frame: int):
    resized = copy.deepcopy(processor)
    resized.image_processor.size = {"height": frame, "width": frame}
    resized.image_processor.mask_size = {"height": frame // 4, "width": frame // 4}
    resized.target_size = frame  # points are normalised to it
    return resized


def sam2_name(size_or_hub_id: str) -> str:
    """The registry name of a size: 'large', 'hiera-large', 'sam2-large' or 'facebook/sam2.1-hiera-large'."""
    key = size_or_hub_id.strip().lower()
    for hub_id, name in _SIZE_NAMES.items():
        size = hub_id.rsplit("hiera-", 1)[1]
        if key in {hub_id, name, size, f"hiera-{size}", f"sam2-{size}", f"sam2.1-hiera-{size}"}:
            return name
    raise ValueError(f"unknown SAM2 size {size_or_hub_id!r} (sizes: {', '.join(SAM2_SIZES)})")


def load_sam2(location: str, device: torch.device, dtype: torch.dtype, local_only: bool) -> Sam2:
    from transformers import Sam2Model, Sam2Processor

    processor = Sam2Processor.from_pretrained(location, local_files_only=local_only)
    model = Sam2Model.from_pretrained(location, local_files_only=local_only, dtype=dtype)
    model.to(device).eval()
    loaded = Sam2(model=model, processor=processor, device=device, location=location)
    side = processor.image_processor.size
    if (side["height"], side["width"], processor.target_size) != (loaded.frame,) * 3:
        raise ValueError(f"{location}: the processor resizes to {side['height']}×{side['width']} (points to "
                         f"{processor.target_size}), the prompt encoder expects {loaded.frame}×{loaded.frame}")
    return loaded


def sam2_config(hub_id: str = HUB_ID, tiny: bool = False):
    """A released size's architecture (Sam2Config), or a tiny one: widths 8-64, 5 Hiera blocks, a 256 frame."""
    from transformers import Sam2Config

    if not tiny:
        trunk = SAM2_SIZES[hub_id]
        return Sam2Config(vision_config={
            "backbone_config": {"model_type": "sam2_hiera_det_model", **trunk},
            "backbone_channel_list": trunk["embed_dim_per_stage"][::-1],
        })
    f = TINY_FRAME
    dims = [8, 16, 32, 64]
    return Sam2Config(
        vision_config={
            "backbone_config": {
                "model_type": "sam2_hiera_det_model", "hidden_size": dims[0], "num_attention_heads": 1,
                "image_size": [f, f], "blocks_per_stage": [1, 1, 2, 1], "embed_dim_per_stage": dims,
                "num_attention_heads_per_stage": [1, 1, 2, 2], "window_size_per_stage": [8, 4, 14, 7],
                "global_attention_blocks": [3], "window_positional_embedding_background_size": [7, 7],
            },
            "backbone_channel_list": dims[::-1], "fpn_hidden_size": 32,
            "backbone_feature_sizes": [[f // 4, f // 4], [f // 8, f // 8], [f // 16, f // 16]],
        },
        prompt_encoder_config={"hidden_size": 32, "image_size": f, "patch_size": 16, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
    )


def spread_random_init(model: torch.nn.Module) -> None:
    """Re-initialise a random SAM2 (image or video) so that its masks respond to the prompt.

    transformers' init (normal, std 0.02) leaves a random SAM2's mask logits near 1e-5 and almost blind to the
    prompt; PyTorch's default init plus a wider hypernetwork output gives logits of about unit scale that
    differ by prompt and by output, so thresholds, area ordering and negatives are exercised for real.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Embedding)):
                module.reset_parameters()
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(16)
            mlp.proj_out.bias.mul_(16)


def build_random_sam2(folder: Path, tiny: bool = True, hub_id: str = HUB_ID, seed: int = 0) -> Path:
    """Write a randomly initialised SAM2 (model + processor) in the save_pretrained format."""
    from transformers import Sam2ImageProcessor, Sam2Model, Sam2Processor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = sam2_config(hub_id, tiny=tiny)
    model = Sam2Model(config)
    spread_random_init(model)
    frame = config.prompt_encoder_config.image_size
    image_processor = Sam2ImageProcessor(size={"height": frame, "width": frame},
                                         mask_size={"height": frame // 4, "width": frame // 4})
    Sam2Processor(image_processor=image_processor).save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def _spec(hub_id: str) -> ModelSpec:
    name = _SIZE_NAMES[hub_id]
    size = hub_id.rsplit("hiera-", 1)[1]
    return ModelSpec(
        name=name,
        hub_id=hub_id,
        env_var="SEGLAB_" + name.upper().replace("-", "_"),
        description=f"SAM 2.1 Hiera-{size}: point prompts -> three masks each (MHQR stage 3)",
        loader=load_sam2,
        tiny_builder=lambda folder: build_random_sam2(folder, tiny=True),
    )


SAM2_SPECS: tuple[ModelSpec, ...] = tuple(_spec(hub_id) for hub_id in SAM2_SIZES)
SAM2_SPEC = SAM2_SPECS[0]  # `sam2`: hiera-tiny, SEGLAB_SAM2
