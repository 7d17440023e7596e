"""Open-vocabulary segmentation: class names -> semantic map from a dense CLIP method (SCLIP, NACLIP; ResCLIP's RCS/SFR).

Entry points: `core.openvocab.sclip` (DenseConfig, SCLIPPredictor, variant_label), `core.openvocab.class_names`
(class lists and presets), `core.openvocab.evaluate` (evaluate_semantic), `core.openvocab.mhqr` (MHQR: queries -> SAM
masks -> merged map); inside: attention, text, refine (PAMR, DenseCRF), full_resolution (no classes × H × W array).
Never imports prompted or video (other pipelines), nor any UI or bench code.
"""
