"""Tab 2: open-vocabulary segmentation (SCLIP dense predictor for now) over core.openvocab.sclip."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from core.openvocab.class_names import CLASS_LIST_DIR, parse_classes, preset_names
from core.errors import BadInput
from core.data.examples import example_images
from core.data.images import load_image
from core.draw.overlay import downscale
from core.models import registry
from core.openvocab.sclip import DenseConfig, SCLIPPredictor, variant_label
from demo.handling import guarded

SWITCHES = ["PAMR", "ResCLIP RCS", "ResCLIP SFR", "DenseCRF"]
METHOD_CHOICES = [("SCLIP (correlative self-attention)", "sclip"), ("NACLIP (neighbourhood attention)", "naclip")]
SHARE_COLUMNS = ["class", "pixels_%"]


def _empty(message):
    return message, None, pd.DataFrame(columns=SHARE_COLUMNS)


def preset_text(name):
    return (CLASS_LIST_DIR / f"{name}.txt").read_text() if name else gr.update()


@guarded(_empty)
def run_dense(file, class_text, switches, short_side, logit_scale, prob_thd, method="sclip"):
    if not file:
        raise BadInput("Upload an image (or click an example).")
    classes = parse_classes(class_text)
    image = load_image(file if isinstance(file, str) else file.name)
    switches = set(switches or [])
    cfg = DenseConfig(method=method or "sclip", short_side=int(short_side), logit_scale=float(logit_scale),
                      prob_thd=float(prob_thd),
                      pamr="PAMR" in switches, rcs="ResCLIP RCS" in switches, sfr="ResCLIP SFR" in switches,
                      crf="DenseCRF" in switches)
    res = SCLIPPredictor(registry().get("openclip")).predict(image, classes, cfg)
    small, scale = downscale(image, 1280)
    labels = res.labels if scale == 1.0 else np.asarray(  # at most 256 classes: indices fit in uint8
        Image.fromarray(res.labels.astype(np.uint8)).resize((small.shape[1], small.shape[0]), Image.NEAREST))
    counts = np.bincount(res.labels.ravel(), minlength=classes.n)
    share = pd.DataFrame({"class": classes.classes, "pixels_%": np.round(100 * counts / counts.sum(), 2)})
    share = share.sort_values("pixels_%", ascending=False).reset_index(drop=True)
    present = [c for c in range(classes.n) if (labels == c).any()]
    annotated = (small, [((labels == c).astype(float), classes.classes[c]) for c in present])
    ran = ", ".join(res.ran)
    status = (f"Done with {variant_label(cfg)}: {classes.n} class(es), {len(present)} present; {res.seconds:.2f} s "
              f"({ran}); "
              f"short side {cfg.short_side}, logit scale {cfg.logit_scale}.")
    return status, annotated, share


def build(demo: gr.Blocks) -> None:
    examples = example_images()
    gr.Markdown("Dense open-vocabulary prediction on CLIP ViT-B/16, computed as SCLIP's and NACLIP's published code "
                "computes it: sliding 224 crops, every class name through 80 prompt templates. ResCLIP's RCS and "
                "SFR work on either; NACLIP's published runs add PAMR. Synonyms: `person, person in shirt` on one "
                "line. With a probability threshold, class 0 is the background.")
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.File(label="Image", elem_id="ov-image")
            preset = gr.Dropdown(preset_names(), value=None, label="Preset class list (fills the box)")
            class_text = gr.Textbox(label="Classes (one a line, or comma-separated on one line)", lines=6,
                                    value="sky\ngrass\nperson\ncar", elem_id="ov-classes")
            method = gr.Radio(METHOD_CHOICES, value="sclip", label="Dense method", elem_id="ov-method")
            switches = gr.CheckboxGroup(SWITCHES, label="Refinements (off by default)", elem_id="ov-switches")
            with gr.Row():
                short_side = gr.Radio([224, 336, 448, 560], value=336, label="Short side")
                logit_scale = gr.Slider(10, 100, value=40, step=5, label="Logit scale")
            prob_thd = gr.Slider(0, 0.9, value=0.0, step=0.05, label="Probability threshold (0: off)")
            run = gr.Button("Segment", variant="primary", elem_id="ov-run")
        with gr.Column(scale=2):
            status = gr.Markdown(elem_id="ov-status")
            overlay = gr.AnnotatedImage(label="Classes (hover the legend)", format="png", elem_id="ov-overlay")
            share = gr.Dataframe(label="Pixel share per class", headers=SHARE_COLUMNS, interactive=False)
    gr.Examples([[str(examples["astronaut"]), "person, astronaut\nrocket\nflag\nsky, background"],
                 [str(examples["coffee"]), "cup, coffee cup\nspoon\nplate\ntable"],
                 [str(examples["chelsea"]), "cat\nwall\nfloor"]],
                inputs=[image, class_text], label="Examples (scikit-image photos)", api_name="openvocab_load_example")
    preset.change(preset_text, preset, class_text, api_name="openvocab_preset")
    run.click(run_dense, [image, class_text, switches, short_side, logit_scale, prob_thd, method],
              [status, overlay, share],
              api_name="openvocab_dense", concurrency_limit=1)
