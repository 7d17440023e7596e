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
from demo.handling import gpu, guarded, loading_note, model_status, photo_input

SWITCHES = ["PAMR", "ResCLIP RCS", "ResCLIP SFR", "DenseCRF"]
METHOD_CHOICES = [("Dense: SCLIP", "sclip"), ("Dense: NACLIP", "naclip"),
                  ("Grid-vote: SAM2 masks from a point grid", "grid-vote"),
                  ("MHQR: query points → SAM2 masks → merging", "mhqr")]
DENSE_CHOICES = [("SCLIP", "sclip"), ("NACLIP", "naclip")]
STAGE_CHOICES = [("query points", "queries"), ("SAM2 masks", "masks"), ("hierarchical refinement", "refine"),
                 ("semantic merging", "merge"), ("semantic map", "semantic_map"), ("negative points", "negatives")]
STAGES_ON = ["queries", "masks", "merge", "semantic_map", "negatives"]  # MHQRConfig's defaults
SCALES = [0.25, 0.5, 1.0]
SAM2_FRAMES = [("SAM2's own (1024 for the released models)", "native"), ("512", "512")]
SCALES_T = tuple(SCALES)
SHARE_COLUMNS = ["class", "pixels %"]
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


def _two_stage(method, stages, scales, max_queries, grid, sam2_frame="native"):
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
    masks = None
    if method == "grid-vote" or cfg.masks:
        try:
            frame = None if sam2_frame in (None, "", "native") else int(sam2_frame)
            masks = Sam2PointMasks(registry().get("sam2").at_frame(frame))
        except ValueError as exc:
            raise BadInput(f"SAM2 frame: {exc}") from None
    return MHQRPredictor(SCLIPPredictor(registry().get("openclip")), masks, method, cfg, GridVoteConfig(grid=int(grid)))


def _share(labels, classes):
    counts = np.bincount(labels.ravel(), minlength=classes.n)[:classes.n]
    share = pd.DataFrame({"class": classes.classes, "pixels %": np.round(100 * counts / max(counts.sum(), 1), 1)})
    return share.sort_values("pixels %", ascending=False).reset_index(drop=True)


def _annotated(small, labels_small, classes) -> tuple[tuple, dict]:
    """AnnotatedImage's value (photo, [(mask, class)]) and the classes' colours (the query points' colours)."""
    present = [c for c in range(classes.n) if (labels_small == c).any()]
    value = (small, [((labels_small == c).astype(float), classes.classes[c]) for c in present])
    return value, {classes.classes[c]: hex_colour(c) for c in range(classes.n)}


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


@gpu
@guarded(_empty)
def segment_open_vocab(image, classes="", method="mhqr", dense_method="sclip", refinements=None, short_side=336,
                       logit_scale=40.0, probability_threshold=0.0, mhqr_stages=None, query_scales=None,
                       max_queries=200, grid_points=32, sam2_frame="native", progress=gr.Progress()):
    """Label every pixel of a photo with one of the given class names (SCLIP or NACLIP dense CLIP; MHQR or grid-vote
    add SAM2 masks). Returns a status line, the final map over the photo with its legend, the dense and final maps
    side by side, MHQR's query points drawn on the photo and listed (class, scale, confidence, position, SAM2's IoU,
    the mask kept, where it ended), seconds per stage and each class's share of the pixels."""
    file, class_text, stages, scales, grid = image, classes, mhqr_stages, query_scales, grid_points
    stages = STAGES_ON if stages is None else stages
    scales = SCALES if scales is None else scales
    if not file:
        raise BadInput("Upload a photo (or click an example).")
    method = method or "mhqr"
    classes = parse_classes(class_text)
    image = load_image(file if isinstance(file, str) else file.name)
    two_stage = method in ("mhqr", "grid-vote")
    cfg = _dense_config(dense_method if two_stage else method, refinements, short_side, logit_scale,
                        probability_threshold)
    progress(0.05, desc=loading_note(["openclip", "sam2"] if two_stage else ["openclip"]) or "Loading models")
    small, _ = downscale(image, DISPLAY_SIDE)
    stage_rows, trace, points_img, table, note = [], None, None, None, ""
    if two_stage:
        predictor = _two_stage(method, stages, scales, max_queries, grid, sam2_frame)
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
        sam2 = getattr(predictor.masks, "sam2", None)
        head = (f"Done with {name} on {variant_label(cfg)}: {classes.n} class(es); {pred.queries} SAM2 prompt(s)"
                + (f" (SAM2 frame {sam2.frame})" if sam2 is not None else ""))
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
    value, color_map = _annotated(small, labels_small, classes)
    return (status, gr.AnnotatedImage(value=value, color_map=color_map), slider, points_img, table, None, note,
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
                "**grid-vote** (CorrCLIP's last step) asks SAM2 at a regular grid instead.")
    status_models = gr.Markdown(elem_id="ov-models")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            image = photo_input(label="Photo", elem_id="ov-image", height=320)
            class_text = gr.Textbox(label="Classes", lines=4, value="", elem_id="ov-classes",
                                    placeholder="person\nsky\ncar, vehicle",
                                    info="One class a line (synonyms after commas: 'person, man, woman'), or "
                                         "several classes comma-separated on one line.")
            preset = gr.Dropdown(preset_names(), value=None, label="Or a benchmark's class list",
                                 info="Fills the box with VOC, COCO-Stuff, ... as their papers prompt them.")
            method = gr.Radio(METHOD_CHOICES, value="mhqr", label="Method", elem_id="ov-method",
                              info="MHQR is the default; the dense methods are faster and blurrier.")
            run = gr.Button("Segment", variant="primary", elem_id="ov-run")
            with gr.Accordion("MHQR and grid-vote settings", open=False, elem_id="ov-two-stage") as two_stage:
                dense_method = gr.Radio(DENSE_CHOICES, value="sclip", label="Dense stage underneath",
                                        info="The map the query points come from. Default SCLIP.")
                stages = gr.CheckboxGroup(STAGE_CHOICES, value=STAGES_ON, elem_id="ov-stages", label="MHQR stages",
                                          info="Switch one off to see what it adds. Refinement is off by default: on "
                                               "synthetic scenes it did not help.")
                scales = gr.CheckboxGroup(SCALES, value=SCALES, label="Query scales", elem_id="ov-scales",
                                          info="Map scales the query points are taken at; small scales find large "
                                               "regions, full scale small ones.")
                max_queries = gr.Slider(10, 200, value=200, step=10, label="At most this many queries",
                                        info="Each query is one SAM2 prompt (about 65 ms each on a CPU at the 1024 "
                                             "frame). Default 200.")
                grid = gr.Slider(4, 32, value=32, step=4, label="Grid-vote: points per side",
                                 info="32 (1024 prompts) is CorrCLIP's setting; 16 is 4× faster.")
                sam2_frame = gr.Radio(SAM2_FRAMES, value="native", label="SAM2 frame", elem_id="ov-sam2-frame",
                                      info="The square SAM2 sees the photo in. 512 is about 5× faster on a CPU, "
                                           "with coarser mask edges.")
            with gr.Accordion("Dense map settings", open=False):
                switches = gr.CheckboxGroup(SWITCHES, label="Refinements (off by default)", elem_id="ov-switches",
                                            info="PAMR and DenseCRF sharpen edges along colours; ResCLIP's RCS and "
                                                 "SFR correct the attention and the features. Each adds time.")
                short_side = gr.Radio([224, 336, 448, 560], value=336, label="Short side (px)",
                                      info="The photo's size for CLIP; 336 is SCLIP's COCO setting. Larger sees "
                                           "smaller things, slower.")
                logit_scale = gr.Slider(10, 100, value=40, step=5, label="Logit scale",
                                        info="Sharpness of the class softmax; 40 is SCLIP's. Higher: fewer pixels "
                                             "left uncertain.")
                prob_thd = gr.Slider(0, 0.9, value=0.0, step=0.05, label="Probability threshold",
                                     info="Pixels less confident than this go to the first class (background, as "
                                          "in VOC). 0: off, the default.")
        with gr.Column(scale=2, min_width=300):
            status = gr.Markdown(label="Status", elem_id="ov-status")
            with gr.Row(equal_height=True):
                overlay = gr.AnnotatedImage(label="Final map (hover the legend)", format="png", elem_id="ov-overlay",
                                            height=440, min_width=280)
                slider = gr.ImageSlider(label="Dense map (left) ↔ final map (right)", format="png",
                                        elem_id="ov-slider", height=440, max_height=440, min_width=280,
                                        interactive=False)
            note = gr.Markdown(label="How to read the query points", elem_id="ov-points-note")
            with gr.Row(equal_height=True):
                points = gr.Image(label="Query points: where the method asked SAM2 (click one)", format="png",
                                  interactive=False, elem_id="ov-points", height=440, min_width=280)
                inspect = gr.Image(label="Selected query: SAM2's three masks, and where it ended",
                                   format="png", interactive=False, elem_id="ov-inspect", height=440, min_width=280)
            inspect_text = gr.Markdown(label="Selected query", elem_id="ov-inspect-text")
            queries = gr.Dataframe(label="Queries (click a row)", headers=ROW_COLUMNS, interactive=False,
                                   elem_id="ov-queries", wrap=True, max_height=320)
            with gr.Row():
                seconds = gr.Dataframe(label="Seconds per stage", headers=STAGE_COLUMNS, interactive=False,
                                       elem_id="ov-seconds", min_width=200)
                share = gr.Dataframe(label="Pixel share per class (%)", headers=SHARE_COLUMNS, interactive=False,
                                     min_width=200, elem_id="ov-share")
    state = gr.State(time_to_live=1800)
    outputs = [status, overlay, slider, points, queries, inspect, note, seconds, share, state]
    gr.Examples([[str(examples["astronaut"]), "person, rocket, flag, sky, wall"],
                 [str(examples["coffee"]), "cup, spoon, plate, table"],
                 [str(examples["chelsea"]), "cat, wall, floor"]],
                inputs=[image, class_text], outputs=[status, overlay, slider, points, queries, note, seconds, share],
                fn=segment_example, cache_examples=True,
                cache_mode="lazy", label="Examples (scikit-image photos): click one", api_visibility="private",
                elem_id="ov-examples")
    private = {"api_visibility": "private"}
    demo.load(openvocab_models_status, None, status_models, queue=False, show_progress="hidden", **private)
    preset.change(preset_text, preset, class_text, **private)
    method.change(toggle_two_stage, method, two_stage, **private)
    run.click(segment_open_vocab, [image, class_text, method, dense_method, switches, short_side, logit_scale,
                                   prob_thd, stages, scales, max_queries, grid, sam2_frame],
              outputs, api_name="segment_open_vocab", concurrency_limit=1)
    points.select(inspect_point, state, [points, inspect, inspect_text], **private)
    queries.select(inspect_row, state, [points, inspect, inspect_text], **private)


def segment_example(image, classes):
    """An example's cached result. Gradio caches neither a state, a component update nor an empty image, so: no
    session state (the query points cannot be clicked until the visitor presses Segment), the final map as a plain
    value, no selected-query panel, and the final map in place of the query points when there are none."""
    status, overlay, slider, points, queries, _inspect, note, seconds, share, _state = segment_open_vocab(image, classes)
    if isinstance(overlay, gr.AnnotatedImage):
        overlay = overlay.constructor_args.get("value")
    if points is None and slider is not None:
        points = slider[1]
    if queries is None:
        queries = pd.DataFrame(columns=ROW_COLUMNS)
    return status, overlay, slider, points, queries, note, seconds, share


def openvocab_models_status():
    """The tab's models and whether their weights are here, at page load."""
    return model_status(["openclip", "sam2"])
