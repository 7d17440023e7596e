"""The running app (tiny models) through its named API endpoints, as gradio_client sees it."""

import json
import re
import zipfile

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from video_clips import write_clip, write_two_hour_clip

DEFAULTS = dict(ensemble=False, threshold=0.5, size=352, model="clipseg", open_r=0, close_r=0, min_px=0, opacity=0.5)


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def segment(client, files, labels=("crack",), prompts="", **kw):
    """The prompted endpoint: the first file as the photo, the others as more photos."""
    a = {**DEFAULTS, **kw}
    first = handle_file(str(files[0])) if files else None
    return client.predict(first, prompts, list(labels), a["threshold"], a["size"], a["model"], a["ensemble"],
                          a["open_r"], a["close_r"], a["min_px"], [handle_file(str(f)) for f in files[1:]],
                          a["opacity"], api_name="/segment_prompted")


PUBLIC = {
    "/segment_prompted": ["image", "prompts", "labels", "threshold", "size", "model", "ensemble", "opening_radius",
                          "closing_radius", "min_region_px", "more_images", "opacity"],
    "/segment_open_vocab": ["image", "classes", "method", "dense_method", "refinements", "short_side", "logit_scale",
                            "probability_threshold", "mhqr_stages", "query_scales", "max_queries", "grid_points",
                            "sam2_frame"],
    "/track_video": ["video", "classes", "keyframe_every", "processing_size", "max_frames", "stride",
                     "new_track_score"],
}
DASHBOARD = ["/leaderboard", "/runs_table", "/run_record", "/compare_runs", "/export_csv"]


def test_the_api_is_the_documented_endpoints_with_named_parameters_and_outputs(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert sorted(api["named_endpoints"]) == sorted([*PUBLIC, *DASHBOARD]) and not api["unnamed_endpoints"]
    for name, params in PUBLIC.items():
        info = api["named_endpoints"][name]
        assert [p["parameter_name"] for p in info["parameters"]] == params
        labels = [r["label"] for r in info["returns"]]
        assert labels and all(label and not label.startswith("value_") for label in labels), (name, labels)


def test_segment_endpoint_returns_masks_table_and_zip(client, wall_png):
    status, view, legend, pick, masks, table, zip_path = segment(client, [wall_png], prompts="segment drywall seam")
    assert status.startswith("Done: 2 mask(s) for 1 photo(s)")
    photo, drawn = (Image.open(v) for v in (view if isinstance(view, (list, tuple)) else view["value"]))
    assert photo.size == drawn.size == Image.open(wall_png).size  # the slider's two sides line up
    assert np.asarray(photo.convert("RGB")).tolist() != np.asarray(drawn.convert("RGB")).tolist()
    assert legend.index("segment drywall seam") > legend.index("segment crack") >= 0
    assert pick["choices"] == [["wall_one", "wall_one"]] and len(masks) == 2
    assert table["headers"] == ["photo", "prompt", "coverage %", "seconds"]
    assert [r[1] for r in table["data"]] == ["segment drywall seam", "segment crack"][::-1]
    assert all(round(r[2], 1) == r[2] for r in table["data"])  # percentages with one decimal
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == ["wall_one__segment_crack.png", "wall_one__segment_drywall_seam.png"]
    mask = Image.open(masks[0]["image"])
    assert mask.mode == "L" and mask.size == Image.open(wall_png).size


def make_inputs(tmp_path):
    files = {}
    p = tmp_path / "notes.txt"
    p.write_text("not an image")
    files["not an image"] = p
    p = tmp_path / "cut.png"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[:80])
    files["corrupt or truncated"] = p
    p = tmp_path / "zero.png"
    p.write_bytes(b"")
    files["empty (0 bytes)"] = p
    p = tmp_path / "huge.png"
    Image.new("1", (12000, 12000)).save(p)
    files["12000×12000"] = p
    return files


def test_bad_files_get_messages_and_the_server_stays_up(client, tmp_path, wall_png):
    for expected, f in make_inputs(tmp_path).items():
        status, view, legend, pick, masks, table, zip_path = segment(client, [f])
        assert expected in status and "Traceback" not in status, status
        assert masks == [] and zip_path is None and view is None
    status, *_ = segment(client, [wall_png])
    assert status.startswith("Done")


def test_unusual_but_valid_images_run(client, tmp_path):
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 4), dtype=np.uint8), "RGBA").save(rgba)
    g16 = tmp_path / "g16.png"
    Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16)).save(g16)
    gray = tmp_path / "gray.jpg"
    Image.new("L", (40, 30), 100).save(gray)
    status, view, legend, pick, masks, table, zip_path = segment(client, [rgba, g16, gray])
    assert status.startswith("Done: 3 mask(s) for 3 photo(s)")
    assert [c[0] for c in pick["choices"]] == ["rgba", "g16", "gray"] and pick["visible"] is True
    assert all(Image.open(m["image"]).size == (40, 30) for m in masks)


@pytest.mark.parametrize("labels,prompts,expected", [
    ((), "", "No prompt"),
    ((), "\n".join(f"segment thing {i}" for i in range(200)), "200 prompts"),
])
def test_bad_prompts_get_messages(client, wall_png, labels, prompts, expected):
    status, _, _, _, masks, _, _ = segment(client, [wall_png], labels=labels, prompts=prompts)
    assert expected in status and masks == []


def test_no_photo(client):
    status, *_ = segment(client, [])
    assert "Upload a photo" in status


def test_missing_weights_show_in_the_tab(monkeypatch, wall_png):
    """Real mode with no copy and no hub: the tab says which model and which variable, and does not raise."""
    from core.models import model_registry
    from demo.prompted_tab import MODELS, segment_prompted
    from demo.handling import model_status

    monkeypatch.setenv("SEGLAB_MODELS", "real")
    monkeypatch.delenv("SEGLAB_CLIPSEG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(model_registry, "_REACHABLE", {})
    status, view, legend, pick, masks, table, zip_path, views = segment_prompted(str(wall_png), "", ["crack"])
    assert status.startswith("**Model missing.**") and "SEGLAB_CLIPSEG" in status and "clipseg" in status
    assert masks == [] and zip_path is None
    notice = model_status(MODELS)
    assert notice.startswith("**Model missing.**") and "SEGLAB_CLIPSEG" in notice and "save_pretrained" in notice


def test_fine_tuned_folder_is_used_with_its_threshold(client, models_dir, wall_png, monkeypatch):
    import json

    from demo.prompted_tab import list_models, on_model_change

    monkeypatch.setenv("SEGLAB_MODELS_DIR", str(models_dir))
    folder = str(models_dir / "drywall_ft")
    stored = json.loads((models_dir / "drywall_ft" / "seglab.json").read_text())["threshold"]
    assert list_models()["choices"] == ["clipseg", folder]
    assert on_model_change(folder) == (stored, 352) and on_model_change("clipseg") == (0.5, 352)
    status, *_ = segment(client, [wall_png], model=folder, threshold=stored)
    assert status.startswith("Done") and f"threshold {stored}" in status


STAGES_ON = ["queries", "masks", "merge", "semantic_map", "negatives"]


def openvocab(client, f, classes, method="mhqr", switches=(), short=336, stages=STAGES_ON, scales=(0.25, 0.5, 1.0),
              max_queries=200, grid=8, dense_method="sclip", sam2_frame="native"):
    return client.predict(handle_file(str(f)), classes, method, dense_method, list(switches), short, 40, 0.0,
                          list(stages), list(scales), max_queries, grid, sam2_frame, api_name="/segment_open_vocab")


def dense(client, f, classes, switches=(), short=336, method="sclip"):
    status, overlay, slider, points, queries, inspect, note, seconds, share = openvocab(
        client, f, classes, method, switches, short)
    return status, overlay, share


def test_openvocab_endpoint(client, wall_png):
    status, overlay, share = dense(client, wall_png, "wall, plaster\ncrack\nsky", ["PAMR", "ResCLIP SFR"])
    assert status.startswith("Done with SCLIP + ResCLIP (SFR) + PAMR: 3 class(es)") and "pamr(" in status
    nac = dense(client, wall_png, "wall\ncrack", ["ResCLIP RCS", "ResCLIP SFR"], short=224, method="naclip")[0]
    assert nac.startswith("Done with NACLIP + ResCLIP (RCS, SFR): 2 class(es)") and "rcs(" in nac
    assert [r[0] for r in share["data"]] and sorted(r[0] for r in share["data"]) == ["crack", "sky", "wall"]
    assert sum(r[1] for r in share["data"]) == pytest.approx(100, abs=0.1)
    annotations = overlay["value"]["annotations"]  # the value with the classes' colours (the points' colours)
    assert {a["label"] for a in annotations} <= {"wall", "crack", "sky"}
    assert set(overlay["color_map"]) == {"wall", "crack", "sky"} and overlay["color_map"]["wall"] == "#e6194b"


def test_openvocab_bad_inputs(client, wall_png, tmp_path):
    assert "at least one class" in dense(client, wall_png, " , ")[0]
    assert "300 classes" in dense(client, wall_png, "\n".join(f"thing {i}" for i in range(300)))[0]
    assert "listed twice" in dense(client, wall_png, "cat\ndog\ncat")[0]
    assert "SCLIP: 2 class(es)" in dense(client, wall_png, "猫\nçà")[0]
    assert "SCLIP: 1 class(es)" in dense(client, wall_png, "cat")[0]
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (3, 2), (10, 20, 30)).save(tiny)
    assert dense(client, tiny, "cat\ndog")[0].startswith("Done")
    strip = tmp_path / "strip.png"
    Image.new("RGB", (4000, 20)).save(strip)
    assert "less extreme shape" in dense(client, strip, "cat")[0]
    huge = tmp_path / "huge.png"
    Image.new("1", (12000, 12000)).save(huge)
    assert "12000×12000" in dense(client, huge, "cat")[0]


def test_mhqr_endpoint_returns_query_points_table_and_stage_seconds(client, wall_png):
    status, overlay, slider, points, queries, inspect, note, seconds, share = openvocab(
        client, wall_png, "wall\ncrack\nsky")
    assert status.startswith("Done with MHQR on SCLIP: 3 class(es);") and "mhqr(queries, masks, merge" in status
    rows = queries["data"]
    assert 10 <= len(rows) <= 200 and f"{len(rows)} SAM2 prompt(s)" in status
    assert queries["headers"][:3] == ["#", "class", "scale"] and [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert {r[1] for r in rows} <= {"wall", "crack", "sky"} and {r[2] for r in rows} <= {0.25, 0.5, 1.0}
    assert all(r[7] in ("coarse", "medium", "fine") for r in rows)
    assert all(r[8].startswith("region ") or r[8].startswith("dropped") for r in rows)
    assert Image.open(points).size == Image.open(wall_png).size  # drawn at the image's size (under 1280 px)
    assert [r[0] for r in seconds["data"]] == ["dense", "sam2_image", "queries", "masks", "refine", "merge",
                                                "semantic_map"]
    assert len(slider) == 2 and all(Image.open(p).size == Image.open(wall_png).size for p in slider)
    assert f"{len(rows)} query points" in note
    grid = openvocab(client, wall_png, "wall\ncrack", method="grid-vote", grid=4)
    assert grid[0].startswith("Done with grid-vote (4×4 points) on SCLIP") and "16 SAM2 prompt(s)" in grid[0]
    assert grid[3] is None and all(v in (None, "") for row in grid[4]["data"] for v in row)  # MHQR's alone
    assert "query points are MHQR's" in grid[6]
    off = openvocab(client, wall_png, "wall\ncrack", stages=["queries", "masks", "semantic_map"], scales=[0.5])
    assert "mhqr(queries, masks, semantic_map)" in off[0] and {r[2] for r in off[4]["data"]} == {0.5}
    assert "at least one query scale" in openvocab(client, wall_png, "wall", scales=[])[0]
    assert "(SAM2 frame 256)" in status  # the tiny model's own frame
    assert "(SAM2 frame 512)" in openvocab(client, wall_png, "wall\ncrack", sam2_frame="512")[0]


def track(client, path, classes="disc, square, triangle, ring", keyframe=5, size=256, max_frames=10, new_score=0.0):
    return client.predict(handle_file(str(path)), classes, keyframe, size, max_frames, 1, new_score,
                          api_name="/track_video")


def test_video_tracking_endpoint_returns_an_h264_video_tracks_and_json(client, tmp_path):
    import av

    from core.data.examples import example_clips

    status, video, table, timeline, tracks_json, pick = track(client, example_clips()["shapes_crossing"])
    assert status.startswith("Done:") and "in 10 frames" in status and "the frame cap" in status
    path = video["video"] if isinstance(video, dict) else video
    with av.open(path) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (256, 192)
        assert sum(1 for _ in c.decode(video=0)) == 10
    data = json.loads(open(tracks_json).read())
    rows = table["data"]
    assert len(rows) == len(data["tracks"]) >= 1 and [r[0] for r in rows] == [t["id"] for t in data["tracks"]]
    assert all(r[1] in ("disc", "square", "triangle", "ring") and 0 <= r[3] <= r[4] <= 9 for r in rows)
    assert data["size"] == [192, 256] and data["n_frames"] == 10
    assert f"{len(rows)} track(s) kept" in status


def test_video_tracking_bad_inputs_get_messages(client, tmp_path, wall_png):
    from core.data.examples import example_clips

    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    assert "not a video" in track(client, not_video)[0]
    assert "at least one class" in track(client, example_clips()["shapes_crossing"], classes=" , ")[0]
    assert "is an image" in track(client, wall_png)[0]
    assert "no video frame" in track(client, write_clip(tmp_path / "zero.mkv", []))[0]
    assert re.search(r"lasts 2 h 00 min .* limit", track(client, write_two_hour_clip(tmp_path / "long.mkv"))[0])
    grey = [np.full((320, 180, 3), 40 + 20 * i, np.uint8) for i in range(4)]
    one = track(client, write_clip(tmp_path / "one.mp4", grey[:1]))
    assert one[0].startswith("Done:") and "in 1 frames" in one[0]
    portrait = track(client, write_clip(tmp_path / "portrait.mp4", grey), size=256)
    assert portrait[0].startswith("Done:") and json.loads(open(portrait[4]).read())["size"] == [256, 144]
    odd = track(client, write_clip(tmp_path / "odd.mkv", [np.zeros((33, 47, 3), np.uint8)] * 3, codec="ffv1",
                                   pix_fmt="yuv444p"), size=256)
    assert odd[0].startswith("Done:") and json.loads(open(odd[4]).read())["size"] == [33, 47]
    vfr = track(client, write_clip(tmp_path / "vfr.mkv", grey, rate=25, pts_ms=[0, 40, 300, 310]))
    assert vfr[0].startswith("Done:") and [f["time"] for f in json.loads(open(vfr[4]).read())["frames"]] == \
        pytest.approx([0, 0.04, 0.3, 0.31])
    nothing = track(client, example_clips()["shapes_crossing"], new_score=1.0)  # no detection is confident enough
    assert "0 track(s) kept" in nothing[0] and "No object of these classes was tracked" in nothing[0]
    assert not any(any(v not in (None, "") for v in row) for row in nothing[2]["data"])


def test_mcp_lists_the_public_endpoints_as_tools(app_url):
    import urllib.request

    pytest.importorskip("mcp")
    with urllib.request.urlopen(app_url + "gradio_api/mcp/schema", timeout=60) as r:
        tools = json.loads(r.read())
    names = sorted(t["name"] for t in tools)
    assert names == sorted(n.strip("/") for n in [*PUBLIC, *DASHBOARD]), names
    described = {t["name"]: t.get("description", "") for t in tools}
    assert "Returns" in described["segment_prompted"] and "track" in described["track_video"].lower()
