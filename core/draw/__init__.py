"""Drawing: small pure functions over numpy arrays, one per way of drawing (mask overlays, legends, previews).

Entry point: `core.draw.overlay` (overlay, downscale).
Never imports models, a pipeline, results, or any UI or bench code: arrays in, arrays out.
"""
