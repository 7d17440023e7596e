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


def parse_classes(text: str, one_line_is_list: bool = True) -> ClassList:
    """Lines separate classes and commas separate a class's synonyms, as SCLIP reads a name file.

    'cat\\ndog' is two classes; 'person, person in shirt\\ncar' is two classes, the first with two names.
    With one_line_is_list (the tab's text box), a single line 'cat, dog' is two classes, as a person typing it
    means; a class file never takes that shortcut (`load_class_file`). Empty entries are dropped; a name repeated
    across classes is refused."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    if len(lines) == 1 and one_line_is_list:
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
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"Cannot read the class file {p}: {e}") from None
    return parse_classes(text, one_line_is_list=False)
