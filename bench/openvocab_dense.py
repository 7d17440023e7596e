"""Seconds per image of the SCLIP dense predictor with real-size ViT-B/16 (random weights), by short side and
refinement, and how the time grows with the number of classes.
    python -m bench.openvocab_dense [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from skimage import data

from bench.timing import median_seconds, table
from core.openvocab.class_names import load_class_file, parse_classes
from core.models.openclip import build_random_openclip, load_openclip
from core.openvocab.sclip import DenseConfig, SCLIPPredictor

REFINEMENTS = {"none": {}, "pamr": {"pamr": True}, "rcs": {"rcs": True}, "sfr": {"sfr": True}, "crf": {"crf": True}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sides", type=int, nargs="*", default=[336, 448, 560], help="none: only the class table")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        build_random_openclip(Path(tmp) / "clip", tiny=False)
        clip = load_openclip(str(Path(tmp) / "clip"), device, torch.float32, True)
    pred = SCLIPPredictor(clip)
    image = data.coffee()  # 400×600
    five = parse_classes("cup\nspoon\nplate\ntable\nbackground")
    pred.text_embeddings(five.names)
    rows = []
    for side in args.sides:
        base = None
        for name, kw in REFINEMENTS.items():
            cfg = replace(DenseConfig(short_side=side), **kw)
            s = median_seconds(lambda: pred.predict(image, five, cfg), args.repeats)
            base = base or s
            crops = len(pred.windows(*pred.preprocess(image, side).shape[1:], 224, 112))
            rows.append([side, crops, name, f"{s:.2f}", f"{s / base:.2f}×"])
    if rows:
        print(f"device: {device}, torch threads: {torch.get_num_threads()}, image 400×600, 5 classes, "
              f"median of {args.repeats}")
        print(table(["short side", "crops", "refinement", "s/image", "vs none"], rows))
    coco = load_class_file("coco_stuff171")
    rows = []
    for n in (1, 10, 50, 171):
        sub = parse_classes("\n".join(coco.classes[:n]))
        clip.text_cache.clear()
        t0 = time.perf_counter()
        pred.text_embeddings(sub.names)
        text_s = time.perf_counter() - t0
        s = median_seconds(lambda: pred.predict(image, sub, DenseConfig()), args.repeats)
        rows.append([n, f"{text_s:.1f}", f"{s:.2f}"])
    print("\nclasses (COCO-Stuff names), short side 336, no refinement; text encoding is once per class per process")
    print(table(["classes", "text encode s (80 templates)", "s/image (text cached)"], rows))


if __name__ == "__main__":
    main()
