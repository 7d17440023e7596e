"""Results: the run record (schema, validation, atomic writing), resumable progress, and the dashboard's data side.

Entry points: `core.results.records` (new_record, write_record, validate), `core.results.checkpoint`, `core.results.runs`
(load_runs, filter_runs, sort_runs, compare), `core.results.naming` (names, provenance, metric directions),
`core.results.views` (tables, API answers), `core.results.leaderboard`, `core.results.charts`, `core.results.reported`,
`core.results.cli`. Never imports a pipeline (prompted, openvocab, video) or models, nor any UI or bench code.
"""
