import io

import numpy as np
import pytest
from PIL import Image

from core.errors import BadInput
from core.data.images import load_image


def save(tmp_path, name, img, **kw):
    p = tmp_path / name
    img.save(p, **kw)
    return p


def test_rgb_png_round_trip(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = load_image(save(tmp_path, "a.png", Image.fromarray(arr)))
    np.testing.assert_array_equal(out, arr)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red-ish, bottom transparent
    out = load_image(save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA")))
    assert out.shape == (4, 4, 3)
    assert tuple(out[0, 0]) == (200, 0, 0) and tuple(out[3, 3]) == (255, 255, 255)


def test_16bit_grayscale_is_scaled_to_8bit(tmp_path):
    arr = np.array([[0, 65535], [257 * 100, 257 * 200]], np.uint16)
    out = load_image(save(tmp_path, "a.png", Image.fromarray(arr)))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[..., 0].tolist() == [[0, 255], [100, 200]]


def test_grayscale_becomes_three_channels(tmp_path):
    out = load_image(save(tmp_path, "g.jpg", Image.new("L", (9, 7), 128)))
    assert out.shape == (7, 9, 3)
    assert abs(int(out[3, 3, 0]) - 128) <= 2


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(BadInput, match="not an image"):
        load_image(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(BadInput, match="empty"):
        load_image(p)


def test_corrupt_file(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(buf, "PNG")
    p = tmp_path / "cut.png"
    p.write_bytes(buf.getvalue()[:80])
    with pytest.raises(BadInput, match="corrupt or truncated"):
        load_image(p)


def test_huge_image_is_refused_before_decoding(tmp_path):
    p = save(tmp_path, "huge.png", Image.new("1", (12000, 12000)))
    with pytest.raises(BadInput, match="12000×12000"):
        load_image(p)


def test_missing_file(tmp_path):
    with pytest.raises(BadInput, match="not a file"):
        load_image(tmp_path / "nope.png")
