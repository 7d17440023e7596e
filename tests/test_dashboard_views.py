"""What the dashboard's tables say, on fixture runs: readable cells, reading order, sorting, names that tell runs apart
where they are shown together, the comparison in words and colours, and JSON that keeps numbers as numbers."""

from __future__ import annotations

import pytest

from conftest import measured_record
from core.errors import BadInput
from core.results.records import write_record
from core.results.runs import compare, load_runs, sort_runs
from core.results.views import BAD, GOOD, compare_display, plain, readable_table, shown_columns, status_text


@pytest.fixture
def runs(tmp_path):
    a = measured_record("run_a", 0.30, seconds=0.25)
    b = measured_record("run_b", 0.35, seconds=0.5)
    c = measured_record("run_c", 0.40)
    c["dataset"]["name"] = "elsewhere"
    c["timing"] = {"seconds_per_image": None, "device": None}
    c["memory"] = {"peak_rss_mb": 1452.9}
    for rec in (a, b, c):
        write_record(rec, tmp_path / "runs" / f"{rec['run_id']}.json")
    return load_runs(tmp_path)


def test_names_tell_runs_apart_only_where_they_meet(runs):
    names = dict(zip(runs.table["run"], runs.table["method"]))
    assert names["runs/run_a"] == "CLIPSeg zero-shot @352, thr 0.5 · run_a"  # same method, same dataset as run_b
    assert names["runs/run_c"] == "CLIPSeg zero-shot @352, thr 0.5"  # alone on its dataset


def test_the_readable_table(runs):
    table = sort_runs(runs.table, "miou", descending=True)
    shown = readable_table(table, ["device", "peak_rss_mb", "miou", "method", "dataset", "image_size", "s_per_image"])
    assert list(shown.columns) == ["method", "dataset", "mIoU %", "s / image", "device", "image size", "peak RSS MB"]
    assert list(shown["mIoU %"]) == ["40.0", "35.0", "30.0"]  # percentages, one decimal, in the sorted order
    assert list(shown["s / image"]) == ["", "0.5", "0.25"] and list(shown["device"]) == ["", "cpu", "cpu"]  # blanks
    assert list(shown["image size"]) == ["352"] * 3 and shown["peak RSS MB"].iloc[0] == "1453"
    assert shown_columns(runs.table, None)[:3] == ["method", "dataset", "miou"]


def test_sorting_puts_missing_values_last_and_names_a_bad_column(runs):
    assert list(sort_runs(runs.table, "s_per_image")["name"]) == ["run_a", "run_b", "run_c"]
    assert list(sort_runs(runs.table, "s_per_image", descending=True)["name"]) == ["run_b", "run_a", "run_c"]
    assert sort_runs(runs.table, "") is runs.table
    with pytest.raises(BadInput, match="Cannot sort by 'speed'"):
        sort_runs(runs.table, "speed")
    assert status_text(runs, runs.table, "miou", True) == (
        "3 of 3 runs shown (3 measured, 0 reported; reported rows are shaded), sorted by mIoU, descending.")


def test_the_comparison_in_words_and_colours(runs):
    delta = compare(runs.record("runs/run_a"), runs.record("runs/run_b"))
    styled = compare_display(delta)
    rows = styled.data.set_index(["where", "metric"])
    assert rows.loc[("overall", "mIoU %")].tolist() == ["30.0", "35.0", "+5.00", "better"]
    assert rows.loc[("timing", "s / image")].tolist() == ["0.25", "0.5", "+0.25", "worse"]  # slower is worse
    assert rows.loc[("overall", "pixel acc. %")].tolist() == ["90.0", "90.0", "+0.00", "same"]
    html = styled.to_html()
    assert GOOD.split(";")[0] in html and BAD.split(";")[0] in html
    assert list(styled.data["where"])[:4] == ["overall", "overall", "overall", "timing"]  # headline numbers first
    assert list(compare_display(delta.iloc[:0]).columns) == ["where", "metric", "A", "B", "B − A", "B is"]


def test_json_rows_keep_numbers_and_nulls(runs):
    rows = {r["name"]: r for r in plain(runs.table)}
    assert rows["run_a"]["miou"] == 0.3 and rows["run_a"]["image_size"] == 352 and isinstance(rows["run_a"]["n"], int)
    assert rows["run_c"]["s_per_image"] is None and rows["run_c"]["device"] is None
    assert rows["run_c"]["peak_rss_mb"] == pytest.approx(1452.9)


def test_a_published_runs_source_is_named_and_linked_never_an_internal_file(results_dir):
    from core.results.runs import provenance_text

    stored = load_runs(results_dir)
    key = "reported/drywall/reported_drywall_zero-shot_clipseg"
    assert ".txt" in stored.record(key)["provenance"]["source"]  # the record keeps where the importer read it
    text = provenance_text(key, stored.record(key))
    assert "Source: [Prompted Segmentation for Drywall QA — Final Report](https://github.com/" in text
    assert ".txt" not in text and "seeds/" not in text
