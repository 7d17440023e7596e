"""Open-vocabulary segmentation: class names -> semantic map from a dense CLIP method (SCLIP, NACLIP, ResCLIP).

Entry points: `core.openvocab.sclip` (DenseConfig, SCLIPPredictor, variant_label), `core.openvocab.class_names`,
`core.openvocab.evaluate` (evaluate_semantic, evaluate_ablation), `core.openvocab.cli` (evaluate-semantic),
`core.openvocab.mhqr` (MHQR: queries -> SAM masks -> merged map); inside: attention, text, refine (PAMR, DenseCRF),
full_resolution (no classes × H × W array). Never imports prompted or video, nor any UI or bench code.
"""
