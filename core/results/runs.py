"""Every stored results record in one table: loading with validation, filters, run-against-run deltas."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.results.naming import display_name, display_names, provenance_label
from core.results.records import validate

MAX_FILE_BYTES = 20 * 1024 * 1024
HEADLINE = ["miou", "dice", "pixel_accuracy"]
BASE_COLUMNS = ["run", "name", "method", "task", "provenance", "source", "dataset", "split", "model", "image_size",
                "threshold"]
RESOURCE_COLUMNS = ["s_per_image", "s_per_train_step", "peak_rss_mb", "peak_cuda_mb"]  # lower is better
TAIL_COLUMNS = ["n", *RESOURCE_COLUMNS, "device", "created", "commit", "origin"]
DEFAULT_COLUMNS = ["method", "dataset", "miou", "dice", "pixel_accuracy", "s_per_image", "device", "source", "task",
                   "split"]


@dataclass
class Runs:
    table: pd.DataFrame
    records: dict[str, dict]  # run key (path below the results folder, no .json) -> record
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    def record(self, key: str) -> dict:
        if key not in self.records:
            from core.errors import BadInput

            raise BadInput(f"No run '{key}'. Known runs: {', '.join(list(self.records)[:5])}...")
        return self.records[key]


def read_record(path: Path) -> tuple[dict | None, str | None]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, f"larger than {MAX_FILE_BYTES // 2**20} MB ({size / 2**20:.1f} MB)"
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable: {exc}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    problems = validate(record)
    if problems:
        return None, "; ".join(problems)
    return record, None


def row_of(key: str, rec: dict) -> dict:
    model, ds, cfg, timing, prov = rec["model"], rec["dataset"], rec["config"], rec["timing"], rec["provenance"]
    overall = rec["metrics"].get("overall", {}) or {}
    memory = rec.get("memory") or {}
    row = {
        "run": key, "name": rec["run_id"], "method": display_name(rec), "task": rec["task"],
        "provenance": prov.get("kind"), "source": provenance_label(rec)[0],
        "dataset": ds.get("name"), "split": ds.get("split"), "model": model.get("name"),
        "image_size": model.get("image_size"), "threshold": cfg.get("threshold"),
        "n": overall.get("n", ds.get("n")), "s_per_image": timing.get("seconds_per_image"),
        "s_per_train_step": timing.get("seconds_per_train_step"), "peak_rss_mb": memory.get("peak_rss_mb"),
        "peak_cuda_mb": memory.get("peak_cuda_mb"), "device": timing.get("device"), "created": rec.get("created"),
        "commit": (rec.get("git_commit") or "")[:10] or None,
        "origin": prov.get("command") if prov.get("kind") == "measured" else prov.get("source"),
    }
    for k, v in overall.items():
        if k != "n" and isinstance(v, (int, float)) and not isinstance(v, bool):
            row[k] = v
    return row


_CACHE: dict[str, tuple[tuple, Runs]] = {}
_LOCK = threading.Lock()


def load_runs(root: Path | str = "results") -> Runs:
    """Every results/**/*.json; a file that fails is listed in `problems` and every other run still loads.

    Cached on the files' names, sizes and modification times, so a refresh only rereads when something changed."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*.json") if p.is_file()) if root.is_dir() else []
    signature = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    with _LOCK:
        hit = _CACHE.get(str(root.resolve()))
        if hit and hit[0] == signature:
            return hit[1]
    records, rows, problems = {}, [], []
    for p in files:
        rec, why = read_record(p)
        rel = p.relative_to(root).as_posix()
        if rec is None:
            problems.append((rel, why))
            continue
        key = rel[: -len(".json")]
        records[key] = rec
        rows.append(row_of(key, rec))
    table = pd.DataFrame(rows)
    for col in BASE_COLUMNS + HEADLINE + TAIL_COLUMNS:
        if col not in table.columns:
            table[col] = pd.Series(dtype="object")
    extra = [c for c in table.columns if c not in BASE_COLUMNS + HEADLINE + TAIL_COLUMNS]
    table = table[BASE_COLUMNS + HEADLINE + sorted(extra) + TAIL_COLUMNS]
    if len(table):
        names = {}  # runs of one task and dataset that share a name get their run id after it
        for _, group in table.groupby(["task", "dataset"], dropna=False):
            names.update(display_names({k: records[k] for k in group["run"]}))
        table["method"] = table["run"].map(names)
        table = table.sort_values(["task", "provenance", "name"], kind="stable").reset_index(drop=True)
    runs = Runs(table, records, problems)
    with _LOCK:
        _CACHE[str(root.resolve())] = (signature, runs)
    return runs


def filter_runs(table: pd.DataFrame, task=None, dataset=None, split=None, model=None, provenance=None,
                search: str = "") -> pd.DataFrame:
    """Each filter is a list of accepted values (empty or None: all); search matches run names, any case."""
    keep = pd.Series(True, index=table.index)
    for col, values in (("task", task), ("dataset", dataset), ("split", split), ("model", model),
                        ("provenance", provenance)):
        if values:
            keep &= table[col].isin(list(values))
    if search and search.strip():
        needle = search.strip().lower()
        keep &= table["name"].str.lower().str.contains(needle, regex=False) | \
            table["run"].str.lower().str.contains(needle, regex=False) | \
            table["method"].str.lower().str.contains(needle, regex=False)
    return table[keep]


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The overall quality metrics among the table's columns (every numeric column that is not a run property,
    a time or a memory figure)."""
    return [c for c in table.columns if c not in BASE_COLUMNS + TAIL_COLUMNS]


def sort_runs(table: pd.DataFrame, sort_by: str | None = None, descending: bool = False) -> pd.DataFrame:
    """Sorted by one column (missing values last, ties in the stored order); no column: the stored order."""
    if not sort_by:
        return table
    if sort_by not in table.columns:
        from core.errors import BadInput

        raise BadInput(f"Cannot sort by '{sort_by}': the table's columns are {', '.join(table.columns)}.")
    return table.sort_values(sort_by, ascending=not descending, na_position="last", kind="stable")


def flat_metrics(rec: dict) -> dict[tuple[str, str, str], float]:
    """(scope, key, metric) -> value for overall, per_label, per_prompt, per_class, timing and memory."""
    out = {}
    m = rec.get("metrics", {})
    for k, v in (m.get("overall") or {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n":
            out[("overall", "", k)] = float(v)
    for scope in ("per_label", "per_prompt", "per_class"):
        for key, vals in (m.get(scope) or {}).items():
            for k, v in (vals or {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n":
                    out[(scope, key, k)] = float(v)
    for scope in ("timing", "memory"):
        for k, v in (rec.get(scope) or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[(scope, "", k)] = float(v)
    return out


def compare(a: dict, b: dict) -> pd.DataFrame:
    """Every metric the two runs share: value in A, in B, and B − A."""
    fa, fb = flat_metrics(a), flat_metrics(b)
    rows = [{"scope": s, "key": k, "metric": m, "a": fa[(s, k, m)], "b": fb[(s, k, m)],
             "delta": fb[(s, k, m)] - fa[(s, k, m)]} for (s, k, m) in fa if (s, k, m) in fb]
    return pd.DataFrame(rows, columns=["scope", "key", "metric", "a", "b", "delta"])


def provenance_text(key: str, rec: dict) -> str:
    prov = rec["provenance"]
    if prov.get("kind") == "reported":
        source = re.sub(r"\s*\([^()]*\.(?:txt|md|json)\)", "", prov.get("source") or "")  # no internal file names
        url = provenance_label(rec)[1]
        text = (f"**{key}** — reported (published figure, not measured by SegLab). Source: "
                + (f"[{source}]({url})" if url else source))
        return text + (f". Note: {prov['note']}" if prov.get("note") else "")
    machine = rec.get("machine") or {}
    where = ", ".join(str(v) for v in (machine.get("cpu"), machine.get("gpu")) if v) or "unknown machine"
    return (f"**{key}** — measured by SegLab on {where}, commit `{rec.get('git_commit') or 'unknown'}`, "
            f"{rec.get('created')}. Command: `{prov.get('command')}`")
