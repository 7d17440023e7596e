"""Tiny clips written with PyAV for the tests: any frames, a variable frame rate, a clip that says it lasts two hours."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


def write_clip(path, images, codec="libx264", pix_fmt="yuv420p", rate=10, pts_ms=None):
    """Encode (h, w, 3) uint8 images; pts_ms gives each frame's time in milliseconds (a variable frame rate)."""
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=rate)
        s.height, s.width = images[0].shape[:2] if images else (16, 16)
        s.pix_fmt = pix_fmt
        if pts_ms is not None:
            s.codec_context.time_base = Fraction(1, 1000)
        out.start_encoding()
        for i, img in enumerate(images):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts_ms is not None:
                vf.pts, vf.time_base = pts_ms[i], Fraction(1, 1000)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def write_two_hour_clip(path):
    """Two 16×16 frames two hours apart: the container says the clip lasts two hours."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=1)
        s.width = s.height = 16
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = Fraction(1, 1)
        for pts in (0, 7200):
            vf = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            vf.pts, vf.time_base = pts, Fraction(1, 1)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path
