"""Models: one registry where every model is named, found (hub id, local folder, tiny random copy), loaded once.

Entry points: `registry()` (`.get`, `.status`) and the names re-exported here (ModelRegistry, ModelSpec, ModelStatus,
cache_dir, models_mode, set_models_mode); `core.models.clipseg`, `core.models.openclip`, `core.models.sam2` (sizes,
sam2_name, at_frame) and `core.models.sam2_video` hold each family's loader and tiny builder.
Never imports a pipeline (prompted, openvocab, video), data, metrics, results, draw, or any UI or bench code.
"""

from __future__ import annotations

import threading

from core.models.clipseg import CLIPSEG_SPEC
from core.models.model_registry import (ModelRegistry, ModelSpec, ModelStatus, cache_dir, default_device, models_mode,
                                       set_models_mode)
from core.models.openclip import OPENCLIP_SPEC
from core.models.sam2 import SAM2_SPECS
from core.models.sam2_video import SAM2_VIDEO_SPECS

# The families SegLab knows; the registry reads this table and imports no family itself.
MODEL_FAMILIES: tuple[ModelSpec, ...] = (CLIPSEG_SPEC, OPENCLIP_SPEC, *SAM2_SPECS, *SAM2_VIDEO_SPECS)

_REGISTRY: ModelRegistry | None = None
_REGISTRY_LOCK = threading.Lock()


def registry() -> ModelRegistry:
    """The process-wide registry, with every family of MODEL_FAMILIES registered."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None:
            reg = ModelRegistry()
            for spec in MODEL_FAMILIES:
                reg.register(spec)
            _REGISTRY = reg
        return _REGISTRY


__all__ = ["MODEL_FAMILIES", "ModelRegistry", "ModelSpec", "ModelStatus", "cache_dir", "default_device", "models_mode",
           "registry", "set_models_mode"]
