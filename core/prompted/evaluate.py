"""Evaluate a CLIPSeg model on a manifest split: IoU/Dice per (image, prompt), threshold sweep, resumable.

A pixel is foreground when its probability is >= the threshold. `score_at` says where masks are scored:
'full' (default) at the image's own size against the full-resolution ground truth (what a user gets on a
photo); 'model' at the model's size×size, ground truth resized there with PIL nearest-neighbour, as the
published drywall report scores (its masks at 352×352)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.errors import BadInput
from core.data.images import load_image
from core.prompted.manifest import ManifestRow, read_manifest
from core.metrics.binary import SWEEP, THRESHOLD_RULE, SweepCounts, choose_threshold, foreground, sweep_counts
from core.prompted.segmenter import PromptedResult, PromptMask, PromptedSegmenter, check_size, check_threshold, write_masks
from core.prompted.prompts import LABEL_PROMPTS, unique_slugs
from core.results.checkpoint import Checkpoint
from core.results.records import new_record, write_record


@dataclass
class EvalConfig:
    manifest: str
    split: str = "test"
    model: str = "clipseg"
    size: int | None = None
    threshold: float | None = None
    tune_on: str | None = None
    prompts: str = "all"  # 'all' synonyms of each label, or 'canonical' (the first one)
    save_masks: str | None = None
    limit: int | None = None  # first N rows of the split, for quick looks
    score_at: str = "full"  # 'full': the image's size; 'model': the model's size×size (the published protocol)

    def key(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k != "save_masks"}
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class PairCounts:
    prompt: str
    label: str
    tp: list[int]
    pred_pos: list[int]
    gt_pos: int
    pixels: int

    def counts(self, thresholds) -> SweepCounts:
        return SweepCounts(tuple(thresholds), np.asarray(self.tp), np.asarray(self.pred_pos), self.gt_pos, self.pixels)


@dataclass
class PhaseResult:
    thresholds: tuple[float, ...]
    pairs: list[PairCounts] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


SCORE_AT = ("full", "model")


def check_score_at(score_at: str) -> str:
    if score_at not in SCORE_AT:
        raise BadInput(f"--score-at must be 'full' or 'model'; got '{score_at}'.")
    return score_at


def scoring_hw(image_hw: tuple[int, int], size: int, score_at: str) -> tuple[int, int]:
    """Where masks are scored: the image's (H, W), or the model's (size, size)."""
    return tuple(image_hw) if check_score_at(score_at) == "full" else (size, size)


def scoring_gt(gt: np.ndarray, size: int, score_at: str) -> np.ndarray:
    """The ground truth where masks are scored. 'model': the full-resolution mask as uint8 {0, 255}, resized to
    size×size with PIL NEAREST, then > 0 (what the report's dataset code does to its mask PNGs)."""
    if check_score_at(score_at) == "full":
        return gt.astype(bool)
    small = Image.fromarray(gt.astype(np.uint8) * 255, mode="L").resize((size, size), resample=Image.NEAREST)
    return np.asarray(small) > 0


def pair_counts(prompt: str, label: str, prob: np.ndarray, gt: np.ndarray, thresholds) -> PairCounts:
    """One (image, prompt) pair's counts at every threshold (foreground: prob >= t)."""
    c = sweep_counts(prob, gt, thresholds)
    return PairCounts(prompt, label, c.tp.tolist(), c.pred_pos.tolist(), c.gt_pos, c.pixels)


def prompts_for(label: str, mode: str) -> list[str]:
    return LABEL_PROMPTS[label][:1] if mode == "canonical" else list(LABEL_PROMPTS[label])


def check_rows(rows: list[ManifestRow], split: str) -> None:
    if not rows:
        raise BadInput(f"The '{split}' split of the manifest is empty.")
    missing = [r.image_path for r in rows if not Path(r.image_path).is_file()]
    if missing:
        raise BadInput(f"{len(missing)} image(s) of the '{split}' split are missing, e.g. {missing[0]}")
    unknown = sorted({r.label for r in rows} - set(LABEL_PROMPTS))
    if unknown:
        raise BadInput(f"Unknown label(s) in the manifest: {', '.join(unknown)}")


def run_phase(phase: str, rows: list[ManifestRow], seg: PromptedSegmenter, size: int, mode: str,
              thresholds: tuple[float, ...], ckpt: Checkpoint, lock_threshold: float | None = None,
              save_dir: Path | None = None, score_at: str = "full") -> PhaseResult:
    res = PhaseResult(thresholds)
    for row in tqdm(rows, desc=f"{phase} ({len(rows)} images)", unit="img", leave=False):
        item = ckpt.done.get((phase, row.image_id, row.label))
        if item is None:
            item = evaluate_row(phase, row, seg, size, mode, thresholds, lock_threshold, save_dir, score_at)
            ckpt.add(item)
        res.seconds.append(item["seconds"])
        res.pairs += [PairCounts(**p) for p in item["pairs"]]
    return res


def evaluate_row(phase, row, seg, size, mode, thresholds, lock_threshold, save_dir, score_at="full") -> dict:
    t0 = time.perf_counter()
    image = load_image(row.image_path)
    if image.shape[:2] != (row.height, row.width):
        raise BadInput(f"{row.image_path} is {image.shape[1]}×{image.shape[0]} but its annotations say "
                       f"{row.width}×{row.height}.")
    gt = scoring_gt(row.mask(), size, score_at)
    prompts = prompts_for(row.label, mode)
    pairs, masks = [], []
    _, decoded = seg.probabilities(image, [[p] for p in prompts], size, scoring_hw(image.shape[:2], size, score_at))
    for gi, prob, _ in decoded:
        pairs.append(asdict(pair_counts(prompts[gi], row.label, prob, gt, thresholds)))
        if save_dir is not None and lock_threshold is not None:  # the masks scored (model size with 'model')
            masks.append(foreground(prob, lock_threshold).astype(np.uint8) * 255)
    seconds = time.perf_counter() - t0  # the masks are written after the clock stops
    if masks:
        slugs = unique_slugs(prompts)
        write_masks(PromptedResult(row.image_id, [PromptMask(p, s, m, 0.0, 0.0) for p, s, m in zip(prompts, slugs, masks)],
                                   lock_threshold, size, 0.0, 0.0), save_dir)
    return {"phase": phase, "image_id": row.image_id, "label": row.label, "seconds": seconds, "pairs": pairs}


def summarise(pairs: list[PairCounts], thresholds, t: float) -> dict:
    j = list(thresholds).index(t)
    counts = [p.counts(thresholds) for p in pairs]
    ious = np.array([c.iou()[j] for c in counts])
    dices = np.array([c.dice()[j] for c in counts])
    correct = sum(c.accuracy()[j] * c.pixels for c in counts)
    pixels = sum(c.pixels for c in counts)
    return {"miou": float(ious.mean()), "dice": float(dices.mean()), "pixel_accuracy": float(correct / pixels),
            "n": len(pairs)}


def sweep_points(res: PhaseResult, split: str, role: str) -> list[dict]:
    points = []
    for t in SWEEP:
        s = summarise(res.pairs, res.thresholds, t)
        points.append({"split": split, "role": role, "threshold": t, "miou": s["miou"], "dice": s["dice"]})
    return points


def evaluate(cfg: EvalConfig, seg: PromptedSegmenter, out: Path, command: str, model_info: dict) -> dict:
    """Run the evaluation and write the results record to `out` atomically; returns the record."""
    if cfg.prompts not in ("all", "canonical"):
        raise BadInput("--prompts must be 'all' or 'canonical'.")
    check_score_at(cfg.score_at)
    size = check_size(cfg.size or seg.default_size)
    rows = sorted(read_manifest(Path(cfg.manifest), cfg.split), key=lambda r: (r.image_id, r.label))[: cfg.limit]
    check_rows(rows, cfg.split)
    tune_rows = []
    if cfg.tune_on:
        if cfg.tune_on == cfg.split:
            raise BadInput("Tune the threshold on a split other than the one evaluated.")
        tune_rows = sorted(read_manifest(Path(cfg.manifest), cfg.tune_on), key=lambda r: (r.image_id, r.label))[: cfg.limit]
        check_rows(tune_rows, cfg.tune_on)
    ckpt = Checkpoint(Path(str(out) + ".partial.jsonl"), cfg.key())
    t_start = time.perf_counter()
    sweep: list[dict] = []
    with ckpt.running():
        if tune_rows:
            tuned = run_phase("tune", tune_rows, seg, size, cfg.prompts, SWEEP, ckpt, score_at=cfg.score_at)
            sweep += sweep_points(tuned, cfg.tune_on, "tuning")
            threshold = choose_threshold(SWEEP, [p["miou"] for p in sweep])
            source = f"tuned on {cfg.tune_on} (best mean IoU of the sweep)"
        else:
            threshold = check_threshold(cfg.threshold if cfg.threshold is not None else seg.default_threshold)
            source = "given" if cfg.threshold is not None else "model default"
        thresholds = tuple(sorted(set(SWEEP) | {threshold}))
        save_dir = Path(cfg.save_masks) if cfg.save_masks else None
        res = run_phase("eval", rows, seg, size, cfg.prompts, thresholds, ckpt, threshold, save_dir, cfg.score_at)
    if not tune_rows:
        sweep += sweep_points(res, cfg.split, "sensitivity")
    labels = sorted({p.label for p in res.pairs})
    prompts = list(dict.fromkeys(p.prompt for p in res.pairs))
    metrics = {
        "overall": summarise(res.pairs, thresholds, threshold),
        "per_label": {lab: summarise([p for p in res.pairs if p.label == lab], thresholds, threshold) for lab in labels},
        "per_prompt": {pr: summarise([p for p in res.pairs if p.prompt == pr], thresholds, threshold) for pr in prompts},
    }
    record = new_record(
        "prompted", out.stem, {"kind": "measured", "command": command},
        model={**model_info, "image_size": size},
        dataset={"name": Path(cfg.manifest).stem, "manifest": str(cfg.manifest), "split": cfg.split,
                 "n": len(res.pairs), "n_images": len(rows)},
        config={"prompts": cfg.prompts, "threshold": threshold, "threshold_rule": THRESHOLD_RULE,
                "threshold_source": source, "tune_threshold_on": cfg.tune_on, "limit": cfg.limit,
                "score_at": cfg.score_at, "scored_size": f"{size}x{size}" if cfg.score_at == "model" else "image size"},
        metrics=metrics,
        threshold_sweep=sweep,
        timing={"seconds_per_image": float(np.mean(res.seconds)), "device": str(seg.predictor.c.device)
                if hasattr(seg.predictor, "c") else "cpu", "total_seconds": time.perf_counter() - t_start},
    )
    write_record(record, out)
    ckpt.close(remove=True)
    return record
