"""Published figures (shared/reference/reported_results.md) as 'reported' results records."""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import BadInput
from core.results.records import new_record, run_name, write_record

DRYWALL_SOURCE = 'Prompted Segmentation for Drywall QA — Final Report (seeds/003_018f9a63bc22616c.txt)'
OPENVOCAB_SOURCES = {
    "SCLIP (paper)": "SCLIP paper (Wang et al. 2024), as tabulated in the ResCLIP README",
    "SCLIP (repo README)": "SCLIP repository README (wangf3014/SCLIP)",
    "ClearCLIP": "ClearCLIP README",
    "NACLIP (no PAMR)": "ResCLIP README (yvhangyang/ResCLIP, CVPR 2025)",
    "NACLIP + ResCLIP": "ResCLIP README (yvhangyang/ResCLIP, CVPR 2025)",
    "CorrCLIP": "CorrCLIP README (zdk258/CorrCLIP, CorrCLIPv1/README.md, ICCV 2025)",
}
OPENVOCAB_DATASETS = {"VOC21": "voc21", "Context60": "context60", "COCO-Object": "coco_object", "VOC20": "voc20",
                      "Context59": "context59", "COCO-Stuff": "coco_stuff164k", "Cityscapes": "cityscapes",
                      "ADE20k": "ade20k"}


def _tables(text: str) -> list[list[list[str]]]:
    tables, cur = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                cur.append(cells)
        elif cur:
            tables.append(cur)
            cur = []
    if cur:
        tables.append(cur)
    return tables


def _num(cell: str) -> tuple[float | None, bool]:
    """('0.4149', False); '~0.0000' is approximate; '–' is missing."""
    cell = cell.strip()
    if cell in {"–", "-", "—", ""}:
        return None, False
    approx = cell.startswith("~")
    return float(cell.lstrip("~")), approx


def drywall_records(text: str) -> list[dict]:
    table = next(t for t in _tables(text) if t[0][0] == "run" and "crack mIoU" in t[0])
    header = table[0]
    sens = {}
    if "Threshold sensitivity" in text:
        para = text.split("Threshold sensitivity", 1)[1].split("\n\n")[0]
        pattern = r"(0\.\d):\s*(?:mIoU\s*)?(0\.\d{4})\s*/\s*(?:Dice\s*)?(0\.\d{4})"
        sens = {float(t): (float(m), float(d)) for t, m, d in re.findall(pattern, para)}
    out = []
    for cells in table[1:]:
        row = dict(zip(header, cells))
        name = row["run"]
        v = {k: _num(row[k]) for k in header[1:]}
        approx = any(a for _, a in v.values())
        subset = "100-sample subset" in name
        per_label = {}
        for lab, key in (("crack", "crack"), ("taping_area", "taping")):
            m, d = v[f"{key} mIoU"][0], v[f"{key} Dice"][0]
            if m is not None:
                per_label[lab] = {"miou": m, "dice": d, "n": {"crack": 806, "taping_area": 153}[lab] if not subset else None}
        short = re.sub(r"\s*\(.*\)", "", name).replace(" ", "_").lower()
        rec = new_record(
            "prompted", run_name(f"reported_drywall_{short}"),
            {"kind": "reported", "source": DRYWALL_SOURCE, "note": "approximate values" if approx else None},
            model={"name": name, "source": "CIDAS/clipseg-rd64-refined" + (" fine-tuned" if v["epochs"][0] else "")
                   if "SAM3" not in name else "facebook/sam3", "image_size": int(v["image size"][0]) if v["image size"][0] else None},
            dataset={"name": "drywall (crack + taping_area)", "split": "test", "n": 100 if subset else 959},
            config={"threshold": v["threshold"][0], "epochs": int(v["epochs"][0] or 0), "seed": 42,
                    # the report's protocol: canonical prompt per row, scored at the model's size, prob >= threshold
                    "prompts": "canonical", "score_at": "model", "threshold_rule": ">="},
            metrics={"overall": {"miou": v["mIoU"][0], "dice": v["Dice"][0]}, "per_label": per_label},
            timing={"seconds_per_image": v["infer s/img"][0], "train_seconds": v["train s"][0], "device": "cuda (Colab T4)"},
        )
        if name.startswith("clipseg_ft_e8_352_v1") and sens:
            rec["threshold_sweep"] = [{"split": "test", "role": "sensitivity", "threshold": t, "miou": m, "dice": d}
                                      for t, (m, d) in sorted(sens.items())]
        out.append(rec)
    return out


# Published rows SegLab can run, with the switches that run them (`evaluate-semantic --method M [--rcs --sfr]`)
# and the variant label SegLab's own records carry, so the dashboard pairs them. Others are not runnable here.
RUNNABLE = {
    "SCLIP": ("sclip", {"pamr": False, "rcs": False, "sfr": False}, "SCLIP"),
    "NACLIP (no PAMR)": ("naclip", {"pamr": False, "rcs": False, "sfr": False}, "NACLIP"),
    "NACLIP + ResCLIP": ("naclip", {"pamr": False, "rcs": True, "sfr": True}, "NACLIP + ResCLIP (RCS, SFR)"),
}


def _runnable(method: str) -> dict:
    key = "SCLIP" if method.startswith("SCLIP") else method
    if key not in RUNNABLE:
        return {"method": re.sub(r"[^a-z0-9]+", "_", method.split(",")[0].split("(")[0].lower()).strip("_"),
                "variant": method, "runnable_in_seglab": False}
    m, switches, variant = RUNNABLE[key]
    return {"method": m, "variant": variant, **switches, "runnable_in_seglab": True}


def openvocab_records(text: str) -> list[dict]:
    table = next(t for t in _tables(text) if t[0][0] == "method")
    header = table[0]
    out = []
    for cells in table[1:]:
        row = dict(zip(header, cells))
        method = row["method"]
        for col, ds in OPENVOCAB_DATASETS.items():
            val, _ = _num(row.get(col, "–"))
            if val is None:
                continue
            short = re.sub(r"[^a-z0-9]+", "_", method.lower()).strip("_")
            out.append(new_record(
                "openvocab", run_name(f"reported_openvocab_{short}_{ds}"),
                {"kind": "reported", "source": OPENVOCAB_SOURCES.get(method, OPENVOCAB_SOURCES.get(
                    method.split(",")[0], "reported_results.md"))},
                model={"name": method, "image_size": None, "source": "CLIP ViT-B/16 (OpenAI)" + (
                    " + SAM2 masks and the other models its README lists" if "SAM2" in method else "")},
                dataset={"name": ds, "split": "val", "n": None},
                config={"published_method": method, **_runnable(method)},
                metrics={"overall": {"miou": round(val / 100.0, 6)}},
                timing={"seconds_per_image": None, "device": None},
            ))
    return out


def import_reported(reference: Path, out_dir: Path) -> list[Path]:
    reference = Path(reference)
    if not reference.is_file():
        raise BadInput(f"Reference file not found: {reference}")
    text = reference.read_text()
    try:
        records = drywall_records(text) + openvocab_records(text)
    except (StopIteration, KeyError, ValueError) as exc:
        raise BadInput(f"{reference} does not have the expected tables ({exc!r}).") from None
    paths = []
    for rec in records:
        sub = "drywall" if rec["task"] == "prompted" else "openvocab"
        rec["created"] = "2026-11-22T00:00:00+00:00"  # fixed, so a re-import changes nothing
        paths.append(write_record(rec, Path(out_dir) / sub / f"{rec['run_id']}.json"))
    return paths
