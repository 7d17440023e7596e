"""Optional mask clean-up: morphological opening/closing, small-component removal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import disk, remove_small_objects


@dataclass(frozen=True)
class Cleanup:
    open_radius: int = 0
    close_radius: int = 0
    min_component_px: int = 0

    @property
    def active(self) -> bool:
        return bool(self.open_radius or self.close_radius or self.min_component_px)


def clean_mask(mask: np.ndarray, cfg: Cleanup) -> np.ndarray:
    """Boolean mask in, boolean mask out; a no-op when nothing is switched on."""
    out = mask.astype(bool)
    if cfg.open_radius > 0:
        out = ndimage.binary_opening(out, structure=disk(cfg.open_radius))
    if cfg.close_radius > 0:
        out = ndimage.binary_closing(out, structure=disk(cfg.close_radius))
    if cfg.min_component_px > 0:
        out = remove_small_objects(out, max_size=cfg.min_component_px - 1)
    return out
