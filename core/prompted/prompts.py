"""Labels, their prompts, and safe file names for prompts."""

from __future__ import annotations

import hashlib
import re

LABEL_PROMPTS: dict[str, list[str]] = {
    "crack": ["segment crack", "segment wall crack"],
    "taping_area": ["segment taping area", "segment drywall seam", "segment joint tape", "segment joint/tape"],
}

MAX_PROMPTS = 32
MAX_PROMPT_CHARS = 200
MAX_SLUG = 80


def label_of_prompt(prompt: str) -> str | None:
    for label, prompts in LABEL_PROMPTS.items():
        if prompt in prompts:
            return label
    return None


def prompt_slug(prompt: str) -> str:
    """Lower case, spaces and '/' to '_', anything outside [a-z0-9_-] dropped, at most 80 characters.

    A prompt with nothing left (only symbols or non-Latin script) becomes 'prompt-<hash>' so that
    distinct prompts keep distinct names.
    """
    slug = prompt.lower().replace(" ", "_").replace("/", "_")
    slug = re.sub(r"[^a-z0-9_-]", "", slug)[:MAX_SLUG]
    if not slug.strip("_-"):
        slug = "prompt-" + hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:10]
    return slug


def image_id_safe(stem: str) -> str:
    """An image id usable as a file name prefix: no separators, no leading dots."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".")
    return safe[:120] or "image"


def unique_slugs(prompts: list[str]) -> list[str]:
    """Slugs for a list of prompts; a slug seen before gets -2, -3, ... so no file overwrites another."""
    seen: dict[str, int] = {}
    out = []
    for p in prompts:
        s = prompt_slug(p)
        n = seen.get(s, 0) + 1
        seen[s] = n
        out.append(s if n == 1 else f"{s}-{n}")
    return out


def mask_filename(image_id: str, slug: str) -> str:
    return f"{image_id_safe(image_id)}__{slug}.png"


def parse_prompts(text_or_list: str | list[str] | None, labels: list[str] | None = None) -> list[str]:
    """Prompts from free text (one per line) plus the prompts of chosen labels; validated, de-duplicated."""
    from core.errors import BadInput

    items: list[str] = []
    for label in labels or []:
        if label not in LABEL_PROMPTS:
            raise BadInput(f"Unknown label '{label}'; known labels: {', '.join(LABEL_PROMPTS)}.")
        items.append(LABEL_PROMPTS[label][0])
    if isinstance(text_or_list, str):
        items += text_or_list.splitlines()
    elif text_or_list:
        items += list(text_or_list)
    prompts = list(dict.fromkeys(" ".join(p.split()) for p in items if p and p.strip()))
    if not prompts:
        raise BadInput("No prompt given: choose a label or type a prompt such as 'segment crack' (one per line).")
    if len(prompts) > MAX_PROMPTS:
        raise BadInput(f"{len(prompts)} prompts given; at most {MAX_PROMPTS} can run on one request.")
    long = [p for p in prompts if len(p) > MAX_PROMPT_CHARS]
    if long:
        raise BadInput(
            f"A prompt is {len(long[0])} characters long; at most {MAX_PROMPT_CHARS} are accepted "
            "(CLIP reads 77 tokens)."
        )
    return prompts
