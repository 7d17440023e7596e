"""Shared pieces of the parity tests: one random ViT-B/16 for SegLab and the published references alike, the
same text vectors installed for both, and the comparison of two label maps."""

from __future__ import annotations

import numpy as np
import torch

from core.models.openclip import OpenClip
from core.openvocab.class_names import ClassList, parse_classes


def random_vit_b16() -> OpenClip:
    """open_clip's ViT-B-16-quickgelu with random weights (seed 0), wrapped as SegLab loads it."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-quickgelu").eval()
    return OpenClip(model, open_clip.get_tokenizer("ViT-B-16-quickgelu"), torch.device("cpu"), "random")


def install_text(clip: OpenClip, names: str, seed: int) -> tuple[ClassList, torch.Tensor]:
    """Random unit text vectors for every name, put in the predictor's text cache so SegLab uses them too."""
    classes = parse_classes(names)
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(len(classes.names), clip.model.visual.proj.shape[1], generator=g)
    text = torch.nn.functional.normalize(text, dim=-1)
    clip.text_cache.clear()
    for n, e in zip(classes.names, text):
        clip.text_cache[n] = e
    return classes, text


def assert_labels_agree(ours: np.ndarray, theirs: torch.Tensor, probs: torch.Tensor, prob_thd: float = 0.0) -> None:
    """Equal labels, except where float rounding decides: the published (classes, H, W) probabilities' best two
    within 1e-5 of each other, or the best within 1e-5 of prob_thd. At most 1 pixel in 10,000."""
    theirs = theirs.numpy()
    assert ours.shape == theirs.shape
    diff = ours != theirs
    top2 = probs.topk(2, dim=0).values.numpy() if probs.shape[0] > 1 else np.concatenate([probs.numpy()] * 2)
    rounding = (top2[0] - top2[1] < 1e-5) | (np.abs(top2[0] - prob_thd) < 1e-5)
    assert diff.mean() < 1e-4 and rounding[diff].all(), (diff.mean(), int(diff.sum()))
