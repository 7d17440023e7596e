"""The first visitor after a restart: seconds until the app answers its page, then each image endpoint called twice
(cold: imports and model loading included; warm: the model in memory), through gradio_client as a visitor's
browser or script would. The app runs in its own process on 127.0.0.1 (tiny models by default).

    python -m bench.first_request [--models tiny|real] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.timing import table

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(models: str) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    env = {**os.environ, "SEGLAB_MODELS": models, "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--models", models, "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the app exited before answering")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url, time.perf_counter() - t0
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the app did not answer within 300 s")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", choices=["tiny", "real"], default="tiny")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from gradio_client import Client, handle_file

    from core.data.examples import example_images

    photo = handle_file(str(example_images()["wall_crack"]))
    proc, url, up = start(args.models)
    try:
        client = Client(url, verbose=False)
        calls = {"/segment_prompted": dict(image=photo, prompts="segment crack"),
                 "/segment_open_vocab": dict(image=photo, classes="wall, crack, sky")}
        rows = []
        for name, kwargs in calls.items():
            seconds = []
            for _ in ("cold", "warm"):
                t0 = time.perf_counter()
                status = client.predict(**kwargs, api_name=name)[0]
                seconds.append(round(time.perf_counter() - t0, 2))
            rows.append({"endpoint": name, "cold_s": seconds[0], "warm_s": seconds[1], "status": status[:50]})
    finally:
        proc.terminate()
    if args.json:
        print(json.dumps({"models": args.models, "page_s": round(up, 2), "rows": rows}, indent=1))
        return
    print(f"models: {args.models}; the page answered {up:.1f} s after the start (1-min load "
          f"{os.getloadavg()[0]:.2f}); each endpoint called twice, in this order:")
    print(table(["endpoint", "cold s", "warm s", "status"], [[r["endpoint"], r["cold_s"], r["warm_s"], r["status"]]
                                                              for r in rows]))


if __name__ == "__main__":
    main()
