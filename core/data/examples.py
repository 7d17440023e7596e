"""Examples for the app: drawn drywall walls, photos that ship with scikit-image, and rendered clips of moving
shapes (for the video tab)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from core.models import cache_dir
from core.data.synthetic.walls import draw_wall

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def example_images(folder: Path | None = None) -> dict[str, Path]:
    """Write the examples once (deterministic) and return name -> path."""
    folder = Path(folder or cache_dir() / "examples")
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    walls = {"wall_crack": dict(n_cracks=2, n_seams=0, seed=11), "wall_seam": dict(n_cracks=0, n_seams=1, seed=12),
             "wall_crack_and_seam": dict(n_cracks=1, n_seams=2, seed=13)}
    for name, kw in walls.items():
        path = folder / f"{name}.png"
        if not path.exists():
            Image.fromarray(draw_wall(384, 512, **kw).image).save(path)
        out[name] = path
    from skimage import data

    for name in SKIMAGE_PHOTOS:
        path = folder / f"{name}.png"
        if not path.exists():
            Image.fromarray(getattr(data, name)()).save(path)
        out[name] = path
    return out


EXAMPLE_CLIPS = {"shapes_crossing": dict(seed=3), "shapes_pillar": dict(seed=8, pillar=True)}


def example_clips(folder: Path | None = None) -> dict[str, Path]:
    """Short H.264 clips of moving shapes (disc, square, triangle, ring; crossing, entering, leaving, occluded),
    written once (deterministic) and returned as name -> path."""
    from core.data.synthetic.moving_shapes import make_clip, write_mp4

    folder = Path(folder or cache_dir() / "examples")
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name, kw in EXAMPLE_CLIPS.items():
        path = folder / f"{name}.mp4"
        if not path.exists():
            tmp = path.with_suffix(".part.mp4")
            write_mp4(make_clip(height=240, width=320, n_frames=48, **kw), tmp)
            tmp.replace(path)
        out[name] = path
    return out
