"""Video instance tracking: streamed frames -> keyframe detections -> propagation -> stable IDs -> track classes.

Entry points: `core.video.frames` (open_video, FrameConfig), `core.video.stages` (the stage protocols and Detection,
Propagated), `core.video.tracker` (track_clip, Track), `core.video.association`, `core.video.classification`, `core.video.selection`,
`core.video.standins` (no weights), `core.video.cli`, `core.video.render`, `core.video.figures` (plotly), `core.video.model_stages` (the models: `core.video.mhqr_detector`,
`core.video.sam2_propagator`, `core.video.clip_evidence`). Uses openvocab (MHQR, dense CLIP); never imports prompted, UI or bench code.
"""
