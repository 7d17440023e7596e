"""Stand-ins that run the tracker without weights, from a clip's exact ground truth.

Ground truth is any object with `size` (h, w), `instances(t)` (the visible instance map of source frame t, 0 =
background), `object_classes()` (id -> class) and `position(id, t)` (the object's centre, or None when unknown);
core.data.synthetic.moving_shapes.ShapeClip is one, `FolderTruth` (core.video.dataset) another. Processed frame i
is source frame i × stride; when the processing size differs from the truth's, the truth is resized (nearest).

`StandInDetector`: on a keyframe, each visible object (at least `min_area` pixels) is missed with probability
`miss_rate`, else returned with its boundary wobbled by a smooth random field (`boundary_noise` pixels), the wrong
class with probability `class_noise`, a score in [0.55, 0.95]; plus Poisson(`false_positives`) random blobs of random
class with scores in [0.4, 0.9]. `StandInPropagator`: each object follows the ground-truth object its mask overlapped
most when it was added (IoU >= 0.3; none for a false positive): the mask given at that frame is moved by the true
motion since then plus a random walk (`drift` pixels per frame, per axis), and keeps only what is within 2 pixels of
the object's visible pixels (it segments what is visible: occluded parts vanish); its score is the kept area over the
anchored area (with `score_noise`). A false positive drifts and scores `fp_score`. `StandInEvidence`: per mask,
logits N(0, `noise`) over the classes and 'no object', plus `signal` × IoU on the class of the object it overlaps
most (IoU >= 0.3), else on 'no object'; with probability `confusion` a frame also boosts a random wrong class.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from core.video.association import mask_ious
from core.video.stages import Detection, Propagated


class _Truth:
    """The ground truth at the processing size, one frame cached."""

    def __init__(self, gt, stride: int):
        self.gt, self.stride = gt, stride
        self._t, self._inst, self._size = None, None, None

    def instances(self, idx: int, size: tuple[int, int]) -> np.ndarray:
        if self._t != idx or self._size != size:
            inst = np.asarray(self.gt.instances(idx * self.stride))
            if inst.shape != size:
                inst = np.asarray(Image.fromarray(inst.astype(np.int32)).resize((size[1], size[0]), Image.NEAREST))
            self._t, self._inst, self._size = idx, inst, size
        return self._inst

    def position(self, obj: int, idx: int, size: tuple[int, int]):
        p = self.gt.position(obj, idx * self.stride)
        if p is None:
            return None
        H, W = self.gt.size
        return p[0] * size[0] / H, p[1] * size[1] / W

    def best_object(self, mask: np.ndarray, idx: int) -> tuple[int | None, float]:
        inst = self.instances(idx, mask.shape)
        ids = [int(i) for i in np.unique(inst[mask]) if i]
        if not ids:
            return None, 0.0
        ious = mask_ious([mask], [inst == i for i in ids])[0]
        k = int(np.argmax(ious))
        return ids[k], float(ious[k])


def _wobble(mask: np.ndarray, sigma_px: float, rng) -> np.ndarray:
    if sigma_px <= 0 or not mask.any():
        return mask.copy()
    signed = ndimage.distance_transform_edt(mask) - ndimage.distance_transform_edt(~mask)
    field = ndimage.gaussian_filter(rng.normal(0, 1, mask.shape), 3.0)
    field *= sigma_px / max(field.std(), 1e-6)
    out = signed + field > 0
    return out if out.any() else mask.copy()


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    if abs(dy) < h and abs(dx) < w:
        out[yd, xd] = mask[ys, xs]
    return out


class StandInDetector:
    def __init__(self, gt, num_classes: int, miss_rate: float = 0.1, false_positives: float = 0.3,
                 class_noise: float = 0.1, boundary_noise: float = 1.0, min_area: int = 20, stride: int = 1,
                 seed: int = 0):
        self.truth, self.num_classes = _Truth(gt, stride), num_classes
        self.classes = gt.object_classes()
        self.miss_rate, self.false_positives, self.class_noise = miss_rate, false_positives, class_noise
        self.boundary_noise, self.min_area, self.seed = boundary_noise, min_area, seed

    def detect(self, frame_idx: int, frame: np.ndarray) -> list[Detection]:
        size = frame.shape[:2]
        rng = np.random.default_rng([self.seed, 101, frame_idx])
        inst = self.truth.instances(frame_idx, size)
        out = []
        for obj in sorted(int(i) for i in np.unique(inst) if i):
            visible = inst == obj
            if visible.sum() < self.min_area or rng.random() < self.miss_rate:
                continue
            cls = self.classes[obj]
            if self.num_classes > 1 and rng.random() < self.class_noise:
                cls = int(rng.choice([c for c in range(self.num_classes) if c != cls]))
            out.append(Detection(_wobble(visible, self.boundary_noise, rng), cls, float(rng.uniform(0.55, 0.95))))
        h, w = size
        for _ in range(int(rng.poisson(self.false_positives))):
            r = rng.uniform(0.04, 0.1) * min(h, w)
            cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
            yy, xx = np.ogrid[0:h, 0:w]
            blob = ((yy - cy) / r) ** 2 + ((xx - cx) / (r * rng.uniform(0.6, 1.6))) ** 2 <= 1
            out.append(Detection(blob, int(rng.integers(self.num_classes)), float(rng.uniform(0.4, 0.9))))
        return sorted(out, key=lambda d: -d.score)  # best first, as detectors give them


class _Followed:
    def __init__(self, mask, obj, frame_idx, pos):
        self.anchor, self.obj, self.frame, self.pos = mask.copy(), obj, frame_idx, pos
        self.area = max(int(mask.sum()), 1)
        self.drift = np.zeros(2)


class StandInPropagator:
    def __init__(self, gt, drift: float = 0.3, score_noise: float = 0.05, fp_score: float = 0.6, stride: int = 1,
                 seed: int = 0):
        self.truth, self.drift, self.score_noise, self.fp_score = _Truth(gt, stride), drift, score_noise, fp_score
        self.seed = seed
        self.objects: dict[int, _Followed] = {}
        self.size = None

    def reset(self, size: tuple[int, int]) -> None:
        self.size, self.objects = tuple(size), {}

    def step(self, frame_idx: int, frame: np.ndarray) -> dict[int, Propagated]:
        out = {}
        inst = self.truth.instances(frame_idx, self.size) if self.objects else None
        for oid, f in self.objects.items():
            rng = np.random.default_rng([self.seed, 202, frame_idx, oid])
            if frame_idx > f.frame:
                f.drift += rng.normal(0, self.drift, 2)
            move = f.drift.copy()
            now = self.truth.position(f.obj, frame_idx, self.size) if f.obj is not None else None
            if now is not None and f.pos is not None:
                move += np.subtract(now, f.pos)
            mask = _shift(f.anchor, int(round(move[0])), int(round(move[1])))
            if f.obj is None:
                score = self.fp_score
            else:
                mask &= ndimage.binary_dilation(inst == f.obj, iterations=2)
                score = mask.sum() / f.area
            score = float(np.clip(score + rng.normal(0, self.score_noise), 0, 1))
            out[oid] = Propagated(mask, score)
        return out

    def add_objects(self, frame_idx: int, frame: np.ndarray, masks: dict[int, np.ndarray]) -> None:
        for oid, m in masks.items():
            obj, iou = self.truth.best_object(m, frame_idx)
            obj = obj if iou >= 0.3 else None
            pos = self.truth.position(obj, frame_idx, self.size) if obj is not None else None
            self.objects[oid] = _Followed(m, obj, frame_idx, pos)

    def remove_objects(self, ids: list[int]) -> None:
        for oid in ids:
            self.objects.pop(oid, None)


class StandInEvidence:
    def __init__(self, gt, num_classes: int, signal: float = 3.0, noise: float = 1.0, confusion: float = 0.15,
                 stride: int = 1, seed: int = 0):
        self.truth, self.num_classes = _Truth(gt, stride), num_classes
        self.classes = gt.object_classes()
        self.signal, self.noise, self.confusion, self.seed = signal, noise, confusion, seed

    def logits(self, frame_idx: int, frame: np.ndarray, masks: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        out = {}
        C = self.num_classes
        for tid, m in masks.items():
            rng = np.random.default_rng([self.seed, 303, frame_idx, tid])
            z = rng.normal(0, self.noise, C + 1)
            obj, iou = self.truth.best_object(m, frame_idx)
            if obj is not None and iou >= 0.3:
                z[self.classes[obj]] += self.signal * iou
                if C > 1 and rng.random() < self.confusion:
                    z[int(rng.choice([c for c in range(C) if c != self.classes[obj]]))] += self.signal * rng.uniform(
                        0.5, 1.2)
            else:
                z[C] += self.signal
            out[tid] = z.astype(np.float32)
        return out
