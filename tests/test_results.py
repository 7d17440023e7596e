import json
from pathlib import Path

import pytest

from core.results.reported import import_reported
from core.results.records import new_record, validate, write_record

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference" / "reported_results.md"


def good():
    return new_record("prompted", "r1", {"kind": "measured", "command": "python -m core evaluate"},
                      metrics={"overall": {"miou": 0.5}})


def test_validate_catches_problems():
    assert validate(good()) == []
    assert validate([]) == ["the file does not hold a JSON object"]
    bad = good() | {"schema_version": 99}
    assert any("schema_version 99" in p for p in validate(bad))
    assert any("task" in p for p in validate(good() | {"task": "nope"}))
    assert any("command" in p for p in validate(good() | {"provenance": {"kind": "measured"}}))
    assert any("source" in p for p in validate(good() | {"provenance": {"kind": "reported"}}))
    rec = good()
    del rec["metrics"]
    assert "missing 'metrics'" in validate(rec)


def test_write_is_atomic_and_refuses_invalid_records(tmp_path):
    path = tmp_path / "r.json"
    write_record(good(), path)
    before = path.read_text()
    with pytest.raises(ValueError):
        write_record(good() | {"task": "nope"}, path)
    assert path.read_text() == before  # nothing saved before is lost
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert json.loads(before)["git_commit"] is None or len(json.loads(before)["git_commit"]) == 40


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared/reference is not beside this checkout")
def test_reported_import_matches_the_published_table(tmp_path):
    paths = import_reported(REFERENCE, tmp_path)
    recs = {p.stem: json.loads(p.read_text()) for p in paths}
    assert len([r for r in recs.values() if r["task"] == "prompted"]) == 7
    assert len([r for r in recs.values() if r["task"] == "openvocab"]) == 42
    assert all(validate(r) == [] and r["provenance"]["kind"] == "reported" for r in recs.values())
    corr = recs["reported_openvocab_corrclip_sam2_masks_32_points_per_side_coco_stuff164k"]
    assert corr["metrics"]["overall"] == {"miou": 0.316} and "SAM2" in corr["model"]["source"]
    assert corr["provenance"]["source"].startswith("CorrCLIP README")
    best = recs["reported_drywall_clipseg_ft_e16_512_thr04_v1"]
    assert best["metrics"]["overall"] == {"miou": 0.4701, "dice": 0.6160}
    assert best["metrics"]["per_label"]["taping_area"]["dice"] == 0.6718
    assert best["model"]["image_size"] == 512 and best["config"]["threshold"] == 0.4
    e8 = recs["reported_drywall_clipseg_ft_e8_352_v1"]
    assert [(p["threshold"], p["miou"]) for p in e8["threshold_sweep"]] == [
        (0.3, 0.4134), (0.4, 0.4167), (0.5, 0.4149), (0.6, 0.4082)]
    assert recs["reported_openvocab_sclip_repo_readme_coco_stuff164k"]["metrics"]["overall"]["miou"] == pytest.approx(0.2277)
    # the copies committed under results/reported are exactly what the importer writes
    for p in paths:
        committed = ROOT / "results" / "reported" / p.relative_to(tmp_path)
        assert json.loads(committed.read_text()) == recs[p.stem]
