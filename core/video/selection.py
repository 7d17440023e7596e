"""Two-stage selection of tracks, as DVIS-DAQ does it: top-K by a first score (before the whole-clip re-scoring),
re-score only those, then top-N by the final score, then a score threshold.

The tracker's first score is a track's mean detection score over the keyframes that found it; its final score is
the temporal classification's (core.video.classification). Ties go to the lower track id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from core.errors import BadInput


@dataclass(frozen=True)
class SelectionConfig:
    top_k: int = 20  # kept by the first score, re-scored
    top_n: int = 10  # kept by the final score
    score_threshold: float = 0.3  # final score at least this

    def __post_init__(self):
        if self.top_k < 1 or self.top_n < 1:
            raise BadInput(f"top-K and top-N must be at least 1 (got {self.top_k}, {self.top_n}).")


@dataclass(frozen=True)
class Selection:
    first: list[int]  # ids after stage 1, best first
    second: list[int]  # ids after stage 2 (top-N of the re-scored), best first
    kept: list[int]  # ids over the threshold, best first
    final_scores: dict[int, float]  # of the stage-1 ids


def top(scores: dict[int, float], n: int) -> list[int]:
    return sorted(scores, key=lambda i: (-scores[i], i))[:n]


def select_tracks(first_scores: dict[int, float], rescore: Callable[[list[int]], dict[int, float]],
                  cfg: SelectionConfig = SelectionConfig()) -> Selection:
    """rescore(ids) -> final score per id; it is called once, on the stage-1 ids only."""
    first = top(first_scores, cfg.top_k)
    final = rescore(first) if first else {}
    second = top({i: final[i] for i in first}, cfg.top_n)
    kept = [i for i in second if final[i] >= cfg.score_threshold]
    return Selection(first, second, kept, final)
