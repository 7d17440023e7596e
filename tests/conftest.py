import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ["SEGLAB_MODELS"] = "tiny"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("SEGLAB_CACHE", str(ROOT / ".seglab-cache" / "tests"))
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_clipseg():
    from core.models import registry

    return registry().get("clipseg")


@pytest.fixture(scope="session")
def segmenter(tiny_clipseg):
    from core.prompted.segmenter import load_segmenter

    return load_segmenter("clipseg")


@pytest.fixture
def wall_png(tmp_path):
    from PIL import Image

    from core.data.synthetic.walls import draw_wall

    p = tmp_path / "wall one.png"
    Image.fromarray(draw_wall(120, 160, seed=5).image).save(p)
    return p


@pytest.fixture(scope="session")
def synthetic_manifest(tmp_path_factory):
    from core.prompted.manifest import prepare
    from core.data.synthetic.coco_export import write_export

    root = tmp_path_factory.mktemp("exports")
    write_export(root / "Cracks", "crack", 10, seed=1, size=(96, 128))
    write_export(root / "Drywall-Join-Detect", "taping_area", 10, seed=2, size=(96, 128), rle=True, empty_every=4)
    out = root / "manifest.csv"
    prepare([str(root / "Cracks"), str(root / "Drywall-Join-Detect")], out)
    return out


def measured_record(name, miou, seconds=0.5, device="cpu", per_prompt=None, epochs=0, task="prompted"):
    from core.results.records import new_record

    rec = new_record(task, name, {"kind": "measured", "command": f"python -m core evaluate --out {name}.json"},
                     model={"name": "clipseg", "source": "tiny random weights", "image_size": 352},
                     dataset={"name": "synthetic", "split": "test", "n": 12},
                     config={"threshold": 0.5},
                     metrics={"overall": {"miou": miou, "dice": miou + 0.1, "pixel_accuracy": 0.9, "n": 12},
                              "per_label": {"crack": {"miou": miou - 0.05, "dice": miou, "n": 4},
                                            "taping_area": {"miou": miou + 0.05, "dice": miou + 0.2, "n": 8}},
                              "per_prompt": per_prompt or {"segment crack": {"miou": miou, "dice": miou, "n": 4}}},
                     threshold_sweep=[{"split": "val", "role": "tuning", "threshold": t / 10, "miou": miou * t / 5,
                                       "dice": miou} for t in range(1, 10)],
                     timing={"seconds_per_image": seconds, "device": device})
    if epochs:
        rec["training"] = {"epochs": [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_miou": 0.1 * e}
                                      for e in range(1, epochs + 1)]}
    return rec


REPORTED_RUNS = len(list((ROOT / "results" / "reported").rglob("*.json")))


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory):
    """Reported runs as committed, two measured runs, and one broken file."""
    import shutil

    from core.results.records import write_record

    root = tmp_path_factory.mktemp("results")
    shutil.copytree(ROOT / "results" / "reported", root / "reported")
    write_record(measured_record("fixture_measured_a", 0.30, epochs=4), root / "runs" / "fixture_measured_a.json")
    write_record(measured_record("fixture_measured_b", 0.35, seconds=0.7), root / "runs" / "fixture_measured_b.json")
    (root / "runs" / "broken.json").write_text('{"schema_version": 1, "run_id": ')
    return root


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """A models/ folder holding one fine-tuned tiny CLIPSeg (one short epoch of real training)."""
    from core.prompted.train import TrainConfig, train
    from drawn_sets import drawn_manifest

    root = tmp_path_factory.mktemp("finetune")
    manifest = drawn_manifest(root / "data", n=10)
    train(TrainConfig(str(manifest), str(root / "models" / "drywall_ft"), epochs=1, batch=8, lr=1e-3), results_dir=None)
    return root / "models"


def start_app(log_dir, **env_extra):
    """The real app, tiny models, on a free loopback port, in its own process: (process, url, log file)."""
    port = free_port()
    env = {**os.environ, "SEGLAB_MODELS": "tiny", "GRADIO_ANALYTICS_ENABLED": "False", **env_extra}
    log = log_dir / "app.log"
    fh = log.open("w")
    proc = subprocess.Popen([sys.executable, "app.py", "--models", "tiny", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("app exited:\n" + log.read_text())
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("app did not start:\n" + log.read_text())
    return proc, url, fh


def stop_app(proc, fh) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    fh.close()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory, results_dir, models_dir):
    """The real app, tiny models, on a free loopback port, in its own process."""
    proc, url, fh = start_app(tmp_path_factory.mktemp("app"), SEGLAB_RESULTS=str(results_dir),
                              SEGLAB_MODELS_DIR=str(models_dir))
    yield url
    stop_app(proc, fh)


def rgb(h=64, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
