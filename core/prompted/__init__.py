"""Prompted segmentation (drywall QA): image + text prompts -> binary masks from CLIPSeg or a fine-tuned copy.

Entry points: `core.prompted.segmenter` (PromptedSegmenter, load_segmenter), `core.prompted.batch` (segment_files),
`core.prompted.prompts` (labels, prompts, slugs), `core.prompted.cleanup`, `core.prompted.manifest` (COCO exports ->
split manifest), `core.prompted.evaluate` (evaluate), `core.prompted.train` (train).
Never imports openvocab or video (other pipelines), nor any UI or bench code.
"""
