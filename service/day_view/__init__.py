"""The day view: one restaurant-day as data (JSON), as a table × time timeline (SVG) and as a page for ops.

- ``model``      plain data the renderer takes (no FastAPI, no SQL)
- ``render_svg`` pure: a day (and optionally a plan laid over it) → SVG text
- ``repository`` SQL: read one restaurant-day as the runtime role, inside the tenant context
- ``service``    application service: load, check a posted plan against the day, render
- ``planning``   the one place that calls the auto-assign planner in dry-run mode (CLI ``plot --dry-run``)
- ``routes``     thin HTTP routes, and the static page ``/ops/days``
"""
