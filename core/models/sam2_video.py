"""SAM 2.1 for video through transformers (Sam2VideoModel, Sam2VideoProcessor): sizes, loading, frame size, tiny models.

Registry names: `sam2-video` (hiera-tiny, SEGLAB_SAM2_VIDEO), `sam2-video-small`, `sam2-video-base-plus`,
`sam2-video-large` (SEGLAB_SAM2_VIDEO_SMALL, ...); the hub ids are the image family's (core.models.sam2), whose
folders hold the video model's weights too. Every local folder is a save_pretrained copy (model and processor).

Frame size: the released weights were trained on a 1024 square frame, but nothing in them depends on it (Hiera's
background position embedding is interpolated to the feature size, the window embedding is tiled, the memory
attention's RoPE is computed from the config). `Sam2Video.at_frame(512)` gives a model and processor for a 512
frame that share the loaded weights (no copy): only the config's sizes change (image_size, the three FPN feature
sizes F/4, F/8, F/16, the prompt encoder's image size, the memory attention's RoPE grid F/16). The frame must be a
multiple of 32 (Hiera tiles its 8 × 8 window embedding over the F/4 grid and pools three times).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.models.model_registry import ModelSpec
from core.models.sam2 import (FRAME_MULTIPLE, HUB_ID, SAM2_SIZES, TINY_FRAME, check_frame, sam2_config, sam2_name,
                              spread_random_init)


@dataclass
class Sam2Video:
    """A loaded SAM2 video model: model, processor, where they came from; copies at other frame sizes on demand."""

    model: torch.nn.Module  # transformers.Sam2VideoModel
    processor: object  # transformers.Sam2VideoProcessor
    device: torch.device
    location: str
    _by_frame: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def frame(self) -> int:
        """The square side frames are stretched to (the model's native size: 1024 for the released weights)."""
        return int(self.model.config.image_size)

    def at_frame(self, frame: int | None = None) -> tuple[torch.nn.Module, object]:
        """(model, processor) for a `frame` × `frame` input, sharing this model's weights; built once per size."""
        frame = self.frame if frame is None else int(frame)
        if frame == self.frame:
            return self.model, self.processor
        check_frame(frame)
        with self._lock:
            if frame not in self._by_frame:
                self._by_frame[frame] = (_model_at_frame(self.model, frame), _processor_at_frame(self.processor, frame))
            return self._by_frame[frame]


def set_frame(config, frame: int):
    """A Sam2VideoConfig's sizes for a `frame` square input (the only fields that depend on it), in place."""
    config.image_size = frame
    config.vision_config.backbone_feature_sizes = [[frame // 4] * 2, [frame // 8] * 2, [frame // 16] * 2]
    config.vision_config.backbone_config.image_size = [frame, frame]
    config.prompt_encoder_config.image_size = frame
    config.memory_attention_rope_feat_sizes = [frame // 16] * 2
    return config


def _model_at_frame(model: torch.nn.Module, frame: int) -> torch.nn.Module:
    from transformers import Sam2VideoModel

    config = set_frame(copy.deepcopy(model.config), frame)
    with torch.device("meta"):  # no random init: every parameter is taken from `model` below
        resized = Sam2VideoModel(config)
    resized.load_state_dict(model.state_dict(), strict=True, assign=True)  # the same tensors, no copy
    # non-persistent buffers (RoPE positions and frequencies) are not in the state dict: rebuild them for this size
    for name, buffer in _size_buffers(config).items():
        module_name, _, attr = name.rpartition(".")
        setattr(resized.get_submodule(module_name), attr, buffer.to(model.device))
    left = [n for n, b in resized.named_buffers() if b.is_meta]
    if left:
        raise RuntimeError(f"buffers left uninitialised at frame {frame}: {left}")
    return resized.to(model.device).eval()


def _size_buffers(config) -> dict[str, torch.Tensor]:
    """The non-persistent buffers of a Sam2VideoModel, computed on the CPU for `config`."""
    from transformers.models.sam2_video.modeling_sam2_video import (Sam2VideoMemoryAttention,
                                                                    Sam2VideoVisionRotaryEmbedding)

    rope = Sam2VideoVisionRotaryEmbedding(config)
    return {
        "memory_attention.position_ids": Sam2VideoMemoryAttention.precompute_positions(config),
        "memory_attention.rotary_emb.inv_freq": rope.inv_freq,
        "memory_attention.rotary_emb.original_inv_freq": rope.original_inv_freq,
    }


def _processor_at_frame(processor, frame: int):
    resized = copy.deepcopy(processor)
    for sub in (resized.image_processor, resized.video_processor):
        sub.size = {"height": frame, "width": frame}
    resized.target_size = frame
    return resized


def _processor_frame(processor) -> tuple[int, int, int]:
    image, video = processor.image_processor.size, processor.video_processor.size
    return int(image["height"]), int(video["height"]), int(processor.target_size)


def load_sam2_video(location: str, device: torch.device, dtype: torch.dtype, local_only: bool) -> Sam2Video:
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    processor = Sam2VideoProcessor.from_pretrained(location, local_files_only=local_only)
    model = Sam2VideoModel.from_pretrained(location, local_files_only=local_only, dtype=dtype)
    model.to(device).eval()
    loaded = Sam2Video(model=model, processor=processor, device=device, location=location)
    sides = _processor_frame(processor)
    if set(sides) != {loaded.frame}:
        raise ValueError(f"{location}: the processor resizes to {sides}, the model expects {loaded.frame}")
    return loaded


def sam2_video_config(hub_id: str = HUB_ID, tiny: bool = False, frame: int | None = None):
    """A released size's video architecture (Sam2VideoConfig), or a tiny one (a 256 frame), optionally at `frame`.

    The released sizes differ only in the Hiera trunk (core.models.sam2.SAM2_SIZES); memory attention, memory
    encoder, object pointers and the SAM heads are transformers' defaults, which are SAM 2.1's.
    """
    from transformers import Sam2VideoConfig

    image = sam2_config(hub_id, tiny=tiny)
    if not tiny:
        config = Sam2VideoConfig(vision_config=image.vision_config.to_dict())
    else:
        f = TINY_FRAME
        vision = image.vision_config.to_dict()
        # object pointers are split into memory-width (64) tokens: the width must be a multiple of 64 above 64
        vision["fpn_hidden_size"] = 128
        config = Sam2VideoConfig(
            vision_config=vision,
            prompt_encoder_config={"hidden_size": 128, "image_size": f, "patch_size": 16, "mask_input_channels": 4},
            mask_decoder_config={"hidden_size": 128, "mlp_dim": 64, "num_attention_heads": 2,
                                 "iou_head_hidden_dim": 32},
            image_size=f, memory_attention_hidden_size=128, memory_attention_num_layers=1,
            memory_attention_feed_forward_hidden_size=128, memory_attention_rope_feat_sizes=[f // 16, f // 16],
            memory_encoder_hidden_size=128, mask_downsampler_embed_dim=128, memory_fuser_embed_dim=128,
            memory_fuser_intermediate_dim=128,
        )
    return set_frame(config, frame) if frame is not None else config


def build_random_sam2_video(folder: Path, tiny: bool = True, hub_id: str = HUB_ID, seed: int = 0,
                            frame: int | None = None) -> Path:
    """Write a randomly initialised SAM2 video model (model + processor) in the save_pretrained format."""
    from transformers import Sam2ImageProcessor, Sam2VideoModel, Sam2VideoProcessor, Sam2VideoVideoProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = sam2_video_config(hub_id, tiny=tiny, frame=frame)
    model = Sam2VideoModel(config)
    spread_random_init(model)
    side = {"height": config.image_size, "width": config.image_size}
    processor = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size=side),
                                   video_processor=Sam2VideoVideoProcessor(size=side), target_size=config.image_size)
    processor.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def sam2_video_name(size_or_hub_id: str) -> str:
    """The registry name of a size: 'large', 'sam2-large', 'sam2-video-large' or a hub id -> 'sam2-video-large'."""
    key = size_or_hub_id.strip().lower()
    return sam2_name(key.replace("sam2-video", "sam2", 1)).replace("sam2", "sam2-video", 1)


def _spec(hub_id: str) -> ModelSpec:
    name = sam2_video_name(hub_id)
    size = hub_id.rsplit("hiera-", 1)[1]
    return ModelSpec(
        name=name,
        hub_id=hub_id,
        env_var="SEGLAB_" + name.upper().replace("-", "_"),
        description=f"SAM 2.1 Hiera-{size} video: masks propagated through a streamed clip (video step 3)",
        loader=load_sam2_video,
        tiny_builder=lambda folder: build_random_sam2_video(folder, tiny=True),
    )


SAM2_VIDEO_SPECS: tuple[ModelSpec, ...] = tuple(_spec(hub_id) for hub_id in SAM2_SIZES)
SAM2_VIDEO_SPEC = SAM2_VIDEO_SPECS[0]  # `sam2-video`: hiera-tiny, SEGLAB_SAM2_VIDEO
