"""`python -m core results list|show|compare|export`: the dashboard's views in a terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from core.errors import BadInput
from core.results.views import display_table, problems_text, results_root
from core.results.runs import Runs, compare, filter_runs, load_runs, provenance_text


def add_parser(sub) -> None:
    p = sub.add_parser("results", help="list, show, compare and export stored runs (as the dashboard does)")
    p.add_argument("--root", default=None, help="results folder (default: SEGLAB_RESULTS or results/)")
    rs = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = rs.add_parser("list", help="one line per run, filtered")
    for flag in ("task", "dataset", "split", "model", "provenance"):
        q.add_argument(f"--{flag}", action="append", default=None)
    q.add_argument("--search", default="")
    q = rs.add_parser("show", help="one run's provenance and record")
    q.add_argument("run")
    q = rs.add_parser("compare", help="every shared metric of two runs, with B − A")
    q.add_argument("run_a")
    q.add_argument("run_b")
    q = rs.add_parser("export", help="the (filtered) table as CSV")
    q.add_argument("csv")
    for flag in ("task", "dataset", "split", "model", "provenance"):
        q.add_argument(f"--{flag}", action="append", default=None)
    q.add_argument("--search", default="")


def resolve(runs: Runs, name: str) -> str:
    """A run key (path below results/), or a run_id / key suffix that names exactly one run."""
    if name in runs.records:
        return name
    hits = [k for k, r in runs.records.items() if r["run_id"] == name or k.endswith("/" + name)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise BadInput(f"No run named '{name}'. `python -m core results list` shows them.")
    raise BadInput(f"'{name}' names {len(hits)} runs ({', '.join(hits[:4])}); give the full key.")


def run(args) -> int:
    runs = load_runs(Path(args.root) if args.root else results_root())
    if runs.problems:
        print(problems_text(runs).replace("**", ""), file=sys.stderr)
    if args.action in ("list", "export"):
        table = filter_runs(runs.table, args.task, args.dataset, args.split, args.model, args.provenance, args.search)
        if args.action == "export":
            Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(args.csv, index=False)
            print(f"wrote {len(table)} runs to {args.csv}")
            return 0
        cols = ["run", "task", "provenance", "dataset", "split", "miou", "dice", "s_per_image", "device"]
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
            print(display_table(table, cols).to_string(index=False) if len(table) else "no runs")
        return 0
    if args.action == "show":
        key = resolve(runs, args.run)
        print(provenance_text(key, runs.records[key]).replace("**", ""))
        print(json.dumps(runs.records[key], indent=2))
        return 0
    a, b = resolve(runs, args.run_a), resolve(runs, args.run_b)
    delta = compare(runs.records[a], runs.records[b])
    print(f"A: {provenance_text(a, runs.records[a])}".replace("**", ""))
    print(f"B: {provenance_text(b, runs.records[b])}".replace("**", ""))
    if delta.empty:
        print("The two runs share no metric.")
        return 0
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(delta.to_string(index=False, formatters={"a": "{:.4f}".format, "b": "{:.4f}".format,
                                                       "delta": "{:+.4f}".format}))
    return 0
