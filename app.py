"""SegLab web app: `python app.py [--host 127.0.0.1] [--port 7860] [--share] [--models tiny]`."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from pathlib import Path

import gradio as gr

from core.data.examples import example_images
from core.models import cache_dir, models_mode, set_models_mode
from demo import dashboard_tab, openvocab_tab, prompted_tab, video_tab
from demo.handling import banner, preload

MODELS = ["clipseg", "openclip", "sam2", "sam2-video"]  # every tab's models, preloaded on a Space

TITLE = "SegLab"
INTRO = ("Image and video segmentation research: try a model on your own picture, and compare benchmark runs. "
         "Every model runs on the CPU; a GPU is used when present.")


def examples_cache() -> str:
    """Where Gradio keeps the examples' results (computed on first click): one folder per process and model mode, so
    a result computed with other weights is never shown; folders of processes that have ended are removed."""
    root = Path(tempfile.gettempdir()) / "seglab_examples"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    return str(root / f"{models_mode()}-{os.getpid()}")


def build_app() -> gr.Blocks:
    os.environ["GRADIO_EXAMPLES_CACHE"] = examples_cache()
    with gr.Blocks(title=TITLE, delete_cache=(3600, 7200)) as demo:  # served files live two hours
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        gr.Markdown(banner(), elem_id="tiny-banner", visible=bool(banner()))
        with gr.Tabs() as tabs:
            with gr.Tab("Prompted segmentation (drywall QA)", id="prompted"):
                prompted_tab.build(demo)
            with gr.Tab("Open-vocabulary segmentation", id="openvocab"):
                openvocab_tab.build(demo)
            with gr.Tab("Video instance tracking", id="video"):
                video_tab.build(demo)
            with gr.Tab("Dashboard", id="dashboard"):
                dashboard_tab.build(demo, tabs)
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Start the SegLab web app.")
    # Spaces set GRADIO_SERVER_NAME/PORT; elsewhere the app stays on the loopback interface unless told
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or os.environ.get("SEGLAB_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int,
                   default=int(os.environ.get("GRADIO_SERVER_PORT") or os.environ.get("SEGLAB_PORT", 7860)))
    p.add_argument("--share", action="store_true", help="also open a public share link")
    p.add_argument("--models", choices=["real", "tiny"], default=None, help="'tiny': random tiny weights")
    p.add_argument("--preload", action=argparse.BooleanOptionalAction, default=bool(os.environ.get("SPACE_ID")),
                   help="load every model at start-up, in the background (default on a Hugging Face Space)")
    args = p.parse_args(argv)
    if args.models:
        set_models_mode(args.models)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    example_images()
    if args.preload:
        preload(MODELS)
    build_app().launch(server_name=args.host, server_port=args.port, share=args.share,
                       allowed_paths=[str(cache_dir() / "examples")], max_file_size="100mb",
                       mcp_server=mcp_available())


def mcp_available() -> bool:
    """The public endpoints as MCP tools (at /gradio_api/mcp/) when the gradio[mcp] extra is installed."""
    try:
        import mcp  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
