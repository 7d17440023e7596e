"""What every tab shares around its handlers: the tiny-mode banner, errors turned into messages, request folders, the
models' status at page load, the photo input, `spaces.GPU` on a Space and preloading."""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
import time
import traceback
from pathlib import Path

import gradio as gr

from core.errors import ModelUnavailable, SegLabError
from core.models import models_mode, registry

log = logging.getLogger("seglab")

TINY_BANNER = (
    "**Tiny-model mode** (`SEGLAB_MODELS=tiny`): every model has small *random* weights. "
    "The app runs end to end, but its outputs are meaningless."
)


def banner() -> str:
    return TINY_BANNER if models_mode() == "tiny" else ""


STATE_WORDS = {"ready": "ready", "download": "downloaded on first use", "missing": "**missing**"}


def model_status(names: list[str]) -> str:
    """One line per model a tab uses: which, and whether its weights are here (shown at page load, before any click).
    Starts with '**Model missing.**' when one is missing: the tab says so before the visitor presses a button."""
    lines, missing = [], False
    for name in names:
        try:
            st = registry().status(name)
            spec = registry().spec(name)
        except (SegLabError, KeyError) as exc:
            lines.append(f"- `{name}`: **missing**: {exc}")
            missing = True
            continue
        missing |= st.state == "missing"
        lines.append(f"- {spec.description.split(':')[0]} (`{name}`): {STATE_WORDS[st.state]}: {st.detail}")
    head = "**Model missing.** This tab cannot run until its weights are provided:" if missing else "Models:"
    return head + "\n" + "\n".join(lines)


def loading_note(names: list[str]) -> str | None:
    """'Loading X (first request after start-up)' when a model is not in memory yet, for the progress bar."""
    waiting = []
    for name in names:
        try:
            if not registry().status(name).loaded:
                waiting.append(registry().spec(name).description.split(":")[0])
        except (SegLabError, KeyError):
            pass
    return f"Loading {', '.join(waiting)} (the first request after start-up waits for it)" if waiting else None


def error_text(exc: BaseException) -> str:
    if isinstance(exc, ModelUnavailable):
        return f"**Model missing.** {exc}"
    if isinstance(exc, SegLabError):
        return f"**Error:** {exc}"
    return f"**Internal error**  ({type(exc).__name__}): {exc}. The server keeps running; the details are in its log."


def guarded(on_error):
    """Decorator: a handler's SegLabError (or any failure) becomes `on_error(message)`, never a traceback."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # the UI must answer every request
                if not isinstance(exc, SegLabError):
                    log.error("handler %s failed:\n%s", fn.__name__, traceback.format_exc())
                return on_error(error_text(exc))

        return inner

    return wrap


REQUEST_ROOT_NAME = "seglab_requests"
REQUEST_MAX_AGE_S = 3600


def request_dir(prefix: str) -> Path:
    """A fresh folder for one request's downloads; folders older than an hour are removed on the way."""
    root = Path(tempfile.gettempdir()) / REQUEST_ROOT_NAME
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if now - old.stat().st_mtime > REQUEST_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


class PhotoInput(gr.Image):
    """gr.Image (upload, webcam, clipboard; the photo stays visible) that hands the handler the uploaded file's path
    untouched. Gradio's own preprocessing opens the file first and fails with a generic error on a text file, a
    truncated or a decompression-bomb-sized image; here every such file reaches core.data.images, whose message says
    what was wrong. Build it with photo_input()."""

    is_template = True  # Gradio's convention for a subclass drawn by its parent's frontend component

    @classmethod
    def get_component_class_id(cls) -> str:
        return gr.Image.get_component_class_id()

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception:  # not an image, truncated, too large: core.data.images says which
            return str(payload.path) if payload is not None and payload.path else None


def photo_input(**kwargs) -> PhotoInput:
    """The photo input every image tab uses: a file path, the file's own mode, upload/webcam/clipboard."""
    return PhotoInput(type="filepath", image_mode=None, sources=["upload", "webcam", "clipboard"], **kwargs)


def gpu(fn):
    """`spaces.GPU` around a handler on a Hugging Face Space with ZeroGPU (the `spaces` package present); the handler
    itself elsewhere. Keeps the signature, so the API's parameter names stay the handler's."""
    try:
        import spaces
    except ImportError:
        return fn
    return functools.wraps(fn)(spaces.GPU(fn))


def preload(names: list[str]) -> None:
    """Load the models into memory (and onto the device) once at start-up, in the background: a missing one is
    reported by its tab, never fatal here."""
    import threading

    def run():
        for name in names:
            try:
                registry().get(name)
                log.info("preloaded %s", name)
            except SegLabError as exc:
                log.warning("not preloaded: %s", exc)

    threading.Thread(target=run, name="seglab-preload", daemon=True).start()
