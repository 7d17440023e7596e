"""The stage interfaces the tracker is built from: what a keyframe detector, a propagator and a class-evidence model
take and give. Model-backed stages (MHQR + SAM2 detection, SAM2 video propagation, dense CLIP evidence) and the
stand-ins (core.video.standins) implement these; the tracker only sees these Protocols.

Every mask is at the processing size: (h, w) bool, the size of the frames the tracker is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One object found on a keyframe: its mask, its class (index into the class list) and the detector's confidence."""

    mask: np.ndarray  # (h, w) bool
    cls: int
    score: float


@dataclass(frozen=True)
class Propagated:
    """One tracked object carried to a frame: its mask and the propagator's object score in [0, 1] (how sure it is
    that the object is visible in this frame; SAM2's object-score logit through a sigmoid)."""

    mask: np.ndarray  # (h, w) bool
    score: float


@runtime_checkable
class Detector(Protocol):
    def detect(self, frame_idx: int, frame: np.ndarray) -> list[Detection]:
        """Objects in one frame ((h, w, 3) uint8); frame_idx is the processed frame's index (a real detector may
        ignore it)."""
        ...


@runtime_checkable
class Propagator(Protocol):
    def reset(self, size: tuple[int, int]) -> None:
        """A new clip; size = (h, w) of the processing frames."""
        ...

    def step(self, frame_idx: int, frame: np.ndarray) -> dict[int, Propagated]:
        """Propagate every live object to this frame (called once per frame, in order, frame_idx from 0)."""
        ...

    def add_objects(self, frame_idx: int, frame: np.ndarray, masks: dict[int, np.ndarray]) -> None:
        """Condition new (or re-anchored) object ids on their masks at this frame (called after step on the same
        frame)."""
        ...

    def remove_objects(self, ids: list[int]) -> None:
        ...


@runtime_checkable
class ClassEvidence(Protocol):
    """Per-frame class evidence for the tracks' masks: logits over the classes plus a last 'no object' entry.

    The dense-CLIP version pools the frame's dense features inside each mask and scores them against the class
    text embeddings and a 'no object' embedding; it computes the frame's features once for all masks."""

    num_classes: int  # classes, without 'no object'

    def logits(self, frame_idx: int, frame: np.ndarray, masks: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """track id -> (num_classes + 1,) float logits; the last entry is 'no object'."""
        ...
