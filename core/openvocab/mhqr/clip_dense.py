"""Stage 1 for real: the dense CLIP predictor (SCLIP or NACLIP, with their refinements) as MHQR's DenseInput."""

from __future__ import annotations

import numpy as np
import torch

from core.openvocab.class_names import ClassList
from core.openvocab.full_resolution import FullResolution, published_labels
from core.openvocab.mhqr.dense import DenseInput
from core.openvocab.sclip import DenseConfig, DenseResult, SCLIPPredictor


class ClipDense:
    """Stage object: image + classes -> DenseInput at the predictor's working resolution (the resized image),
    with the dense patch features and class text embeddings, and the published labels at that resolution."""

    def __init__(self, predictor: SCLIPPredictor, cfg: DenseConfig = DenseConfig()):
        self.predictor, self.cfg = predictor, cfg

    def __call__(self, image: np.ndarray, classes: ClassList) -> tuple[DenseInput, DenseResult]:
        res = self.predictor.predict(image, classes, self.cfg, keep_features=True)
        working = res.probs.shape[1:]
        full = res.full
        if isinstance(full, FullResolution):  # the same scores, labelled at the working size
            labels = published_labels(FullResolution(full.scores, full.owner, working), classes.n,
                                      self.cfg.area_thd, self.cfg.prob_thd).numpy().astype(np.int32)
        else:  # PAMR ran at the image's size: take its labels down to the working size by nearest
            idx_y = torch.linspace(0, image.shape[0] - 1, working[0]).round().long().numpy()
            idx_x = torch.linspace(0, image.shape[1] - 1, working[1]).round().long().numpy()
            labels = res.labels[np.ix_(idx_y, idx_x)].astype(np.int32)
        dense = DenseInput(image, res.probs, res.features, res.text, list(classes.classes), labels)
        return dense, res
