"""Seconds per image for K prompts, shared image encoding against the naive way (image repeated per prompt).

Real-size CLIPSeg (rd64-refined architecture) with random weights, on this machine's CPU (or GPU).
    python -m bench.prompted [--sizes 352 512] [--ks 1 2 4 8] [--repeats 3] [--record results/runs/NAME.json]
With --record, the first size and K (shared encoding) are the record's seconds per image; every case is kept in
its config.cases.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from skimage import data

from bench.record import add_record_argument, check_record_path, device_label, write_speed_record
from bench.timing import median_seconds, peak_rss_mb, table
from core.models.clipseg import ClipSegPredictor, build_random_clipseg, load_clipseg
from core.prompted.segmenter import PromptedRequest, PromptedSegmenter

PROMPTS = ["segment crack", "segment wall crack", "segment taping area", "segment drywall seam",
           "segment joint tape", "segment joint/tape", "segment cup", "segment table"]


def naive(predictor: ClipSegPredictor, image: np.ndarray, prompts: list[str], size: int, threshold: float = 0.5):
    """What the usual example code does: the image repeated once per prompt through the whole model."""
    c = predictor.c
    tok = c.processor.tokenizer(prompts, padding=True, return_tensors="pt")
    pv = predictor.preprocess(image, size).expand(len(prompts), -1, -1, -1)
    with torch.inference_mode():
        logits = c.model(input_ids=tok["input_ids"].to(c.device), attention_mask=tok["attention_mask"].to(c.device),
                         pixel_values=pv).logits.float().cpu()
    logits = logits if logits.dim() == 3 else logits[None]
    return [(predictor.upsample_probabilities(lg, image.shape[:2]) >= threshold) for lg in logits]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[352, 512])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--repeats", type=int, default=3)
    add_record_argument(ap)
    args = ap.parse_args(argv)
    check_record_path(args.record)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        build_random_clipseg(Path(tmp) / "clipseg", tiny=False)
        clipseg = load_clipseg(str(Path(tmp) / "clipseg"), device, torch.float32, True)
    predictor = ClipSegPredictor(clipseg)
    seg = PromptedSegmenter(predictor)
    image = data.coffee()  # 400×600 RGB
    rows, cases = [], []
    for size in args.sizes:
        base = None
        for k in args.ks:
            prompts = PROMPTS[:k]
            predictor.text_embeddings(prompts)  # the text cache is warm in a serving process
            shared = median_seconds(lambda: seg.run(PromptedRequest(image, "coffee", prompts, 0.5, size)), args.repeats)
            slow = median_seconds(lambda: naive(predictor, image, prompts, size), args.repeats)
            base = base or shared
            rows.append([size, k, f"{shared:.3f}", f"{slow:.3f}", f"{slow / shared:.2f}×", f"{shared / base:.2f}×"])
            cases.append({"image_size": size, "prompts": k, "seconds_per_image": shared, "naive_seconds": slow})
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, image 400×600, median of {args.repeats}")
    print(table(["size", "K prompts", "shared s/img", "naive s/img", "naive/shared", "shared vs K=1"], rows))
    if args.record:
        first = cases[0]
        write_speed_record(
            args.record, "prompted", "bench.prompted", argv,
            model={"name": "CLIPSeg", "architecture": "rd64-refined", "image_size": first["image_size"]},
            case=f"{first['prompts']} prompt{'s' if first['prompts'] > 1 else ''}",
            timing={"seconds_per_image": first["seconds_per_image"], "device": device_label(device)},
            memory={"peak_rss_mb": peak_rss_mb(), "measured_over": "the whole benchmark process, model included"},
            config={"repeats": args.repeats, "image_encoding": "shared across prompts", "cases": cases},
            image="scikit-image coffee photo, 400×600")


if __name__ == "__main__":
    main()
