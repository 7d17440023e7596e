"""Clips of moving shapes with exact per-frame instance masks and IDs, for measuring a video tracker without weights.

A clip is a `ShapeClip`: a few objects of four classes (disc, square, triangle, ring: the ring has a hole) on a
textured background. Every clip has two objects whose paths cross mid-clip (the one in front occludes the other),
one that enters from outside the frame mid-clip, one that leaves before the end, and others that wander and bounce
off the borders; half the clips have a pillar in front of everything that hides objects passing behind it.
Frames are rendered on demand (`frame(t)`), so a long clip never sits in memory: `instances(t)` is the visible
instance map (0 = background, object ids from 1), `shape(id, t)` the object's whole silhouette ignoring occlusion,
`position(id, t)` its centre. `write_mp4` encodes a clip with PyAV (H.264, yuv420p, even sizes); `write_eval_folder`
writes the evaluation layout: DIR/classes.txt, DIR/clips/NAME.mp4, DIR/masks/NAME/00000.png (16-bit instance ids,
one PNG per frame) and DIR/masks/NAME/instances.json ({"classes": [...], "objects": {"id": class index}}).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image
from scipy import ndimage

CLASSES = ("disc", "square", "triangle", "ring")
BASE_COLOURS = np.array([(220, 60, 50), (60, 110, 220), (240, 200, 40), (80, 190, 90)], np.float32)


@dataclass(frozen=True)
class ShapeObject:
    id: int  # from 1
    cls: int  # index into CLASSES
    radius: float
    start: tuple[float, float]  # (y, x) at frame `t0`
    velocity: tuple[float, float]  # (vy, vx) pixels per frame
    t0: float = 0.0
    bounce: bool = False  # reflect off the borders (wanderers); otherwise a straight line (may leave the frame)
    depth: int = 0  # larger is in front
    spin: float = 0.0  # radians per frame (squares and triangles)
    colour: tuple[int, int, int] = (128, 128, 128)


@dataclass(frozen=True)
class ClipFrame:
    index: int
    image: np.ndarray  # (h, w, 3) uint8
    instances: np.ndarray  # (h, w) int32, 0 = background


def _reflect(p: float, lo: float, hi: float) -> float:
    span = hi - lo
    if span <= 0:
        return lo
    q = (p - lo) % (2 * span)
    return lo + (q if q <= span else 2 * span - q)


@dataclass(frozen=True)
class ShapeClip:
    height: int
    width: int
    n_frames: int
    fps: float
    objects: tuple[ShapeObject, ...]
    pillar: tuple[int, int] | None = None  # x0, x1 of a vertical occluder in front of everything
    seed: int = 0
    classes: tuple[str, ...] = CLASSES

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    def object(self, obj_id: int) -> ShapeObject:
        return next(o for o in self.objects if o.id == obj_id)

    def object_classes(self) -> dict[int, int]:
        return {o.id: o.cls for o in self.objects}

    def position(self, obj_id: int, t: float) -> tuple[float, float]:
        o = self.object(obj_id)
        y, x = o.start[0] + o.velocity[0] * (t - o.t0), o.start[1] + o.velocity[1] * (t - o.t0)
        if o.bounce:
            y, x = _reflect(y, o.radius, self.height - 1 - o.radius), _reflect(x, o.radius, self.width - 1 - o.radius)
        return y, x

    def shape(self, obj_id: int, t: int) -> np.ndarray:
        """(h, w) bool: the object's whole silhouette at frame t, occlusion ignored (clipped to the frame)."""
        o = self.object(obj_id)
        cy, cx = self.position(obj_id, t)
        yy, xx = np.ogrid[0:self.height, 0:self.width]
        dy, dx = yy - cy, xx - cx
        r, name = o.radius, self.classes[o.cls] if o.cls < len(self.classes) else CLASSES[o.cls % 4]
        if name in ("disc", "ring"):
            d2 = dy ** 2 + dx ** 2
            return (d2 <= r * r) & (d2 >= (0.5 * r) ** 2) if name == "ring" else d2 <= r * r
        a = o.spin * t
        u, v = dx * np.cos(a) + dy * np.sin(a), -dx * np.sin(a) + dy * np.cos(a)
        if name == "square":
            half = r * 0.8
            return (np.abs(u) <= half) & (np.abs(v) <= half)
        # triangle: three half-planes around the centre, circumradius r
        inside = np.ones((self.height, self.width), bool)
        for k in range(3):
            ang = a + np.pi / 2 + k * 2 * np.pi / 3
            inside &= (dx * np.cos(ang) + dy * np.sin(ang)) <= r * 0.5
        return inside

    def _background(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 7])
        tex = ndimage.gaussian_filter(rng.normal(0, 1, (self.height, self.width)), 4) * 60
        base = np.array([90, 100, 95], np.float32)
        return base + tex[..., None] * np.array([1.0, 0.9, 0.8], np.float32)

    def instances(self, t: int) -> np.ndarray:
        inst = np.zeros((self.height, self.width), np.int32)
        for o in sorted(self.objects, key=lambda o: o.depth):
            inst[self.shape(o.id, t)] = o.id
        if self.pillar is not None:
            inst[:, self.pillar[0]:self.pillar[1]] = 0
        return inst

    def frame(self, t: int, background: np.ndarray | None = None) -> ClipFrame:
        if not 0 <= t < self.n_frames:
            raise IndexError(f"frame {t} of a {self.n_frames}-frame clip")
        inst = self.instances(t)
        img = (self._background() if background is None else background).copy()
        for o in self.objects:
            sel = inst == o.id
            img[sel] = np.asarray(o.colour, np.float32)
        if self.pillar is not None:
            img[:, self.pillar[0]:self.pillar[1]] = (150, 140, 120)
        noise = np.random.default_rng([self.seed, 11, t]).normal(0, 4, img.shape)
        return ClipFrame(t, np.clip(img + noise, 0, 255).astype(np.uint8), inst)

    def frames(self) -> Iterator[ClipFrame]:
        """Every frame in order, rendered one at a time."""
        bg = self._background()
        for t in range(self.n_frames):
            yield self.frame(t, bg)


def _inside_point(rng, h, w, margin) -> tuple[float, float]:
    return float(rng.uniform(margin, h - margin)), float(rng.uniform(margin, w - margin))


def _outside_point(rng, h, w, r) -> tuple[float, float]:
    side = int(rng.integers(4))
    if side < 2:
        return (-r - 1.0 if side == 0 else h + r, float(rng.uniform(0.2 * w, 0.8 * w)))
    return (float(rng.uniform(0.2 * h, 0.8 * h)), -r - 1.0 if side == 2 else w + r)


def make_clip(seed: int, height: int = 120, width: int = 160, n_frames: int = 48, fps: float = 12.0,
              n_objects: int | None = None, pillar: bool | None = None) -> ShapeClip:
    """A random clip (deterministic in `seed`): a crossing pair, one object entering, one leaving, wanderers."""
    if height % 2 or width % 2:
        raise ValueError("clip sizes must be even (H.264 with yuv420p)")
    rng = np.random.default_rng([seed, 2024])
    n = int(rng.integers(4, 7)) if n_objects is None else max(4, n_objects)
    scale = min(height, width) / 120.0
    objects, depths = [], rng.permutation(n)

    def radius():
        return float(rng.uniform(10, 16) * scale)

    def add(**kw):
        i = len(objects) + 1
        cls = int(rng.integers(len(CLASSES)))
        colour = np.clip(BASE_COLOURS[cls] + rng.normal(0, 12, 3), 0, 255).astype(int)
        objects.append(ShapeObject(id=i, cls=cls, depth=int(depths[i - 1]), colour=tuple(int(c) for c in colour),
                                   spin=float(rng.uniform(-0.08, 0.08)), **kw))

    # two objects crossing at `cross` around mid-clip, from opposite sides
    tc = float(rng.uniform(0.35, 0.6) * n_frames)
    cross = (float(rng.uniform(0.4, 0.6) * height), float(rng.uniform(0.4, 0.6) * width))
    ang = float(rng.uniform(0, np.pi))
    for k in range(2):
        a = ang + k * float(rng.uniform(0.4, 0.6) * np.pi)
        reach = float(rng.uniform(0.25, 0.4) * min(height, width))
        start = (cross[0] - reach * np.sin(a), cross[1] - reach * np.cos(a))
        add(radius=radius(), start=start, velocity=((cross[0] - start[0]) / tc, (cross[1] - start[1]) / tc))
    # one entering mid-clip from outside the frame
    r = radius()
    t_in = float(rng.uniform(0.25, 0.5) * n_frames)
    src, dst = _outside_point(rng, height, width, r), _inside_point(rng, height, width, 2 * r)
    speed = float(rng.uniform(1.5, 3.0) * scale)
    d = np.hypot(dst[0] - src[0], dst[1] - src[1])
    add(radius=r, start=src, velocity=(speed * (dst[0] - src[0]) / d, speed * (dst[1] - src[1]) / d), t0=t_in)
    # one leaving before the end
    r = radius()
    src, dst = _inside_point(rng, height, width, 2 * r), _outside_point(rng, height, width, r)
    t_out = float(rng.uniform(0.5, 0.8) * n_frames)
    add(radius=r, start=src, velocity=((dst[0] - src[0]) / t_out, (dst[1] - src[1]) / t_out))
    # wanderers
    for _ in range(n - 4):
        r = radius()
        a, speed = float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.5, 2.5) * scale)
        add(radius=r, start=_inside_point(rng, height, width, r + 1), velocity=(speed * np.sin(a), speed * np.cos(a)),
            bounce=True)
    with_pillar = bool(rng.random() < 0.5) if pillar is None else pillar
    px = int(rng.uniform(0.3, 0.7) * width)
    bar = (px, px + max(2, int(0.06 * width))) if with_pillar else None
    return ShapeClip(height, width, n_frames, fps, tuple(objects), bar, seed)


def write_mp4(clip: ShapeClip, path: Path, crf: int = 18) -> Path:
    """The clip as an H.264 MP4 (yuv420p, plays in browsers), encoded frame by frame."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=int(round(clip.fps)))
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for f in clip.frames():
            for packet in stream.encode(av.VideoFrame.from_ndarray(f.image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_eval_folder(root: Path, n_clips: int, first_seed: int = 0, **clip_kw) -> Path:
    """DIR/classes.txt, DIR/clips/NAME.mp4, DIR/masks/NAME/{00000.png..., instances.json} for seeds first_seed..."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for seed in range(first_seed, first_seed + n_clips):
        clip = make_clip(seed, **clip_kw)
        name = f"shapes_{seed:04d}"
        write_mp4(clip, root / "clips" / f"{name}.mp4")
        masks = root / "masks" / name
        masks.mkdir(parents=True, exist_ok=True)
        for t in range(clip.n_frames):
            Image.fromarray(clip.instances(t).astype(np.uint16)).save(masks / f"{t:05d}.png")
        meta = {"classes": list(clip.classes), "objects": {str(k): v for k, v in clip.object_classes().items()},
                "fps": clip.fps, "frames": clip.n_frames}
        (masks / "instances.json").write_text(json.dumps(meta, indent=1) + "\n")
    return root
