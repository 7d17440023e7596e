"""The dashboard's first view: one task and one dataset, methods ranked, best values marked, in words a
stakeholder reads in a minute. Names, provenance labels and metric directions live in core.results.naming."""

from __future__ import annotations

import json
import math

import pandas as pd

from core.results.naming import (DATASET_NAMES, LOWER_IS_BETTER, METRIC_NAMES, SOURCE_LINKS, TASK_METRICS,  # noqa: F401
                                 better_sign, dataset_name, display_name, display_names, provenance_label)
from core.results.runs import Runs, metric_columns

SPEED = "s_per_image"


def _quality(rows: pd.DataFrame) -> pd.Series:
    """Which rows carry at least one quality metric (speed-only records do not)."""
    cols = metric_columns(rows)
    return rows[cols].notna().any(axis=1) if cols else pd.Series(False, index=rows.index)


def default_view(runs: Runs) -> tuple[str | None, str | None]:
    """The task and dataset with the most runs that carry a quality metric (any runs when none does)."""
    t = runs.table
    if t.empty:
        return None, None
    scored = t[_quality(t)]
    counts = (scored if len(scored) else t).groupby(["task", "dataset"], dropna=True).size()
    counts = counts.sort_values(ascending=False, kind="stable")
    return counts.index[0] if len(counts) else (None, None)


def datasets_of(runs: Runs, task: str | None) -> list[str]:
    """The task's datasets, those with the most scored runs first; speed-only datasets last."""
    t = runs.table[runs.table["task"] == task] if task else runs.table
    t = t[t["dataset"].notna()]
    scored = t[_quality(t)]["dataset"].value_counts()
    rest = [d for d in t["dataset"].value_counts().index if d not in scored.index]
    return list(scored.index) + rest


def metrics_of(runs: Runs, task: str | None, dataset: str | None) -> list[str]:
    """The quality metrics some run of this task and dataset has: the task's usual ones first."""
    t = runs.table
    rows = t[(t["task"] == task) & (t["dataset"] == dataset)]
    have = [m for m in metric_columns(rows) if rows[m].notna().any()]
    usual = [m for m in TASK_METRICS.get(task or "", ["miou"]) if m in have]
    return usual + [m for m in have if m not in usual]


def _ranked(runs: Runs, task: str, dataset: str, metric: str) -> tuple[pd.DataFrame, list[str], str]:
    """The rows of one task and dataset, best first by `metric` (by s/image when none has a quality metric)."""
    t = runs.table
    rows = t[(t["task"] == task) & (t["dataset"] == dataset)].copy()
    metrics = metrics_of(runs, task, dataset)
    if metric not in metrics:
        metric = metrics[0] if metrics else SPEED
    if rows[metric].notna().any():
        rows = rows.assign(_key=pd.to_numeric(rows[metric], errors="coerce") * better_sign(metric))
        rows = rows.sort_values("_key", ascending=False, na_position="last", kind="stable").drop(columns="_key")
    return rows, metrics, metric


def _percent(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _seconds(v, device) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.3g} ({device})" if isinstance(device, str) and device else f"{v:.3g}"


def leaderboard(runs: Runs, task: str, dataset: str, metric: str = "miou") -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(table of display strings ranked by `metric`, a same-shaped table of bools marking each column's best,
    a one-line summary). Metric columns are percentages with one decimal; missing values are blank; a column no
    run has is left out. Columns: rank, method, the metrics, s / image (with its device), provenance, run."""
    rows, metrics, metric = _ranked(runs, task, dataset, metric)
    recs = [runs.records[k] for k in rows["run"]]
    names = display_names(dict(zip(rows["run"], recs)))
    out = pd.DataFrame({
        "rank": range(1, len(rows) + 1),
        "method": [names[k] for k in rows["run"]],
        **{METRIC_NAMES.get(m, m): [_percent(v) for v in rows[m]] for m in metrics},
        "s / image": [_seconds(v, d) for v, d in zip(rows[SPEED], rows["device"])],
        "provenance": [provenance_label(r)[0] for r in recs],
        "run": list(rows["run"]),
    })
    best = pd.DataFrame(False, index=out.index, columns=out.columns)
    for m in metrics + [SPEED]:
        col = METRIC_NAMES.get(m, m)
        vals = pd.to_numeric(rows[m], errors="coerce").reset_index(drop=True)
        if vals.notna().any() and len(out) > 1:
            target = vals.max() if better_sign(m) > 0 else vals.min()
            best[col] = (vals == target).to_numpy()
    empty = [c for c in out.columns if c not in ("rank", "method", "provenance", "run") and (out[c] == "").all()]
    out, best = out.drop(columns=empty), best.drop(columns=empty)
    return out, best, summary(rows, out, metric, dataset)


def summary(rows: pd.DataFrame, out: pd.DataFrame, metric: str, dataset: str) -> str:
    if not len(out):
        return "No run of this task on this dataset."
    first = out.iloc[0]
    kind = first["provenance"].split(" (")[0]
    if metric == SPEED:
        if pd.isna(rows[SPEED].iloc[0]):
            return f"No run on {dataset_name(dataset)} has a quality metric or a speed; {len(out)} run(s)."
        device = rows["device"].iloc[0]
        return (f"No quality metric on {dataset_name(dataset)}. Fastest: {first['method']}, "
                f"{rows[SPEED].iloc[0]:.3g} s / image" + (f" on {device}" if isinstance(device, str) else "")
                + f" ({kind}); {len(out)} run(s).")
    name = METRIC_NAMES.get(metric, metric)
    if pd.isna(rows[metric].iloc[0]):
        return f"No run on {dataset_name(dataset)} has {name}; {len(out)} run(s)."
    return f"Best {name} on {dataset_name(dataset)}: {first['method']}, {first[name]} ({kind}); {len(out)} run(s)."


def leaderboard_rows(runs: Runs, task: str, dataset: str, metric: str = "miou") -> list[dict]:
    """The same ranking as plain values for the API: fractions (0.247 is 24.7 %), seconds, null when missing."""
    rows, metrics, _ = _ranked(runs, task, dataset, metric)
    names = display_names({k: runs.records[k] for k in rows["run"]})
    out = []
    for rank, (_, row) in enumerate(rows.iterrows(), start=1):
        rec = runs.records[row["run"]]
        label, url = provenance_label(rec)
        out.append({"rank": rank, "run": row["run"], "method": names[row["run"]], "provenance": label,
                    "source_url": url, **{m: row[m] for m in metrics}, "s_per_image": row[SPEED],
                    "device": row["device"]})
    return json.loads(pd.DataFrame(out).to_json(orient="records")) if out else []
