"""Open-vocabulary segmentation: class names -> semantic map from a dense CLIP method (SCLIP), with refinements.

Entry points: `core.openvocab.sclip` (DenseConfig, SCLIPPredictor), `core.openvocab.class_names` (class lists and
presets), `core.openvocab.evaluate` (evaluate_semantic); `core.openvocab.attention` and `core.openvocab.refine`
hold the attention variants and PAMR/DenseCRF that the predictor uses.
Never imports prompted or video (other pipelines), nor any UI or bench code.
"""
