"""Video instance metrics from per-frame instance masks: HOTA, IDF1, MOTA, ID switches (TrackEval's metric classes,
with mask IoU as the similarity, as KITTI-MOTS and MOTS-Challenge score), track-class accuracy, and video AP.

A clip is given as one dict per frame, object id -> mask (bool (h, w) array, or COCO RLE), for the ground truth and
for the prediction. TrackEval's CLEAR and Identity match at IoU >= 0.5; HOTA averages over its 19 thresholds
0.05..0.95. Clips are combined as TrackEval combines sequences (counts summed). Class accuracy: per clip, ground-truth
objects and predicted tracks are paired one to one maximising the frames where their IoU is >= 0.5 (scipy's
linear_sum_assignment); it is the share of paired ground-truth objects whose track has their class.
Video AP: every clip's frames stacked into one tall image, so a mask IoU there is the spatio-temporal IoU of
YouTube-VIS (sum of intersections over sum of unions); then pycocotools' COCOeval (segm): AP, AP50, AP75.
TrackEval is imported when a clip is scored (requirements-dev.txt installs it).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment


def _rle(m) -> dict:
    if isinstance(m, dict):
        counts = m["counts"]
        return {"size": list(m["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.encode(np.asfortranarray(np.asarray(m, np.uint8)))


def frame_ious(gt: list, pred: list) -> np.ndarray:
    """(len(gt), len(pred)) mask IoU (masks or RLEs)."""
    if not gt or not pred:
        return np.zeros((len(gt), len(pred)))
    return np.asarray(mask_utils.iou([_rle(p) for p in pred], [_rle(g) for g in gt], [0] * len(gt)),
                      np.float64).reshape(len(pred), len(gt)).T


def tracking_data(gt_frames: list[dict], pred_frames: list[dict]) -> tuple[dict, list, list, list[np.ndarray]]:
    """TrackEval's per-sequence input (ids relabelled 0..n-1, mask IoU as similarity), the id lists, the IoUs."""
    if len(gt_frames) != len(pred_frames):
        raise ValueError(f"{len(gt_frames)} ground-truth frames but {len(pred_frames)} predicted frames")
    gt_ids = sorted({k for f in gt_frames for k in f})
    pr_ids = sorted({k for f in pred_frames for k in f})
    g_ix, p_ix = {k: i for i, k in enumerate(gt_ids)}, {k: i for i, k in enumerate(pr_ids)}
    data = {"num_timesteps": len(gt_frames), "num_gt_ids": len(gt_ids), "num_tracker_ids": len(pr_ids),
            "num_gt_dets": sum(len(f) for f in gt_frames), "num_tracker_dets": sum(len(f) for f in pred_frames),
            "gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for g, p in zip(gt_frames, pred_frames):
        gk, pk = sorted(g), sorted(p)
        data["gt_ids"].append(np.array([g_ix[k] for k in gk], int))
        data["tracker_ids"].append(np.array([p_ix[k] for k in pk], int))
        data["similarity_scores"].append(frame_ious([g[k] for k in gk], [p[k] for k in pk]))
    return data, gt_ids, pr_ids, data["similarity_scores"]


def pair_objects(data: dict, threshold: float = 0.5) -> dict[int, int]:
    """Relabelled gt id -> relabelled track id, one to one, maximising frames with IoU >= threshold."""
    counts = np.zeros((data["num_gt_ids"], data["num_tracker_ids"]))
    for g, p, s in zip(data["gt_ids"], data["tracker_ids"], data["similarity_scores"]):
        gi, pi = np.nonzero(s >= threshold)
        np.add.at(counts, (g[gi], p[pi]), 1)
    if counts.size == 0:
        return {}
    rows, cols = linear_sum_assignment(-counts)
    return {int(r): int(c) for r, c in zip(rows, cols) if counts[r, c] > 0}


class VideoScores:
    """Accumulates clips; `summary()` gives the combined metrics."""

    def __init__(self):
        try:
            from trackeval.metrics import CLEAR, HOTA, Identity
        except ImportError as exc:
            raise ImportError("scoring video needs TrackEval: pip install trackeval==1.3.0 "
                              "(requirements-dev.txt)") from exc

        quiet = {"PRINT_CONFIG": False}
        self.metrics = {"HOTA": HOTA(), "CLEAR": CLEAR(quiet), "Identity": Identity(quiet)}
        self.per_clip: dict[str, dict] = {}
        self.classes_right, self.classes_paired, self.gt_objects = 0, 0, 0

    def add(self, name: str, gt_frames: list[dict], pred_frames: list[dict], gt_classes: dict | None = None,
            pred_classes: dict | None = None) -> dict:
        data, gt_ids, pr_ids, _ = tracking_data(gt_frames, pred_frames)
        res = {k: m.eval_sequence(data) for k, m in self.metrics.items()}
        self.per_clip[name] = res
        self.gt_objects += len(gt_ids)
        if gt_classes is not None and pred_classes is not None:
            for g, p in pair_objects(data).items():
                self.classes_paired += 1
                self.classes_right += int(gt_classes[gt_ids[g]] == pred_classes[pr_ids[p]])
        return summarise(res)

    def summary(self) -> dict:
        if not self.per_clip:
            return {}
        combined = {k: m.combine_sequences({c: r[k] for c, r in self.per_clip.items()})
                    for k, m in self.metrics.items()}
        out = summarise(combined)
        out["class_accuracy"] = self.classes_right / self.classes_paired if self.classes_paired else None
        out["class_paired"] = self.classes_paired / self.gt_objects if self.gt_objects else None
        out["clips"] = len(self.per_clip)
        return out


def summarise(res: dict) -> dict:
    h, c, i = res["HOTA"], res["CLEAR"], res["Identity"]
    return {"hota": float(np.mean(h["HOTA"])), "deta": float(np.mean(h["DetA"])), "assa": float(np.mean(h["AssA"])),
            "idf1": float(i["IDF1"]), "mota": float(c["MOTA"]), "motp": float(c["MOTP"]),
            "id_switches": int(c["IDSW"]), "false_positives": int(c["CLR_FP"]), "misses": int(c["CLR_FN"])}


def stack_frames(frames: dict[int, object], n_frames: int, size: tuple[int, int]) -> dict:
    """One object's masks (frame -> mask or RLE) as the RLE of the (n_frames × h, w) tall image."""
    h, w = size
    tall = np.zeros((n_frames * h, w), np.uint8)
    for t, m in frames.items():
        tall[t * h:(t + 1) * h] = mask_utils.decode(_rle(m)) if isinstance(m, dict) else np.asarray(m, np.uint8)
    return mask_utils.encode(np.asfortranarray(tall))


def video_ap(clips: list[tuple[list[tuple[int, dict]], list[tuple[int, float, dict]]]]) -> dict:
    """clips: per clip (ground truth [(class, tall RLE)], predictions [(class, score, tall RLE)]) from stack_frames.
    -> {"ap", "ap50", "ap75"} from COCOeval (segm, all areas, up to 100 predictions per clip)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets, cats = [], [], [], set()
    for i, (gts, preds) in enumerate(clips):
        size = (gts[0][1] if gts else preds[0][2] if preds else {"size": [1, 1]})["size"]
        images.append({"id": i, "height": int(size[0]), "width": int(size[1])})
        for cls, rle in gts:
            cats.add(cls)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(cls) + 1, "segmentation": rle,
                         "area": float(mask_utils.area(rle)), "bbox": mask_utils.toBbox(rle).tolist(), "iscrowd": 0})
        for cls, score, rle in preds:
            dets.append({"image_id": i, "category_id": int(cls) + 1, "segmentation": rle, "score": float(score)})
    if not anns:
        return {"ap": None, "ap50": None, "ap75": None}
    cats |= {d["category_id"] - 1 for d in dets}
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c + 1} for c in sorted(cats)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        if not dets:
            return {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}
        ev = COCOeval(gt, gt.loadRes(dets), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"ap": float(ev.stats[0]), "ap50": float(ev.stats[1]), "ap75": float(ev.stats[2])}
