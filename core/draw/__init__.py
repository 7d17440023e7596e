"""Drawing: small pure functions over numpy arrays, one per way of drawing.

Entry points: `core.draw.overlay` (mask overlays, legend, downscale, class colours), `core.draw.label_map` (a map or
a mask tinted), `core.draw.points` (query points by class and scale), `core.draw.panels` (images side by side),
`core.draw.tracks` (video tracks, a colour per id). Never imports models, a pipeline, results, UI or bench code.
"""
