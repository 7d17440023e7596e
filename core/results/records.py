"""The results record: one JSON file per run, the same schema for every task (see results/README.md)."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

import torch

from core.errors import BadInput

SCHEMA_VERSION = 1
TASKS = ("prompted", "openvocab", "video")
PROVENANCE = ("measured", "reported")
REQUIRED = {
    "schema_version": int, "run_id": str, "created": str, "task": str, "model": dict, "dataset": dict,
    "config": dict, "metrics": dict, "timing": dict, "provenance": dict,
}
REPO_ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "platform": platform.platform(),
            "torch": torch.__version__}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_record(task: str, name: str, provenance: dict, **parts) -> dict:
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": name,
        "created": now_iso(),
        "git_commit": git_commit() if provenance.get("kind") == "measured" else None,
        "machine": machine() if provenance.get("kind") == "measured" else None,
        "task": task,
        "model": {}, "dataset": {}, "config": {}, "metrics": {}, "threshold_sweep": [], "timing": {},
        "provenance": provenance,
    }
    record.update(parts)
    return record


def validate(record: object) -> list[str]:
    """Problems with a record, empty when it is valid."""
    if not isinstance(record, dict):
        return ["the file does not hold a JSON object"]
    problems = []
    for key, typ in REQUIRED.items():
        if key not in record:
            problems.append(f"missing '{key}'")
        elif not isinstance(record[key], typ) or (typ is int and isinstance(record[key], bool)):
            problems.append(f"'{key}' should be {typ.__name__}")
    if problems:
        return problems
    if record["schema_version"] != SCHEMA_VERSION:
        problems.append(f"schema_version {record['schema_version']} (this SegLab reads {SCHEMA_VERSION})")
    if record["task"] not in TASKS:
        problems.append(f"task '{record['task']}' is not one of {', '.join(TASKS)}")
    kind = record["provenance"].get("kind")
    if kind not in PROVENANCE:
        problems.append(f"provenance.kind '{kind}' is not one of {', '.join(PROVENANCE)}")
    elif kind == "measured" and not record["provenance"].get("command"):
        problems.append("a measured run needs provenance.command")
    elif kind == "reported" and not record["provenance"].get("source"):
        problems.append("a reported run needs provenance.source")
    if not isinstance(record["metrics"].get("overall", {}), dict):
        problems.append("'metrics.overall' should be an object")
    elif record["model"].get("weights") == "random" or record["config"].get("speed_only"):
        scored = [k for k, v in (record["metrics"].get("overall") or {}).items() if k != "n" and v is not None]
        scored += [k for k in ("per_label", "per_prompt", "per_class") if record["metrics"].get(k)]
        if scored or record.get("threshold_sweep"):
            problems.append("a speed-only record (random weights) carries no quality metric, but this one has "
                            + ", ".join(scored or ["a threshold sweep"]))
    return problems


def write_record(record: dict, path: Path) -> Path:
    """Validate, then write atomically: a temporary file in the same folder, then a rename."""
    problems = validate(record)
    if problems:
        raise ValueError("invalid results record: " + "; ".join(problems))
    return write_json_atomic(record, path, indent=2)


def write_json_atomic(data, path: str | Path, indent: int | None = None) -> Path:
    """JSON (NaN refused) written to a temporary file beside `path`, then renamed over it: a reader never sees half
    a file, and an interrupted write leaves the earlier file as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=indent, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def run_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    if not name:
        raise BadInput("A run needs a name made of letters, digits, '.', '_' or '-'.")
    return name[:120]


def short_id() -> str:
    return uuid.uuid4().hex[:8]
