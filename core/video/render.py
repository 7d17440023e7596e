"""The tracks drawn over their clip, written as an H.264 MP4 (yuv420p) that browsers play.

The clip is decoded again with the same FrameConfig (streamed), each processed frame gets its tracks' masks tinted
in a colour per track id (core.draw's palette, so an id keeps its colour) and a label "#id class score" at the mask's
top-left, and is encoded at once; odd sizes are padded by one pixel (yuv420p needs even sizes).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.draw.label_map import label_map
from core.draw.overlay import colour
from core.video.frames import FrameConfig, open_video
from core.video.tracker import TrackingResult, decode_mask


def draw_frame(image: np.ndarray, masks: list[tuple[int, np.ndarray, str]]) -> np.ndarray:
    """masks: (track id, (h, w) bool, label); each id tinted in colour(id), its label at the mask's top-left."""
    if not masks:
        return image
    top = max(i for i, _, _ in masks) + 1
    ids = np.full(image.shape[:2], -1, np.int32)
    for i, m, _ in masks:
        ids[m] = i
    out = Image.fromarray(label_map(image, ids, top, alpha=0.5, max_side=max(image.shape[:2])))
    draw, font = ImageDraw.Draw(out), ImageFont.load_default()
    for i, m, text in masks:
        ys, xs = np.nonzero(m)
        if len(ys):
            x, y = int(xs.min()), max(0, int(ys.min()) - 11)
            box = draw.textbbox((x, y), text, font=font)
            draw.rectangle(box, fill=colour(i))
            draw.text((x, y), text, fill=(0, 0, 0), font=font)
    return np.asarray(out)


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
            img = draw_frame(f.image, items)
            if (H, W) != (h, w):
                img = np.pad(img, ((0, H - h), (0, W - w), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return out_path
