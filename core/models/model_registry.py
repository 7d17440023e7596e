"""One place where models are named, found, loaded once per process and shared.

A short name ("clipseg") resolves to a hub id, unless its environment variable
(SEGLAB_CLIPSEG=/path) names a local folder. A name may also be a folder path
(a fine-tuned copy). With SEGLAB_MODELS=tiny every name resolves to a tiny
randomly initialised model of the same class, written once to a cache folder in
the real format and loaded through the same loader.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import torch

from core.errors import ModelUnavailable


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hub_id: str
    env_var: str
    description: str
    loader: Callable[[str, torch.device, torch.dtype, bool], Any]  # (location, device, dtype, local_only)
    tiny_builder: Callable[[Path], None]
    tiny_version: str = "1"  # bump when the tiny builder changes, so cached tiny models are rebuilt
    provide: str = ModelUnavailable.SAVE_PRETRAINED  # what the environment variable may name
    probe_files: tuple[str, ...] = ("config.json",)  # a usable folder holds one of these (the first: in the hub cache)


@dataclass(frozen=True)
class Source:
    """Where a model's weights come from: kind is 'local', 'hub' or 'tiny'."""

    name: str
    kind: str
    location: str

    def describe(self) -> str:
        return {"local": "local folder", "hub": "hub id", "tiny": "tiny random weights"}[self.kind] + f" {self.location}"


def default_device() -> torch.device:
    forced = os.environ.get("SEGLAB_DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cache_dir() -> Path:
    return Path(os.environ.get("SEGLAB_CACHE", Path.home() / ".cache" / "seglab"))


def models_mode() -> str:
    """'real' (hub ids or local folders) or 'tiny' (random tiny weights)."""
    mode = os.environ.get("SEGLAB_MODELS", "real").strip().lower() or "real"
    return "tiny" if mode == "tiny" else "real"


def set_models_mode(mode: str) -> None:
    os.environ["SEGLAB_MODELS"] = mode


def _hub_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """A fast check before asking the hub: offline machines otherwise spend ~30 s in retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False, "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    parsed = urlparse(endpoint)
    host = parsed.hostname or endpoint
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except OSError as exc:
        return False, f"the hub ({host}) cannot be reached: {exc}"


@dataclass
class _Entry:
    model: Any = None
    error: ModelUnavailable | None = None
    failed_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelRegistry:
    """Resolves names to sources and loads each source once, thread-safe."""

    RETRY_AFTER_S = 60.0  # a failed load is not retried on every request

    def __init__(self, device: torch.device | None = None, dtype: torch.dtype = torch.float32):
        self.device = device or default_device()
        self.dtype = dtype
        self._specs: dict[str, ModelSpec] = {}
        self._entries: dict[tuple, _Entry] = {}
        self._lock = threading.Lock()

    # --- names -----------------------------------------------------------
    def register(self, spec: ModelSpec) -> None:
        self._specs[spec.name] = spec

    def spec(self, name: str) -> ModelSpec:
        return self._specs[name]

    def names(self) -> list[str]:
        return sorted(self._specs)

    def resolve(self, name_or_path: str, family: str | None = None) -> tuple[ModelSpec, Source]:
        """A registered name, or a folder path (then `family` says which loader reads it)."""
        if name_or_path in self._specs:
            spec = self._specs[name_or_path]
            override = os.environ.get(spec.env_var, "").strip()
            if override:
                return spec, Source(spec.name, "local", override)
            if models_mode() == "tiny":
                return spec, Source(spec.name, "tiny", str(cache_dir() / "tiny" / f"{spec.name}-v{spec.tiny_version}"))
            return spec, Source(spec.name, "hub", spec.hub_id)
        path = Path(name_or_path).expanduser()
        if family is None or family not in self._specs:
            raise ModelUnavailable(name_or_path, [f"no registered model of that name ({', '.join(self.names())})"], None)
        if not path.exists():
            raise ModelUnavailable(name_or_path, [f"local folder {path} (does not exist)"], None)
        return self._specs[family], Source(path.name, "local", str(path.resolve()))

    # --- loading ---------------------------------------------------------
    def get(self, name_or_path: str, family: str | None = None) -> Any:
        spec, source = self.resolve(name_or_path, family)
        key = (spec.name, source.kind, source.location, str(self.device), str(self.dtype))
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
        with entry.lock:
            if entry.model is not None:
                return entry.model
            if entry.error is not None and time.monotonic() - entry.failed_at < self.RETRY_AFTER_S:
                raise entry.error
            try:
                entry.model = self._load(spec, source)
                entry.error = None
                return entry.model
            except ModelUnavailable as exc:
                entry.error, entry.failed_at = exc, time.monotonic()
                raise

    def fresh(self, name_or_path: str, family: str | None = None) -> Any:
        """A new, unshared copy (for training): same resolution and errors as get(), nothing cached."""
        spec, source = self.resolve(name_or_path, family)
        return self._load(spec, source)

    def status(self, name: str) -> ModelStatus:
        """Where `name`'s weights would come from, without loading them (what a tab shows at page load)."""
        spec, source = self.resolve(name)
        key = (spec.name, source.kind, source.location, str(self.device), str(self.dtype))
        entry = self._entries.get(key)
        if entry is not None and entry.model is not None:
            return ModelStatus(spec.name, "ready", f"loaded ({source.describe()})", loaded=True)
        if source.kind == "tiny":
            return ModelStatus(spec.name, "ready", "tiny random weights (SEGLAB_MODELS=tiny)")
        if source.kind == "local":
            problem = _local_problem(Path(source.location).expanduser(), spec.probe_files)
            if problem:
                return ModelStatus(spec.name, "missing", f"{spec.env_var}={source.location}: {problem}. Set "
                                   f"{spec.env_var} to {spec.provide}.")
            return ModelStatus(spec.name, "ready", f"local copy {source.location} ({spec.env_var})")
        if _in_hub_cache(spec.hub_id, spec.probe_files[0]):
            return ModelStatus(spec.name, "ready", f"hub id {spec.hub_id}, found in the Hugging Face cache")
        ok, why = hub_reachable_cached()
        if ok:
            return ModelStatus(spec.name, "download", f"hub id {spec.hub_id}: downloaded on first use (the first "
                               "request waits for it)")
        return ModelStatus(spec.name, "missing", f"not in the Hugging Face cache and {why}. Set {spec.env_var} to "
                           f"{spec.provide}.")

    def loaded(self) -> list[tuple]:
        return [k for k, e in self._entries.items() if e.model is not None]

    def _load(self, spec: ModelSpec, source: Source) -> Any:
        if source.kind == "tiny":
            folder = Path(source.location)
            if not (folder / ".complete").exists():
                spec.tiny_builder(folder)
                (folder / ".complete").write_text("ok\n")
            return spec.loader(str(folder), self.device, self.dtype, True)
        if source.kind == "local":
            folder = Path(source.location).expanduser()
            if not folder.exists():
                raise ModelUnavailable(spec.name, [f"{spec.env_var}={folder} (no such file or folder)"], spec.env_var,
                                       provide=spec.provide)
            try:
                return spec.loader(str(folder), self.device, self.dtype, True)
            except (OSError, ValueError, KeyError) as exc:
                raise ModelUnavailable(spec.name, [f"local folder {folder} ({_short(exc)})"], spec.env_var,
                                       provide=spec.provide) from exc
        tried = [f"{spec.env_var} (not set)"]
        try:  # a copy in the local hub cache needs no network
            return spec.loader(spec.hub_id, self.device, self.dtype, True)
        except (OSError, ValueError):
            tried.append(f"hub cache for {spec.hub_id} (no copy)")
        ok, why = _hub_reachable()
        if not ok:
            tried.append(f"hub id {spec.hub_id} ({why})")
            raise ModelUnavailable(spec.name, tried, spec.env_var, provide=spec.provide)
        try:
            return spec.loader(spec.hub_id, self.device, self.dtype, False)
        except (OSError, ValueError) as exc:
            tried.append(f"hub id {spec.hub_id} ({_short(exc)})")
            raise ModelUnavailable(spec.name, tried, spec.env_var, provide=spec.provide) from exc


@dataclass(frozen=True)
class ModelStatus:
    name: str
    state: str  # 'ready' (loaded, tiny, a local copy or in the hub cache), 'download' (on first use) or 'missing'
    detail: str
    loaded: bool = False  # in memory already (the next request does not wait for it)


def _local_problem(path: Path, probe_files: tuple[str, ...]) -> str | None:
    if not path.exists():
        return "no such file or folder"
    if path.is_file():
        return None if path.stat().st_size > 0 else "the file is empty"
    if any(any(path.glob(pattern)) for pattern in probe_files):
        return None
    return f"the folder holds none of {', '.join(probe_files)}"


def _in_hub_cache(hub_id: str, filename: str, cache_dir: str | None = None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(hub_id, filename, cache_dir=cache_dir), str)
    except Exception:  # an unreadable cache counts as empty
        return False


_REACHABLE: dict[str, tuple[float, bool, str]] = {}


def hub_reachable_cached(max_age_s: float = 300.0) -> tuple[bool, str]:
    """_hub_reachable, asked at most once per max_age_s (every tab asks at page load)."""
    now = time.monotonic()
    hit = _REACHABLE.get("hub")
    if hit is None or now - hit[0] > max_age_s:
        ok, why = _hub_reachable(timeout=2.0)
        hit = _REACHABLE["hub"] = (now, ok, why)
    return hit[1], hit[2]


def _short(exc: Exception, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
