"""The tracker scored against per-frame instance masks: HOTA, IDF1, MOTA, ID switches, class accuracy, video AP.

`evaluate_clip` runs one clip (frames streamed) with the stages `make_stages(truth, class_names, stride)` builds and
adds it to a VideoScores; `evaluate_folder` does it for every clip of an evaluation folder (core.video.dataset).
The ground truth is read at the processed frames only (source frame = index × stride), resized to the processing
size (nearest) when they differ. `standin_stages` builds the stand-ins (core.video.standins) from the truth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from core.metrics.video import VideoScores, stack_frames, video_ap
from core.video.dataset import FolderTruth, list_clips
from core.video.frames import FrameConfig, open_video
from core.video.standins import StandInDetector, StandInEvidence, StandInPropagator
from core.video.tracker import TrackerConfig, TrackingResult, track_clip


@dataclass(frozen=True)
class StandInConfig:
    miss_rate: float = 0.1
    false_positives: float = 0.3  # per keyframe, Poisson mean
    class_noise: float = 0.1
    boundary_noise: float = 1.0  # pixels
    drift: float = 0.3  # pixels per frame per axis, a random walk
    evidence_signal: float = 3.0
    evidence_noise: float = 1.0
    confusion: float = 0.15


def standin_stages(truth, num_classes: int, stride: int = 1, seed: int = 0, cfg: StandInConfig = StandInConfig()):
    return (StandInDetector(truth, num_classes, cfg.miss_rate, cfg.false_positives, cfg.class_noise,
                            cfg.boundary_noise, stride=stride, seed=seed),
            StandInPropagator(truth, cfg.drift, stride=stride, seed=seed),
            StandInEvidence(truth, num_classes, cfg.evidence_signal, cfg.evidence_noise, cfg.confusion,
                            stride=stride, seed=seed))


def _truth_at(truth, source_index: int, size: tuple[int, int]) -> np.ndarray:
    inst = np.asarray(truth.instances(source_index))
    if inst.shape != tuple(size):
        inst = np.asarray(Image.fromarray(inst.astype(np.int32)).resize((size[1], size[0]), Image.NEAREST))
    return inst


def score_result(scores: VideoScores, name: str, truth, result: TrackingResult, ap_clips: list | None = None) -> dict:
    """Adds one tracked clip to `scores` (and its stacked masks to `ap_clips`); returns the clip's own metrics."""
    gt_frames, pred_frames = [], [{} for _ in result.frames]
    gt_objects: dict[int, dict[int, np.ndarray]] = {}
    for row in result.frames:
        inst = _truth_at(truth, row["source_index"], result.size)
        masks = {int(i): inst == i for i in np.unique(inst) if i}
        gt_frames.append(masks)
        if ap_clips is not None:
            for i, m in masks.items():
                gt_objects.setdefault(i, {})[row["index"]] = m
    for tr in result.tracks:
        for t, rle in zip(tr.frames, tr.masks):
            pred_frames[t][tr.id] = rle
    classes = truth.object_classes()
    clip = scores.add(name, gt_frames, pred_frames, classes, {tr.id: tr.cls for tr in result.tracks})
    if ap_clips is not None:
        n, size = len(result.frames), result.size
        ap_clips.append(([(classes[i], stack_frames(f, n, size)) for i, f in gt_objects.items()],
                         [(tr.cls, tr.score, stack_frames(dict(zip(tr.frames, tr.masks)), n, size))
                          for tr in result.tracks]))
    return clip


def evaluate_clip(name: str, truth, frames: Iterable, make_stages: Callable, class_names: list[str],
                  tracker_cfg: TrackerConfig, scores: VideoScores, ap_clips: list | None = None,
                  stride: int = 1) -> tuple[TrackingResult, dict]:
    detector, propagator, evidence = make_stages(truth, class_names, stride)
    result = track_clip(frames, detector, propagator, evidence, class_names, tracker_cfg)
    return result, score_result(scores, name, truth, result, ap_clips)


def evaluate_folder(root: Path, make_stages: Callable, frame_cfg: FrameConfig = FrameConfig(size=None),
                    tracker_cfg: TrackerConfig = TrackerConfig(), limit: int | None = None, with_ap: bool = True,
                    progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Every clip of the folder (the first `limit`): {"overall", "per_clip", "n_clips", "seconds", "messages"}."""
    class_names, entries = list_clips(Path(root))
    entries = entries[:limit] if limit else entries
    scores, ap_clips = VideoScores(), ([] if with_ap else None)
    per_clip, seconds, messages = {}, {}, []
    for k, entry in enumerate(entries):
        if progress is not None:
            progress(entry.name, k, len(entries))
        truth = FolderTruth(entry)
        video = open_video(entry.video, frame_cfg)
        result, clip = evaluate_clip(entry.name, truth, video.frames(), make_stages, class_names, tracker_cfg,
                                     scores, ap_clips, frame_cfg.stride)
        clip.update(frames=result.n_frames, tracks=len(result.tracks), candidates=result.candidates)
        per_clip[entry.name] = clip
        messages += [f"{entry.name}: {m}" for m in video.messages + result.messages]
        for s, v in result.seconds.items():
            seconds[s] = seconds.get(s, 0.0) + v
    overall = scores.summary()
    if ap_clips is not None:
        overall.update(video_ap(ap_clips))
    return {"overall": overall, "per_clip": per_clip, "n_clips": len(entries), "classes": class_names,
            "seconds": seconds, "messages": messages, "tracker": asdict(tracker_cfg)}
