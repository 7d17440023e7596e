"""Seconds to turn N point queries into SAM2 masks, by grouping (one point per call, k per call, all in one call).

Real-size SAM 2.1 hiera-tiny with random weights, 512 × 512 image encoded once (its seconds are reported apart),
masks returned at 336 × 336 (MHQR's working resolution for a square image). Configurations run interleaved,
`--repeats` rounds, median per configuration, so a load that comes and goes on a shared machine hits all alike.
    python -m bench.sam2_prompts [--points 10 50 200] [--groups single 2 4 8 32 batch] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data

from bench.timing import median_seconds, table
from core.models.sam2 import HUB_ID, build_random_sam2, load_sam2
from core.openvocab.mhqr.sam2_masks import DEFAULT_GROUP, Sam2PointMasks

SIZE = (336, 336)


def group_arg(text: str) -> str | int:
    return text if text in {"single", "batch"} else int(text)


def label(group: str | int) -> str:
    return group if isinstance(group, str) else f"k={group}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--groups", type=group_arg, nargs="+", default=["single", 2, 4, 8, 32, "batch"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hub-id", default=HUB_ID, help="which released size's architecture (random weights)")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        build_random_sam2(Path(tmp) / "sam2", tiny=False, hub_id=args.hub_id)
        sam2 = load_sam2(str(Path(tmp) / "sam2"), device, torch.float32, True)
    image = data.astronaut()  # 512 × 512 RGB
    generator = Sam2PointMasks(sam2)
    encode = median_seconds(lambda: generator.set_image(image), args.repeats)
    rng = np.random.default_rng(0)
    points = {n: rng.uniform(0, 511, (n, 2)) for n in args.points}
    configs = [(n, g) for n in args.points for g in args.groups]
    times: dict[tuple, list[float]] = {c: [] for c in configs}

    def run(n, group):
        generator.group = group
        t0 = time.perf_counter()
        generator.point_masks(points[n], SIZE)
        return time.perf_counter() - t0

    run(min(args.points), args.groups[0])  # warm-up
    for r in range(args.repeats):
        for c in (configs if r % 2 == 0 else configs[::-1]):
            times[c].append(run(*c))
    rows = []
    for n in args.points:
        med = {g: statistics.median(times[(n, g)]) for g in args.groups}
        best = min(med, key=med.get)
        rows.append([n] + [f"{med[g]:.2f}" for g in args.groups] + [label(best), f"{med[best] / n * 1000:.0f}"])
    print(f"SAM 2.1 {args.hub_id.rsplit('/', 1)[1]} (random weights), device: {device}, torch threads: "
          f"{torch.get_num_threads()}, image 512×512, masks at {SIZE[0]}×{SIZE[1]}, median of {args.repeats} "
          f"interleaved rounds; default grouping: {label(DEFAULT_GROUP)}")
    print(f"image encoder: {encode:.2f} s (once per image)")
    print(table(["points"] + [f"{label(g)} s" for g in args.groups] + ["fastest", "ms/point"], rows))


if __name__ == "__main__":
    main()
