"""Reading user images safely: every failure becomes a BadInput with a plain reason."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import BadInput

MAX_PIXELS = int(os.environ.get("SEGLAB_MAX_PIXELS", 40_000_000))
MAX_SIDE = int(os.environ.get("SEGLAB_MAX_SIDE", 10_000))
MAX_FILE_BYTES = 100 * 1024 * 1024


def check_size(width: int, height: int, what: str = "image") -> None:
    if width < 1 or height < 1:
        raise BadInput(f"The {what} has no pixels ({width}×{height}).")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise BadInput(
            f"The {what} is {width}×{height} pixels ({width * height / 1e6:.0f} MP); SegLab accepts at most "
            f"{MAX_SIDE} pixels a side and {MAX_PIXELS / 1e6:.0f} MP. Downscale it first."
        )


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Any PIL mode to an RGB uint8 array: alpha composited on white, 16-bit scaled, palettes expanded."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img)
        arr = (arr.astype(np.float64) / 257.0) if img.mode.startswith("I;16") else _stretch(arr)
        gray = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "F":
        gray = np.clip(np.round(_stretch(np.asarray(img))), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return np.asarray(img.convert("RGB")).copy()


def _stretch(arr: np.ndarray) -> np.ndarray:
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros_like(arr)
    lo, hi = arr[finite].min(), arr[finite].max()
    out = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
    out[~finite] = 0
    return out


def load_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decode a file path or bytes into an (H, W, 3) uint8 array, EXIF orientation applied."""
    label = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise BadInput(f"'{label}' is not a file.")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BadInput(f"'{label}' is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
        data = path.read_bytes()
    if len(data) == 0:
        raise BadInput(f"'{label}' is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            check_size(*img.size, what=f"image '{label}'")
            img.load()
    except BadInput:
        raise
    except UnidentifiedImageError:
        raise BadInput(f"'{label}' is not an image SegLab can read (PNG, JPEG, TIFF, BMP, WebP, GIF).") from None
    except Image.DecompressionBombError:
        raise BadInput(f"'{label}' is too large to decode safely.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"'{label}' could not be decoded: the file is corrupt or truncated ({exc}).") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        pass
    return to_rgb8(img)
