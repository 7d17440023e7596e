"""Plotly figures of a tracking result: the tracks' lifespans (a timeline), and one track's per-frame weights and
class probabilities. Colours follow core.draw's palette by track id, as in the rendered video."""

from __future__ import annotations

import plotly.graph_objects as go

from core.draw.label_map import hex_colour
from core.video.tracker import Track, TrackingResult


def _label(t: Track) -> str:
    return f"#{t.id} {t.class_name or '?'}"


def timeline(result: TrackingResult) -> go.Figure:
    """One horizontal bar per track from its first to its last frame; a marker on each frame it has a mask."""
    fig = go.Figure()
    for t in sorted(result.tracks, key=lambda t: t.first_frame):
        fig.add_trace(go.Scatter(x=[t.first_frame, t.last_frame], y=[_label(t)] * 2, mode="lines",
                                 line=dict(color=hex_colour(t.id), width=10), showlegend=False,
                                 hovertemplate=f"{_label(t)}, score {t.score:.2f}<br>frames %{{x}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=t.frames, y=[_label(t)] * len(t.frames), mode="markers", showlegend=False,
                                 marker=dict(color="black", size=3), hoverinfo="skip"))
    fig.update_layout(xaxis_title="frame", yaxis=dict(autorange="reversed", automargin=True), height=120 + 28 *
                      max(len(result.tracks), 1), margin=dict(l=10, r=10, t=30, b=40), title="Track lifespans",
                      xaxis=dict(range=[-0.5, max(result.n_frames - 0.5, 0.5)]))
    return fig


def track_detail(track: Track, class_names: list[str]) -> go.Figure:
    """The track's per-frame classification weight (bars) and class probabilities (lines; 'no object' dashed)."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=track.frames, y=track.weights, name="weight", marker_color="#bbbbbb", yaxis="y2"))
    names = list(class_names) + ["no object"]
    rows = [(f, p) for f, p in zip(track.frames, track.class_probs) if p is not None]
    for k, name in enumerate(names):
        fig.add_trace(go.Scatter(x=[f for f, _ in rows], y=[p[k] for _, p in rows], mode="lines+markers", name=name,
                                 line=dict(color=hex_colour(k) if k < len(class_names) else "#444444",
                                           dash="dash" if k == len(class_names) else "solid")))
    fig.update_layout(title=f"{_label(track)}: class probability per frame",
                      xaxis_title="frame", yaxis=dict(title="probability", range=[0, 1]),
                      yaxis2=dict(title="weight", overlaying="y", side="right", rangemode="tozero"),
                      legend=dict(orientation="h", y=-0.25), height=360, margin=dict(l=10, r=10, t=40, b=10))
    return fig
