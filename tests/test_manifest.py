from collections import Counter

import pytest

from core.errors import BadInput
from core.prompted.manifest import ManifestRow, label_for_export, read_manifest, resplit, write_manifest


def rows_for(n_crack, n_tape):
    rows = []
    for i in range(n_crack):
        rows.append(ManifestRow(f"c{i}.jpg", f"cracks__c{i}", "crack", "", "cracks", "c.json", i, "", 10, 10))
    for i in range(n_tape):
        rows.append(ManifestRow(f"t{i}.jpg", f"join__t{i}", "taping_area", "", "join", "t.json", i, "", 10, 10))
    return rows


def test_split_is_label_aware_and_near_70_15_15():
    out = resplit(rows_for(200, 40), seed=42)
    counts = Counter((r.label, r.split) for r in out)
    for label, n in (("crack", 200), ("taping_area", 40)):
        assert all(counts[(label, s)] > 0 for s in ("train", "val", "test"))
        assert counts[(label, "train")] == pytest.approx(0.7 * n, abs=1)
        assert counts[(label, "val")] == pytest.approx(0.15 * n, abs=1)


def test_split_is_deterministic_and_seed_dependent():
    a = [r.split for r in resplit(rows_for(50, 20), seed=42)]
    b = [r.split for r in resplit(rows_for(50, 20), seed=42)]
    c = [r.split for r in resplit(rows_for(50, 20), seed=7)]
    assert a == b and a != c


def test_image_with_two_labels_stays_in_one_split():
    rows = rows_for(30, 0)
    rows += [ManifestRow(r.image_path, r.image_id, "taping_area", "", "x", "x.json", 0, "", 10, 10) for r in rows[:12]]
    out = resplit(rows)
    split_of = {}
    for r in out:
        assert split_of.setdefault(r.image_id, r.split) == r.split


def test_too_few_images_for_every_split():
    with pytest.raises(BadInput, match="taping_area"):
        resplit(rows_for(30, 2))


def test_export_names_map_to_labels():
    assert label_for_export("Cracks") == "crack"
    assert label_for_export("Drywall-Join-Detect") == "taping_area"
    with pytest.raises(BadInput, match="PATH=LABEL"):
        label_for_export("Windows")


def test_prepare_writes_a_portable_manifest(synthetic_manifest):
    rows = read_manifest(synthetic_manifest)
    assert len(rows) == 20
    assert {r.label for r in rows} == {"crack", "taping_area"}
    text = synthetic_manifest.read_text()
    assert str(synthetic_manifest.parent) not in text  # paths are relative to the manifest
    assert all(r.image_id.startswith(("cracks__", "drywall-join-detect__")) for r in rows)
    empties = [r for r in rows if r.label == "taping_area" and not r.ann_ids()]
    assert empties and all(r.mask().sum() == 0 for r in empties)
    assert sum(r.mask().sum() for r in rows if r.label == "crack") > 0


def test_manifest_errors(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        read_manifest(tmp_path / "none.csv")
    (tmp_path / "m.csv").write_text("a,b\n1,2\n")
    with pytest.raises(BadInput, match="missing columns"):
        read_manifest(tmp_path / "m.csv")
    write_manifest(rows_for(3, 0), tmp_path / "ok.csv")
    with pytest.raises(BadInput, match="Unknown split"):
        read_manifest(tmp_path / "ok.csv", "holdout")
