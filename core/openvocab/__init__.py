"""Open-vocabulary segmentation: class names -> semantic map from a dense CLIP method (SCLIP, NACLIP; ResCLIP's RCS/SFR).

Entry points: `core.openvocab.sclip` (DenseConfig, SCLIPPredictor, variant_label), `core.openvocab.class_names`
(class lists and presets), `core.openvocab.evaluate` (evaluate_semantic); inside: attention, text, refine (PAMR,
DenseCRF), full_resolution (labels at the image's size without a classes × H × W array).
Never imports prompted or video (other pipelines), nor any UI or bench code.
"""
