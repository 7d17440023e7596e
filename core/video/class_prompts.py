"""The class list the dense CLIP stages of tracking see: the user's classes, then the 'no object' prompts as one more.

Tracking's classes are the names a user typed ("fish, diver, rock"); an open-vocabulary dense map over those alone
labels every pixel as one of them, so the water would be a "rock". The detector and the class evidence therefore
score one extra class after the user's, named by `background` (default: "background", the name SCLIP's VOC list
uses for its class 0), through the same 80 templates: on a keyframe its regions are not detections, and in the
evidence its cosine is the 'no object' logit. Synonyms: a user's class may hold several names ("person, man": a
line of a class file), exactly as core.openvocab.class_names reads a class file; the background names are synonyms
of one class. The user's class k stays class k; the background is class C (the last).
"""

from __future__ import annotations

from core.errors import BadInput
from core.openvocab.class_names import ClassList, parse_classes

BACKGROUND: tuple[str, ...] = ("background",)


def parse_background(text: str | None) -> tuple[str, ...]:
    """'background, floor, sky' -> its names; '' or None -> () (no background prompt)."""
    return tuple(dict.fromkeys(n.strip() for n in (text or "").split(",") if n.strip()))


def dense_classes(class_names: list[str], background: tuple[str, ...] = BACKGROUND) -> ClassList:
    """The user's classes (each line's comma-separated synonyms) and, when `background` is not empty, one last class
    of those names. A background name that is also a class name is refused (it would mean both)."""
    if not class_names:
        raise BadInput("Give at least one class name (--classes 'fish, diver').")
    user = parse_classes("\n".join(class_names), one_line_is_list=False)
    taken = {n.lower() for n in user.names}
    clash = [b for b in background if b.lower() in taken]
    if clash:
        raise BadInput(f"'{clash[0]}' is both a class to track and a 'no object' (background) prompt; rename the "
                       "class or choose other background names.")
    background = tuple(dict.fromkeys(background))
    if not background:
        return user
    n = user.n
    return ClassList(user.classes + [background[0]], user.names + list(background),
                     user.name_to_class + [n] * len(background))
