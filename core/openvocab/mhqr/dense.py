"""Stage 1's output as MHQR takes it: class probabilities at the working resolution, dense features, text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DenseInput:
    """What a dense predictor (SCLIP, or the stand-in) hands MHQR.

    image (H, W, 3) uint8, the original; probs (C, h, w) float32 class probabilities at the working resolution;
    features (gh, gw, E) float32 L2-normalised dense patch features, or None; text (C, E) float32 unit class text
    embeddings, or None; class_names; labels (h, w) the dense labels at the working resolution (SCLIP's, after its
    area and probability thresholds), None for the argmax of probs."""

    image: np.ndarray
    probs: np.ndarray
    features: np.ndarray | None
    text: np.ndarray | None
    class_names: list[str]
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.probs = np.asarray(self.probs, np.float32)
        if self.probs.ndim != 3 or self.probs.shape[0] != len(self.class_names):
            raise ValueError(f"probs must be ({len(self.class_names)}, h, w), got {self.probs.shape}")
        if self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3), got {self.image.shape}")
        if self.features is not None and self.features.ndim != 3:
            raise ValueError(f"features must be (gh, gw, E), got {self.features.shape}")
        if self.text is not None and self.text.shape[0] != len(self.class_names):
            raise ValueError(f"text must be ({len(self.class_names)}, E), got {self.text.shape}")
        if self.features is not None and self.text is not None and self.features.shape[2] != self.text.shape[1]:
            raise ValueError("features and text must share their embedding size")
        if self.labels is None:
            self.labels = self.probs.argmax(0).astype(np.int32)
        elif self.labels.shape != self.probs.shape[1:]:
            raise ValueError(f"labels must be {self.probs.shape[1:]}, got {self.labels.shape}")

    @property
    def confidence(self) -> np.ndarray:
        """(h, w) the best class probability."""
        return self.probs.max(0)

    @property
    def working_size(self) -> tuple[int, int]:
        return int(self.probs.shape[1]), int(self.probs.shape[2])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def image_xy(rows: np.ndarray, cols: np.ndarray, grid: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """Pixel centres (row, col) of a (gh, gw) grid over the image -> (N, 2) float (x, y) in original pixels."""
    gh, gw = grid
    H, W = image_size
    x = (np.asarray(cols, np.float64) + 0.5) * W / gw - 0.5
    y = (np.asarray(rows, np.float64) + 0.5) * H / gh - 0.5
    return np.stack([x, y], -1).reshape(-1, 2)


def grid_rc(points_xy: np.ndarray, grid: tuple[int, int], image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of image_xy: the (row, col) of the grid cell each (x, y) falls in, clipped to the grid."""
    gh, gw = grid
    H, W = image_size
    p = np.asarray(points_xy, np.float64).reshape(-1, 2)
    cols = np.clip(np.floor((p[:, 0] + 0.5) * gw / W), 0, gw - 1).astype(np.int64)
    rows = np.clip(np.floor((p[:, 1] + 0.5) * gh / H), 0, gh - 1).astype(np.int64)
    return rows, cols


def resize_nearest(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 2-D array (bool, labels, indices) at another size by nearest pixel centres."""
    if a.shape == tuple(size):
        return a
    rows = np.minimum(((np.arange(size[0]) + 0.5) * a.shape[0] / size[0]).astype(int), a.shape[0] - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * a.shape[1] / size[1]).astype(int), a.shape[1] - 1)
    return a[rows][:, cols]
