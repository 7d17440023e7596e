"""Memory does not grow with the clip: the tracker's peak heap for 3× the frames stays within 1.2× (tracemalloc
counts numpy buffers); the same measurement with the frames held in a list exceeds the bound, so it can fail."""

from __future__ import annotations

import tracemalloc

from core.data.synthetic.moving_shapes import make_clip
from core.video.evaluate import standin_stages
from core.video.tracker import TrackerConfig, track_clip


def peak(n_frames: int, materialise: bool) -> int:
    clip = make_clip(2, 160, 224, n_frames=n_frames, n_objects=4, pillar=False)
    det, prop, ev = standin_stages(clip, 4)
    tracemalloc.start()
    frames = clip.frames()
    if materialise:
        frames = [f.image for f in frames]
    else:
        frames = (f.image for f in frames)
    track_clip(frames, det, prop, ev, list(clip.classes), TrackerConfig(keyframe_every=5))
    p = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return p


def test_peak_memory_does_not_follow_the_clip_length():
    short, long = peak(12, False), peak(36, False)
    assert long <= 1.2 * short, (short, long)
    held_short, held_long = peak(12, True), peak(36, True)
    assert held_long > 1.2 * held_short, (held_short, held_long)  # the bound does catch kept frames
