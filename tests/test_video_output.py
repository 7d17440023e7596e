"""What tracking writes: RLE masks at the processing size, a JSON that reads back, an H.264 MP4 that decodes."""

from __future__ import annotations

import json

import av
import numpy as np

from core.data.synthetic.moving_shapes import make_clip, write_mp4
from core.video.evaluate import standin_stages
from core.video.frames import FrameConfig, open_video
from core.video.render import write_tracks_mp4
from core.video.tracker import TrackerConfig, decode_mask, encode_mask, read_tracks_json, track_clip, write_tracks_json


def test_rle_round_trip_keeps_size_and_pixels():
    m = np.zeros((37, 53), bool)
    m[5:20, 7:31] = True
    m[30, 52] = True
    rle = encode_mask(m)
    assert rle["size"] == [37, 53] and isinstance(rle["counts"], str)
    assert np.array_equal(decode_mask(json.loads(json.dumps(rle))), m)


def test_tracks_json_and_mp4_from_a_decoded_clip(tmp_path):
    clip = make_clip(4, 96, 128, n_frames=16)
    src = write_mp4(clip, tmp_path / "clip.mp4")
    cfg = FrameConfig(size=100)  # processing at 75 × 100
    video = open_video(src, cfg)
    det, prop, ev = standin_stages(clip, 4)
    result = track_clip(video.frames(), det, prop, ev, list(clip.classes), TrackerConfig(keyframe_every=4))
    assert result.size == (75, 100) and result.n_frames == 16 and result.tracks
    path = write_tracks_json(result, tmp_path / "out" / "tracks.json", {"video": video.info.as_dict()})
    meta, tracks = read_tracks_json(path)
    assert meta["size"] == [75, 100] and meta["video"]["width"] == 128 and len(meta["frames"]) == 16
    for tr, orig in zip(tracks, result.tracks):
        assert tr.id == orig.id and tr.class_name == clip.classes[tr.cls]
        assert 0 <= tr.first_frame <= tr.last_frame < 16 and tr.frames[0] == tr.first_frame
        assert len(tr.masks) == len(tr.frames) == len(tr.weights) == len(tr.mask_scores) == len(tr.class_probs)
        assert abs(sum(tr.weights) - 1) < 1e-6 and len(tr.class_probs[0]) == 5
        for rle, t in zip(tr.masks, tr.frames):
            m = decode_mask(rle)
            assert m.shape == (75, 100) and m.any()
            assert np.array_equal(m, orig.mask(t))
    out = write_tracks_mp4(src, result, tmp_path / "out" / "tracks.mp4", cfg)
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    assert len(decoded) == 16 and decoded[0].shape == (76, 100, 3)  # padded to even for yuv420p


def test_synthetic_mp4_is_h264_with_every_frame(tmp_path):
    clip = make_clip(1, 64, 80, n_frames=10)
    path = write_mp4(clip, tmp_path / "c.mp4")
    video = open_video(path, FrameConfig(size=None))
    assert video.info.codec == "h264"
    frames = list(video.frames())
    assert len(frames) == 10
    assert np.abs(frames[3].image.astype(int) - clip.frame(3).image).mean() < 8  # close to what was drawn
