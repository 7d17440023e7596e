"""Tab 1: prompted segmentation (drywall QA) over core.prompted.segmenter: a photo and text prompts -> one binary mask
per prompt, shown over the photo (fill and outline, opacity slider, before/after slider), as PNGs and a zip."""

from __future__ import annotations

import html

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from core.data.examples import example_images
from core.draw.overlay import colour, downscale, outlined
from core.errors import BadInput
from core.models.clipseg import SIZES
from core.prompted.batch import segment_files
from core.prompted.cleanup import Cleanup
from core.prompted.prompts import LABEL_PROMPTS, parse_prompts
from core.prompted.segmenter import available_models, check_threshold, load_segmenter, model_defaults
from demo.handling import gpu, guarded, loading_note, model_status, photo_input, request_dir

TABLE_COLUMNS = ["photo", "prompt", "coverage %", "seconds"]
VIEW_SIDE = 1280  # the displayed photo and masks, at most this a side (the PNGs keep the photo's size)
MODELS = ["clipseg"]


def _empty(message: str):
    return message, None, "", gr.update(choices=[], value=None, visible=False), [], \
        pd.DataFrame(columns=TABLE_COLUMNS), None, {}


def legend_html(prompts: list[str]) -> str:
    """The prompts in their masks' colours (the order of core.draw.overlay.colour)."""
    items = "".join(
        f'<span style="display:inline-flex;align-items:center;margin:0 14px 4px 0;white-space:nowrap">'
        f'<span style="width:14px;height:14px;border-radius:3px;margin-right:6px;background:rgb{colour(i)}">'
        f"</span>{html.escape(p)}</span>" for i, p in enumerate(prompts))
    return f'<div class="seglab-legend" style="display:flex;flex-wrap:wrap">{items}</div>'


def _view(entry, opacity: float):
    """(photo, photo with masks) for the before/after slider."""
    photo, masks, _ = entry
    return photo, outlined(photo, masks, alpha=float(opacity), max_side=VIEW_SIDE)


@gpu
@guarded(_empty)
def segment_prompted(image, prompts="", labels=None, threshold=0.5, size=352, model="clipseg", ensemble=False,
                     opening_radius=0, closing_radius=0, min_region_px=0, more_images=None, opacity=0.5,
                     progress=gr.Progress()):
    """Segment a photo with text prompts (CLIPSeg). Returns a status line, the photo and the photo with one mask per
    prompt (filled and outlined), a legend, the photo shown, the binary masks as PNGs, a table of coverage and
    seconds per prompt, and a zip of every mask."""
    paths = ([image] if image else []) + [f if isinstance(f, str) else getattr(f, "name", str(f))
                                          for f in (more_images or [])]
    if not paths:
        raise BadInput("Upload a photo (or click an example).")
    prompt_list = parse_prompts(prompts or "", list(labels or []))
    threshold = check_threshold(threshold)
    note = loading_note([model or "clipseg"] if (model or "clipseg") == "clipseg" else [])
    progress(0.05, desc=note or "Loading the model")
    seg = load_segmenter(model or "clipseg")
    progress(0.2, desc=f"Segmenting {len(paths)} photo(s) × {len(prompt_list)} prompt(s)")
    out_dir = request_dir("masks_")
    res = segment_files(seg, paths, prompt_list, out_dir, threshold, int(size),
                        Cleanup(int(opening_radius or 0), int(closing_radius or 0), int(min_region_px or 0)),
                        bool(ensemble), zip_name="seglab_masks.zip")
    table = pd.DataFrame([[r["image"], r["prompt"], round(float(r["coverage_%"]), 1), round(float(r["seconds"]), 2)]
                          for r in res.rows], columns=TABLE_COLUMNS)
    lines = []
    if res.rows:
        n_img = len({r["image"] for r in res.rows})
        lines.append(f"Done: {len(res.rows)} mask(s) for {n_img} photo(s) and {len(prompt_list)} prompt(s), "
                     f"threshold {threshold}, model input {size} px.")
    lines += [f"**Error:** {e}" for e in res.errors]
    masks = [(str(p), p.name) for p in res.mask_paths]
    views = {pv.image_id: _small(pv) for pv in res.previews}
    first = next(iter(views), None)
    pick = gr.update(choices=list(views), value=first, visible=len(views) > 1)
    return ("\n\n".join(lines), _view(views[first], opacity) if first else None,
            legend_html(prompt_list) if first else "", pick, masks, table,
            str(res.zip_path) if res.zip_path else None, views)


def _small(preview):
    """What the session keeps to redraw: the photo and uint8 masks at most VIEW_SIDE a side."""
    photo, _ = downscale(preview.image, VIEW_SIDE)
    wh = (photo.shape[1], photo.shape[0])
    masks = [m if m.shape[:2] == photo.shape[:2] else np.asarray(Image.fromarray(m).resize(wh, Image.NEAREST))
             for m in preview.masks]
    return photo, masks, list(preview.prompts)


def redraw(image_id, opacity, views):
    entry = (views or {}).get(image_id)
    return _view(entry, opacity) if entry else None


def on_model_change(model):
    threshold, size = model_defaults(model or "clipseg")
    return threshold, size


def list_models():
    """Fine-tuned folders saved since the app started appear on the next page load."""
    return gr.update(choices=available_models())


def build(demo: gr.Blocks) -> None:
    examples = example_images()
    gr.Markdown("A photo and what to look for, in words → one mask per prompt (CLIPSeg). Made for drywall quality "
                "checks (cracks, taping areas); any prompt works.")
    status_models = gr.Markdown(elem_id="prompted-models")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            image = photo_input(label="Photo", elem_id="prompted-image", height=320)
            prompts = gr.Textbox(label="Prompts (one per line)", lines=3, elem_id="prompted-prompts",
                                 placeholder="segment crack\nsegment taping area",
                                 info="What to find, in words: each line gives one mask.")
            labels = gr.CheckboxGroup(list(LABEL_PROMPTS), value=[], label="Drywall labels (optional)",
                                      elem_id="prompted-labels",
                                      info="Adds the prompts of the drywall QA data: crack → 'segment crack', "
                                           "taping_area → 'segment taping area'.")
            run = gr.Button("Segment", variant="primary", elem_id="prompted-run")
            with gr.Accordion("Settings", open=False, elem_id="prompted-settings"):
                threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Threshold", elem_id="prompted-threshold",
                                      info="A pixel is in the mask when its probability is at least this. 0.5 is "
                                           "CLIPSeg's default; lower it when thin cracks are missed.")
                size = gr.Radio(list(SIZES), value=352, label="Model input size (px)",
                                info="352 is CLIPSeg's published size; 512 sees thinner cracks and is slower.")
                model = gr.Dropdown(available_models(), value="clipseg", label="Model",
                                    info="CLIPSeg from the hub, or a fine-tuned copy saved under models/ (it brings "
                                         "its own tuned threshold and size).")
                ensemble = gr.Checkbox(label="Average a label's synonyms", value=False,
                                       info="With drywall labels: the mean probability over each label's synonyms "
                                            "instead of its main prompt. Off by default.")
            with gr.Accordion("Clean-up of the masks (off by default)", open=False):
                open_r = gr.Number(0, label="Opening radius (px)", precision=0, minimum=0, maximum=50,
                                   info="Removes specks and thin spurs narrower than about twice this.")
                close_r = gr.Number(0, label="Closing radius (px)", precision=0, minimum=0, maximum=50,
                                    info="Fills gaps and holes narrower than about twice this.")
                min_px = gr.Number(0, label="Drop regions smaller than (px)", precision=0, minimum=0,
                                   info="Connected regions with fewer pixels are removed from the mask.")
            with gr.Accordion("Several photos at once", open=False, elem_id="prompted-more"):
                more = gr.File(label="More photos (segmented with the same prompts)", file_count="multiple",
                               file_types=["image"], elem_id="prompted-files")
        with gr.Column(scale=2, min_width=300):
            status = gr.Markdown(label="Status", elem_id="prompted-status")
            view = gr.ImageSlider(label="Photo ↔ masks (drag the handle)", format="png", elem_id="prompted-view",
                                  height=460, max_height=460, interactive=False)
            legend = gr.HTML(label="Legend", elem_id="prompted-legend")
            with gr.Row():
                opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Mask opacity", elem_id="prompted-opacity",
                                    info="0 shows the photo with outlines only.", min_width=200)
                pick = gr.Dropdown([], label="Photo shown", elem_id="prompted-pick", visible=False, min_width=200)
            views = gr.State({}, time_to_live=1800)
            masks = gr.Gallery(label="Binary masks (PNG, the photo's size)", format="png", columns=4, height=220,
                               elem_id="prompted-masks")
            table = gr.Dataframe(label="Coverage and time per prompt", headers=TABLE_COLUMNS, interactive=False,
                                 wrap=True, elem_id="prompted-table", column_widths=["30%", "40%", "15%", "15%"])
            download = gr.File(label="All masks (zip)", elem_id="prompted-zip")
    inputs = [image, prompts, labels, threshold, size, model, ensemble, open_r, close_r, min_px, more, opacity]
    outputs = [status, view, legend, pick, masks, table, download, views]
    gr.Examples(
        examples=[[str(examples["wall_crack"]), "", ["crack"]],
                  [str(examples["wall_seam"]), "", ["taping_area"]],
                  [str(examples["wall_crack_and_seam"]), "", ["crack", "taping_area"]],
                  [str(examples["coffee"]), "segment cup", []],
                  [str(examples["astronaut"]), "segment face", []]],
        inputs=[image, prompts, labels], outputs=example_outputs(outputs), fn=segment_example, cache_examples=True,
        cache_mode="lazy", label="Examples (drawn walls, scikit-image photos): click one", api_visibility="private",
        elem_id="prompted-examples")
    private = {"api_visibility": "private"}
    demo.load(prompted_models_status, None, status_models, queue=False, show_progress="hidden", **private)
    demo.load(list_models, None, model, queue=False, show_progress="hidden", **private)
    model.change(on_model_change, model, [threshold, size], **private)
    run.click(segment_prompted, inputs, outputs, api_name="segment_prompted", concurrency_limit=1)
    pick.change(redraw, [pick, opacity, views], view, **private)
    opacity.release(redraw, [pick, opacity, views], view, **private)


def example_outputs(outputs):
    """What an example's cached result fills: every output but the photo picker and the session state (Gradio
    cannot cache a component update or a state)."""
    status, view, legend, pick, masks, table, download, views = outputs
    return [status, view, legend, masks, table, download]


def segment_example(image, prompts, labels):
    status, view, legend, pick, masks, table, download, views = segment_prompted(image, prompts, labels)
    return status, view, legend, masks, table, download


def prompted_models_status():
    """The tab's models and whether their weights are here, at page load."""
    return model_status(MODELS)
