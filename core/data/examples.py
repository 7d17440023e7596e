"""Example images for the app: drawn drywall walls and photos that ship with scikit-image."""

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
