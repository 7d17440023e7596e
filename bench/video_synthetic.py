"""The video tracker's logic on synthetic clips, without weights: optimal against greedy association, temporal
classification against a last-frame vote, scored against the clips' exact instance masks.
    python -m bench.video_synthetic [--clips 20] [--frames 48] [--size 120 160] [--keyframe-every 10] [--json]
    python -m bench.video_synthetic --memory [--memory-frames 30 300]

Clips come from core.data.synthetic.moving_shapes (seeds first..first+N-1): 4-6 shapes of 4 classes, a crossing
pair, one entering mid-clip, one leaving, wanderers, a pillar in half the clips. Stages are the stand-ins of
core.video.standins with core.video.evaluate.StandInConfig's defaults (detector: 10 % misses, 0.3 false positives per
keyframe, 10 % wrong classes, 1 px boundary noise; propagator: true motion + a 0.3 px/frame random walk; evidence:
signal 3 × IoU, noise 1, 15 % of frames boosting a wrong class). Variants, each changing one thing from `optimal`
(TrackerConfig's defaults: optimal assignment, temporal classification): `greedy` (Grounded-SAM-2's first IoU > 0.8,
class ignored), `last-frame-vote` (the track's last frame decides its class and score); --extra adds
`uniform-mean` (temporal classification with equal frame weights) and `greedy-last-frame`.
Metrics: HOTA, IDF1, MOTA, ID switches (TrackEval, mask IoU), class accuracy (paired ground-truth objects whose track
has their class), video AP (COCOeval on stacked frames). --json prints {variant: {"hota", "idf1", "mota",
"id_switches", "class_accuracy", "video_ap"}}.
--memory: an MP4 of each --memory-frames length (240×320) is written, then tracked in a fresh process that decodes it
with core.video.frames; peak RSS and the Python heap's peak (tracemalloc) per length, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.timing import table
from core.data.synthetic.moving_shapes import CLASSES, make_clip, write_mp4
from core.metrics.video import VideoScores, video_ap
from core.video.association import AssociationConfig
from core.video.classification import ClassificationConfig
from core.video.evaluate import StandInConfig, evaluate_clip, standin_stages
from core.video.tracker import TrackerConfig

BASE = TrackerConfig()
VARIANTS = {
    "optimal": BASE,
    "greedy": replace(BASE, association=AssociationConfig(method="greedy")),
    "last-frame-vote": replace(BASE, classification=ClassificationConfig(method="last-frame")),
}
EXTRA = {
    "uniform-mean": replace(BASE, classification=ClassificationConfig(temperature=1e9)),
    "greedy-last-frame": replace(BASE, association=AssociationConfig(method="greedy"),
                                 classification=ClassificationConfig(method="last-frame")),
}


def measure(clips: int, first_seed: int, frames: int, size: tuple[int, int], variants: dict[str, TrackerConfig],
            standin: StandInConfig = StandInConfig()) -> dict[str, dict]:
    out = {}
    for name, cfg in variants.items():
        scores, ap_clips = VideoScores(), []
        for seed in range(first_seed, first_seed + clips):
            clip = make_clip(seed, *size, n_frames=frames)
            evaluate_clip(f"clip{seed}", clip, (f.image for f in clip.frames()),
                          lambda truth, names, stride, s=seed: standin_stages(truth, len(names), stride, s, standin),
                          list(CLASSES), cfg, scores, ap_clips)
        summary = scores.summary()
        summary["video_ap"] = video_ap(ap_clips)["ap"]
        out[name] = summary
    return out


def memory_run(path: str, frames: int, size: tuple[int, int]) -> dict:
    """In this process: decode the MP4 through core.video.frames and track it with the stand-ins."""
    import resource
    import tracemalloc

    from core.video.frames import FrameConfig, open_video
    from core.video.tracker import track_clip

    clip = make_clip(0, *size, n_frames=frames)
    video = open_video(path, FrameConfig(size=None))
    tracemalloc.start()
    det, prop, ev = standin_stages(clip, len(CLASSES))
    result = track_clip(video.frames(), det, prop, ev, list(CLASSES), BASE)
    heap = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"frames": result.n_frames, "tracks": len(result.tracks), "peak_rss_mb": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, "heap_peak_mb": heap / 2 ** 20}


def memory(lengths: list[int], size: tuple[int, int]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in lengths:
            path = Path(tmp) / f"clip_{n}.mp4"
            write_mp4(make_clip(0, *size, n_frames=n), path)
            out = subprocess.run([sys.executable, "-m", "bench.video_synthetic", "--memory-run", str(path), str(n),
                                  str(size[0]), str(size[1])], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", type=int, nargs=2, default=[120, 160], metavar=("H", "W"))
    ap.add_argument("--keyframe-every", type=int, default=BASE.keyframe_every)
    ap.add_argument("--extra", action="store_true", help="also uniform-mean and greedy-last-frame")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--memory-frames", type=int, nargs="+", default=[30, 300])
    ap.add_argument("--memory-run", nargs=4, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.memory_run:
        path, n, h, w = a.memory_run
        print(json.dumps(memory_run(path, int(n), (int(h), int(w)))))
        return
    if a.memory:
        rows = memory(a.memory_frames, (240, 320))
        base = rows[0]
        print(table(["frames", "tracks", "peak RSS MB", "× shortest", "heap peak MB", "× shortest"],
                    [[r["frames"], r["tracks"], f"{r['peak_rss_mb']:.1f}", f"{r['peak_rss_mb'] / base['peak_rss_mb']:.3f}",
                      f"{r['heap_peak_mb']:.2f}", f"{r['heap_peak_mb'] / base['heap_peak_mb']:.3f}"] for r in rows]))
        return
    variants = {**VARIANTS, **(EXTRA if a.extra else {})}
    variants = {k: replace(v, keyframe_every=a.keyframe_every) for k, v in variants.items()}
    res = measure(a.clips, a.first_seed, a.frames, tuple(a.size), variants)
    keys = ["hota", "idf1", "mota", "id_switches", "class_accuracy", "video_ap"]
    if a.json:
        print(json.dumps({v: {k: r[k] for k in keys} for v, r in res.items()}, indent=1))
        return
    print(f"{a.clips} clips (seeds {a.first_seed}..{a.first_seed + a.clips - 1}), {a.frames} frames "
          f"{a.size[0]}×{a.size[1]}, keyframe every {a.keyframe_every}")
    fmt = lambda x: "n/a" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)
    print(table(["variant", "HOTA", "DetA", "AssA", "IDF1", "MOTA", "ID switches", "class acc.", "video AP"],
                [[v, *(fmt(r[k]) for k in ("hota", "deta", "assa", "idf1", "mota", "id_switches", "class_accuracy",
                                            "video_ap"))] for v, r in res.items()]))


if __name__ == "__main__":
    main()
