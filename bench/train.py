"""Seconds per training step and peak memory for real-size CLIPSeg (random weights), at 352 and 512.

Each configuration runs in its own process so that its peak resident memory is its own.
    python -m bench.train [--sizes 352 512] [--batch 4] [--steps 3] [--record results/runs/NAME.json]
With --record, the first size with the whole model trained is the record's seconds per training step and peak
memory; every configuration is kept in its config.cases.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.record import add_record_argument, check_record_path, device_label, write_speed_record
from bench.timing import median_seconds, peak_rss_mb, table


def one(size: int, batch: int, steps: int, freeze: bool) -> dict:
    import torch

    from core.models.clipseg import build_random_clipseg, load_clipseg
    from core.prompted.manifest import prepare
    from core.data.synthetic.coco_export import write_export
    from core.prompted.train import TrainConfig, Trainer

    tmp = Path(tempfile.mkdtemp(prefix="seglab_bench_train_"))
    write_export(tmp / "Cracks", "crack", 12, seed=1)
    write_export(tmp / "Drywall-Join-Detect", "taping_area", 12, seed=2)
    prepare([str(tmp / "Cracks"), str(tmp / "Drywall-Join-Detect")], tmp / "m.csv")
    build_random_clipseg(tmp / "clipseg", tiny=False)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    clipseg = load_clipseg(str(tmp / "clipseg"), device, torch.float32, True)
    trainer = Trainer(TrainConfig(str(tmp / "m.csv"), str(tmp / "out"), size=size, batch=batch,
                                  freeze_encoder=freeze), clipseg)
    batches = [b for _, b in trainer.source.batches(1, batch)]
    it = iter(range(10**6))
    secs = median_seconds(lambda: trainer.train_step(batches[next(it) % len(batches)]), repeats=steps, warmup=1)
    peak_cuda = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return {"size": size, "batch": batch, "freeze": freeze, "s_per_step": secs, "peak_rss_mb": peak_rss_mb(),
            "peak_cuda_mb": peak_cuda, "device": device_label(device), "threads": torch.get_num_threads()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[352, 512])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--one", nargs=2, metavar=("SIZE", "FREEZE"), help=argparse.SUPPRESS)
    add_record_argument(ap)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.batch, args.steps, args.one[1] == "1")))
        return
    check_record_path(args.record)
    rows, cases = [], []
    for size in args.sizes:
        for freeze in (False, True):
            out = subprocess.run([sys.executable, "-m", "bench.train", "--one", str(size), str(int(freeze)),
                                  "--batch", str(args.batch), "--steps", str(args.steps)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            cases.append(r)
            rows.append([size, args.batch, "decoder only" if freeze else "full", f"{r['s_per_step']:.2f}",
                         f"{r['s_per_step'] / args.batch:.2f}", f"{r['peak_rss_mb']:.0f}",
                         f"{r['peak_cuda_mb']:.0f}" if r["peak_cuda_mb"] else "–"])
    print(f"device: {r['device']}, torch threads: {r['threads']}, median of {args.steps} steps after one warm-up")
    print(table(["size", "batch", "trained", "s/step", "s/pair", "peak RSS MB", "peak CUDA MB"], rows))
    if args.record:
        record(args.record, argv, cases, args.steps)


def record(path: str, argv, cases: list[dict], steps: int) -> None:
    """The first configuration (first size, whole model trained) is the headline; its process's peak memory."""
    first = cases[0]
    write_speed_record(
        path, "prompted", "bench.train", argv,
        model={"name": "CLIPSeg", "architecture": "rd64-refined", "image_size": first["size"]},
        case=f"training, batch {first['batch']}, {'decoder only' if first['freeze'] else 'whole model'}",
        timing={"seconds_per_train_step": first["s_per_step"], "seconds_per_train_pair": first["s_per_step"] /
                first["batch"], "device": first["device"]},
        memory={"peak_rss_mb": first["peak_rss_mb"], "peak_cuda_mb": first["peak_cuda_mb"],
                "measured_over": "one configuration's own process, model and optimiser included"},
        config={"steps": steps, "warmup_steps": 1, "cases": cases},
        image="drawn crack and taping-area walls (COCO export), 12 per label")


if __name__ == "__main__":
    main()
