"""`--record` on the benchmarks: a measured, speed-only record (random weights, synthetic input, timing and memory,
never a quality metric), and the dashboard showing it next to the published speeds, labelled.

The benchmarks build real-size models; here they build the tiny ones (same classes, same code path) to stay fast."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import ROOT
from core.results import charts
from core.results.leaderboard import default_view, leaderboard
from core.results.records import validate
from core.results.runs import load_runs


@pytest.fixture(scope="module")
def tiny_benches():
    import bench.openvocab_dense
    import bench.prompted
    import core.models.clipseg
    from core.models.clipseg import build_random_clipseg

    tiny = lambda folder, tiny=False, seed=0: build_random_clipseg(folder, tiny=True, seed=seed)
    real = bench.openvocab_dense.predictor
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench.prompted, "build_random_clipseg", tiny)
        mp.setattr(core.models.clipseg, "build_random_clipseg", tiny)  # bench.train imports it when it runs
        mp.setattr(bench.openvocab_dense, "predictor", lambda tiny=False: real(tiny=True))
        mp.setattr(bench.openvocab_dense, "VARIANTS", {"sclip": {}, "naclip": {"method": "naclip"}})  # two suffice
        yield


@pytest.fixture(scope="module")
def prompted_record(tiny_benches, tmp_path_factory):
    import bench.prompted

    out = tmp_path_factory.mktemp("bench") / "runs" / "bench_prompted_cpu.json"
    bench.prompted.main(["--sizes", "352", "--ks", "1", "2", "--repeats", "1", "--record", str(out)])
    return out


def _check_speed_record(path, task, command):
    rec = json.loads(path.read_text())
    assert validate(rec) == []
    assert rec["task"] == task and rec["provenance"]["kind"] == "measured"
    assert rec["provenance"]["command"].startswith(command) and "random weights" in rec["provenance"]["note"]
    assert rec["model"]["weights"] == "random" and rec["dataset"]["name"] == "synthetic"
    assert rec["config"]["speed_only"] is True and rec["metrics"] == {"overall": {}} and rec["threshold_sweep"] == []
    assert rec["memory"]["peak_rss_mb"] > 0 and rec["git_commit"] and rec["machine"]["cores"]
    return rec


def test_prompted_bench_records_its_speed(prompted_record):
    import bench.prompted

    rec = _check_speed_record(prompted_record, "prompted", "python -m bench.prompted --sizes 352 --ks 1 2")
    cases = rec["config"]["cases"]
    assert [(c["image_size"], c["prompts"]) for c in cases] == [(352, 1), (352, 2)]
    assert rec["timing"]["seconds_per_image"] == cases[0]["seconds_per_image"] > 0 and rec["timing"]["device"] == "cpu"
    assert rec["config"]["case"] == "1 prompt" and rec["run_id"] == "bench_prompted_cpu"
    with pytest.raises(SystemExit, match="already holds a record"):  # refused before anything is measured
        bench.prompted.main(["--record", str(prompted_record)])


def test_openvocab_and_train_benches_record_theirs(tiny_benches, tmp_path):
    import bench.openvocab_dense
    import bench.train

    out = tmp_path / "ov.json"
    bench.openvocab_dense.main(["--sides", "224", "--no-classes", "--repeats", "1", "--record", str(out)])
    rec = _check_speed_record(out, "openvocab", "python -m bench.openvocab_dense --sides 224")
    assert rec["model"]["image_size"] == 224 and [c["method"] for c in rec["config"]["cases"]["methods"]] == [
        "sclip", "naclip"]
    assert rec["timing"]["seconds_per_image"] == rec["config"]["cases"]["methods"][0]["seconds_per_image"]
    one = bench.train.one(64, 2, 1, freeze=False)  # one configuration, in this process
    bench.train.record(str(tmp_path / "train.json"), ["--sizes", "352"], [one], 1)
    rec = _check_speed_record(tmp_path / "train.json", "prompted", "python -m bench.train --sizes 352")
    assert rec["timing"]["seconds_per_train_step"] == one["s_per_step"] > 0 and "seconds_per_image" not in rec["timing"]
    assert rec["config"]["case"] == "training, batch 2, whole model"
    with pytest.raises(SystemExit, match="needs a timing"):
        bench.openvocab_dense.main(["--sides", "--no-classes", "--record", str(tmp_path / "none.json")])


def test_a_speed_only_record_never_carries_a_quality_metric(tmp_path):
    from bench.record import speed_record

    rec = speed_record(tmp_path / "x.json", "prompted", "bench.prompted", [], model={"name": "CLIPSeg"}, case="1 prompt",
                       timing={"seconds_per_image": 0.5, "device": "cpu"})
    assert validate(rec) == []
    rec["metrics"]["overall"]["miou"] = 0.3
    assert any("carries no quality metric" in p for p in validate(rec))
    rec["metrics"] = {"overall": {}, "per_label": {"crack": {"miou": 0.1}}}
    assert any("per_label" in p for p in validate(rec))


def test_the_dashboard_shows_measured_speeds_next_to_published_ones(prompted_record, tmp_path, monkeypatch):
    from demo import dashboard_tab

    shutil.copytree(ROOT / "results" / "reported", tmp_path / "reported")
    shutil.copytree(prompted_record.parent, tmp_path / "runs")
    runs = load_runs(tmp_path)
    assert default_view(runs) == ("openvocab", "coco_stuff164k")  # a speed-only dataset never becomes the first view
    fig = charts.speeds(charts.select(runs, "prompted"))
    groups = {tr.name: list(tr.y) for tr in fig.data}
    assert groups["measured by SegLab, random weights, synthetic image"] == ["runs/bench_prompted_cpu"]
    assert len(groups["reported (published figure)"]) == 5  # the drywall report's five timed runs
    assert "lower is better" in fig.layout.title.text and fig.layout.xaxis.type == "log"
    label = fig.layout.yaxis.ticktext[list(fig.layout.yaxis.tickvals).index("runs/bench_prompted_cpu")]
    assert label.startswith("CLIPSeg @352, 1 prompt") and "random weights" in fig.data[-1].customdata[0][0]
    table, _, summary = leaderboard(runs, "prompted", "synthetic")
    assert summary.startswith("No quality metric on synthetic. Fastest: CLIPSeg @352, 1 prompt (speed only, "
                              "random weights), ") and "s / image on cpu (measured); 1 run(s)." in summary
    assert list(table.columns) == ["rank", "method", "s / image", "provenance", "run"]
    monkeypatch.setenv("SEGLAB_RESULTS", str(tmp_path))
    out = dashboard_tab.render_view("prompted", "drywall (crack + taping_area)", "miou", None)
    tab_breakdown, tab_speed, tab_threshold, tab_training, tab_run = out[-5:]
    assert tab_speed["visible"] and tab_breakdown["visible"] and tab_threshold["visible"]
    assert not tab_training["visible"]  # no run here carries training curves: the tab is hidden, not empty
