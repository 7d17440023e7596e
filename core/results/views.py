"""Views of stored runs shared by the dashboard, its API and `python -m core results`: display tables and styles,
the status line, and the plain-JSON answers the API gives (numbers as numbers, null when missing)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from core.results.naming import (FRACTIONS, better_sign, dataset_name, display_name, metric_name, provenance_label,
                                 task_name)
from core.results.records import REPO_ROOT
from core.results.runs import DEFAULT_COLUMNS, Runs, compare, metric_columns, provenance_text

REPORTED_SHADE = "background-color: #fff4d6"
GOOD, BAD = "color: #137333; font-weight: 600", "color: #b3261e; font-weight: 600"
COLUMN_NAMES = {"run": "key", "name": "run id", "image_size": "image size", "s_per_image": "s / image",
                "s_per_train_step": "s / training step", "peak_rss_mb": "peak RSS MB", "peak_cuda_mb": "peak CUDA MB"}


def results_root() -> Path:
    return Path(os.environ.get("SEGLAB_RESULTS") or REPO_ROOT / "results")


def display_table(table: pd.DataFrame, columns: list[str] | None = None, digits: int = 4) -> pd.DataFrame:
    cols = [c for c in (columns or DEFAULT_COLUMNS) if c in table.columns]
    out = table[cols].copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(digits)
    return out.astype(object).where(out.notna(), "")


def _cell(column: str, v, fractions: set[str]) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if column in fractions and isinstance(v, (int, float)):
        return f"{100 * v:.1f}"
    if isinstance(v, float):
        return f"{v:.0f}" if abs(v) >= 100 or (v.is_integer() and abs(v) >= 1) else f"{v:.3g}"
    return str(v)


def shown_columns(table: pd.DataFrame, columns: list[str] | None = None) -> list[str]:
    """The chosen columns in a reading order: the default ones in theirs (method, dataset, metrics...), then the rest."""
    chosen = set(columns or DEFAULT_COLUMNS)
    return [c for c in DEFAULT_COLUMNS if c in chosen and c in table.columns] + [
        c for c in table.columns if c in chosen and c not in DEFAULT_COLUMNS]


def readable_table(table: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The table as a person reads it: chosen columns, quality metrics as percentages with one decimal, whole numbers
    without decimals, seconds to three digits, blanks for missing values, and headers in words."""
    cols = shown_columns(table, columns)
    fractions = FRACTIONS & set(metric_columns(table))
    named = {"dataset": dataset_name, "task": task_name}
    out = pd.DataFrame({c: [named[c](v) if c in named and isinstance(v, str) else _cell(c, v, fractions)
                            for v in table[c]] for c in cols}, index=table.index)
    names = {c: f"{metric_name(c)} %" if c in fractions else COLUMN_NAMES.get(c, c) for c in cols}
    return out.rename(columns=names).reset_index(drop=True)


def shade_reported(df: pd.DataFrame, reported: list[bool] | None = None):
    """A Styler: reported rows shaded, so published figures never pass for measurements."""
    if df.empty:
        return df
    if reported is None:
        if "provenance" not in df.columns:
            return df
        reported = list(df["provenance"] == "reported")
    flags = dict(zip(df.index, reported))
    return df.style.apply(lambda row: [REPORTED_SHADE if flags[row.name] else ""] * len(row), axis=1)


def colour_deltas(df: pd.DataFrame):
    """A Styler: each delta green when B is better than A in that metric's direction (lower seconds are better),
    red when worse."""
    if df.empty:
        return df

    def colour(row):
        v = row["delta"]
        styles = [""] * len(row)
        if isinstance(v, (int, float)) and v != 0:
            styles[list(row.index).index("delta")] = GOOD if v * better_sign(str(row["metric"])) > 0 else BAD
        return styles
    return df.style.apply(colour, axis=1).format({"a": "{:.4f}", "b": "{:.4f}", "delta": "{:+.4f}"})


COMPARE_COLUMNS = ["where", "metric", "A", "B", "B − A", "B is"]


def _amount(metric: str, v: float, sign: bool = False) -> str:
    if metric in FRACTIONS or metric == "iou":
        return f"{100 * v:+.2f}" if sign else f"{100 * v:.1f}"
    return f"{v:+.3g}" if sign else f"{v:.3g}"


def compare_display(delta: pd.DataFrame):
    """The comparison as a person reads it, narrow enough for a phone: where (overall, a label or class, timing),
    the metric (percentages marked %), A, B, B − A coloured by the metric's direction, and 'better' or 'worse' in
    words for whoever does not see the colour."""
    if delta.empty:
        return pd.DataFrame(columns=COMPARE_COLUMNS)
    order = {"overall": 0, "timing": 1, "memory": 2}  # the headline numbers first, then labels, prompts, classes
    delta = delta.iloc[sorted(range(len(delta)), key=lambda i: order.get(delta["scope"].iloc[i], 3))]
    rows = []
    for r in delta.itertuples():
        verdict = r.delta * better_sign(r.metric)
        rows.append({"where": r.key or r.scope, "metric": metric_name(r.metric) + (" %" if r.metric in FRACTIONS
                                                                                    or r.metric == "iou" else ""),
                     "A": _amount(r.metric, r.a), "B": _amount(r.metric, r.b), "B − A": _amount(r.metric, r.delta, True),
                     "B is": "better" if verdict > 0 else "worse" if verdict < 0 else "same"})
    out = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    return out.style.apply(lambda row: ["" if c != "B − A" else GOOD if row["B is"] == "better" else
                                        BAD if row["B is"] == "worse" else "" for c in row.index], axis=1)


def choices(runs: Runs, column: str) -> list[str]:
    if column not in runs.table.columns:
        return []
    return sorted({str(v) for v in runs.table[column].dropna()})


def problems_text(runs: Runs) -> str:
    if not runs.problems:
        return ""
    lines = [f"**{len(runs.problems)} results file(s) could not be read** (every other run is shown):"]
    lines += [f"- `{f}`: {why}" for f, why in runs.problems]
    return "\n".join(lines)


def status_text(runs: Runs, shown: pd.DataFrame, sort_by: str | None = None, descending: bool = False) -> str:
    """'12 of 51 runs shown (2 measured, 10 reported; reported rows are shaded), sorted by mIoU, best first.'"""
    order = ""
    if sort_by:
        order = f", sorted by {metric_name(sort_by)}, {'descending' if descending else 'ascending'}"
    return (f"{len(shown)} of {len(runs.table)} runs shown ({(shown['provenance'] == 'measured').sum()} measured, "
            f"{(shown['provenance'] == 'reported').sum()} reported; reported rows are shaded){order}.")


WHOLE = ("image_size", "n")  # counts and sizes: whole numbers, whatever pandas made of the column


def plain(df: pd.DataFrame) -> list[dict]:
    """Rows as JSON values: numbers stay numbers (sizes and counts whole), missing values become null."""
    if not len(df):
        return []
    df = df.copy()
    for c in WHOLE:
        if c in df.columns:
            v = pd.to_numeric(df[c], errors="coerce")
            if v.notna().any() and (v.dropna() % 1 == 0).all():
                df[c] = v.astype("Int64")
    return json.loads(df.to_json(orient="records"))


def run_json(runs: Runs, key: str) -> dict:
    """One run for the API: its name, provenance (with the public source), a link, and the whole record."""
    rec = runs.record(key)
    label, url = provenance_label(rec)
    method = runs.table.loc[runs.table["run"] == key, "method"]  # unique among the stored runs
    return {"key": key, "method": method.iloc[0] if len(method) else display_name(rec), "provenance": label, "source_url": url,
            "about": provenance_text(key, rec).replace("**", ""), "link": f"?run={quote(key)}", "record": rec}


def compare_json(runs: Runs, key_a: str, key_b: str) -> dict:
    """Every metric two runs share, B − A, and which of the two is better in that metric's direction."""
    a, b = run_json(runs, key_a), run_json(runs, key_b)
    delta = compare(a["record"], b["record"])
    rows = plain(delta)
    for row in rows:
        d = row["delta"] * better_sign(row["metric"])
        row["better"] = "b" if d > 0 else "a" if d < 0 else "same"
        row["higher_is_better"] = better_sign(row["metric"]) > 0
    brief = lambda r: {k: r[k] for k in ("key", "method", "provenance", "source_url")}
    return {"a": brief(a), "b": brief(b), "link": f"?compare={quote(key_a)},{quote(key_b)}", "metrics": rows}
