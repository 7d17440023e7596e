"""Full-resolution labels from working-resolution scores, without a names × H × W array.

Published dense methods upsample their scores (names × h × w, at the short side of 336 or so) bilinearly to the
image's size, then take a softmax, the best synonym per class and the argmax. SegLab gets the same labels by
bounds: a bilinear value lies between the smallest and the largest of its cell's four corners, so in most cells
one class wins everywhere; only the pixels of cells where several classes can win are interpolated, and only for
the names that can win there. Memory: O(H·W) for the labels plus O(names·h·w) at the working resolution.

The interpolation is PyTorch's (`F.interpolate(mode="bilinear", align_corners=False)`), coordinates and weights
computed the same way in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

BUDGET_ELEMENTS = 8_000_000  # floats per temporary (32 MB) when pixels are evaluated in chunks
MARGIN = 1e-5  # slack on the cell bounds for float rounding in the interpolation
DENSE_ELEMENTS = 48_000_000  # below names × H × W this many, the whole upsampled map is cheaper than bounds
DROPPED = -1e30  # the score of a name left out (finite: a zero weight times it must stay zero)


@dataclass(frozen=True)
class Axis:
    """For each output coordinate: the source index below and above (equal at the border) and the upper weight."""

    lo: torch.Tensor  # (n_out,) int64
    hi: torch.Tensor
    w: torch.Tensor  # (n_out,) float32

    @staticmethod
    def bilinear(n_in: int, n_out: int) -> "Axis":
        scale = torch.tensor(n_in / n_out, dtype=torch.float32)
        src = ((torch.arange(n_out, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_min(0)
        lo = src.to(torch.int64).clamp_max(n_in - 1)
        hi = torch.where(lo < n_in - 1, lo + 1, lo)
        return Axis(lo, hi, (src - lo.to(torch.float32)).clamp(0, 1))


def interpolate_at(scores: torch.Tensor, ay: Axis, ax: Axis, ys: torch.Tensor, xs: torch.Tensor,
                   names: torch.Tensor | None = None) -> torch.Tensor:
    """Bilinear values at output pixels (ys, xs): (names, P), or (P, K) for per-pixel name indices names (P, K)."""
    h, w = scores.shape[-2:]
    y0, y1, wy = ay.lo[ys], ay.hi[ys], ay.w[ys]
    x0, x1, wx = ax.lo[xs], ax.hi[xs], ax.w[xs]
    if names is None:
        s = scores
        a, b, c, d = s[:, y0, x0], s[:, y0, x1], s[:, y1, x0], s[:, y1, x1]
    else:
        flat = scores.reshape(-1)
        base = names * (h * w)
        a, b = flat[base + (y0 * w + x0)[:, None]], flat[base + (y0 * w + x1)[:, None]]
        c, d = flat[base + (y1 * w + x0)[:, None]], flat[base + (y1 * w + x1)[:, None]]
        wy, wx = wy[:, None], wx[:, None]
    return (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * c + wx * d)


def upsample_region(scores: torch.Tensor, size: tuple[int, int], rows: tuple[int, int],
                    cols: tuple[int, int] | None = None) -> torch.Tensor:
    """(names, h, w) -> (names, rows, cols) of the bilinear upsampling to `size`, only that window."""
    ay, ax = Axis.bilinear(scores.shape[-2], size[0]), Axis.bilinear(scores.shape[-1], size[1])
    y = torch.arange(*rows)
    x = torch.arange(*(cols or (0, size[1])))
    yy, xx = y.repeat_interleave(len(x)), x.repeat(len(y))
    return interpolate_at(scores, ay, ax, yy, xx).reshape(scores.shape[0], len(y), len(x))


def _cell_bounds(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per cell (indexed by its lower corner), the max and min over its four corners: (names, h, w) each."""
    down = torch.cat([s[:, 1:], s[:, -1:]], dim=1)
    vmax, vmin = torch.maximum(s, down), torch.minimum(s, down)
    right = lambda t: torch.cat([t[:, :, 1:], t[:, :, -1:]], dim=2)
    return torch.maximum(vmax, right(vmax)), torch.minimum(vmin, right(vmin))


@dataclass
class FullResolution:
    """Labels and confidences at the image's size from (names, h, w) scores; names map to classes by `owner`.

    Scores are logits times the logit scale: the probability of a name is the softmax over all names."""

    scores: torch.Tensor  # (names, h, w) float32
    owner: torch.Tensor  # (names,) int64 class of each name
    size: tuple[int, int]  # (H, W)

    def __post_init__(self):
        self.ay = Axis.bilinear(self.scores.shape[1], self.size[0])
        self.ax = Axis.bilinear(self.scores.shape[2], self.size[1])

    def _cell_pixels(self, axis: Axis, n_in: int):
        """Per source index: the first output coordinate whose cell starts there, and how many there are."""
        count = torch.bincount(axis.lo, minlength=n_in)
        return torch.cumsum(count, 0) - count, count

    def _blocks(self, s: torch.Tensor, cells: torch.Tensor, names: torch.Tensor | None = None):
        """For the flagged cells (h, w), in chunks: pixel rows ys (n, Ry), columns xs (n, Rx), which are inside
        the image (n, Ry, Rx), and the interpolated scores (n, K, Ry, Rx) of names (n, K) or of all names.
        The four corners are read once per cell; PyTorch's bilinear formula is applied per pixel."""
        h, w = s.shape[-2:]
        sy, ny = self._cell_pixels(self.ay, h)
        sx, nx = self._cell_pixels(self.ax, w)
        cy, cx = cells.nonzero(as_tuple=True)
        ry, rx = int(ny.max()), int(nx.max())
        k = s.shape[0] if names is None else names.shape[1]
        step = max(1, BUDGET_ELEMENTS // (4 * k * ry * rx))
        for i in range(0, len(cy), step):
            y0, x0 = cy[i:i + step], cx[i:i + step]
            y1, x1 = (y0 + 1).clamp_max(h - 1), (x0 + 1).clamp_max(w - 1)
            ys = sy[y0, None] + torch.arange(ry)
            xs = sx[x0, None] + torch.arange(rx)
            inside = (ys < (sy + ny)[y0, None])[:, :, None] & (xs < (sx + nx)[x0, None])[:, None, :]
            ys, xs = ys.clamp_max(self.size[0] - 1), xs.clamp_max(self.size[1] - 1)
            if names is None:
                a, b, c, d = (s[:, yy, xx].T for yy, xx in ((y0, x0), (y0, x1), (y1, x0), (y1, x1)))
            else:
                nm = names[i:i + step]
                flat, base = s.reshape(-1), nm * (h * w)
                a, b, c, d = (flat[base + (yy * w + xx)[:, None]] for yy, xx in ((y0, x0), (y0, x1), (y1, x0), (y1, x1)))
            a, b, c, d = (t[:, :, None, None] for t in (a, b, c, d))
            wy = self.ay.w[ys][:, None, :, None]
            wx = self.ax.w[xs][:, None, None, :]
            vals = (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * c + wx * d)
            yield i, ys, xs, inside, vals

    def _dense(self) -> torch.Tensor | None:
        """The whole upsampled map when it is small (an image near the working size), else None."""
        if self.scores.shape[0] * self.size[0] * self.size[1] > DENSE_ELEMENTS:
            return None
        return F.interpolate(self.scores[None], size=self.size, mode="bilinear", align_corners=False)[0]

    def labels(self, keep: torch.Tensor | None = None) -> torch.Tensor:
        """(H, W) int64 class of the best name among kept names (all by default) at every pixel."""
        dense = self._dense()
        if dense is not None:
            return self.owner[(dense if keep is None else dense.masked_fill_(~keep[:, None, None], DROPPED)).argmax(0)]
        s = self.scores if keep is None else self.scores.masked_fill(~keep[:, None, None], DROPPED)
        cmax, cmin = _cell_bounds(s)
        cand = cmax >= cmin.max(0).values - MARGIN
        del cmin
        best = self.owner[cmax.argmax(0)]  # the name with the highest bound can always win: a candidate
        undecided = (cand & (self.owner[:, None, None] != best)).any(0)  # another class can win somewhere
        out = best[self.ay.lo][:, self.ax.lo]
        if not undecided.any():
            return out
        k_names = cand.sum(0)
        where = undecided.nonzero(as_tuple=True)  # row-major, as _blocks enumerates cells
        bounds = cmax[:, where[0], where[1]].masked_fill(~cand[:, where[0], where[1]], -torch.inf)  # (names, cells)
        del cmax, cand
        prev, kk = 0, k_names[where]
        for k in _buckets(int(kk.max()), s.shape[0]):
            sel = (kk > prev) & (kk <= k)
            prev = k
            if not sel.any():
                continue
            top = bounds[:, sel].topk(k, dim=0).indices.T  # every name that can win there, best bound first
            cells = torch.zeros_like(undecided)
            cells[where[0][sel], where[1][sel]] = True
            for i, ys, xs, inside, vals in self._blocks(s, cells, top):
                nm = top[i:i + len(ys)]
                win = self.owner[nm.gather(1, _argmax1(vals).flatten(1)).reshape(vals.shape[0], *vals.shape[2:])]
                yy = ys[:, :, None].expand_as(inside)[inside]
                xx = xs[:, None, :].expand_as(inside)[inside]
                out[yy, xx] = win[inside]
        return out

    def best_probability_below(self, thd: float, keep: torch.Tensor | None = None) -> torch.Tensor:
        """(H, W) bool: pixels whose best kept name's probability (softmax over all names) is below thd."""
        dense = self._dense()
        if dense is not None:
            prob = torch.softmax(dense, 0)
            return (prob if keep is None else prob[keep]).max(0).values < thd
        s = self.scores
        sk = s if keep is None else s.masked_fill(~keep[:, None, None], DROPPED)
        cmax, cmin = _cell_bounds(s)
        kmax, kmin = _cell_bounds(sk)
        # the best kept score at any pixel of a cell lies in [max of kept minima, max of kept maxima]
        low_best, high_best = kmin.max(0).values, kmax.max(0).values
        p_low = torch.exp(low_best - torch.logsumexp(cmax, 0))
        p_high = torch.exp(high_best - torch.logsumexp(cmin, 0))
        certain_low = p_high < thd * (1 - 1e-4)
        out = certain_low[self.ay.lo][:, self.ax.lo]
        unsure = ~certain_low & (p_low < thd * (1 + 1e-4))
        for _, ys, xs, inside, vals in self._blocks(s, unsure):
            prob = torch.softmax(vals, 1)
            low = (prob if keep is None else prob[:, keep]).max(1).values < thd
            yy = ys[:, :, None].expand_as(inside)[inside]
            xx = xs[:, None, :].expand_as(inside)[inside]
            out[yy, xx] = low[inside]
        return out

    def class_probability(self, c: int, rows: tuple[int, int] | None = None) -> torch.Tensor:
        """(rows, W) probability of class c (its best synonym) at full resolution, for a band of rows."""
        rows = rows or (0, self.size[0])
        out = []
        step = max(1, BUDGET_ELEMENTS // (self.scores.shape[0] * self.size[1]))
        for r in range(rows[0], rows[1], step):
            band = upsample_region(self.scores, self.size, (r, min(r + step, rows[1])))
            out.append(torch.softmax(band, 0)[self.owner == c].max(0).values)
        return torch.cat(out)


def _argmax1(vals: torch.Tensor) -> torch.Tensor:
    """argmax over dim 1 (first of equals), elementwise for a few names (faster than a strided reduction)."""
    if vals.shape[1] > 8:
        return vals.argmax(1)
    best, idx = vals[:, 0].clone(), torch.zeros(vals[:, 0].shape, dtype=torch.int64)
    for j in range(1, vals.shape[1]):
        more = vals[:, j] > best
        best = torch.where(more, vals[:, j], best)
        idx[more] = j
    return idx


def _buckets(k_max: int, n: int) -> list[int]:
    out, k = [], 2
    while True:
        out.append(min(k, n))
        if k >= k_max or k >= n:
            return out
        k *= 2


@dataclass
class TiledScores:
    """The same questions as FullResolution, for scores that exist only tile by tile (PAMR at full resolution):
    `tile(rows, cols)` gives (names, rows, cols) scores; nothing larger than a tile is ever held."""

    tile: object  # Callable[[tuple[int, int], tuple[int, int]], torch.Tensor]
    owner: torch.Tensor
    size: tuple[int, int]
    tile_size: int = 512

    def _windows(self):
        h, w = self.size
        for r in range(0, h, self.tile_size):
            for c in range(0, w, self.tile_size):
                yield (r, min(r + self.tile_size, h)), (c, min(c + self.tile_size, w))

    def labels_and_low(self, keep: torch.Tensor | None, thd: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        labels = torch.empty(self.size, dtype=torch.int64)
        low = torch.zeros(self.size, dtype=torch.bool) if thd > 0 else None
        for rows, cols in self._windows():
            s = self.tile(rows, cols)
            sk = s if keep is None else s.masked_fill(~keep[:, None, None], DROPPED)
            labels[rows[0]:rows[1], cols[0]:cols[1]] = self.owner[sk.argmax(0)]
            if low is not None:
                prob = torch.softmax(s, 0)
                prob = prob if keep is None else prob[keep]
                low[rows[0]:rows[1], cols[0]:cols[1]] = prob.max(0).values < thd
        return labels, low


def published_labels(full, n_classes: int, area_thd: float | None, prob_thd: float) -> torch.Tensor:
    """SCLIP's post-processing at the image's size: argmax of the best synonym per class; with area_thd, classes
    1.. whose share of the non-background pixels is not above it are zeroed and the argmax taken again; with
    prob_thd, pixels whose best remaining probability is below it become class 0."""
    def both(keep):
        if isinstance(full, TiledScores):
            return full.labels_and_low(keep, prob_thd)
        return full.labels(keep), (full.best_probability_below(prob_thd, keep) if prob_thd > 0 else None)

    labels, low = both(None)
    if area_thd is not None and n_classes > 1:
        fg = torch.bincount(labels.ravel(), minlength=n_classes)[1:]
        kept = torch.ones(n_classes, dtype=torch.bool)
        kept[1:] = fg > area_thd * fg.sum()
        if not kept.all():
            labels, low = both(kept[full.owner])
    if low is not None:
        labels[low] = 0
    return labels
