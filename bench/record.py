"""`--record results/runs/NAME.json` for any benchmark: a measured, speed-only results record.

The benchmarks run real-size models with random weights on synthetic input, so the record says so (model.weights
"random", dataset "synthetic", config.speed_only) and carries timing and memory only, never a quality metric
(core.results.records.validate refuses one). The dashboard shows these next to the published speeds, labelled.
    add_record_argument(parser); check_record_path(args.record); ...
    write_speed_record(args.record, "prompted", "bench.prompted", argv, model=..., case=..., timing=..., memory=...)
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import torch

from core.results.records import new_record, run_name, write_record

NOTE = ("Speed only: real-size model with random weights on a synthetic image; timing and memory mean what they "
        "say, quality is not measured.")


def add_record_argument(parser) -> None:
    parser.add_argument("--record", metavar="results/runs/NAME.json", default=None,
                        help="also write a speed-only results record (provenance measured, random weights, dataset "
                             "synthetic; timing and memory only) that the dashboard shows next to published speeds")


def check_record_path(path: str | Path | None) -> None:
    """Before the benchmark runs: a record never replaces an earlier measurement, and must be a .json file."""
    if path is None:
        return
    p = Path(path)
    if p.suffix != ".json":
        raise SystemExit(f"--record {path}: the record is a .json file (e.g. results/runs/bench_prompted_cpu.json)")
    if p.exists():
        raise SystemExit(f"--record {path}: that file already holds a record; choose another name")


def device_label(device: torch.device | str) -> str:
    """'cpu', or 'cuda (NVIDIA T4)' with the GPU's name, as the dashboard shows it beside seconds."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def command_line(module: str, argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", "-m", module, *(shlex.quote(a) for a in args)])


def speed_record(path: str | Path, task: str, module: str, argv: list[str] | None, *, model: dict, case: str,
                 timing: dict, memory: dict | None = None, config: dict | None = None, image: str = "") -> dict:
    """The record: `model` names the architecture (and image_size), `case` the measured configuration shown in the
    run's name ('1 prompt', '5 classes'), `timing` holds seconds_per_image (or seconds_per_train_step) and device,
    `memory` peak_rss_mb / peak_cuda_mb; `config` the rest of the benchmark's settings and its table of cases."""
    rec = new_record(
        task, run_name(Path(path).stem),
        {"kind": "measured", "command": command_line(module, argv), "note": NOTE},
        model={**model, "weights": "random", "source": "random weights (speed only)"},
        dataset={"name": "synthetic", "split": "bench", "n": 1, "description": image or "synthetic input"},
        config={"speed_only": True, "bench": module, "case": case, "torch_threads": torch.get_num_threads(),
                **(config or {})},
        metrics={"overall": {}},
        timing=timing,
    )
    rec["memory"] = {k: v for k, v in (memory or {}).items() if v is not None}
    return rec


def write_speed_record(path: str | Path, task: str, module: str, argv: list[str] | None = None, **parts) -> Path:
    """Build, validate and write the record atomically; say where it went."""
    out = write_record(speed_record(path, task, module, argv, **parts), Path(path))
    print(f"speed record written: {out}")
    return out
