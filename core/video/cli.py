"""`python -m core track` (a clip -> tracks JSON + an MP4 with the tracks drawn) and `python -m core evaluate-video`
(a folder of clips with per-frame instance masks -> a results record, task `video`).

The model-backed stages (MHQR's detector, the SAM2 propagator, dense CLIP evidence) come from
core.video.model_stages; core/cli.py passes `build_stages(args, class_names)` -> (detector, propagator, evidence). `evaluate-video --stages standin` needs none: the stand-ins read the folder's ground truth.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from core.errors import BadInput
from core.video.association import METHODS as ASSOCIATIONS, AssociationConfig
from core.video.classification import METHODS as CLASSIFICATIONS, ClassificationConfig
from core.video.frames import FrameConfig
from core.video.selection import SelectionConfig
from core.video.tracker import TrackerConfig

BuildStages = Callable[[argparse.Namespace, list[str]], tuple]


def _shared(p: argparse.ArgumentParser, size_default: int | None) -> None:
    g = p.add_argument_group("frames")
    g.add_argument("--size", type=int, default=size_default,
                   help="long side of the processing frames, never upscaled (default %(default)s; 0 keeps the clip's)")
    g.add_argument("--stride", type=int, default=1, help="keep every N-th decoded frame")
    g.add_argument("--max-frames", type=int, default=300, help="processed frames per clip (default 300)")
    g.add_argument("--max-seconds", type=float, default=120.0, help="longer clips are refused (default 120)")
    g = p.add_argument_group("tracker")
    g.add_argument("--keyframe-every", type=int, default=10, help="detection every N processed frames and at 0")
    g.add_argument("--association", choices=ASSOCIATIONS, default="optimal",
                   help="optimal: mask IoU + class cost, linear_sum_assignment; greedy: first IoU > 0.8 (Grounded-SAM-2)")
    g.add_argument("--classification", choices=CLASSIFICATIONS, default="temporal",
                   help="temporal: informativeness-weighted mean of the per-frame evidence; last-frame: the last frame")
    g.add_argument("--weight-temperature", type=float, default=0.1,
                   help="temporal: the softmax over frames' temperature (default 0.1); a large value (1e9) weighs "
                        "every frame with evidence equally")
    g.add_argument("--max-missed", type=int, default=3, help="a track ends after N keyframes without re-detection")
    g.add_argument("--new-track-score", type=float, default=0.5,
                   help="an unmatched detection starts a track from this detector score (default 0.5)")
    g.add_argument("--top-k", type=int, default=20)
    g.add_argument("--top-n", type=int, default=10)
    g.add_argument("--score-threshold", type=float, default=0.3)


def add_parser(sub, common=None) -> None:
    """The track and evaluate-video subcommands; common(p) adds the options every model command shares (--models)."""
    p = sub.add_parser("track", help="track objects of the given classes in a clip: tracks JSON + an MP4")
    p.add_argument("--video", required=True)
    p.add_argument("--classes", required=True, help="'fish, diver, rock' or a file with one class a line")
    p.add_argument("--out", required=True, help="folder for tracks.json and tracks.mp4")
    p.add_argument("--no-video", action="store_true", help="write the JSON only")
    _shared(p, 512)
    if common:
        common(p)
    p = sub.add_parser("evaluate-video", help="track every clip of a folder with per-frame instance masks; a record")
    p.add_argument("--data", required=True, help="DIR with classes.txt, clips/NAME.mp4, masks/NAME/*.png + instances.json")
    p.add_argument("--out", required=True, help="results/runs/NAME.json")
    p.add_argument("--stages", choices=["models", "standin"], default="models",
                   help="models: the detector, SAM2 propagator and CLIP evidence; standin: noisy ground truth "
                   "(core.video.standins), to measure the tracker's logic without weights")
    p.add_argument("--limit", type=int, default=None, help="only the first N clips")
    p.add_argument("--seed", type=int, default=0, help="the stand-ins' noise")
    p.add_argument("--no-ap", action="store_true", help="skip video AP")
    _shared(p, 0)
    if common:
        common(p)


def parse_classes(text: str) -> list[str]:
    path = Path(text)
    raw = path.read_text().splitlines() if path.is_file() else text.split(",")
    names = [n.strip() for n in raw if n.strip()]
    if not names:
        raise BadInput("Give at least one class name (--classes 'fish, diver').")
    if len(set(names)) != len(names):
        raise BadInput(f"A class is named twice in: {', '.join(names)}")
    return names


def configs(args: argparse.Namespace) -> tuple[FrameConfig, TrackerConfig]:
    frame_cfg = FrameConfig(stride=args.stride, max_frames=args.max_frames, max_seconds=args.max_seconds,
                            size=args.size or None)
    tracker = TrackerConfig(keyframe_every=args.keyframe_every, max_missed=args.max_missed,
                            association=AssociationConfig(method=args.association,
                                                          new_track_score=args.new_track_score),
                            classification=ClassificationConfig(method=args.classification,
                                                                        temperature=args.weight_temperature),
                            selection=SelectionConfig(args.top_k, args.top_n, args.score_threshold))
    return frame_cfg, tracker


def run_track(args: argparse.Namespace, command: str, build_stages: BuildStages | None = None) -> int:
    from core.video.frames import open_video
    from core.video.render import write_tracks_mp4
    from core.video.tracker import track_clip, write_tracks_json

    if build_stages is None:
        raise BadInput("track needs the detector, propagator and class-evidence models, which this command line "
                       "does not provide yet.")
    names = parse_classes(args.classes)
    frame_cfg, tracker = configs(args)
    video = open_video(args.video, frame_cfg)
    detector, propagator, evidence = build_stages(args, names)
    expected = video.info.expected_frames
    t0 = time.perf_counter()

    def progress(n):
        if n % 25 == 0:
            print(f"  frame {n}" + (f"/{expected}" if expected else ""), flush=True)

    result = track_clip(video.frames(), detector, propagator, evidence, names, tracker, progress)
    out = Path(args.out)
    result.messages[:0] = video.messages
    path = write_tracks_json(result, out / "tracks.json", {"video": video.info.as_dict(), "command": command})
    print(f"{len(result.tracks)} tracks ({result.candidates} candidates) in {result.n_frames} frames, "
          f"{time.perf_counter() - t0:.1f} s; wrote {path}")
    if not args.no_video:
        print(f"wrote {write_tracks_mp4(Path(args.video), result, out / 'tracks.mp4', frame_cfg)}")
    for m in result.messages:
        print(m)
    return 0


def run_evaluate_video(args: argparse.Namespace, command: str, build_stages: BuildStages | None = None) -> int:
    from core.results.records import new_record, run_name, write_record
    from core.video.dataset import read_classes
    from core.video.evaluate import StandInConfig, evaluate_folder, standin_stages

    frame_cfg, tracker = configs(args)
    names = read_classes(Path(args.data))
    if args.stages == "standin":
        def make(truth, class_names, stride):
            return standin_stages(truth, len(class_names), stride, args.seed)
        model = {"name": "stand-ins", "source": "core.video.standins (noisy ground truth)", "weights": "none",
                 "standin": asdict(StandInConfig()), "seed": args.seed}
    elif build_stages is None:
        raise BadInput("evaluate-video --stages models needs the detector, propagator and class-evidence models, "
                       "which this command line does not provide yet; --stages standin runs without weights.")
    else:
        built = build_stages(args, names)

        def make(truth, class_names, stride):
            return built
        model = {"name": "detector + propagator + evidence", "source": "models"}
    t0 = time.perf_counter()
    res = evaluate_folder(Path(args.data), make, frame_cfg, tracker, args.limit, not args.no_ap,
                          lambda name, k, n: print(f"  clip {k + 1}/{n}: {name}", flush=True))
    total = time.perf_counter() - t0
    frames = sum(c["frames"] for c in res["per_clip"].values())
    out = Path(args.out)
    record = new_record("video", run_name(out.stem), {"kind": "measured", "command": command}, model=model,
                        dataset={"name": Path(args.data).resolve().name, "split": "all", "n": res["n_clips"],
                                 "n_frames": frames, "classes": res["classes"]},
                        config={"frames": asdict(frame_cfg), "tracker": res["tracker"], "stages": args.stages},
                        metrics={"overall": res["overall"], "per_clip": res["per_clip"]},
                        timing={"seconds_per_frame": total / max(frames, 1), "total_seconds": total,
                                "stage_seconds": res["seconds"], "device": "cpu"})
    if res["messages"]:
        record["messages"] = res["messages"]
    write_record(record, out)
    o = res["overall"]
    print(f"HOTA {o['hota']:.4f}, IDF1 {o['idf1']:.4f}, MOTA {o['mota']:.4f}, ID switches {o['id_switches']}, "
          f"class accuracy {o['class_accuracy'] if o['class_accuracy'] is None else round(o['class_accuracy'], 4)}"
          f"; wrote {out}")
    return 0


COMMANDS = {"track": run_track, "evaluate-video": run_evaluate_video}
