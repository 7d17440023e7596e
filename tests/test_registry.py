import threading
import time

import pytest
import torch

from core.models.clipseg import CLIPSEG_SPEC
from core.errors import ModelUnavailable
from core.models import ModelRegistry, ModelSpec


def counting_spec(calls, env_var="SEGLAB_TESTMODEL"):
    def loader(location, device, dtype, local_only):
        calls.append(location)
        time.sleep(0.05)
        return object()

    return ModelSpec("testmodel", "nobody/none", env_var, "test", loader, lambda folder: folder.mkdir(parents=True))


def test_tiny_mode_builds_once_and_loads_once_across_threads(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGLAB_MODELS", "tiny")
    monkeypatch.setenv("SEGLAB_CACHE", str(tmp_path))
    calls = []
    reg = ModelRegistry(device=torch.device("cpu"))
    reg.register(counting_spec(calls))
    got = []
    threads = [threading.Thread(target=lambda: got.append(reg.get("testmodel"))) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(calls) == 1 and len({id(g) for g in got}) == 1
    assert calls[0] == str(tmp_path / "tiny" / "testmodel-v1")


def test_env_var_overrides_and_missing_folder_says_what_to_set(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGLAB_MODELS", "real")
    monkeypatch.setenv("SEGLAB_TESTMODEL", str(tmp_path / "nowhere"))
    reg = ModelRegistry(device=torch.device("cpu"))
    reg.register(counting_spec([]))
    with pytest.raises(ModelUnavailable) as err:
        reg.get("testmodel")
    msg = str(err.value)
    assert "testmodel" in msg and "SEGLAB_TESTMODEL" in msg and "nowhere" in msg


def test_offline_hub_fails_fast_with_the_variable_to_set(monkeypatch):
    monkeypatch.setenv("SEGLAB_MODELS", "real")
    monkeypatch.delenv("SEGLAB_CLIPSEG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reg = ModelRegistry(device=torch.device("cpu"))
    reg.register(CLIPSEG_SPEC)
    t0 = time.monotonic()
    with pytest.raises(ModelUnavailable) as err:
        reg.get("clipseg")
    assert time.monotonic() - t0 < 20
    msg = str(err.value)
    assert "CIDAS/clipseg-rd64-refined" in msg and "SEGLAB_CLIPSEG" in msg and "SEGLAB_MODELS=tiny" in msg
    with pytest.raises(ModelUnavailable):  # remembered: no second slow attempt
        reg.get("clipseg")


def test_a_folder_path_loads_through_the_family_loader(monkeypatch, tmp_path):
    calls = []
    reg = ModelRegistry(device=torch.device("cpu"))
    reg.register(counting_spec(calls))
    (tmp_path / "ft").mkdir()
    reg.get(str(tmp_path / "ft"), family="testmodel")
    assert calls == [str((tmp_path / "ft").resolve())]
    with pytest.raises(ModelUnavailable, match="does not exist"):
        reg.get(str(tmp_path / "missing"), family="testmodel")


def test_real_tiny_clipseg_loads_from_saved_folder(tiny_clipseg):
    from pathlib import Path

    folder = Path(tiny_clipseg.location)
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert (folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file()
    assert type(tiny_clipseg.model).__name__ == "CLIPSegForImageSegmentation"
    assert len(tiny_clipseg.processor.tokenizer) == 49408


def test_fresh_copies_are_new_and_leave_the_shared_one_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGLAB_MODELS", "tiny")
    monkeypatch.setenv("SEGLAB_CACHE", str(tmp_path))
    calls = []
    reg = ModelRegistry(device=torch.device("cpu"))
    reg.register(counting_spec(calls))
    a, b = reg.fresh("testmodel"), reg.fresh("testmodel")
    assert a is not b and len(calls) == 2 and reg.loaded() == []
    shared = reg.get("testmodel")
    assert shared is not a and reg.get("testmodel") is shared and len(calls) == 3


def test_status_says_where_weights_would_come_from_without_loading(monkeypatch, tmp_path):
    from core.models import model_registry
    from core.models.openclip import OPENCLIP_SPEC

    calls = []
    reg = ModelRegistry(device=torch.device("cpu"))
    reg.register(counting_spec(calls))
    reg.register(OPENCLIP_SPEC)
    monkeypatch.setenv("SEGLAB_MODELS", "tiny")
    assert reg.status("testmodel").state == "ready" and "tiny" in reg.status("testmodel").detail
    monkeypatch.setenv("SEGLAB_MODELS", "real")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SEGLAB_TESTMODEL", str(empty))
    st = reg.status("testmodel")
    assert st.state == "missing" and "holds none of config.json" in st.detail and "save_pretrained" in st.detail
    (empty / "config.json").write_text("{}")
    assert reg.status("testmodel").state == "ready"
    monkeypatch.setenv("SEGLAB_OPENCLIP", str(tmp_path / "nowhere.pt"))
    st = reg.status("openclip")
    assert st.state == "missing" and "ViT-B-16.pt" in st.detail and "save_pretrained" not in st.detail
    with pytest.raises(ModelUnavailable, match="ViT-B-16.pt") as err:
        reg.get("openclip")
    assert "save_pretrained" not in str(err.value)
    monkeypatch.delenv("SEGLAB_TESTMODEL")
    monkeypatch.setattr(model_registry, "_in_hub_cache", lambda hub_id, filename: False)
    monkeypatch.setattr(model_registry, "hub_reachable_cached", lambda: (False, "the hub cannot be reached"))
    st = reg.status("testmodel")
    assert st.state == "missing" and "SEGLAB_TESTMODEL" in st.detail and "cannot be reached" in st.detail
    monkeypatch.setattr(model_registry, "hub_reachable_cached", lambda: (True, ""))
    assert reg.status("testmodel").state == "download"
    monkeypatch.setattr(model_registry, "_in_hub_cache", lambda hub_id, filename: hub_id == "nobody/none")
    assert reg.status("testmodel").state == "ready" and "cache" in reg.status("testmodel").detail
    assert calls == []  # nothing was loaded


def test_the_hub_cache_check_reads_a_snapshot(tmp_path):
    from core.models.model_registry import _in_hub_cache

    repo = tmp_path / "models--nobody--none"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert not _in_hub_cache("nobody/none", "config.json", cache_dir=str(tmp_path))
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    assert _in_hub_cache("nobody/none", "config.json", cache_dir=str(tmp_path))
    assert not _in_hub_cache("nobody/other", "config.json", cache_dir=str(tmp_path))
