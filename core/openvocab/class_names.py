"""Class lists for open-vocabulary segmentation: one class a line, synonyms comma-separated."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInput

MAX_CLASSES = 256
MAX_NAME_CHARS = 100
CLASS_LIST_DIR = Path(__file__).resolve().parent / "class_lists"


@dataclass(frozen=True)
class ClassList:
    classes: list[str]  # display name of each class (its first synonym)
    names: list[str]  # every name, flattened
    name_to_class: list[int]  # class index of each name

    @property
    def n(self) -> int:
        return len(self.classes)


def parse_classes(text: str) -> ClassList:
    """Lines (or, on a single line, commas) separate classes; on a line of several, commas separate synonyms.

    'cat\\ndog' and 'cat, dog' are two classes; 'person, person in shirt\\ncar' is two classes, the first with
    two names. Empty entries are dropped; a name repeated across classes is refused."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    if len(lines) == 1:
        lines = [p.strip() for p in lines[0].split(",") if p.strip()]
    classes, names, owner = [], [], []
    seen: dict[str, int] = {}
    for ci, line in enumerate(lines):
        syn = [s.strip() for s in line.split(",") if s.strip()]
        for s in syn:
            if len(s) > MAX_NAME_CHARS:
                raise BadInput(f"Class name '{s[:40]}…' is {len(s)} characters; at most {MAX_NAME_CHARS}.")
            key = s.lower()
            if key in seen:
                if seen[key] == ci:
                    continue
                raise BadInput(f"'{s}' is listed twice (classes {seen[key] + 1} and {ci + 1}); each name may name one class.")
            seen[key] = ci
            names.append(s)
            owner.append(ci)
        classes.append(syn[0])
    if not classes:
        raise BadInput("Give at least one class name (one per line, or comma-separated).")
    if len(classes) > MAX_CLASSES:
        raise BadInput(f"{len(classes)} classes given; at most {MAX_CLASSES}.")
    return ClassList(classes, names, owner)


def preset_names() -> list[str]:
    return sorted(p.stem for p in CLASS_LIST_DIR.glob("*.txt"))


def load_class_file(path_or_preset: str) -> ClassList:
    p = Path(path_or_preset)
    if not p.is_file():
        p = CLASS_LIST_DIR / f"{path_or_preset}.txt"
    if not p.is_file():
        raise BadInput(f"No class file '{path_or_preset}' (presets: {', '.join(preset_names())}).")
    lines = [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return parse_classes("\n".join(lines) if len(lines) != 1 else lines[0] + "\n")
