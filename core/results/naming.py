"""What every view says about a run and its numbers: a short human name, where the number comes from (with the public
source as a link), which direction of each metric is better, and how a metric or dataset is called on screen."""

from __future__ import annotations

import re

# Metrics where a smaller number is better; every other metric is better higher (see better_sign for the patterns).
LOWER_IS_BETTER = {"seconds_per_image", "s_per_image", "loss", "train_loss", "val_loss", "train_seconds",
                   "total_seconds", "peak_gb", "peak_memory_gb", "id_switches", "fragmentations"}
METRIC_NAMES = {"miou": "mIoU", "dice": "Dice", "pixel_accuracy": "pixel acc.", "boundary_f1": "boundary F1",
                "small_object_iou": "small-object IoU", "s_per_image": "s / image", "iou": "IoU",
                "seconds_per_image": "s / image", "s_per_train_step": "s / training step",
                "peak_rss_mb": "peak RSS MB", "peak_cuda_mb": "peak CUDA MB"}
# Overall metrics that are fractions (shown as percentages); anything else is shown as it is.
FRACTIONS = {"miou", "dice", "pixel_accuracy", "boundary_f1", "small_object_iou", "iou", "hota", "idf1", "mota",
             "j_and_f"}
TASK_METRICS = {"prompted": ["miou", "dice", "pixel_accuracy"],
                "openvocab": ["miou", "pixel_accuracy", "boundary_f1", "small_object_iou"]}
TASK_NAMES = {"prompted": "prompted (drywall QA)", "openvocab": "open-vocabulary", "video": "video"}
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
    """+1 when a higher value is better, −1 when a lower one is (times, losses, memory, error counts)."""
    lower = (metric in LOWER_IS_BETTER or "loss" in metric or metric.endswith(("_seconds", "_mb", "_gb"))
             or metric.startswith(("seconds_", "s_per_")))
    return -1 if lower else 1


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def axis_title(metric: str) -> str:
    """'mIoU, % (higher is better)', 's / image (lower is better)'."""
    unit = ", %" if metric in FRACTIONS else ""
    return f"{metric_name(metric)}{unit} ({'higher' if better_sign(metric) > 0 else 'lower'} is better)"


def dataset_name(key: str | None) -> str:
    return DATASET_NAMES.get(key or "", key or "–")


def task_name(key: str | None) -> str:
    return TASK_NAMES.get(key or "", key or "–")


def is_speed_only(rec: dict) -> bool:
    """A benchmark record: random weights, timing and memory only (bench/ --record)."""
    return (rec.get("model") or {}).get("weights") == "random" or bool((rec.get("config") or {}).get("speed_only"))


def display_name(rec: dict) -> str:
    """Method plus its key configuration: 'CLIPSeg ft e16 @512, thr 0.4', 'NACLIP + ResCLIP (RCS, SFR) @336'."""
    model, cfg = rec.get("model") or {}, rec.get("config") or {}
    reported = (rec.get("provenance") or {}).get("kind") == "reported"
    if is_speed_only(rec):
        size = f" @{model['image_size']}" if model.get("image_size") else ""
        case = f", {cfg['case']}" if cfg.get("case") else ""
        return f"{model.get('name') or rec.get('run_id', '?')}{size}{case} (speed only, random weights)"
    if rec.get("task") == "openvocab":
        name = cfg.get("published_method") if reported else cfg.get("variant") or model.get("name")
        return name + ("" if reported or not model.get("image_size") else f" @{model['image_size']}")
    if rec.get("task") == "prompted":
        raw = f"{model.get('name', '')} {model.get('source', '')}".lower()
        if "clipseg" not in raw:
            name = re.sub(r"\s*\(.*?\)", "", model.get("name") or rec.get("run_id", "?")).strip()
            return name + ("" if cfg.get("epochs") or "zero-shot" in name else " zero-shot")
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


def display_names(records: dict[str, dict]) -> dict[str, str]:
    """Each run's display name; runs that would share one get their run id after a ' · ' to tell them apart."""
    names = {k: display_name(r) for k, r in records.items()}
    seen: dict[str, int] = {}
    for n in names.values():
        seen[n] = seen.get(n, 0) + 1
    return {k: f"{n} · {records[k].get('run_id', k)}" if seen[n] > 1 else n for k, n in names.items()}


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
