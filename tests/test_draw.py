"""Drawing functions: query points, label maps, mask tints, panels (arrays in, arrays out)."""

import numpy as np
import pytest

from core.draw.label_map import hex_colour, label_map, mask_tint, palette
from core.draw.overlay import colour, outlined
from core.draw.panels import panels
from core.draw.points import marker_for, query_points
from core.draw.tracks import track_masks

GREY = np.full((100, 200, 3), 128, np.uint8)


def test_query_points_are_drawn_in_their_class_colour_at_their_place_on_a_dimmed_image():
    pts = np.array([[50.0, 30.0], [150.0, 70.0]])
    out = query_points(GREY, pts, np.array([0, 3]), np.array([0.25, 1.0]), dim=0.35)
    assert out.shape == GREY.shape and out.dtype == np.uint8
    assert tuple(out[30, 50]) == colour(0) and tuple(out[70, 150]) == colour(3)
    assert tuple(out[90, 100]) == (172, 172, 172)  # 128 * 0.65 + 255 * 0.35, far from every marker
    assert tuple(out[5, 5]) == (172, 172, 172)
    assert not (GREY != 128).any()  # the input is untouched


def test_query_points_scale_with_the_image_and_mark_negatives_and_the_highlight():
    big = np.full((1000, 2000, 3), 128, np.uint8)
    out = query_points(big, np.array([[1000.0, 500.0]]), np.array([2]), np.array([0.5]), max_side=400,
                       negatives_xy=np.array([[200.0, 800.0]]), highlight=0, dim=0)
    assert out.shape == (200, 400, 3)
    assert tuple(out[100, 200]) == colour(2)  # (1000, 500) at a fifth of the size
    assert tuple(out[160, 40]) == (0, 0, 0)  # the negative's cross centre, black on a white outline
    ring = out[100, 200 - 3 * 4 - 4: 200 - 3 * 4 + 4]  # radius 3 × r (r = 4 at this size), yellow outer
    assert any(tuple(p) == (255, 255, 0) for p in ring) or any(tuple(p) == (0, 0, 0) for p in ring)


def test_markers_follow_the_scale_order_and_lengths_must_agree():
    assert [marker_for(s, [1.0, 0.25, 0.5]) for s in (0.25, 0.5, 1.0)] == ["circle", "square", "diamond"]
    assert marker_for(1.0, [1.0]) == "circle"
    with pytest.raises(ValueError):
        query_points(GREY, np.zeros((2, 2)), np.zeros(1, int), np.zeros(2))


def test_label_map_tints_each_class_and_leaves_ignore_pixels_alone():
    labels = np.zeros((100, 200), np.int64)
    labels[:, 100:] = 1
    labels[:10, :10] = 255
    out = label_map(GREY, labels, 2, alpha=0.5)
    expect = lambda k: tuple((0.5 * 128 + 0.5 * np.array(colour(k), np.float32)).astype(np.uint8))  # truncated
    assert tuple(out[50, 50]) == expect(0) and tuple(out[50, 150]) == expect(1)
    assert tuple(out[5, 5]) == (128, 128, 128)
    small = label_map(GREY, labels[::10, ::10], 2, alpha=0.5)  # labels at another size: nearest
    assert tuple(small[50, 40]) == expect(0) and tuple(small[50, 160]) == expect(1)
    assert palette(3).shape == (3, 3) and hex_colour(0) == "#%02x%02x%02x" % colour(0)


def test_mask_tint_colours_the_mask_and_dims_the_rest():
    mask = np.zeros((10, 20), bool)
    mask[:, :10] = True
    out = mask_tint(GREY, mask, (255, 0, 0), alpha=1.0, dim=0.5)
    assert tuple(out[50, 20]) == (255, 0, 0)
    assert tuple(out[50, 180]) == (191, 191, 191)


def test_panels_lay_images_out_with_captions():
    a, b = np.zeros((40, 60, 3), np.uint8), np.full((40, 60, 3), 255, np.uint8)
    row = panels([a, b, a], ["one", "two", "three"], gap=8, caption_h=20)
    assert row.shape == (60, 3 * 60 + 2 * 8, 3)
    assert tuple(row[30, 70]) == (255, 255, 255) and tuple(row[30, 10]) == (0, 0, 0)
    grid = panels([a, b, a, b], list("abcd"), columns=2, gap=8, caption_h=20)
    assert grid.shape == (2 * 60 + 8, 2 * 60 + 8, 3)
    with pytest.raises(ValueError):
        panels([a], ["x", "y"])


def test_track_masks_tint_each_id_in_its_colour_with_a_label_box():
    a, b = np.zeros((100, 200), bool), np.zeros((100, 200), bool)
    a[40:80, 20:60] = True
    b[50:90, 120:190] = True
    out = track_masks(GREY, [(3, a, "#3 disc 0.90"), (7, b, "#7 ring 0.41")], alpha=0.5)
    assert out.shape == GREY.shape and out.dtype == np.uint8 and not (GREY != 128).any()
    for tid, (y, x) in ((3, (75, 40)), (7, (85, 180))):
        assert np.abs(out[y, x].astype(int) - (np.array(colour(tid)) * 0.5 + 64)).max() <= 1
    assert tuple(out[5, 100]) == (128, 128, 128)  # outside every mask and label
    assert (np.abs(out[29:40, 20:60].astype(int) - colour(3)).sum(-1) == 0).sum() > 50  # the label box above a
    assert np.array_equal(track_masks(GREY, []), GREY)


def test_outlined_masks_fill_at_the_opacity_and_draw_an_opaque_boundary():
    m = np.zeros((100, 200), np.uint8)
    m[20:60, 40:120] = 255
    out = outlined(GREY, [m], alpha=0.25, outline=2)
    assert out.shape == GREY.shape and not (GREY != 128).any()
    inside = np.round(128 * 0.75 + np.array(colour(0)) * 0.25)
    assert np.abs(out[40, 80].astype(int) - inside).max() <= 1  # filled at 25 %
    assert tuple(out[20, 80]) == tuple(out[21, 80]) == colour(0) and tuple(out[22, 80]) != colour(0)  # 2 px edge
    assert tuple(out[59, 40]) == colour(0) and tuple(out[10, 10]) == (128, 128, 128)
    assert np.array_equal(outlined(GREY, [m], alpha=0.0, outline=0), GREY)  # opacity 0, no outline: the photo
    small = outlined(np.full((1000, 2000, 3), 128, np.uint8), [m], alpha=0.5, max_side=400)
    assert small.shape == (200, 400, 3) and tuple(small[40, 80]) != (128, 128, 128)  # mask resized to the image
