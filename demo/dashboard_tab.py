"""Tab 4: the dashboard over every stored run. It opens on a leaderboard (one task and dataset, ranked) with that
selection's charts; below: all runs (filters, sort, columns, CSV), run against run, one run's record.

Public API (plain JSON, numbers as numbers): leaderboard, runs_table, run_record, compare_runs, export_csv. Every UI
event is private, so the API stays these five whatever the layout becomes."""

from __future__ import annotations

import functools
from urllib.parse import quote

import gradio as gr
import pandas as pd

from core.errors import BadInput, SegLabError
from core.results import charts
from core.results.leaderboard import datasets_of, default_view, leaderboard as ranked, leaderboard_rows, metrics_of
from core.results.naming import dataset_name, metric_name, provenance_label, task_name
from core.results.runs import DEFAULT_COLUMNS, compare, filter_runs, load_runs, provenance_text, sort_runs
from core.results.views import (COLUMN_NAMES, COMPARE_COLUMNS, compare_display, compare_json, plain, problems_text,
                                readable_table, results_root, run_json, shade_reported, shown_columns, status_text)
from demo.handling import guarded, request_dir

API = ("leaderboard", "runs_table", "run_record", "compare_runs", "export_csv")
COMPARE_WIDTHS = ["19%", "21%", "12%", "12%", "18%", "18%"]
CSS = """<style>
#dash-table [aria-label="Open cell menu"] { display: none; }  /* sorting is the Sort by picker's: the CSV follows it */
#lb-table .body-cell *, #dash-table .body-cell *, #dash-compare .body-cell * { font-family: var(--font); }
#lb-summary p { font-size: 1.15em; color: var(--body-text-color); margin: 0; }
@media (max-width: 600px) { #lb-table, #dash-table { font-size: 13px; } }
</style>"""


# A plot drawn while its tab was hidden keeps plotly's default 700 px until the window resizes: say it did.
RESIZE = {"fn": None, "js": "() => { setTimeout(() => window.dispatchEvent(new Event('resize')), 120); }",
          "api_visibility": "private", "show_progress": "hidden"}


def _runs():
    return load_runs(results_root())


def _api(fn):
    """A SegLab error reaches an API client as its message (gradio_client raises it), never as a traceback."""
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SegLabError as exc:
            raise gr.Error(str(exc)) from None
    return inner


# --- public API -------------------------------------------------------------------------------------------------

def leaderboard(task: str = "", dataset: str = "", metric: str = "miou") -> dict:
    """One task and one dataset, runs ranked by a metric (its direction: higher mIoU, lower seconds is better).

    Parameters:
        task: 'prompted', 'openvocab' or 'video'; empty: the task and dataset with the most runs
        dataset: a dataset key such as 'coco_stuff164k'; empty: the task's dataset with the most runs
        metric: the ranking metric (e.g. 'miou'); one the runs do not have falls back to the first they have
    Returns: {summary, task, dataset, metric, runs: [{rank, run, method, provenance, source_url, <metrics as
    fractions>, s_per_image, device}]}
    """
    runs = _runs()
    if not task:
        task, dataset = default_view(runs)
    elif not dataset:
        dataset = next(iter(datasets_of(runs, task)), None)
    if task is None:
        return {"summary": "No stored runs.", "task": None, "dataset": None, "metric": metric, "runs": []}
    metrics = metrics_of(runs, task, dataset) or ["s_per_image"]
    metric = metric if metric in metrics else metrics[0]
    _, _, summary = ranked(runs, task, dataset, metric)
    return {"summary": summary, "task": task, "dataset": dataset, "metric": metric,
            "runs": leaderboard_rows(runs, task, dataset, metric)}


def runs_table(task: list[str] | None = None, dataset: list[str] | None = None, provenance: list[str] | None = None,
               search: str = "", sort_by: str = "", descending: bool = False) -> dict:
    """Every stored run that passes the filters, in the table's order.

    Parameters:
        task: tasks to keep (empty: all)
        dataset: dataset keys to keep (empty: all)
        provenance: 'measured' and/or 'reported' (empty: both)
        search: text found in the run's name, key or method (any case)
        sort_by: a column to sort by (e.g. 'miou', 's_per_image'); empty: the stored order
        descending: largest first
    Returns: {status, shown, total, runs: [one object per run; numbers as numbers, null when missing]}
    """
    runs = _runs()
    table = sort_runs(filter_runs(runs.table, task, dataset, None, None, provenance, search), sort_by, descending)
    return {"status": status_text(runs, table, sort_by, descending), "shown": len(table), "total": len(runs.table),
            "runs": plain(table)}


def run_record(key: str) -> dict:
    """One run: its name, provenance (with the public source for published figures), a link, and the whole record.

    Parameters:
        key: the run's key, its path below results/ without .json (e.g. 'runs/zero_shot')
    """
    return run_json(_runs(), key)


def compare_runs(key_a: str, key_b: str) -> dict:
    """Every metric two runs share: A, B, B − A, and which run is better in that metric's direction.

    Parameters:
        key_a: run A's key
        key_b: run B's key
    """
    return compare_json(_runs(), key_a, key_b)


def export_csv(task: list[str] | None = None, dataset: list[str] | None = None, provenance: list[str] | None = None,
               search: str = "", sort_by: str = "", descending: bool = False) -> gr.FileData:
    """The runs table as CSV, with the same filters and order as runs_table (every column, numbers unformatted)."""
    runs = _runs()
    table = sort_runs(filter_runs(runs.table, task, dataset, None, None, provenance, search), sort_by, descending)
    if table.empty:
        raise BadInput("Nothing to export: no run matches the filters.")
    path = request_dir("runs_") / "seglab_runs.csv"
    table.to_csv(path, index=False)
    return gr.FileData(path=str(path), orig_name="seglab_runs.csv")


# --- the leaderboard and its charts (UI) ------------------------------------------------------------------------

def _seconds_short(text: str) -> str:
    return text.replace("(cuda (", "(").replace("))", ")")


def _leaderboard_view(runs, task, dataset, metric):
    table, best, summary = ranked(runs, task, dataset, metric)
    links = [provenance_label(runs.records[k]) for k in table["run"]]
    table = table.assign(provenance=[f"[{label}]({url})" if url else label for label, url in links])
    if "s / image" in table.columns:
        table["s / image"] = table["s / image"].map(_seconds_short)
    table, best = table.drop(columns=["run"]).rename(columns={"rank": "#"}), best.drop(columns=["run"])
    best.columns = table.columns
    styled = table.style.apply(lambda col: ["font-weight: 700" if b else "" for b in best[col.name]], axis=0)
    types = ["number"] + ["str"] * (len(table.columns) - 2) + ["markdown"]
    # narrow enough that rank, method and the first metric fit a phone's width; the rest scrolls inside the table
    widths = ["34px", "40%"] + ["64px" if c != "s / image" else "104px" for c in table.columns[2:-1]] + ["30%"]
    return summary, gr.Dataframe(value=styled, datatype=types, column_widths=widths)


def render_view(task, dataset, metric, scope):
    """Leaderboard, summary and every chart of one task and dataset; chart tabs without data are hidden."""
    runs = _runs()
    if not task or not dataset:
        task, dataset = default_view(runs)
    metrics = metrics_of(runs, task, dataset) or ["s_per_image"]
    metric = metric if metric in metrics else metrics[0]
    if task is None:
        empty = charts.empty("", "No stored runs yet.")
        return ("No stored runs yet: `python -m core import-reported` adds the published ones.", pd.DataFrame(),
                gr.update(choices=[], value=None), gr.update(choices=[], value=None), empty, empty, empty, empty,
                empty, empty, *(gr.update(visible=False),) * 5)
    summary, table = _leaderboard_view(runs, task, dataset, metric)
    here, whole_task = charts.select(runs, task, dataset), charts.select(runs, task)
    have = charts.scopes(here)
    scope = scope if scope in have else (have[0] if have else None)
    quality = charts.speed_quality(here, metric)
    return (summary, table, gr.update(choices=[(metric_name(m), m) for m in metrics], value=metric),
            gr.update(choices=[(charts.SCOPES[s], s) for s in have], value=scope, visible=len(have) > 1),
            charts.per_run(here, metric), charts.breakdown(here, metric, scope), charts.speeds(whole_task),
            gr.update(value=quality, visible=bool(quality.data)),
            charts.sweeps(here), charts.training(here),
            gr.update(visible=bool(have)), gr.update(visible=charts.has_speeds(whole_task)),
            gr.update(visible=charts.has_sweeps(here)), gr.update(visible=charts.has_training(here)),
            gr.update(visible=True))


def open_view():
    """On page load: the pickers as the stored runs are now (new files appear without a restart), then the view."""
    runs = _runs()
    task, dataset = default_view(runs)
    tasks = sorted(set(runs.table["task"].dropna()))
    return (gr.update(choices=[(task_name(t), t) for t in tasks], value=task),
            gr.update(choices=[(dataset_name(d), d) for d in datasets_of(runs, task)], value=dataset),
            *render_view(task, dataset, "miou", None))


def pick_task(task, metric, scope):
    datasets = datasets_of(_runs(), task)
    first = datasets[0] if datasets else None
    return (gr.update(choices=[(dataset_name(d), d) for d in datasets], value=first),
            *render_view(task, first, metric, scope))


# --- all runs, run against run, one run (UI) --------------------------------------------------------------------

def render_all(task, dataset, provenance, search, sort_by, descending, columns):
    """The runs table, its status line; a CSV exported before no longer matches it, so it goes."""
    runs = _runs()
    table = sort_runs(filter_runs(runs.table, task, dataset, None, None, provenance, search), sort_by or None,
                      bool(descending))
    status = status_text(runs, table, sort_by, descending)
    warning = problems_text(runs)
    shown = readable_table(table, columns or DEFAULT_COLUMNS)
    widths = ["36%" if c == "method" else "110px" if c in ("source", "dataset", "task") else "76px"
              for c in shown_columns(table, columns)]  # the method and the first metrics fit a phone
    styled = shade_reported(shown, list(table["provenance"] == "reported"))
    return (status + ("\n\n" + warning if warning else ""), gr.Dataframe(value=styled, column_widths=widths),
            gr.update(value=None, visible=False), "")


def export_ui(task, dataset, provenance, search, sort_by, descending):
    """The Export button: the CSV in the file box and a note beside it; the status line above the table stays."""
    try:
        f = export_csv(task, dataset, provenance, search, sort_by or "", bool(descending))
    except SegLabError as exc:
        return gr.update(value=None, visible=False), f"**{exc}**"
    n = len(pd.read_csv(f.path))
    order = f", sorted by {metric_name(sort_by)} {'descending' if descending else 'ascending'}" if sort_by else ""
    return gr.update(value=f.path, visible=True), f"Exported {n} runs{order}: every column, numbers unformatted."


def refresh_choices():
    """New files appear in every picker without a restart."""
    runs = _runs()
    t = runs.table
    keys = [(f"{m} · {dataset_name(d)} · {p}", k) for m, d, p, k in zip(t["method"], t["dataset"], t["provenance"], t["run"])]
    col = lambda c, name: gr.update(choices=[(name(v), v) for v in sorted(set(t[c].dropna()))])
    return (col("task", task_name), col("dataset", dataset_name), gr.update(choices=keys), gr.update(choices=keys),
            gr.update(choices=keys))


def _compare_error(message):
    return message, pd.DataFrame(columns=COMPARE_COLUMNS)


@guarded(_compare_error)
def compare_ui(a, b):
    if not a or not b:
        return "Pick two runs to compare.", pd.DataFrame(columns=COMPARE_COLUMNS)
    runs = _runs()
    ra, rb = runs.record(a), runs.record(b)
    delta = compare(ra, rb)
    head = (f"A: {provenance_text(a, ra)}\n\nB: {provenance_text(b, rb)}\n\n{len(delta)} shared metrics. B − A is "
            "green where B is better in that metric's direction (higher mIoU and Dice, lower seconds and memory) and "
            f"red where it is worse; percentages in points. [link to this comparison](?compare={quote(a)},{quote(b)})")
    if delta.empty:
        head += "\n\nThe two runs share no metric."
    return head, gr.Dataframe(value=compare_display(delta), column_widths=COMPARE_WIDTHS)


@guarded(lambda message: (message, {}))
def show_run(key):
    if not key:
        return "Pick a run to see where its numbers came from.", {}
    found = run_json(_runs(), key)
    return provenance_text(key, found["record"]) + f"\n\n[link to this run](?run={quote(key)})", found["record"]


def from_query(request: gr.Request):
    """`?run=KEY` opens the dashboard on that run; `?compare=A,B` on that comparison."""
    params = dict(request.query_params) if request is not None else {}
    run, pair = params.get("run"), params.get("compare", "")
    a, _, b = pair.partition(",")
    keep = gr.update()
    if not run and not pair:
        return (keep,) * 8
    cmp_out = compare_ui(a, b) if pair else (keep, keep)
    run_out = show_run(run) if run else (keep, keep)
    return (gr.Tabs(selected="dashboard"), gr.update(value=run) if run else keep,
            gr.update(value=a) if a else keep, gr.update(value=b) if b else keep, *cmp_out, *run_out)


def build(demo: gr.Blocks, tabs: gr.Tabs) -> None:
    runs = _runs()
    task0, dataset0 = default_view(runs)
    gr.HTML(CSS, js_on_load=None, elem_id="dash-css")
    gr.Markdown("### Leaderboard: which method is best on which data", elem_id="lb-heading")
    with gr.Row():
        lb_task = gr.Radio([(task_name(t), t) for t in sorted(set(runs.table["task"].dropna()))],
                           value=task0, label="Task", elem_id="lb-task", min_width=200)
        lb_dataset = gr.Dropdown([(dataset_name(d), d) for d in datasets_of(runs, task0)], value=dataset0,
                                 label="Dataset", elem_id="lb-dataset", min_width=200)
        lb_metric = gr.Dropdown([(metric_name(m), m) for m in metrics_of(runs, task0, dataset0)], value="miou",
                                label="Rank by", elem_id="lb-metric", min_width=200)
    lb_summary = gr.Markdown(elem_id="lb-summary")
    lb_table = gr.Dataframe(interactive=False, wrap=True, max_height=800, elem_id="lb-table",
                            label="Ranked runs: percentages, best of each column in bold, s / image with its device; "
                                  "provenance links to the published source")
    with gr.Tabs(elem_id="lb-charts") as chart_tabs:
        with gr.Tab("Per run", id="lb-tab-run") as tab_run:
            plot_run = gr.Plot(show_label=False, elem_id="lb-plot-run")
        # hidden until the first view says they have data (Gradio 6 can only hide a tab that started hidden)
        with gr.Tab("Breakdown", id="lb-tab-breakdown", visible=False) as tab_breakdown:
            scope = gr.Radio([], label="Breakdown over", elem_id="lb-scope")
            plot_breakdown = gr.Plot(show_label=False, elem_id="lb-plot-breakdown")
        with gr.Tab("Speed", id="lb-tab-speed", visible=False) as tab_speed:
            plot_speeds = gr.Plot(show_label=False, elem_id="lb-plot-speeds")
            plot_quality = gr.Plot(show_label=False, elem_id="lb-plot-quality")
        with gr.Tab("Threshold", id="lb-tab-threshold", visible=False) as tab_threshold:
            plot_sweeps = gr.Plot(show_label=False, elem_id="lb-plot-sweeps")
        with gr.Tab("Training", id="lb-tab-training", visible=False) as tab_training:
            plot_training = gr.Plot(show_label=False, elem_id="lb-plot-training")
    view_out = [lb_summary, lb_table, lb_metric, scope, plot_run, plot_breakdown, plot_speeds, plot_quality,
                plot_sweeps, plot_training, tab_breakdown, tab_speed, tab_threshold, tab_training, tab_run]
    private = {"api_visibility": "private", "show_progress": "hidden"}
    demo.load(open_view, None, [lb_task, lb_dataset, *view_out], **private)
    lb_task.input(pick_task, [lb_task, lb_metric, scope], [lb_dataset, *view_out], **private).then(**RESIZE)
    for comp in (lb_dataset, lb_metric, scope):
        comp.input(render_view, [lb_task, lb_dataset, lb_metric, scope], view_out, **private).then(**RESIZE)
    chart_tabs.select(**RESIZE)

    gr.Markdown("### All runs")
    with gr.Row():
        refresh = gr.Button("Refresh", scale=0, min_width=120, size="sm", elem_id="dash-refresh")
        status = gr.Markdown(elem_id="dash-status")
    with gr.Row():
        task = gr.Dropdown([], multiselect=True, label="Task", elem_id="dash-task", min_width=200)
        dataset = gr.Dropdown([], multiselect=True, label="Dataset", elem_id="dash-dataset", min_width=200)
        provenance = gr.CheckboxGroup(["measured", "reported"], label="Provenance", elem_id="dash-provenance",
                                      min_width=200)
    with gr.Row():
        search = gr.Textbox(label="Search names", placeholder="e.g. e16_512 or NACLIP", elem_id="dash-search",
                            min_width=200)
        columns_all = list(runs.table.columns)
        sort_by = gr.Dropdown([("stored order", "")] + [(COLUMN_NAMES.get(c, metric_name(c)), c) for c in columns_all],
                              value="", label="Sort by", elem_id="dash-sort", min_width=160)
        descending = gr.Checkbox(False, label="Descending", elem_id="dash-descending", min_width=120)
    with gr.Accordion("Columns", open=False):
        columns = gr.CheckboxGroup([(COLUMN_NAMES.get(c, metric_name(c)), c) for c in columns_all],
                                   value=[c for c in DEFAULT_COLUMNS if c in columns_all], label="Columns shown",
                                   elem_id="dash-columns")
    table = gr.Dataframe(label="Runs (reported rows shaded)", interactive=False, max_height=460, elem_id="dash-table",
                         wrap=True)
    with gr.Row():
        export = gr.Button("Export CSV (these runs, this order)", scale=0, min_width=200, size="sm",
                           elem_id="dash-export")
        export_note = gr.Markdown(elem_id="dash-export-note")
    export_file = gr.File(label="CSV", elem_id="dash-csv", visible=False)
    gr.Markdown("### Run against run")
    with gr.Row():
        run_a = gr.Dropdown([], value=None, label="Run A", elem_id="dash-run-a", allow_custom_value=True, min_width=200)
        run_b = gr.Dropdown([], value=None, label="Run B", elem_id="dash-run-b", allow_custom_value=True, min_width=200)
    compare_text = gr.Markdown(elem_id="dash-compare-text")
    compare_table = gr.Dataframe(headers=COMPARE_COLUMNS, interactive=False, elem_id="dash-compare", max_height=480,
                                 wrap=True, column_widths=COMPARE_WIDTHS)
    gr.Markdown("### One run: provenance and record")
    detail_pick = gr.Dropdown([], value=None, label="Run", elem_id="dash-run", allow_custom_value=True)
    detail_text = gr.Markdown(elem_id="dash-run-text")
    detail_json = gr.JSON(label="Record")

    filters, all_out = [task, dataset, provenance, search, sort_by, descending], [status, table, export_file, export_note]
    for comp in (task, dataset, provenance, sort_by, descending, columns):
        comp.change(render_all, [*filters, columns], all_out, **private)
    search.submit(render_all, [*filters, columns], all_out, **private)
    pickers = [task, dataset, run_a, run_b, detail_pick]
    refresh.click(refresh_choices, None, pickers, **private).then(
        render_all, [*filters, columns], all_out, **private).then(
        render_view, [lb_task, lb_dataset, lb_metric, scope], view_out, **private)
    export.click(export_ui, filters, [export_file, export_note], **private)
    for comp in (run_a, run_b):
        comp.change(compare_ui, [run_a, run_b], [compare_text, compare_table], **private)
    detail_pick.change(show_run, detail_pick, [detail_text, detail_json], **private)
    demo.load(refresh_choices, None, pickers, **private)
    demo.load(render_all, [*filters, columns], all_out, **private)
    demo.load(from_query, None, [tabs, detail_pick, run_a, run_b, compare_text, compare_table, detail_text, detail_json],
              **private)
    for name in API:
        gr.api(_api(globals()[name]), api_name=name)
