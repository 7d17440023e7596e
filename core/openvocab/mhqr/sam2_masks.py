"""MHQR stage 3 with SAM2: each point query becomes three masks (multimask output) and their predicted IoU.

Geometry (transformers' Sam2Processor, checked against it in tests/test_sam2.py): the image is stretched to a
square frame (1024 × 1024 for the released sizes; no padding, the aspect is not kept); a point (x, y) in image
pixels becomes (x · F / W, y · F / H) in the frame (the prompt encoder then adds half a pixel). The decoder's
low-resolution logits (F/4 square, 256 × 256) cover the whole frame, so resizing them bilinearly to any (h, w)
(align_corners=False) aligns them with the image at (h, w): this is what the processor's post-processing does for
the original size, done here straight to the working size. Masks are logits > 0.

Grouping: the image is encoded once (`set_image`); prompts are decoded either one per call ("single"), all in one
call ("batch"), or k per call (an int). A call passes the image embeddings once (batch of one image) with k
prompts; the mask decoder's two-way transformer then updates the image tokens per prompt, so its per-prompt copy
is inherent. Queries with different numbers of negatives are never padded into one call (padding tokens would
change SAM's attention): each call holds prompts of one length, so every grouping gives the same masks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.models.sam2 import Sam2
from core.openvocab.mhqr.masks import PointMasks, empty_point_masks, order_by_area

# Measured on 2 CPU cores (python -m bench.sam2_prompts, real-size hiera-tiny): one point costs ~60 ms of decoder
# compute whatever the grouping; pairs are a few per cent faster than single points, k >= 8 is slower (each
# prompt's copy of the image tokens and 256-square feature maps no longer fits the caches), 200 at once ~2x slower.
DEFAULT_GROUP: str | int = 2
POSITIVE, NEGATIVE = 1, 0


def _chunk_size(group: str | int, n: int) -> int:
    if group == "single":
        return 1
    if group == "batch":
        return max(n, 1)
    if isinstance(group, int) and not isinstance(group, bool) and group >= 1:
        return group
    raise ValueError(f"group must be 'single', 'batch' or a positive int, got {group!r}")


class Sam2PointMasks:
    """MaskGenerator: set_image once per request, then point_masks for any number of point queries."""

    def __init__(self, sam2: Sam2, group: str | int = DEFAULT_GROUP):
        _chunk_size(group, 1)
        self.sam2 = sam2
        self.group = group
        self._embeddings: list[torch.Tensor] | None = None
        self._hw: tuple[int, int] | None = None

    @property
    def image_hw(self) -> tuple[int, int] | None:
        return self._hw

    @torch.inference_mode()
    def set_image(self, image: np.ndarray) -> None:
        """Run the image encoder once; (H, W, 3) uint8."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3), got {image.shape}")
        pixels = self.sam2.processor.image_processor(images=image, return_tensors="pt")["pixel_values"]
        model = self.sam2.model
        self._embeddings = model.get_image_embeddings(pixels.to(self.sam2.device, dtype=model.dtype))
        self._hw = (int(image.shape[0]), int(image.shape[1]))

    def frame_points(self, points_xy: np.ndarray) -> np.ndarray:
        """Image pixels (x, y) -> the model's square frame, as Sam2Processor normalises them."""
        if self._hw is None:
            raise RuntimeError("call set_image first")
        h, w = self._hw
        f = self.sam2.frame
        pts = np.asarray(points_xy, dtype=np.float32).reshape(-1, 2)
        return pts * np.asarray([f / w, f / h], dtype=np.float32)

    def point_masks(self, points_xy: np.ndarray, size: tuple[int, int],
                    negatives_xy: list[np.ndarray] | None = None) -> PointMasks:
        """Three masks per query at `size` (h, w), ordered by area (largest first), with SAM's predicted IoU."""
        n = len(np.asarray(points_xy).reshape(-1, 2))
        if n == 0:
            return empty_point_masks(size)
        masks = np.zeros((n, 3, *size), dtype=bool)
        scores = np.zeros((n, 3), dtype=np.float32)
        for rows, logits, iou in self._decode(points_xy, size, negatives_xy):
            masks[rows] = (logits > 0).numpy()
            scores[rows] = iou.numpy()
        return order_by_area(masks, scores)

    def point_logits(self, points_xy: np.ndarray, size: tuple[int, int],
                     negatives_xy: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The mask logits (N, 3, h, w) float32 at `size` in SAM's output order, and the IoU (N, 3); for inspection
        (N × 3 × h × w floats: use point_masks in the pipeline)."""
        n = len(np.asarray(points_xy).reshape(-1, 2))
        logits = np.zeros((n, 3, *size), dtype=np.float32)
        scores = np.zeros((n, 3), dtype=np.float32)
        for rows, lg, iou in self._decode(points_xy, size, negatives_xy):
            logits[rows], scores[rows] = lg.numpy(), iou.numpy()
        return logits, scores

    @torch.inference_mode()
    def _decode(self, points_xy, size, negatives_xy):
        """Yield (query rows, logits (k, 3, h, w) float32 CPU, IoU (k, 3)) call by call."""
        if self._embeddings is None:
            raise RuntimeError("call set_image first")
        positives = self.frame_points(points_xy)
        n = len(positives)
        if negatives_xy is not None and len(negatives_xy) != n:
            raise ValueError(f"negatives_xy has {len(negatives_xy)} entries for {n} points")
        negatives = [self.frame_points(m) if m is not None and len(m) else np.zeros((0, 2), np.float32)
                     for m in (negatives_xy or [None] * n)]
        by_length: dict[int, list[int]] = {}
        for i, neg in enumerate(negatives):
            by_length.setdefault(len(neg), []).append(i)
        k = _chunk_size(self.group, n)
        for m, rows in sorted(by_length.items()):
            for start in range(0, len(rows), k):
                chunk = rows[start:start + k]
                points = np.stack([np.concatenate([positives[i:i + 1], negatives[i]]) for i in chunk])
                labels = np.asarray([[POSITIVE] + [NEGATIVE] * m] * len(chunk), dtype=np.int64)
                logits, iou = self._call(points, labels, size)
                yield np.asarray(chunk), logits, iou

    def _call(self, points: np.ndarray, labels: np.ndarray, size: tuple[int, int]):
        """One decoder call: points (k, p, 2) in the frame, labels (k, p) -> logits (k, 3, h, w), IoU (k, 3)."""
        dev = self.sam2.device
        out = self.sam2.model(
            image_embeddings=self._embeddings,
            input_points=torch.from_numpy(points)[None].to(dev),
            input_labels=torch.from_numpy(labels)[None].to(dev),
            multimask_output=True,
        )
        low = out.pred_masks[0].float()  # (k, 3, F/4, F/4) over the whole stretched frame
        logits = F.interpolate(low, size=tuple(size), mode="bilinear", align_corners=False,
                               antialias=bool(size[0] < low.shape[-2] or size[1] < low.shape[-1]))
        return logits.cpu(), out.iou_scores[0].float().cpu()
