"""Results: the run record (schema, validation, atomic writing), resumable progress, and the dashboard's data side.

Entry points: `core.results.records` (new_record, write_record, validate), `core.results.checkpoint` (Checkpoint),
`core.results.runs` (load_runs, filter_runs, compare), `core.results.views` (tables for display), `core.results.leaderboard`,
`core.results.charts` (plotly figures), `core.results.reported` (import_reported), `core.results.cli`.
Never imports a pipeline (prompted, openvocab, video) or models, nor any UI or bench code.
"""
