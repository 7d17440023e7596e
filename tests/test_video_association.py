"""core.video.association on hand-made masks: optimal against greedy, the class cost, and who starts a track."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import BadInput
from core.video.association import AssociationConfig, TrackMask, associate, mask_ious
from core.video.stages import Detection


def box(y0, x0, y1, x1, size=(40, 40)):
    m = np.zeros(size, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_mask_ious_by_hand():
    a, b = box(0, 0, 10, 10), box(0, 5, 10, 15)  # 50 shared of 150
    assert mask_ious([a], [b, a, box(20, 20, 30, 30)])[0] == pytest.approx([50 / 150, 1.0, 0.0])
    assert mask_ious([], [a]).shape == (0, 1)


def test_optimal_finds_the_joint_best_where_greedy_takes_the_first():
    # track 1 overlaps both detections; track 2 only the first. Greedy (first IoU > threshold, ids in order) gives
    # detection 0 to track 1 and leaves track 2 unmatched; the optimal assignment pairs 1-1 and 2-0.
    t1, t2 = box(0, 0, 20, 20), box(0, 4, 20, 24)
    d0, d1 = box(0, 3, 20, 23), box(0, 0, 20, 19)
    tracks = [TrackMask(1, t1, 0), TrackMask(2, t2, 0)]
    dets = [Detection(d0, 0, 0.9), Detection(d1, 0, 0.9)]
    greedy = associate(tracks, dets, AssociationConfig(method="greedy", greedy_iou=0.7))
    assert greedy.matches == [(1, 0)] and greedy.unmatched_tracks == [2]
    optimal = associate(tracks, dets)
    assert sorted(optimal.matches) == [(1, 1), (2, 0)] and optimal.unmatched_tracks == []
    assert optimal.new == []  # the detections are both taken


def test_class_agreement_decides_between_equal_overlaps():
    t1, t2 = box(0, 0, 20, 20), box(0, 0, 20, 20)  # two tracks on the same pixels, different classes
    d = [Detection(box(0, 0, 20, 20), 1, 0.9)]
    a = associate([TrackMask(1, t1, 0), TrackMask(2, t2, 1)], d)
    assert a.matches == [(2, 0)]
    # greedy ignores the class: the first track in id order wins
    g = associate([TrackMask(1, t1, 0), TrackMask(2, t2, 1)], d, AssociationConfig(method="greedy"))
    assert g.matches == [(1, 0)]


def test_class_is_a_cost_not_a_veto():
    a = associate([TrackMask(1, box(0, 0, 20, 20), 0)], [Detection(box(0, 0, 20, 18), 3, 0.9)])
    assert a.matches == [(1, 0)]


def test_min_iou_and_new_tracks():
    track = TrackMask(1, box(0, 0, 20, 20), 0)
    far = Detection(box(25, 25, 35, 35), 0, 0.9)
    weak = Detection(box(0, 25, 10, 35), 0, 0.3)  # under new_track_score
    slight = Detection(box(0, 14, 20, 34), 0, 0.9)  # IoU 120/680 with the track: under min_iou
    a = associate([track], [far, weak, slight], AssociationConfig(min_iou=0.3, new_track_score=0.5))
    assert a.matches == [] and a.unmatched_tracks == [1]
    assert sorted(a.new) == [0, 2]  # slight: the track covers 120/400 of it, not more than half


def test_a_second_detection_of_a_tracked_object_starts_no_track():
    track = TrackMask(1, box(0, 0, 20, 20), 0)
    dets = [Detection(box(0, 0, 20, 20), 0, 0.9), Detection(box(2, 2, 18, 18), 0, 0.8)]
    a = associate([track], dets)
    assert a.matches == [(1, 0)] and a.new == []
    # two overlapping new detections: the better one starts a track, not both
    a = associate([], [Detection(box(0, 0, 10, 10), 0, 0.6), Detection(box(0, 0, 10, 11), 0, 0.9)])
    assert a.new == [1]


@pytest.mark.parametrize("method", ["optimal", "greedy"])
def test_a_keyframe_without_detections_leaves_every_track_unmatched(method):
    tracks = [TrackMask(1, box(0, 0, 20, 20), 0), TrackMask(4, box(25, 25, 35, 35), 1)]
    a = associate(tracks, [], AssociationConfig(method=method))
    assert a.matches == [] and a.new == [] and a.unmatched_tracks == [1, 4]
    assert associate([], [], AssociationConfig(method=method)).unmatched_tracks == []


def test_unknown_method():
    with pytest.raises(BadInput):
        AssociationConfig(method="hungarian-ish")
