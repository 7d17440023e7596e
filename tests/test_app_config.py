"""The app as built (no server): every listener is callable by name, and the tabs are all there."""

import app


def test_every_event_listener_has_an_api_name():
    config = app.build_app().config
    names = [d.get("api_name") for d in config["dependencies"]]
    assert names and all(names), names
    assert len(names) == len(set(names))
    for required in ("segment_prompted", "segment_open_vocab", "track_video", "leaderboard", "runs_table",
                     "run_record", "compare_runs", "export_csv"):
        assert required in names
    tabs = [b["props"].get("label") for b in config["components"] if b.get("type") == "tabitem"]
    assert tabs[:4] == ["Prompted segmentation (drywall QA)", "Open-vocabulary segmentation", "Video instance tracking",
                    "Dashboard"]


def test_cli_flags_reach_the_launcher(monkeypatch):
    seen = {}
    monkeypatch.setattr(app.gr.Blocks, "launch", lambda self, **kw: seen.update(kw))
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    app.main(["--port", "7999", "--models", "tiny"])
    assert seen["server_name"] == "127.0.0.1" and seen["server_port"] == 7999 and seen["share"] is False
    assert seen["mcp_server"] is app.mcp_available() and seen["max_file_size"] == "100mb"
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # what a Space sets
    app.main([])
    assert seen["server_name"] == "0.0.0.0" and seen["server_port"] == 7860


def test_request_folders_older_than_an_hour_are_pruned(monkeypatch, tmp_path):
    import os
    import tempfile

    from demo.handling import REQUEST_ROOT_NAME, request_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = tmp_path / REQUEST_ROOT_NAME / "masks_old"
    old.mkdir(parents=True)
    os.utime(old, (0, 0))
    fresh = request_dir("masks_")
    assert fresh.is_dir() and fresh.parent == tmp_path / REQUEST_ROOT_NAME and not old.exists()


def test_preload_is_on_for_a_space_and_loads_in_the_background(monkeypatch):
    loaded = []
    monkeypatch.setattr(app.gr.Blocks, "launch", lambda self, **kw: None)
    monkeypatch.setattr(app, "preload", lambda names: loaded.append(list(names)))
    monkeypatch.delenv("SPACE_ID", raising=False)
    app.main(["--models", "tiny"])
    assert loaded == []
    monkeypatch.setenv("SPACE_ID", "someone/seglab")
    app.main(["--models", "tiny"])
    assert loaded == [app.MODELS]
    app.main(["--models", "tiny", "--no-preload"])
    assert loaded == [app.MODELS]


def test_gpu_is_the_handler_itself_without_spaces_and_keeps_its_signature(monkeypatch):
    import inspect
    import sys
    import types

    from demo.handling import gpu

    def handler(image, prompts="", threshold=0.5):
        return image, prompts, threshold

    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed
    assert gpu(handler) is handler
    calls = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda fn: (lambda *a, **k: calls.append(1) or fn(*a, **k))
    monkeypatch.setitem(sys.modules, "spaces", fake)
    wrapped = gpu(handler)
    assert list(inspect.signature(wrapped).parameters) == ["image", "prompts", "threshold"]
    assert wrapped("x", threshold=0.3) == ("x", "", 0.3) and calls == [1]
