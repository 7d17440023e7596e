"""Keyframe association: which detection continues which track, and which detections start new tracks.

`associate` matches detections to the tracks' current masks. `optimal` (default): cost = (1 - mask IoU) +
`class_cost` when the classes differ, pairs under `min_iou` forbidden, solved jointly by scipy's
linear_sum_assignment. `greedy`: Grounded-SAM-2's "continuous ID" rule: each detection in the detector's order takes
the first track, in ID order, whose IoU is over `greedy_iou` (0.8), class ignored; a track already taken is skipped.
Either way, an unmatched detection starts a track only when its score is at least `new_track_score` and live tracks
cover at most `max_new_overlap` of it (a second detection of a tracked object is not a new object). Track lifetimes
(missed keyframes, ending) are the tracker's: both rules share them, so a comparison isolates the matching.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.errors import BadInput
from core.video.stages import Detection

METHODS = ("optimal", "greedy")


@dataclass(frozen=True)
class AssociationConfig:
    method: str = "optimal"
    min_iou: float = 0.3  # optimal: a pair under this IoU never matches
    class_cost: float = 0.5  # optimal: added to (1 - IoU) when the detection's class differs from the track's
    greedy_iou: float = 0.8  # greedy: first track over this IoU
    new_track_score: float = 0.5  # an unmatched detection starts a track from this score
    max_new_overlap: float = 0.5  # ... and when live tracks cover at most this fraction of it

    def __post_init__(self):
        if self.method not in METHODS:
            raise BadInput(f"Unknown association '{self.method}' (one of {', '.join(METHODS)}).")


@dataclass(frozen=True)
class TrackMask:
    """What association sees of a live track: its mask in this frame (the last one seen when hidden) and class."""

    id: int
    mask: np.ndarray  # (h, w) bool
    cls: int


@dataclass
class Association:
    matches: list[tuple[int, int]] = field(default_factory=list)  # (track id, detection index)
    new: list[int] = field(default_factory=list)  # detection indices that start tracks
    unmatched_tracks: list[int] = field(default_factory=list)  # track ids not re-detected
    ious: dict[tuple[int, int], float] = field(default_factory=dict)  # IoU of each match


def mask_ious(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """(len(a), len(b)) IoU of boolean masks (0 where both are empty)."""
    if not a or not b:
        return np.zeros((len(a), len(b)), np.float64)
    fa = np.stack([m.reshape(-1) for m in a]).astype(np.float32)
    fb = np.stack([m.reshape(-1) for m in b]).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float64)


def _optimal(tracks: list[TrackMask], dets: list[Detection], iou: np.ndarray,
             cfg: AssociationConfig) -> list[tuple[int, int]]:
    if iou.size == 0:
        return []
    differ = np.array([[t.cls != d.cls for d in dets] for t in tracks], np.float64)
    cost = (1.0 - iou) + cfg.class_cost * differ
    allowed = iou >= cfg.min_iou
    big = 1e6
    rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]


def _greedy(tracks: list[TrackMask], dets: list[Detection], iou: np.ndarray,
            cfg: AssociationConfig) -> list[tuple[int, int]]:
    order = sorted(range(len(tracks)), key=lambda i: tracks[i].id)
    taken, pairs = set(), []
    for d in range(len(dets)):
        for r in order:
            if r not in taken and iou[r, d] > cfg.greedy_iou:
                taken.add(r)
                pairs.append((r, d))
                break
    return pairs


def associate(tracks: list[TrackMask], dets: list[Detection], cfg: AssociationConfig = AssociationConfig()
              ) -> Association:
    iou = mask_ious([t.mask for t in tracks], [d.mask for d in dets])
    pairs = (_optimal if cfg.method == "optimal" else _greedy)(tracks, dets, iou, cfg)
    out = Association()
    matched_rows = {r for r, _ in pairs}
    matched_dets = {d for _, d in pairs}
    for r, d in pairs:
        out.matches.append((tracks[r].id, d))
        out.ious[(tracks[r].id, d)] = float(iou[r, d])
    out.unmatched_tracks = [t.id for i, t in enumerate(tracks) if i not in matched_rows]
    if not dets:  # a keyframe where nothing was detected: every live track missed it
        return out
    claimed = np.zeros(dets[0].mask.shape, bool)  # pixels of live tracks and of matched detections
    for t in tracks:
        claimed |= t.mask
    for d in matched_dets:
        claimed |= dets[d].mask
    for d in sorted(set(range(len(dets))) - matched_dets, key=lambda i: -dets[i].score):
        det = dets[d]
        area = int(det.mask.sum())
        if det.score < cfg.new_track_score or area == 0:
            continue
        if (claimed & det.mask).sum() > cfg.max_new_overlap * area:
            continue
        out.new.append(d)
        claimed |= det.mask  # two overlapping new detections do not both start tracks
    return out
