"""Streaming decode of a clip with PyAV: stride, caps, a resize to the processing size; never the whole clip in memory.

`open_video(path, cfg)` reads the container's metadata and refuses a clip before decoding it (not a video, an image,
no video stream, longer than `max_seconds`), then decodes its first frame (0 frames is refused there too).
`Video.frames()` is a generator: one processed frame at a time, converted by FFmpeg's scaler straight to the
processing size (the full-size picture is never a numpy array), every `stride`-th decoded frame, at most
`max_frames` of them. Frames carry their decode index and their time from the stream's timestamps, so a variable
frame rate needs nothing special; a rotation stored in the stream (phone clips) is applied, so portrait clips come
out portrait. Defaults: 300 processed frames, 120 seconds of clip, 512 pixels on the long side (never upscaled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from core.errors import BadInput


@dataclass(frozen=True)
class FrameConfig:
    stride: int = 1  # keep every stride-th decoded frame
    max_frames: int = 300  # processed frames; decoding stops there (with a message)
    max_seconds: float = 120.0  # a longer clip is refused from its metadata, before decoding
    size: int | None = 512  # long side of the processing frames; None keeps the clip's size; never upscales

    def __post_init__(self):
        if self.stride < 1:
            raise BadInput(f"The frame stride must be at least 1 (got {self.stride}).")
        if self.max_frames < 1:
            raise BadInput(f"The frame cap must be at least 1 (got {self.max_frames}).")
        if not self.max_seconds > 0:
            raise BadInput(f"The duration cap must be positive (got {self.max_seconds}).")
        if self.size is not None and self.size < 8:
            raise BadInput(f"The processing size must be at least 8 pixels (got {self.size}).")


@dataclass(frozen=True)
class Frame:
    index: int  # processed frame index: 0, 1, 2, ...
    source_index: int  # decoded frame number in the clip
    time: float | None  # seconds, from the frame's timestamp
    image: np.ndarray  # (h, w, 3) uint8 at the processing size


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int  # as displayed (after the stored rotation)
    height: int
    rotation: int  # degrees counter-clockwise applied to the decoded pictures
    fps: float | None  # average frame rate from the stream, None when unknown
    duration: float | None  # seconds, from the container (or the stream), None when unknown
    frames: int | None  # frames the stream says it holds, None when unknown
    codec: str
    processing_size: tuple[int, int]  # (h, w) of the frames given to the tracker
    stride: int
    expected_frames: int | None  # processed frames to expect (an estimate for a variable frame rate), None: unknown

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def processing_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(h, w) with the long side at most `size`, the aspect kept (each side at least 1)."""
    scale = 1.0 if size is None else min(1.0, size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _seconds(value, base) -> float | None:
    if value is None or base is None:
        return None
    return float(value * base)


def _duration(container, stream) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    d = _seconds(stream.duration, stream.time_base)
    return d if d and d > 0 else None


def _human(seconds: float) -> str:
    h, rest = divmod(int(round(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min {s:02d} s" if h else f"{m} min {s:02d} s" if m else f"{seconds:.1f} s"


class Video:
    """An opened clip: `info`, `frames()` (a generator, once), `messages` (what was capped), `close()`."""

    def __init__(self, path: Path, cfg: FrameConfig):
        self.path, self.cfg = Path(path), cfg
        self.messages: list[str] = []
        self._container = None
        self._first = None
        self._decoded = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        name = self.path.name
        if not self.path.is_file():
            raise BadInput(f"No such video file: {self.path}")
        if self.path.stat().st_size == 0:
            raise BadInput(f"'{name}' is empty (0 bytes): it holds no video frame.")
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.error.EOFError:
            raise BadInput(f"'{name}' holds no video frame (the file is empty or ends before its first frame).") from None
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)  # FFmpeg's reason, without the server's path
            raise BadInput(f"'{name}' is not a video SegLab can read ({reason}).") from None
        fmt = self._container.format.name or ""
        if fmt.endswith("_pipe") or fmt == "image2":
            raise BadInput(f"'{name}' is an image ({fmt.replace('_pipe', '')}), not a video.")
        if not self._container.streams.video:
            raise BadInput(f"'{name}' has no video stream (streams: "
                           f"{', '.join(s.type for s in self._container.streams) or 'none'}).")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        duration = _duration(self._container, stream)
        if duration is not None and duration > self.cfg.max_seconds:
            raise BadInput(f"'{name}' lasts {_human(duration)}, over the {_human(self.cfg.max_seconds)} limit for a "
                           "clip; trim it or raise the duration cap.")
        fps = float(stream.average_rate) if stream.average_rate else None
        n = int(stream.frames) if stream.frames else None
        if n is None and duration and fps:
            n = int(round(duration * fps))
        self._decoded = self._container.decode(stream)
        self._first = self._next_decoded()
        if self._first is None:
            raise BadInput(f"'{name}' holds no video frame that could be decoded.")
        rotation = int(round((getattr(self._first, "rotation", 0) or 0) / 90.0)) * 90 % 360
        w, h = self._first.width, self._first.height
        if rotation in (90, 270):
            w, h = h, w
        expected = None if n is None else min(self.cfg.max_frames, math.ceil(n / self.cfg.stride))
        self.info = VideoInfo(str(self.path), w, h, rotation, fps, duration, n, stream.codec_context.name,
                              processing_size(h, w, self.cfg.size), self.cfg.stride, expected)

    def _next_decoded(self):
        try:
            return next(self._decoded)
        except StopIteration:
            return None
        except av.error.FFmpegError as exc:
            raise BadInput(f"'{self.path.name}' could not be decoded: {exc}") from None

    def _picture(self, frame) -> np.ndarray:
        h, w = self.info.processing_size
        sw, sh = (h, w) if self.info.rotation in (90, 270) else (w, h)
        interpolation = "AREA" if sw < frame.width or sh < frame.height else "BILINEAR"
        rgb = frame.reformat(width=sw, height=sh, format="rgb24", interpolation=interpolation).to_ndarray()
        if self.info.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self.info.rotation // 90))
        return rgb

    def frames(self) -> Iterator[Frame]:
        """Processed frames, one at a time; closes the file when done (or when the caller stops early)."""
        if self._first is None and self._decoded is None:
            raise RuntimeError("frames() can be iterated once per open_video")
        cfg, decoded, index, source = self.cfg, self._first, 0, 0
        self._first = None
        try:
            while decoded is not None:
                if source % cfg.stride == 0:
                    t = decoded.time
                    if t is not None and self.info.duration is None and t > cfg.max_seconds:
                        self.messages.append(f"Stopped at {_human(cfg.max_seconds)}, the duration cap (the clip "
                                             "did not state its length).")
                        return
                    if index >= cfg.max_frames:
                        self.messages.append(f"Processed the first {cfg.max_frames} frames (the frame cap); "
                                             "the rest of the clip was not decoded.")
                        return
                    yield Frame(index, source, None if t is None else float(t), self._picture(decoded))
                    index += 1
                source += 1
                decoded = self._next_decoded()
        finally:
            self.close()

    def close(self) -> None:
        self._first, self._decoded = None, None
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "Video":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_video(path: str | Path, cfg: FrameConfig = FrameConfig()) -> Video:
    """Open and check a clip (BadInput with the reason when refused); iterate `.frames()` to decode it."""
    return Video(Path(path), cfg)
