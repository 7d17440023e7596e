"""Metrics, plain numpy: binary masks (IoU, Dice, threshold sweeps) and semantic maps (confusion, mIoU, boundary F1).

Entry points: `core.metrics.binary` (iou_dice, sweep_counts, choose_threshold), `core.metrics.semantic`
(confusion, iou_from_confusion, boundary_f1, small_object_ious), `core.metrics.video` (HOTA, IDF1, MOTA, video AP).
Never imports models, a pipeline, results, or any UI or bench code: metrics only see arrays.
"""
