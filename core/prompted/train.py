"""Fine-tuning CLIPSeg on a manifest: weighted BCE + Dice, validation every epoch with a threshold sweep,
a loud warning when predictions collapse, atomic checkpoints, exact resume, and a from_pretrained folder.

Validation scores exactly as the val results record written after training does: the same prompts
(VAL_PROMPTS: each row's canonical prompt, one per row, as the published report validates and tests), the same
scoring size (TrainConfig.score_at), the same predictor path and foreground rule (prob >= t). So the threshold
chosen here, and the best val mIoU reported, are what the val record shows at that threshold."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from core.models.clipseg import METADATA_FILE, ClipSeg, ClipSegPredictor, decode_logits, vision_activations
from core.errors import BadInput
from core.prompted.evaluate import check_score_at, pair_counts, prompts_for, scoring_gt, scoring_hw, summarise
from core.prompted.manifest import read_manifest
from core.metrics.binary import SWEEP, THRESHOLD_RULE, choose_threshold, foreground
from core.prompted.prompts import LABEL_PROMPTS
from core.prompted.segmenter import probability_map
from core.prompted.train_data import PairSource, positive_fraction

log = logging.getLogger("seglab.train")
POS_WEIGHT_CAP = 50.0
COLLAPSE_LOW, COLLAPSE_HIGH = 0.001, 0.95  # predicted-positive fraction that counts as all background / foreground
# The prompts validation and the val/test records use: 'canonical' (each row's first prompt, n = rows, as the
# published report's deterministic eval prompt) rather than 'all' synonyms (the mean over every synonym).
VAL_PROMPTS = "canonical"


@dataclass
class TrainConfig:
    manifest: str
    out: str
    model: str = "clipseg"
    size: int = 352
    epochs: int = 16
    batch: int = 16
    lr: float = 2e-5
    weight_decay: float = 1e-4
    pos_weight: str = "auto"  # 'auto' or a number
    freeze_encoder: bool = False
    balance_datasets: bool = False
    seed: int = 42
    patience: int = 5
    augment: bool = True
    val_limit: int | None = None  # validate on the first N val rows, sorted by (image_id, label) (quick looks)
    score_at: str = "full"  # where validation and the records score masks: 'full' or 'model' (see evaluate)


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(pos_weight, device=logits.device))
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum((-2, -1))
    dice = 1 - (2 * inter + 1) / (prob.sum((-2, -1)) + target.sum((-2, -1)) + 1)
    return bce + dice.mean()


def forward(clipseg: ClipSeg, pixels: torch.Tensor, prompts: list[str], freeze_encoder: bool) -> torch.Tensor:
    """Logits (B, S, S); CLIP's encoders get gradients unless frozen, the decoder always does."""
    model = clipseg.model
    tok = clipseg.processor.tokenizer(prompts, padding=True, truncation=True, return_tensors="pt")
    tok = {k: v.to(clipseg.device) for k, v in tok.items()}
    ctx = torch.no_grad() if freeze_encoder else contextlib.nullcontext()
    with ctx:
        acts = vision_activations(model, pixels.to(clipseg.device))
        cond = model.clip.get_text_features(**tok).pooler_output
    return decode_logits(model, acts, cond)


@torch.no_grad()
def validate(clipseg: ClipSeg, rows, size: int, pos_weight: float, mean, std,
             source: PairSource | None = None, score_at: str = "full", prompts: str = VAL_PROMPTS) -> dict:
    """Val loss at model size; IoU/Dice per (row, prompt) over the sweep, computed as `evaluate` computes them
    (same predictor path, prompts, scoring size and `prob >= t` rule), so its numbers are the val record's.

    Pass the same `source` every epoch so that the resized val images are decoded once."""
    check_score_at(score_at)
    clipseg.model.eval()
    source = source or PairSource(rows, size, mean, std, seed=0, augment=False)
    predictor = ClipSegPredictor(clipseg)
    pairs, losses, pred_pos, pixels = [], [], 0, 0
    clipseg._text_cache.clear()  # the text encoder has trained since the embeddings were cached
    try:
        for i, row in enumerate(rows):
            img, mask = source.resized(i)  # the image as evaluate's predictor resizes it (bilinear, size×size)
            names = prompts_for(row.label, prompts)
            logits = predictor.decode(predictor.encode(img, size), names)
            target = torch.from_numpy(mask)[None]
            hw = scoring_hw((row.height, row.width), size, score_at)
            gt = scoring_gt(row.mask(), size, score_at)
            for k, prompt in enumerate(names):
                losses.append(float(bce_dice_loss(logits[k][None], target, pos_weight)))
                prob = probability_map(predictor, logits[k], hw).astype(np.float32, copy=False)
                pairs.append(pair_counts(prompt, row.label, prob, gt, SWEEP))
                pred_pos += int(foreground(prob, 0.5).sum())
                pixels += prob.size
    finally:
        clipseg._text_cache.clear()
    curve = [summarise(pairs, SWEEP, t)["miou"] for t in SWEEP]
    best_t = choose_threshold(SWEEP, curve)
    at_half, at_best = summarise(pairs, SWEEP, 0.5), summarise(pairs, SWEEP, best_t)
    return {"val_loss": float(np.mean(losses)), "val_miou": at_half["miou"], "val_dice": at_half["dice"],
            "best_threshold": best_t, "val_miou_best": at_best["miou"], "val_dice_best": at_best["dice"],
            "pred_pos_frac": pred_pos / pixels,
            "sweep": [{"threshold": t, "miou": m} for t, m in zip(SWEEP, curve)]}


def collapse_warning(pred_frac: float, gt_frac: float) -> str:
    if pred_frac < COLLAPSE_LOW <= gt_frac:
        return (f"COLLAPSE: the model predicts background almost everywhere ({100 * pred_frac:.3f}% positive "
                f"pixels at 0.5 against {100 * gt_frac:.2f}% in the ground truth)")
    if pred_frac > COLLAPSE_HIGH >= gt_frac:
        return (f"COLLAPSE: the model predicts foreground almost everywhere ({100 * pred_frac:.1f}% positive pixels "
                f"at 0.5 against {100 * gt_frac:.2f}% in the ground truth)")
    return ""


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """One training run; `on_step(epoch, step, loss)` is called after every optimiser step."""

    def __init__(self, cfg: TrainConfig, clipseg: ClipSeg, on_step=None):
        self.cfg, self.c, self.on_step = cfg, clipseg, on_step
        self.out = Path(cfg.out)
        self.ckpt_path = self.out / "checkpoint" / "last.pt"
        rows = read_manifest(Path(cfg.manifest))
        self.train_rows = [r for r in rows if r.split == "train"]
        # sorted as evaluate sorts them, so that val_limit keeps the rows the val record keeps
        val_rows = sorted((r for r in rows if r.split == "val"), key=lambda r: (r.image_id, r.label))
        self.val_rows = val_rows[: cfg.val_limit]
        self.test_rows = [r for r in rows if r.split == "test"]
        if not self.val_rows:
            raise BadInput("The validation split is empty: training needs it to tune and stop.")
        for split, rs in (("train", self.train_rows), ("val", self.val_rows)):
            missing = [r.image_path for r in rs if not Path(r.image_path).is_file()]
            if missing:
                raise BadInput(f"{len(missing)} image(s) of the '{split}' split are missing, e.g. {missing[0]}")
        ip = clipseg.processor.image_processor
        self.mean, self.std = ip.image_mean, ip.image_std
        self.source = PairSource(self.train_rows, cfg.size, self.mean, self.std, cfg.seed, cfg.augment,
                                 cfg.balance_datasets)
        self.gt_frac = positive_fraction(self.train_rows)
        if self.gt_frac == 0:
            raise BadInput("The training split has no positive pixel for any label: nothing to learn.")
        empty = [lab for lab in sorted({r.label for r in self.train_rows})
                 if positive_fraction([r for r in self.train_rows if r.label == lab]) == 0]
        if empty:
            raise BadInput(f"Label(s) {', '.join(empty)} have no positive pixel in the training split.")
        self.val_gt_frac = positive_fraction(self.val_rows)
        self.val_source = PairSource(self.val_rows, cfg.size, self.mean, self.std, seed=0, augment=False)
        self.pos_weight = self._pos_weight()
        if cfg.freeze_encoder:
            for p in clipseg.model.clip.parameters():
                p.requires_grad_(False)
        params = [p for p in clipseg.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, mode="max", factor=0.5, patience=2)
        self.amp = clipseg.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.epoch, self.step, self.history, self.best, self.bad_epochs = 1, 0, [], -1.0, 0

    def _pos_weight(self) -> float:
        if self.cfg.pos_weight == "auto":
            return float(min(POS_WEIGHT_CAP, (1 - self.gt_frac) / self.gt_frac))
        try:
            value = float(self.cfg.pos_weight)
        except ValueError:
            raise BadInput(f"--pos-weight must be 'auto' or a number; got '{self.cfg.pos_weight}'.") from None
        if not value > 0:
            raise BadInput("--pos-weight must be positive.")
        return value

    # --- checkpoints -----------------------------------------------------
    def save_checkpoint(self) -> None:
        self.ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_torch_save({
            "model": self.c.model.state_dict(), "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "step": self.step, "history": self.history, "best": self.best,
            "bad_epochs": self.bad_epochs, "config": asdict(self.cfg),
        }, self.ckpt_path)

    def load_checkpoint(self) -> bool:
        if not self.ckpt_path.is_file():
            return False
        state = torch.load(self.ckpt_path, map_location=self.c.device, weights_only=True)
        now, defaults = asdict(self.cfg), asdict(TrainConfig("", ""))
        changed = {k for k in ("manifest", "size", "batch", "seed", "model", "balance_datasets", "freeze_encoder",
                               "score_at") if state["config"].get(k, defaults[k]) != now[k]}
        if changed:
            raise BadInput(f"The checkpoint in {self.ckpt_path.parent} was made with other settings "
                           f"({', '.join(sorted(changed))}); resume with the same ones or use a new --out.")
        self.c.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]
        return True

    # --- the loop ----------------------------------------------------------
    def train_step(self, batch) -> float:
        self.c.model.train()
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            logits = forward(self.c, batch.pixels, batch.prompts, self.cfg.freeze_encoder)
            loss = bce_dice_loss(logits.float(), batch.masks.to(logits.device), self.pos_weight)
        if not torch.isfinite(loss):
            raise BadInput(f"The loss became {float(loss)} at epoch {self.epoch}; lower --lr.")
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_([p for p in self.c.model.parameters() if p.requires_grad], 1.0)
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss.item()

    def run(self) -> list[dict]:
        """Epochs from wherever the checkpoint left off; returns the epoch log."""
        steps = self.source.steps_per_epoch(self.cfg.batch)
        try:
            while self.epoch <= self.cfg.epochs and self.bad_epochs < self.cfg.patience:
                t0, losses = time.perf_counter(), []
                bar = tqdm(total=steps, initial=self.step, desc=f"epoch {self.epoch}/{self.cfg.epochs}", unit="step")
                for step, batch in self.source.batches(self.epoch, self.cfg.batch, start=self.step):
                    loss = self.train_step(batch)
                    losses.append(loss)
                    self.step = step + 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}")
                    if self.on_step:
                        self.on_step(self.epoch, step, loss)
                row = self.end_epoch(losses, time.perf_counter() - t0)
                bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_miou=f"{row['val_miou_best']:.4f}",
                                **({"WARNING": "collapse"} if row["warning"] else {}))
                bar.close()
        except KeyboardInterrupt:
            self.save_checkpoint()
            raise BadInput(f"Interrupted; checkpoint saved in {self.ckpt_path}. Run again with --resume to continue.") \
                from None
        return self.history

    def end_epoch(self, losses: list[float], seconds: float) -> dict:
        val = validate(self.c, self.val_rows, self.cfg.size, self.pos_weight, self.mean, self.std, self.val_source,
                       self.cfg.score_at)
        warning = collapse_warning(val["pred_pos_frac"], self.val_gt_frac)
        row = {"epoch": self.epoch, "train_loss": float(np.mean(losses)) if losses else math.nan,
               **{k: v for k, v in val.items() if k != "sweep"}, "lr": self.opt.param_groups[0]["lr"],
               "seconds": seconds, "warning": warning}
        if warning:
            log.warning("epoch %d: %s", self.epoch, warning)
            tqdm.write(f"WARNING epoch {self.epoch}: {warning}")
        self.history.append(row)
        self.sched.step(val["val_miou_best"])
        if val["val_miou_best"] > self.best:
            self.best, self.bad_epochs = val["val_miou_best"], 0
            self.save_best(val)
        else:
            self.bad_epochs += 1
        self.write_log()
        self.epoch, self.step = self.epoch + 1, 0
        self.save_checkpoint()
        return row

    def save_best(self, val: dict) -> None:
        """The best epoch so far as a from_pretrained folder with seglab.json beside it."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.c.model.save_pretrained(self.out)
        self.c.processor.save_pretrained(self.out)
        meta = {"threshold": val["best_threshold"], "image_size": self.cfg.size, "prompts": LABEL_PROMPTS,
                "training": asdict(self.cfg), "pos_weight": self.pos_weight, "best_epoch": self.epoch,
                "validation": {"prompts": VAL_PROMPTS, "score_at": self.cfg.score_at,
                               "threshold_rule": THRESHOLD_RULE},
                "val": {k: v for k, v in val.items()}, "epochs": self.history}
        tmp = self.out / (METADATA_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, self.out / METADATA_FILE)

    def write_log(self) -> None:
        path = self.out / "train_log.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(self.history[0]))
            w.writeheader()
            w.writerows(self.history)
        os.replace(tmp, path)
        meta_path = self.out / METADATA_FILE
        if meta_path.is_file():  # the epoch log in seglab.json stays complete, not only up to the best epoch
            meta = json.loads(meta_path.read_text())
            meta["epochs"] = self.history
            meta_path.with_suffix(".tmp").write_text(json.dumps(meta, indent=2))
            os.replace(meta_path.with_suffix(".tmp"), meta_path)


def fresh_copy(model: str) -> ClipSeg:
    """A trainable copy, never the registry's shared one (so serving and training do not share weights)."""
    from core.models import registry

    return registry().fresh(model, family="clipseg")


def train(cfg: TrainConfig, resume: bool = False, results_dir: Path | None = Path("results/runs"),
          command: str = "", on_step=None) -> dict:
    """Train, keep the best epoch in cfg.out, and write results records for val and test (threshold locked)."""
    from core.prompted.evaluate import EvalConfig, evaluate
    from core.prompted.segmenter import PromptedSegmenter
    from core.results.records import run_name

    if cfg.size not in (352, 512, 1024):
        raise BadInput(f"--size must be 352, 512 or 1024; got {cfg.size}.")
    if cfg.epochs < 1 or cfg.batch < 1:
        raise BadInput("--epochs and --batch must be at least 1.")
    check_score_at(cfg.score_at)
    trainer = Trainer(cfg, fresh_copy(cfg.model), on_step)
    if resume:
        if not trainer.load_checkpoint():
            raise BadInput(f"No checkpoint to resume in {trainer.ckpt_path.parent}.")
    elif trainer.ckpt_path.is_file():
        raise BadInput(f"{cfg.out} already holds a training run; add --resume to continue it, or choose a new --out.")
    t0 = time.perf_counter()
    history = trainer.run()
    train_seconds = time.perf_counter() - t0
    summary = {"epochs": history, "best_val_miou": trainer.best, "pos_weight": trainer.pos_weight,
               "train_seconds": train_seconds, "stopped_early": trainer.bad_epochs >= cfg.patience}
    if results_dir is None:
        return summary
    best = fresh_copy(str(Path(cfg.out).resolve()))
    seg = PromptedSegmenter(ClipSegPredictor(best), best.threshold, best.size)
    name = run_name(Path(cfg.out).name)
    records = {}
    for split in ("val", "test"):
        if split == "test" and not trainer.test_rows:
            continue
        out = Path(results_dir) / f"{name}_{split}.json"
        # the prompts, rows and scoring that validation used, so the val record shows the tuned threshold's mIoU
        ecfg = EvalConfig(cfg.manifest, split, str(cfg.out), cfg.size, best.threshold, None, VAL_PROMPTS,
                          limit=cfg.val_limit if split == "val" else None, score_at=cfg.score_at)
        rec = evaluate(ecfg, seg, out, command or "python -m core train",
                       {"name": name, "source": f"fine-tuned folder {cfg.out}"})
        rec["config"]["threshold_source"] = f"tuned on val during training ({VAL_PROMPTS} prompts, best mean IoU)"
        rec["training"] = {**summary, "config": asdict(cfg)}
        rec["timing"]["train_seconds"] = train_seconds
        from core.results.records import write_record

        write_record(rec, out)
        records[split] = str(out)
    summary["records"] = records
    return summary
