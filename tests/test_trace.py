"""The query trace the tab inspects: each query's three SAM masks, the one it kept, the region it ended in."""

import numpy as np

from core.data.synthetic.shape_scenes import draw_shape_scene
from core.openvocab.mhqr.pipeline import MHQRConfig, run_mhqr
from core.openvocab.mhqr.standins import StandInDense, StandInMasks
from core.openvocab.mhqr.trace import ROW_COLUMNS, _pack, _unpack, trace_queries


def _run(seed=3, cfg=MHQRConfig()):
    scene = draw_shape_scene(seed, 96, 128)
    dense = StandInDense(noise=0.25).predict(scene, seed=seed)
    return dense, run_mhqr(dense, StandInMasks(scene, seed=seed), cfg)


def test_bit_packing_round_trips_every_entry():
    a = np.random.default_rng(0).random((7, 3, 5, 9)) > 0.5  # 135 bits an entry: entries straddle bytes
    packed = _pack(a)
    assert all((_unpack(packed, i) == a[i]).all() for i in range(7))


def test_each_query_keeps_its_three_masks_its_choice_and_its_region():
    dense, res = _run()
    names = list(dense.class_names)
    tr = trace_queries(res, names, dense.image_size)
    qs = res.queries.queries
    assert len(tr) == len(qs) > 0 and len(tr.rows) == len(qs) and len(tr.rows[0]) == len(ROW_COLUMNS)
    for i, q in enumerate(qs):
        row = tr.rows[i]
        assert row[0] == i + 1 and row[1] == names[q.cls] and row[2] == q.scale
        three, ious = tr.sam_masks(i)
        j = [k for k in qs if k.scale == q.scale].index(q)
        assert (three == res.point_masks[q.scale].masks[j]).all() and (ious == res.point_masks[q.scale].scores[j]).all()
        assert tr.kept(i) == res.chosen[q.scale][j]
        region, caption = tr.region(i)
        k = [n for n, src in enumerate(res.merged.sources) if q.id in src]
        if k:
            assert (region == res.merged.masks[k[0]]).all() and caption.startswith(f"region {k[0] + 1} (")
            assert row[8].startswith(caption)
            assert ("merged with" in row[8]) == (len(res.merged.sources[k[0]]) > 1)
        else:
            assert region is None and row[8] == "dropped (empty mask)"
    merged_rows = [r for r in tr.rows if "merged with" in r[8]]
    assert merged_rows, "the stand-in scene should merge some queries"


def test_nearest_finds_the_point_within_its_radius_only():
    dense, res = _run()
    tr = trace_queries(res, list(dense.class_names), dense.image_size)
    x, y = tr.points_xy[2]
    i = tr.nearest(x + 0.5, y, radius=1.0)
    assert i is not None and np.hypot(*(tr.points_xy[i] - [x + 0.5, y])) <= 0.5  # 2 itself, or a point on it
    assert tr.nearest(-500, -500, radius=5) is None


def test_masks_off_says_the_query_kept_its_dense_component():
    dense, res = _run(cfg=MHQRConfig(masks=False))
    tr = trace_queries(res, list(dense.class_names), dense.image_size)
    assert tr.sam_masks(0) == (None, None) and tr.kept(0) == -1
    assert all("masks off" in r[8] and r[7] == "-" for r in tr.rows)
    assert all(len(n) == 0 for n in tr.negatives_xy)
