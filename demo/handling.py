"""What every tab shares around its handlers: the tiny-mode banner, errors turned into messages, request folders."""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from core.errors import ModelUnavailable, SegLabError
from core.models import models_mode

log = logging.getLogger("seglab")

TINY_BANNER = (
    "**Tiny-model mode** (`SEGLAB_MODELS=tiny`): every model has small *random* weights. "
    "The app runs end to end, but its outputs are meaningless."
)


def banner() -> str:
    return TINY_BANNER if models_mode() == "tiny" else ""


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
