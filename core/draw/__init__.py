"""Drawing: small pure functions over numpy arrays, one per way of drawing.

Entry points: `core.draw.overlay` (mask overlays with a legend, downscale, the class colours), `core.draw.label_map`
(a semantic map tinted over its image, one mask tinted), `core.draw.points` (query points: colour by class, marker
by scale, numbers, negative points, a highlight), `core.draw.panels` (images side by side with captions).
Never imports models, a pipeline, results, or any UI or bench code: arrays in, arrays out.
"""
