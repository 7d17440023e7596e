"""The moving-shapes generator (exact masks, crossing, entering, leaving), the evaluation folder, and
`evaluate-video --stages standin` end to end as a results record."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from core.data.synthetic.moving_shapes import CLASSES, make_clip, write_eval_folder
from core.errors import BadInput
from core.results.records import validate
from core.video.cli import COMMANDS, add_parser, parse_classes
from core.video.dataset import FolderTruth, list_clips


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clip_has_its_scenarios(seed):
    clip = make_clip(seed, n_frames=40)
    objs = clip.objects
    assert len(objs) >= 4 and all(0 <= o.cls < len(CLASSES) for o in objs)
    visible = {o.id: [bool((clip.instances(t) == o.id).any()) for t in range(40)] for o in objs}
    a, b = objs[0].id, objs[1].id  # the crossing pair: their silhouettes overlap at some frame
    assert any((clip.shape(a, t) & clip.shape(b, t)).any() for t in range(40))
    entering = objs[2].id
    assert not visible[entering][0] and any(visible[entering])
    leaving = objs[3].id
    assert visible[leaving][0] and not visible[leaving][-1]


def test_instances_are_the_visible_parts_in_depth_order():
    clip = make_clip(5, n_frames=30)
    for t in (0, 10, 20):
        inst = clip.instances(t)
        front = np.zeros(inst.shape, bool)
        for o in sorted(clip.objects, key=lambda o: -o.depth):
            own = clip.shape(o.id, t) & ~front
            if clip.pillar is not None:
                own[:, clip.pillar[0]:clip.pillar[1]] = False
            assert np.array_equal(inst == o.id, own)
            front |= clip.shape(o.id, t)
        f = clip.frame(t)
        assert f.image.shape == (120, 160, 3) and np.array_equal(f.instances, inst)


def test_eval_folder_reads_back(tmp_path):
    root = write_eval_folder(tmp_path / "set", 2, first_seed=3, n_frames=8, height=64, width=80)
    classes, clips = list_clips(root)
    assert classes == list(CLASSES) and [c.name for c in clips] == ["shapes_0003", "shapes_0004"]
    truth = FolderTruth(clips[0])
    clip = make_clip(3, 64, 80, n_frames=8)
    assert len(truth) == 8 and truth.size == (64, 80) and truth.object_classes() == clip.object_classes()
    assert np.array_equal(truth.instances(5), clip.instances(5))
    (root / "masks" / "shapes_0004" / "instances.json").write_text(json.dumps({"objects": {"1": 9}}))
    with pytest.raises(BadInput, match="outside classes.txt"):
        list_clips(root)


def test_evaluate_video_with_stand_ins_writes_a_record(tmp_path, capsys):
    root = write_eval_folder(tmp_path / "set", 2, n_frames=12, height=64, width=80)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "runs" / "standin.json"
    args = parser.parse_args(["evaluate-video", "--data", str(root), "--out", str(out), "--stages", "standin",
                              "--keyframe-every", "4", "--weight-temperature", "1e9"])
    assert COMMANDS["evaluate-video"](args, "python -m core evaluate-video ...") == 0
    record = json.loads(out.read_text())
    assert record["config"]["tracker"]["classification"] == {"method": "temporal", "temperature": 1e9}
    assert validate(record) == [] and record["task"] == "video" and record["dataset"]["n"] == 2
    o = record["metrics"]["overall"]
    assert 0 < o["hota"] <= 1 and 0 < o["idf1"] <= 1 and o["mota"] <= 1 and o["id_switches"] >= 0
    assert set(record["metrics"]["per_clip"]) == {"shapes_0000", "shapes_0001"}
    assert record["dataset"]["n_frames"] == 24 and "HOTA" in capsys.readouterr().out
    args = parser.parse_args(["evaluate-video", "--data", str(root), "--out", str(out)])
    with pytest.raises(BadInput, match="--stages standin"):
        COMMANDS["evaluate-video"](args, "cmd")


def test_parse_classes(tmp_path):
    assert parse_classes("fish, diver ,rock") == ["fish", "diver", "rock"]
    f = tmp_path / "c.txt"
    f.write_text("fish\n\ndiver\n")
    assert parse_classes(str(f)) == ["fish", "diver"]
    with pytest.raises(BadInput):
        parse_classes(" , ")
