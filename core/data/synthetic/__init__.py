"""Drawn data with exact ground truth, for tests, examples and offline dry runs.

Entry points: `core.data.synthetic.walls` (draw_wall: a drywall photo stand-in with crack and taping masks),
`core.data.synthetic.coco_export` (walls as a Roboflow-style COCO export), `core.data.synthetic.semantic_scenes`
(shape scenes with class-index label maps).
Never imports a pipeline (prompted, openvocab, video), results, or any UI or bench code.
"""
