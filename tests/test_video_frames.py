"""core.video.frames: streaming decode, stride, caps, resize, and the clips it refuses (tiny clips made with PyAV)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from PIL import Image

from core.errors import BadInput
from core.video import frames as frames_module
from core.video.frames import FrameConfig, open_video, processing_size
from video_clips import write_clip, write_two_hour_clip


def ramp(n, h, w):
    """Frame i is a flat grey of level 20 + 10 (i mod 20): a decoded frame says which one it is."""
    return [np.full((h, w, 3), 20 + 10 * (i % 20), np.uint8) for i in range(n)]


def level(image):
    return round((float(image.mean()) - 20) / 10)


def test_stride_resize_and_order(tmp_path):
    path = write_clip(tmp_path / "c.mp4", ramp(12, 48, 96))
    video = open_video(path, FrameConfig(stride=3, size=32))
    assert video.info.processing_size == (16, 32) and (video.info.height, video.info.width) == (48, 96)
    assert video.info.expected_frames == 4
    got = list(video.frames())
    assert [f.index for f in got] == [0, 1, 2, 3]
    assert [f.source_index for f in got] == [0, 3, 6, 9]
    assert [level(f.image) for f in got] == [0, 3, 6, 9]
    assert all(f.image.shape == (16, 32, 3) and f.image.dtype == np.uint8 for f in got)
    assert got[1].time == pytest.approx(0.3)


def test_never_upscales_and_keeps_aspect():
    assert processing_size(100, 200, 512) == (100, 200)
    assert processing_size(1080, 1920, 512) == (288, 512)
    assert processing_size(1920, 1080, 512) == (512, 288)  # portrait stays portrait
    assert processing_size(1080, 1920, None) == (1080, 1920)


def test_frame_cap_stops_decoding_with_a_message(tmp_path):
    path = write_clip(tmp_path / "c.mp4", ramp(12, 16, 16))
    video = open_video(path, FrameConfig(max_frames=5))
    got = list(video.frames())
    assert len(got) == 5 and [level(f.image) for f in got] == [0, 1, 2, 3, 4]
    assert "frame cap" in video.messages[0]


def test_frames_are_decoded_lazily(tmp_path, monkeypatch):
    path = write_clip(tmp_path / "c.mp4", ramp(30, 16, 16))
    calls = []
    real = frames_module.Video._next_decoded
    monkeypatch.setattr(frames_module.Video, "_next_decoded", lambda self: calls.append(1) or real(self))
    video = open_video(path)
    gen = video.frames()
    assert inspect.isgenerator(gen)
    first = next(gen)
    assert level(first.image) == 0
    assert len(calls) <= 2  # the first frame (at open), and at most the one after it
    gen.close()
    assert video._container is None  # stopping early closes the file


def test_two_hour_clip_is_refused_from_metadata_before_decoding(tmp_path, monkeypatch):
    path = write_two_hour_clip(tmp_path / "long.mkv")
    decoded = []
    monkeypatch.setattr(frames_module.Video, "_next_decoded", lambda self: decoded.append(1))
    with pytest.raises(BadInput, match=r"lasts 2 h 00 min .* limit"):
        open_video(path, FrameConfig(max_seconds=120))
    assert decoded == []


def test_not_a_video(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    with pytest.raises(BadInput, match="not a video"):
        open_video(text)
    png = tmp_path / "still.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(png)
    with pytest.raises(BadInput, match="is an image"):
        open_video(png)
    with pytest.raises(BadInput, match="No such video file"):
        open_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(BadInput, match="empty"):
        open_video(tmp_path / "empty.mp4")


def test_zero_frames(tmp_path):
    path = write_clip(tmp_path / "zero.mkv", [])
    with pytest.raises(BadInput, match="no video frame"):
        open_video(path)


def test_one_frame(tmp_path):
    path = write_clip(tmp_path / "one.mp4", ramp(1, 24, 32))
    video = open_video(path)
    got = list(video.frames())
    assert len(got) == 1 and got[0].image.shape == (24, 32, 3) and level(got[0].image) == 0


def test_variable_frame_rate_keeps_each_frames_time(tmp_path):
    pts = [0, 40, 120, 130, 300, 310, 500]
    path = write_clip(tmp_path / "vfr.mkv", ramp(len(pts), 20, 30), rate=25, pts_ms=pts)
    got = list(open_video(path).frames())
    assert [f.time for f in got] == pytest.approx([p / 1000 for p in pts])
    assert [level(f.image) for f in got] == list(range(len(pts)))


def test_portrait_and_odd_sizes(tmp_path):
    portrait = write_clip(tmp_path / "p.mp4", ramp(2, 64, 36))
    video = open_video(portrait, FrameConfig(size=32))
    assert video.info.processing_size == (32, 18)
    assert next(video.frames()).image.shape == (32, 18, 3)
    odd = write_clip(tmp_path / "odd.mkv", ramp(3, 33, 47), codec="ffv1", pix_fmt="yuv444p")
    video = open_video(odd, FrameConfig(size=None))
    got = list(video.frames())
    assert [f.image.shape for f in got] == [(33, 47, 3)] * 3
    assert [level(f.image) for f in got] == [0, 1, 2]
    assert open_video(odd, FrameConfig(size=20)).info.processing_size == (14, 20)


def test_bad_config():
    with pytest.raises(BadInput):
        FrameConfig(stride=0)
    with pytest.raises(BadInput):
        FrameConfig(max_frames=0)
