"""Data: image loading with SegLab's size and format limits, COCO annotations, example images, drawn data sets.

Entry points: `core.data.images` (load_image, limits), `core.data.coco` (COCO exports to masks),
`core.data.examples` (the tabs' example images), `core.data.synthetic` (walls, semantic scenes, COCO exports
drawn in code with exact ground truth).
Never imports a pipeline (prompted, openvocab, video), results, or any UI or bench code.
"""
