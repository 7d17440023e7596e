"""Video tracking's seconds per frame by stage at the 512 processing size, with real-size random weights (CLIP
ViT-B/16, SAM2 hiera-tiny image and video models built in the released shapes): decode, keyframe detection
(amortised over the clip), propagation, association, class evidence and the whole-clip classification; the total
against propagation alone (target: at most 1.3×).

The clip is a synthetic moving-shapes clip (core.data.synthetic.moving_shapes) written to H.264 and decoded through
core.video.frames as an upload would be. Random weights do not recognise anything, so two settings differ from the
app's: the dense softmax's logit scale (--logit-scale 100, as bench/mhqr.py: at SCLIP's 40 a random map is nearly
uniform and yields one query) and the score that starts a track (--new-track-score 0: random detections score
0.2-0.35, under the default 0.5, and no track would ever start). Both make the run heavier than a trained model's,
not lighter: every detection starts a track, so propagation carries more objects. The objects propagated per frame
are reported beside the seconds, since propagation's cost grows with them. The lever on detection is MHQR's query
budget (--max-queries; SAM2's decoder costs about 65 ms a prompt on this CPU) and the keyframe interval.

    python -m bench.video [--frames 40] [--keyframe 10] [--max-queries 200 48 16] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from bench.timing import peak_rss_mb, table
from core.data.synthetic.moving_shapes import CLASSES, make_clip, write_mp4
from core.models.openclip import build_random_openclip, load_openclip
from core.models.sam2 import HUB_ID, build_random_sam2, load_sam2
from core.models.sam2_video import build_random_sam2_video, load_sam2_video
from core.openvocab.mhqr.pipeline import MHQRConfig
from core.openvocab.mhqr.sam2_masks import Sam2PointMasks
from core.openvocab.sclip import DenseConfig, SCLIPPredictor
from core.video.association import AssociationConfig
from core.video.clip_evidence import ClipEvidence, EvidenceConfig
from core.video.frames import FrameConfig, open_video
from core.video.mhqr_detector import DetectorConfig, MHQRDetector
from core.video.model_stages import ModelStagesConfig
from core.video.sam2_propagator import Sam2Propagator
from core.video.tracker import STAGE_NAMES, TrackerConfig, track_clip

COLUMNS = ["max queries", "frames", "objects/frame", *STAGE_NAMES, "total", "total / propagation"]


class CountingPropagator:
    """Counts the objects carried per frame (propagation's cost grows with them)."""

    def __init__(self, inner: Sam2Propagator):
        self.inner, self.carried = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def step(self, frame_idx, frame):
        out = self.inner.step(frame_idx, frame)
        self.carried.append(len(out))
        return out


def build_models(tmp: Path):
    build_random_openclip(tmp / "clip", tiny=False)
    build_random_sam2(tmp / "sam2", tiny=False, hub_id=HUB_ID)
    build_random_sam2_video(tmp / "sam2-video", tiny=False)
    cpu = torch.device("cpu")
    return (load_openclip(str(tmp / "clip"), cpu, torch.float32, True),
            load_sam2(str(tmp / "sam2"), cpu, torch.float32, True),
            load_sam2_video(str(tmp / "sam2-video"), cpu, torch.float32, True))


def run(models, clip_path: Path, classes: list[str], max_queries: int, args) -> dict:
    clip, sam2, sam2_video = models
    app = ModelStagesConfig()  # the app's and CLI's defaults
    dense = DenseConfig(method=app.dense_method, short_side=args.dense_short_side, logit_scale=args.logit_scale)
    base = MHQRConfig()
    query = replace(base.query, max_queries=max_queries, min_queries=min(base.query.min_queries, max_queries))
    mhqr = replace(base, query=query)
    clip_pred = SCLIPPredictor(clip)
    masks = Sam2PointMasks(sam2.at_frame(args.size))  # as the app: the detector's SAM2 on the propagator's frame
    detector = MHQRDetector(clip_pred, masks, classes, DetectorConfig(dense=dense, mhqr=mhqr,
                                                                   single_crop=app.dense_single_crop))
    propagator = CountingPropagator(Sam2Propagator(sam2_video, frame=args.size))
    evidence = ClipEvidence(clip_pred, classes, EvidenceConfig(
        every=app.evidence_every, short_side=app.evidence_short_side, single_crop=app.dense_single_crop,
        dense=DenseConfig(method=app.dense_method, logit_scale=args.logit_scale)))
    tracker = TrackerConfig(keyframe_every=args.keyframe,
                            association=AssociationConfig(new_track_score=args.new_track_score))
    video = open_video(clip_path, FrameConfig(size=args.size, max_frames=args.frames))
    result = track_clip(video.frames(), detector, propagator, evidence, classes, tracker)
    n = result.n_frames
    s = result.seconds
    total = sum(s.values())
    row = {"max queries": max_queries, "frames": n,
           "objects/frame": round(sum(propagator.carried) / max(n, 1), 2),
           **{k: round(s[k] / n, 3) for k in STAGE_NAMES}, "total": round(total / n, 3),
           "total / propagation": round(total / max(s["propagation"], 1e-9), 2), "tracks": len(result.tracks)}
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--keyframe", type=int, default=10, help="detection every N frames (the tracker's default)")
    ap.add_argument("--size", type=int, default=512, help="processing long side and SAM2 video's square frame")
    ap.add_argument("--clip", type=int, nargs=2, default=[288, 512], metavar=("H", "W"))
    ap.add_argument("--max-queries", type=int, nargs="+", default=[200, 48, 16],
                    help="MHQR's query budgets to time (200 is the default)")
    ap.add_argument("--dense-short-side", type=int, default=ModelStagesConfig().dense_short_side,
                    help="the detector's dense stage (default: the app's)")
    ap.add_argument("--logit-scale", type=float, default=100.0)
    ap.add_argument("--new-track-score", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (1: see bench/mhqr.py)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    classes = list(CLASSES)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip_path = write_mp4(make_clip(0, *args.clip, n_frames=args.frames), tmp / "clip.mp4")
        models = build_models(tmp)
        run(models, clip_path, classes, args.max_queries[0], argparse.Namespace(**{**vars(args), "frames": 2}))
        rows = [run(models, clip_path, classes, q, args) for q in args.max_queries]
    info = {"device": "cpu", "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 2), "classes": classes, "clip": args.clip,
            "keyframe_every": args.keyframe, "size": args.size, "dense_short_side": args.dense_short_side,
            "peak_rss_mb": round(peak_rss_mb(), 1)}
    if args.json:
        print(json.dumps({"config": info, "rows": rows}, indent=1))
        return 0
    print(f"{args.frames} frames of a {args.clip[0]}×{args.clip[1]} synthetic clip at {args.size}, keyframe every "
          f"{args.keyframe}, detector's dense short side {args.dense_short_side}, classes {', '.join(classes)}; torch threads {info['torch_threads']} of "
          f"{info['cpu_count']} cores, 1-min load {info['load_average']}; seconds per frame:")
    print(table(COLUMNS, [[r[c] for c in COLUMNS] for r in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
