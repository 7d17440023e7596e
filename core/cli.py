"""`python -m core <command>`: the command line for every SegLab library."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from core.errors import SegLabError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", choices=["real", "tiny"], default=None,
                   help="'tiny': random tiny models of the same classes (offline dry runs); default: real weights")


def _video_models(p: argparse.ArgumentParser) -> None:
    """--models and the options of the model-backed tracking stages (core.video.model_stages)."""
    from core.video.model_stages import ModelStagesConfig as D

    _common(p)
    g = p.add_argument_group("models (detector, propagator, class evidence)")
    g.add_argument("--no-mhqr", action="store_true",
                   help="keyframe detections are the dense map's connected components per class (no SAM2 image model)")
    g.add_argument("--dense", choices=["sclip", "naclip"], default=D.dense_method, help="the dense CLIP method")
    g.add_argument("--dense-short-side", type=int, default=D.dense_short_side,
                   help="the detector's dense stage resizes frames to this short side, never above the frame's own "
                   "(default %(default)s)")
    g.add_argument("--sam2", default=D.sam2, help="MHQR's SAM2 image model: sam2 (hiera-tiny), sam2-small, "
                   "sam2-base-plus, sam2-large, or a save_pretrained folder")
    g.add_argument("--sam2-video", default=D.sam2_video, help="the propagator's SAM2 video model: sam2-video, "
                   "sam2-video-small, ..., or a save_pretrained folder")
    g.add_argument("--sam2-frame", type=int, default=D.sam2_frame,
                   help="SAM2 video's square frame, a multiple of 32 (default %(default)s: about 0.9 s a frame with "
                   "hiera-tiny on 2 CPU cores, against about 7 s at the released 1024; 0: the model's own)")
    g.add_argument("--min-area", type=int, default=D.min_area, help="a detection's minimum pixels (processing size)")
    g.add_argument("--evidence-every", type=int, default=D.evidence_every,
                   help="dense CLIP class evidence every N frames (and on a track's first frame; default %(default)s)")
    g.add_argument("--evidence-short-side", type=int, default=D.evidence_short_side,
                   help="the evidence's CLIP input short side, one crop (default %(default)s)")
    g.add_argument("--background", default=",".join(D.background),
                   help="the 'no object' prompt (comma-separated synonyms; default '%(default)s'); '' for a fixed "
                   "cosine instead")


def build_video_stages(args: argparse.Namespace, class_names: list[str]) -> tuple:
    """core.video.cli's build_stages: (detector, propagator, evidence) from the model options."""
    from core.video.model_stages import ModelStagesConfig, build_model_stages, parse_background

    cfg = ModelStagesConfig(detector="dense-components" if args.no_mhqr else "mhqr", dense_method=args.dense,
                            dense_short_side=args.dense_short_side, sam2=args.sam2, sam2_video=args.sam2_video,
                            sam2_frame=args.sam2_frame or None, min_area=args.min_area, evidence_every=args.evidence_every,
                            evidence_short_side=args.evidence_short_side, background=parse_background(args.background))
    return build_model_stages(class_names, cfg)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="SegLab command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("segment", help="binary masks for text prompts on images (CLIPSeg)")
    p.add_argument("--image", nargs="+", required=True, metavar="PATH")
    p.add_argument("--prompt", action="append", default=[], help="a prompt; repeat for several")
    p.add_argument("--label", action="append", default=[], help="a label (crack, taping_area): its first prompt")
    p.add_argument("--out", required=True, help="folder for {image_id}__{prompt}.png")
    p.add_argument("--threshold", type=float, default=None, help="default: the model's stored threshold, else 0.5")
    p.add_argument("--model", default="clipseg", help="'clipseg' or a fine-tuned folder")
    p.add_argument("--size", type=int, default=None, choices=[352, 512, 1024])
    p.add_argument("--ensemble", action="store_true", help="a label's prompt = mean probability over its synonyms")
    p.add_argument("--open", type=int, default=0, metavar="R", help="morphological opening radius (px)")
    p.add_argument("--close", type=int, default=0, metavar="R", help="morphological closing radius (px)")
    p.add_argument("--min-component", type=int, default=0, metavar="N", help="drop components under N pixels")
    p.add_argument("--overlay", action="store_true", help="also write {image_id}__overlay.png")
    _common(p)

    p = sub.add_parser("prepare", help="COCO exports -> one manifest CSV, re-split label-aware")
    p.add_argument("--export", nargs="+", required=True, metavar="DIR[=LABEL]")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=42)

    p = sub.add_parser("evaluate", help="mIoU/Dice of a model on a manifest split, written as a results record")
    p.add_argument("--manifest", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help="results/runs/NAME.json")
    p.add_argument("--model", default="clipseg")
    p.add_argument("--size", type=int, default=None, choices=[352, 512, 1024])
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--tune-threshold-on", default=None, metavar="SPLIT")
    p.add_argument("--prompts", choices=["all", "canonical"], default="all")
    p.add_argument("--save-masks", default=None, metavar="DIR")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of each split")
    p.add_argument("--score-at", choices=["full", "model"], default="full",
                   help="'full' (default): masks at each image's size against full-resolution ground truth; "
                        "'model': at the model's size×size, ground truth resized nearest-neighbour (the published "
                        "report's protocol; saved masks are then at that size too). Foreground: prob >= threshold")
    _common(p)

    p = sub.add_parser("train", help="fine-tune CLIPSeg on a manifest's train split")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True, help="models/NAME: a from_pretrained folder with seglab.json")
    p.add_argument("--model", default="clipseg", help="starting point: 'clipseg' or a folder")
    p.add_argument("--size", type=int, default=352, choices=[352, 512, 1024])
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--pos-weight", default="auto", help="'auto' (background/foreground ratio, capped) or a number")
    p.add_argument("--freeze-encoder", action="store_true", help="train the decoder only (CLIP frozen)")
    p.add_argument("--balance-datasets", action="store_true", help="each label contributes equally per epoch")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--patience", type=int, default=5, help="early stopping on val mIoU")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--score-at", choices=["full", "model"], default="full",
                   help="validation scoring size: full (the photo's, default) or model (the published report's)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--results", default="results/runs", help="folder for the val/test results records")
    _common(p)

    from core.openvocab.cli import add_parser as add_semantic_parser

    add_semantic_parser(sub, _common)

    p = sub.add_parser("import-reported", help="published figures -> 'reported' results records")
    p.add_argument("--reference", default=str(Path(__file__).resolve().parents[1].parent / "shared/reference/reported_results.md"))
    p.add_argument("--out", default="results/reported")

    p = sub.add_parser("demo-data", help="draw a synthetic drywall COCO export (crack + taping area)")
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=20, help="images per label")

    p = sub.add_parser("models", help="list the registered models and where each would load from")
    _common(p)

    from core.video.cli import add_parser as add_video_parser

    add_video_parser(sub, _video_models)

    from core.results.cli import add_parser

    add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if getattr(args, "models", None):
        from core.models import set_models_mode

        set_models_mode(args.models)
    command = "python -m core " + " ".join(shlex.quote(a) for a in argv)
    try:
        return COMMANDS[args.command](args, command)
    except SegLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def cmd_segment(args, command: str) -> int:
    from PIL import Image

    from core.draw.overlay import overlay
    from core.prompted.cleanup import Cleanup
    from core.prompted.segmenter import load_segmenter
    from core.prompted.batch import segment_files
    from core.prompted.prompts import mask_filename, parse_prompts

    prompts = parse_prompts(args.prompt, args.label)
    seg = load_segmenter(args.model)
    out = Path(args.out)
    res = segment_files(seg, args.image, prompts, out, args.threshold, args.size,
                        Cleanup(args.open, args.close, args.min_component), args.ensemble, previews=args.overlay)
    for pv in res.previews:
        Image.fromarray(overlay(pv.image, pv.masks, pv.prompts)).save(out / mask_filename(pv.image_id, "overlay"))
    for r in res.rows:
        print(f"{out / r['file']}\tcoverage {r['coverage_%']:.2f}%\t{1000 * r['seconds']:.0f} ms"
              f"\t(encode {1000 * r['encode_s']:.0f} ms, threshold {r['threshold']}, size {r['size']})")
    for e in res.errors:
        print(f"error: {e}", file=sys.stderr)
    return 2 if res.errors else 0


def cmd_prepare(args, command: str) -> int:
    from collections import Counter

    from core.prompted.manifest import prepare

    rows = prepare(args.export, Path(args.out), seed=args.seed)
    counts = Counter((r.split, r.label) for r in rows)
    labels = sorted({r.label for r in rows})
    print(f"wrote {args.out}: {len(rows)} rows")
    print("split\t" + "\t".join(labels) + "\ttotal")
    for s in ("train", "val", "test"):
        print(s + "\t" + "\t".join(str(counts[(s, lab)]) for lab in labels) + f"\t{sum(counts[(s, lab)] for lab in labels)}")
    return 0


def cmd_evaluate(args, command: str) -> int:
    from core.prompted.evaluate import EvalConfig, evaluate
    from core.prompted.segmenter import load_segmenter
    from core.models import registry

    seg = load_segmenter(args.model)
    _, source = registry().resolve(args.model, family="clipseg")
    cfg = EvalConfig(args.manifest, args.split, args.model, args.size, args.threshold, args.tune_threshold_on,
                     args.prompts, args.save_masks, args.limit, score_at=args.score_at)
    t0 = time.perf_counter()
    rec = evaluate(cfg, seg, Path(args.out), command, {"name": args.model, "source": source.describe()})
    o = rec["metrics"]["overall"]
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")
    print(f"overall: mIoU {o['miou']:.4f}  Dice {o['dice']:.4f}  pixel acc {o['pixel_accuracy']:.4f}  n {o['n']}  "
          f"threshold {rec['config']['threshold']} ({rec['config']['threshold_source']}; prob >= threshold)  "
          f"scored at {rec['config']['scored_size']} (--score-at {rec['config']['score_at']})")
    for lab, m in rec["metrics"]["per_label"].items():
        print(f"  {lab}: mIoU {m['miou']:.4f}  Dice {m['dice']:.4f}  n {m['n']}")
    return 0


def cmd_train(args, command: str) -> int:
    from core.prompted.train import TrainConfig, train

    cfg = TrainConfig(args.manifest, args.out, args.model, args.size, args.epochs, args.batch, args.lr,
                      args.weight_decay, args.pos_weight, args.freeze_encoder, args.balance_datasets, args.seed,
                      args.patience, not args.no_augment, score_at=args.score_at)
    summary = train(cfg, resume=args.resume, results_dir=Path(args.results), command=command)
    warned = [e for e in summary["epochs"] if e["warning"]]
    print(f"trained {len(summary['epochs'])} epoch(s) in {summary['train_seconds']:.0f} s; best val mIoU "
          f"{summary['best_val_miou']:.4f}; model in {args.out}")
    for split, path in summary.get("records", {}).items():
        print(f"{split} record: {path}")
    if warned:
        print(f"WARNING: {len(warned)} epoch(s) collapsed: {warned[-1]['warning']}", file=sys.stderr)
    return 0


def cmd_evaluate_semantic(args, command: str) -> int:
    from core.openvocab.cli import run

    return run(args, command)


def cmd_import_reported(args, command: str) -> int:
    from core.results.reported import import_reported

    paths = import_reported(Path(args.reference), Path(args.out))
    print(f"wrote {len(paths)} reported runs under {args.out}")
    return 0


def cmd_demo_data(args, command: str) -> int:
    from core.data.synthetic.coco_export import write_export

    out = Path(args.out)
    write_export(out / "Cracks", "crack", args.images, seed=1)
    write_export(out / "Drywall-Join-Detect", "taping_area", args.images, seed=2)
    from core.data.synthetic.semantic_scenes import write_semantic_set

    write_semantic_set(out / "semantic", n=args.images)
    print(f"wrote two synthetic exports under {out} (Cracks, Drywall-Join-Detect) and a semantic set "
          f"({out / 'semantic'}: images/, labels/, classes.txt)")
    return 0


def cmd_models(args, command: str) -> int:
    from core.models import registry

    reg = registry()
    for name in reg.names():
        spec, source = reg.resolve(name)
        print(f"{name}\t{source.describe()}\t(override: {spec.env_var})\t{spec.description}")
    from core.prompted.segmenter import available_models, model_defaults

    for folder in available_models()[1:]:
        threshold, size = model_defaults(folder)
        print(f"{folder}\tfine-tuned CLIPSeg\tthreshold {threshold}, size {size}")
    return 0


def cmd_track(args, command: str) -> int:
    from core.video.cli import run_track

    return run_track(args, command, build_video_stages)


def cmd_evaluate_video(args, command: str) -> int:
    from core.video.cli import run_evaluate_video

    return run_evaluate_video(args, command, build_video_stages)


def cmd_results(args, command: str) -> int:
    from core.results.cli import run

    return run(args)


COMMANDS = {
    "results": cmd_results, "train": cmd_train, "evaluate-semantic": cmd_evaluate_semantic,
    "segment": cmd_segment, "prepare": cmd_prepare, "evaluate": cmd_evaluate,
    "import-reported": cmd_import_reported, "demo-data": cmd_demo_data, "models": cmd_models,
    "track": cmd_track, "evaluate-video": cmd_evaluate_video,
}
