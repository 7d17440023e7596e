"""SAM2 video propagation (video step 3): the registry family and Sam2Propagator, on a tiny random Sam2VideoModel
saved with save_pretrained and loaded through the registry; clips of moving discs drawn here."""

from pathlib import Path

import numpy as np
import pytest
import torch

from core.models import registry
from core.models.sam2 import HUB_ID, SAM2_SIZES
from core.models.sam2_video import SAM2_VIDEO_SPEC, sam2_video_config, sam2_video_name
from core.video.sam2_propagator import Sam2Propagator
from core.video.stages import Propagated, Propagator

SIZE = (48, 64)  # the clip's processing frames (h, w)
FRAME = 128  # the model's square frame in most tests (the tiny model's own is 256)


def disc_clip(n: int, size=SIZE, seed=0):
    """n frames of two discs moving in opposite directions over noise; yields (frame, {id: mask})."""
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    rng = np.random.default_rng(seed)
    for i in range(n):
        image = rng.integers(0, 80, (h, w, 3)).astype(np.uint8)
        one = (yy - 18) ** 2 + (xx - 10 - i) ** 2 < 64
        two = (yy - 32) ** 2 + (xx - 52 + i // 2) ** 2 < 49
        image[one], image[two] = (220, 40, 40), (40, 200, 60)
        yield image, {1: one, 2: two}


def run(sam2, n=12, start={1: 0, 2: 0}, reanchor=(), remove=None, frame=FRAME, trace=None, **kwargs):
    """Propagate a disc clip: objects added at their start frame {id: frame}, re-anchored [(id, frame)], removed
    {id: frame}; `trace` collects the bytes the session holds after each frame."""
    prop = Sam2Propagator(sam2, frame=frame, **kwargs)
    prop.reset(SIZE)
    outputs = []
    for i, (image, truth) in enumerate(disc_clip(n)):
        outputs.append(prop.step(i, image))
        new = {k: truth[k] for k, f in start.items() if f == i}
        new.update({k: truth[k] for k, f in reanchor if f == i})
        prop.add_objects(i, image, new)
        prop.remove_objects([k for k, f in (remove or {}).items() if f == i])
        if trace is not None:
            trace.append(prop.stored_state()["bytes"])
    return prop, outputs


def same_outputs(a, b, ids):
    return all(np.array_equal(x[k].mask, y[k].mask) and x[k].score == y[k].score
               for x, y in zip(a, b) for k in ids if k in x or k in y)


def close_outputs(a, b, ids):
    """Equal up to float rounding: the memory encoder batches all objects of a frame, so the objects that share
    the batch change the last bits of the others' memories."""
    return all(abs(x[k].score - y[k].score) < 1e-4 and (x[k].mask != y[k].mask).mean() < 0.01
               for x, y in zip(a, b) for k in ids if k in x or k in y)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's ops are too small to share: on 2 busy cores two threads ran 10× slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_video():
    return registry().get("sam2-video")


@pytest.fixture(scope="module")
def both_from_start(tiny_video):
    return run(tiny_video)


@pytest.fixture(scope="module")
def one_object(tiny_video):
    return run(tiny_video, start={1: 0})


def test_tiny_video_model_is_saved_and_loaded_through_the_registry(tiny_video):
    folder = Path(tiny_video.location)
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert (folder / "processor_config.json").is_file()
    assert type(tiny_video.model).__name__ == "Sam2VideoModel"
    assert type(tiny_video.processor).__name__ == "Sam2VideoProcessor"
    assert tiny_video.frame == tiny_video.processor.target_size == 256
    assert registry().get("sam2-video") is tiny_video  # loaded once
    assert SAM2_VIDEO_SPEC.name == "sam2-video" and SAM2_VIDEO_SPEC.env_var == "SEGLAB_SAM2_VIDEO"
    assert SAM2_VIDEO_SPEC.hub_id == HUB_ID
    assert sam2_video_name("large") == sam2_video_name("facebook/sam2.1-hiera-large") == "sam2-video-large"
    assert sam2_video_name("sam2-video-small") == "sam2-video-small"
    assert {sam2_video_name(h) for h in SAM2_SIZES} <= set(registry().names())
    assert registry().spec("sam2-video-base-plus").env_var == "SEGLAB_SAM2_VIDEO_BASE_PLUS"
    real = sam2_video_config(HUB_ID)  # the released tiny: Hiera 1-2-7-2, 1024 frame, 7 memories, 16 pointers
    assert real.vision_config.backbone_config.blocks_per_stage == [1, 2, 7, 2]
    assert real.image_size == 1024 and real.num_maskmem == 7 and real.max_object_pointers_in_encoder == 16
    at512 = sam2_video_config(HUB_ID, frame=512)
    assert at512.vision_config.backbone_feature_sizes == [[128, 128], [64, 64], [32, 32]]
    assert at512.prompt_encoder_config.image_size == 512 and at512.memory_attention_rope_feat_sizes == [32, 32]


def test_another_frame_size_shares_the_weights(tiny_video):
    model, processor = tiny_video.at_frame(FRAME)
    assert tiny_video.at_frame(FRAME)[0] is model and tiny_video.at_frame()[0] is tiny_video.model
    assert model.config.image_size == processor.target_size == FRAME and tiny_video.frame == 256
    assert model.prompt_encoder.mask_input_size == (FRAME // 4, FRAME // 4)
    ours, theirs = dict(model.named_parameters()), dict(tiny_video.model.named_parameters())
    assert ours.keys() == theirs.keys() and all(ours[k].data_ptr() == theirs[k].data_ptr() for k in ours)
    pixels = processor(images=np.zeros((*SIZE, 3), np.uint8), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, FRAME, FRAME)
    for bad in (100, 32):
        with pytest.raises(ValueError, match="multiple of 32"):
            tiny_video.at_frame(bad)


def test_every_live_object_gets_a_mask_of_the_clip_size_on_every_frame(both_from_start, tiny_video):
    prop, outputs = both_from_start
    assert isinstance(prop, Propagator)
    assert outputs[0] == {}  # stepped before any object was added
    for out in outputs[1:]:
        assert sorted(out) == [1, 2]
        for p in out.values():
            assert isinstance(p, Propagated) and p.mask.dtype == bool and p.mask.shape == SIZE
            assert 0.0 <= p.score <= 1.0
    assert any(p.mask.any() and not p.mask.all() for out in outputs[1:] for p in out.values())
    # at the model's own frame size too, and with a frame stride: only increasing indices are required
    prop = Sam2Propagator(tiny_video)
    prop.reset(SIZE)
    clip = list(disc_clip(3))
    prop.step(0, clip[0][0])
    prop.add_objects(0, clip[0][0], {7: clip[0][1][1]})
    for i in (3, 6):
        out = prop.step(i, clip[i // 3][0])
        assert list(out) == [7] and out[7].mask.shape == SIZE
    assert prop.stored_state()["frames"] == [2]  # the session counts frames 0, 1, 2: every memory slot is used
    with pytest.raises(ValueError, match="increasing"):
        prop.step(6, clip[2][0])
    with pytest.raises(ValueError, match="48×64×3"):
        prop.step(9, np.zeros((64, 48, 3), np.uint8))
    prop.add_objects(9, clip[0][0], {8: clip[0][1][2]})  # on a frame not stepped yet: it is stepped first
    assert sorted(prop.step(12, clip[1][0])) == [7, 8] and prop.stored_state()["frames"] == [4]
    prop.reset(SIZE)  # a new clip forgets the objects
    assert prop.step(0, clip[0][0]) == {} and prop.live_ids == []


def test_an_object_added_mid_clip_appears_from_that_frame_on(one_object, tiny_video, monkeypatch):
    _, reference = one_object
    calls = []
    inner = tiny_video.at_frame(FRAME)[0]._run_single_frame_inference

    def counting(**kwargs):
        calls.append((kwargs["frame_idx"], kwargs["obj_idx"], kwargs["mask_inputs"] is not None))
        return inner(**kwargs)

    monkeypatch.setattr(tiny_video.at_frame(FRAME)[0], "_run_single_frame_inference", counting)
    prop, outputs = run(tiny_video, start={1: 0, 2: 5})
    assert all(sorted(out) == [1] for out in outputs[1:6]) and all(sorted(out) == [1, 2] for out in outputs[6:])
    assert prop.stored_state()["objects"][2]["conditioning"] == [5]
    # the add ran the model on the new object only (object 1 was not propagated a second time on frame 5) ...
    assert [c for c in calls if c[0] == 5] == [(5, 0, False), (5, 1, True)]
    # ... and left object 1 as without it (exactly while it was alone)
    assert same_outputs(outputs[:6], reference[:6], [1]) and close_outputs(outputs, reference, [1])


def test_reanchoring_conditions_on_the_new_mask_and_keeps_few_anchors(one_object, tiny_video):
    prop, outputs = run(tiny_video, start={1: 0}, reanchor=[(1, 3), (1, 5), (1, 7), (1, 9)], max_anchors=3)
    # each re-anchor becomes a conditioning frame; the first and the newest ones are kept
    assert prop.stored_state()["objects"][1]["conditioning"] == [0, 7, 9]
    _, plain = one_object
    assert same_outputs(outputs[:4], plain[:4], [1]) and not same_outputs(outputs[4:], plain[4:], [1])


def test_removing_an_object_removes_it_and_leaves_the_others_unchanged(both_from_start, tiny_video):
    _, reference = both_from_start
    prop, outputs = run(tiny_video, remove={1: 4})
    assert all(sorted(out) == [1, 2] for out in outputs[1:5]) and all(sorted(out) == [2] for out in outputs[5:])
    assert prop.drops_objects and prop.live_ids == [2] and list(prop.stored_state()["objects"]) == [2]
    assert same_outputs(outputs[:5], reference[:5], [1, 2]) and close_outputs(outputs, reference, [2])
    prop.remove_objects([1, 99])  # unknown ids are ignored
    prop.remove_objects([2])
    image = next(disc_clip(1))[0]
    assert prop.step(40, image) == {} and prop.live_ids == []


def test_removal_falls_back_to_masking_out(tiny_video):
    prop = Sam2Propagator(tiny_video, frame=FRAME)
    prop.reset(SIZE)
    prop.drops_objects = False  # as if transformers' session tables changed
    clip = list(disc_clip(3))
    prop.step(0, clip[0][0])
    prop.add_objects(0, clip[0][0], clip[0][1])
    prop.remove_objects([1])
    assert list(prop.step(1, clip[1][0])) == [2] and prop.live_ids == [2]
    prop.add_objects(1, clip[1][0], {1: clip[1][1][1]})  # a removed id added again comes back
    assert sorted(prop.step(2, clip[2][0])) == [1, 2]


def test_memory_stays_bounded_and_pruning_changes_no_mask(tiny_video):
    n, pruned, unpruned = 40, [], []
    prop, outputs = run(tiny_video, n=n, start={1: 0}, reanchor=[(1, 8)], trace=pruned)
    state = prop.stored_state()
    model = prop.model.config
    memory, pointers = model.num_maskmem - 1, model.max_object_pointers_in_encoder - 1
    obj = state["objects"][1]
    assert state["frames"] == [n - 1] and state["vision_cache"] == [n - 1]  # the current frame only
    assert obj["memory"] == list(range(n - memory, n)) and len(obj["pointer"]) == pointers
    assert obj["conditioning"] == [0, 8] and obj["tracked"] <= 1 and obj["inputs"] == 0
    stored = len(state["frames"]) + len(obj["conditioning"]) + len(obj["pointer"])
    assert stored <= 1 + prop.max_anchors + pointers
    # the bytes held stop growing once the pointer window is full (from frame 8 + 15 on)
    assert len(set(pruned[23:])) == 1 and max(pruned) <= 1.2 * pruned[-1]
    # without pruning the session keeps every frame (so the bounds above do fail), with the same masks
    m = 24
    full, same = run(tiny_video, n=m, start={1: 0}, reanchor=[(1, 8)], prune=False, trace=unpruned)
    kept = full.stored_state()
    assert len(kept["frames"]) == m and len(kept["objects"][1]["memory"]) == m - 2
    assert unpruned[-1] > 4 * pruned[m - 1] and unpruned[-1] > 1.5 * unpruned[m // 2 - 1]
    assert same_outputs(outputs[:m], same, [1])
