"""Video step 3: SAM2 mask propagation, streaming, with bounded memory (transformers' Sam2VideoModel).

Streaming: one `Sam2VideoInferenceSession` per clip (`reset`); each frame is preprocessed by the processor (stretched
to the model's square frame F, no padding), handed to `model(inference_session=, frame=, frame_idx=)` and forgotten.
The session sees consecutive frame indices 0, 1, 2, ... whatever the caller's `frame_idx` (a clip read with a stride
still gets all of SAM2's memory slots): `frame_idx` only has to increase. Masks come back at the processing size
(h, w) given to `reset`: the decoder's F/4 logits cover the whole stretched frame and are resized bilinearly
(align_corners=False) straight to (h, w), as in core.openvocab.mhqr.sam2_masks; a pixel is in the mask when its logit
is > 0. The score is sigmoid(object score logit): SAM2's own "is the object visible" head.

Frame size: `frame=512` runs the same weights on a 512 frame (core.models.sam2_video.Sam2Video.at_frame); any multiple
of 32 works. 512 is about 7× faster than 1024 on a CPU (bench/video_propagation.py).

Adding objects (`add_objects`, after `step` on the same frame): the masks go in with
`processor.add_inputs_to_inference_session(input_masks=...)` and one more forward on that frame (frame=None). An id
the session already tracks is re-anchored: its tracked output on that frame is dropped first, so transformers treats
the mask as an initial conditioning frame (stored with the conditioning frames, kept in memory) instead of a
correction stored as an ordinary frame that leaves memory after num_maskmem frames. transformers' forward runs
every object; the objects that were not given a mask would be propagated a second time on that frame, so their
outputs on it are shown to the model as conditioning outputs for that one call (it then reuses their masks) and put
back afterwards: adding objects costs the new objects only.

Removing objects: the session has no remove call; `remove_objects` re-indexes its per-object tables (the objects'
inputs, outputs and tracked frames) without the removed ids, so they cost nothing afterwards; the others' outputs
are unchanged (up to float rounding: the memory encoder takes a frame's objects in one batch). Should a later
transformers change those tables, removal falls back to leaving the object in the session and masking it out of the
outputs (`drops_objects` says which).

Memory (`prune=True`): after every frame t the session keeps what the next frame reads and nothing else: the current
frame's pixels (for `add_objects`), the mask memories of the last num_maskmem - 1 frames, the object pointers of the
last max_object_pointers_in_encoder - 1 frames (pointer only), and per object at most `max_anchors` conditioning
frames (the most recent ones and the first; every conditioning frame is read at every frame, so they must be bounded
too); full-resolution masks are dropped as soon as the frame is done, mask inputs once consumed, and the vision
feature cache holds one frame. `stored_state()` reports what the session holds.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.models.sam2_video import Sam2Video
from core.video.stages import Propagated

DEFAULT_MAX_ANCHORS = 3
# The session's per-object tables (transformers 5.x, read on 5.23), re-indexed by remove_objects.
_PER_OBJECT = ("point_inputs_per_obj", "mask_inputs_per_obj", "output_dict_per_obj", "frames_tracked_per_obj")
_MEMORY_KEYS = ("maskmem_features", "maskmem_pos_enc")
COND, NON_COND = "cond_frame_outputs", "non_cond_frame_outputs"


class Sam2Propagator:
    """core.video.stages.Propagator on SAM2's video model: reset per clip, step per frame, add/remove objects."""

    def __init__(self, sam2: Sam2Video, frame: int | None = None, max_anchors: int = DEFAULT_MAX_ANCHORS,
                 prune: bool = True):
        if max_anchors < 1:
            raise ValueError(f"max_anchors must be at least 1, got {max_anchors}")
        self.model, self.processor = sam2.at_frame(frame)
        self.device = sam2.device
        self.frame = int(self.model.config.image_size)
        self.max_anchors = max_anchors
        self.prune = prune
        config = self.model.config
        self.num_maskmem = int(config.num_maskmem)
        self.max_pointers = int(config.max_object_pointers_in_encoder)
        self.session = None
        self.size: tuple[int, int] | None = None

    # --- the Propagator protocol ---------------------------------------------------------------------------------
    def reset(self, size: tuple[int, int]) -> None:
        """A new clip whose frames are (h, w) = size."""
        h, w = (int(size[0]), int(size[1]))
        if h < 1 or w < 1:
            raise ValueError(f"size must be positive (h, w), got {size}")
        self.size = (h, w)
        self.session = self.processor.init_video_session(inference_device=self.device, dtype=self.model.dtype,
                                                         max_vision_features_cache_size=1)
        self.session.video_height, self.session.video_width = h, w
        self._t = -1  # the session's index of the current frame
        self._frame_idx: int | None = None  # the caller's index of the current frame
        self._masked_out: set[int] = set()  # removed ids left in the session (fallback only)
        self.drops_objects = all(hasattr(self.session, name) for name in _PER_OBJECT + ("_obj_id_to_idx",))

    def step(self, frame_idx: int, frame: np.ndarray) -> dict[int, Propagated]:
        """Propagate every live object to this frame: {id: Propagated}, masks at the clip's size."""
        session = self._session()
        if self._frame_idx is not None and frame_idx <= self._frame_idx:
            raise ValueError(f"frames must come in increasing order: got {frame_idx} after {self._frame_idx}")
        pixels = self._pixels(frame)
        self._t += 1
        self._frame_idx = frame_idx
        if session.get_obj_num() == 0:
            session.add_new_frame(pixels, self._t)  # kept for add_objects on this frame
            self._prune()
            return {}
        out = self.model(inference_session=session, frame=pixels, frame_idx=self._t)
        self._prune()
        return self._propagated(out)

    def add_objects(self, frame_idx: int, frame: np.ndarray, masks: dict[int, np.ndarray]) -> None:
        """Condition new (or re-anchored) ids on their masks at this frame (the frame last stepped, or a new one)."""
        session = self._session()
        if not masks:
            return
        if frame_idx != self._frame_idx:
            self.step(frame_idx, frame)  # a frame not stepped yet: propagate the others to it first
        t = self._t
        ids = [int(i) for i in masks]
        arrays = [self._mask(masks[i], i) for i in masks]
        for obj_id in ids:
            self._masked_out.discard(obj_id)
            if obj_id in session.obj_ids:  # re-anchor: forget its tracked output here, so the mask conditions
                idx = session.obj_id_to_idx(obj_id)
                session.frames_tracked_per_obj[idx].pop(t, None)
                session.output_dict_per_obj[idx][NON_COND].pop(t, None)
        self.processor.add_inputs_to_inference_session(session, frame_idx=t, obj_ids=ids, input_masks=arrays)
        hidden = []  # the others: their output here shown as a conditioning output, so the model reuses it
        for obj_id in session.obj_ids:
            outputs = session.output_dict_per_obj[session.obj_id_to_idx(obj_id)]
            if obj_id not in ids and t in outputs[NON_COND] and t not in outputs[COND]:
                outputs[COND][t] = outputs[NON_COND].pop(t)
                hidden.append(outputs)
        try:
            self.model(inference_session=session, frame_idx=t)
        finally:
            for outputs in hidden:
                outputs[NON_COND][t] = outputs[COND].pop(t)
        for obj_id in ids:
            session.mask_inputs_per_obj[session.obj_id_to_idx(obj_id)].pop(t, None)
        self._prune()

    def remove_objects(self, ids: list[int]) -> None:
        """Stop tracking these ids (unknown ids are ignored)."""
        session = self._session()
        drop = {int(i) for i in ids} & set(session.obj_ids)
        if not drop:
            return
        if not self.drops_objects:
            self._masked_out |= drop
            return
        keep = [i for i in session.obj_ids if i not in drop]
        old = {i: session.obj_id_to_idx(i) for i in keep}
        for name in _PER_OBJECT:
            table = getattr(session, name)
            kept = {new: table[old[i]] for new, i in enumerate(keep)}
            table.clear()
            table.update(kept)
        session._obj_id_to_idx.clear()
        session._obj_idx_to_id.clear()
        for new, i in enumerate(keep):
            session._obj_id_to_idx[i] = new
            session._obj_idx_to_id[new] = i
        session.obj_ids = list(keep)
        session.obj_with_new_inputs = [i for i in session.obj_with_new_inputs if i not in drop]

    # --- inspection ------------------------------------------------------------------------------------------------
    @property
    def live_ids(self) -> list[int]:
        if self.session is None:
            return []
        return [i for i in self.session.obj_ids if i not in self._masked_out]

    def stored_state(self) -> dict:
        """What the session holds: frames with pixels, per-object frames by kind, and the bytes of all tensors."""
        s = self._session()
        per_object = {}
        for obj_id in s.obj_ids:
            idx = s.obj_id_to_idx(obj_id)
            outputs = s.output_dict_per_obj[idx]
            per_object[obj_id] = {
                "conditioning": sorted(outputs[COND]),
                "memory": sorted(f for f, o in outputs[NON_COND].items() if _MEMORY_KEYS[0] in o),
                "pointer": sorted(outputs[NON_COND]),
                "tracked": len(s.frames_tracked_per_obj[idx]),
                "inputs": len(s.mask_inputs_per_obj[idx]) + len(s.point_inputs_per_obj[idx]),
            }
        tensors = [*(s.processed_frames or {}).values(), *s.cache._vision_features.values()]
        tensors += [o for idx in s.output_dict_per_obj for kind in (COND, NON_COND)
                    for o in s.output_dict_per_obj[idx][kind].values()]
        tensors += [m for table in s.mask_inputs_per_obj.values() for m in table.values()]
        return {"frames": sorted(s.processed_frames or {}), "vision_cache": sorted(s.cache._vision_features),
                "objects": per_object, "bytes": _nbytes(tensors)}

    # --- internals -------------------------------------------------------------------------------------------------
    def _session(self):
        if self.session is None:
            raise RuntimeError("call reset(size) before the first frame")
        return self.session

    def _pixels(self, frame: np.ndarray) -> torch.Tensor:
        frame = np.asarray(frame)
        if frame.shape != (*self.size, 3):
            raise ValueError(f"frame must be {self.size[0]}×{self.size[1]}×3 (the size given to reset), "
                             f"got {frame.shape}")
        pixels = self.processor(images=frame, return_tensors="pt")["pixel_values"][0]
        return pixels.to(self.device, dtype=self.model.dtype)

    def _mask(self, mask: np.ndarray, obj_id: int) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.shape != self.size:
            raise ValueError(f"mask of object {obj_id} is {mask.shape}, the frames are {self.size}")
        return mask.astype(bool)

    def _propagated(self, out) -> dict[int, Propagated]:
        low = out.pred_masks.float()  # (n, 1, F/4, F/4) logits over the whole stretched frame
        h, w = self.size
        logits = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False,
                               antialias=bool(h < low.shape[-2] or w < low.shape[-1]))
        masks = (logits[:, 0] > 0).cpu().numpy()
        scores = torch.sigmoid(out.object_score_logits.float().reshape(-1)).cpu().numpy()
        return {int(i): Propagated(mask=masks[k], score=float(scores[k]))
                for k, i in enumerate(out.object_ids) if int(i) not in self._masked_out}

    def _prune(self) -> None:
        """Drop what no later frame reads (see the module docstring); frame t is kept whole for add_objects."""
        if not self.prune:
            return
        s, t = self.session, self._t
        for f in [f for f in (s.processed_frames or {}) if f < t]:
            del s.processed_frames[f]
        memory_from = t - (self.num_maskmem - 2)  # frame t+1 reads the masks of t+1-1 ... t+1-(num_maskmem-1)
        pointer_from = t - (self.max_pointers - 2)  # and the pointers of t+1-1 ... t+1-(max_pointers-1)
        for idx, outputs in s.output_dict_per_obj.items():
            for f, o in list(outputs[NON_COND].items()):
                if f < pointer_from:
                    del outputs[NON_COND][f]
                elif f < memory_from:
                    outputs[NON_COND][f] = {"object_pointer": o["object_pointer"]}
                else:
                    _drop_masks(o, f < t)
            for f in _dropped_anchors(sorted(outputs[COND]), self.max_anchors):
                del outputs[COND][f]
            for f, o in outputs[COND].items():
                _drop_masks(o, f < t)
            tracked = s.frames_tracked_per_obj[idx]
            for f in [f for f in tracked if f < t]:
                del tracked[f]
            for table in (s.mask_inputs_per_obj[idx], s.point_inputs_per_obj[idx]):
                for f in [f for f in table if f < t]:
                    del table[f]


def _dropped_anchors(anchors: list[int], keep: int) -> list[int]:
    """Conditioning frames beyond `keep`: the newest is kept, then the first, then the most recent others."""
    if len(anchors) <= keep:
        return []
    kept = {anchors[-1], *anchors[len(anchors) - keep + 1:]}
    if keep >= 2:
        kept.add(anchors[0])
    return [f for f in anchors if f not in kept]


def _drop_masks(output: dict, low_res_too: bool) -> None:
    """The full-resolution masks are never read back; the F/4 ones only to reuse a frame's output on that frame."""
    output.pop("high_res_masks", None)
    if low_res_too:
        output.pop("pred_masks", None)


def _nbytes(items) -> int:
    total = 0
    for item in items:
        if isinstance(item, torch.Tensor):
            total += item.numel() * item.element_size()
        elif isinstance(item, dict):
            total += _nbytes(item.values())
        elif isinstance(item, (list, tuple)):
            total += _nbytes(item)
    return total
