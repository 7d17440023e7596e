"""Video instance tracking: streamed frames -> keyframe detections -> propagation -> stable IDs -> track classes.

Entry points: `core.video.frames` (open_video, FrameConfig), `core.video.stages` (Detector, Propagator, ClassEvidence,
Detection, Propagated), `core.video.tracker` (TrackerConfig, track_clip, Track, write_tracks_json), `core.video.association`,
`core.video.classification`, `core.video.selection`, `core.video.standins` (no weights), `core.video.cli`.
Never imports prompted or openvocab (other pipelines), nor any UI or bench code.
"""
