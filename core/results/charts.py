"""Plotly figures over the runs of one task and one dataset (never several tasks on one axis).

Every figure fits its container's width (no fixed width) and reads at 420 px: legends below the plot, run names
truncated on the axis with the full name, provenance and value on hover, axes that say which direction is better.
Reported runs are drawn hatched (bars) or as open symbols (points) everywhere."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.results.naming import (FRACTIONS, axis_title, better_sign, dataset_name, display_names, is_speed_only,
                                 metric_name, provenance_label)
from core.results.runs import Runs

MAX_RUNS = 40  # bars and heatmap rows beyond this are unreadable; the table holds the rest
MAX_COLUMNS = 30  # heatmap labels or classes (the most frequent ones)
LABEL_CHARS = 28
SCOPES = {"per_label": "per label", "per_class": "per class", "per_prompt": "per prompt"}
COLOURS = {"measured": "#1f6feb", "reported": "#c77c02", "speed": "#6e7781"}
PATTERN = {"measured": "", "reported": "/", "speed": "."}


def short_device(device: str | None) -> str:
    """'cuda (Colab T4)' -> 'T4', 'cuda (NVIDIA A100-SXM4-40GB)' -> 'A100-SXM4-40GB', 'cpu' -> 'cpu'."""
    if not device:
        return "?"
    inner = device[device.find("(") + 1: device.rfind(")")] if "(" in device and ")" in device else device
    words = [w for w in inner.split() if w not in {"NVIDIA", "GeForce", "Colab", "Tesla"}]
    return " ".join(words) or device


def short(text: str, n: int = LABEL_CHARS) -> str:
    """At most n characters; a ' · run id' that tells two runs apart is kept, the method before it shortened."""
    if len(text) <= n:
        return text
    head, sep, tail = text.rpartition(" · ")
    if sep and len(tail) < n - 6:
        return head[: n - len(tail) - 4].rstrip() + "…" + sep + tail
    return text[: n - 1].rstrip() + "…"


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    # the legend sits below the x axis's ticks and title: about 64 px under the plotting area, whatever its height
    below = -min(0.6, 64 / max(100, height - 170))
    fig.update_layout(title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}}, height=height,
                      autosize=True, margin={"l": 8, "r": 8, "t": 44, "b": 8, "autoexpand": True},
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": below, "yanchor": "top"},
                      font={"size": 12}, hoverlabel={"namelength": -1}, template="plotly_white")
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def empty(title: str, why: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False},
                      annotations=[{"text": why, "showarrow": False, "font": {"size": 13}}])
    return _layout(fig, title, 220)


def _check_one_task(records: dict[str, dict]) -> None:
    tasks = {r["task"] for r in records.values()}
    if len(tasks) > 1:
        raise ValueError(f"a chart holds one task, not {', '.join(sorted(tasks))}")


def select(runs: Runs, task: str | None, dataset: str | None = None) -> dict[str, dict]:
    """The records of one task (and one dataset, when given): what every chart draws."""
    t = runs.table[runs.table["task"] == task]
    if dataset is not None:
        t = t[t["dataset"] == dataset]
    return {k: runs.records[k] for k in t["run"]}


def kind(rec: dict) -> str:
    return "speed" if is_speed_only(rec) else rec["provenance"].get("kind", "measured")


def value(rec: dict, metric: str):
    """The run's overall metric (s_per_image: its timing), None when missing."""
    v = (rec["metrics"].get("overall") or {}).get(metric)
    if metric in ("s_per_image", "seconds_per_image"):
        v = (rec.get("timing") or {}).get("seconds_per_image")
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _shown(metric: str, v: float) -> float:
    return 100 * v if metric in FRACTIONS else v


def per_run(records: dict[str, dict], metric: str = "miou") -> go.Figure:
    """One horizontal bar per run for the metric, best on top (in the metric's direction)."""
    _check_one_task(records)
    title = f"{metric_name(metric)} per run"
    names = display_names(records)
    rows = [(k, r, value(r, metric)) for k, r in records.items()]
    rows = sorted([x for x in rows if x[2] is not None], key=lambda x: -better_sign(metric) * x[2])[:MAX_RUNS]
    if not rows:
        return empty(title, f"No run here has {metric_name(metric)}.")
    fig = go.Figure()
    for group in ("reported", "measured", "speed"):
        sel = [x for x in rows if kind(x[1]) == group]
        if not sel:
            continue
        fig.add_trace(go.Bar(
            y=[k for k, _, _ in sel], x=[_shown(metric, v) for _, _, v in sel], orientation="h", name=group,
            marker={"color": COLOURS[group], "pattern": {"shape": PATTERN[group]}},
            text=[f"{_shown(metric, v):.1f}" if metric in FRACTIONS else f"{v:.3g}" for _, _, v in sel],
            textposition="outside", cliponaxis=False,
            customdata=[[names[k], provenance_label(r)[0]] for k, r, _ in sel],
            hovertemplate="%{customdata[0]}<br>%{customdata[1]}<br>%{x:.4g}<extra></extra>"))
    keys = [k for k, _, _ in rows]
    fig.update_yaxes(categoryorder="array", categoryarray=keys[::-1], tickvals=keys,
                     ticktext=[short(names[k]) for k, _, _ in rows])
    top = max(_shown(metric, v) for _, _, v in rows)
    fig.update_xaxes(title_text=axis_title(metric), range=[0, top * 1.2 if top > 0 else 1])
    fig.update_layout(barmode="overlay", bargap=0.25)
    return _layout(fig, title, 140 + 30 * len(rows))


def scopes(records: dict[str, dict]) -> list[str]:
    """The breakdowns some run has, the one most runs have first."""
    count = {s: sum(bool(r["metrics"].get(s)) for r in records.values()) for s in SCOPES}
    return [s for s in sorted(SCOPES, key=lambda s: -count[s]) if count[s]]


def breakdown(records: dict[str, dict], metric: str = "miou", scope: str | None = None) -> go.Figure:
    """Heatmap of runs × labels (or classes, prompts); the scope defaults to the one with data."""
    _check_one_task(records)
    have = scopes(records)
    scope = scope if scope in have else (have[0] if have else "per_label")
    key = "iou" if scope == "per_class" and metric == "miou" else metric
    title = f"{metric_name(metric)} {SCOPES.get(scope, scope)}"
    data, weight = {}, {}
    for k, rec in list(records.items())[:MAX_RUNS]:
        row = {}
        for name, vals in (rec["metrics"].get(scope) or {}).items():
            v = (vals or {}).get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[name] = v
                weight[name] = weight.get(name, 0) + ((vals or {}).get("pixels") or (vals or {}).get("n") or 1)
        if row:
            data[k] = row
    if not data:
        return empty(title, f"No run here has {metric_name(metric)} {SCOPES.get(scope, scope)}.")
    columns = sorted(weight, key=lambda c: -weight[c])[:MAX_COLUMNS]
    if len(weight) > MAX_COLUMNS:
        title += f" ({MAX_COLUMNS} most frequent of {len(weight)})"
    columns = sorted(columns) if len(weight) <= MAX_COLUMNS else columns
    keys = list(data)
    z = [[_shown(key, data[k][c]) if c in data[k] else None for c in columns] for k in keys]
    every = display_names(records)
    names = [short(every[k], 22) for k in keys]
    labels = [short(c, 22) for c in columns]
    tall = len(columns) > len(keys)  # many classes: classes down the page, runs across
    if tall:
        z = [list(col) for col in zip(*z)]
    fig = go.Figure(go.Heatmap(
        z=z, x=names if tall else labels, y=labels if tall else names, colorscale="Viridis",
        text=[[f"{v:.1f}" if v is not None else "" for v in row] for row in z],
        texttemplate="%{text}" if len(z) * len(z[0]) <= 200 else None, hoverongaps=False,
        colorbar={"title": {"text": "%" if key in FRACTIONS else ""}, "thickness": 12},
        hovertemplate="%{y} · %{x}<br>%{z:.4g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-30 if tall else 0)
    return _layout(fig, title, 160 + 28 * len(z))


def speeds(records: dict[str, dict]) -> go.Figure:
    """Seconds per image of every run of one task that has it, fastest on top: published figures next to SegLab's
    own measurements (speed-only runs use random weights on a synthetic image), each bar saying which it is."""
    _check_one_task(records)
    title = "Seconds per image (lower is better)"
    names = display_names(records)
    rows = sorted([(k, r, value(r, "s_per_image")) for k, r in records.items()], key=lambda x: x[2] or 0)
    rows = [x for x in rows if x[2] is not None][:MAX_RUNS]
    if not rows:
        return empty(title, "No run of this task records its speed.")
    fig = go.Figure()
    groups = {"reported": "reported (published figure)", "measured": "measured by SegLab",
              "speed": "measured by SegLab, random weights, synthetic image"}
    for group in ("reported", "measured", "speed"):
        sel = [x for x in rows if kind(x[1]) == group]
        if sel:
            fig.add_trace(go.Bar(
                y=[k for k, _, _ in sel], x=[v for _, _, v in sel], orientation="h", name=groups[group],
                marker={"color": COLOURS[group], "pattern": {"shape": PATTERN[group]}},
                text=[f"{v:.3g} s ({short_device((r.get('timing') or {}).get('device'))})" for _, r, v in sel],
                textposition="outside", cliponaxis=False,
                customdata=[[names[k], provenance_label(r)[0], dataset_name(r["dataset"].get("name"))]
                            for k, r, _ in sel],
                hovertemplate="%{customdata[0]}<br>%{customdata[1]}<br>dataset: %{customdata[2]}<br>"
                              "%{x:.3g} s / image<extra></extra>"))
    keys = [k for k, _, _ in rows]
    fig.update_yaxes(categoryorder="array", categoryarray=keys[::-1], tickvals=keys,
                     ticktext=[short(names[k]) for k, _, _ in rows])
    low, high = math.log10(min(v for _, _, v in rows)), math.log10(max(v for _, _, v in rows))
    span = max(high - low, 0.5)  # room on the right for the longest bar's label
    fig.update_xaxes(title_text="s / image, log scale", type="log",
                     range=[low - 0.15 * span, high + 0.8 * span])
    fig.update_layout(barmode="overlay", bargap=0.25)
    return _layout(fig, title, 170 + 30 * len(rows))


def speed_quality(records: dict[str, dict], metric: str = "miou") -> go.Figure:
    """s / image (lower is better) against the metric, one point per run that has both."""
    _check_one_task(records)
    title = f"Speed against {metric_name(metric)}"
    names = display_names(records)
    pts = [(names[k], value(r, "s_per_image"), value(r, metric), r) for k, r in records.items()]
    pts = [p for p in pts if p[1] is not None and p[2] is not None]
    if not pts:
        return empty(title, f"No run here has both a speed and {metric_name(metric)}.")
    lo, hi = math.log10(min(p[1] for p in pts)), math.log10(max(p[1] for p in pts))
    fig = go.Figure()
    for group, symbol in (("reported", "diamond-open"), ("measured", "circle")):
        sel = [p for p in pts if kind(p[3]) == group]
        if sel:
            fig.add_trace(go.Scatter(
                x=[s for _, s, _, _ in sel], y=[_shown(metric, v) for _, _, v, _ in sel], name=group,
                mode="markers+text" if len(pts) <= 8 else "markers",
                textposition=[_side(s, lo, hi) for _, s, _, _ in sel],
                text=[short(n, 20) for n, _, _, _ in sel], textfont={"size": 10},
                marker={"symbol": symbol, "size": 12, "color": COLOURS[group], "line": {"width": 2}},
                customdata=[[n, (r.get("timing") or {}).get("device") or "?"] for n, _, _, r in sel],
                hovertemplate="%{customdata[0]}<br>%{x:.3g} s / image (%{customdata[1]})<br>%{y:.3g}<extra></extra>"))
    fig.update_xaxes(title_text="s / image, log scale (lower is better ←)", type="log")
    fig.update_yaxes(title_text=axis_title(metric) + " ↑")
    return _layout(fig, title, 380)


def _side(seconds: float, lo: float, hi: float) -> str:
    """A point's label leans away from the nearer edge, so that narrow plots do not cut it."""
    at = (math.log10(seconds) - lo) / (hi - lo) if hi > lo else 0.5
    return "top right" if at < 0.33 else "top left" if at > 0.67 else "top center"


def has_speeds(records: dict[str, dict]) -> bool:
    return any(value(r, "s_per_image") is not None for r in records.values())


def has_sweeps(records: dict[str, dict]) -> bool:
    return any(r.get("threshold_sweep") for r in records.values())


def has_training(records: dict[str, dict]) -> bool:
    return any((r.get("training") or {}).get("epochs") for r in records.values())


def sweeps(records: dict[str, dict]) -> go.Figure:
    """Threshold sensitivity: one line per run and split/role; dashed for tuning sweeps."""
    _check_one_task(records)
    fig, names = go.Figure(), display_names(records)
    for key, rec in records.items():
        pts = rec.get("threshold_sweep") or []
        for (split, role) in sorted({(p.get("split"), p.get("role")) for p in pts}, key=str):
            sel = sorted((p for p in pts if p.get("split") == split and p.get("role") == role), key=lambda p: p["threshold"])
            fig.add_trace(go.Scatter(x=[p["threshold"] for p in sel], y=[100 * p["miou"] for p in sel],
                                     mode="lines+markers", name=f"{short(names[key])} ({split}, {role})",
                                     line={"dash": "dash" if role == "tuning" else "solid"}))
    if not fig.data:
        return empty("Threshold sensitivity", "No run here carries a threshold sweep.")
    fig.update_xaxes(title_text="threshold (foreground where probability ≥ it)")
    fig.update_yaxes(title_text=axis_title("miou"))
    fig.update_layout(showlegend=True)  # which run, even when only one has a sweep
    return _layout(fig, "Threshold sensitivity (mIoU)", 420)


def training(records: dict[str, dict]) -> go.Figure:
    """Train/val loss (lower is better) above val mIoU (higher is better), by epoch, for runs with a training log."""
    _check_one_task(records)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    names = display_names(records)
    for key, rec in records.items():
        epochs = (rec.get("training") or {}).get("epochs") or []
        if not epochs:
            continue
        x, name = [e.get("epoch") for e in epochs], short(names[key])
        for key, dash in (("train_loss", "solid"), ("val_loss", "dot")):
            if any(key in e for e in epochs):
                fig.add_trace(go.Scatter(x=x, y=[e.get(key) for e in epochs], name=f"{name} {key.replace('_', ' ')}",
                                         line={"dash": dash}), row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=[100 * e["val_miou"] if e.get("val_miou") is not None else None
                                         for e in epochs], name=f"{name} val mIoU"), row=2, col=1)
    if not fig.data:
        return empty("Training curves", "No run here carries training curves.")
    fig.update_yaxes(title_text="loss (lower is better)", row=1, col=1)
    fig.update_yaxes(title_text="val mIoU, % (higher is better)", row=2, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    fig.update_layout(showlegend=True)
    return _layout(fig, "Training curves", 560)
