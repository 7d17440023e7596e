"""The tracks drawn over their clip, written as an H.264 MP4 (yuv420p) that browsers play.

The clip is decoded again with the same FrameConfig (streamed), each processed frame gets its tracks drawn by
core.draw.tracks.track_masks (a colour per id, a label "#id class score") and is encoded at once; odd sizes are
padded by one pixel (yuv420p needs even sizes).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from core.draw.tracks import track_masks
from core.video.frames import FrameConfig, open_video
from core.video.tracker import TrackingResult, decode_mask


def write_tracks_mp4(video_path: Path, result: TrackingResult, out_path: Path, frame_cfg: FrameConfig) -> Path:
    by_frame: dict[int, list] = {}
    for tr in result.tracks:
        label = f"#{tr.id} {tr.class_name or '?'} {tr.score:.2f}"
        for t, rle in zip(tr.frames, tr.masks):
            by_frame.setdefault(t, []).append((tr.id, rle, label))
    video = open_video(video_path, frame_cfg)
    fps = (video.info.fps or 10.0) / frame_cfg.stride
    h, w = result.size
    H, W = h + h % 2, w + w % 2
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out_path), mode="w") as out:
        stream = out.add_stream("libx264", rate=max(1, round(fps)))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for f in video.frames():
            items = [(i, decode_mask(rle), label) for i, rle, label in by_frame.get(f.index, [])]
            img = track_masks(f.image, items)
            if (H, W) != (h, w):
                img = np.pad(img, ((0, H - h), (0, W - w), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return out_path
