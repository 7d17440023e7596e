"""Tracking's model-backed stages on tiny random models (SEGLAB_MODELS=tiny, tests/conftest.py): the MHQR and
dense-components keyframe detectors, dense-CLIP class evidence (checked against numpy), the evidence schedule
(frames without evidence weigh 0), and `python -m core track` / `evaluate-video` end to end on short synthetic
clips, bad inputs included. Outputs of random weights are noise: these tests check sizes, classes, what is pooled
and what is written, never what is found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from scipy import ndimage

from core.data.synthetic.moving_shapes import make_clip, write_eval_folder, write_mp4
from core.errors import BadInput
from core.models import registry
from core.openvocab.mhqr.dense import resize_nearest
from core.openvocab.mhqr.pipeline import MHQRConfig
from core.openvocab.mhqr.sam2_masks import Sam2PointMasks
from core.openvocab.sclip import DenseConfig, SCLIPPredictor
from core.video.association import AssociationConfig
from core.video.class_prompts import dense_classes
from core.video.classification import ClassificationConfig, classify
from core.video.clip_evidence import ClipEvidence, EvidenceConfig
from core.video.evaluate import StandInConfig, standin_stages
from core.video.mhqr_detector import DenseComponentsDetector, DetectorConfig, MHQRDetector
from core.video.model_stages import ModelStagesConfig, build_model_stages
from core.video.sam2_propagator import Sam2Propagator
from core.video.selection import SelectionConfig
from core.video.stages import ClassEvidence, Detection, Detector
from core.video.tracker import TrackerConfig, read_tracks_json, track_clip, write_tracks_json

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["disc", "square", "triangle"]


@pytest.fixture(scope="module")
def clip_predictor():
    return SCLIPPredictor(registry().get("openclip"))


@pytest.fixture(scope="module")
def frame():
    return make_clip(3, 96, 144, n_frames=2).frame(0).image


# --- detectors -----------------------------------------------------------------------------------------------------
def check_detections(dets, size, n_classes, min_area):
    assert dets, "the tiny models' noise still gives some region of a class"
    for d in dets:
        assert d.mask.shape == size and d.mask.dtype == bool and d.mask.sum() >= min_area
        assert 0 <= d.cls < n_classes and 0.0 <= d.score <= 1.0
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)


@pytest.mark.parametrize("background", [("background",), ()])
def test_mhqr_detector_gives_frame_size_detections_from_mhqrs_merged_masks(clip_predictor, frame, background):
    # the dense stage runs at a 48-pixel short side (working 48 x 72): masks come back at the frame's 96 x 144
    cfg = DetectorConfig(DenseConfig(short_side=48), MHQRConfig(), background, min_area=4)
    det = MHQRDetector(clip_predictor, Sam2PointMasks(registry().get("sam2")), CLASSES, cfg)
    assert isinstance(det, Detector)
    dets = det.detect(0, frame)
    merged = det.last_merged
    assert merged.masks.shape[1:] == (48, 72)
    check_detections(dets, (96, 144), len(CLASSES), 4)
    expected = sorted(((int(c), float(s), resize_nearest(m, (96, 144)))
                       for m, c, s in zip(merged.masks, merged.classes, merged.scores)
                       if c < len(CLASSES) and resize_nearest(m, (96, 144)).sum() >= 4), key=lambda x: -x[1])
    assert [(d.cls, d.score) for d in dets] == [(c, s) for c, s, _ in expected]
    assert all(np.array_equal(d.mask, m) for d, (_, _, m) in zip(dets, expected))


def test_the_detectors_dense_stage_never_upscales_the_frame(clip_predictor):
    det = DenseComponentsDetector(clip_predictor, CLASSES)  # default short side 336
    small = np.zeros((40, 60, 3), np.uint8)
    assert det.dense_cfg(small).short_side == 40 and det.dense(small).working_size == (40, 60)


def test_single_crop_runs_the_dense_stage_on_the_whole_frame_at_once(clip_predictor):
    from core.video.clip_evidence import SINGLE_CROP
    from core.video.class_prompts import dense_classes

    frame = np.random.default_rng(4).integers(0, 255, (240, 360, 3)).astype(np.uint8)
    one = DenseComponentsDetector(clip_predictor, CLASSES, DetectorConfig(DenseConfig(short_side=240),
                                                                          single_crop=True))
    windows = DenseComponentsDetector(clip_predictor, CLASSES, DetectorConfig(DenseConfig(short_side=240)))
    assert (one.dense_cfg(frame).crop, one.dense_cfg(frame).stride) == (SINGLE_CROP, SINGLE_CROP)
    assert (windows.dense_cfg(frame).crop, windows.dense_cfg(frame).stride) == (224, 112)
    direct = clip_predictor.predict(frame, dense_classes(CLASSES, ("background",)),
                                    DenseConfig(short_side=240, crop=SINGLE_CROP, stride=SINGLE_CROP))
    np.testing.assert_allclose(one.dense(frame).probs, direct.probs, atol=1e-5)
    assert np.abs(windows.dense(frame).probs - direct.probs).max() > 1e-3  # three overlapping windows differ


def test_dense_components_detector_returns_the_label_maps_components(clip_predictor, frame):
    cfg = DetectorConfig(DenseConfig(short_side=96), min_area=10)
    det = DenseComponentsDetector(clip_predictor, CLASSES, cfg)
    dense = det.dense(frame)
    dets = det.detect(0, frame)
    check_detections(dets, (96, 144), len(CLASSES), 10)
    covered = np.zeros((96, 144), int)
    for d in dets:
        assert ndimage.label(d.mask, structure=np.ones((3, 3)))[1] == 1  # one connected component
        assert (dense.labels[d.mask] == d.cls).all()  # of its class in the dense map (working size = frame here)
        assert d.score == pytest.approx(float(dense.probs[d.cls][d.mask].mean()), rel=1e-5)
        covered += d.mask
    assert covered.max() == 1
    # every component of a class of at least min_area pixels is a detection, and nothing else
    big = sum(int((np.bincount(lab.ravel())[1:] >= 10).sum())
              for c in range(len(CLASSES)) for lab in [ndimage.label(dense.labels == c, np.ones((3, 3)))[0]])
    assert len(dets) == big


def test_a_class_named_like_the_background_prompt_is_refused():
    with pytest.raises(BadInput, match="background"):
        dense_classes(["fish", "Background"])
    assert dense_classes(["fish", "diver, scuba diver"]).names == ["fish", "diver", "scuba diver", "background"]
    assert dense_classes(["fish"], ()).classes == ["fish"]


# --- class evidence ------------------------------------------------------------------------------------------------
def independent_pool(features, frame_size, working, mask):
    """Patch features painted over the resized frame (16 x 16 blocks, the last partial patch repeating its
    neighbour), read back at the frame's pixels by nearest centre, averaged over the mask, normalised."""
    gh, gw, _ = features.shape
    painted = np.repeat(np.repeat(features, 16, 0), 16, 1)
    painted = np.pad(painted, ((0, working[0] - 16 * gh), (0, working[1] - 16 * gw), (0, 0)), mode="edge")
    ys = np.floor((np.arange(frame_size[0]) + 0.5) * working[0] / frame_size[0]).astype(int)
    xs = np.floor((np.arange(frame_size[1]) + 0.5) * working[1] / frame_size[1]).astype(int)
    v = painted[ys][:, xs][mask].astype(np.float64).mean(0)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("size, short_side, working", [((64, 96), 224, (64, 96)), ((100, 150), 48, (48, 72))])
def test_clip_evidence_pools_the_masks_patch_features_against_the_text(clip_predictor, size, short_side, working):
    image = make_clip(5, *size, n_frames=1).frame(0).image
    ev = ClipEvidence(clip_predictor, CLASSES, EvidenceConfig(short_side=short_side, logit_scale=40.0))
    assert isinstance(ev, ClassEvidence) and ev.num_classes == 3
    h, w = size
    block = np.zeros(size, bool)
    block[h // 5: h // 2 + 3, w // 5: 2 * w // 3 + 5] = True  # cuts through patches: area weighting matters
    corner = np.zeros(size, bool)
    corner[-5:, -7:] = True  # past the last whole patch on the resized frame (72 = 4 x 16 + 8)
    masks = {3: block, 8: corner, 9: ~block}
    out = ev.logits(0, image, masks)
    assert set(out) == {3, 8, 9} and all(z.shape == (4,) and z.dtype == np.float32 for z in out.values())
    res = clip_predictor.predict(image, dense_classes(CLASSES), DenseConfig(short_side=min(short_side, h),
                                 crop=2048, stride=2048), keep_features=True)
    assert res.probs.shape[1:] == working
    text = clip_predictor.text_embeddings(CLASSES + ["background"]).numpy()
    for tid, m in masks.items():
        pooled = independent_pool(res.features, size, working, m)
        np.testing.assert_allclose(out[tid], 40.0 * text @ pooled, atol=2e-4)


def test_without_background_names_no_object_is_a_fixed_cosine(clip_predictor):
    image = make_clip(6, 64, 96, n_frames=1).frame(0).image
    ev = ClipEvidence(clip_predictor, CLASSES, EvidenceConfig(background=(), no_object_cosine=0.25, logit_scale=10))
    m = np.zeros((64, 96), bool)
    m[10:30, 20:60] = True
    z = ev.logits(0, image, {1: m})[1]
    assert z.shape == (4,) and z[-1] == pytest.approx(2.5)
    assert ev.logits(0, image, {}) == {}


# --- the evidence schedule -----------------------------------------------------------------------------------------
def test_frames_without_evidence_take_no_part_in_the_classification():
    z = np.array([[3.0, 0.0, 0.0], [np.nan] * 3, [0.0, 2.0, 0.0], [np.nan] * 3])
    got = classify(z, np.array([0.9, 0.1, 0.8, 0.5]))
    ref = classify(z[[0, 2]], np.array([0.9, 0.8]))
    assert got.weights[[1, 3]].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(got.weights[[0, 2]], ref.weights)
    np.testing.assert_allclose(got.probs, ref.probs)
    last = classify(z, np.ones(4), ClassificationConfig(method="last-frame"))
    assert last.cls == 1 and last.weights.tolist() == [0.0, 0.0, 1.0, 0.0]
    none = classify(np.full((2, 3), np.nan), np.ones(2))
    assert none.cls == -1 and none.score == 0.0 and none.weights.tolist() == [0.0, 0.0]


class EveryThird:
    """The stand-in evidence read every third frame; records the frames it was asked on."""

    every = 3

    def __init__(self, inner):
        self.inner, self.num_classes, self.asked = inner, inner.num_classes, []

    def logits(self, frame_idx, frame, masks):
        self.asked.append((frame_idx, sorted(masks)))
        return self.inner.logits(frame_idx, frame, masks)


def test_the_tracker_reads_evidence_every_n_frames_and_on_every_tracks_first_frame(tmp_path):
    clip = make_clip(2, 96, 128, n_frames=14)
    quiet = StandInConfig(miss_rate=0.0, false_positives=0.0, class_noise=0.0)
    det, prop, ev = standin_stages(clip, len(clip.classes), cfg=quiet)
    ev = EveryThird(ev)
    result = track_clip((f.image for f in clip.frames()), det, prop, ev, list(clip.classes),
                        TrackerConfig(keyframe_every=4))
    asked = {t for t, _ in ev.asked}
    assert {0, 3, 6, 9, 12} <= asked
    births = {tr.first_frame for tr in result.tracks}
    assert births <= asked  # a new track is scored on its first frame
    assert asked - {0, 3, 6, 9, 12} <= births | {4, 8}  # other frames only when a track was born there
    for tr in result.tracks:
        for t, w, p in zip(tr.frames, tr.weights, tr.class_probs):
            scored = t in asked and tr.id in dict((f, ids) for f, ids in ev.asked).get(t, [])
            assert (p is not None) == scored and (w > 0 or not scored) and (w == 0 or scored)
        assert sum(tr.weights) == pytest.approx(1.0)
    meta, tracks = read_tracks_json(write_tracks_json(result, tmp_path / "tracks.json"))
    assert any(p is None for tr in tracks for p in tr.class_probs)


class LowScores:
    """Detector, propagator and evidence in one: one detection scored 0.2 per keyframe, nothing propagated."""

    num_classes = 2

    def detect(self, frame_idx, frame):
        m = np.zeros(frame.shape[:2], bool)
        m[2:6, 2:6] = True
        return [Detection(m, 0, 0.2)]

    def reset(self, size):
        pass

    def step(self, frame_idx, frame):
        return {}

    def add_objects(self, frame_idx, frame, masks):
        pass

    def remove_objects(self, ids):
        pass

    def logits(self, frame_idx, frame, masks):
        return {k: np.zeros(3, np.float32) for k in masks}


def test_an_empty_result_says_when_detections_scored_too_low_to_start_tracks():
    s = LowScores()
    res = track_clip([np.zeros((16, 16, 3), np.uint8)] * 5, s, s, s, ["fish", "diver"], TrackerConfig(keyframe_every=2))
    assert res.tracks == [] and "3 detections all scored under 0.5" in res.messages[0]


# --- the stages together, and the command line ---------------------------------------------------------------------
def test_model_stages_track_a_clip_end_to_end():
    clip = make_clip(3, 64, 96, n_frames=6)
    det, prop, ev = build_model_stages(CLASSES, ModelStagesConfig(sam2_frame=128, evidence_every=2, min_area=8))
    assert isinstance(det, MHQRDetector) and isinstance(prop, Sam2Propagator) and isinstance(ev, ClipEvidence)
    # random weights score low: every detection may start a track here, so all the stages run on real masks
    cfg = TrackerConfig(keyframe_every=3, association=AssociationConfig(new_track_score=0.0),
                        selection=SelectionConfig(score_threshold=0.0))
    result = track_clip((f.image for f in clip.frames()), det, prop, ev, CLASSES, cfg)
    assert result.candidates >= 1 and result.tracks and result.n_frames == 6
    for tr in result.tracks:
        assert 0 <= tr.cls < 3 and tr.class_name == CLASSES[tr.cls] and 0 <= tr.score <= 1
        assert tr.class_probs[0] is not None and len(tr.class_probs[0]) == 4
        assert all(tr.mask(t).shape == (64, 96) for t in tr.frames)


def cli(*args, check=True):
    env = {**os.environ, "SEGLAB_MODELS": "real"}  # --models tiny must be what switches it
    r = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def in_process(capsys, *args):
    """The command line in this process (the tiny models stay loaded): (exit code, stdout, stderr)."""
    from core.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def check_track_output(out: Path, n_frames: int, classes: list[str]):
    meta, tracks = read_tracks_json(out / "tracks.json")
    assert meta["classes"] == classes and meta["size"] == [64, 96] and meta["n_frames"] == n_frames
    assert meta["command"].startswith("python -m core track")
    for tr in tracks:
        assert tr.class_name in classes and all(tr.mask(t).shape == (64, 96) for t in tr.frames)
    with av.open(str(out / "tracks.mp4")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    assert len(frames) == n_frames and frames[0].shape == (64, 96, 3)


def test_track_command_writes_tracks_json_and_an_h264_mp4(tmp_path):
    src = write_mp4(make_clip(3, 64, 96, n_frames=8), tmp_path / "clip.mp4")
    r = cli("track", "--models", "tiny", "--video", str(src), "--classes", "disc, square", "--out",
            str(tmp_path / "out"), "--keyframe-every", "4", "--sam2-frame", "128", "--evidence-every", "2")
    assert "wrote" in r.stdout and "Traceback" not in r.stderr
    check_track_output(tmp_path / "out", 8, ["disc", "square"])


def test_track_command_without_mhqr(tmp_path, capsys):
    src = write_mp4(make_clip(3, 64, 96, n_frames=6), tmp_path / "clip.mp4")
    code, out, _ = in_process(capsys, "track", "--models", "tiny", "--video", str(src), "--classes", "disc, square",
                              "--out", str(tmp_path / "out"), "--keyframe-every", "3", "--sam2-frame", "128",
                              "--no-mhqr")
    assert code == 0 and "wrote" in out
    check_track_output(tmp_path / "out", 6, ["disc", "square"])


def test_evaluate_video_writes_a_video_record(tmp_path, capsys):
    data = write_eval_folder(tmp_path / "data", 1, 7, height=64, width=96, n_frames=6)
    out = tmp_path / "runs" / "tiny_video.json"
    code, stdout, _ = in_process(capsys, "evaluate-video", "--models", "tiny", "--data", str(data), "--out", str(out),
                                 "--no-mhqr", "--keyframe-every", "3", "--sam2-frame", "128")
    rec = json.loads(out.read_text())
    assert code == 0 and rec["task"] == "video" and rec["dataset"]["n"] == 1 and rec["dataset"]["n_frames"] == 6
    assert {"hota", "idf1", "mota", "id_switches"} <= set(rec["metrics"]["overall"])
    assert rec["config"]["stages"] == "models" and "HOTA" in stdout


def test_track_bad_inputs_give_messages_not_tracebacks(tmp_path, capsys):
    src = write_mp4(make_clip(1, 64, 96, n_frames=3), tmp_path / "clip.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n")
    out = ["--out", str(tmp_path / "o")]
    r = cli("track", "--models", "tiny", "--video", str(text), "--classes", "a, b", *out, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error: ")
    assert "notes.mp4" in r.stderr
    cases = [  # in this process: a traceback would be an exception escaping main()
        (["--video", str(tmp_path / "missing.mp4"), "--classes", "a"], "missing.mp4"),
        (["--video", str(src), "--classes", " , "], "class"),
        (["--video", str(src), "--classes", "a, a"], "twice"),
        (["--video", str(src), "--classes", "rock, background"], "background"),
        (["--video", str(src), "--classes", "a", "--sam2-frame", "100"], "multiple of 32"),
        (["--video", str(src), "--classes", "a", "--evidence-every", "0"], "at least 1"),
        (["--video", str(src), "--classes", "a", "--sam2", "huge"], "unknown SAM2 size"),
    ]
    for args, expect in cases:
        code, _, err = in_process(capsys, "track", "--models", "tiny", *args, *out)
        assert code == 2 and err.startswith("error: ") and expect.lower() in err.lower(), (args, err)
