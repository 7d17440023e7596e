"""Tab 3: video instance tracking over core.video: a clip and class names -> tracks (stable ID, class, score, a
mask per frame) drawn into an MP4, a track table, a timeline, and per-track evidence over time."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from core.data.examples import example_clips
from core.errors import BadInput
from core.video.cli import parse_classes
from core.video.frames import FrameConfig, open_video
from demo.handling import gpu, guarded, loading_note, model_status, request_dir

TRACK_COLUMNS = ["ID", "class", "score", "first frame", "last frame", "frames with a mask", "detections"]
SIZES = [256, 384, 512, 768]
MODELS = ["openclip", "sam2", "sam2-video"]


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


@gpu
@guarded(_empty)
def track_video(video, classes="", keyframe_every=10, processing_size=512, max_frames=300, stride=1,
                new_track_score=0.5, progress=gr.Progress()):
    """Track every object of the given classes through a clip (MHQR keyframes, SAM2 video propagation, optimal
    association, temporal classification). Returns a status line, an H.264 MP4 with the tracks drawn, a table of
    tracks (ID, class, score, first and last frame), a lifespan timeline, a JSON of every track (per-frame RLE
    masks, weights, class probabilities) and the track picker."""
    from core.video.figures import timeline
    from core.video.model_stages import ModelStagesConfig, build_model_stages
    from core.video.render import write_tracks_mp4
    from core.video.association import AssociationConfig
    from core.video.tracker import TrackerConfig, track_clip, write_tracks_json

    if not video:
        raise BadInput("Upload a clip (or click an example).")
    path = video
    names = parse_classes(classes or "")
    frame_cfg = FrameConfig(stride=int(stride), max_frames=int(max_frames), size=int(processing_size))
    video = open_video(path, frame_cfg)
    try:
        progress(0.02, desc=loading_note(MODELS) or "Loading models")
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
    status_models = gr.Markdown(elem_id="vid-models")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            video = gr.Video(label="Clip (MP4, MOV, WebM, ...)", sources=["upload"], elem_id="vid-input")
            info = gr.Markdown(elem_id="vid-info")
            classes = gr.Textbox(label="Classes (comma-separated)", value="", placeholder="fish, diver, rock",
                                 elem_id="vid-classes", info="The kinds of object to track; each track gets one.")
            run = gr.Button("Track", variant="primary", elem_id="vid-run")
            with gr.Accordion("Settings", open=False, elem_id="vid-settings"):
                keyframe = gr.Slider(1, 30, value=10, step=1, label="Detect every N frames",
                                     info="New objects are found on these frames; SAM2 carries the masks between "
                                          "them. Lower finds objects sooner and is slower. Default 10.")
                size = gr.Radio(SIZES, value=512, label="Processing size (long side, px)", elem_id="vid-size",
                                info="512 is about 0.9 s a frame on a 2-core CPU, against about 7 s at 1024 "
                                     "(SAM2's own). Default 512.")
                max_frames = gr.Slider(10, 300, value=300, step=10, label="At most this many frames",
                                       elem_id="vid-max-frames", info="Processing stops there, with a message.")
                stride = gr.Slider(1, 10, value=1, step=1, label="Keep every N-th frame",
                                   info="2 halves the time of a smooth clip; objects that move fast may be lost.")
                new_score = gr.Slider(0, 1, value=0.5, step=0.05, elem_id="vid-new-score",
                                      label="Start a track from this detection score",
                                      info="An unmatched detection becomes a new track from this score. Default "
                                           "0.5; lower it when objects are missed.")
        with gr.Column(scale=2, min_width=300):
            status = gr.Markdown(label="Status", elem_id="vid-status")
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
    outputs = [status, result_video, table, lifespans, download, pick, state]
    gr.Examples([[str(clips["shapes_crossing"]), "disc, square, triangle, ring"],
                 [str(clips["shapes_pillar"]), "disc, square, triangle, ring"]],
                inputs=[video, classes], outputs=outputs[:5], fn=track_example, cache_examples=True, cache_mode="lazy",
                label="Examples (rendered clips of moving shapes): click one", api_visibility="private",
                elem_id="vid-examples")
    private = {"api_visibility": "private"}
    demo.load(video_models_status, None, status_models, queue=False, show_progress="hidden", **private)
    video.upload(check_video, [video, size, max_frames, stride], info, **private)
    run.click(track_video, [video, classes, keyframe, size, max_frames, stride, new_score], outputs,
              api_name="track_video", concurrency_limit=1)
    pick.change(show_track, [pick, state], detail, **private)


def track_example(video, classes):
    """An example's cached result: every output but the track picker and the session state (Gradio cannot cache a
    component update or a state)."""
    return track_video(video, classes, max_frames=60)[:5]


def video_models_status():
    """The tab's models and whether their weights are here, at page load."""
    return model_status(MODELS)
