"""The dashboard's public API as gradio_client sees it (the running app, tiny models, fixture results): five
endpoints with explanatory names, numbers typed as numbers, errors as messages."""

from __future__ import annotations

import pandas as pd
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from conftest import REPORTED_RUNS

DASHBOARD = ["/compare_runs", "/export_csv", "/leaderboard", "/run_record", "/runs_table"]


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def test_the_dashboard_exposes_exactly_its_five_endpoints(client, results_dir, monkeypatch):
    """Exactly five on the dashboard built alone (the other tabs have their own, and change on their own), every UI
    event private; in the running app the same five, with explanatory parameters and types."""
    import gradio as gr

    from demo import dashboard_tab

    monkeypatch.setenv("SEGLAB_RESULTS", str(results_dir))
    with gr.Blocks() as alone:
        with gr.Tabs() as tabs:
            with gr.Tab("Dashboard", id="dashboard"):
                dashboard_tab.build(alone, tabs)
    own = alone.get_api_info()
    assert sorted(own["named_endpoints"]) == DASHBOARD and not own["unnamed_endpoints"]
    api = client.view_api(return_format="dict", print_info=False)
    assert set(DASHBOARD) <= set(api["named_endpoints"])
    assert not any(n.startswith(("/dashboard", "/render", "/lambda")) for n in api["named_endpoints"])
    params = lambda name: [p["parameter_name"] for p in api["named_endpoints"][name]["parameters"]]
    assert params("/runs_table") == ["task", "dataset", "provenance", "search", "sort_by", "descending"]
    assert params("/export_csv") == params("/runs_table")
    assert params("/leaderboard") == ["task", "dataset", "metric"]
    assert params("/run_record") == ["key"] and params("/compare_runs") == ["key_a", "key_b"]
    kinds = {p["parameter_name"]: p["python_type"]["type"] for p in api["named_endpoints"]["/runs_table"]["parameters"]}
    assert kinds["descending"] == "bool" and "list[str]" in kinds["task"] and kinds["search"] == "str"


def test_leaderboard_opens_on_the_dataset_with_most_runs(client):
    """The published rows: COCO-Stuff-164k (open-vocabulary) has the most; CorrCLIP with SAM2 masks leads, NACLIP +
    ResCLIP leads the CLIP-only methods."""
    board = client.predict(api_name="/leaderboard")
    assert (board["task"], board["dataset"]) == ("openvocab", "coco_stuff164k")
    assert board["summary"].startswith("Best mIoU on COCO-Stuff-164k: CorrCLIP, SAM2 masks (8 points per side), 31.8")
    rows = board["runs"]
    methods = [r["method"] for r in rows]
    assert methods.index("NACLIP + ResCLIP") < methods.index("SCLIP (repo README)") < methods.index("SCLIP (paper)")
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["miou"] == pytest.approx(0.318) and isinstance(rows[0]["miou"], float)  # a fraction, a number
    assert rows[0]["s_per_image"] is None and rows[0]["source_url"] == "https://github.com/zdk258/CorrCLIP"
    drywall = client.predict("prompted", "drywall (crack + taping_area)", "dice", api_name="/leaderboard")
    dice = [r["dice"] for r in drywall["runs"]]
    assert dice == sorted(dice, reverse=True) and drywall["summary"].startswith("Best Dice on drywall")


def test_runs_table_filters_sorts_and_keeps_numbers(client):
    out = client.predict(task=["prompted"], provenance=["reported"], sort_by="miou", descending=True,
                         api_name="/runs_table")
    assert out["shown"] == 7 and out["total"] == REPORTED_RUNS + 2
    assert out["status"] == (f"7 of {REPORTED_RUNS + 2} runs shown (0 measured, 7 reported; reported rows are "
                             "shaded), sorted by mIoU, descending.")
    mious = [r["miou"] for r in out["runs"]]
    assert mious == sorted(mious, reverse=True) and all(isinstance(v, float) for v in mious)
    best = out["runs"][0]
    assert best["method"] == "CLIPSeg ft e16 @512, thr 0.4" and best["image_size"] == 512 and best["n"] == 959
    assert best["pixel_accuracy"] is None  # missing is null, never NaN or ""
    found = client.predict(search="e16_512", api_name="/runs_table")
    assert [r["name"] for r in found["runs"]] == ["reported_drywall_clipseg_ft_e16_512_thr04_v1"]
    with pytest.raises(AppError, match="Cannot sort by 'nope'"):
        client.predict(sort_by="nope", api_name="/runs_table")


def test_run_record_and_an_unknown_key(client):
    run = client.predict("runs/fixture_measured_a", api_name="/run_record")
    assert run["record"]["run_id"] == "fixture_measured_a" and run["link"] == "?run=runs/fixture_measured_a"
    assert run["provenance"].startswith("measured (SegLab, ") and "measured by SegLab" in run["about"]
    published = client.predict("reported/drywall/reported_drywall_zero-shot_clipseg", api_name="/run_record")
    assert published["provenance"] == "reported (report)" and published["source_url"].startswith("https://github.com/")
    with pytest.raises(AppError, match="No run 'runs/nope'"):
        client.predict("runs/nope", api_name="/run_record")


def test_compare_runs_says_which_is_better_in_each_direction(client):
    out = client.predict("runs/fixture_measured_a", "runs/fixture_measured_b", api_name="/compare_runs")
    rows = {(r["scope"], r["key"], r["metric"]): r for r in out["metrics"]}
    miou, speed = rows[("overall", "", "miou")], rows[("timing", "", "seconds_per_image")]
    assert miou["delta"] == pytest.approx(0.05) and miou["better"] == "b" and miou["higher_is_better"]
    assert speed["delta"] == pytest.approx(0.2) and speed["better"] == "a" and not speed["higher_is_better"]
    assert out["link"] == "?compare=runs/fixture_measured_a,runs/fixture_measured_b"
    assert out["a"]["method"].endswith("· fixture_measured_a")  # same method name: the run id tells them apart


def test_export_csv_follows_the_filters_and_the_order(client):
    path = client.predict(task=["prompted"], provenance=["reported"], sort_by="s_per_image", descending=False,
                          api_name="/export_csv")
    df = pd.read_csv(path)
    assert len(df) == 7 and set(df.provenance) == {"reported"}
    speeds = df["s_per_image"].dropna().tolist()
    assert speeds == sorted(speeds) and df["s_per_image"].isna().tolist() == [False] * 5 + [True] * 2  # blanks last
    shown = client.predict(task=["prompted"], provenance=["reported"], sort_by="s_per_image", api_name="/runs_table")
    assert list(df["run"]) == [r["run"] for r in shown["runs"]]  # the table's order, row for row
    with pytest.raises(AppError, match="Nothing to export"):
        client.predict(search="no run has this name", api_name="/export_csv")
