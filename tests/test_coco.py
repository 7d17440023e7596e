import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from core.data.coco import annotation_mask, load_coco, union_mask
from core.errors import BadInput
from core.metrics.binary import iou_dice
from core.data.synthetic.walls import draw_wall
from core.data.synthetic.coco_export import mask_polygons, write_export


def test_polygons_and_rle_match_pycocotools(tmp_path):
    root = write_export(tmp_path / "Cracks", "crack", 6, seed=3, size=(80, 100))
    ann_file = str(root / "train" / "_annotations.coco.json")
    ref = COCO(ann_file)
    ours = load_coco(ann_file)
    assert ours["annotations"], "the export has annotations"
    for aid, ann in ours["annotations"].items():
        im = ours["images"][ann["image_id"]]
        np.testing.assert_array_equal(annotation_mask(ann, im["height"], im["width"]), ref.annToMask(ref.anns[aid]) > 0)


def test_uncompressed_rle_and_polygon_hand_case():
    poly = {"segmentation": [[2, 2, 8, 2, 8, 6, 2, 6]]}
    m = annotation_mask(poly, 10, 12)
    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(poly["segmentation"], 10, 12))) > 0
    np.testing.assert_array_equal(m, expected)
    assert 20 <= m.sum() <= 40
    raw = np.zeros((10, 12), np.uint8)
    raw[1:4, 5:9] = 1
    enc = mask_utils.encode(np.asfortranarray(raw))
    uncompressed = {"size": [10, 12], "counts": _uncompressed_counts(raw)}
    np.testing.assert_array_equal(annotation_mask({"segmentation": uncompressed}, 10, 12), raw > 0)
    np.testing.assert_array_equal(annotation_mask({"segmentation": {"size": [10, 12], "counts": enc["counts"].decode()}}, 10, 12), raw > 0)


def _uncompressed_counts(raw):
    flat = raw.flatten(order="F")
    counts, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(n)
            cur, n = v, 0
        n += 1
    counts.append(n)
    return counts


def test_drawn_masks_survive_polygon_round_trip():
    s = draw_wall(96, 128, n_cracks=1, n_seams=1, seed=4)
    for mask in (s.crack, s.taping_area):
        polys = mask_polygons(mask)
        back = annotation_mask({"segmentation": polys}, 96, 128)
        assert iou_dice(back, mask)[0] > 0.6


def test_union_of_annotations(tmp_path):
    root = write_export(tmp_path / "J", "taping_area", 4, size=(64, 64))
    f = str(root / "train" / "_annotations.coco.json")
    coco = load_coco(f)
    ids = list(coco["annotations"])
    im = coco["images"][coco["annotations"][ids[0]]["image_id"]]
    assert union_mask(f, [], im["height"], im["width"]).sum() == 0


def test_bad_coco_files(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        load_coco(str(tmp_path / "a.json"))
    (tmp_path / "b.json").write_text(json.dumps({"images": []}))
    with pytest.raises(BadInput, match="not a COCO file"):
        load_coco(str(tmp_path / "b.json"))
