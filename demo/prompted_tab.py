"""Tab 1: prompted segmentation (drywall QA) over core.prompted.segmenter."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from core.models.clipseg import SIZES
from core.errors import BadInput
from core.data.examples import example_images
from core.prompted.cleanup import Cleanup
from core.prompted.segmenter import available_models, check_threshold, load_segmenter, model_defaults
from core.prompted.batch import segment_files
from core.prompted.prompts import LABEL_PROMPTS, parse_prompts
from demo.handling import guarded, request_dir

TABLE_COLUMNS = ["image", "prompt", "file", "coverage_%", "seconds", "encode_s", "threshold", "size"]


def _empty(message: str):
    return message, None, gr.update(choices=[], value=None), [], pd.DataFrame(columns=TABLE_COLUMNS), None, {}


def annotated(preview) -> tuple:
    """AnnotatedImage value: the image and one (mask, prompt) pair per prompt; the legend comes with it."""
    return preview.image, [((m > 0).astype(float), p) for m, p in zip(preview.masks, preview.prompts)]


@guarded(_empty)
def run_segmentation(files, labels, prompt_text, ensemble, threshold, size, model, open_r, close_r, min_px):
    paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
    if not paths:
        raise BadInput("Upload at least one image (or click an example).")
    prompts = parse_prompts(prompt_text or "", list(labels or []))
    threshold = check_threshold(threshold)
    seg = load_segmenter(model or "clipseg")
    out_dir = request_dir("masks_")
    res = segment_files(seg, paths, prompts, out_dir, threshold, int(size),
                        Cleanup(int(open_r or 0), int(close_r or 0), int(min_px or 0)), bool(ensemble),
                        zip_name="seglab_masks.zip")
    table = pd.DataFrame(res.rows, columns=TABLE_COLUMNS)
    lines = []
    if res.rows:
        n_img = len({r["image"] for r in res.rows})
        lines.append(f"Done: {len(res.rows)} mask(s) for {n_img} image(s) and {len(prompts)} prompt(s), "
                     f"threshold {threshold}, size {size}.")
    lines += [f"**Error:** {e}" for e in res.errors]
    masks = [(str(p), p.name) for p in res.mask_paths]
    views = {pv.image_id: annotated(pv) for pv in res.previews}
    first = next(iter(views), None)
    return ("\n\n".join(lines), views.get(first), gr.update(choices=list(views), value=first), masks, table,
            str(res.zip_path) if res.zip_path else None, views)


def show_image(image_id, views):
    return (views or {}).get(image_id)


def on_model_change(model):
    threshold, size = model_defaults(model or "clipseg")
    return threshold, size


def list_models():
    """Fine-tuned folders saved since the app started appear on the next page load."""
    return gr.update(choices=available_models())


def build(demo: gr.Blocks) -> None:
    examples = example_images()
    with gr.Row():
        with gr.Column(scale=1):
            files = gr.File(label="Images (one or several)", file_count="multiple", elem_id="prompted-files")
            labels = gr.CheckboxGroup(list(LABEL_PROMPTS), value=["crack"], label="Labels",
                                      info="crack → 'segment crack'; taping_area → 'segment taping area'")
            prompt_text = gr.Textbox(label="Prompts (one per line)", lines=3, elem_id="prompted-prompts",
                                     placeholder="segment crack\nsegment drywall seam")
            ensemble = gr.Checkbox(label="Ensemble a label's synonyms (mean probability)", value=False)
            with gr.Row():
                threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Threshold")
                size = gr.Radio(list(SIZES), value=352, label="Model input size")
            model = gr.Dropdown(available_models(), value="clipseg", label="Model",
                                info="hub CLIPSeg, or a fine-tuned folder under models/")
            with gr.Accordion("Clean-up (off by default)", open=False):
                open_r = gr.Number(0, label="Opening radius (px)", precision=0, minimum=0, maximum=50)
                close_r = gr.Number(0, label="Closing radius (px)", precision=0, minimum=0, maximum=50)
                min_px = gr.Number(0, label="Drop components smaller than (px)", precision=0, minimum=0)
            run = gr.Button("Segment", variant="primary", elem_id="prompted-run")
        with gr.Column(scale=2):
            status = gr.Markdown(elem_id="prompted-status")
            overlay = gr.AnnotatedImage(label="Overlay (hover a legend entry to highlight it)", format="png",
                                        elem_id="prompted-overlay")
            pick = gr.Dropdown([], label="Image shown", elem_id="prompted-pick")
            views = gr.State({})
            masks = gr.Gallery(label="Binary masks", format="png", columns=4, height=220, elem_id="prompted-masks")
            table = gr.Dataframe(label="Coverage and time per prompt", headers=TABLE_COLUMNS, interactive=False)
            download = gr.File(label="Download all masks (zip)", elem_id="prompted-zip")
    gr.Examples(
        examples=[[[str(examples["wall_crack"])], ["crack"], ""],
                  [[str(examples["wall_seam"])], ["taping_area"], ""],
                  [[str(examples["wall_crack_and_seam"])], ["crack", "taping_area"], ""],
                  [[str(examples["coffee"])], [], "segment cup\nsegment spoon"],
                  [[str(examples["astronaut"]), str(examples["chelsea"])], [], "segment face"]],
        inputs=[files, labels, prompt_text], label="Examples (drawn walls, scikit-image photos)",
        api_name="prompted_load_example",
    )
    model.change(on_model_change, model, [threshold, size], api_name="prompted_model_defaults")
    demo.load(list_models, None, model, api_name="prompted_models")
    run.click(run_segmentation,
              [files, labels, prompt_text, ensemble, threshold, size, model, open_r, close_r, min_px],
              [status, overlay, pick, masks, table, download, views], api_name="segment", concurrency_limit=1)
    pick.change(show_image, [pick, views], overlay, api_name="prompted_show_image")
