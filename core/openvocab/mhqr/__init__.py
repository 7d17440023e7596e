"""MHQR: a dense CLIP map -> point queries at several scales -> SAM masks -> refined, merged semantic map.

Entry points: `core.openvocab.mhqr.pipeline` (MHQRConfig, run_mhqr, STAGES), `core.openvocab.mhqr.dense`,
`core.openvocab.mhqr.queries`, `core.openvocab.mhqr.masks`, `core.openvocab.mhqr.grid_vote`, `core.openvocab.mhqr.trace`
(inspection), `core.openvocab.mhqr.semantic_map` (labels_at), `core.openvocab.mhqr.predictor`,
`core.openvocab.mhqr.sam2_masks`, `core.openvocab.mhqr.clip_dense`, `core.openvocab.mhqr.standins` (no weights).
Never imports prompted or video, nor any UI or bench code.
"""
