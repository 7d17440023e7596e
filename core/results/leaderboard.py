"""The dashboard's first view: one task and one dataset, methods ranked, best values marked, in words a
stakeholder reads in a minute. Also what every view needs to say about a run: a short human name, where the
number comes from (with the public source as a link), and which direction of each metric is better."""

from __future__ import annotations

import math
import re

import pandas as pd

from core.results.runs import Runs

# Metrics where a smaller number is better; every other metric is better higher.
LOWER_IS_BETTER = {"seconds_per_image", "s_per_image", "loss", "train_loss", "val_loss", "train_seconds",
                   "total_seconds", "peak_gb", "peak_memory_gb", "id_switches", "fragmentations"}
METRIC_NAMES = {"miou": "mIoU", "dice": "Dice", "pixel_accuracy": "pixel acc.", "boundary_f1": "boundary F1",
                "small_object_iou": "small-object IoU", "s_per_image": "s / image"}
TASK_METRICS = {"prompted": ["miou", "dice", "pixel_accuracy"],
                "openvocab": ["miou", "pixel_accuracy", "boundary_f1", "small_object_iou"]}
DATASET_NAMES = {"voc21": "VOC21", "voc20": "VOC20", "context60": "Context60", "context59": "Context59",
                 "coco_object": "COCO-Object", "coco_stuff164k": "COCO-Stuff-164k", "cityscapes": "Cityscapes",
                 "ade20k": "ADE20k"}
SOURCE_LINKS = {  # public source of each kind of reported figure
    "SCLIP repository": "https://github.com/wangf3014/SCLIP",
    "ResCLIP README": "https://github.com/yvhangyang/ResCLIP",
    "ClearCLIP": "https://github.com/mc-lan/ClearCLIP",
    "CorrCLIP": "https://github.com/zdk258/CorrCLIP",
    "Drywall QA": "https://github.com/manojkumartjpk/origin_finetune",
}


def better_sign(metric: str) -> int:
    """+1 when a higher value is better, −1 when a lower one is."""
    return -1 if metric in LOWER_IS_BETTER or metric.endswith("_seconds") else 1


def dataset_name(key: str | None) -> str:
    return DATASET_NAMES.get(key or "", key or "–")


def display_name(rec: dict) -> str:
    """Method plus its key configuration: 'CLIPSeg ft e16 @512, thr 0.4', 'NACLIP + ResCLIP (RCS, SFR) @336'."""
    model, cfg = rec.get("model") or {}, rec.get("config") or {}
    reported = (rec.get("provenance") or {}).get("kind") == "reported"
    if rec.get("task") == "openvocab":
        name = cfg.get("published_method") if reported else cfg.get("variant") or model.get("name")
        return name + ("" if reported or not model.get("image_size") else f" @{model['image_size']}")
    if rec.get("task") == "prompted":
        raw = f"{model.get('name', '')} {model.get('source', '')}".lower()
        if "clipseg" not in raw:
            return re.sub(r"\s*\(.*?\)", "", model.get("name") or rec.get("run_id", "?")).strip() + (
                " zero-shot" if not cfg.get("epochs") else "")
        epochs = cfg.get("epochs") or 0
        parts = ["CLIPSeg " + (f"ft e{epochs}" if epochs else "zero-shot")]
        if model.get("image_size"):
            parts[0] += f" @{model['image_size']}"
        if cfg.get("threshold") is not None:
            parts.append(f"thr {cfg['threshold']:g}")
        if "baltrain" in (model.get("name") or ""):
            parts.append("balanced train set")
        return ", ".join(parts)
    return model.get("name") or rec.get("run_id", "?")


def provenance_label(rec: dict) -> tuple[str, str | None]:
    """('reported (repo README)', url) or ('measured (SegLab, 1a2b3c4, cpu)', None)."""
    prov = rec.get("provenance") or {}
    if prov.get("kind") == "reported":
        source = prov.get("source") or ""
        kind = "paper" if "paper" in source.lower() else "report" if "report" in source.lower() else "repo README"
        url = next((u for k, u in SOURCE_LINKS.items() if k.lower() in source.lower()), None)
        return f"reported ({kind})", url
    commit = (rec.get("git_commit") or "")[:7] or "no commit"
    device = (rec.get("timing") or {}).get("device") or "unknown device"
    return f"measured (SegLab, {commit}, {device})", None


def default_view(runs: Runs) -> tuple[str | None, str | None]:
    """The task and dataset with the most runs."""
    t = runs.table
    if t.empty:
        return None, None
    counts = t.groupby(["task", "dataset"], dropna=True).size().sort_values(ascending=False, kind="stable")
    return counts.index[0] if len(counts) else (None, None)


def _percent(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _seconds(v, device) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.3g} ({device})" if device and device != "–" else f"{v:.3g}"


def leaderboard(runs: Runs, task: str, dataset: str, metric: str = "miou") -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(table of display strings ranked by `metric`, a same-shaped table of bools marking each column's best,
    a one-line summary). Metric columns are percentages with one decimal; missing values are blank; a column no
    run has is left out."""
    t = runs.table
    rows = t[(t["task"] == task) & (t["dataset"] == dataset)].copy()
    metrics = [m for m in TASK_METRICS.get(task, ["miou"]) if m in rows.columns and rows[m].notna().any()]
    if metric not in metrics:
        metric = metrics[0] if metrics else metric
    sign = better_sign(metric)
    if metric in rows.columns:
        rows = rows.assign(_key=rows[metric] * sign).sort_values("_key", ascending=False, na_position="last",
                                                                   kind="stable")
    recs = [runs.records[k] for k in rows["run"]]
    out = pd.DataFrame({
        "rank": range(1, len(rows) + 1),
        "method": [display_name(r) for r in recs],
        "provenance": [provenance_label(r)[0] for r in recs],
        **{METRIC_NAMES.get(m, m): [_percent(v) for v in rows[m]] for m in metrics},
        "s / image": [_seconds(v, d) for v, d in zip(rows["s_per_image"], rows["device"])],
        "run": list(rows["run"]),
    })
    best = pd.DataFrame(False, index=out.index, columns=out.columns)
    for m in metrics + ["s_per_image"]:
        col = METRIC_NAMES.get(m, m)
        vals = pd.to_numeric(rows[m], errors="coerce").reset_index(drop=True)
        if vals.notna().any():
            target = vals.max() if better_sign(m) > 0 else vals.min()
            best[col] = (vals == target).to_numpy()
    empty = [c for c in out.columns if c not in ("rank", "method", "provenance", "run") and (out[c] == "").all()]
    out, best = out.drop(columns=empty), best.drop(columns=empty)
    summary = "No run of this task on this dataset."
    if len(out) and metric in rows.columns and pd.notna(rows[metric].iloc[0]):
        summary = (f"Best {METRIC_NAMES.get(metric, metric)} on {dataset_name(dataset)}: {out['method'].iloc[0]}, "
                   f"{out[METRIC_NAMES.get(metric, metric)].iloc[0]} ({out['provenance'].iloc[0].split(' (')[0]}); "
                   f"{len(out)} run(s).")
    return out, best, summary
