"""Tab 3: video instance tracking over core.video: a clip and class names -> tracks (stable ID, class, score, a
mask per frame) drawn into an MP4, a track table, a timeline, and per-track evidence over time."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from core.data.examples import example_clips
from core.errors import BadInput
from core.video.cli import parse_classes
from core.video.frames import FrameConfig, open_video
from demo.handling import guarded, request_dir

TRACK_COLUMNS = ["ID", "class", "score", "first frame", "last frame", "frames with a mask", "detections"]
SIZES = [256, 384, 512, 768]


def _empty(message):
    return message, None, None, None, None, gr.update(choices=[], value=None), None


def _info_text(video) -> str:
    i = video.info
    parts = [f"{i.width}×{i.height}", f"{i.fps:.1f} fps" if i.fps else "frame rate unknown",
             f"{i.duration:.1f} s" if i.duration else "duration unknown", i.codec]
    expect = f"; about {i.expected_frames} frames will be processed" if i.expected_frames else ""
    return f"**{', '.join(parts)}**; processed at {i.processing_size[1]}×{i.processing_size[0]}{expect}."


@guarded(lambda m: m)
def check_video(path, size, max_frames, stride):
    """On upload: open the clip (refused with the reason if it is not a video, is empty or too long)."""
    if not path:
        return ""
    video = open_video(path, FrameConfig(stride=int(stride), max_frames=int(max_frames), size=int(size)))
    try:
        return _info_text(video) + (" " + " ".join(video.messages) if video.messages else "")
    finally:
        video.close()


@guarded(_empty)
def run_tracking(path, class_text, keyframe_every, size, max_frames, stride, new_track_score=0.5,
                 progress=gr.Progress()):
    from core.video.figures import timeline
    from core.video.model_stages import ModelStagesConfig, build_model_stages
    from core.video.render import write_tracks_mp4
    from core.video.association import AssociationConfig
    from core.video.tracker import TrackerConfig, track_clip, write_tracks_json

    if not path:
        raise BadInput("Upload a clip (or click an example).")
    names = parse_classes(class_text or "")
    frame_cfg = FrameConfig(stride=int(stride), max_frames=int(max_frames), size=int(size))
    video = open_video(path, frame_cfg)
    try:
        progress(0.02, desc="Loading models")
        detector, propagator, evidence = build_model_stages(names, ModelStagesConfig())
        expected = video.info.expected_frames or int(max_frames)

        def step(n):
            progress(min(n / max(expected, 1), 1.0), desc=f"frame {n}/{expected}")

        result = track_clip(video.frames(), detector, propagator, evidence, names,
                            TrackerConfig(keyframe_every=int(keyframe_every),
                                          association=AssociationConfig(new_track_score=float(new_track_score))), step)
        result.messages[:0] = video.messages
    finally:
        video.close()
    out = request_dir("video_")
    progress(0.97, desc="Drawing the tracks into the video")
    mp4 = write_tracks_mp4(path, result, out / "tracks.mp4", frame_cfg)
    js = write_tracks_json(result, out / "tracks.json", {"video": video.info.as_dict()})
    table = pd.DataFrame([[t.id, t.class_name, round(t.score, 3), t.first_frame, t.last_frame, len(t.frames),
                           t.detections] for t in result.tracks], columns=TRACK_COLUMNS)
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items() if v)
    status = (f"Done: {len(result.tracks)} track(s) kept of {result.candidates} candidate(s) in {result.n_frames} "
              f"frames ({seconds}).")
    if not result.tracks:
        status += " No object of these classes was tracked: try other names or a lower keyframe interval."
    if result.messages:
        status += " " + " ".join(result.messages)
    choices = [(f"#{t.id} {t.class_name} ({t.score:.2f})", t.id) for t in result.tracks]
    state = {"json": str(js)}
    return (status, str(mp4), table, timeline(result), str(js),
            gr.update(choices=choices, value=choices[0][1] if choices else None), state)


@guarded(lambda m: None)
def show_track(track_id, state):
    from core.video.figures import track_detail
    from core.video.tracker import read_tracks_json

    if track_id is None or not state:
        return None
    meta, tracks = read_tracks_json(state["json"])
    track = next((t for t in tracks if t.id == int(track_id)), None)
    if track is None:
        raise BadInput(f"No track #{track_id} in this result.")
    return track_detail(track, meta["classes"])


def build(demo: gr.Blocks) -> None:
    clips = example_clips()
    gr.Markdown("A clip and the classes to look for → every object as a track: one stable ID, one class with a "
                "score, a mask in every frame where it is visible. Keyframes are detected with MHQR (dense CLIP → "
                "query points → SAM2 masks), SAM2's video model carries the masks between them, detections are "
                "matched to tracks by optimal assignment, and each track's class is a weighted vote over its frames "
                "(DVIS-DAQ's structure, training-free). Clips up to 2 minutes; 300 frames are processed at most.")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            video = gr.Video(label="Clip (MP4, MOV, WebM, ...)", sources=["upload"], elem_id="vid-input")
            info = gr.Markdown(elem_id="vid-info")
            classes = gr.Textbox(label="Classes (comma-separated)", value="disc, square, triangle, ring",
                                 elem_id="vid-classes")
            with gr.Row():
                keyframe = gr.Slider(1, 30, value=10, step=1, label="Detect every N frames")
                size = gr.Radio(SIZES, value=512, label="Processing size (long side)", elem_id="vid-size")
            with gr.Row():
                max_frames = gr.Slider(10, 300, value=300, step=10, label="At most this many frames",
                                       elem_id="vid-max-frames")
                stride = gr.Slider(1, 10, value=1, step=1, label="Keep every N-th frame")
            new_score = gr.Slider(0, 1, value=0.5, step=0.05, elem_id="vid-new-score",
                                  label="Start a track from this detection score")
            run = gr.Button("Track", variant="primary", elem_id="vid-run")
            gr.Examples([[str(clips["shapes_crossing"]), "disc, square, triangle, ring"],
                         [str(clips["shapes_pillar"]), "disc, square, triangle, ring"]],
                        inputs=[video, classes], label="Examples (rendered clips of moving shapes)",
                        api_name="video_load_example")
        with gr.Column(scale=2, min_width=300):
            status = gr.Markdown(elem_id="vid-status")
            result_video = gr.Video(label="Tracks (ID, class, score)", interactive=False, elem_id="vid-output",
                                    format="mp4", height=420)
            table = gr.Dataframe(label="Tracks", headers=TRACK_COLUMNS, interactive=False, elem_id="vid-tracks")
            lifespans = gr.Plot(label="Timeline", elem_id="vid-timeline")
            pick = gr.Dropdown([], label="Track shown below", elem_id="vid-pick")
            detail = gr.Plot(label="The track's evidence over time (bars: each frame's weight in its class)",
                             elem_id="vid-detail")
            download = gr.File(label="All tracks (JSON: per-frame RLE masks, weights, class probabilities)",
                               elem_id="vid-json")
    state = gr.State(time_to_live=1800)
    video.upload(check_video, [video, size, max_frames, stride], info, api_visibility="private")
    run.click(run_tracking, [video, classes, keyframe, size, max_frames, stride, new_score],
              [status, result_video, table, lifespans, download, pick, state], api_name="track_video",
              concurrency_limit=1)
    pick.change(show_track, [pick, state], detail, api_visibility="private")
