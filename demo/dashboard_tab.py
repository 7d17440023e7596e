"""Tab 4: the dashboard over every stored run (core.results.runs, core.results.charts)."""

from __future__ import annotations

from urllib.parse import quote

import gradio as gr
import pandas as pd

from core.results import charts as run_charts
from core.errors import BadInput
from core.results.views import choices, colour_deltas, display_table, problems_text, results_root, shade_reported
from core.results.leaderboard import dataset_name, default_view, leaderboard
from core.results.runs import DEFAULT_COLUMNS, compare, filter_runs, load_runs, provenance_text
from demo.handling import guarded, request_dir

METRICS = ["miou", "dice", "pixel_accuracy"]
SCOPES = ["per_prompt", "per_label", "per_class"]


def _selected(runs, filters):
    table = filter_runs(runs.table, *filters)
    return table, {k: runs.records[k] for k in table["run"]}


def render(task, dataset, split, model, provenance, search, columns, metric, scope):
    runs = load_runs(results_root())
    table, records = _selected(runs, (task, dataset, split, model, provenance, search))
    summary = (f"{len(table)} of {len(runs.table)} runs shown "
               f"({(table['provenance'] == 'measured').sum()} measured, {(table['provenance'] == 'reported').sum()} "
               "reported; reported rows are shaded and marked ◇ in charts).")
    warning = problems_text(runs)
    return (
        summary + ("\n\n" + warning if warning else ""),
        shade_reported(display_table(table, columns)),
        run_charts.headline(records, metric),
        run_charts.sweeps(records),
        run_charts.speed_quality(table, metric),
        run_charts.breakdown(records, scope, metric),
        run_charts.training(records),
        run_charts.video(records),
    )


def render_leaderboard(task, dataset, metric="miou"):
    """The first view: one task and one dataset, ranked; the best value of each column in bold."""
    runs = load_runs(results_root())
    if not task or not dataset:
        task, dataset = default_view(runs)
    if task is None:
        return "No stored runs yet: `python -m core import-reported` adds the published ones.", pd.DataFrame()
    table, best, summary = leaderboard(runs, task, dataset, metric or "miou")
    table, best = table.drop(columns=["run"]), best.drop(columns=["run"])  # keys stay in "All runs" and links
    styled = table.style.apply(lambda col: ["font-weight: 700" if b else "" for b in best[col.name]], axis=0)
    return f"**{summary}**", styled


def leaderboard_choices(task):
    """Datasets of the chosen task, the one with most runs first."""
    runs = load_runs(results_root())
    t = runs.table[runs.table["task"] == task] if task else runs.table
    ordered = t["dataset"].dropna().value_counts().index.tolist()
    return gr.update(choices=[(dataset_name(d), d) for d in ordered], value=ordered[0] if ordered else None)


def refresh_choices():
    """New files appear in every picker without a restart."""
    runs = load_runs(results_root())
    keys = list(runs.records)
    upd = lambda col: gr.update(choices=choices(runs, col))
    return (upd("task"), upd("dataset"), upd("split"), upd("model"), gr.update(choices=keys),
            gr.update(choices=keys), gr.update(choices=keys))


def export_csv(task, dataset, split, model, provenance, search):
    runs = load_runs(results_root())
    table, _ = _selected(runs, (task, dataset, split, model, provenance, search))
    if table.empty:
        raise BadInput("Nothing to export: no run matches the filters.")
    path = request_dir("runs_") / "seglab_runs.csv"
    table.to_csv(path, index=False)
    return str(path), f"Exported {len(table)} runs."


def _export_error(message):
    return None, message


def _compare_error(message):
    return message, pd.DataFrame(columns=["scope", "key", "metric", "a", "b", "delta"])


@guarded(_compare_error)
def compare_runs(a, b):
    if not a or not b:
        return "Pick two runs to compare.", pd.DataFrame(columns=["scope", "key", "metric", "a", "b", "delta"])
    runs = load_runs(results_root())
    ra, rb = runs.record(a), runs.record(b)
    delta = compare(ra, rb)
    link = f"[link to this comparison](?compare={quote(a)},{quote(b)})"
    head = (f"A: {provenance_text(a, ra)}\n\nB: {provenance_text(b, rb)}\n\n"
            f"{len(delta)} shared metrics; delta = B − A (green up, red down). {link}")
    if delta.empty:
        head += "\n\nThe two runs share no metric."
    return head, colour_deltas(delta)


@guarded(lambda message: (message, {}))
def show_run(key):
    if not key:
        return "Pick a run to see where its numbers came from.", {}
    runs = load_runs(results_root())
    rec = runs.record(key)
    return provenance_text(key, rec) + f"\n\n[link to this run](?run={quote(key)})", rec


def from_query(request: gr.Request):
    """`?run=KEY` opens the dashboard on that run; `?compare=A,B` on that comparison."""
    params = dict(request.query_params) if request is not None else {}
    run, pair = params.get("run"), params.get("compare", "")
    a, _, b = pair.partition(",")
    keep = gr.update()
    if not run and not pair:
        return (keep,) * 8
    cmp_out = compare_runs(a, b) if pair else (keep, keep)
    run_out = show_run(run) if run else (keep, keep)
    return (gr.Tabs(selected="dashboard"), gr.update(value=run) if run else keep,
            gr.update(value=a) if a else keep, gr.update(value=b) if b else keep, *cmp_out, *run_out)


def build(demo: gr.Blocks, tabs: gr.Tabs) -> None:
    runs = load_runs(results_root())
    keys = list(runs.records)
    first_task, first_dataset = default_view(runs)
    gr.Markdown("### Leaderboard: which method is best on which data")
    with gr.Row():
        lb_task = gr.Radio(choices(runs, "task"), value=first_task, label="Task", elem_id="lb-task")
        lb_dataset = gr.Dropdown([(dataset_name(d), d) for d in choices(runs, "dataset")], value=first_dataset,
                                 label="Dataset", elem_id="lb-dataset")
        lb_metric = gr.Dropdown(METRICS, value="miou", label="Rank by", elem_id="lb-metric")
    lb_summary = gr.Markdown(elem_id="lb-summary")
    lb_table = gr.Dataframe(interactive=False, wrap=True, max_height=480, elem_id="lb-table",
                            label="Ranked runs (percentages; best of each column in bold; s / image with its device)")
    lb_task.change(leaderboard_choices, lb_task, lb_dataset, api_visibility="private")
    lb_dataset.change(render_leaderboard, [lb_task, lb_dataset, lb_metric], [lb_summary, lb_table],
                      api_name="leaderboard")
    lb_metric.change(render_leaderboard, [lb_task, lb_dataset, lb_metric], [lb_summary, lb_table],
                     api_visibility="private")
    demo.load(render_leaderboard, [lb_task, lb_dataset, lb_metric], [lb_summary, lb_table], api_visibility="private")
    gr.Markdown("### All runs")
    with gr.Row():
        refresh = gr.Button("Refresh", scale=0, min_width=120, size="sm", elem_id="dash-refresh")
        status = gr.Markdown(elem_id="dash-status")
    with gr.Row():
        task = gr.Dropdown(choices(runs, "task"), multiselect=True, label="Task", elem_id="dash-task")
        dataset = gr.Dropdown(choices(runs, "dataset"), multiselect=True, label="Dataset")
        split = gr.Dropdown(choices(runs, "split"), multiselect=True, label="Split")
        model = gr.Dropdown(choices(runs, "model"), multiselect=True, label="Model")
        provenance = gr.CheckboxGroup(["measured", "reported"], label="Provenance", elem_id="dash-provenance")
    search = gr.Textbox(label="Search run names", placeholder="e.g. e16_512", elem_id="dash-search")
    with gr.Accordion("Columns", open=False):
        columns = gr.CheckboxGroup(list(runs.table.columns), value=DEFAULT_COLUMNS, label="Columns shown")
    table = gr.Dataframe(label="Runs (sort or filter from a column's ⋮ menu; reported rows shaded)", interactive=False, show_search="search",
                         max_height=420, elem_id="dash-table", wrap=True)
    with gr.Row():
        export = gr.Button("Export CSV (filtered)", scale=0, min_width=200, size="sm", elem_id="dash-export")
        export_file = gr.File(label="CSV", elem_id="dash-csv", scale=1, height=80)
    with gr.Row():
        metric = gr.Dropdown(METRICS, value="miou", label="Metric for the charts")
        scope = gr.Dropdown(SCOPES, value="per_prompt", label="Breakdown heatmap over")
    with gr.Tabs():
        with gr.Tab("Per run"):
            headline = gr.Plot(elem_id="dash-headline")
        with gr.Tab("Threshold"):
            sweep = gr.Plot()
        with gr.Tab("Speed vs quality"):
            speed = gr.Plot()
        with gr.Tab("Breakdown"):
            heat = gr.Plot()
        with gr.Tab("Training"):
            train = gr.Plot()
        with gr.Tab("Video"):
            video = gr.Plot()
    gr.Markdown("### Run against run")
    with gr.Row():
        run_a = gr.Dropdown(keys, value=None, label="Run A", elem_id="dash-run-a", allow_custom_value=True)
        run_b = gr.Dropdown(keys, value=None, label="Run B", elem_id="dash-run-b", allow_custom_value=True)
    compare_text = gr.Markdown(elem_id="dash-compare-text")
    compare_table = gr.Dataframe(headers=["scope", "key", "metric", "a", "b", "delta"], interactive=False,
                                 elem_id="dash-compare", max_height=420)
    gr.Markdown("### One run: provenance and record")
    detail_pick = gr.Dropdown(keys, value=None, label="Run", elem_id="dash-run", allow_custom_value=True)
    detail_text = gr.Markdown(elem_id="dash-run-text")
    detail_json = gr.JSON(label="Record")

    inputs = [task, dataset, split, model, provenance, search, columns, metric, scope]
    outputs = [status, table, headline, sweep, speed, heat, train, video]
    named = {"task": task, "dataset": dataset, "split": split, "model": model, "provenance": provenance,
             "columns": columns, "metric": metric, "scope": scope}
    for name, comp in named.items():
        comp.change(render, inputs, outputs, api_name=f"dashboard_on_{name}", show_progress="hidden")
    search.submit(render, inputs, outputs, api_name="dashboard_search")
    refresh.click(refresh_choices, None, [task, dataset, split, model, run_a, run_b, detail_pick],
                  api_name="dashboard_choices").then(render, inputs, outputs, api_name="dashboard_refresh")
    export.click(guarded(_export_error)(export_csv), [task, dataset, split, model, provenance, search],
                 [export_file, status], api_name="dashboard_export")
    for comp in (run_a, run_b):
        comp.change(compare_runs, [run_a, run_b], [compare_text, compare_table],
                    api_name="dashboard_compare" if comp is run_a else "dashboard_compare_b")
    detail_pick.change(show_run, detail_pick, [detail_text, detail_json], api_name="dashboard_run")
    demo.load(refresh_choices, None, [task, dataset, split, model, run_a, run_b, detail_pick],
              api_name="dashboard_load_choices")
    demo.load(render, inputs, outputs, api_name="dashboard_render")
    demo.load(from_query, None, [tabs, detail_pick, run_a, run_b, compare_text, compare_table, detail_text, detail_json],
              api_name="dashboard_from_query")
