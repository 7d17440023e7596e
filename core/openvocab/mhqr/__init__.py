"""MHQR: a dense CLIP map -> point queries at several scales -> SAM masks -> refined, merged semantic map.

Entry points: `core.openvocab.mhqr.pipeline`, `core.openvocab.mhqr.dense`, `core.openvocab.mhqr.queries`,
`core.openvocab.mhqr.masks`, `core.openvocab.mhqr.grid_vote`, `core.openvocab.mhqr.trace`,
`core.openvocab.mhqr.semantic_map`, `core.openvocab.mhqr.predictor`, `core.openvocab.mhqr.sam2_masks`,
`core.openvocab.mhqr.clip_dense`, `core.openvocab.mhqr.standins` (no weights). Never imports prompted, video, UI, bench.
"""
