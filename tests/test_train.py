import csv
import json
import time

import pytest
import torch

from core.errors import BadInput
from core.prompted.manifest import read_manifest, write_manifest
from core.prompted.train import TrainConfig, Trainer, collapse_warning, fresh_copy, train, validate
from drawn_sets import drawn_manifest


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    return drawn_manifest(tmp_path_factory.mktemp("drawn"), n=40)


def test_training_really_learns(drawn, tmp_path, capsys):
    c = fresh_copy("clipseg")
    ip = c.processor.image_processor
    val_rows = read_manifest(drawn, "val")
    before = validate(c, val_rows, 352, 1.0, ip.image_mean, ip.image_std)["val_miou_best"]
    cfg = TrainConfig(str(drawn), str(tmp_path / "models" / "learned"), epochs=15, batch=8, lr=2e-3, patience=100)
    t0 = time.perf_counter()
    summary = train(cfg, results_dir=tmp_path / "runs", command="python -m core train (test)")
    seconds = time.perf_counter() - t0
    after = summary["best_val_miou"]
    with capsys.disabled():
        print(f"\n[train] val mIoU untrained {before:.3f} -> trained {after:.3f} in {seconds:.0f} s "
              f"({len(summary['epochs'])} epochs, {len(read_manifest(drawn, 'train'))} train rows)")
    assert after >= before + 0.3
    out = tmp_path / "models" / "learned"
    meta = json.loads((out / "seglab.json").read_text())
    assert meta["image_size"] == 352 and 0 < meta["threshold"] < 1 and len(meta["epochs"]) == 15
    assert meta["prompts"]["crack"] == ["segment crack", "segment wall crack"]
    with (out / "train_log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 15 and {"train_loss", "val_loss", "val_miou", "val_dice", "val_miou_best", "pred_pos_frac"} <= set(rows[0])
    # the folder loads through the same loader, with its stored threshold as the default
    from core.prompted.segmenter import available_models, load_segmenter, model_defaults

    seg = load_segmenter(str(out))
    assert seg.default_threshold == meta["threshold"] and model_defaults(str(out)) == (meta["threshold"], 352)
    assert str(out) in available_models(tmp_path / "models")
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    assert CLIPSegForImageSegmentation.from_pretrained(out) is not None and CLIPSegProcessor.from_pretrained(out)
    for split in ("val", "test"):
        rec = json.loads((tmp_path / "runs" / f"learned_{split}.json").read_text())
        assert rec["config"]["threshold"] == meta["threshold"] and rec["dataset"]["split"] == split
        assert [e["epoch"] for e in rec["training"]["epochs"]] == list(range(1, 16))
        assert rec["provenance"]["command"] == "python -m core train (test)"
        # one prompt per row, the canonical one, as the published report validates and tests
        assert rec["config"]["prompts"] == "canonical" and rec["dataset"]["n"] == len(read_manifest(drawn, split))
        assert rec["config"]["score_at"] == "full" and rec["config"]["threshold_rule"] == ">="
    assert_val_record_is_what_training_chose(summary, meta, tmp_path / "runs" / "learned_val.json")


def assert_val_record_is_what_training_chose(summary: dict, meta: dict, val_record) -> None:
    """The best val mIoU training reports is the val record's mIoU at the threshold training chose, and the
    record's whole sweep is the sweep of the best epoch: both are scored on the same prompts and pixels."""
    rec = json.loads(val_record.read_text())
    assert rec["config"]["threshold"] == meta["threshold"] == meta["val"]["best_threshold"]
    assert rec["metrics"]["overall"]["miou"] == pytest.approx(summary["best_val_miou"], rel=0, abs=1e-12)
    assert rec["metrics"]["overall"]["miou"] == pytest.approx(meta["val"]["val_miou_best"], rel=0, abs=1e-12)
    record_sweep = {p["threshold"]: p["miou"] for p in rec["threshold_sweep"]}
    for point in meta["val"]["sweep"]:
        assert record_sweep[point["threshold"]] == pytest.approx(point["miou"], rel=0, abs=1e-12)
    assert max(record_sweep.values()) == pytest.approx(summary["best_val_miou"], rel=0, abs=1e-12)


def test_val_record_matches_training_when_scored_at_model_size(drawn, tmp_path):
    cfg = TrainConfig(str(drawn), str(tmp_path / "models" / "small"), epochs=2, batch=8, lr=2e-3, patience=100,
                      val_limit=5, score_at="model")
    summary = train(cfg, results_dir=tmp_path / "runs", command="python -m core train (test)")
    meta = json.loads((tmp_path / "models" / "small" / "seglab.json").read_text())
    assert meta["validation"] == {"prompts": "canonical", "score_at": "model", "threshold_rule": ">="}
    rec = json.loads((tmp_path / "runs" / "small_val.json").read_text())
    assert rec["config"]["score_at"] == "model" and rec["config"]["scored_size"] == "352x352"
    assert rec["dataset"]["n"] == 5 and rec["config"]["limit"] == 5
    assert_val_record_is_what_training_chose(summary, meta, tmp_path / "runs" / "small_val.json")
    test_rec = json.loads((tmp_path / "runs" / "small_test.json").read_text())
    assert test_rec["dataset"]["n"] == len(read_manifest(drawn, "test")) and test_rec["config"]["limit"] is None


def test_resume_continues_exactly(drawn, tmp_path):
    def cfg(out):
        return TrainConfig(str(drawn), str(out), epochs=2, batch=8, lr=1e-3, patience=100)

    full = {}
    train(cfg(tmp_path / "a"), results_dir=None, on_step=lambda e, s, loss: full.__setitem__((e, s), loss))

    def interrupt(e, s, loss):
        if (e, s) == (1, 2):
            raise KeyboardInterrupt

    with pytest.raises(BadInput, match="--resume"):
        train(cfg(tmp_path / "b"), results_dir=None, on_step=interrupt)
    assert (tmp_path / "b" / "checkpoint" / "last.pt").is_file()
    with pytest.raises(BadInput, match="already holds"):
        train(cfg(tmp_path / "b"), results_dir=None)
    resumed = {}
    train(cfg(tmp_path / "b"), resume=True, results_dir=None,
          on_step=lambda e, s, loss: resumed.__setitem__((e, s), loss))
    assert min(resumed) == (1, 3)  # picks up at the step after the interruption
    for key, loss in resumed.items():
        assert loss == pytest.approx(full[key], rel=1e-4, abs=1e-5), key


def test_all_background_model_triggers_the_warning(drawn, tmp_path):
    c = fresh_copy("clipseg")
    with torch.no_grad():
        c.model.decoder.transposed_convolution[-1].bias.fill_(-50.0)
    t = Trainer(TrainConfig(str(drawn), str(tmp_path / "bg"), epochs=1, batch=8, lr=0.0, val_limit=6), c)
    history = t.run()
    assert "background almost everywhere" in history[0]["warning"]
    assert "COLLAPSE" in (tmp_path / "bg" / "train_log.csv").read_text()
    assert collapse_warning(0.99, 0.1).startswith("COLLAPSE: the model predicts foreground")
    assert collapse_warning(0.2, 0.1) == ""


def test_bad_training_inputs(drawn, tmp_path):
    rows = read_manifest(drawn)
    no_train = tmp_path / "no_train.csv"
    write_manifest([r for r in rows if r.split != "train"], no_train)
    with pytest.raises(BadInput, match="training split is empty"):
        train(TrainConfig(str(no_train), str(tmp_path / "x")), results_dir=None)
    missing = tmp_path / "missing.csv"
    broken = [r for r in rows]
    broken[0].image_path = str(tmp_path / "gone.png")
    write_manifest(broken, missing)
    with pytest.raises(BadInput, match="missing"):
        train(TrainConfig(str(missing), str(tmp_path / "y")), results_dir=None)
    empty = drawn_manifest(tmp_path / "empty", n=10, empty_tape=True)
    with pytest.raises(BadInput, match="taping_area have no positive pixel"):
        train(TrainConfig(str(empty), str(tmp_path / "z")), results_dir=None)
    with pytest.raises(BadInput, match="pos-weight"):
        train(TrainConfig(str(drawn), str(tmp_path / "w"), pos_weight="lots"), results_dir=None)
    with pytest.raises(BadInput, match="score-at"):
        train(TrainConfig(str(drawn), str(tmp_path / "v"), score_at="half"), results_dir=None)
