import json

import pandas as pd
import pytest

from conftest import REPORTED_RUNS, measured_record
from core.results.records import write_record
from core.results.runs import compare, filter_runs, load_runs


def test_loads_valid_runs_and_lists_broken_files(results_dir):
    runs = load_runs(results_dir)
    assert REPORTED_RUNS == 49 and len(runs.table) == REPORTED_RUNS + 2
    assert set(runs.table["provenance"]) == {"measured", "reported"}
    assert runs.problems == [("runs/broken.json", runs.problems[0][1])]
    assert "not valid JSON" in runs.problems[0][1]


def test_wrong_schema_version_empty_folder_and_large_file(tmp_path):
    assert load_runs(tmp_path / "none").table.empty
    assert load_runs(tmp_path).table.empty and load_runs(tmp_path).problems == []
    rec = measured_record("old", 0.2)
    rec["schema_version"] = 0
    (tmp_path / "old.json").write_text(json.dumps(rec))
    big = measured_record("big", 0.4, per_prompt={f"prompt {i}": {"miou": 0.1, "dice": 0.2, "n": 1} for i in range(60000)})
    write_record(big, tmp_path / "big.json")
    assert (tmp_path / "big.json").stat().st_size > 5 * 2**20
    (tmp_path / "list.json").write_text("[1, 2]")
    runs = load_runs(tmp_path)
    assert list(runs.table["name"]) == ["big"]
    reasons = dict(runs.problems)
    assert "schema_version 0" in reasons["old.json"] and "JSON object" in reasons["list.json"]


def test_a_new_file_is_picked_up_without_restart(tmp_path):
    write_record(measured_record("one", 0.2), tmp_path / "one.json")
    assert len(load_runs(tmp_path).table) == 1
    write_record(measured_record("two", 0.3), tmp_path / "two.json")
    assert len(load_runs(tmp_path).table) == 2


def test_filters(results_dir):
    t = load_runs(results_dir).table
    assert set(filter_runs(t, task=["prompted"])["task"]) == {"prompted"}
    assert set(filter_runs(t, provenance=["measured"])["name"]) == {"fixture_measured_a", "fixture_measured_b"}
    assert list(filter_runs(t, search="E16_512")["name"]) == ["reported_drywall_clipseg_ft_e16_512_thr04_v1"]
    assert len(filter_runs(t, dataset=["coco_stuff164k"], split=["val"])) == 7  # 5 dense CLIP rows, 2 CorrCLIP
    assert filter_runs(t, model=["nothing"]).empty


def test_compare_gives_the_right_deltas(results_dir):
    runs = load_runs(results_dir)
    d = compare(runs.records["runs/fixture_measured_a"], runs.records["runs/fixture_measured_b"])
    row = lambda s, k, m: d[(d.scope == s) & (d.key == k) & (d.metric == m)].iloc[0]
    assert row("overall", "", "miou")["delta"] == pytest.approx(0.05)
    assert row("per_label", "taping_area", "dice")["delta"] == pytest.approx(0.05)
    assert row("timing", "", "seconds_per_image")["delta"] == pytest.approx(0.2)
    assert row("per_prompt", "segment crack", "miou")["a"] == pytest.approx(0.30)
    # a reported and a measured run share only what both have
    mixed = compare(runs.records["reported/drywall/reported_drywall_zero-shot_clipseg"], runs.records["runs/fixture_measured_a"])
    assert set(mixed.scope) == {"overall", "per_label", "timing"}
    assert "pixel_accuracy" not in set(mixed.metric)


def test_results_cli(results_dir, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    def cli(*a):
        return subprocess.run([sys.executable, "-m", "core", "results", "--root", str(results_dir), *a], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    r = cli("list", "--provenance", "measured")
    assert r.returncode == 0 and "fixture_measured_a" in r.stdout and "reported_" not in r.stdout
    assert "broken.json" in r.stderr
    r = cli("compare", "fixture_measured_a", "fixture_measured_b")
    assert r.returncode == 0 and "+0.0500" in r.stdout
    r = cli("show", "reported_drywall_clipseg_ft_e8_352_v1")
    assert "published figure" in r.stdout and '"miou": 0.4149' in r.stdout
    r = cli("export", str(tmp_path / "runs.csv"), "--task", "prompted")
    df = pd.read_csv(tmp_path / "runs.csv")
    assert r.returncode == 0 and len(df) == 9 and set(df.task) == {"prompted"}
    r = cli("show", "nope")
    assert r.returncode == 2 and "No run named" in r.stderr and "Traceback" not in r.stderr
