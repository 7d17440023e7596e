"""SegLab web app: `python app.py [--host 127.0.0.1] [--port 7860] [--share] [--models tiny]`."""

from __future__ import annotations

import argparse
import logging
import os

import gradio as gr

from core.data.examples import example_images
from core.models import cache_dir, set_models_mode
from demo import dashboard_tab, openvocab_tab, prompted_tab, video_tab
from demo.handling import banner

TITLE = "SegLab"
INTRO = ("Image and video segmentation research: try a model on your own picture, and compare benchmark runs. "
         "Every model runs on the CPU; a GPU is used when present.")


def build_app() -> gr.Blocks:
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
    args = p.parse_args(argv)
    if args.models:
        set_models_mode(args.models)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    example_images()
    build_app().launch(server_name=args.host, server_port=args.port, share=args.share,
                       allowed_paths=[str(cache_dir() / "examples")], max_file_size="100mb")


if __name__ == "__main__":
    main()
