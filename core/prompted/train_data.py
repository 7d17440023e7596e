"""Training pairs for CLIPSeg: (image, prompt, mask) from a manifest, with joint augmentation.

Every random choice (order, prompt, augmentation) comes from a generator seeded by (seed, epoch, index), so an
epoch is the same whether it runs in one go or is resumed half-way."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.errors import BadInput
from core.data.images import load_image
from core.prompted.manifest import ManifestRow
from core.prompted.prompts import LABEL_PROMPTS


@dataclass
class Batch:
    pixels: torch.Tensor  # (B, 3, S, S) normalised
    masks: torch.Tensor  # (B, S, S) float in [0, 1]
    prompts: list[str]
    labels: list[str]


class PairSource:
    """Rows resized to the model size once (cached), then drawn as augmented pairs."""

    CACHE = 4096

    def __init__(self, rows: list[ManifestRow], size: int, mean, std, seed: int, augment: bool = True,
                 balance: bool = False):
        if not rows:
            raise BadInput("The training split is empty: nothing to train on.")
        self.rows, self.size, self.seed, self.augment, self.balance = rows, size, seed, augment, balance
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def resized(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        row = self.rows[i]
        image = load_image(row.image_path)
        if image.shape[:2] != (row.height, row.width):
            raise BadInput(f"{row.image_path} is {image.shape[1]}×{image.shape[0]} but its annotations say "
                           f"{row.width}×{row.height}.")
        s = self.size
        img = np.array(Image.fromarray(image).resize((s, s), Image.BILINEAR))
        mask = torch.from_numpy(row.mask().astype(np.float32))[None, None]
        mask = F.interpolate(mask, size=(s, s), mode="area")[0, 0].numpy()  # soft edges, exact coverage
        self._cache[i] = (img, mask)
        if len(self._cache) > self.CACHE:
            self._cache.popitem(last=False)
        return img, mask

    def order(self, epoch: int) -> list[int]:
        """This epoch's row order; with balance, each label contributes as many pairs as the largest."""
        rng = np.random.default_rng([self.seed, epoch, 0])
        idx = np.arange(len(self.rows))
        if self.balance:
            by_label: dict[str, list[int]] = {}
            for i, r in enumerate(self.rows):
                by_label.setdefault(r.label, []).append(i)
            n = max(len(v) for v in by_label.values())
            idx = np.concatenate([rng.choice(v, n, replace=len(v) < n) for _, v in sorted(by_label.items())])
        return [int(i) for i in rng.permutation(idx)]

    def pair(self, i: int, epoch: int, position: int) -> tuple[torch.Tensor, torch.Tensor, str, str]:
        rng = np.random.default_rng([self.seed, epoch, position + 1])
        row = self.rows[i]
        prompt = str(rng.choice(LABEL_PROMPTS[row.label]))
        img, mask = self.resized(i)
        x = torch.from_numpy(img).permute(2, 0, 1).float() / 255.0
        y = torch.from_numpy(mask)
        if self.augment:
            x, y = augment(x, y, rng)
        return (x - self.mean) / self.std, y, prompt, row.label

    def batches(self, epoch: int, batch_size: int, start: int = 0):
        """Yields (step, Batch) from `start` (a resumed epoch skips the steps it had done)."""
        order = self.order(epoch)
        steps = (len(order) + batch_size - 1) // batch_size
        for step in range(start, steps):
            items = [self.pair(i, epoch, step * batch_size + k)
                     for k, i in enumerate(order[step * batch_size:(step + 1) * batch_size])]
            yield step, Batch(torch.stack([t[0] for t in items]), torch.stack([t[1] for t in items]),
                              [t[2] for t in items], [t[3] for t in items])

    def steps_per_epoch(self, batch_size: int) -> int:
        return (len(self.order(0)) + batch_size - 1) // batch_size


def augment(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Flips, 90° rotations, a small scale-and-crop on image and mask together; colour jitter on the image."""
    s = x.shape[-1]
    if rng.random() < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    if rng.random() < 0.5:
        x, y = x.flip(-2), y.flip(-2)
    k = int(rng.integers(0, 4))
    if k:
        x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
    scale = float(rng.uniform(0.8, 1.0))
    if scale < 0.999:
        c = max(8, int(round(s * scale)))
        top, left = int(rng.integers(0, s - c + 1)), int(rng.integers(0, s - c + 1))
        x = F.interpolate(x[None, :, top:top + c, left:left + c], size=(s, s), mode="bilinear", align_corners=False)[0]
        y = F.interpolate(y[None, None, top:top + c, left:left + c], size=(s, s), mode="bilinear", align_corners=False)[0, 0]
    brightness, contrast, saturation = (float(rng.uniform(0.8, 1.2)) for _ in range(3))
    gray = x.mean(0, keepdim=True)
    x = gray + (x - gray) * saturation
    x = (x - x.mean()) * contrast + x.mean()
    x = (x * brightness).clamp(0, 1)
    return x.contiguous(), y.contiguous()


def positive_fraction(rows: list[ManifestRow]) -> float:
    """Foreground pixels over all pixels of the rows' ground truth, at full resolution."""
    fg = total = 0
    for r in rows:
        m = r.mask()
        fg += int(m.sum())
        total += m.size
    return fg / total if total else 0.0
