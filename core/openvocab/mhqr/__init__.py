"""MHQR: a dense CLIP map -> point queries at several scales -> SAM masks -> refined, merged semantic map.

Entry points: `core.openvocab.mhqr.pipeline` (MHQRConfig, run_mhqr), `core.openvocab.mhqr.dense` (DenseInput),
`core.openvocab.mhqr.masks` (MaskGenerator), `core.openvocab.mhqr.grid_vote`, `core.openvocab.mhqr.predictor`, real
stages `core.openvocab.mhqr.sam2_masks`, `core.openvocab.mhqr.clip_dense`; `core.openvocab.mhqr.standins` (no weights).
Never imports prompted or video, nor any UI or bench code; each model-backed stage is an object passed in.
"""
