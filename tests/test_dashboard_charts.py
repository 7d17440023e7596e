"""The dashboard's charts on fixture and stored runs: one task and dataset per chart, the breakdown that has data,
directions on the axes, names that fit with the full name on hover, and the chart tabs that have something to show."""

from __future__ import annotations

import time

import pytest

from conftest import measured_record
from core.results import charts
from core.results.records import new_record, write_record
from core.results.runs import load_runs


def _openvocab(name, miou, dataset="coco_stuff164k", seconds=None, classes=None):
    metrics = {"overall": {"miou": miou, "pixel_accuracy": 0.5}}
    if classes:
        metrics["per_class"] = {c: {"iou": (i % 7) / 10, "pixels": 1000 - i} for i, c in enumerate(classes)}
    return new_record("openvocab", name, {"kind": "measured", "command": "test"},
                      model={"name": "SCLIP", "image_size": 336}, dataset={"name": dataset, "split": "val"},
                      config={"variant": f"SCLIP {name}"}, metrics=metrics,
                      timing={"seconds_per_image": seconds, "device": "cpu" if seconds else None})


@pytest.fixture
def mixed(tmp_path):
    """Both tasks: prompted runs on 'synthetic' (one with training curves) and open-vocabulary runs on two datasets."""
    for rec in (measured_record("p_a", 0.30, epochs=3), measured_record("p_b", 0.35, seconds=0.7),
                _openvocab("o_a", 0.20, seconds=1.5, classes=[f"class {i}" for i in range(50)]),
                _openvocab("o_b", 0.25), _openvocab("o_c", 0.40, dataset="voc21")):
        write_record(rec, tmp_path / "runs" / f"{rec['run_id']}.json")
    return load_runs(tmp_path)


def test_selection_and_every_chart_hold_one_task(mixed):
    here = charts.select(mixed, "openvocab", "coco_stuff164k")
    assert sorted(here) == ["runs/o_a", "runs/o_b"]
    assert sorted(charts.select(mixed, "openvocab")) == ["runs/o_a", "runs/o_b", "runs/o_c"]
    for fig in (charts.per_run(here), charts.breakdown(here), charts.speeds(charts.select(mixed, "openvocab")),
                charts.speed_quality(here)):
        drawn = {str(k) for tr in fig.data for k in (tr.y if tr.type != "heatmap" else tr.x) if k is not None}
        assert not any(k.startswith("runs/p_") for k in drawn)
    with pytest.raises(ValueError, match="one task"):
        charts.per_run(mixed.records)
    with pytest.raises(ValueError, match="one task"):
        charts.speeds(mixed.records)


def test_per_run_bars_rank_in_the_metrics_direction_and_fit_a_phone(mixed):
    fig = charts.per_run(charts.select(mixed, "openvocab", "coco_stuff164k"), "miou")
    bars = fig.data[0]
    assert list(bars.y) == ["runs/o_b", "runs/o_a"] and list(bars.x) == pytest.approx([25.0, 20.0])  # best first
    assert fig.layout.xaxis.title.text == "mIoU, % (higher is better)"
    assert fig.layout.width is None and fig.layout.autosize  # the container's width
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0  # legend below the plot
    slow = charts.per_run(charts.select(mixed, "prompted", "synthetic"), "s_per_image")
    assert list(slow.data[0].x) == [0.5, 0.7] and "lower is better" in slow.layout.xaxis.title.text


def test_long_names_are_cut_on_the_axis_and_whole_on_hover(tmp_path):
    long = "NACLIP + ResCLIP (RCS, SFR) with a rather long configuration"
    write_record(_openvocab("x", 0.2) | {"config": {"variant": long}}, tmp_path / "x.json")
    runs = load_runs(tmp_path)
    fig = charts.per_run(charts.select(runs, "openvocab", "coco_stuff164k"))
    tick = fig.layout.yaxis.ticktext[0]
    assert len(tick) <= charts.LABEL_CHARS and tick.endswith("…")
    assert fig.data[0].customdata[0][0] == long + " @336"
    cut = charts.short("CLIPSeg zero-shot @352, thr 0.5 · fixture_a", 28)  # the run id that tells runs apart stays
    assert cut == "CLIPSeg zero-sh… · fixture_a" and len(cut) == 28


def test_breakdown_defaults_to_what_has_data(mixed, results_dir):
    stored = load_runs(results_dir)
    drywall = charts.select(stored, "prompted", "drywall (crack + taping_area)")
    assert charts.scopes(drywall) == ["per_label"]  # the published rows have no per-prompt breakdown
    heat = charts.breakdown(drywall)
    assert heat.data[0].type == "heatmap" and set(heat.data[0].x) == {"crack", "taping_area"}
    assert heat.layout.title.text == "mIoU per label"
    classes = charts.breakdown(charts.select(mixed, "openvocab", "coco_stuff164k"))
    assert "30 most frequent of 50" in classes.layout.title.text
    assert len(classes.data[0].y) == charts.MAX_COLUMNS and classes.data[0].y[0] == "class 0"  # classes down
    assert charts.scopes(charts.select(stored, "openvocab", "coco_stuff164k")) == []


def test_chart_tabs_have_data_only_where_runs_carry_it(mixed, results_dir):
    stored = load_runs(results_dir)
    drywall = charts.select(stored, "prompted", "drywall (crack + taping_area)")
    assert charts.has_sweeps(drywall) and not charts.has_training(drywall)
    synthetic = charts.select(mixed, "prompted", "synthetic")
    assert charts.has_training(synthetic)
    coco = charts.select(stored, "openvocab", "coco_stuff164k")
    assert not charts.has_sweeps(coco) and not charts.has_training(coco) and not charts.has_speeds(coco)
    train = charts.training(synthetic)
    name = "CLIPSeg zero-shot @35… · p_a"  # both prompted runs share a method name: the run id tells them apart
    assert [tr.name for tr in train.data] == [f"{name} train loss", f"{name} val loss", f"{name} val mIoU"]
    assert list(train.data[2].y) == pytest.approx([10, 20, 30])
    assert train.layout.yaxis.title.text == "loss (lower is better)"
    sweep = charts.sweeps(drywall)
    assert [tr.name for tr in sweep.data] == ["CLIPSeg ft e8 @352, thr 0.5 (test, sensitivity)"]


def test_speed_against_quality_labels_both_directions(results_dir):
    fig = charts.speed_quality(charts.select(load_runs(results_dir), "prompted", "drywall (crack + taping_area)"))
    assert fig.layout.xaxis.type == "log" and "lower is better" in fig.layout.xaxis.title.text
    assert "higher is better" in fig.layout.yaxis.title.text
    assert {tr.name for tr in fig.data} == {"reported"} and len(fig.data[0].x) == 5  # five published speeds


def test_thousand_runs_build_table_and_charts(tmp_path, capsys):
    for i in range(1000):
        write_record(measured_record(f"gen_{i:04d}", (i % 97) / 100, seconds=0.1 + i / 1000), tmp_path / f"gen_{i:04d}.json")
    t0 = time.perf_counter()
    runs = load_runs(tmp_path)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    here = charts.select(runs, "prompted", "synthetic")
    figs = [charts.per_run(here), charts.sweeps(dict(list(here.items())[:50])), charts.speed_quality(here),
            charts.speeds(here), charts.breakdown(here)]
    t_charts = time.perf_counter() - t0
    assert len(runs.table) == 1000 and all(f.data for f in figs)
    assert len(figs[0].data[0].y) == charts.MAX_RUNS  # the table holds the rest
    with capsys.disabled():
        print(f"\n[dashboard] 1000 runs: load {t_load:.2f} s, five charts {t_charts:.2f} s")
