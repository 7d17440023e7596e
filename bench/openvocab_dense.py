"""Seconds per image of the dense open-vocabulary predictor with a real-size ViT-B/16 (random weights): by short
side, method and refinement; against the number of classes; and peak memory against image size and classes.
    python -m bench.openvocab_dense [--repeats 2] [--sides 336] [--no-classes] [--memory] [--record results/runs/N.json]
The memory table runs each case in a fresh process with the tiny model (so only the image-size-dependent work
counts) and reports the peak resident memory beyond what the process held after loading the model.
With --record, the first short side's first method (SCLIP, 5 classes) is the record's seconds per image; every
table is kept in its config.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from skimage import data

from bench.record import add_record_argument, check_record_path, device_label, write_speed_record
from bench.timing import median_seconds, peak_rss_mb, table
from core.models.openclip import build_random_openclip, load_openclip
from core.openvocab.class_names import load_class_file, parse_classes
from core.openvocab.sclip import DenseConfig, SCLIPPredictor, resize_keep_ratio

VARIANTS = {
    "sclip": {}, "sclip + pamr": {"pamr": True}, "sclip + rcs": {"rcs": True}, "sclip + sfr": {"sfr": True},
    "sclip + crf": {"crf": True}, "naclip": {"method": "naclip"},
    "naclip + pamr (NACLIP's published setting)": {"method": "naclip", "pamr": True},
    "naclip + rcs + sfr (ResCLIP's headline)": {"method": "naclip", "rcs": True, "sfr": True},
}
MEMORY_CASES = [(1.0, 5), (1.0, 171), (1.5, 171), (6.0, 171), (12.0, 5), (12.0, 171)]


def predictor(tiny: bool) -> SCLIPPredictor:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        build_random_openclip(Path(tmp) / "clip", tiny=tiny)
        return SCLIPPredictor(load_openclip(str(Path(tmp) / "clip"), device, torch.float32, True))


def coco_classes(n: int):
    return parse_classes("\n".join(load_class_file("coco_stuff171").classes[:n]))


def photo(megapixels: float) -> np.ndarray:
    """scikit-image's astronaut, resized to a 4:3 photo of about that many megapixels."""
    import cv2

    h = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    return cv2.resize(data.astronaut(), (h * 4 // 3, h), interpolation=cv2.INTER_LINEAR)


def child(megapixels: float, n_classes: int, repeats: int) -> None:
    pred = predictor(tiny=True)
    classes = coco_classes(n_classes)
    pred.predict(data.coffee()[:64, :64], classes)  # text encoded, code paths warm, memory peak still low
    image = photo(megapixels)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    seconds = median_seconds(lambda: pred.predict(image, classes), repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"hw": image.shape[:2], "seconds": seconds, "base_gb": base, "peak_gb": peak}))


def memory_table(repeats: int) -> list[dict]:
    rows, first, cases = [], {}, []
    for mp, n in MEMORY_CASES:
        out = subprocess.run([sys.executable, "-m", "bench.openvocab_dense", "--child", str(mp), str(n),
                              "--repeats", str(repeats)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        first.setdefault(n, r["seconds"])
        rows.append([f"{r['hw'][1]}×{r['hw'][0]}", f"{mp:g}", n, f"{r['seconds']:.2f}",
                     f"{r['seconds'] / first[n]:.2f}×", f"{r['peak_gb'] - r['base_gb']:.2f}", f"{r['peak_gb']:.2f}"])
        cases.append({"height": r["hw"][0], "width": r["hw"][1], "classes": n, "seconds_per_image": r["seconds"],
                      "peak_gb_beyond_model": r["peak_gb"] - r["base_gb"], "peak_rss_gb": r["peak_gb"]})
    print("\nmemory and time against image size (tiny ViT: the model's share is negligible; SCLIP, no refinement)")
    print(table(["image", "MP", "classes", "s/image", "vs 1 MP", "peak GB beyond model", "peak RSS GB"], rows))
    return cases


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sides", type=int, nargs="*", default=[336], help="none: skip the method table")
    ap.add_argument("--no-classes", action="store_true", help="skip the class-count table")
    ap.add_argument("--memory", action="store_true", help="add the memory table (fresh process per case)")
    ap.add_argument("--child", nargs=2, type=float, help=argparse.SUPPRESS)
    add_record_argument(ap)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child[0], int(args.child[1]), args.repeats)
    check_record_path(args.record)
    if args.record and not args.sides and args.no_classes:
        raise SystemExit("--record needs a timing: keep --sides or the class table")
    pred = predictor(tiny=False)
    image = data.coffee()  # 400×600
    five = parse_classes("cup\nspoon\nplate\ntable\nbackground")
    pred.text_embeddings(five.names)
    rows, cases = [], {"methods": [], "classes": [], "memory": []}
    for side in args.sides:
        base = None
        for name, kw in VARIANTS.items():
            cfg = replace(DenseConfig(short_side=side), **kw)
            s = median_seconds(lambda: pred.predict(image, five, cfg), args.repeats)
            base = base or s
            small = resize_keep_ratio(image, side)
            crops = len(pred.windows(*small.shape[:2], 224, 112))
            rows.append([side, crops, name, f"{s:.2f}", f"{s / base:.2f}×"])
            cases["methods"].append({"short_side": side, "crops": crops, "method": name, "seconds_per_image": s})
    if rows:
        print(f"device: {pred.c.device}, torch threads: {torch.get_num_threads()}, image 400×600, 5 classes, "
              f"median of {args.repeats}")
        print(table(["short side", "crops", "method", "s/image", "vs sclip"], rows))
    if not args.no_classes:
        counts, text_s, times = (1, 5, 10, 50, 171), {}, {}
        for n in counts:
            os.environ["SEGLAB_CACHE"] = tempfile.mkdtemp()  # a machine that never encoded these names
            pred.c.text_cache.clear()
            t0 = time.perf_counter()
            pred.text_embeddings(coco_classes(n).names)
            text_s[n] = time.perf_counter() - t0
        pred.c.text_cache.clear()
        for n in counts:
            pred.text_embeddings(coco_classes(n).names)
            pred.predict(image, coco_classes(n), DenseConfig())  # first call of these sizes: allocations
        for _ in range(args.repeats):  # interleaved, so that drift of the machine hits every count alike
            for n in counts:
                times.setdefault(n, []).append(median_seconds(lambda: pred.predict(image, coco_classes(n)), 1))
        med = {n: float(np.median(v)) for n, v in times.items()}
        rows = [[n, f"{text_s[n]:.1f}", f"{med[n]:.2f}", f"{med[n] / med[5]:.2f}×"] for n in counts]
        cases["classes"] = [{"classes": n, "text_encode_seconds": text_s[n], "seconds_per_image": med[n]} for n in counts]
        print(f"\nclasses (COCO-Stuff names), SCLIP, short side 336, no refinement, median of {args.repeats} "
              "interleaved runs; text encoding is once per class per machine (cached on disk)")
        print(table(["classes", "text encode s (80 templates)", "s/image (text cached)", "vs 5 classes"], rows))
    if args.memory:
        cases["memory"] = memory_table(args.repeats)
    if args.record:
        record(args, argv, pred, cases)


def record(args, argv, pred: SCLIPPredictor, cases: dict) -> None:
    """The first measured case is the headline: a method table's first row, else 5 classes of the class table."""
    if cases["methods"]:
        first = cases["methods"][0]  # VARIANTS begins with plain SCLIP
        side, seconds = first["short_side"], first["seconds_per_image"]
    else:
        side, seconds = 336, next(c for c in cases["classes"] if c["classes"] == 5)["seconds_per_image"]
    write_speed_record(
        args.record, "openvocab", "bench.openvocab_dense", argv,
        model={"name": "SCLIP", "architecture": "open_clip ViT-B/16", "image_size": side}, case="5 classes",
        timing={"seconds_per_image": seconds, "device": device_label(pred.c.device)},
        memory={"peak_rss_mb": peak_rss_mb(), "measured_over": "the whole benchmark process, model included"},
        config={"repeats": args.repeats, "cases": {k: v for k, v in cases.items() if v}},
        image="scikit-image coffee photo, 400×600" + (" (memory table: astronaut photo, 1–12 MP)" if args.memory else ""))


if __name__ == "__main__":
    main()
