"""`python -m core evaluate-semantic`: a dense method (SCLIP, NACLIP), MHQR or grid-vote on a labelled folder, as
results records; MHQR's stage switches, and `--ablate` (the full method and each one-stage-off variant)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from core.errors import BadInput

STAGE_FLAGS = {  # flag -> (MHQRConfig field, value when given, help)
    "no_queries": ("queries", False, "no query generator: a regular grid of points (8×8) with the dense label under "
                                     "each instead of one query per confident component"),
    "no_masks": ("masks", False, "no SAM2 masks: each query's dense component is its mask (SAM2 is not run)"),
    "refine": ("refine", True, "hierarchical refinement of the masks by the dense features (off by default: it "
                               "did not help on the synthetic scenes, bench/mhqr_synthetic.py)"),
    "no_merge": ("merge", False, "no semantic merging of overlapping masks (nor contested pixels resolved)"),
    "no_semantic_map": ("semantic_map", False, "keep the dense map (the other stages still run and are timed)"),
    "no_negatives": ("negatives", False, "no negative points (other classes' nearby queries) sent with a query"),
}


def add_parser(sub, common) -> None:
    """The evaluate-semantic subcommand; common(p) adds the options every model command shares (--models)."""
    p = sub.add_parser("evaluate-semantic", help="open-vocabulary dense prediction on a labelled folder")
    p.add_argument("--data", required=True, help="DIR with images/ and labels/ (class index PNGs, 255 = ignore)")
    p.add_argument("--classes", required=True, help="class file (one class a line, synonyms comma-separated) or a "
                   "preset: voc21, context60, coco_stuff171, cityscapes, ade20k")
    p.add_argument("--out", required=True, help="results/runs/NAME.json")
    p.add_argument("--method", default="sclip", choices=["sclip", "naclip", "mhqr", "grid-vote"],
                   help="sclip: correlative self-attention (wangf3014/SCLIP); naclip: neighbourhood attention, last "
                   "block without residual and feed-forward (sinahmr/NACLIP; its published runs add --pamr); mhqr: "
                   "query points from the dense map, SAM2 masks, merging; grid-vote: SAM2 masks from a point grid "
                   "voting with the dense scores (CorrCLIP's last step)")
    p.add_argument("--dense", default="sclip", choices=["sclip", "naclip"],
                   help="with --method mhqr or grid-vote: the dense method underneath")
    p.add_argument("--sam2", default="sam2", help="SAM2 model: sam2 (hiera-tiny), sam2-small, sam2-base-plus, "
                   "sam2-large, or a folder saved with save_pretrained")
    p.add_argument("--sam2-frame", type=int, default=None,
                   help="SAM2's square frame (default: the model's own, 1024 for the released sizes); 512 is about "
                   "5x faster on a CPU, with coarser masks. The record's config.sam2_frame says which ran")
    p.add_argument("--grid", type=int, default=32, help="grid-vote: points per side")
    g = p.add_argument_group("MHQR stages (--method mhqr; the record's config.stages says what ran)")
    for flag, (_, _, what) in STAGE_FLAGS.items():
        g.add_argument("--" + flag.replace("_", "-"), action="store_true", help=what)
    g.add_argument("--scales", type=float, nargs="+", default=None, metavar="S",
                   help="query scales, each in (0, 1] (default 0.25 0.5 1.0)")
    g.add_argument("--min-queries", type=int, default=None, metavar="N", help="at least N queries (default 10)")
    g.add_argument("--max-queries", type=int, default=None, metavar="N", help="at most N queries (default 200)")
    g.add_argument("--granularity", default=None, choices=["auto", "iou", "coarse", "medium", "fine"],
                   help="which of SAM2's three masks a query keeps (default auto)")
    g.add_argument("--ablate", action="store_true",
                   help="run the full method and each variant with one of its stages off, on the same images (the "
                   "dense stage and SAM2's image encoding once per image); writes NAME.json and "
                   "NAME-no-<stage>.json beside it (stage: queries, masks, refine, merge, semantic-map)")
    p.add_argument("--short-side", type=int, default=336)
    p.add_argument("--logit-scale", type=float, default=40.0)
    p.add_argument("--prob-thd", type=float, default=0.0)
    p.add_argument("--area-thd", type=float, default=None)
    for flag, what in (("pamr", "PAMR on the logits"), ("rcs", "ResCLIP RCS"), ("sfr", "ResCLIP SFR"),
                       ("crf", "DenseCRF (bilateral filter when pydensecrf is missing)")):
        p.add_argument(f"--{flag}", action="store_true", help=what)
    p.add_argument("--rcs-weights", type=float, nargs=2, metavar=("TAU", "LAMBDA"), default=None,
                   help="ResCLIP's RCS mix (default 2.0 0.4, its COCO-Stuff configuration)")
    p.add_argument("--sfr-weights", type=float, nargs=2, metavar=("TAU", "LAMBDA"), default=None,
                   help="ResCLIP's SFR mix (default 1.8 0.7)")
    p.add_argument("--sfr-temp-thd", type=float, default=None,
                   help="ResCLIP's first-pass confidence threshold (default 0.11)")
    p.add_argument("--max-images", type=int, default=None)
    common(p)


def mhqr_config(args: argparse.Namespace):
    """MHQRConfig from the stage flags; BadInput when they are given without --method mhqr or are out of range."""
    from core.openvocab.mhqr.pipeline import MHQRConfig
    from core.openvocab.mhqr.queries import QueryConfig

    given = [f"--{f.replace('_', '-')}" for f in STAGE_FLAGS if getattr(args, f)] + [
        f"--{f.replace('_', '-')}" for f in ("scales", "min_queries", "max_queries", "granularity")
        if getattr(args, f) is not None] + (["--ablate"] if args.ablate else [])
    if args.method != "mhqr":
        if given:
            raise BadInput(f"{', '.join(given)} switch MHQR's stages: use them with --method mhqr.")
        return None
    base = MHQRConfig()
    q = base.query
    if args.scales is not None:
        bad = [s for s in args.scales if not 0 < s <= 1]
        if bad:
            raise BadInput(f"--scales must lie in (0, 1] (1 is the dense map's working resolution); got "
                           f"{', '.join(f'{s:g}' for s in bad)}.")
        q = replace(q, scales=tuple(sorted(set(args.scales))))
    lo = q.min_queries if args.min_queries is None else args.min_queries
    hi = q.max_queries if args.max_queries is None else args.max_queries
    if not 1 <= lo <= hi:
        raise BadInput(f"Need 1 <= --min-queries <= --max-queries; got {lo} and {hi}.")
    q = replace(q, min_queries=lo, max_queries=hi)
    switches = {field: value for f, (field, value, _) in STAGE_FLAGS.items() if getattr(args, f)}
    return replace(base, query=q, granularity=args.granularity or base.granularity, **switches)


def ablation_variants(cfg) -> dict:
    """{'mhqr': cfg, 'mhqr-no-<stage>': cfg without that stage} for every stage on in cfg (stage names with '-')."""
    from core.openvocab.mhqr.pipeline import STAGES

    return {"mhqr": cfg, **{f"mhqr-no-{s.replace('_', '-')}": cfg.without(s) for s in STAGES if getattr(cfg, s)}}


def summary(rec: dict) -> str:
    o = rec["metrics"]["overall"]
    line = (f"mIoU {o['miou']:.4f}, pixel acc {o['pixel_accuracy']:.4f}, "
            f"boundary F1 {o.get('boundary_f1', float('nan')):.4f}, "
            f"small-object IoU {o.get('small_object_iou', float('nan')):.4f}, "
            f"{rec['timing']['seconds_per_image']:.2f} s/image, n {o['n']}; "
            f"ran: {', '.join(rec['config']['ran']) or 'none'}")
    kept = rec["metrics"].get("images_dense_kept")
    if kept:
        line += (f"; on {kept} of {o['n']} image(s) no class reached MHQR's query threshold, so the dense map was "
                 "kept there")
    return line


def run(args: argparse.Namespace, command: str) -> int:
    from core.models import registry
    from core.openvocab.class_names import load_class_file
    from core.openvocab.evaluate import ablation_out, evaluate_ablation, evaluate_semantic
    from core.openvocab.sclip import DenseConfig, SCLIPPredictor

    classes = load_class_file(args.classes)
    mhqr = mhqr_config(args)
    extra = {}
    if args.rcs_weights:
        extra.update(rcs_tau=args.rcs_weights[0], rcs_lambda=args.rcs_weights[1])
    if args.sfr_weights:
        extra.update(sfr_tau=args.sfr_weights[0], sfr_lambda=args.sfr_weights[1])
    if args.sfr_temp_thd is not None:
        extra.update(sfr_temp_thd=args.sfr_temp_thd)
    two_stage = args.method in ("mhqr", "grid-vote")
    cfg = DenseConfig(method=args.dense if two_stage else args.method, short_side=args.short_side,
                      logit_scale=args.logit_scale, prob_thd=args.prob_thd, area_thd=args.area_thd, pamr=args.pamr,
                      rcs=args.rcs, sfr=args.sfr, crf=args.crf, **extra)
    predictor = SCLIPPredictor(registry().get("openclip"))
    if two_stage:
        from core.models.sam2 import sam2_name
        from core.openvocab.mhqr.grid_vote import GridVoteConfig
        from core.openvocab.mhqr.predictor import MHQRPredictor
        from core.openvocab.mhqr.sam2_masks import Sam2PointMasks

        if Path(args.sam2).expanduser().exists():
            sam2 = registry().get(args.sam2, family="sam2")
        else:
            try:
                sam2 = registry().get(sam2_name(args.sam2))
            except ValueError as exc:
                raise BadInput(str(exc)) from None
        try:
            sam2 = sam2.at_frame(args.sam2_frame)
        except ValueError as exc:
            raise BadInput(f"--sam2-frame: {exc}") from None
        kw = {"cfg": mhqr} if mhqr is not None else {}
        predictor = MHQRPredictor(predictor, Sam2PointMasks(sam2), args.method,
                                  grid=GridVoteConfig(grid=args.grid), **kw)
    dataset = Path(args.classes).stem
    if args.ablate:
        records = evaluate_ablation(Path(args.data), classes, predictor, cfg, ablation_variants(mhqr),
                                    Path(args.out), command, args.max_images, dataset)
        for name, rec in records.items():
            print(f"{name}: wrote {ablation_out(Path(args.out), name)}: {summary(rec)}")
        first = next(iter(records.values()))["timing"]
        print(f"dense and SAM2 image encoding ran once per image for the {len(records)} variants "
              f"({first['ablation_wall_seconds']:.1f} s wall in all)")
        return 0
    rec = evaluate_semantic(Path(args.data), classes, predictor, cfg, Path(args.out), command, None,
                            args.max_images, dataset)
    print(f"wrote {args.out}: {summary(rec)}")
    return 0
