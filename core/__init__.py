"""SegLab: image and video segmentation research tools, as a library and one command line.

Packages, one per pipeline or shared concern: models, data, prompted, openvocab, metrics, results, draw
(docs/architecture.md draws how they connect). Entry points: `core.cli` (`python -m core <command>`), `core.errors`.
Never imports gradio, demo or bench: the app and the benchmarks are built on top of the library, never inside it.
"""

import os as _os

_os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
_os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
