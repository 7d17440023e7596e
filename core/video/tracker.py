"""The tracking loop over streamed frames: keyframe detection, propagation, association, class evidence, then the
whole-clip classification and the two-stage selection. Output: `Track`s (id, class, score, first and last frame,
per-frame COCO RLE masks and weights) and a JSON writer.

Per frame t: the propagator carries every live track to t (a mask is kept where its object score is at least
`min_object_score`); on keyframes (t = 0, keyframe_every, ...) the detector runs and association decides: a matched
track keeps its id (and is re-conditioned on the detection's mask when their IoU is under `reanchor_iou`, or when the
propagator had lost it), an unmatched confident detection starts a track with a new id (ids are never reused), an
unmatched track counts a missed keyframe and ends after `max_missed` in a row (until then it lives on where the
propagator still sees it); then the class evidence is read for every mask of the frame when the evidence is due:
on frames t with t % every == 0, `every` being the evidence stage's own `every` attribute (1 when it has none: every
frame), and on any frame where a track has no evidence yet (so every track is scored from its first frame; a new
track is born on a keyframe). A frame without evidence records no logits for the track (None; its class
probabilities are null in the JSON) and weighs 0 in the temporal classification; an evidence stage may also leave a
mask out of its answer, with the same effect. Memory: the frame being processed, one dense mask per live track, and
per track and frame an RLE mask, a score and C + 1 logits; no past frame or past dense mask is kept.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from pycocotools import mask as mask_utils

from core.errors import BadInput
from core.results.records import write_json_atomic
from core.video.association import AssociationConfig, TrackMask, associate
from core.video.classification import ClassificationConfig, classify, softmax
from core.video.selection import SelectionConfig, select_tracks
from core.video.stages import ClassEvidence, Detection, Detector, Propagator

STAGE_NAMES = ("decode", "detection", "propagation", "association", "evidence", "classification")


@dataclass(frozen=True)
class TrackerConfig:
    keyframe_every: int = 10  # detection on frames 0, N, 2N, ...
    min_object_score: float = 0.5  # a propagated mask counts (the object is seen) from this object score
    max_missed: int = 3  # a track ends after this many keyframes in a row without re-detection
    reanchor_iou: float = 0.85  # a matched track takes the detection's mask when their IoU is under this
    association: AssociationConfig = field(default_factory=AssociationConfig)
    classification: ClassificationConfig = field(default_factory=ClassificationConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)

    def __post_init__(self):
        if self.keyframe_every < 1:
            raise BadInput(f"The keyframe interval must be at least 1 frame (got {self.keyframe_every}).")
        if self.max_missed < 1:
            raise BadInput(f"max_missed must be at least 1 keyframe (got {self.max_missed}).")


def encode_mask(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: dict) -> np.ndarray:
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)


@dataclass
class Track:
    id: int
    cls: int  # class index, -1 when none
    class_name: str | None
    score: float  # the final (temporal) score
    first_score: float  # mean detection score, the stage-1 ranking
    first_frame: int
    last_frame: int
    frames: list[int]  # processed frame indices with a mask
    masks: list[dict]  # COCO RLE per frame of `frames`
    mask_scores: list[float]  # the mask confidence per frame (object score, or detection score when detected)
    weights: list[float]  # the classification's weight per frame (0 where the frame had no evidence)
    class_probs: list[list[float] | None]  # per frame, softmax of its evidence (C classes, 'no object'); None: none
    detections: int  # keyframes whose detections matched (or started) it

    def mask(self, frame: int) -> np.ndarray | None:
        return decode_mask(self.masks[self.frames.index(frame)]) if frame in self.frames else None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrackingResult:
    tracks: list[Track]  # selected, best first
    size: tuple[int, int]  # (h, w) of the processing frames (and of every mask)
    n_frames: int
    class_names: list[str]
    frames: list[dict]  # per processed frame: index, source_index, time
    candidates: int  # tracks before selection
    messages: list[str]
    seconds: dict[str, float]
    config: dict

    def to_dict(self) -> dict:
        return {"size": list(self.size), "n_frames": self.n_frames, "classes": self.class_names,
                "frames": self.frames, "candidates": self.candidates, "messages": self.messages,
                "seconds": self.seconds, "config": self.config, "tracks": [t.to_dict() for t in self.tracks]}


class _State:
    """A track while the clip runs: its dense mask of the current frame only; the past as RLE and numbers."""

    def __init__(self, tid: int, born: int):
        self.id, self.born, self.missed = tid, born, 0
        self.votes: dict[int, float] = {}
        self.det_scores: list[float] = []
        self.last_mask: np.ndarray | None = None
        self.frames: list[int] = []
        self.rles: list[dict] = []
        self.confs: list[float] = []
        self.logits: list[np.ndarray | None] = []  # None: no evidence on that frame
        self.has_evidence = False

    @property
    def cls(self) -> int:
        return max(self.votes, key=lambda c: (self.votes[c], -c)) if self.votes else -1

    def detected(self, det: Detection) -> None:
        self.votes[det.cls] = self.votes.get(det.cls, 0.0) + det.score
        self.det_scores.append(float(det.score))

    def record(self, t: int, mask: np.ndarray, conf: float, logits: np.ndarray | None) -> None:
        self.frames.append(t)
        self.rles.append(encode_mask(mask))
        self.confs.append(float(conf))
        self.logits.append(None if logits is None else np.asarray(logits, np.float32))
        self.has_evidence |= logits is not None

    def logit_rows(self, width: int) -> np.ndarray:
        """(T, width) float64, a row of NaN where a frame has no evidence (core.video.classification skips it)."""
        return np.stack([np.full(width, np.nan) if z is None else z.astype(np.float64) for z in self.logits])


def _timed(seconds: dict, name: str, fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    seconds[name] += time.perf_counter() - t0
    return out


def track_clip(frames: Iterable, detector: Detector, propagator: Propagator, evidence: ClassEvidence,
               class_names: list[str], cfg: TrackerConfig = TrackerConfig(),
               progress: Callable[[int], None] | None = None) -> TrackingResult:
    """frames: core.video.frames.Frame objects (or (h, w, 3) uint8 arrays), consumed one at a time."""
    if evidence.num_classes != len(class_names):
        raise BadInput(f"{len(class_names)} class names but the class evidence scores {evidence.num_classes}.")
    seconds = {s: 0.0 for s in STAGE_NAMES}
    every = int(getattr(evidence, "every", 1))
    if every < 1:
        raise BadInput(f"The class evidence interval must be at least 1 frame (got {every}).")
    live: dict[int, _State] = {}
    done: dict[int, _State] = {}
    table, size, next_id, n, found = [], None, 1, 0, 0
    it = iter(frames)
    while True:
        f = _timed(seconds, "decode", next, it, None)
        if f is None:
            break
        image = getattr(f, "image", f)
        t = n
        if size is None:
            size = tuple(image.shape[:2])
            propagator.reset(size)
        elif tuple(image.shape[:2]) != size:
            raise BadInput(f"Frame {t} is {image.shape[:2]}, the clip's frames are {size}.")
        table.append({"index": t, "source_index": getattr(f, "source_index", t), "time": getattr(f, "time", None)})
        props = _timed(seconds, "propagation", propagator.step, t, image)
        current: dict[int, tuple[np.ndarray, float]] = {}
        for tid, st in live.items():
            p = props.get(tid)
            if p is not None and p.score >= cfg.min_object_score and p.mask.any():
                current[tid] = (p.mask, float(p.score))
                st.last_mask = p.mask
        if t % cfg.keyframe_every == 0:
            dets = _timed(seconds, "detection", detector.detect, t, image)
            found += len(dets)
            t0 = time.perf_counter()
            views = [TrackMask(tid, current[tid][0] if tid in current else st.last_mask, st.cls)
                     for tid, st in live.items()]
            a = associate(views, dets, cfg.association)
            anchor: dict[int, np.ndarray] = {}
            for tid, d in a.matches:
                live[tid].missed = 0
                live[tid].detected(dets[d])
                if tid not in current or a.ious[(tid, d)] < cfg.reanchor_iou:
                    anchor[tid] = dets[d].mask
                    current[tid] = (dets[d].mask, float(dets[d].score))
                    live[tid].last_mask = dets[d].mask
            ended = []
            for tid in a.unmatched_tracks:
                live[tid].missed += 1
                if live[tid].missed >= cfg.max_missed:
                    ended.append(tid)
            for d in a.new:
                st = _State(next_id, t)
                st.detected(dets[d])
                st.last_mask = dets[d].mask
                live[next_id] = st
                anchor[next_id] = dets[d].mask
                current[next_id] = (dets[d].mask, float(dets[d].score))
                next_id += 1
            for tid in ended:
                done[tid] = live.pop(tid)
                done[tid].last_mask = None
                current.pop(tid, None)
            seconds["association"] += time.perf_counter() - t0
            if ended:
                _timed(seconds, "propagation", propagator.remove_objects, ended)
            if anchor:
                _timed(seconds, "propagation", propagator.add_objects, t, image, anchor)
        if current:
            due = t % every == 0 or any(not live[k].has_evidence for k in current)
            logits = _timed(seconds, "evidence", evidence.logits, t, image,
                            {k: m for k, (m, _) in current.items()}) if due else {}
            for tid, (m, conf) in current.items():
                live[tid].record(t, m, conf, logits.get(tid))
        n += 1
        if progress is not None:
            progress(n)
    if size is None:
        raise BadInput("The clip gave no frame to track.")
    done.update(live)
    return _finish(done, size, n, list(class_names), table, seconds, cfg, found)


def _finish(states: dict[int, _State], size, n, class_names, table, seconds, cfg: TrackerConfig,
            found: int = 0) -> TrackingResult:
    t0 = time.perf_counter()
    states = {k: s for k, s in states.items() if s.frames}
    width = len(class_names) + 1
    first = {k: float(np.mean(s.det_scores)) for k, s in states.items()}
    decided = {}

    def rescore(ids):
        for k in ids:
            decided[k] = classify(states[k].logit_rows(width), np.asarray(states[k].confs), cfg.classification)
        return {k: decided[k].score for k in ids}

    sel = select_tracks(first, rescore, cfg.selection)
    tracks = []
    for k in sel.kept:
        s, c = states[k], decided[k]
        tracks.append(Track(k, c.cls, class_names[c.cls] if c.cls >= 0 else None, c.score, first[k], s.frames[0],
                            s.frames[-1], s.frames, s.rles, s.confs, [float(w) for w in c.weights],
                            [None if z is None else softmax(z.astype(np.float64)).round(4).tolist() for z in s.logits],
                            len(s.det_scores)))
    seconds["classification"] += time.perf_counter() - t0
    messages = []
    if not tracks:
        if states:
            why = f"{len(states)} candidate tracks, none scored {cfg.selection.score_threshold} or more."
        elif found:
            why = (f"the detector's {found} detections all scored under {cfg.association.new_track_score}, too low "
                   "to start a track.")
        else:
            why = "the detector found nothing on any keyframe."
        messages.append(f"No object of the given classes ({', '.join(class_names)}) was found in the clip: {why}")
    return TrackingResult(tracks, size, n, class_names, table, len(states), messages,
                          {k: round(v, 4) for k, v in seconds.items()}, asdict(cfg))


def write_tracks_json(result: TrackingResult, path: Path, extra: dict | None = None) -> Path:
    """The result as JSON (masks as COCO RLE), written atomically."""
    return write_json_atomic({**(extra or {}), **result.to_dict()}, path)


def read_tracks_json(path: Path) -> tuple[dict, list[Track]]:
    """(everything but the tracks, the tracks) from a file write_tracks_json wrote."""
    data = json.loads(Path(path).read_text())
    tracks = [Track(**t) for t in data.pop("tracks")]
    return data, tracks
