"""Plotly figures over stored runs; reported runs are drawn hatched / as open symbols everywhere."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_RUNS = 40  # bars and heatmap rows beyond this are unreadable; the table holds the rest
SYMBOLS = {"measured": "circle", "reported": "diamond-open"}
PATTERNS = {"measured": "", "reported": "/"}


def empty(title: str, why: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False},
                      annotations=[{"text": why, "showarrow": False, "font": {"size": 14}}])
    return fig


def label(rec: dict) -> str:
    mark = "◇ " if rec["provenance"].get("kind") == "reported" else ""
    return mark + rec["run_id"]


def headline(records: dict[str, dict], metric: str = "miou") -> go.Figure:
    """The metric per run: overall, and per label or class where the record has them (grouped bars)."""
    rows = []
    for key, rec in list(records.items())[:MAX_RUNS]:
        m, kind = rec["metrics"], rec["provenance"].get("kind")
        v = (m.get("overall") or {}).get(metric)
        if isinstance(v, (int, float)):
            rows.append({"run": label(rec), "group": "overall", "value": v, "provenance": kind})
        for scope in ("per_label", "per_class"):
            for name, vals in (m.get(scope) or {}).items():
                if isinstance((vals or {}).get(metric), (int, float)):
                    rows.append({"run": label(rec), "group": name, "value": vals[metric], "provenance": kind})
    title = f"{metric} per run"
    if not rows:
        return empty(title, f"No run in the selection has '{metric}'.")
    df = pd.DataFrame(rows)
    fig = px.bar(df, x="run", y="value", color="group", barmode="group", pattern_shape="provenance",
                 pattern_shape_map=PATTERNS, title=title, labels={"value": metric})
    fig.update_layout(xaxis_tickangle=-30, legend_title_text="group, provenance")
    return fig


def sweeps(records: dict[str, dict]) -> go.Figure:
    """Threshold sensitivity: one line per run and split/role; dashed for tuning sweeps."""
    fig = go.Figure()
    for rec in records.values():
        pts = rec.get("threshold_sweep") or []
        for (split, role) in sorted({(p.get("split"), p.get("role")) for p in pts}, key=str):
            sel = sorted((p for p in pts if p.get("split") == split and p.get("role") == role), key=lambda p: p["threshold"])
            fig.add_trace(go.Scatter(x=[p["threshold"] for p in sel], y=[p["miou"] for p in sel], mode="lines+markers",
                                     name=f"{label(rec)} ({split}, {role})",
                                     line={"dash": "dash" if role == "tuning" else "solid"}))
    if not fig.data:
        return empty("Threshold sensitivity", "No run in the selection carries a threshold sweep.")
    fig.update_layout(title="Threshold sensitivity (mIoU)", xaxis_title="threshold", yaxis_title="mIoU")
    return fig


def speed_quality(table: pd.DataFrame, metric: str = "miou") -> go.Figure:
    """s/image against the metric, one point per run; symbol = provenance, colour = device."""
    title = f"Speed against {metric}"
    if metric not in table.columns:
        return empty(title, f"No run in the selection has '{metric}'.")
    df = table.dropna(subset=["s_per_image", metric])
    if df.empty:
        return empty(title, f"No run in the selection has both s/image and {metric}.")
    fig = px.scatter(df, x="s_per_image", y=metric, symbol="provenance", symbol_map=SYMBOLS, color="device",
                     hover_name="name", hover_data=["model", "dataset", "image_size"], log_x=True, title=title,
                     labels={"s_per_image": "seconds per image (log)"})
    fig.update_traces(marker={"size": 11})
    return fig


def breakdown(records: dict[str, dict], scope: str = "per_prompt", metric: str = "miou") -> go.Figure:
    """Heatmap: runs × prompts (or labels, classes), coloured by the metric."""
    data = {}
    for rec in list(records.values())[:MAX_RUNS]:
        vals = rec["metrics"].get(scope) or {}
        row = {k: v.get(metric) for k, v in vals.items() if isinstance((v or {}).get(metric), (int, float))}
        if row:
            data[label(rec)] = row
    title = f"{metric} {scope.replace('_', ' ')}"
    if not data:
        return empty(title, f"No run in the selection has a {scope.replace('_', ' ')} breakdown.")
    df = pd.DataFrame(data).T
    fig = px.imshow(df, text_auto=".3f", aspect="auto", color_continuous_scale="Viridis", title=title,
                    labels={"color": metric})
    return fig


def training(records: dict[str, dict]) -> go.Figure:
    """Train/val loss and val mIoU by epoch for runs that carry a training log."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "val mIoU"))
    for rec in records.values():
        epochs = (rec.get("training") or {}).get("epochs") or []
        if not epochs:
            continue
        x = [e.get("epoch") for e in epochs]
        for key, dash in (("train_loss", "solid"), ("val_loss", "dot")):
            if any(key in e for e in epochs):
                fig.add_trace(go.Scatter(x=x, y=[e.get(key) for e in epochs], name=f"{label(rec)} {key}",
                                         line={"dash": dash}), row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=[e.get("val_miou") for e in epochs], name=f"{label(rec)} val_miou"),
                      row=1, col=2)
    if not fig.data:
        return empty("Training curves", "No run in the selection carries training curves.")
    fig.update_layout(title="Training curves")
    fig.update_xaxes(title_text="epoch")
    return fig


def video(records: dict[str, dict]) -> go.Figure:
    """Every overall metric the video task records, per run."""
    rows = []
    for rec in records.values():
        if rec["task"] != "video":
            continue
        for k, v in (rec["metrics"].get("overall") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n":
                rows.append({"run": label(rec), "metric": k, "value": v, "provenance": rec["provenance"].get("kind")})
    if not rows:
        return empty("Video tracking metrics", "No video run in the selection.")
    return px.bar(pd.DataFrame(rows), x="metric", y="value", color="run", barmode="group",
                  pattern_shape="provenance", pattern_shape_map=PATTERNS, title="Video tracking metrics")
