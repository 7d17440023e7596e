"""Drawn scenes of shapes with exact ground truth at three granularities (part, object, region), for MHQR.

A scene has stuff (sky, grass, road) and things of several sizes: cars (body + cabin, non-convex), people (head +
body), dogs (crescents, non-convex), signs on poles (a small square touching a thin bar), some touching each other
(a person against a car, two cars overlapping). Every pixel has a class, an object (instance) and a part; a region
is an object with everything it touches (things) or its filled outline (stuff), what a coarse SAM mask returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

CLASSES = ["sky", "grass", "road", "car", "person", "dog", "sign", "pole"]
STUFF = {0, 1, 2}
COLOURS = np.array([(120, 170, 235), (70, 150, 60), (110, 110, 115), (200, 40, 40), (240, 200, 150),
                    (150, 100, 50), (240, 220, 30), (60, 60, 70)], np.float32)


@dataclass
class ShapeScene:
    image: np.ndarray  # (H, W, 3) uint8
    label: np.ndarray  # (H, W) uint8 class index
    instance: np.ndarray  # (H, W) int32 object id (stuff regions are objects too), a partition
    part: np.ndarray  # (H, W) int32 part id, a partition finer than instance
    instance_class: dict[int, int]  # object id -> class
    class_names: list[str] = field(default_factory=lambda: list(CLASSES))
    _regions: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def region(self, obj: int) -> np.ndarray:
        """(H, W) bool: a thing with every thing it touches (8-neighbour, any class); stuff: its filled outline."""
        if obj not in self._regions:
            if self.instance_class[obj] in STUFF:
                self._regions[obj] = ndimage.binary_fill_holes(self.instance == obj)
            else:
                things = ~np.isin(self.label, list(STUFF))
                comps, _ = ndimage.label(things, structure=np.ones((3, 3)))
                at = np.unique(comps[self.instance == obj])
                self._regions[obj] = np.isin(comps, at[at > 0])
        return self._regions[obj]


class _Canvas:
    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        self.yy, self.xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.label = np.zeros((h, w), np.uint8)
        self.instance = np.zeros((h, w), np.int32)
        self.part = np.zeros((h, w), np.int32)
        self.instance_class: dict[int, int] = {}
        self.next_obj, self.next_part = 0, 0

    def ellipse(self, cy, cx, ry, rx):
        return ((self.yy - cy) / max(ry, 0.5)) ** 2 + ((self.xx - cx) / max(rx, 0.5)) ** 2 <= 1

    def rect(self, y0, x0, y1, x1):
        return (self.yy >= y0) & (self.yy < y1) & (self.xx >= x0) & (self.xx < x1)

    def add(self, cls: int, parts: list[np.ndarray]) -> int | None:
        """Draws an object made of parts over what is there; None if nothing of it is visible."""
        if not np.logical_or.reduce(parts).any():
            return None
        obj = self.next_obj
        self.next_obj += 1
        self.instance_class[obj] = cls
        for p in parts:
            if p.any():
                self.label[p], self.instance[p], self.part[p] = cls, obj, self.next_part
                self.next_part += 1
        return obj


def _background(c: _Canvas, rng: np.random.Generator) -> None:
    h, w = c.h, c.w
    horizon = h * rng.uniform(0.3, 0.5) + h * 0.04 * np.sin(c.xx / w * rng.uniform(2, 6) + rng.uniform(0, 6))
    c.add(0, [c.yy < horizon])
    ground = c.yy >= horizon
    # grass, split by a road band into up to two grass objects; tiles of each are its parts (a fine SAM mask)
    top = h * rng.uniform(0.6, 0.75)
    slope = rng.uniform(-0.15, 0.15)
    road = ground & (c.yy >= top + slope * (c.xx - w / 2)) & (c.yy < top + h * 0.16 + slope * (c.xx - w / 2))
    grass = ground & ~road
    comps, k = ndimage.label(grass)
    for i in range(1, k + 1):
        g = comps == i
        c.add(1, [g & (c.xx < w / 2), g & (c.xx >= w / 2)])
    c.add(2, [road & (c.xx < w / 3), road & (c.xx >= w / 3) & (c.xx < 2 * w / 3), road & (c.xx >= 2 * w / 3)])


def _car(c, cy, cx, s):
    body = c.rect(cy - 4 * s, cx - 11 * s, cy + 3 * s, cx + 11 * s)
    cabin = c.rect(cy - 9 * s, cx - 6 * s, cy - 4 * s, cx + 5 * s) & ~body
    return [body, cabin]


def _person(c, cy, cx, s):
    body = c.ellipse(cy + 2 * s, cx, 6 * s, 2.5 * s)
    head = c.ellipse(cy - 6 * s, cx, 2.2 * s, 2.2 * s) & ~body
    return [body, head]


def _dog(c, cy, cx, s):
    crescent = c.ellipse(cy, cx, 5 * s, 8 * s) & ~c.ellipse(cy - 3 * s, cx + 1 * s, 4 * s, 7 * s)
    return [crescent & (c.xx < cx), crescent & (c.xx >= cx)]


def draw_shape_scene(seed: int, h: int = 96, w: int = 128, n_things: tuple[int, int] = (4, 9)) -> ShapeScene:
    """One scene; sizes scale with h (unit h / 96). Objects land on the ground, drawn back to front."""
    rng = np.random.default_rng(seed)
    c = _Canvas(h, w)
    _background(c, rng)
    u = h / 96
    horizon_y = int(np.argmax((c.label != 0).any(1)))
    things = []
    for _ in range(int(rng.integers(*n_things))):
        kind = rng.choice(["car", "car", "person", "person", "dog", "sign"])
        s = u * float(rng.choice([0.45, 0.7, 1.0, 1.5]))
        cy = float(rng.uniform(horizon_y + 6 * s, h - 4 * s))
        cx = float(rng.uniform(8 * s, w - 8 * s))
        things.append((cy, kind, cx, s))
        if kind == "car" and rng.random() < 0.4:  # touching: a person against the car or a second car behind it
            other = "person" if rng.random() < 0.5 else "car"
            dx = (11 * s + 2.4 * s) * (1 if rng.random() < 0.5 else -1) if other == "person" else 14 * s
            things.append((cy - 1 * s if other == "person" else cy - 2 * s, other, cx + dx, s))
    for cy, kind, cx, s in sorted(things, key=lambda t: t[0]):  # back to front
        if kind == "car":
            c.add(3, _car(c, cy, cx, s))
        elif kind == "person":
            c.add(4, _person(c, cy, cx, s))
        elif kind == "dog":
            c.add(5, _dog(c, cy, cx, s))
        else:  # a sign on a thin pole: the square touches the pole, the pole is 1-3 pixels wide
            half = max(0.5, rng.choice([0.5, 1.0, 1.5]) * u)
            top = cy - 22 * s
            pole = c.rect(top, cx - half, cy, cx + half)
            c.add(7, [pole & (c.yy < (top + cy) / 2), pole & (c.yy >= (top + cy) / 2)])
            c.add(6, [c.rect(top - 7 * s, cx - 4 * s, top + 1, cx + 4 * s)])
    image = COLOURS[c.label].copy()
    shade = rng.uniform(-30, 30, c.next_obj)
    image += shade[c.instance][..., None] + rng.normal(0, 6, image.shape)
    return ShapeScene(np.clip(image, 0, 255).astype(np.uint8), c.label, c.instance, c.part, c.instance_class)
