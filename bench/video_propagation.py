"""SAM2 video propagation (core.video.sam2_propagator): seconds per frame by processing size, and peak memory of a
long stream against a short one (issue 12's target: a 300-frame stream at most 1.2× the peak RSS of a 30-frame one).

Model: SAM 2.1 hiera-tiny as transformers' Sam2VideoModel, the released architecture (core.models.sam2_video's config
from core.models.sam2's published size values, 1024 frame), randomly initialised (no weights are downloaded), saved
with save_pretrained and loaded by the registry's loader; `--sizes 512` runs the same weights on a 512 frame
(Sam2Video.at_frame). Random weights do the same compute as real ones; their masks are noise.
Clip: two discs moving over noise, drawn frame by frame at --clip 288 512 (a 16:9 clip resized to a 512 long side;
the model stretches it to its square frame); both objects are anchored at frame 0 and re-anchored every
--keyframe frames with their drawn masks (as the tracker does at keyframes), a third enters at frame 15.

Timing: per size and torch thread count, --warmup frames then --timed frames; the median seconds per step (the
frames with a re-anchor include its add_objects call). Threads: on 2 cores shared with other jobs, 2 torch threads
were several times slower than 1 (OpenMP threads waiting for a busy core), so both are timed.
Memory: each stream runs in its own process (`--child`, first --threads value), which loads the model and
propagates N frames, then reports its peak RSS (VmHWM) and the bytes the session holds at the end; the ratio
is peak(300) / peak(30). `--unpruned` adds the same pair with pruning off. The load average is printed: the
machine has 2 cores and other jobs may share it.
    python -m bench.video_propagation [--sizes 512 1024] [--timed 6 3] [--rss-frames 30 300] [--rss-size 512]
                                      [--threads 1 2] [--unpruned] [--skip-timing] [--skip-rss] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.timing import peak_rss_mb, table
from core.models.sam2 import HUB_ID
from core.models.sam2_video import build_random_sam2_video, load_sam2_video
from core.video.sam2_propagator import Sam2Propagator


def disc_frames(n: int, size: tuple[int, int], seed: int = 0):
    """Frame i and the discs' masks, drawn one at a time (the clip is never held)."""
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    rng = np.random.default_rng(seed)
    r = min(h, w) // 8
    for i in range(n):
        image = rng.integers(0, 80, (h, w, 3)).astype(np.uint8)
        cx = [(w // 5 + 3 * i) % w, (4 * w // 5 - 2 * i) % w, (w // 2 + i) % w]
        cy = [h // 3, 2 * h // 3, h // 2]
        masks = {k + 1: (yy - cy[k]) ** 2 + (xx - cx[k]) ** 2 < r * r for k in range(3)}
        for k, colour in zip(masks, [(220, 40, 40), (40, 200, 60), (40, 60, 220)]):
            image[masks[k]] = colour
        yield image, masks


def stream(prop: Sam2Propagator, n: int, size: tuple[int, int], keyframe: int):
    """Propagate n frames; yields seconds per frame."""
    prop.reset(size)
    for i, (image, masks) in enumerate(disc_frames(n, size)):
        t0 = time.perf_counter()
        prop.step(i, image)
        if i == 0:
            prop.add_objects(i, image, {1: masks[1], 2: masks[2]})
        elif i == 15:
            prop.add_objects(i, image, {3: masks[3]})
        elif i % keyframe == 0:
            prop.add_objects(i, image, {k: masks[k] for k in prop.live_ids})
        yield time.perf_counter() - t0


def own_peak_rss_mb() -> float:
    """This process's peak RSS since it started: VmHWM (ru_maxrss would also count the parent's peak at the fork,
    which Linux keeps across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def child(args) -> None:
    sam2 = load_sam2_video(args.model, torch.device("cpu"), torch.float32, True)
    prop = Sam2Propagator(sam2, frame=args.rss_size, prune=not args.no_prune)
    seconds = list(stream(prop, args.child, tuple(args.clip), args.keyframe))
    print(json.dumps({"frames": args.child, "peak_rss_mb": round(own_peak_rss_mb(), 1),
                      "session_mb": round(prop.stored_state()["bytes"] / 2**20, 2),
                      "seconds_per_frame": round(statistics.median(seconds), 3)}))


def rss_row(args, n: int, prune: bool) -> dict:
    cmd = [sys.executable, "-m", "bench.video_propagation", "--child", str(n), "--model", args.model,
           "--rss-size", str(args.rss_size), "--keyframe", str(args.keyframe), "--clip", *map(str, args.clip),
           "--threads", str(args.threads[0])]
    if not prune:
        cmd.append("--no-prune")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    return {"pruned": prune, "threads": args.threads[0], **json.loads(out.stdout.strip().splitlines()[-1])}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="the model's square frame sizes")
    ap.add_argument("--timed", type=int, nargs="+", default=[6, 3], help="timed frames per size (last repeats)")
    ap.add_argument("--warmup", type=int, default=2, help="frames run before timing (frame 0 anchors the objects)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="torch thread counts to time; the memory streams use the first")
    ap.add_argument("--clip", type=int, nargs=2, default=[288, 512], metavar=("H", "W"))
    ap.add_argument("--keyframe", type=int, default=10, help="re-anchor every object every N frames")
    ap.add_argument("--rss-frames", type=int, nargs=2, default=[30, 300], metavar=("SHORT", "LONG"))
    ap.add_argument("--rss-size", type=int, default=512, help="the frame size of the memory streams")
    ap.add_argument("--unpruned", action="store_true", help="also the memory pair with pruning off")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--no-prune", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        torch.set_num_threads(args.threads[0])
        return child(args)
    size = tuple(args.clip)
    load_before = os.getloadavg()[0]
    timing, memory = [], []
    with tempfile.TemporaryDirectory() as tmp:
        args.model = str(build_random_sam2_video(Path(tmp) / "sam2-video", tiny=False, hub_id=HUB_ID))
        if not args.skip_timing:
            sam2 = load_sam2_video(args.model, torch.device("cpu"), torch.float32, True)
            for k, frame in enumerate(args.sizes):
                timed = args.timed[min(k, len(args.timed) - 1)]
                for threads in args.threads:
                    torch.set_num_threads(threads)
                    prop = Sam2Propagator(sam2, frame=frame)
                    seconds = list(stream(prop, args.warmup + timed, size, args.keyframe))[args.warmup:]
                    timing.append({"frame": frame, "threads": threads, "frames_timed": timed,
                                   "seconds_per_frame": round(statistics.median(seconds), 3),
                                   "min": round(min(seconds), 3), "load_avg_1min": round(os.getloadavg()[0], 2)})
            del sam2, prop
        if not args.skip_rss:
            for prune in [True] + ([False] if args.unpruned else []):
                memory += [rss_row(args, n, prune) for n in args.rss_frames]
    ratios = {}
    for prune in {m["pruned"] for m in memory}:
        short, long = [m for m in memory if m["pruned"] == prune]
        ratios["pruned" if prune else "unpruned"] = round(long["peak_rss_mb"] / short["peak_rss_mb"], 3)
    result = {"model": f"{HUB_ID} architecture, random weights", "device": "cpu", "clip": list(size),
              "objects": "2 from frame 0, a third from frame 15", "keyframe": args.keyframe,
              "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
              "timing": timing, "memory": memory, "rss_ratio": ratios}
    if args.json:
        print(json.dumps(result))
        return
    print(f"SAM 2.1 hiera-tiny video (random weights), cpu, clip {size[0]}×{size[1]}, {result['objects']}, "
          f"re-anchored every {args.keyframe} frames; load average {result['load_avg_1min'][0]} before, "
          f"{result['load_avg_1min'][1]} after")
    if timing:
        print(table(["frame", "threads", "s/frame (median)", "min", "frames timed", "load avg"],
                    [[t["frame"], t["threads"], f"{t['seconds_per_frame']:.2f}", f"{t['min']:.2f}",
                      t["frames_timed"], t["load_avg_1min"]] for t in timing]))
    if memory:
        print()
        print(table(["stream", "pruned", "threads", "peak RSS MB", "session MB at end", "s/frame"],
                    [[f"{m['frames']} frames", "yes" if m["pruned"] else "no", m["threads"],
                      f"{m['peak_rss_mb']:.0f}", f"{m['session_mb']:.1f}", f"{m['seconds_per_frame']:.2f}"]
                     for m in memory]))
        print("peak RSS ratio, long / short stream: "
              + ", ".join(f"{k} {v:.2f}×" for k, v in sorted(ratios.items())) + " (target ≤ 1.2× pruned)")


if __name__ == "__main__":
    main()
