"""Tab 2: open-vocabulary segmentation. Dense CLIP (SCLIP, NACLIP) over core.openvocab.sclip; grid-vote and MHQR
over core.openvocab.mhqr with SAM2 point masks. MHQR's query points are drawn, listed and inspectable: click a
point (or a row) to see the three masks SAM2 answered and the mask the query ended in."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd

from core.data.examples import example_images
from core.data.images import load_image
from core.draw.label_map import hex_colour, label_map, mask_tint
from core.draw.overlay import colour, downscale
from core.draw.panels import panels
from core.draw.points import marker_for, query_points
from core.errors import BadInput
from core.models import registry
from core.openvocab.class_names import CLASS_LIST_DIR, parse_classes, preset_names
from core.openvocab.mhqr.semantic_map import labels_at
from core.openvocab.mhqr.trace import ROW_COLUMNS, trace_queries
from core.openvocab.sclip import DenseConfig, SCLIPPredictor, variant_label
from demo.handling import guarded

SWITCHES = ["PAMR", "ResCLIP RCS", "ResCLIP SFR", "DenseCRF"]
METHOD_CHOICES = [("Dense: SCLIP", "sclip"), ("Dense: NACLIP", "naclip"),
                  ("Grid-vote: SAM2 masks from a point grid", "grid-vote"),
                  ("MHQR: query points → SAM2 masks → merging", "mhqr")]
DENSE_CHOICES = [("SCLIP", "sclip"), ("NACLIP", "naclip")]
STAGE_CHOICES = [("query points", "queries"), ("SAM2 masks", "masks"), ("hierarchical refinement", "refine"),
                 ("semantic merging", "merge"), ("semantic map", "semantic_map"), ("negative points", "negatives")]
STAGES_ON = ["queries", "masks", "merge", "semantic_map", "negatives"]  # MHQRConfig's defaults
SCALES = [0.25, 0.5, 1.0]
SCALES_T = tuple(SCALES)
SHARE_COLUMNS = ["class", "pixels_%"]
STAGE_COLUMNS = ["stage", "seconds"]
DISPLAY_SIDE = 1280  # drawn outputs at most this wide/high
PANEL_SIDE = 360
STAGE_PROGRESS = {"dense": (0.1, "Dense CLIP"), "sam2_image": (0.35, "SAM2: encoding the image"),
                  "queries": (0.45, "MHQR: query points"), "masks": (0.5, "SAM2: masks at the query points"),
                  "refine": (0.8, "MHQR: refinement"), "merge": (0.85, "MHQR: semantic merging"),
                  "semantic_map": (0.9, "MHQR: semantic map"), "grid_vote": (0.4, "SAM2: masks at the grid points")}


def _empty(message):
    return (message, None, None, None, None, None, "", None, None, None)


def preset_text(name):
    return (CLASS_LIST_DIR / f"{name}.txt").read_text() if name else gr.update()


def _dense_config(method, switches, short_side, logit_scale, prob_thd):
    switches = set(switches or [])
    return DenseConfig(method=method, short_side=int(short_side), logit_scale=float(logit_scale),
                       prob_thd=float(prob_thd), pamr="PAMR" in switches, rcs="ResCLIP RCS" in switches,
                       sfr="ResCLIP SFR" in switches, crf="DenseCRF" in switches)


def _two_stage(method, stages, scales, max_queries, grid):
    from core.openvocab.mhqr.grid_vote import GridVoteConfig
    from core.openvocab.mhqr.pipeline import MHQRConfig
    from core.openvocab.mhqr.predictor import MHQRPredictor
    from core.openvocab.mhqr.queries import QueryConfig
    from core.openvocab.mhqr.sam2_masks import Sam2PointMasks

    stages = set(stages or [])
    scales = tuple(sorted(float(s) for s in (scales or [])))
    if method == "mhqr" and "queries" in stages and not scales:
        raise BadInput("Tick at least one query scale (or switch query points off).")
    query = QueryConfig(scales=scales or SCALES_T, max_queries=int(max_queries), min_queries=min(10, int(max_queries)))
    cfg = MHQRConfig(**{s: s in stages for s in ("queries", "masks", "refine", "merge", "semantic_map", "negatives")},
                     query=query)
    masks = Sam2PointMasks(registry().get("sam2")) if (method == "grid-vote" or cfg.masks) else None
    return MHQRPredictor(SCLIPPredictor(registry().get("openclip")), masks, method, cfg, GridVoteConfig(grid=int(grid)))


def _share(labels, classes):
    counts = np.bincount(labels.ravel(), minlength=classes.n)[:classes.n]
    share = pd.DataFrame({"class": classes.classes, "pixels_%": np.round(100 * counts / max(counts.sum(), 1), 2)})
    return share.sort_values("pixels_%", ascending=False).reset_index(drop=True)


def _annotated(small, labels_small, classes):
    present = [c for c in range(classes.n) if (labels_small == c).any()]
    value = (small, [((labels_small == c).astype(float), classes.classes[c]) for c in present])
    return gr.AnnotatedImage(value=value, color_map={classes.classes[c]: hex_colour(c) for c in range(classes.n)})


def _points_image(image, trace, highlight=None):
    neg = [n for n in trace.negatives_xy if len(n)]
    negatives = np.unique(np.concatenate(neg), axis=0) if neg else None
    if highlight is not None:
        negatives = trace.negatives_xy[highlight] if len(trace.negatives_xy[highlight]) else None
    return query_points(image, trace.points_xy, trace.classes, trace.scales, negatives_xy=negatives,
                        highlight=highlight, max_side=DISPLAY_SIDE)


def _legend_text(trace, classes):
    scales = sorted(set(float(s) for s in trace.scales))
    marks = ", ".join(f"{marker_for(s, scales)} = scale {s:g}" for s in scales)
    return (f"{len(trace)} query points. Colour = class, {marks}; crosses = the negative points sent with them. "
            "Click a point or a row to see SAM2's three masks and the mask the query ended in.")


@guarded(_empty)
def run_openvocab(file, class_text, method, dense_method, switches, short_side, logit_scale, prob_thd, stages,
                  scales, max_queries, grid, progress=gr.Progress()):
    if not file:
        raise BadInput("Upload an image (or click an example).")
    method = method or "mhqr"
    classes = parse_classes(class_text)
    image = load_image(file if isinstance(file, str) else file.name)
    two_stage = method in ("mhqr", "grid-vote")
    cfg = _dense_config(dense_method if two_stage else method, switches, short_side, logit_scale, prob_thd)
    progress(0.05, desc="Loading models")
    small, _ = downscale(image, DISPLAY_SIDE)
    stage_rows, trace, points_img, table, note = [], None, None, None, ""
    if two_stage:
        predictor = _two_stage(method, stages, scales, max_queries, grid)
        pred = predictor.predict(image, classes, cfg,
                                 on_stage=lambda name: progress(*STAGE_PROGRESS.get(name, (None, name))))
        labels, dense_labels = pred.labels, pred.dense.labels
        stage_rows = [[k, round(v, 3)] for k, v in pred.stage_seconds.items()]
        ran, seconds = ", ".join(pred.ran), pred.seconds
        progress(0.95, desc="Drawing")
        if pred.result is not None:
            trace = trace_queries(pred.result, list(classes.classes), image.shape[:2])
            if len(trace):
                points_img = _points_image(image, trace)
                table = pd.DataFrame(trace.rows, columns=ROW_COLUMNS)
            note = _legend_text(trace, classes) + (" " + " ".join(pred.result.messages) if pred.result.messages
                                                   else "")
        else:
            note = f"Grid-vote asked SAM2 at {pred.queries} grid points; query points are MHQR's."
        name = "MHQR" if method == "mhqr" else f"grid-vote ({int(grid)}×{int(grid)} points)"
        head = f"Done with {name} on {variant_label(cfg)}: {classes.n} class(es); {pred.queries} SAM2 prompt(s)"
    else:
        progress(0.15, desc="Dense CLIP")
        res = SCLIPPredictor(registry().get("openclip")).predict(image, classes, cfg)
        labels, dense_labels = res.labels, None
        ran, seconds = ", ".join(res.ran), res.seconds
        stage_rows = [["dense", round(res.seconds, 3)]]
        head = f"Done with {variant_label(cfg)}: {classes.n} class(es)"
        note = "Query points are MHQR's: choose MHQR to see where it asks SAM2."
    labels_small = labels_at(labels, small.shape[:2])
    present = len(np.unique(labels_small))
    status = (f"{head}, {present} present; {seconds:.2f} s ({ran}); short side {cfg.short_side}, "
              f"logit scale {cfg.logit_scale}.")
    final_img = label_map(small, labels_small, classes.n)
    slider = (label_map(small, dense_labels, classes.n) if dense_labels is not None else small, final_img)
    state = {"trace": trace, "image": small, "scale": small.shape[1] / image.shape[1], "classes": classes.classes}
    return (status, _annotated(small, labels_small, classes), slider, points_img, table, None, note,
            pd.DataFrame(stage_rows, columns=STAGE_COLUMNS), _share(labels, classes), state)


def _inspect_empty(message):
    return gr.update(), None, message


def _inspection(state, i):
    trace, small = state["trace"], state["image"]
    three, ious = trace.sam_masks(i)
    region, caption = trace.region(i)
    row = trace.rows[i]
    thumb, _ = downscale(small, PANEL_SIDE)
    rgb = colour(int(trace.classes[i]))
    images, captions = [], []
    if three is not None:
        for g, name in enumerate(("coarse", "medium", "fine")):
            images.append(mask_tint(thumb, three[g], rgb))
            captions.append(f"{name} · IoU {ious[g]:.2f}" + (" · kept" if trace.kept(i) == g else ""))
    images.append(mask_tint(thumb, region, rgb) if region is not None else (thumb * 0.5 + 127).astype(np.uint8))
    captions.append(f"ended as {caption}"[:60])
    panel = panels(images, captions, columns=2 if len(images) > 2 else None)
    text = (f"**Query #{row[0]}**: {row[1]}, scale {row[2]:g}, confidence {row[3]}, at ({row[4]}, {row[5]}); "
            f"kept the {row[7]} mask; ended as {row[8]}.")
    return _points_image(small, _scaled(trace, state), i), panel, text


def _scaled(trace, state):
    """The trace with its points in the displayed image's pixels."""
    from dataclasses import replace

    f = state["scale"]
    return replace(trace, points_xy=trace.points_xy * f, negatives_xy=[n * f for n in trace.negatives_xy])


@guarded(_inspect_empty)
def inspect_point(state, evt: gr.SelectData):
    if not state or state.get("trace") is None or not len(state["trace"]):
        raise BadInput("Run MHQR first: its query points can then be clicked.")
    x, y = evt.index[:2]
    f, trace = state["scale"], state["trace"]
    i = trace.nearest(x / f, y / f, radius=max(12, 0.03 * max(state["image"].shape[:2])) / f)
    if i is None:
        raise BadInput("No query point there: click on a marker.")
    return _inspection(state, i)


@guarded(_inspect_empty)
def inspect_row(state, evt: gr.SelectData):
    if not state or state.get("trace") is None or not len(state["trace"]):
        raise BadInput("Run MHQR first: its queries can then be inspected.")
    value = evt.row_value[0] if getattr(evt, "row_value", None) else evt.index[0] + 1
    i = int(value) - 1
    if not 0 <= i < len(state["trace"]):
        raise BadInput(f"No query #{value}.")
    return _inspection(state, i)


def toggle_two_stage(method):
    return gr.update(visible=method in ("mhqr", "grid-vote"))


def build(demo: gr.Blocks) -> None:
    examples = example_images()
    gr.Markdown("Class names → a semantic map. **Dense** methods (SCLIP, NACLIP on CLIP ViT-B/16) label every patch, "
                "computed as their published code computes them. **MHQR** turns the dense map into point queries, "
                "asks SAM2 for masks at those points, merges them by meaning and paints them over the dense map; "
                "**grid-vote** (CorrCLIP's last step) asks SAM2 at a regular grid instead. Synonyms: "
                "`person, person in shirt` on one line. With a probability threshold, class 0 is the background.")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            image = gr.File(label="Image", elem_id="ov-image")
            preset = gr.Dropdown(preset_names(), value=None, label="Preset class list (fills the box)")
            class_text = gr.Textbox(label="Classes (one a line, or comma-separated on one line)", lines=5,
                                    value="sky\ngrass\nperson\ncar", elem_id="ov-classes")
            method = gr.Radio(METHOD_CHOICES, value="mhqr", label="Method", elem_id="ov-method")
            with gr.Accordion("MHQR and grid-vote settings", open=False, elem_id="ov-two-stage") as two_stage:
                dense_method = gr.Radio(DENSE_CHOICES, value="sclip", label="Dense stage underneath")
                stages = gr.CheckboxGroup(STAGE_CHOICES, value=STAGES_ON, elem_id="ov-stages",
                                          label="MHQR stages (refinement is off by default: it did not help)")
                scales = gr.CheckboxGroup(SCALES, value=SCALES, label="Query scales", elem_id="ov-scales")
                with gr.Row():
                    max_queries = gr.Slider(10, 200, value=200, step=10, label="At most this many queries")
                    grid = gr.Slider(4, 32, value=32, step=4, label="Grid-vote: points per side")
            switches = gr.CheckboxGroup(SWITCHES, label="Dense refinements (off by default)", elem_id="ov-switches")
            with gr.Row():
                short_side = gr.Radio([224, 336, 448, 560], value=336, label="Short side")
                logit_scale = gr.Slider(10, 100, value=40, step=5, label="Logit scale")
            prob_thd = gr.Slider(0, 0.9, value=0.0, step=0.05, label="Probability threshold (0: off)")
            run = gr.Button("Segment", variant="primary", elem_id="ov-run")
            gr.Examples([[str(examples["astronaut"]), "person, astronaut\nrocket\nflag\nsky, background"],
                         [str(examples["coffee"]), "cup, coffee cup\nspoon\nplate\ntable"],
                         [str(examples["chelsea"]), "cat\nwall\nfloor"]],
                        inputs=[image, class_text], label="Examples (scikit-image photos)", api_name="openvocab_load_example")
        with gr.Column(scale=2, min_width=300):
            status = gr.Markdown(elem_id="ov-status")
            note = gr.Markdown(elem_id="ov-points-note")
            with gr.Row(equal_height=True):
                points = gr.Image(label="Query points: where the method asked SAM2 (click one)", format="png",
                                  interactive=False, elem_id="ov-points", height=440, min_width=280)
                inspect = gr.Image(label="Selected query: SAM2's three masks, and where it ended",
                                   format="png", interactive=False, elem_id="ov-inspect", height=440, min_width=280)
            inspect_text = gr.Markdown(elem_id="ov-inspect-text")
            queries = gr.Dataframe(label="Queries (click a row)", headers=ROW_COLUMNS, interactive=False,
                                   elem_id="ov-queries", wrap=True, max_height=320)
            with gr.Row(equal_height=True):
                overlay = gr.AnnotatedImage(label="Final map (hover the legend)", format="png", elem_id="ov-overlay",
                                            height=440, min_width=280)
                slider = gr.ImageSlider(label="Dense map (left) ↔ final map (right)", format="png",
                                        elem_id="ov-slider", height=440, max_height=440, min_width=280)
            with gr.Row():
                seconds = gr.Dataframe(label="Seconds per stage", headers=STAGE_COLUMNS, interactive=False,
                                       elem_id="ov-seconds", min_width=200)
                share = gr.Dataframe(label="Pixel share per class", headers=SHARE_COLUMNS, interactive=False,
                                     min_width=200)
    state = gr.State(time_to_live=1800)
    preset.change(preset_text, preset, class_text, api_name="openvocab_preset")
    method.change(toggle_two_stage, method, two_stage, api_visibility="private")
    run.click(run_openvocab, [image, class_text, method, dense_method, switches, short_side, logit_scale, prob_thd,
                              stages, scales, max_queries, grid],
              [status, overlay, slider, points, queries, inspect, note, seconds, share, state],
              api_name="openvocab_segment", concurrency_limit=1)
    points.select(inspect_point, state, [points, inspect, inspect_text], api_visibility="private")
    queries.select(inspect_row, state, [points, inspect, inspect_text], api_visibility="private")
