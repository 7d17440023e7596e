"""MHQR (issue 11) on drawn scenes with exact ground truth, through the stand-in dense predictor and mask generator."""

from dataclasses import replace

import numpy as np
import pytest

from core.data.synthetic.shape_scenes import CLASSES, draw_shape_scene
from core.metrics.semantic import confusion, iou_from_confusion
from core.openvocab.mhqr.dense import DenseInput, grid_rc, image_xy
from core.openvocab.mhqr.grid_vote import GridVoteConfig, grid_vote
from core.openvocab.mhqr.masks import MaskSet, PointMasks, choose_granularity, order_by_area
from core.openvocab.mhqr.merge import MergeConfig, SemanticMerger
from core.openvocab.mhqr.pipeline import MHQRConfig, run_mhqr
from core.openvocab.mhqr.queries import QueryConfig, QueryGenerator
from core.openvocab.mhqr.refine import HierarchicalRefiner, RefineConfig
from core.openvocab.mhqr.semantic_map import paint_semantic_map
from core.openvocab.mhqr.standins import StandInDense, StandInMasks, class_embeddings

H, W = 96, 128


def scene_and_dense(seed, noise=0.15, **kw):
    scene = draw_shape_scene(seed, H, W)
    return scene, StandInDense(noise=noise, **kw).predict(scene, seed=seed)


def probs_from_labels(labels, n, conf=0.9):
    p = np.full((n, *labels.shape), (1 - conf) / max(n - 1, 1), np.float32)
    np.put_along_axis(p, labels[None].astype(np.int64), conf, 0)
    return p


def dense_input(probs, image=None, features=None, text=None):
    image = np.zeros((*probs.shape[1:], 3), np.uint8) if image is None else image
    return DenseInput(image, probs, features, text, [f"c{i}" for i in range(probs.shape[0])])


class Spy:
    """A MaskGenerator that records its calls and answers with fixed masks (or refuses to be called)."""

    def __init__(self, mask=None, refuse=False):
        self.mask, self.refuse, self.calls = mask, refuse, []

    def set_image(self, image):
        assert not self.refuse, "the mask generator must not be used"

    def point_masks(self, points_xy, size, negatives_xy=None):
        assert not self.refuse
        self.calls.append((np.asarray(points_xy), negatives_xy))
        m = np.zeros((len(points_xy), 3, *size), bool) if self.mask is None else \
            np.repeat(self.mask[None, None], len(points_xy), 0).repeat(3, 1)
        return PointMasks(m, np.full((len(points_xy), 3), 0.9, np.float32))


def miou(gt, pred, n=len(CLASSES)):
    return float(np.nanmean(iou_from_confusion(confusion(gt, pred, n))))


def test_order_by_area_sorts_each_querys_masks_largest_first_with_their_scores():
    m = np.zeros((2, 3, 6, 6), bool)
    m[0, 0, :1], m[0, 1, :4], m[0, 2, :2] = True, True, True
    m[1, 0, :2], m[1, 1, :1], m[1, 2, :5] = True, True, True
    pm = order_by_area(m, np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]))
    assert pm.masks.reshape(2, 3, -1).sum(-1).tolist() == [[24, 12, 6], [30, 12, 6]]
    np.testing.assert_allclose(pm.scores, [[0.2, 0.3, 0.1], [0.6, 0.4, 0.5]])


@pytest.mark.parametrize("point", ["confident", "medoid"])
@pytest.mark.parametrize("seed", [0, 3, 7])
def test_query_points_lie_inside_their_component(seed, point):
    _, dense = scene_and_dense(seed, noise=0.35)
    qs = QueryGenerator(QueryConfig(point=point)).generate(dense.probs, dense.image_size)
    assert qs.queries
    for q in qs.queries:
        comp = qs.components[q.scale]
        r, c = grid_rc(np.array([[q.x, q.y]]), comp.shape, dense.image_size)
        assert comp[r[0], c[0]] == q.component, (q, point)


def test_coordinates_survive_the_scale_round_trip():
    rows, cols = np.meshgrid(np.arange(24), np.arange(32), indexing="ij")
    xy = image_xy(rows.ravel(), cols.ravel(), (24, 32), (H, W))
    r, c = grid_rc(xy, (24, 32), (H, W))
    assert (r == rows.ravel()).all() and (c == cols.ravel()).all()
    labels = np.zeros((H, W), np.int64)
    labels[20:70, 30:61] = 1  # an object well inside the image, and a thin one that scale 0.25 cannot see
    labels[10:90, 100:102] = 2
    qs = QueryGenerator(QueryConfig(min_queries=1, dedupe_scales=False)).generate(probs_from_labels(labels, 3),
                                                                                  (H, W))
    coarse = [q for q in qs.queries if q.scale == 0.25]
    assert {q.cls for q in coarse} == {0, 1}
    for q in qs.queries:  # a query at any scale lands on its object at full size
        assert labels[int(round(q.y)), int(round(q.x))] == q.cls, q
    assert any(q.cls == 2 and q.scale == 1.0 for q in qs.queries)


def test_query_count_stays_within_its_bounds_on_empty_and_crowded_maps():
    cfg = QueryConfig(min_queries=10, max_queries=40)
    gen = QueryGenerator(cfg)
    empty = probs_from_labels(np.zeros((H, W), np.int64), 5)
    qs = gen.generate(empty, (H, W))
    assert 10 <= len(qs.queries) <= 40 and {q.cls for q in qs.queries} == {0}
    assert len({(round(q.x), round(q.y)) for q in qs.queries}) == len(qs.queries)  # spread, not stacked
    rng = np.random.default_rng(0)
    crowded = np.zeros((H, W), np.int64)
    for i in range(300):  # 300 blobs of 171 classes
        y, x = rng.integers(0, H - 4), rng.integers(0, W - 4)
        crowded[y:y + 4, x:x + 4] = rng.integers(1, 171)
    qs = gen.generate(probs_from_labels(crowded, 171), (H, W))
    assert 10 <= len(qs.queries) <= 40
    default = QueryGenerator().generate(probs_from_labels(crowded, 171), (H, W))
    assert len(default.queries) == 200
    assert len({q.id for q in default.queries}) == 200


def test_no_class_above_threshold_falls_back_to_the_dense_map_with_a_message():
    probs = np.full((4, H, W), 0.25, np.float32)  # nothing above chance
    dense = dense_input(probs)
    res = run_mhqr(dense, Spy(refuse=True))
    assert res.queries.queries == [] and res.prompts == 0
    assert (res.labels == dense.labels).all()
    assert any("threshold" in m for m in res.messages)


def test_one_class_and_171_classes_work():
    res = run_mhqr(dense_input(np.ones((1, H, W), np.float32)), Spy(np.ones((H, W), bool)))
    assert (res.labels == 0).all() and res.queries.queries
    scene = draw_shape_scene(2, H, W)
    names = list(CLASSES) + [f"thing {i}" for i in range(171 - len(CLASSES))]
    scene = replace(scene, class_names=names, _regions={})
    dense = StandInDense(noise=0.15).predict(scene, seed=2)
    assert dense.probs.shape == (171, H, W) and dense.text.shape[0] == 171
    res = run_mhqr(dense, StandInMasks(scene, seed=2))
    assert res.labels.shape == (H, W) and res.labels.max() < 171
    assert miou(scene.label, res.labels, 171) > miou(scene.label, dense.labels, 171)


def test_mhqr_beats_the_dense_stand_in_on_synthetic_scenes():
    cm_dense = cm_mhqr = 0
    for seed in range(4):
        scene, dense = scene_and_dense(seed, noise=0.25)
        res = run_mhqr(dense, StandInMasks(scene, seed=seed))
        cm_dense = cm_dense + confusion(scene.label, dense.labels, len(CLASSES))
        cm_mhqr = cm_mhqr + confusion(scene.label, res.labels, len(CLASSES))
    dense_miou, mhqr_miou = (float(np.nanmean(iou_from_confusion(c))) for c in (cm_dense, cm_mhqr))
    assert mhqr_miou > dense_miou + 0.03, (dense_miou, mhqr_miou)


def test_grid_vote_keeps_the_dense_label_where_no_mask_covers():
    labels = np.zeros((H, W), np.int64)
    labels[:, W // 2:] = 1
    probs = probs_from_labels(labels, 3)
    probs[2, :, :10], probs[0, :, :10] = 0.95, 0.0  # the dense map says class 2 on a strip at the left
    dense = dense_input(probs)
    left = np.zeros((H, W), bool)
    left[:, :40] = True  # every point's masks cover the left part only
    res = grid_vote(dense, Spy(left), GridVoteConfig(grid=4))
    assert res.prompts == 16 and res.masks == 1
    assert (res.labels[:, 40:] == dense.labels[:, 40:]).all() and not res.covered[:, 40:].any()
    assert (res.labels[:, :40] == 0).all()  # the mask's mean scores: class 0 wins over the strip of 2


def test_semantic_map_never_covers_less_than_the_dense_map():
    scene, dense = scene_and_dense(5)
    res = run_mhqr(dense, StandInMasks(scene, seed=5))
    assert res.labels.shape == dense.labels.shape
    assert ((res.labels >= 0) & (res.labels < len(CLASSES))).all()
    assert (res.labels[~res.covered] == dense.labels[~res.covered]).all()
    ms = MaskSet(np.zeros((1, H, W), bool), np.array([3]), np.array([0.5], np.float32), np.ones(1, np.float32), [[0]])
    painted, covered = paint_semantic_map(dense.labels, ms)  # an empty mask paints nothing
    assert (painted == dense.labels).all() and not covered.any()


def test_masks_are_kept_three_per_query_ordered_by_area_at_the_working_resolution():
    scene = draw_shape_scene(1, H, W)
    full = StandInDense().predict(scene, seed=1)
    small = np.stack([p[::2, ::2] for p in full.probs])  # a working resolution half the image's
    dense = DenseInput(scene.image, small, full.features, full.text, full.class_names)
    res = run_mhqr(dense, StandInMasks(scene, seed=1))
    for scale, pm in res.point_masks.items():
        assert pm.masks.shape[1:] == (3, H // 2, W // 2)
        areas = pm.masks.reshape(len(pm), 3, -1).sum(-1)
        assert (np.diff(areas, axis=1) <= 0).all()
    assert res.merged.masks.shape[1:] == (H // 2, W // 2) and res.labels.shape == (H // 2, W // 2)
    for q in res.queries.queries:
        assert 0 <= q.x < W and 0 <= q.y < H


def test_granularity_choice_takes_the_mask_that_matches_the_dense_class():
    labels = np.zeros((40, 40), np.int64)
    labels[10:30, 10:30] = 1
    probs = probs_from_labels(labels, 2)
    obj = labels == 1
    part = obj & (np.arange(40)[None] < 20)
    region = np.zeros((40, 40), bool)
    region[5:35, 5:35] = True
    pm = order_by_area(np.stack([part, obj, region])[None], np.array([[0.95, 0.8, 0.9]]))
    pick, score = choose_granularity(pm, np.array([1]), probs, "auto")
    assert (pm.masks[0, pick[0]] == obj).all() and score[0] == pytest.approx(0.8 * 0.9)
    assert choose_granularity(pm, np.array([1]), probs, "iou")[0][0] != pick[0]


def test_refinement_drops_what_the_features_place_outside_and_stays_off_by_default():
    text = class_embeddings(2, 16)
    feats = np.zeros((12, 16, 16), np.float32)
    feats[:, :8], feats[:, 8:] = text[0], text[1]  # 8-pixel cells: left half one class, right half another
    probs = np.zeros((2, 96, 128), np.float32)
    probs[0, :, :64], probs[1, :, 64:] = 1, 1
    mask = np.zeros((96, 128), bool)
    mask[:, :80] = True  # spills 16 pixels into the right half; its ring (the next 16 columns) is all class 1
    ms = MaskSet(mask[None], np.array([0]), np.ones(1, np.float32), np.ones(1, np.float32), [[0]])
    out = HierarchicalRefiner(RefineConfig(keys="ring")).refine({1.0: ms}, feats, probs)
    assert out.masks[0][:, :60].all() and not out.masks[0][:, 68:].any()
    spill = np.zeros((96, 128), bool)
    spill[16:80, 8:96] = True  # a ring of both classes: only the other mask's prototype tells the spill apart
    other = np.zeros((96, 128), bool)
    other[8:88, 72:120] = True
    two = MaskSet(np.stack([spill, other]), np.array([0, 1]), np.ones(2, np.float32), np.ones(2, np.float32),
                  [[0], [1]])
    assert (HierarchicalRefiner(RefineConfig(keys="ring")).refine({1.0: two}, feats, probs).masks == two.masks).all()
    out = HierarchicalRefiner(RefineConfig(keys="queries")).refine({1.0: two}, feats, probs)
    assert out.masks[0][16:80, 8:60].all() and not out.masks[0][:, 68:].any()
    assert (out.masks[1] == other).all()  # nothing in it looks like class 0
    fused = HierarchicalRefiner(RefineConfig(alpha=0.0, fusion=0.3)).refine(
        {0.5: two.take([0]), 1.0: two.take([1])}, feats, probs)  # no projection: only the coarser evidence
    assert (fused.masks == two.masks).all()  # 0.3 of another class's evidence moves nothing
    assert MHQRConfig().refine is False


def test_merger_joins_duplicates_and_similar_classes_and_settles_contested_pixels():
    a = np.zeros((40, 40), bool)
    a[5:25, 5:25] = True
    b = np.roll(a, 2, axis=1)
    c = np.zeros((40, 40), bool)
    c[15:35, 15:35] = True
    probs = np.full((3, 40, 40), 0.1, np.float32)
    probs[0, :, :20], probs[2, :, 20:] = 0.8, 0.8
    ms = MaskSet(np.stack([a, b, c]), np.array([0, 0, 2]), np.array([0.9, 0.8, 0.7], np.float32),
                 np.ones(3, np.float32), [[0], [1], [2]])
    out = SemanticMerger().merge(ms, probs)
    assert len(out) == 2 and out.sources == [[0, 1], [2]]
    assert not (out.masks[0] & out.masks[1]).any()  # contested pixels went to one class
    assert out.masks[0][15:25, 15:20].all() and out.masks[1][15:25, 20:27].all()  # ... the likelier there
    text = np.array([[1, 0], [0, 1], [0.6, 0.8]], np.float32)  # classes 1 and 2: cosine 0.8
    ms2 = replace(ms, masks=np.stack([a, b, b]), classes=np.array([0, 1, 2]))
    assert len(SemanticMerger().merge(ms2, probs, text=text)) == 3  # 1 and 2 are not similar enough (0.8)
    merged = SemanticMerger(MergeConfig(text_similarity=0.7)).merge(ms2, probs, text=text)
    assert merged.sources == [[0], [1, 2]] and merged.classes.tolist() == [0, 1]  # the larger total score


def test_every_stage_switch_changes_what_it_should():
    scene, dense = scene_and_dense(4, noise=0.25)
    gen = StandInMasks(scene, seed=4)
    base = run_mhqr(dense, gen)
    assert base.prompts == len(base.queries.queries) > 0 and set(base.seconds) == {
        "queries", "masks", "refine", "merge", "semantic_map"}
    assert len(base.merged) < len(base.masks)  # duplicates merged
    no_q = run_mhqr(dense, gen, MHQRConfig().without("queries"))
    assert len(no_q.queries.queries) == 64 and "grid" in no_q.messages[0]
    no_masks = run_mhqr(dense, Spy(refuse=True), MHQRConfig().without("masks"))
    assert no_masks.prompts == 0 and no_masks.point_masks == {}
    comps = no_masks.queries.components
    q0 = no_masks.queries.queries[0]
    assert no_masks.masks.masks[0].sum() == pytest.approx((comps[q0.scale] == q0.component).sum() / q0.scale ** 2,
                                                         rel=0.1)
    refined = run_mhqr(dense, gen, replace(MHQRConfig(), refine=True))
    assert base.refined is base.masks and refined.refined is not refined.masks
    assert len(refined.refined) == len(refined.masks)
    no_merge = run_mhqr(dense, gen, MHQRConfig().without("merge"))
    assert no_merge.merged is no_merge.refined and len(no_merge.merged) == len(base.masks)
    no_map = run_mhqr(dense, gen, MHQRConfig().without("semantic_map"))
    assert (no_map.labels == dense.labels).all() and (base.labels != dense.labels).any()
    spy = Spy(np.ones(dense.working_size, bool))
    run_mhqr(dense, spy, replace(MHQRConfig(), negatives=False))
    assert all(neg is None for _, neg in spy.calls)
    spy.calls.clear()
    run_mhqr(dense, spy)
    assert any(any(len(n) for n in neg) for _, neg in spy.calls)


def test_without_features_or_text_the_stages_still_run():
    scene, dense = scene_and_dense(6)
    bare = DenseInput(dense.image, dense.probs, None, None, dense.class_names)
    res = run_mhqr(bare, StandInMasks(scene, seed=6), replace(MHQRConfig(), refine=True))
    assert res.labels.shape == (H, W) and len(res.merged) <= len(res.refined)
    assert miou(scene.label, res.labels) > miou(scene.label, dense.labels)


class RandomBlobs:
    """A MaskGenerator answering each point with three random rectangles (many overlapping) and scores."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def set_image(self, image):
        pass

    def point_masks(self, points_xy, size, negatives_xy=None):
        n, (h, w) = len(points_xy), size
        m = np.zeros((n, 3, h, w), bool)
        for i in range(n):
            for k in range(3):
                y0, x0 = self.rng.integers(0, h - 4), self.rng.integers(0, w - 4)
                m[i, k, y0:y0 + self.rng.integers(3, h // 2), x0:x0 + self.rng.integers(3, w // 2)] = True
        return PointMasks(m, self.rng.random((n, 3)).astype(np.float32))


def _grid_vote_reference(dense, generator, cfg):
    """Grid-vote's NMS as written in its docstring, on whole-image masks: each new mask is dropped if it clashes
    (IoU > nms_iou) with a kept mask of equal or higher score, else it replaces every mask it clashes with."""
    from core.openvocab.mhqr.grid_vote import grid_points

    kept = []
    points = grid_points(cfg.grid, dense.image_size)
    for start in range(0, len(points), cfg.chunk):
        pm = generator.point_masks(points[start:start + cfg.chunk], dense.working_size)
        for i in range(len(pm)):
            for k in range(3):
                mask, score = pm.masks[i, k], float(pm.scores[i, k])
                if not mask.any():
                    continue
                clash = [j for j, (m, _) in enumerate(kept) if (m & mask).sum() / (m | mask).sum() > cfg.nms_iou]
                if clash and not all(kept[j][1] < score for j in clash):
                    continue
                kept = [km for j, km in enumerate(kept) if j not in clash] + [(mask, score)]
    labels = dense.labels.astype(np.int32, copy=True)
    for mask, _ in sorted(kept, key=lambda ms: -int(ms[0].sum())):
        labels[mask] = int(np.argmax(dense.probs[:, mask].mean(1)))
    return labels, len(kept)


@pytest.mark.parametrize("nms_iou", [0.3, 0.7])
def test_grid_vote_nms_equals_the_whole_mask_reference(nms_iou):
    scene, dense = scene_and_dense(5)
    cfg = GridVoteConfig(grid=8, chunk=16, nms_iou=nms_iou)
    ours = grid_vote(dense, RandomBlobs(seed=1), cfg)
    ref_labels, ref_kept = _grid_vote_reference(dense, RandomBlobs(seed=1), cfg)
    assert ours.masks == ref_kept and ref_kept > 5
    assert np.array_equal(ours.labels, ref_labels)
