"""Views of stored runs shared by the dashboard and `python -m core results`: display tables and styles."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from core.results.records import REPO_ROOT
from core.results.runs import DEFAULT_COLUMNS, Runs

REPORTED_SHADE = "background-color: #fff4d6"


def results_root() -> Path:
    return Path(os.environ.get("SEGLAB_RESULTS") or REPO_ROOT / "results")


def display_table(table: pd.DataFrame, columns: list[str] | None = None, digits: int = 4) -> pd.DataFrame:
    cols = [c for c in (columns or DEFAULT_COLUMNS) if c in table.columns]
    out = table[cols].copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(digits)
    return out


def shade_reported(df: pd.DataFrame):
    """A Styler: reported rows shaded, so published figures never pass for measurements."""
    if "provenance" not in df.columns or df.empty:
        return df
    return df.style.apply(lambda row: [REPORTED_SHADE if row["provenance"] == "reported" else ""] * len(row), axis=1)


def colour_deltas(df: pd.DataFrame):
    """A Styler: each delta green when B is better than A in that metric's direction (lower seconds are better),
    red when worse."""
    from core.results.leaderboard import better_sign

    if df.empty:
        return df

    def colour(row):
        v = row["delta"]
        styles = [""] * len(row)
        if isinstance(v, (int, float)) and v != 0:
            good = v * better_sign(str(row["metric"])) > 0
            styles[list(row.index).index("delta")] = ("color: #137333; font-weight: 600" if good
                                                      else "color: #b3261e; font-weight: 600")
        return styles
    return df.style.apply(colour, axis=1).format({"a": "{:.4f}", "b": "{:.4f}", "delta": "{:+.4f}"})


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
