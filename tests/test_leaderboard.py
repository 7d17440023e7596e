"""The dashboard's leaderboard on fixture runs: ranking, best values, formatting, names, provenance, deltas."""

from __future__ import annotations

import pandas as pd
import pytest

from core.results.leaderboard import (better_sign, default_view, display_name, leaderboard, provenance_label)
from core.results.records import new_record, write_record
from core.results.runs import compare, load_runs
from core.results.views import colour_deltas


def _openvocab(name, miou, kind="measured", seconds=None, dataset="coco_stuff164k", variant="SCLIP", **overall):
    prov = {"kind": kind, "command": "test"} if kind == "measured" else {
        "kind": "reported", "source": "ResCLIP README (yvhangyang/ResCLIP, CVPR 2025)"}
    cfg = {"variant": variant} if kind == "measured" else {"published_method": variant, "variant": variant}
    return new_record("openvocab", name, prov, model={"name": variant, "image_size": 336 if kind == "measured" else None},
                      dataset={"name": dataset, "split": "val"}, config=cfg,
                      metrics={"overall": {"miou": miou, **overall}},
                      timing={"seconds_per_image": seconds, "device": "cpu" if seconds else None})


@pytest.fixture
def runs(tmp_path):
    recs = [_openvocab("a", 0.224, "reported", variant="SCLIP (paper)"),
            _openvocab("b", 0.247, "reported", variant="NACLIP + ResCLIP"),
            _openvocab("c", 0.031, seconds=2.6, variant="SCLIP", pixel_accuracy=0.40),
            _openvocab("d", 0.029, seconds=3.6, variant="NACLIP + ResCLIP (RCS, SFR)", pixel_accuracy=0.45),
            _openvocab("e", None, seconds=1.2, variant="NACLIP"),
            _openvocab("f", 0.5, dataset="voc21")]
    for r in recs:
        write_record(r, tmp_path / "runs" / f"{r['run_id']}.json")
    return load_runs(tmp_path)


def test_opens_on_the_dataset_with_most_runs(runs):
    assert default_view(runs) == ("openvocab", "coco_stuff164k")


def test_ranking_best_marks_percentages_and_blanks(runs):
    table, best, summary = leaderboard(runs, "openvocab", "coco_stuff164k")
    assert list(table["method"]) == ["NACLIP + ResCLIP", "SCLIP (paper)", "SCLIP @336",
                                     "NACLIP + ResCLIP (RCS, SFR) @336", "NACLIP @336"]
    assert list(table["rank"]) == [1, 2, 3, 4, 5]
    assert list(table["mIoU"]) == ["24.7", "22.4", "3.1", "2.9", ""]  # percent, one decimal, blank when missing
    assert list(best["mIoU"]) == [True, False, False, False, False]
    assert list(table["pixel acc."]) == ["", "", "40.0", "45.0", ""]
    assert list(best["pixel acc."]) == [False, False, False, True, False]
    assert list(best["s / image"]) == [False, False, False, False, True]  # the fastest, lower is better
    assert table["s / image"].iloc[4] == "1.2 (cpu)" and table["s / image"].iloc[0] == ""
    assert summary.startswith("Best mIoU on COCO-Stuff-164k: NACLIP + ResCLIP, 24.7 (reported)")
    other, best_other, _ = leaderboard(runs, "openvocab", "voc21")
    assert list(other["method"]) == ["SCLIP @336"]
    assert "pixel acc." not in other.columns and "s / image" not in other.columns  # no run has them: left out
    assert list(best_other.columns) == list(other.columns)


def test_names_and_provenance_of_the_stored_published_runs():
    from core.results.views import results_root

    stored = load_runs(results_root())
    names = {k: display_name(r) for k, r in stored.records.items()}
    assert names["reported/drywall/reported_drywall_clipseg_ft_e16_512_thr04_v1"] == "CLIPSeg ft e16 @512, thr 0.4"
    assert names["reported/drywall/reported_drywall_zero-shot_clipseg"] == "CLIPSeg zero-shot @352, thr 0.5"
    rec = stored.records["reported/openvocab/reported_openvocab_naclip_resclip_ade20k"]
    assert provenance_label(rec) == ("reported (repo README)", "https://github.com/yvhangyang/ResCLIP")
    label, url = provenance_label(stored.records["reported/drywall/reported_drywall_zero-shot_clipseg"])
    assert label == "reported (report)" and url.startswith("https://github.com/")
    assert all(not n.startswith("reported_") for n in names.values())


def test_deltas_are_coloured_by_direction(runs):
    assert better_sign("miou") == 1 and better_sign("seconds_per_image") == -1 and better_sign("loss") == -1
    delta = compare(runs.record("runs/c"), runs.record("runs/d"))
    styled = colour_deltas(delta).to_html()
    spi = delta.index[delta["metric"] == "seconds_per_image"][0]
    miou = delta.index[delta["metric"] == "miou"][0]
    acc = delta.index[delta["metric"] == "pixel_accuracy"][0]
    assert delta.loc[spi, "delta"] > 0 and delta.loc[miou, "delta"] < 0 and delta.loc[acc, "delta"] > 0
    css = pd.Series({i: _cell_style(styled, i) for i in (spi, miou, acc)})
    assert "b3261e" in css[spi]  # slower: worse, red although the delta is positive
    assert "b3261e" in css[miou] and "137333" in css[acc]


def _cell_style(html: str, row: int) -> str:
    import re

    cell = re.search(rf'<td id="(T_\w+_row{row}_col5)"', html).group(1)
    return re.search(rf"#{cell}[^{{]*\{{([^}}]*)\}}", html).group(1)
